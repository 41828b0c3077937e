//! Write-through, what a DynamoDB user would do without the store: each read a `GetItem`,
//! each upsert a `PutItem`, each increment an `UpdateItem`. Its requests and bill for the
//! run's operations are measured with `--compare direct`, and otherwise computed from the
//! operations the run made and the size of its items, which is what DynamoDB would bill for
//! them on any backend.

use serde::Serialize;

use super::workload::Ran;
use super::Direct;
use crate::cost::{read_units, write_units, Bill, Prices, Units};
use crate::meter::Metered;

/// What write-through asked, or would have asked, of DynamoDB for a run's operations.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct WriteThrough {
    /// Whether the figures were measured (`--compare direct`) rather than computed.
    pub measured: bool,
    /// The item size the figures were computed for; `null` when measured.
    pub item_bytes: Option<u64>,
    /// The operations they are for.
    pub ops: u64,
    /// Requests: one per operation.
    pub requests: u64,
    /// Request units.
    pub units: Units,
}

impl WriteThrough {
    /// What the direct run of `--compare direct` asked of the backend.
    pub fn measured(direct: &Direct) -> Self {
        Self {
            measured: true,
            item_bytes: None,
            ops: direct.ran.ops(),
            requests: requests(&direct.metered),
            units: direct.metered.units,
        }
    }

    /// What write-through would ask for the operations of `ran`, on items of `item_bytes`
    /// read with `consistent` reads: one request per operation, billed by the item's size.
    pub fn computed(ran: &Ran, item_bytes: u64, consistent: bool) -> Self {
        let reads = ran.reads.count();
        let writes = ran.writes.count() + ran.increments.count();
        Self {
            measured: false,
            item_bytes: Some(item_bytes),
            ops: ran.ops(),
            requests: reads + writes,
            units: Units {
                read: reads as f64 * read_units(item_bytes, consistent),
                write: writes as f64 * write_units(item_bytes) as f64,
            },
        }
    }

    /// The bill, per million operations too.
    pub fn bill(&self, prices: &Prices) -> Bill {
        Bill::new(self.units, self.ops, prices)
    }

    /// Requests per million operations.
    pub fn requests_per_million_ops(&self) -> f64 {
        per_million(self.requests, self.ops)
    }
}

/// Read and write requests metered.
pub fn requests(metered: &Metered) -> u64 {
    metered.read_requests + metered.write_requests
}

/// `count` per million of `ops` (0 without operations).
pub fn per_million(count: u64, ops: u64) -> f64 {
    if ops == 0 {
        0.0
    } else {
        count as f64 * 1e6 / ops as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn computed_write_through_is_a_request_per_operation_billed_by_size() -> anyhow::Result<()> {
        let mut ran = Ran::new()?;
        for _ in 0..900 {
            ran.reads.record(Duration::from_micros(1));
        }
        for _ in 0..100 {
            ran.writes.record(Duration::from_micros(1));
        }
        let small = WriteThrough::computed(&ran, 200, true);
        assert_eq!(small.requests, 1000);
        assert_eq!(small.units.read, 900.0);
        assert_eq!(small.units.write, 100.0);
        assert_eq!(small.requests_per_million_ops(), 1e6);
        // 5 KB items: 2 read units (4 KB each), 5 write units (1 KB each); eventual reads half.
        let large = WriteThrough::computed(&ran, 5 * 1024, false);
        assert_eq!(large.units.read, 900.0);
        assert_eq!(large.units.write, 500.0);
        // $0.125 per million read units, $0.625 per million write units.
        let bill = small.bill(&Prices::default());
        assert!(
            (bill.dollars_per_million_ops - 0.175).abs() < 1e-9,
            "{bill:?}"
        );
        Ok(())
    }
}
