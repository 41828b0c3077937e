//! `quickstore`: command-line tools for the quickstore write-back cache.
//!
//! `quickstore bench` runs a load-then-mixed workload against a store, on an embedded database
//! by default (no infrastructure needed) or on a DynamoDB table, and prints what DynamoDB would
//! see (requests and the bill per million operations, against write-through), how writes
//! coalesced, latency and the store's own counters.
//!
//! `quickstore journal inspect DIR` reports what a crash journal holds, and `quickstore journal
//! replay DIR` writes what it holds to a backend.
//!
//! `quickstore table create NAME` creates a DynamoDB table in quickstore's layout.
//!
//! The library's logs go to stderr, filtered by `RUST_LOG` (default: warnings and errors, but
//! none of the AWS SDK's configuration loader, whose warnings come in `Debug` form).

mod backend;
mod bench;
mod cost;
mod drain;
mod journal;
mod meter;
mod round_trip;
mod table;
mod values;

use std::io::{IsTerminal as _, Write as _};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use tracing_subscriber::filter::{EnvFilter, LevelFilter};
use tracing_subscriber::fmt::format::FmtSpan;

/// quickstore is a write-back cache in front of DynamoDB: reads are served from memory, and
/// writes are acknowledged at once and reach DynamoDB in batches, repeated writes of a key
/// coalesced into one. These tools measure what it saves for a workload (bench), inspect and
/// replay its crash journal (journal), and create tables in its layout (table).
#[derive(Debug, Parser)]
#[command(
    name = "quickstore",
    version,
    propagate_version = true,
    after_help = "Logs (the library's warnings and errors, by default) go to stderr. Set RUST_LOG \
                  to see more: RUST_LOG=quickstore=info adds each flush and close, \
                  RUST_LOG=quickstore=debug retries, loads and flush batches, each with its \
                  fields and timings as it ends, and RUST_LOG=aws_config=info how the AWS SDK \
                  looked for credentials and a region."
)]
struct Cli {
    /// What to do.
    #[command(subcommand)]
    command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
enum Command {
    /// Load items into a store, run a mix of reads and upserts for 10 s at 10,000 a second,
    /// and report what DynamoDB would see (requests and the bill per million operations,
    /// against write-through), how writes coalesced, and latencies.
    Bench(Box<bench::BenchArgs>),
    /// Inspect a crash journal directory, or replay it into a backend.
    Journal(journal::JournalArgs),
    /// Create a DynamoDB table in the layout quickstore uses.
    Table(table::TableArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    install_logging();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", describe(&err));
            ExitCode::FAILURE
        }
    }
}

/// What is logged without `RUST_LOG`: warnings and errors, but none of the AWS SDK's
/// configuration loader, which warns of every place it looked for credentials or a region in
/// vain (an instance metadata service, say), each with its error in `Debug` form; a command
/// that then fails says why in a sentence.
const DEFAULT_LOG: &str = "warn,aws_config=off";

/// Sends `tracing` events to stderr, filtered by `RUST_LOG` (directives it cannot parse are
/// left out); without it, by [`DEFAULT_LOG`]. Spans let through are printed as they close,
/// with their fields and timings.
fn install_logging() {
    let filter = match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.trim().is_empty() => EnvFilter::builder()
            .with_default_directive(LevelFilter::WARN.into())
            .parse_lossy(directives),
        _ => EnvFilter::builder().parse_lossy(DEFAULT_LOG),
    };
    // Fails only if a subscriber is installed already, which then keeps the logs.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_span_events(FmtSpan::CLOSE)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

/// Runs the chosen subcommand on a multi-threaded Tokio runtime.
fn run(cli: Cli) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Bench(args) => runtime.block_on(bench::run(*args)),
        Command::Journal(args) => runtime.block_on(journal::run(args)),
        Command::Table(args) => runtime.block_on(table::run(args)),
    }
}

/// Writes `text` to stdout; a reader that went away (`| head`) is not an error.
fn print(text: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        result => result.context("cannot write the report"),
    }
}

/// An error and its causes, joined by `: `, leaving out each cause whose text the message
/// before it already contains (errors that quote their source's text).
fn describe(err: &anyhow::Error) -> String {
    let mut text = String::new();
    let mut previous = String::new();
    for cause in err.chain() {
        let message = cause.to_string();
        if previous.contains(&message) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&message);
        previous = message;
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::keys::KeyDistribution;

    fn bench_args(args: &[&str]) -> Result<bench::BenchArgs, clap::Error> {
        let argv = ["quickstore", "bench"].iter().chain(args);
        match Cli::try_parse_from(argv)?.command {
            Command::Bench(args) => Ok(*args),
            other => Err(clap::Error::raw(
                clap::error::ErrorKind::InvalidSubcommand,
                format!("`bench` parsed as {other:?}"),
            )),
        }
    }

    #[test]
    fn error_descriptions_skip_repeated_causes() {
        let io = std::io::Error::other("disk on fire");
        let quoted = anyhow::Error::new(io).context("cannot open db: disk on fire");
        let err = quoted.context("cannot start");
        assert_eq!(describe(&err), "cannot start: cannot open db: disk on fire");
        let plain = anyhow::anyhow!("root").context("outer");
        assert_eq!(describe(&plain), "outer: root");
    }

    #[test]
    fn the_cli_definition_is_consistent() {
        use clap::CommandFactory as _;
        Cli::command().debug_assert();
    }

    #[test]
    fn bench_defaults() -> Result<(), clap::Error> {
        let args = bench_args(&[])?;
        assert_eq!(args.items, 10_000);
        assert_eq!(args.ops, None);
        assert_eq!(args.tasks, 8);
        assert_eq!(args.value_size, 100);
        assert_eq!(args.read_ratio, None);
        assert!((args.read_ratio() - 0.9).abs() < f64::EPSILON);
        assert_eq!(args.seed, 42);
        assert_eq!(args.tuning.cache_bytes, None);
        assert_eq!(args.distribution(), KeyDistribution::Zipf);
        assert_eq!(args.distribution().to_string(), "zipf");
        assert_eq!(args.workload, None);
        assert_eq!(args.stall_timeout, std::time::Duration::from_secs(30));
        assert!(!args.quiet);
        assert!(!args.metrics);
        assert!(args.backend.path.is_none());
        assert!(args.backend.table.is_none());
        Ok(())
    }

    #[test]
    fn bench_options_parse() -> Result<(), clap::Error> {
        let args = bench_args(&[
            "--items",
            "2000",
            "--ops",
            "20000",
            "--tasks",
            "2",
            "--read-ratio",
            "0.5",
            "--cache-bytes",
            "4096",
            "--seed",
            "7",
            "--quiet",
            "--metrics",
            "--path",
            "data.redb",
        ])?;
        assert_eq!((args.items, args.ops, args.tasks), (2000, Some(20000), 2));
        assert_eq!(args.read_ratio, Some(0.5));
        assert_eq!(args.tuning.cache_bytes, Some(4096));
        assert_eq!(args.seed, 7);
        assert!(args.quiet);
        assert!(args.metrics);
        assert_eq!(
            args.backend.path.as_deref(),
            Some(std::path::Path::new("data.redb"))
        );
        Ok(())
    }

    #[test]
    fn dynamodb_options_parse() -> Result<(), clap::Error> {
        let args = bench_args(&[
            "--endpoint",
            "http://localhost:4567",
            "--table",
            "bench",
            "--region",
            "eu-west-1",
            "--create-table",
        ])?;
        assert_eq!(
            args.backend.endpoint.as_deref(),
            Some("http://localhost:4567")
        );
        assert_eq!(args.backend.table.as_deref(), Some("bench"));
        assert_eq!(args.backend.region.as_deref(), Some("eu-west-1"));
        assert!(args.backend.create_table);
        Ok(())
    }

    #[test]
    fn bad_bench_options_are_refused() {
        for bad in [
            &["--read-ratio", "1.5"][..],
            &["--read-ratio", "-0.1"],
            &["--read-ratio", "NaN"],
            &["--items", "0"],
            &["--tasks", "0"],
            &["--cache-bytes", "0"],
            &["--stall-timeout", "0"],
            &["--distribution", "pareto"],
            &["--path", "a.redb", "--table", "t"],
            &["--endpoint", "http://localhost:4567"],
            &["--create-table"],
            &["--region", "eu-west-1"],
        ] {
            assert!(bench_args(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
