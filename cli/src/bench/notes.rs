//! Sentences about settings that had no effect on a run, or less than it seems: a flush
//! interval longer than the run, a batch threshold that flushed before the interval was up, a
//! target rate not kept, and the like. The report ends with them.

use std::time::Duration;

use super::tuning::{DEFAULT_BATCH_THRESHOLD, DEFAULT_FLUSH_INTERVAL};
use super::{BenchArgs, Direct, StoreRun, Workload};

/// An achieved rate below this share of the target counts as the target not kept.
const KEPT_RATE: f64 = 0.9;

/// A duration as the notes show it: `850µs`, `201ms`, `1s`, `1.5s`.
pub fn shown(time: Duration) -> String {
    let secs = time.as_secs_f64();
    if secs < 1e-3 {
        format!("{:.0}µs", secs * 1e6)
    } else if secs < 1.0 {
        format!("{:.0}ms", secs * 1e3)
    } else if secs < 10.0 && (secs * 10.0).round() % 10.0 != 0.0 {
        format!("{secs:.1}s")
    } else {
        format!("{secs:.0}s")
    }
}

/// The notes on `runs` (and on the write-through run `direct`), each a sentence, without
/// repeats.
pub fn notes(args: &BenchArgs, runs: &[StoreRun], direct: Option<&Direct>) -> Vec<String> {
    let mut notes: Vec<String> = Vec::new();
    let mut add = |note: String| {
        if !notes.contains(&note) {
            notes.push(note);
        }
    };
    for run in runs {
        for note in run_notes(args, run) {
            add(note);
        }
    }
    if let (Some(direct), Some(target)) = (direct, args.rate()) {
        let achieved = rate(direct.ran.ops(), direct.ran.elapsed);
        if direct.ran.ops() > 0 && achieved < target * KEPT_RATE {
            add(format!(
                "Write-through could not keep the target of {target:.0} ops/s against this \
                 backend (it ran {achieved:.0} ops/s); its requests and bill per operation do \
                 not depend on its rate."
            ));
        }
    }
    notes
}

/// Operations per second.
fn rate(ops: u64, elapsed: Duration) -> f64 {
    ops as f64 / elapsed.as_secs_f64().max(f64::MIN_POSITIVE)
}

/// The notes on one run of the store.
fn run_notes(args: &BenchArgs, run: &StoreRun) -> Vec<String> {
    let mut notes = Vec::new();
    let ran = &run.ran;
    if ran.ops() == 0 {
        return notes;
    }
    let tuning = &args.tuning;
    let asked = run.flush_interval.is_some();
    let interval = run.flush_interval.unwrap_or(DEFAULT_FLUSH_INTERVAL);
    let threshold = tuning.batch_threshold.unwrap_or(DEFAULT_BATCH_THRESHOLD);
    let during = run.end.since(&run.before_run);
    let name = match asked {
        true => format!("--flush-interval {}", shown(interval)),
        false => format!("the default flush interval ({})", shown(interval)),
    };
    let writes = during.mutations > 0;
    if writes && ran.elapsed < interval {
        notes.push(format!(
            "The run lasted {}, less than {name}, so the interval could not matter: the run's \
             writes went out when {threshold} keys were dirty (the batch threshold) or in the \
             final flush. Run for longer than the interval (--duration) to see its effect.",
            shown(ran.elapsed)
        ));
    } else if writes && asked && run.restarted.is_none() {
        // A flush the interval starts writes the keys dirty at the time, fewer than the
        // threshold (which would have started it earlier): more items written during the run
        // than that allows mean the threshold started flushes before the interval was up.
        let written = during.items_written.saturating_sub(run.drained.items);
        let rounds = (ran.elapsed.as_secs_f64() / interval.as_secs_f64()).floor() as u64 + 1;
        if written > rounds.saturating_mul(threshold) {
            notes.push(format!(
                "With {name}, {written} items were written during the run, more than {rounds} \
                 flushes of fewer than {threshold} dirty keys each can hold: flushes started \
                 when {threshold} keys were dirty (the batch threshold), before the interval was \
                 up, so a longer interval coalesces less than it could. Raise --batch-threshold \
                 above the keys written per interval for the interval to decide."
            ));
        }
    }
    if let Some(target) = args.rate() {
        let achieved = rate(ran.ops(), ran.elapsed);
        if achieved < target * KEPT_RATE {
            notes.push(format!(
                "The store fell behind the target of {target:.0} ops/s (it ran {achieved:.0} \
                 ops/s, the latest operation {} late), so the figures are for a lower rate.",
                shown(ran.behind)
            ));
        }
    }
    let reads = ran.reads.count();
    if tuning.eventual_reads && reads > 0 && run.metered.read_requests == 0 {
        notes.push(
            "--eventual-reads changed nothing in the run: every read was a hit, so none went to \
             the backend."
                .to_owned(),
        );
    }
    if let Some(bytes) = tuning.cache_bytes {
        if args.workload != Some(Workload::U) && reads > 0 && during.misses == 0 {
            notes.push(format!(
                "--cache-bytes {} did not matter: no read missed in the run, so every key read \
                 fit in the cache.",
                crate::values::bytes_text(bytes)
            ));
        }
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_show_short() {
        let ms = Duration::from_millis;
        assert_eq!(shown(Duration::from_micros(850)), "850µs");
        assert_eq!(shown(Duration::from_micros(201_400)), "201ms");
        assert_eq!(shown(ms(1000)), "1s");
        assert_eq!(shown(ms(1500)), "1.5s");
        assert_eq!(shown(ms(15_000)), "15s");
    }
}
