//! What `quickstore bench` prints: the report as text, or as JSON with stable field names
//! (listed in docs/BENCHMARKS.md).

use std::fmt::{self, Write as _};
use std::time::Duration;

use clap::ValueEnum as _;
use quickstore::{Durability, Stats};
use serde::Serialize;

use super::plot::Series;
use super::restart::Restarted;
use super::tuning::DEFAULT_FLUSH_INTERVAL;
use super::versus::{per_million, requests, WriteThrough};
use super::workload::COUNTER;
use super::{BenchArgs, Counted, Direct, Drained, StoreRun, BATCH_LOOP_IN_FLIGHT};
use crate::backend::Target;
use crate::bench::latency::{Recorder, Summary};
use crate::bench::timeline::{Timeline, MAX_POINTS};
use crate::cost::{read_units, write_units, Bill, Prices, Units};
use crate::meter::Metered;
use crate::values::bytes_text;

/// Everything measured.
pub struct Report<'a> {
    /// The options the benchmark ran with.
    pub args: &'a BenchArgs,
    /// What the store ran against.
    pub target: &'a Target,
    /// The store's runs, one per flush interval.
    pub runs: &'a [StoreRun],
    /// The same run phase straight against the backend, with `--compare direct`.
    pub direct: Option<&'a Direct>,
    /// A direct `BatchWriteItem` loop writing as many items as a drain, with `--compare batch`.
    pub batch: Option<&'a Drained>,
    /// The DynamoDB size of the run's items, for the write-through figures computed without
    /// `--compare direct`.
    pub item_bytes: u64,
}

/// Per second, for throughput figures.
fn rate(count: u64, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64().max(f64::MIN_POSITIVE)
}

/// A flush interval as the report shows it.
fn interval_name(interval: Option<Duration>) -> String {
    match interval {
        Some(interval) => format!("{interval:?}"),
        None => "default".to_owned(),
    }
}

/// Mutations per write request, as text: what coalescing and batching make of each request.
fn per_request(stats: &Stats) -> String {
    if stats.write_requests == 0 {
        "-".to_owned()
    } else {
        format!(
            "{:.1}",
            stats.mutations as f64 / stats.write_requests as f64
        )
    }
}

/// Keys per read request, as text: above 1 when cold reads shared batches.
fn keys_per_read(stats: &Stats) -> String {
    if stats.read_requests == 0 {
        "-".to_owned()
    } else {
        format!("{:.1}", stats.keys_per_read_request())
    }
}

/// Read requests per mutation, as text: what the existence checks of inserts and updates
/// cost (`--workload load`: read requests per insert).
fn reads_per_mutation(stats: &Stats) -> String {
    if stats.mutations == 0 {
        "-".to_owned()
    } else {
        format!("{:.3}", stats.read_requests as f64 / stats.mutations as f64)
    }
}

/// Write requests per increment (`--workload k`): below 1 when increments of a key coalesced;
/// `None` without increments.
fn writes_per_increment(write_requests: u64, increments: u64) -> Option<f64> {
    (increments > 0).then(|| write_requests as f64 / increments as f64)
}

/// Items written per mutation, as text: below 1 when writes coalesced.
fn per_mutation(stats: &Stats) -> String {
    if stats.mutations == 0 {
        "-".to_owned()
    } else {
        format!("{:.3}", stats.items_written as f64 / stats.mutations as f64)
    }
}

impl StoreRun {
    /// Write requests per increment over the run and drain (`--workload k`).
    fn writes_per_increment(&self) -> Option<f64> {
        let counted = self.counted?;
        let requests = self.end.since(&self.before_run).write_requests;
        writes_per_increment(requests, counted.measured)
    }

    /// The bill as read, and had reads been of the other consistency (half, or twice, the
    /// read units).
    fn bills(&self, consistent: bool, prices: &Prices) -> (Bill, Bill) {
        let units = self.metered.units;
        let other = Units {
            read: if consistent {
                units.read / 2.0
            } else {
                units.read * 2.0
            },
            write: units.write,
        };
        let ops = self.ran.ops();
        (Bill::new(units, ops, prices), Bill::new(other, ops, prices))
    }
}

impl Direct {
    fn bill(&self, prices: &Prices) -> Bill {
        Bill::new(self.metered.units, self.ran.ops(), prices)
    }

    /// Write requests per increment (`--workload k`): 1, one `UpdateItem` each.
    fn writes_per_increment(&self) -> Option<f64> {
        writes_per_increment(self.metered.write_requests, self.ran.increments.count())
    }
}

impl Report<'_> {
    /// Whether the store's reads were strongly consistent.
    fn consistent_reads(&self) -> bool {
        !self.args.tuning.eventual_reads
    }

    /// The report as text.
    pub fn render(&self) -> Result<String, fmt::Error> {
        let mut out = String::new();
        self.render_header(&mut out)?;
        for run in self.runs {
            writeln!(out)?;
            if self.runs.len() > 1 {
                writeln!(
                    out,
                    "== flush interval {}",
                    interval_name(run.flush_interval)
                )?;
            }
            self.render_versus(&mut out, run)?;
            writeln!(out)?;
            render_coalescing(&mut out, run)?;
            writeln!(out)?;
            render_latencies(&mut out, &run.ran)?;
            writeln!(out)?;
            self.render_run(&mut out, run)?;
            if let Some(batch) = self.batch {
                writeln!(out)?;
                render_drain_compare(&mut out, &run.drained, batch)?;
            }
        }
        if self.runs.len() > 1 {
            writeln!(out)?;
            self.render_intervals(&mut out)?;
        }
        let notes = self.notes();
        if !notes.is_empty() {
            writeln!(out)?;
            for note in notes {
                writeln!(out, "note: {note}")?;
            }
        }
        if let Some(path) = &self.args.plot {
            writeln!(out)?;
            writeln!(out, "plot written to {}", path.display())?;
        }
        Ok(out)
    }

    fn render_header(&self, out: &mut String) -> fmt::Result {
        let args = self.args;
        let tuning = &args.tuning;
        let workload = args
            .workload
            .and_then(|w| w.to_possible_value())
            .map(|v| format!(", workload {}", v.get_name()))
            .unwrap_or_default();
        let round_trip = args
            .backend
            .round_trip
            .map(|time| format!(", {time:?} added to every request"))
            .unwrap_or_default();
        writeln!(
            out,
            "quickstore bench on the {}{round_trip}{workload}",
            self.target
        )?;
        let length = match args.duration {
            Some(time) => format!("{time:?} of ops"),
            None => format!("{} ops", args.ops.unwrap_or(0)),
        };
        let warmup = args
            .warmup
            .map(|time| format!(" after a {time:?} warm-up"))
            .unwrap_or_default();
        let pace = match args.rate() {
            Some(rate) => format!(" at {rate:.0} ops/s"),
            None => ", as fast as they go".to_owned(),
        };
        let mix = match args.increments() {
            true => format!("increments of `{COUNTER}`"),
            false => format!("{:.0}% reads", args.read_ratio() * 100.0),
        };
        writeln!(
            out,
            "  {} items with {}-byte payloads; {length}{warmup} from {} tasks{pace}, {mix}, {} \
             keys, seed {}",
            args.items,
            args.value_size,
            args.tasks,
            args.distribution(),
            args.seed,
        )?;
        let mut settings = Vec::new();
        let mut set = |name: &str, value: Option<String>| {
            if let Some(value) = value {
                settings.push(format!("{name} {value}"));
            }
        };
        set("cache", tuning.cache_bytes.map(bytes_text));
        set("shards", tuning.shards.map(|n| n.to_string()));
        if self.runs.len() == 1 {
            set(
                "flush interval",
                tuning.flush_interval.first().map(|i| format!("{i:?}")),
            );
        }
        set(
            "batch threshold",
            tuning.batch_threshold.map(|n| n.to_string()),
        );
        set(
            "max pending",
            tuning.max_pending.map(|n| format!("{n} keys")),
        );
        set("max pending", tuning.max_pending_bytes.map(bytes_text));
        set(
            "journal",
            tuning.journal.as_ref().map(|dir| {
                format!(
                    "in {} ({})",
                    dir.display(),
                    durability_name(tuning.durability)
                )
            }),
        );
        if tuning.eventual_reads {
            settings.push("eventually consistent reads".to_owned());
        }
        if settings.is_empty() {
            writeln!(out, "  store settings: the library's defaults")?;
        } else {
            writeln!(
                out,
                "  store settings: {} (others default)",
                settings.join(", ")
            )?;
        }
        if let Target::Embedded { .. } = self.target {
            writeln!(
                out,
                "  timings are the embedded database's (redb on this machine), not DynamoDB's; \
                 requests, units and the bill are what DynamoDB would see"
            )?;
        }
        Ok(())
    }

    /// What write-through asked, or would have asked, for the operations of `run`.
    fn write_through(&self, run: &StoreRun) -> WriteThrough {
        match self.direct {
            Some(direct) => WriteThrough::measured(direct),
            None => WriteThrough::computed(&run.ran, self.item_bytes, self.consistent_reads()),
        }
    }

    /// The notes on settings that had no effect, or less than it seems.
    pub fn notes(&self) -> Vec<String> {
        super::notes::notes(self.args, self.runs, self.direct)
    }

    fn render_run(&self, out: &mut String, run: &StoreRun) -> fmt::Result {
        let args = self.args;
        let loaded = &run.loaded;
        let existed = if loaded.existed > 0 {
            format!(" ({} already present)", loaded.existed)
        } else {
            String::new()
        };
        writeln!(
            out,
            "load   {} items inserted{existed} in {:.1?}: {:.0} items/s acknowledged, \
             {:.0} items/s written ({:.1?})",
            loaded.inserted,
            run.load_acked,
            rate(args.items, run.load_acked),
            rate(args.items, run.load_written),
            run.load_written,
        )?;
        let ran = &run.ran;
        let (reads, writes) = (ran.reads.count(), ran.writes.count());
        let not_found = if ran.not_found > 0 {
            format!(" ({} not found)", ran.not_found)
        } else {
            String::new()
        };
        let behind = match args.rate() {
            Some(_) => format!("; at worst {:.1?} behind schedule", ran.behind),
            None => String::new(),
        };
        let mix = match ran.increments.count() {
            0 => format!("{reads} reads{not_found}, {writes} upserts"),
            increments => format!("{increments} increments"),
        };
        writeln!(
            out,
            "run    {} ops in {:.1?}: {:.0} ops/s; {mix}{behind}",
            ran.ops(),
            ran.elapsed,
            rate(ran.ops(), ran.elapsed),
        )?;
        writeln!(
            out,
            "drain  flush {:.1?}, close {:.1?}",
            run.flush_time, run.close_time
        )?;
        writeln!(out)?;
        render_store(out, &run.end.since(&run.before_run), &run.end)?;
        writeln!(out)?;
        if let Some(counted) = &run.counted {
            render_counted(out, counted, run)?;
            writeln!(out)?;
        }
        if let Some(restarted) = &run.restarted {
            render_restart(out, restarted)?;
            writeln!(out)?;
        }
        self.render_cost(out, run)
    }

    /// The headline: what the store asked of DynamoDB per million operations, against what
    /// write-through asked (`--compare direct`) or would have asked for the same operations;
    /// with `--compare direct`, both runs' timings too.
    fn render_versus(&self, out: &mut String, run: &StoreRun) -> fmt::Result {
        let prices = Prices::default();
        let ran = &run.ran;
        let ours = Bill::new(run.metered.units, ran.ops(), &prices);
        let theirs = self.write_through(run);
        let theirs_bill = theirs.bill(&prices);
        writeln!(
            out,
            "dynamodb per million operations (run and final drain), against write-through"
        )?;
        compare_row(out, "", "quickstore", "write-through", "ratio")?;
        let row = compare_figures;
        row(
            out,
            "requests",
            per_million(requests(&run.metered), ran.ops()),
            theirs.requests_per_million_ops(),
            0,
        )?;
        let mine = &ours.units_per_million_ops;
        let their = &theirs_bill.units_per_million_ops;
        // A kind of unit neither side used (no reads in a run of upserts) gets no row.
        for (name, a, b) in [
            ("read units", mine.read, their.read),
            ("write units", mine.write, their.write),
        ] {
            if a + b > 0.0 {
                row(out, name, a, b, 0)?;
            }
        }
        row(
            out,
            "$",
            ours.dollars_per_million_ops,
            theirs_bill.dollars_per_million_ops,
            4,
        )?;
        if let Some(per) = run.writes_per_increment() {
            let direct = self.direct.and_then(Direct::writes_per_increment);
            row(out, "writes per increment", per, direct.unwrap_or(1.0), 4)?;
        }
        let reads = match self.consistent_reads() {
            true => "strongly consistent reads",
            false => "eventually consistent reads",
        };
        let how = match theirs.item_bytes {
            Some(bytes) => {
                let read = units(read_units(bytes, self.consistent_reads()), "read");
                let write = units(write_units(bytes) as f64, "write");
                let each: Vec<String> = [
                    (ran.reads.count(), format!("{read} a GetItem")),
                    (ran.writes.count(), format!("{write} a PutItem")),
                    (ran.increments.count(), format!("{write} an UpdateItem")),
                ]
                .into_iter()
                .filter(|(count, _)| *count > 0)
                .map(|(_, text)| text)
                .collect();
                format!(
                    "computed for the same operations, a request each (items of {bytes} bytes: \
                     {})",
                    each.join(", ")
                )
            }
            None => "measured, the same operations run straight against the backend".to_owned(),
        };
        writeln!(out, "  write-through: {how}")?;
        writeln!(
            out,
            "  on-demand prices: ${} per million read units, ${} per million write units; {reads}",
            prices.read_per_million, prices.write_per_million
        )?;
        if let Some(direct) = self.direct {
            writeln!(out)?;
            self.render_timings(out, run, direct)?;
        }
        Ok(())
    }

    /// The store's and write-through's throughput and latencies side by side (`--compare
    /// direct`), labelled with what they were measured against.
    fn render_timings(&self, out: &mut String, run: &StoreRun, direct: &Direct) -> fmt::Result {
        let (ran, theirs) = (&run.ran, &direct.ran);
        let against = match self.target {
            Target::Embedded { .. } => {
                "against the embedded database (redb on this machine), not DynamoDB".to_owned()
            }
            Target::DynamoDb { .. } => format!("against the {}", self.target),
        };
        writeln!(out, "timings, {against}")?;
        compare_row(out, "", "quickstore", "write-through", "ratio")?;
        let row = compare_figures;
        row(
            out,
            "ops/s",
            rate(ran.ops(), ran.elapsed),
            rate(theirs.ops(), theirs.elapsed),
            0,
        )?;
        let us = |r: &Recorder, pick: fn(&Summary) -> Duration| {
            r.summary().map_or(0.0, |s| pick(&s).as_secs_f64() * 1e6)
        };
        // Only the kinds of operation the run made: no upsert rows for a run of reads.
        let kinds = [
            ("read", &ran.reads, &theirs.reads),
            ("upsert", &ran.writes, &theirs.writes),
            ("increment", &ran.increments, &theirs.increments),
        ];
        for (name, pick) in [
            ("p50", (|s: &Summary| s.p50) as fn(&Summary) -> Duration),
            ("p99", |s: &Summary| s.p99),
        ] {
            for (kind, ours, theirs) in kinds {
                if ours.count() + theirs.count() > 0 {
                    let label = format!("{kind} {name} (µs)");
                    row(out, &label, us(ours, pick), us(theirs, pick), 1)?;
                }
            }
        }
        Ok(())
    }

    /// The DynamoDB bill of the run and drain, as on-demand capacity would charge it.
    fn render_cost(&self, out: &mut String, run: &StoreRun) -> fmt::Result {
        let prices = Prices::default();
        let metered = &run.metered;
        let (bill, other_bill) = run.bills(self.consistent_reads(), &prices);
        let (this, that) = if self.consistent_reads() {
            ("strongly consistent reads", "eventually consistent reads")
        } else {
            ("eventually consistent reads", "strongly consistent reads")
        };
        writeln!(
            out,
            "dynamodb (run+drain, on-demand at ${}/M read units, ${}/M write units)",
            prices.read_per_million, prices.write_per_million
        )?;
        writeln!(
            out,
            "  requests: {} reads for {} items, {} writes for {} items",
            metered.read_requests,
            metered.items_read,
            metered.write_requests,
            metered.items_written
        )?;
        for (name, bill) in [(this, &bill), (that, &other_bill)] {
            writeln!(
                out,
                "  {name:<28} {:>10.1} read + {:>10.1} write units; per million ops {:>12.0} + \
                 {:>12.0} units, ${:.4}",
                bill.units.read,
                bill.units.write,
                bill.units_per_million_ops.read,
                bill.units_per_million_ops.write,
                bill.dollars_per_million_ops
            )?;
        }
        Ok(())
    }

    /// The cost of each flush interval side by side, and write-through's when compared.
    fn render_intervals(&self, out: &mut String) -> fmt::Result {
        let prices = Prices::default();
        writeln!(
            out,
            "cost by flush interval (run+drain, per million ops, on-demand prices)"
        )?;
        writeln!(
            out,
            "{:<16} {:>12} {:>10} {:>12} {:>14} {:>14} {:>10} {:>16}",
            "flush interval",
            "ops/s",
            "requests",
            "writes/mut",
            "read units",
            "write units",
            "$",
            "vs write-through"
        )?;
        for run in self.runs {
            let (bill, _) = run.bills(self.consistent_reads(), &prices);
            let theirs = self.write_through(run).bill(&prices);
            let ratio = ratio_text(bill.dollars_per_million_ops, theirs.dollars_per_million_ops);
            let requests = per_million(requests(&run.metered), run.ran.ops());
            writeln!(
                out,
                "{:<16} {:>12.0} {:>10.0} {:>12} {:>14.0} {:>14.0} {:>10.4} {ratio:>16}",
                interval_name(run.flush_interval),
                rate(run.ran.ops(), run.ran.elapsed),
                requests,
                per_mutation(&run.end.since(&run.before_run)),
                bill.units_per_million_ops.read,
                bill.units_per_million_ops.write,
                bill.dollars_per_million_ops,
            )?;
        }
        // Write-through's row: measured, or computed for the first run's operations (its
        // cost per operation is the same for every run).
        if let Some(first) = self.runs.first() {
            let theirs = self.write_through(first);
            let bill = theirs.bill(&prices);
            let ops_per_sec = match self.direct {
                Some(direct) => format!("{:.0}", rate(direct.ran.ops(), direct.ran.elapsed)),
                None => "-".to_owned(),
            };
            writeln!(
                out,
                "{:<16} {:>12} {:>10.0} {:>12} {:>14.0} {:>14.0} {:>10.4} {:>16}",
                "write-through",
                ops_per_sec,
                theirs.requests_per_million_ops(),
                "1.000",
                bill.units_per_million_ops.read,
                bill.units_per_million_ops.write,
                bill.dollars_per_million_ops,
                ratio_text(1.0, 1.0),
            )?;
        }
        Ok(())
    }

    /// What `--plot` draws: each store run, and the direct run.
    pub fn series(&self) -> Vec<Series<'_>> {
        let mut series: Vec<Series<'_>> = self
            .runs
            .iter()
            .map(|run| Series {
                name: if self.runs.len() > 1 {
                    format!("quickstore, flush {}", interval_name(run.flush_interval))
                } else {
                    "quickstore".to_owned()
                },
                ran: &run.ran,
            })
            .collect();
        if let Some(direct) = self.direct {
            series.push(Series {
                name: "direct".to_owned(),
                ran: &direct.ran,
            });
        }
        series
    }
}

/// The store's final drain beside a direct `BatchWriteItem` loop writing as many items.
fn render_drain_compare(out: &mut String, drained: &Drained, batch: &Drained) -> fmt::Result {
    writeln!(
        out,
        "compare: the final flush and close against a direct BatchWriteItem loop ({} items per \
         request, {BATCH_LOOP_IN_FLIGHT} in flight)",
        quickstore::backend::MAX_BATCH_WRITE_ITEMS
    )?;
    compare_row(out, "", "quickstore", "batch loop", "ratio")?;
    let per_sec = |d: &Drained| d.items as f64 / d.secs.max(f64::MIN_POSITIVE);
    for (name, a, b, digits) in [
        ("items", drained.items as f64, batch.items as f64, 0),
        (
            "requests",
            drained.requests as f64,
            batch.requests as f64,
            0,
        ),
        ("seconds", drained.secs, batch.secs, 3),
        ("items/s", per_sec(drained), per_sec(batch), 0),
    ] {
        compare_figures(out, name, a, b, digits)?;
    }
    Ok(())
}

/// A row of a side-by-side comparison.
fn compare_row(out: &mut String, name: &str, a: &str, b: &str, ratio: &str) -> fmt::Result {
    writeln!(out, "{name:<24} {a:>14} {b:>14} {ratio:>9}")
}

/// A row of two figures with `digits` decimals, and their ratio.
fn compare_figures(out: &mut String, name: &str, a: f64, b: f64, digits: usize) -> fmt::Result {
    let (a_text, b_text) = (format!("{a:.digits$}"), format!("{b:.digits$}"));
    compare_row(out, name, &a_text, &b_text, &ratio_text(a, b))
}

/// `a / b` as a ratio people read at a glance: `83x`, `2.4x`, `0.35x`, and below a tenth as a
/// fraction, `1/710x`, rather than a rounded `0.00`; `0` when `a` is none, `-` when `b` is.
pub fn ratio_text(a: f64, b: f64) -> String {
    if !a.is_finite() || !b.is_finite() || b <= 0.0 {
        return "-".to_owned();
    }
    let ratio = a / b;
    match ratio {
        r if r <= 0.0 => "0".to_owned(),
        r if r >= 100.0 => format!("{r:.0}x"),
        r if r >= 10.0 => format!("{r:.1}x"),
        r if r >= 0.1 => format!("{r:.2}x"),
        r => format!("1/{}x", two_figures(1.0 / r)),
    }
}

/// `value` rounded to two significant figures, as a whole number: 714 -> 710, 29.8 -> 30.
fn two_figures(value: f64) -> String {
    if value < 100.0 {
        return format!("{value:.0}");
    }
    let scale = 10f64.powi(value.log10().floor() as i32 - 1);
    format!("{:.0}", (value / scale).round() * scale)
}

/// A latency in microseconds, with the decimals its size deserves: `0.34`, `17.9`, `10200`.
pub fn micros(latency: Duration) -> String {
    let us = latency.as_secs_f64() * 1e6;
    match us {
        us if us < 1.0 => format!("{us:.2}"),
        us if us < 100.0 => format!("{us:.1}"),
        us => format!("{us:.0}"),
    }
}

/// What the store made of the run's writes: the items that reached the backend for them, and
/// in how many requests.
fn render_coalescing(out: &mut String, run: &StoreRun) -> fmt::Result {
    let during = run.end.since(&run.before_run);
    if during.mutations == 0 {
        return writeln!(out, "coalescing: the run wrote nothing");
    }
    let (kind, one) = match run.ran.increments.count() {
        0 => ("upserts", "upsert"),
        _ => ("increments", "increment"),
    };
    let per_request = match during.write_requests {
        0 => String::new(),
        requests => format!(
            " ({:.1} items each)",
            during.items_written as f64 / requests as f64
        ),
    };
    let interval = match run.flush_interval {
        Some(interval) => format!("{interval:?}"),
        None => format!("{DEFAULT_FLUSH_INTERVAL:?}, the default"),
    };
    writeln!(
        out,
        "coalescing: {} {kind} reached the backend as {} item writes ({:.3} per {one}) in {} \
         write requests{per_request}; flush interval {interval}",
        during.mutations,
        during.items_written,
        per_mutation_value(&during),
        during.write_requests,
    )
}

/// Request units as text: `1 read unit`, `0.5 read units`, `2 write units`.
fn units(count: f64, kind: &str) -> String {
    if count == 1.0 {
        format!("1 {kind} unit")
    } else {
        format!("{count} {kind} units")
    }
}

/// Items written per mutation.
fn per_mutation_value(stats: &Stats) -> f64 {
    stats.items_written as f64 / (stats.mutations as f64).max(1.0)
}

/// The latency percentiles of each kind of operation the run made, all in microseconds.
fn render_latencies(out: &mut String, ran: &super::Ran) -> fmt::Result {
    let rows: Vec<(&str, Summary)> = [
        ("read", &ran.reads),
        ("upsert", &ran.writes),
        ("increment", &ran.increments),
    ]
    .into_iter()
    .filter_map(|(name, recorder)| Some((name, recorder.summary()?)))
    .collect();
    if rows.is_empty() {
        return writeln!(out, "latency: no operations ran");
    }
    writeln!(
        out,
        "{:<12} {:>9} {:>10} {:>10} {:>10} {:>10} {:>10}",
        "latency (µs)", "count", "mean", "p50", "p99", "p99.9", "max"
    )?;
    for (name, summary) in rows {
        writeln!(
            out,
            "{name:<12} {:>9} {:>10} {:>10} {:>10} {:>10} {:>10}",
            summary.count,
            micros(summary.mean),
            micros(summary.p50),
            micros(summary.p99),
            micros(summary.p999),
            micros(summary.max),
        )?;
    }
    Ok(())
}

/// The increments acknowledged against what the table's counters gained, and the write
/// requests they took (`--workload k`).
fn render_counted(out: &mut String, counted: &Counted, run: &StoreRun) -> fmt::Result {
    let verdict = match counted.matches() {
        true => "they match",
        false => "MISMATCH",
    };
    writeln!(
        out,
        "counters  {} increments acknowledged ({} measured), the `{COUNTER}` counters in the \
         table gained {}: {verdict}",
        counted.acknowledged, counted.measured, counted.in_table
    )?;
    let requests = run.end.since(&run.before_run).write_requests;
    match run.writes_per_increment() {
        Some(per) => writeln!(
            out,
            "          writes per increment {per:.4} ({requests} write requests for {} \
             increments, run+drain)",
            counted.measured
        ),
        None => writeln!(out, "          writes per increment -"),
    }
}

fn render_restart(out: &mut String, restarted: &Restarted) -> fmt::Result {
    let percent = |ratio: f64| format!("{:.1}%", ratio * 100.0);
    let of_before = if restarted.before > 0.0 {
        format!(" ({:.2} of before)", restarted.warm / restarted.before)
    } else {
        String::new()
    };
    writeln!(
        out,
        "restart  hit ratio {} in the last second before close; in the first second after \
         open {} warm{of_before}, {} cold",
        percent(restarted.before),
        percent(restarted.warm),
        percent(restarted.cold),
    )?;
    writeln!(
        out,
        "         the warm store prefetched {} keys in that second, {} of them then read",
        restarted.prefetched, restarted.prefetch_hits
    )
}

fn render_store(out: &mut String, run: &Stats, total: &Stats) -> fmt::Result {
    writeln!(out, "{:<16} {:>10} {:>10}", "store", "run+drain", "total")?;
    let rows: [(&str, u64, u64); 8] = [
        ("hits", run.hits, total.hits),
        ("misses", run.misses, total.misses),
        ("backend reads", run.backend_reads, total.backend_reads),
        ("read requests", run.read_requests, total.read_requests),
        ("mutations", run.mutations, total.mutations),
        ("items written", run.items_written, total.items_written),
        ("write requests", run.write_requests, total.write_requests),
        ("retries", run.retries, total.retries),
    ];
    for (name, run, total) in rows {
        writeln!(out, "{name:<16} {run:>10} {total:>10}")?;
    }
    writeln!(
        out,
        "{:<16} {:>9.1}% {:>9.1}%",
        "hit ratio",
        run.hit_ratio() * 100.0,
        total.hit_ratio() * 100.0
    )?;
    writeln!(
        out,
        "{:<16} {:>10} {:>10}",
        "keys/read req",
        keys_per_read(run),
        keys_per_read(total)
    )?;
    writeln!(
        out,
        "{:<16} {:>10} {:>10}",
        "reads/mutation",
        reads_per_mutation(run),
        reads_per_mutation(total)
    )?;
    writeln!(
        out,
        "{:<16} {:>10} {:>10}",
        "writes/mutation",
        per_mutation(run),
        per_mutation(total)
    )?;
    writeln!(
        out,
        "{:<16} {:>10} {:>10}",
        "mutations/req",
        per_request(run),
        per_request(total)
    )?;
    writeln!(
        out,
        "at end: {} pending, {} rejected writes, {} entries cached ({} bytes)",
        total.pending, total.rejected_writes, total.cached_entries, total.cached_bytes
    )
}

/// A journal durability as the report names it.
fn durability_name(durability: Option<Durability>) -> String {
    match durability {
        Some(Durability::Interval(interval)) => format!("synced every {interval:?}"),
        _ => "each mutation synced".to_owned(),
    }
}

/// The report as JSON: what `--json` prints.
#[derive(Debug, Serialize)]
struct JsonReport {
    workload: Option<String>,
    items: u64,
    value_size: usize,
    /// Operations asked for; `null` for a run of a duration.
    ops: Option<u64>,
    duration_secs: Option<f64>,
    warmup_secs: Option<f64>,
    target_rate: Option<f64>,
    tasks: u32,
    read_ratio: f64,
    distribution: String,
    seed: u64,
    cache_bytes: Option<u64>,
    settings: JsonSettings,
    load: JsonLoad,
    run: JsonRun,
    latency_us: JsonLatencies,
    drain: JsonDrain,
    /// The store's counters over the run and drain (`Stats::since`), gauges at the end.
    store: Stats,
    dynamodb: JsonDynamoDb,
    /// With `--compare direct`: the same run phase straight against the backend.
    compare_direct: Option<JsonDirect>,
    /// With `--compare batch`: a direct `BatchWriteItem` loop writing as many items as the
    /// largest drain.
    compare_batch: Option<Drained>,
    /// With `--restart`: hit ratios in the last second before a close and the first after
    /// an open, warm and cold.
    restart: Option<Restarted>,
    /// With `--workload k`: increments the store acknowledged from the end of the load phase
    /// to its close (the warm-up's included).
    increments_acknowledged: Option<u64>,
    /// With `--workload k`: what the counters of all the items in the table gained over the
    /// same time, read back after the close; equal to `increments_acknowledged`, or the run
    /// fails.
    increments_in_table: Option<i64>,
    /// With `--workload k`: the store's write requests over the run and drain, divided by the
    /// increments acknowledged in the run.
    writes_per_increment: Option<f64>,
    /// What write-through asked (`--compare direct`) or would have asked (computed) for the
    /// same operations: a request each.
    write_through: JsonWriteThrough,
    /// Settings that had no effect on the run, or less than it seems, as sentences.
    notes: Vec<String>,
}

/// Write-through's requests and bill.
#[derive(Debug, Serialize)]
struct JsonWriteThrough {
    /// Whether measured (`--compare direct`) rather than computed.
    measured: bool,
    /// The item size the figures were computed for; `null` when measured.
    item_bytes: Option<u64>,
    requests: u64,
    requests_per_million_ops: f64,
    bill: Bill,
}

/// The store's settings; `null` for the library's default.
#[derive(Debug, Serialize)]
struct JsonSettings {
    flush_interval_secs: Option<f64>,
    shards: Option<u64>,
    batch_threshold: Option<u64>,
    max_pending: Option<u64>,
    max_pending_bytes: Option<u64>,
    journal: Option<String>,
    /// `always`, or the longest time between syncs in seconds; `null` without a journal.
    durability: Option<serde_json::Value>,
    consistent_reads: bool,
    partition_key: String,
}

#[derive(Debug, Serialize)]
struct JsonDirect {
    run: JsonRun,
    latency_us: JsonLatencies,
    metered: Metered,
    bill: Bill,
    /// With `--workload k`: write requests per increment (one `UpdateItem` each).
    writes_per_increment: Option<f64>,
}

#[derive(Debug, Serialize)]
struct JsonLoad {
    inserted: u64,
    existed: u64,
    acknowledged_secs: f64,
    written_secs: f64,
}

#[derive(Debug, Serialize)]
struct JsonRun {
    ops: u64,
    secs: f64,
    ops_per_sec: f64,
    reads: u64,
    upserts: u64,
    increments: u64,
    not_found: u64,
    /// With a target rate: how late, at worst, an operation started against its schedule.
    behind_schedule_secs: f64,
    throughput: JsonThroughput,
}

/// Operations per second over consecutive windows of the run.
#[derive(Debug, Serialize)]
struct JsonThroughput {
    window_secs: f64,
    ops_per_sec: Vec<f64>,
}

impl From<&Timeline> for JsonThroughput {
    fn from(timeline: &Timeline) -> Self {
        let (window, ops_per_sec) = timeline.rates(MAX_POINTS);
        Self {
            window_secs: window.as_secs_f64(),
            ops_per_sec,
        }
    }
}

impl From<&super::Ran> for JsonRun {
    fn from(ran: &super::Ran) -> Self {
        Self {
            ops: ran.ops(),
            secs: ran.elapsed.as_secs_f64(),
            ops_per_sec: rate(ran.ops(), ran.elapsed),
            reads: ran.reads.count(),
            upserts: ran.writes.count(),
            increments: ran.increments.count(),
            not_found: ran.not_found,
            behind_schedule_secs: ran.behind.as_secs_f64(),
            throughput: JsonThroughput::from(&ran.timeline),
        }
    }
}

#[derive(Debug, Serialize)]
struct JsonLatencies {
    read: Option<JsonLatency>,
    upsert: Option<JsonLatency>,
    increment: Option<JsonLatency>,
}

impl From<&super::Ran> for JsonLatencies {
    fn from(ran: &super::Ran) -> Self {
        Self {
            read: ran.reads.summary().map(JsonLatency::from),
            upsert: ran.writes.summary().map(JsonLatency::from),
            increment: ran.increments.summary().map(JsonLatency::from),
        }
    }
}

#[derive(Debug, Serialize)]
struct JsonLatency {
    count: u64,
    mean: f64,
    p50: f64,
    p99: f64,
    p999: f64,
    max: f64,
}

impl From<Summary> for JsonLatency {
    fn from(s: Summary) -> Self {
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        Self {
            count: s.count,
            mean: us(s.mean),
            p50: us(s.p50),
            p99: us(s.p99),
            p999: us(s.p999),
            max: us(s.max),
        }
    }
}

#[derive(Debug, Serialize)]
struct JsonDrain {
    flush_secs: f64,
    close_secs: f64,
    /// Items written by the final flush and close.
    items: u64,
    /// Write requests sent by them.
    requests: u64,
}

#[derive(Debug, Serialize)]
struct JsonDynamoDb {
    metered: Metered,
    /// Read and write requests per million operations of the run.
    requests_per_million_ops: f64,
    prices: Prices,
    /// The bill as the store read.
    bill: Bill,
    /// The bill had reads been of the other consistency.
    bill_other_consistency: Bill,
    consistent_reads: bool,
}

impl Report<'_> {
    /// The report as a JSON document: one object, or an array of them (one per flush
    /// interval) when several were asked for.
    pub fn json(&self) -> serde_json::Result<String> {
        let reports: Vec<JsonReport> = self.runs.iter().map(|run| self.json_run(run)).collect();
        match reports.as_slice() {
            [one] => serde_json::to_string_pretty(one),
            several => serde_json::to_string_pretty(several),
        }
    }

    fn json_run(&self, run: &StoreRun) -> JsonReport {
        let args = self.args;
        let tuning = &args.tuning;
        let prices = Prices::default();
        let (bill, bill_other_consistency) = run.bills(self.consistent_reads(), &prices);
        let write_through = self.write_through(run);
        let secs = |d: Duration| d.as_secs_f64();
        JsonReport {
            workload: args
                .workload
                .and_then(|w| w.to_possible_value())
                .map(|v| v.get_name().to_owned()),
            items: args.items,
            value_size: args.value_size,
            ops: args.ops,
            duration_secs: args.duration.map(secs),
            warmup_secs: args.warmup.map(secs),
            target_rate: args.rate(),
            tasks: args.tasks,
            read_ratio: args.read_ratio(),
            distribution: args.distribution().to_string(),
            seed: args.seed,
            cache_bytes: tuning.cache_bytes,
            settings: JsonSettings {
                flush_interval_secs: run.flush_interval.map(secs),
                shards: tuning.shards,
                batch_threshold: tuning.batch_threshold,
                max_pending: tuning.max_pending,
                max_pending_bytes: tuning.max_pending_bytes,
                journal: tuning.journal.as_ref().map(|d| d.display().to_string()),
                durability: tuning.journal.as_ref().map(|_| match tuning.durability {
                    Some(Durability::Interval(interval)) => secs(interval).into(),
                    _ => "always".into(),
                }),
                consistent_reads: self.consistent_reads(),
                partition_key: args.backend.partition_key().to_owned(),
            },
            load: JsonLoad {
                inserted: run.loaded.inserted,
                existed: run.loaded.existed,
                acknowledged_secs: secs(run.load_acked),
                written_secs: secs(run.load_written),
            },
            run: JsonRun::from(&run.ran),
            latency_us: JsonLatencies::from(&run.ran),
            drain: JsonDrain {
                flush_secs: secs(run.flush_time),
                close_secs: secs(run.close_time),
                items: run.drained.items,
                requests: run.drained.requests,
            },
            store: run.end.since(&run.before_run),
            dynamodb: JsonDynamoDb {
                metered: run.metered,
                requests_per_million_ops: per_million(requests(&run.metered), run.ran.ops()),
                prices,
                bill,
                bill_other_consistency,
                consistent_reads: self.consistent_reads(),
            },
            compare_direct: self.direct.map(|direct| JsonDirect {
                run: JsonRun::from(&direct.ran),
                latency_us: JsonLatencies::from(&direct.ran),
                metered: direct.metered,
                bill: direct.bill(&prices),
                writes_per_increment: direct.writes_per_increment(),
            }),
            compare_batch: self.batch.copied(),
            restart: run.restarted,
            increments_acknowledged: run.counted.map(|counted| counted.acknowledged),
            increments_in_table: run.counted.map(|counted| counted.in_table),
            writes_per_increment: run.writes_per_increment(),
            write_through: JsonWriteThrough {
                measured: write_through.measured,
                item_bytes: write_through.item_bytes,
                requests: write_through.requests,
                requests_per_million_ops: write_through.requests_per_million_ops(),
                bill: write_through.bill(&prices),
            },
            notes: self.notes(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_read_at_a_glance() {
        assert_eq!(ratio_text(172_621.0, 2210.0), "78.1x");
        assert_eq!(ratio_text(1_726_210.0, 2210.0), "781x");
        assert_eq!(ratio_text(316_618.0, 12_730.0), "24.9x");
        assert_eq!(ratio_text(3.15, 1.0), "3.15x");
        assert_eq!(ratio_text(3490.0, 9955.0), "0.35x");
        assert_eq!(ratio_text(0.0125, 0.3723), "1/30x");
        assert_eq!(ratio_text(140.0, 100_000.0), "1/710x");
        assert_eq!(ratio_text(1.5, 4780.0), "1/3200x");
        assert_eq!(ratio_text(0.0, 90_045.0), "0");
        assert_eq!(ratio_text(5.0, 0.0), "-");
        assert_eq!(ratio_text(f64::NAN, 1.0), "-");
    }

    #[test]
    fn latencies_are_microseconds() {
        assert_eq!(micros(Duration::from_nanos(341)), "0.34");
        assert_eq!(micros(Duration::from_nanos(17_900)), "17.9");
        assert_eq!(micros(Duration::from_micros(10_200)), "10200");
    }
}
