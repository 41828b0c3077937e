//! DynamoDB's numbers: which strings DynamoDB stores as a number, and how many significant
//! digits a number has. The one reader of number strings in quickstore: the call-time check
//! ([`validate`]) and the size of a number ([`significant_digits`]) both go through [`parse`].
//!
//! The rules, and where each comes from:
//!
//! - **Range and precision** follow the Amazon DynamoDB Developer Guide ("Supported data types
//!   and naming rules", Number): up to 38 digits of precision; positive numbers from 1E-130 to
//!   9.9999999999999999999999999999999999999E+125, negative numbers from
//!   -9.9999999999999999999999999999999999999E+125 to -1E-130, and zero; leading and trailing
//!   zeroes are trimmed, so they are not significant. The digits counted are those of the whole
//!   digit string, on both sides of the decimal point, from the first non-zero digit to the last:
//!   `100000000000000000000000000000000000000000` has 1, `1.00000000000000000000000000000000000001`
//!   has 39. The magnitude is compared exactly, as a decimal: with at most 38 significant
//!   digits, a number is within the range exactly when its first significant digit stands for a
//!   power of ten from -130 to 125.
//! - **Syntax** is not spelled out by the guide; each rule follows what DynamoDB was seen to do
//!   with strings sent to it directly:
//!   - an optional sign, `-` or `+`: `+3` is stored as `3` (ScyllaDB's Alternator tests,
//!     `test_number.py`, which run against DynamoDB). dynalite refuses a leading `+`: there it
//!     departs from DynamoDB;
//!   - digits with at most one decimal point and at least one digit, either side of the point
//!     possibly empty: `.123` and `0001.23` (Alternator's tests), `5.` and `.5` (dynalite's
//!     grammar, big.js's `\d+(\.\d*)?|\.\d+`);
//!   - optionally an exponent: `e` or `E`, an optional sign, at least one digit: `1e+5`,
//!     `-17.4E37`, `0e1000` (Alternator's tests; dynalite reads the same);
//!   - nothing else. Whitespace around the number (` 1`, `1 `), `NaN`, `Infinity` and words are
//!     refused (Alternator's tests), and so is the empty string (dynalite's tests, recorded
//!     against DynamoDB). Hex, `_` separators and digits outside ASCII are refused by dynalite's
//!     grammar; DynamoDB's behaviour with them is not documented, so they are refused here too,
//!     where a caller can still write the number another way.
//!
//!   This is also Rust's grammar of `f64` strings, less `inf`, `infinity` and `nan`.
//! - **Zero** is a number whatever its sign, digits or exponent (`-0`, `0.000`, `0e1000`): the
//!   range applies to numbers other than zero, and a zero has no significant digits.

use crate::error::{Error, Result};

/// DynamoDB's limit on the significant digits of a number.
pub(crate) const MAX_SIGNIFICANT_DIGITS: usize = 38;

/// The power of ten of the first significant digit of DynamoDB's largest magnitude,
/// 9.9999999999999999999999999999999999999E+125.
const MAX_EXPONENT: i64 = 125;

/// The power of ten of DynamoDB's smallest non-zero magnitude, 1E-130.
const MIN_EXPONENT: i64 = -130;

/// Where an exponent's digits stop counting: far beyond the range, and far beyond any shift a
/// string's digits could make up for (that would take a string longer than `i64::MAX / 4`
/// bytes), so capping a longer exponent there changes no verdict.
const EXPONENT_CAP: i64 = i64::MAX / 4;

/// A number string as DynamoDB reads it: how many significant digits it has, and which power
/// of ten its first one stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Number {
    /// Digits from the first non-zero digit to the last, both counted, whichever side of the
    /// decimal point they are on; 0 for zero.
    pub(crate) significant: usize,
    /// The power of ten of the first significant digit: 2 for `123`, -3 for `0.00123`, 3 for
    /// `1.5e3`; 0 for zero. Saturates far outside the range, never overflows.
    pub(crate) exponent: i64,
}

impl Number {
    const ZERO: Number = Number {
        significant: 0,
        exponent: 0,
    };
}

/// Reads `n` as DynamoDB reads a number (see the module's documentation for the syntax), or
/// `None` if DynamoDB cannot read it as one. Says nothing about the range: see [`validate`].
pub(crate) fn parse(n: &str) -> Option<Number> {
    let unsigned = n.strip_prefix(['-', '+']).unwrap_or(n);
    let (mantissa, exponent) = match unsigned.split_once(['e', 'E']) {
        Some((mantissa, exponent)) => (mantissa, parse_exponent(exponent)?),
        None => (unsigned, 0),
    };
    // Digits seen, digits before the decimal point, and where the first and last non-zero
    // digits are among the digits.
    let mut digits = 0usize;
    let mut point = None;
    let mut first = None;
    let mut last = 0usize;
    for byte in mantissa.bytes() {
        match byte {
            b'0' => digits += 1,
            b'1'..=b'9' => {
                first.get_or_insert(digits);
                last = digits;
                digits += 1;
            }
            b'.' if point.is_none() => point = Some(digits),
            _ => return None,
        }
    }
    if digits == 0 {
        return None;
    }
    let Some(first) = first else {
        return Some(Number::ZERO);
    };
    let before_point = point.unwrap_or(digits);
    // The first significant digit stands for 10^(before_point - first - 1) before the exponent.
    let shift =
        saturating_i64(before_point).saturating_sub(saturating_i64(first).saturating_add(1));
    Some(Number {
        significant: last - first + 1,
        exponent: exponent.saturating_add(shift),
    })
}

/// The number `n` stands for, in one spelling: whether it is below zero, its significant
/// digits, and the power of ten of the first; `None` if DynamoDB cannot read it. Numbers
/// DynamoDB holds as equal (`1`, `1.0`, `10e-1`, `-0`, `0`) have the same value here: what
/// makes two members of a number set duplicates.
pub(crate) fn value(n: &str) -> Option<(bool, String, i64)> {
    let number = parse(n)?;
    let mantissa = n.split(['e', 'E']).next().unwrap_or(n);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let digits = digits
        .trim_start_matches('0')
        .trim_end_matches('0')
        .to_owned();
    let negative = n.starts_with('-') && !digits.is_empty();
    Some((negative, digits, number.exponent))
}

/// An exponent's optional sign and its digits (at least one), capped at [`EXPONENT_CAP`].
fn parse_exponent(exponent: &str) -> Option<i64> {
    let (negative, digits) = match exponent.strip_prefix('-') {
        Some(digits) => (true, digits),
        None => (false, exponent.strip_prefix('+').unwrap_or(exponent)),
    };
    if digits.is_empty() {
        return None;
    }
    let mut value: i64 = 0;
    for byte in digits.bytes() {
        if !byte.is_ascii_digit() {
            return None;
        }
        value = value
            .saturating_mul(10)
            .saturating_add(i64::from(byte - b'0'))
            .min(EXPONENT_CAP);
    }
    Some(if negative { -value } else { value })
}

fn saturating_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The significant digits of `n` (see [`Number::significant`]), which DynamoDB's item size
/// counts. A string DynamoDB cannot read as a number counts a digit per byte, an overestimate;
/// [`validate`] refuses such a string before anything is stored.
pub(crate) fn significant_digits(n: &str) -> usize {
    parse(n).map_or(n.len(), |number| number.significant)
}

/// Checks that DynamoDB stores `n` as a number: its syntax, its significant digits and its
/// magnitude, exactly as the module's documentation says. Fails with a
/// [`Validation`](Error::Validation) error naming the number and the rule it breaks.
pub(crate) fn validate(n: &str) -> Result<()> {
    let Some(number) = parse(n) else {
        return Err(Error::validation(if n.is_empty() {
            "a number is the empty string, which DynamoDB cannot read as a number".to_owned()
        } else {
            format!(
                "the number `{}` is not one DynamoDB can read: an optional sign, digits with at \
                 most one decimal point, then optionally `e` or `E`, an optional sign and digits",
                shown(n)
            )
        }));
    };
    if number.significant == 0 {
        return Ok(());
    }
    if number.exponent > MAX_EXPONENT {
        return Err(Error::validation(format!(
            "the number `{}` is larger in magnitude than DynamoDB's largest, \
             9.9999999999999999999999999999999999999E+125",
            shown(n)
        )));
    }
    if number.exponent < MIN_EXPONENT {
        return Err(Error::validation(format!(
            "the number `{}` is smaller in magnitude than DynamoDB's smallest other than zero, \
             1E-130",
            shown(n)
        )));
    }
    if number.significant > MAX_SIGNIFICANT_DIGITS {
        return Err(Error::validation(format!(
            "the number `{}` has {} significant digits, over DynamoDB's limit of \
             {MAX_SIGNIFICANT_DIGITS}",
            shown(n),
            number.significant
        )));
    }
    Ok(())
}

/// The sum of two numbers DynamoDB stores, exact, as DynamoDB's `ADD` makes it: spelled as
/// DynamoDB returns numbers (no exponent, no trailing zeroes after the point, `0` for zero).
/// Fails with a [`Validation`](Error::Validation) error if either is not a number DynamoDB
/// stores, or if the sum is not one (over 38 significant digits, or out of range).
pub(crate) fn sum(a: &str, b: &str) -> Result<String> {
    if let (Some(a), Some(b)) = (small_integer(a), small_integer(b)) {
        // Both under 10^37 in magnitude: the sum is under 10^38, an integer DynamoDB stores.
        return Ok((a + b).to_string());
    }
    let total = decimal(a)? + decimal(b)?;
    let spelled = spelled(&total);
    validate(&spelled).map_err(|_| {
        Error::validation(format!(
            "`{}` plus `{}` is {}, which DynamoDB cannot store as a number (38 significant \
             digits at most, magnitude from 1E-130 to 9.9999999999999999999999999999999999999E+125)",
            shown(a),
            shown(b),
            shown(&spelled)
        ))
    })?;
    Ok(spelled)
}

/// `n` spelled as DynamoDB returns it: `1.50` as `1.5`, `1e3` as `1000`, `-0` as `0`.
pub(crate) fn canonical(n: &str) -> Result<String> {
    if let Some(n) = small_integer(n) {
        return Ok(n.to_string());
    }
    Ok(spelled(&decimal(n)?))
}

/// `n` as an integer, when it is spelled as one of at most 37 digits (an optional `-`, then
/// digits only): the common case of counters, summed without decimals. `None` otherwise.
fn small_integer(n: &str) -> Option<i128> {
    let digits = n.strip_prefix('-').unwrap_or(n);
    if digits.is_empty() || digits.len() > 37 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    n.parse().ok()
}

/// `n`, a number DynamoDB stores, as an exact decimal.
fn decimal(n: &str) -> Result<bigdecimal::BigDecimal> {
    validate(n)?;
    // `value` spells the number one way, which the decimal type reads whatever the spelling
    // DynamoDB accepted (a leading `+`, `.5`, `5.`).
    let (negative, digits, exponent) = match value(n) {
        Some((negative, digits, exponent)) if !digits.is_empty() => (negative, digits, exponent),
        // Zero, however it is spelled.
        _ => return Ok(bigdecimal::BigDecimal::from(0)),
    };
    let scale = saturating_i64(digits.len() - 1) - exponent;
    let sign = if negative { "-" } else { "" };
    format!("{sign}{digits}e{}", -scale)
        .parse()
        .map_err(|_| Error::validation(format!("the number `{}` could not be read", shown(n))))
}

fn spelled(n: &bigdecimal::BigDecimal) -> String {
    let normalized = n.normalized();
    if bigdecimal::Zero::is_zero(&normalized) {
        return "0".to_owned();
    }
    normalized.to_plain_string()
}

/// `n` as an error message quotes it, on one line: whole up to 64 characters, else its first
/// 60 and `…`; control characters escaped.
fn shown(n: &str) -> String {
    let long = n.chars().nth(64).is_some();
    let mut shown: String = n
        .chars()
        .take(if long { 60 } else { 64 })
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect();
    if long {
        shown.push('…');
    }
    shown
}

#[cfg(test)]
mod tests;
