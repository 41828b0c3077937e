//! End to end: `quickstore bench` on an embedded database, its `--metrics` JSON and the logs
//! `RUST_LOG` lets through to stderr.

use std::process::{Command, Output};

use anyhow::{ensure, Context as _};

/// A small benchmark run, with `RUST_LOG` set to `log` (or unset).
fn bench(extra: &[&str], log: Option<&str>) -> anyhow::Result<Output> {
    let mut command = Command::new(env!("CARGO_BIN_EXE_quickstore"));
    command
        .args([
            "bench", "--items", "50", "--ops", "200", "--tasks", "2", "--quiet",
        ])
        .args(extra)
        .env_remove("RUST_LOG");
    if let Some(log) = log {
        command.env("RUST_LOG", log);
    }
    command.output().context("cannot run quickstore")
}

#[test]
fn metrics_prints_the_final_stats_as_json() -> anyhow::Result<()> {
    let run = bench(&["--metrics"], None)?;
    let stdout = String::from_utf8_lossy(&run.stdout);
    ensure!(run.status.success(), "{run:?}");
    ensure!(stdout.contains("quickstore bench on the"), "{stdout}");
    let last = stdout.lines().last().context("no output")?;
    let stats: serde_json::Value =
        serde_json::from_str(last).with_context(|| format!("the last line is not JSON: {last}"))?;
    let number = |field: &str| {
        stats[field]
            .as_u64()
            .with_context(|| format!("{field}: {stats}"))
    };
    ensure!(number("pending")? == 0, "{stats}");
    ensure!(number("rejected_writes")? == 0, "{stats}");
    // 50 inserts, then 200 operations of which some are upserts; every read is a hit or a miss.
    let mutations = number("mutations")?;
    ensure!((50..=250).contains(&mutations), "{stats}");
    ensure!(
        mutations + number("hits")? + number("misses")? >= 250,
        "{stats}"
    );
    ensure!(number("items_written")? >= 50, "{stats}");
    ensure!(stats["stream_lag"].is_null(), "{stats}");

    // Without the flag, no JSON.
    let plain = bench(&[], None)?;
    ensure!(plain.status.success(), "{plain:?}");
    let stdout = String::from_utf8_lossy(&plain.stdout);
    ensure!(!stdout.contains("\"mutations\""), "{stdout}");
    Ok(())
}

#[test]
fn rust_log_sends_the_library_logs_to_stderr() -> anyhow::Result<()> {
    let quiet = bench(&[], None)?;
    ensure!(quiet.status.success(), "{quiet:?}");
    let stderr = String::from_utf8_lossy(&quiet.stderr);
    ensure!(stderr.is_empty(), "only warnings by default: {stderr}");

    let debug = bench(&[], Some("quickstore=debug"))?;
    ensure!(debug.status.success(), "{debug:?}");
    let stderr = String::from_utf8_lossy(&debug.stderr);
    ensure!(stderr.contains("flusher stopped"), "{stderr}");
    // Spans show as they close, with the fields recorded at their end.
    ensure!(stderr.contains("flush_batch"), "{stderr}");
    ensure!(stderr.contains("outcome=\"written\""), "{stderr}");
    ensure!(
        stderr.contains("close{pending=0 outcome=\"ok\"}"),
        "{stderr}"
    );
    // The report stays on stdout, apart from the logs.
    ensure!(!String::from_utf8_lossy(&debug.stdout).contains("DEBUG"));
    Ok(())
}

/// The report bills the run the way DynamoDB's on-demand capacity would, for both read
/// consistencies, from the requests the store actually made.
#[test]
fn the_report_shows_the_dynamodb_bill() -> anyhow::Result<()> {
    let run = bench(&[], None)?;
    ensure!(run.status.success(), "{run:?}");
    let stdout = String::from_utf8_lossy(&run.stdout);
    ensure!(
        stdout.contains("dynamodb (run+drain, on-demand"),
        "{stdout}"
    );
    let line = |name: &str| {
        stdout
            .lines()
            .find(|line| line.trim_start().starts_with(name))
            .map(str::to_owned)
            .with_context(|| format!("no `{name}` line in {stdout}"))
    };
    let strong = line("strongly consistent reads")?;
    let eventual = line("eventually consistent reads")?;
    ensure!(
        strong.contains("write units") && strong.contains('$'),
        "{strong}"
    );
    ensure!(eventual.contains("write units"), "{eventual}");
    Ok(())
}

/// `--json` prints the whole report as one document with the documented fields, and its bill
/// is the metered units at the listed prices.
#[test]
fn json_prints_the_whole_report() -> anyhow::Result<()> {
    let run = bench(&["--json", "--workload", "a"], None)?;
    ensure!(run.status.success(), "{run:?}");
    let report: serde_json::Value = serde_json::from_slice(&run.stdout)
        .with_context(|| String::from_utf8_lossy(&run.stdout).into_owned())?;
    for field in [
        "workload",
        "items",
        "ops",
        "tasks",
        "read_ratio",
        "distribution",
        "seed",
        "load",
        "run",
        "latency_us",
        "drain",
        "store",
        "dynamodb",
    ] {
        ensure!(
            !report[field].is_null() || field == "cache_bytes",
            "no {field}: {report}"
        );
    }
    ensure!(
        report["workload"] == "a" && report["read_ratio"] == 0.5,
        "{report}"
    );
    let run_ops = report["run"]["ops"].as_u64().context("run.ops")?;
    let reads = report["run"]["reads"].as_u64().context("run.reads")?;
    let upserts = report["run"]["upserts"].as_u64().context("run.upserts")?;
    ensure!(run_ops == reads + upserts, "{report}");
    for kind in ["read", "upsert"] {
        let latency = &report["latency_us"][kind];
        let at = |q: &str| latency[q].as_f64().with_context(|| format!("{kind}.{q}"));
        ensure!(
            at("p50")? <= at("p99")? && at("p99")? <= at("p999")? * 1.001,
            "{latency}"
        );
        ensure!(at("p999")? <= at("max")? * 1.001, "{latency}");
    }
    let dynamodb = &report["dynamodb"];
    let number = |v: &serde_json::Value| v.as_f64().context("not a number");
    let units = &dynamodb["bill"]["units"];
    let prices = &dynamodb["prices"];
    let expected = (number(&units["read"])? * number(&prices["read_per_million"])?
        + number(&units["write"])? * number(&prices["write_per_million"])?)
        / 1e6;
    let dollars = number(&dynamodb["bill"]["dollars"])?;
    ensure!((dollars - expected).abs() < 1e-12, "{dynamodb}");
    ensure!(
        number(&dynamodb["metered"]["units"]["write"])? == number(&units["write"])?,
        "{dynamodb}"
    );
    Ok(())
}

/// `--compare direct` runs the same operations straight against the backend and reports both:
/// the direct run makes one request per operation and bills every operation.
#[test]
fn compare_direct_runs_the_same_operations_write_through() -> anyhow::Result<()> {
    let run = bench(&["--json", "--workload", "a", "--compare", "direct"], None)?;
    ensure!(run.status.success(), "{run:?}");
    let report: serde_json::Value = serde_json::from_slice(&run.stdout)
        .with_context(|| String::from_utf8_lossy(&run.stdout).into_owned())?;
    let direct = &report["compare_direct"];
    let number = |v: &serde_json::Value| v.as_f64().with_context(|| format!("{v}"));
    ensure!(direct["run"]["ops"] == report["run"]["ops"], "{report}");
    ensure!(
        direct["run"]["reads"] == report["run"]["reads"],
        "the same mix: {report}"
    );
    let ops = number(&direct["run"]["ops"])?;
    let metered = &direct["metered"];
    let requests = number(&metered["read_requests"])? + number(&metered["write_requests"])?;
    ensure!(requests == ops, "one request per operation: {direct}");
    // Items of about 200 bytes: one unit per read and per write.
    let units = number(&metered["units"]["read"])? + number(&metered["units"]["write"])?;
    ensure!(units == ops, "{direct}");
    let store_requests = number(&report["dynamodb"]["metered"]["write_requests"])?;
    ensure!(store_requests < requests, "{report}");

    let text = bench(&["--workload", "a", "--compare", "direct"], None)?;
    let stdout = String::from_utf8_lossy(&text.stdout);
    ensure!(stdout.contains("mutations/req"), "{stdout}");
    ensure!(
        stdout.contains("write-through: measured, the same operations"),
        "{stdout}"
    );
    ensure!(
        stdout.contains(
            "timings, against the embedded database (redb on this machine), not DynamoDB"
        ),
        "the embedded database's timings are labelled as such: {stdout}"
    );
    Ok(())
}

/// The report's new fields: the store's settings, the run's throughput over time.
#[test]
fn json_reports_settings_and_throughput_over_time() -> anyhow::Result<()> {
    let journal = tempfile::tempdir()?;
    let journal_dir = journal.path().to_str().context("a UTF-8 path")?;
    let run = bench(
        &[
            "--json",
            "--shards",
            "4",
            "--batch-threshold",
            "500",
            "--flush-interval",
            "250ms",
            "--journal",
            journal_dir,
            "--durability",
            "10ms",
            "--eventual-reads",
            "--partition-key",
            "pk",
        ],
        None,
    )?;
    ensure!(run.status.success(), "{run:?}");
    let report: serde_json::Value = serde_json::from_slice(&run.stdout)?;
    let settings = &report["settings"];
    ensure!(settings["shards"] == 4, "{settings}");
    ensure!(settings["batch_threshold"] == 500, "{settings}");
    ensure!(settings["flush_interval_secs"] == 0.25, "{settings}");
    ensure!(settings["journal"] == journal_dir, "{settings}");
    ensure!(settings["durability"] == 0.01, "{settings}");
    ensure!(settings["consistent_reads"] == false, "{settings}");
    ensure!(settings["partition_key"] == "pk", "{settings}");
    let throughput = &report["run"]["throughput"];
    let window = throughput["window_secs"].as_f64().context("window_secs")?;
    let rates = throughput["ops_per_sec"]
        .as_array()
        .context("ops_per_sec")?;
    ensure!(window > 0.0 && !rates.is_empty(), "{throughput}");
    // Every window but the last is whole: rate x window counts every operation but those.
    let counted: f64 = rates.iter().filter_map(|r| r.as_f64()).sum::<f64>() * window;
    let ops = report["run"]["ops"].as_f64().context("ops")?;
    ensure!(counted >= ops * 0.999, "{counted} of {ops}: {throughput}");
    Ok(())
}

/// `--duration` runs for a time instead of a number of operations (after an unmeasured
/// warm-up), and `--rate` paces the operations: a run of 0.5 s at 200 ops/s makes about 100,
/// never more than the schedule allows.
#[test]
fn duration_and_rate_bound_the_run() -> anyhow::Result<()> {
    let run = Command::new(env!("CARGO_BIN_EXE_quickstore"))
        .args([
            "bench",
            "--items",
            "50",
            "--tasks",
            "2",
            "--quiet",
            "--json",
            "--duration",
            "500ms",
            "--warmup",
            "100ms",
            "--rate",
            "200",
        ])
        .output()?;
    ensure!(run.status.success(), "{run:?}");
    let report: serde_json::Value = serde_json::from_slice(&run.stdout)?;
    ensure!(report["duration_secs"] == 0.5, "{report}");
    ensure!(report["warmup_secs"] == 0.1, "{report}");
    ensure!(report["target_rate"] == 200.0, "{report}");
    let ops = report["run"]["ops"].as_u64().context("run.ops")?;
    // Two tasks, each starting an operation every 10 ms from time 0 until the deadline.
    ensure!(ops > 0 && ops <= 102, "{ops} ops: {report}");
    let secs = report["run"]["secs"].as_f64().context("run.secs")?;
    ensure!(secs >= 0.5, "{report}");
    Ok(())
}

/// Several flush intervals run the workload once each: `--json` prints one report per
/// interval, and the text ends with their costs side by side, write-through's below.
#[test]
fn several_flush_intervals_compare_their_cost() -> anyhow::Result<()> {
    let args = [
        "--workload",
        "a",
        "--flush-interval",
        "50ms,1s",
        "--compare",
        "direct",
    ];
    let run = bench(&[&args[..], &["--json"]].concat(), None)?;
    ensure!(run.status.success(), "{run:?}");
    let reports: serde_json::Value = serde_json::from_slice(&run.stdout)?;
    let reports = reports.as_array().context("an array of reports")?;
    ensure!(reports.len() == 2, "{reports:?}");
    ensure!(
        reports[0]["settings"]["flush_interval_secs"] == 0.05,
        "{reports:?}"
    );
    ensure!(
        reports[1]["settings"]["flush_interval_secs"] == 1.0,
        "{reports:?}"
    );
    ensure!(
        reports.iter().all(|r| !r["compare_direct"].is_null()),
        "{reports:?}"
    );

    let text = bench(&args, None)?;
    ensure!(text.status.success(), "{text:?}");
    let stdout = String::from_utf8_lossy(&text.stdout);
    let table = stdout
        .split("cost by flush interval")
        .nth(1)
        .with_context(|| format!("no cost table: {stdout}"))?;
    for row in ["50ms", "1s", "write-through"] {
        ensure!(
            table.lines().any(|line| line.starts_with(row)),
            "no {row} row: {table}"
        );
    }
    Ok(())
}

/// `--plot` draws both runs' latency distributions and throughput into an SVG file.
#[test]
fn plot_draws_both_runs() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("bench.svg");
    let path_arg = path.to_str().context("a UTF-8 path")?;
    let run = bench(
        &["--workload", "a", "--compare", "direct", "--plot", path_arg],
        None,
    )?;
    ensure!(run.status.success(), "{run:?}");
    let svg = std::fs::read_to_string(&path)?;
    ensure!(
        svg.starts_with("<svg"),
        "not an SVG: {}",
        &svg[..svg.len().min(200)]
    );
    for label in [
        "latency by percentile",
        "throughput over time",
        "quickstore read",
        "quickstore upsert",
        "direct read",
        "direct upsert",
    ] {
        ensure!(svg.contains(label), "no `{label}` in the plot");
    }
    let stdout = String::from_utf8_lossy(&run.stdout);
    ensure!(stdout.contains("plot written to"), "{stdout}");
    Ok(())
}

/// Bad settings are refused before anything runs, with a message naming the option.
#[test]
fn bad_settings_are_refused() -> anyhow::Result<()> {
    for (args, named) in [
        (&["--flush-interval", "soon"][..], "--flush-interval"),
        (&["--durability", "always"][..], "--journal"),
        (&["--rate", "0"][..], "--rate"),
        (&["--duration", "1s"][..], "--duration"),
        (&["--max-pending-bytes", "1000"][..], "--max-pending-bytes"),
    ] {
        let run = bench(args, None)?;
        let stderr = String::from_utf8_lossy(&run.stderr);
        ensure!(!run.status.success(), "{args:?} was accepted");
        ensure!(stderr.contains(named), "{args:?}: {stderr}");
    }
    Ok(())
}

/// `--compare batch` writes as many items as the store's final drain wrote, in full
/// `BatchWriteItem` requests, and reports both.
#[test]
fn compare_batch_writes_as_many_items_as_the_drain() -> anyhow::Result<()> {
    let run = bench(&["--json", "--workload", "w", "--compare", "batch"], None)?;
    ensure!(run.status.success(), "{run:?}");
    let report: serde_json::Value = serde_json::from_slice(&run.stdout)?;
    let (drain, batch) = (&report["drain"], &report["compare_batch"]);
    let items = batch["items"].as_u64().context("compare_batch.items")?;
    ensure!(items > 0 && drain["items"] == items, "{drain} vs {batch}");
    ensure!(
        batch["requests"] == items.div_ceil(25),
        "full batches: {batch}"
    );
    ensure!(batch["secs"].as_f64().is_some_and(|s| s > 0.0), "{batch}");
    ensure!(report["compare_direct"].is_null(), "{report}");

    let text = bench(&["--workload", "w", "--compare", "direct,batch"], None)?;
    let stdout = String::from_utf8_lossy(&text.stdout);
    ensure!(text.status.success(), "{text:?}");
    ensure!(
        stdout.contains("against a direct BatchWriteItem loop"),
        "{stdout}"
    );
    ensure!(
        stdout.contains("timings, against the embedded database"),
        "{stdout}"
    );
    Ok(())
}

/// Values as people write them: sizes with units, durations with hours or minutes, counts
/// with a scale; and a value out of range says in words what is allowed.
#[test]
fn values_are_read_as_people_write_them() -> anyhow::Result<()> {
    let run = Command::new(env!("CARGO_BIN_EXE_quickstore"))
        .args([
            "bench",
            "--items",
            "1k",
            "--ops",
            "2_000",
            "--cache-bytes",
            "1MiB",
            "--max-pending-bytes",
            "64MiB",
            "--value-size",
            "1KiB",
            "--stall-timeout",
            "1h",
            "--flush-interval",
            "0.5s",
            "--quiet",
            "--json",
        ])
        .output()?;
    ensure!(run.status.success(), "{run:?}");
    let report: serde_json::Value = serde_json::from_slice(&run.stdout)?;
    ensure!(report["items"] == 1000, "{report}");
    ensure!(report["value_size"] == 1024, "{report}");
    ensure!(report["cache_bytes"] == 1 << 20, "{report}");
    ensure!(
        report["settings"]["max_pending_bytes"] == 64 << 20,
        "{report}"
    );
    ensure!(report["settings"]["flush_interval_secs"] == 0.5, "{report}");

    for (args, words) in [
        (&["--items", "0"][..], "from 1 to 100M items"),
        (&["--tasks", "0"][..], "at least 1 task"),
        (&["--cache-bytes", "0"][..], "at least 1 byte"),
        (&["--max-pending-bytes", "1000"][..], "at least 1MiB"),
        (&["--duration", "soon"][..], "such as 250ms, 5s, 2m"),
        (&["--cache-bytes", "lots"][..], "such as 4096, 64KiB, 64MiB"),
    ] {
        let run = Command::new(env!("CARGO_BIN_EXE_quickstore"))
            .arg("bench")
            .args(args)
            .output()?;
        let stderr = String::from_utf8_lossy(&run.stderr);
        ensure!(!run.status.success(), "{args:?} was accepted");
        ensure!(stderr.contains(words), "{args:?}: {stderr}");
    }
    Ok(())
}

/// Options that would change nothing beside the others are refused before anything runs,
/// with a sentence that says why.
#[test]
fn options_that_would_do_nothing_are_refused() -> anyhow::Result<()> {
    for (args, words) in [
        (
            &["--workload", "a", "--read-ratio", "0.3"][..],
            "--read-ratio cannot be used with --workload a",
        ),
        (
            &["--workload", "load", "--duration", "1s"][..],
            "--duration would do nothing with --workload load",
        ),
        (
            &["--workload", "load", "--compare", "direct"][..],
            "--compare direct would do nothing",
        ),
        (
            &["--workload", "u", "--compare", "batch"][..],
            "workload u only reads",
        ),
    ] {
        let run = Command::new(env!("CARGO_BIN_EXE_quickstore"))
            .arg("bench")
            .args(args)
            .output()?;
        let stderr = String::from_utf8_lossy(&run.stderr);
        ensure!(!run.status.success(), "{args:?} was accepted");
        ensure!(stderr.contains(words), "{args:?}: {stderr}");
        ensure!(run.stdout.is_empty(), "{args:?} ran: {run:?}");
    }
    Ok(())
}

/// A `--plot` file that cannot be written is refused before the run, not after it.
#[test]
fn the_plot_path_is_checked_before_the_run() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let missing = dir.path().join("no such dir").join("bench.svg");
    let directory = dir.path().to_str().context("a UTF-8 path")?;
    for (path, words) in [
        (
            missing.to_str().context("a UTF-8 path")?,
            "there is no directory",
        ),
        (directory, "it is a directory"),
    ] {
        let run = bench(&["--plot", path], None)?;
        let stderr = String::from_utf8_lossy(&run.stderr);
        ensure!(!run.status.success(), "{path}: {run:?}");
        ensure!(stderr.contains(words), "{path}: {stderr}");
        ensure!(run.stdout.is_empty(), "the benchmark ran: {run:?}");
    }
    ensure!(
        std::fs::read_dir(dir.path())?.next().is_none(),
        "the check left a file behind"
    );
    Ok(())
}

/// A run that fails with the store open closes it before reporting the error: the library's
/// warning about a store dropped without close() is not printed.
#[test]
fn a_failed_run_closes_the_store_first() -> anyhow::Result<()> {
    // Every request takes 2 s, and a flush without progress for 1 s fails.
    let run = bench(&["--round-trip", "2s", "--stall-timeout", "1s"], None)?;
    let stderr = String::from_utf8_lossy(&run.stderr);
    ensure!(!run.status.success(), "{run:?}");
    ensure!(stderr.contains("made no progress for 1s"), "{stderr}");
    ensure!(!stderr.contains("without close()"), "{stderr}");
    ensure!(!stderr.contains("WARN"), "{stderr}");
    Ok(())
}

/// The report leads with what DynamoDB would see, true on any backend: requests, units and the
/// bill per million operations against write-through (computed for the same operations when
/// write-through did not run), coalescing, and latencies, all in µs; timings against the
/// embedded database are labelled as such.
#[test]
fn the_report_leads_with_the_bill_against_write_through() -> anyhow::Result<()> {
    let run = bench(&[], None)?;
    ensure!(run.status.success(), "{run:?}");
    let stdout = String::from_utf8_lossy(&run.stdout);
    let headline = stdout
        .split("\n\n")
        .nth(1)
        .with_context(|| format!("no headline: {stdout}"))?;
    ensure!(
        headline.starts_with(
            "dynamodb per million operations (run and final drain), against write-through"
        ),
        "{headline}"
    );
    for row in ["requests", "read units", "write units", "$"] {
        ensure!(
            headline
                .lines()
                .any(|line| line.starts_with(&format!("{row} "))),
            "no {row} row: {headline}"
        );
    }
    ensure!(
        headline.contains("write-through: computed for the same operations, a request each"),
        "{headline}"
    );
    ensure!(
        stdout
            .contains("timings are the embedded database's (redb on this machine), not DynamoDB's"),
        "{stdout}"
    );
    ensure!(stdout.contains("coalescing: "), "{stdout}");
    ensure!(stdout.contains("latency (µs)"), "{stdout}");
    ensure!(
        !stdout.contains("(us)") && !stdout.contains(" 0.00 "),
        "{stdout}"
    );

    let json = bench(&["--json"], None)?;
    ensure!(json.status.success(), "{json:?}");
    let report: serde_json::Value = serde_json::from_slice(&json.stdout)?;
    let through = &report["write_through"];
    ensure!(through["measured"] == false, "{through}");
    ensure!(
        through["requests"] == report["run"]["ops"],
        "a request each: {through}"
    );
    ensure!(through["requests_per_million_ops"] == 1e6, "{through}");
    let reads = report["run"]["reads"].as_f64().context("run.reads")?;
    let units = &through["bill"]["units"];
    ensure!(
        units["read"].as_f64() == Some(reads),
        "small items, a unit a read: {through}"
    );
    ensure!(
        report["target_rate"] == 10_000.0,
        "paced by default: {report}"
    );
    let store = report["dynamodb"]["requests_per_million_ops"]
        .as_f64()
        .context("dynamodb.requests_per_million_ops")?;
    ensure!(store < 1e6, "the store makes fewer requests: {report}");
    Ok(())
}

/// A setting that could not matter says so: a flush interval longer than the run.
#[test]
fn a_flush_interval_longer_than_the_run_is_noted() -> anyhow::Result<()> {
    let run = Command::new(env!("CARGO_BIN_EXE_quickstore"))
        .args([
            "bench",
            "--items",
            "200",
            "--duration",
            "300ms",
            "--flush-interval",
            "100ms,1s",
            "--quiet",
        ])
        .output()?;
    ensure!(run.status.success(), "{run:?}");
    let stdout = String::from_utf8_lossy(&run.stdout);
    let notes: Vec<&str> = stdout
        .lines()
        .filter(|line| line.starts_with("note: "))
        .collect();
    ensure!(notes.len() == 1, "{stdout}");
    ensure!(
        notes[0].contains("less than --flush-interval 1s, so the interval could not matter"),
        "{stdout}"
    );
    Ok(())
}

/// A read-only workload's tables have no upsert rows, and no write units.
#[test]
fn read_only_workloads_show_no_upserts() -> anyhow::Result<()> {
    let run = bench(&["--workload", "c", "--compare", "direct"], None)?;
    ensure!(run.status.success(), "{run:?}");
    let stdout = String::from_utf8_lossy(&run.stdout);
    ensure!(
        stdout.lines().any(|line| line.starts_with("read p50 (µs)")),
        "{stdout}"
    );
    ensure!(
        !stdout
            .lines()
            .any(|line| line.starts_with("upsert") || line.starts_with("write units")),
        "{stdout}"
    );
    ensure!(
        stdout.contains("coalescing: the run wrote nothing"),
        "{stdout}"
    );
    Ok(())
}
