//! What DynamoDB bills for a workload: request units computed from item sizes the way
//! on-demand capacity charges them, and their price.
//!
//! - A write (`PutItem`, each item of a `BatchWriteItem`, a conditional write even when its
//!   condition fails) costs one write request unit per KB of the item, rounded up; a delete is
//!   counted at the 1-unit minimum (its item's size is not known to the caller).
//! - A strongly consistent read (`GetItem`, each key of a `BatchGetItem`) costs one read request
//!   unit per 4 KB of the item, rounded up, and at least one even when the item is absent; an
//!   eventually consistent read costs half.
//!
//! Sizes are DynamoDB's item sizes (attribute names plus values, the key included), as
//! [`quickstore::item_size`] computes them.

use serde::Serialize;

/// Bytes one write request unit covers.
pub const WRITE_UNIT_BYTES: u64 = 1024;

/// Bytes one read request unit covers.
pub const READ_UNIT_BYTES: u64 = 4096;

/// Write request units for writing an item of `bytes`.
pub fn write_units(bytes: u64) -> u64 {
    bytes.div_ceil(WRITE_UNIT_BYTES).max(1)
}

/// Read request units for reading an item of `bytes` (0 when absent).
pub fn read_units(bytes: u64, consistent: bool) -> f64 {
    let units = bytes.div_ceil(READ_UNIT_BYTES).max(1) as f64;
    if consistent {
        units
    } else {
        units / 2.0
    }
}

/// Request units consumed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Units {
    /// Read request units.
    pub read: f64,
    /// Write request units.
    pub write: f64,
}

/// On-demand prices, in US dollars per million request units.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Prices {
    /// Dollars per million read request units.
    pub read_per_million: f64,
    /// Dollars per million write request units.
    pub write_per_million: f64,
}

impl Default for Prices {
    /// On-demand capacity in us-east-1 since the November 2024 price cut: $0.125 per million
    /// read request units, $0.625 per million write request units.
    fn default() -> Self {
        Self {
            read_per_million: 0.125,
            write_per_million: 0.625,
        }
    }
}

/// The bill for some units, and per million operations.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Bill {
    /// The units consumed.
    pub units: Units,
    /// What they cost, in US dollars.
    pub dollars: f64,
    /// Units per million operations of the workload.
    pub units_per_million_ops: Units,
    /// Dollars per million operations of the workload.
    pub dollars_per_million_ops: f64,
}

impl Bill {
    /// The bill for `units` consumed by `ops` operations at `prices`.
    pub fn new(units: Units, ops: u64, prices: &Prices) -> Self {
        let dollars = |units: Units| {
            (units.read * prices.read_per_million + units.write * prices.write_per_million) / 1e6
        };
        let scale = if ops == 0 { 0.0 } else { 1e6 / ops as f64 };
        let per_million = Units {
            read: units.read * scale,
            write: units.write * scale,
        };
        Self {
            units,
            dollars: dollars(units),
            units_per_million_ops: per_million,
            dollars_per_million_ops: dollars(per_million),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_round_up_per_item() {
        assert_eq!(write_units(0), 1, "a write costs at least one unit");
        assert_eq!(write_units(200), 1);
        assert_eq!(write_units(1024), 1);
        assert_eq!(write_units(1025), 2);
        assert_eq!(write_units(400 * 1024), 400);
        assert_eq!(read_units(0, true), 1.0, "an absent item costs the minimum");
        assert_eq!(read_units(4096, true), 1.0);
        assert_eq!(read_units(4097, true), 2.0);
        assert_eq!(read_units(4097, false), 1.0, "eventually consistent: half");
        assert_eq!(read_units(100, false), 0.5);
    }

    #[test]
    fn bills_price_units_and_scale_to_a_million_operations() {
        let units = Units {
            read: 4_000.0,
            write: 1_000.0,
        };
        let bill = Bill::new(units, 10_000, &Prices::default());
        // 4,000 x $0.125/M + 1,000 x $0.625/M
        assert!((bill.dollars - 0.001_125).abs() < 1e-12, "{bill:?}");
        assert_eq!(bill.units_per_million_ops.read, 400_000.0);
        assert_eq!(bill.units_per_million_ops.write, 100_000.0);
        assert!(
            (bill.dollars_per_million_ops - 0.1125).abs() < 1e-9,
            "{bill:?}"
        );
        assert_eq!(
            Bill::new(units, 0, &Prices::default()).dollars_per_million_ops,
            0.0
        );
    }
}
