//! Option values as people write them: durations such as `250ms`, `1h30m` or bare seconds,
//! sizes such as `64MiB`, counts such as `10k` or `10_000`, and rates; each refusal a sentence
//! that says what is allowed.

use std::time::Duration;

use bytesize::ByteSize;

/// Parses a duration: a number with units as `humantime` reads them (`100us`, `250ms`, `5s`,
/// `2m`, `1h30m`, `1.5s`), or a bare number of seconds (`30`, `0.5`).
pub fn duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("a duration is needed, such as 250ms, 5s, 2m or 1h".to_owned());
    }
    if let Ok(seconds) = text.parse::<f64>() {
        return Duration::try_from_secs_f64(seconds).map_err(|_| {
            format!(
                "`{text}` is not a duration: give a number of seconds from 0 up, or one with a \
                 unit such as 250ms, 5s, 2m or 1h"
            )
        });
    }
    humantime::parse_duration(text)
        .map_err(|err| format!("`{text}` is not a duration such as 250ms, 5s, 2m or 1h30m ({err})"))
}

/// Parses a duration longer than zero; `what` names it in the refusal of zero.
fn positive_duration(text: &str, what: &str) -> Result<Duration, String> {
    match duration(text)? {
        Duration::ZERO => Err(format!("{what} must be longer than zero")),
        time => Ok(time),
    }
}

/// `--duration`: how long the run phase lasts.
pub fn run_duration(text: &str) -> Result<Duration, String> {
    positive_duration(text, "a run")
}

/// `--warmup`: how long the unmeasured warm-up lasts.
pub fn warmup(text: &str) -> Result<Duration, String> {
    positive_duration(text, "a warm-up (leave --warmup out for none)")
}

/// `--flush-interval`: each of the intervals.
pub fn flush_interval(text: &str) -> Result<Duration, String> {
    positive_duration(text, "a flush interval")
}

/// `--round-trip`: the time added to each request.
pub fn round_trip(text: &str) -> Result<Duration, String> {
    positive_duration(text, "a round trip (leave --round-trip out for none)")
}

/// `--stall-timeout`: how long a drain may make no progress.
pub fn stall_timeout(text: &str) -> Result<Duration, String> {
    positive_duration(text, "a stall timeout")
}

/// Parses a whole number as people write it: `10000`, `10_000`, `10,000`, `10k` or `1.5M`
/// (k: a thousand, M: a million, G: a billion).
fn whole_number(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let digits: String = trimmed
        .chars()
        .filter(|c| !matches!(c, '_' | ','))
        .collect();
    let (number, scale) = match digits.char_indices().last() {
        Some((at, 'k' | 'K')) => (&digits[..at], 1e3),
        Some((at, 'm' | 'M')) => (&digits[..at], 1e6),
        Some((at, 'g' | 'G')) => (&digits[..at], 1e9),
        _ => (digits.as_str(), 1.0),
    };
    let not_a_number =
        || format!("`{trimmed}` is not a whole number such as 10000, 10_000, 10k or 1.5M");
    if let Ok(whole) = number.parse::<u64>() {
        // Scales are whole numbers, so the product is exact while it fits.
        return whole
            .checked_mul(scale as u64)
            .ok_or_else(|| format!("`{trimmed}` is too large"));
    }
    let value: f64 = number.parse().map_err(|_| not_a_number())?;
    let scaled = value * scale;
    if !scaled.is_finite() || scaled < 0.0 || scaled.fract() != 0.0 {
        return Err(not_a_number());
    }
    if scaled >= u64::MAX as f64 {
        return Err(format!("`{trimmed}` is too large"));
    }
    Ok(scaled as u64)
}

/// A whole number from `min` to `max`; `what` says, for a value out of range, what the number
/// counts and why it is bounded (`"the load phase inserts at least 1 item"`).
fn count_between(text: &str, min: u64, max: u64, what: &str) -> Result<u64, String> {
    let n = whole_number(text)?;
    if (min..=max).contains(&n) {
        Ok(n)
    } else {
        Err(what.to_owned())
    }
}

/// The most items a benchmark loads: their keys are held in memory.
const MAX_ITEMS: u64 = 100_000_000;

/// `--items`.
pub fn items(text: &str) -> Result<u64, String> {
    count_between(
        text,
        1,
        MAX_ITEMS,
        "the load phase inserts from 1 to 100M items (each key is held in memory), and the run \
         phase works on those: give a number such as 10000 or 10k",
    )
}

/// `--ops`.
pub fn ops(text: &str) -> Result<u64, String> {
    count_between(
        text,
        1,
        u64::MAX,
        "a run phase has at least 1 operation (for none, use --workload load)",
    )
}

/// `--tasks`.
pub fn tasks(text: &str) -> Result<u32, String> {
    let n = count_between(
        text,
        1,
        u64::from(u32::MAX),
        "at least 1 task is needed to issue the operations",
    )?;
    u32::try_from(n).map_err(|_| format!("{n} tasks are too many"))
}

/// `--shards`.
pub fn shards(text: &str) -> Result<u64, String> {
    count_between(text, 1, 65_536, "a cache has from 1 to 65536 shards")
}

/// `--batch-threshold`.
pub fn batch_threshold(text: &str) -> Result<u64, String> {
    count_between(
        text,
        1,
        u64::MAX,
        "the flusher starts at 1 dirty key or more",
    )
}

/// `--max-pending`.
pub fn max_pending(text: &str) -> Result<u64, String> {
    count_between(
        text,
        1,
        u64::MAX,
        "at least 1 key must be allowed to wait for the backend",
    )
}

/// `--max-reads-in-flight`.
pub fn max_reads_in_flight(text: &str) -> Result<u64, String> {
    count_between(
        text,
        1,
        1024,
        "from 1 to 1024 read requests may be in flight",
    )
}

/// Parses a size in bytes: `4096`, `64KiB`, `64MiB`, `1.5GiB`, or with decimal units (`64MB`,
/// a million bytes each).
pub fn size(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let digits: String = trimmed.chars().filter(|c| *c != '_').collect();
    digits
        .parse::<ByteSize>()
        .map(|size| size.as_u64())
        .map_err(|_| {
            format!(
                "`{trimmed}` is not a size such as 4096, 64KiB, 64MiB or 1GiB (KiB, MiB and GiB \
             are 1024-based; KB, MB and GB 1000-based)"
            )
        })
}

/// A size of at least `min` bytes; `what` says why, for one below.
fn size_at_least(text: &str, min: u64, what: &str) -> Result<u64, String> {
    let bytes = size(text)?;
    if bytes >= min {
        Ok(bytes)
    } else {
        Err(what.to_owned())
    }
}

/// `--cache-bytes`.
pub fn cache_bytes(text: &str) -> Result<u64, String> {
    size_at_least(text, 1, "the cache needs at least 1 byte")
}

/// `--max-pending-bytes`.
pub fn max_pending_bytes(text: &str) -> Result<u64, String> {
    size_at_least(
        text,
        1024 * 1024,
        "writes waiting for the backend must be allowed at least 1MiB",
    )
}

/// `--value-size`: bytes of payload, at most an item's limit in DynamoDB.
pub fn value_size(text: &str) -> Result<usize, String> {
    let bytes = size(text)?;
    let max = quickstore::MAX_ITEM_BYTES as u64;
    if bytes > max {
        return Err(format!(
            "a DynamoDB item holds at most {} ({max} bytes), its key and attribute names \
             included, so its payload must be smaller",
            bytes_text(max)
        ));
    }
    usize::try_from(bytes).map_err(|_| format!("{bytes} bytes are too many"))
}

/// A number of bytes as text: `64MiB` when a binary unit says it exactly, else `4000 bytes`.
pub fn bytes_text(bytes: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    for (unit, name) in UNITS {
        if bytes >= unit && bytes.is_multiple_of(unit) {
            return format!("{}{name}", bytes / unit);
        }
    }
    match bytes {
        1 => "1 byte".to_owned(),
        n => format!("{n} bytes"),
    }
}

/// Parses a positive rate in operations per second: `2500`, `10k`, `1.5k`; or `max` (as fast
/// as possible), which is infinite.
pub fn rate(text: &str) -> Result<f64, String> {
    let trimmed = text.trim();
    if trimmed.eq_ignore_ascii_case("max") {
        return Ok(f64::INFINITY);
    }
    let plain: String = trimmed
        .chars()
        .filter(|c| !matches!(c, '_' | ','))
        .collect();
    let (number, scale) = match plain.strip_suffix(['k', 'K']) {
        Some(number) => (number, 1e3),
        None => (plain.as_str(), 1.0),
    };
    let rate = number.parse::<f64>().map(|n| n * scale).map_err(|_| {
        format!("`{trimmed}` is not a rate such as 500, 2500 or 10k operations a second, or max")
    })?;
    if rate.is_finite() && rate > 0.0 {
        Ok(rate)
    } else {
        Err(format!(
            "`{trimmed}` is not allowed: a rate is a number of operations a second above 0, \
             or max"
        ))
    }
}

/// Parses a fraction from 0 to 1: `0.9`, or a percentage, `90%`.
pub fn ratio(text: &str) -> Result<f64, String> {
    let trimmed = text.trim();
    let (number, scale) = match trimmed.strip_suffix('%') {
        Some(number) => (number.trim(), 100.0),
        None => (trimmed, 1.0),
    };
    let ratio = number
        .parse::<f64>()
        .map(|n| n / scale)
        .map_err(|_| format!("`{trimmed}` is not a fraction such as 0.9 or 90%"))?;
    if (0.0..=1.0).contains(&ratio) {
        Ok(ratio)
    } else {
        Err(format!(
            "`{trimmed}` is not allowed: give a fraction from 0 to 1, such as 0.9 (or 90%)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_units_and_bare_seconds() {
        let ms = Duration::from_millis;
        assert_eq!(duration("250ms"), Ok(ms(250)));
        assert_eq!(duration("5s"), Ok(ms(5000)));
        assert_eq!(duration("1.5"), Ok(ms(1500)));
        assert_eq!(duration("1.5s"), Ok(ms(1500)));
        assert_eq!(duration("30"), Ok(ms(30_000)));
        assert_eq!(duration("2m"), Ok(ms(120_000)));
        assert_eq!(duration("2min"), Ok(ms(120_000)));
        assert_eq!(duration("1h"), Ok(ms(3_600_000)));
        assert_eq!(duration("1h30m"), Ok(ms(5_400_000)));
        assert_eq!(duration("1h 30m"), Ok(ms(5_400_000)));
        assert_eq!(duration("100us"), Ok(Duration::from_micros(100)));
        assert_eq!(duration("100µs"), Ok(Duration::from_micros(100)));
        for bad in ["", "ms", "-1s", "-1", "5 parsecs", "fast", "NaN", "1e400"] {
            let err = duration(bad).err();
            assert!(err.is_some(), "{bad}");
        }
        assert!(duration("soon").is_err_and(|err| err.contains("such as 250ms")));
        assert!(run_duration("0s").is_err_and(|err| err.contains("longer than zero")));
        assert!(flush_interval("0").is_err());
        assert_eq!(stall_timeout("30"), Ok(ms(30_000)));
    }

    #[test]
    fn counts_are_whole_numbers_with_separators_or_a_scale() {
        assert_eq!(whole_number("10000"), Ok(10_000));
        assert_eq!(whole_number("10_000"), Ok(10_000));
        assert_eq!(whole_number("10,000"), Ok(10_000));
        assert_eq!(whole_number("10k"), Ok(10_000));
        assert_eq!(whole_number("1.5M"), Ok(1_500_000));
        assert_eq!(whole_number("2G"), Ok(2_000_000_000));
        for bad in [
            "",
            "k",
            "ten",
            "-1",
            "1.5",
            "0.0001k",
            "99999999999999999999",
        ] {
            assert!(whole_number(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn out_of_range_counts_say_what_is_allowed() {
        let zero = items("0").err().unwrap_or_default();
        assert!(zero.contains("from 1 to 100M items"), "{zero}");
        assert!(items("101M").is_err());
        assert_eq!(items("100M"), Ok(100_000_000));
        assert!(tasks("0").is_err_and(|err| err.contains("at least 1 task")));
        assert_eq!(tasks("8"), Ok(8));
        assert!(shards("65537").is_err_and(|err| err.contains("from 1 to 65536")));
        assert!(ops("0").is_err_and(|err| err.contains("--workload load")));
        assert_eq!(items("10k"), Ok(10_000));
    }

    #[test]
    fn sizes_take_units() {
        assert_eq!(size("4096"), Ok(4096));
        assert_eq!(size("64KiB"), Ok(64 * 1024));
        assert_eq!(size("64MiB"), Ok(64 * 1024 * 1024));
        assert_eq!(size("64 MiB"), Ok(64 * 1024 * 1024));
        assert_eq!(size("64mib"), Ok(64 * 1024 * 1024));
        assert_eq!(size("1GiB"), Ok(1 << 30));
        assert_eq!(size("64MB"), Ok(64_000_000));
        assert_eq!(size("1_000"), Ok(1000));
        for bad in ["", "MiB", "-1", "64 parsecs", "lots"] {
            assert!(size(bad).is_err(), "{bad}");
        }
        assert!(cache_bytes("0").is_err_and(|err| err.contains("at least 1 byte")));
        let small = max_pending_bytes("1000").err().unwrap_or_default();
        assert!(small.contains("at least 1MiB"), "{small}");
        assert_eq!(max_pending_bytes("1MiB"), Ok(1 << 20));
        assert_eq!(value_size("1KiB"), Ok(1024));
        assert!(value_size("1MiB").is_err_and(|err| err.contains("at most 400KiB")));
    }

    #[test]
    fn byte_counts_read_as_text() {
        assert_eq!(bytes_text(1), "1 byte");
        assert_eq!(bytes_text(1000), "1000 bytes");
        assert_eq!(bytes_text(65_536), "64KiB");
        assert_eq!(bytes_text(64 << 20), "64MiB");
        assert_eq!(bytes_text((64 << 20) + 1), "67108865 bytes");
    }

    #[test]
    fn rates_and_ratios() {
        assert_eq!(rate("2500"), Ok(2500.0));
        assert_eq!(rate("10k"), Ok(10_000.0));
        assert_eq!(rate("10_000"), Ok(10_000.0));
        assert_eq!(rate("max"), Ok(f64::INFINITY));
        for bad in ["0", "-1", "inf", "NaN", "fast", ""] {
            assert!(rate(bad).is_err(), "{bad}");
        }
        assert_eq!(ratio("0"), Ok(0.0));
        assert_eq!(ratio("1"), Ok(1.0));
        assert_eq!(ratio("0.25"), Ok(0.25));
        assert_eq!(ratio("90%"), Ok(0.9));
        for bad in ["1.01", "-0.5", "NaN", "inf", "half", "", "101%"] {
            assert!(ratio(bad).is_err(), "{bad}");
        }
    }
}
