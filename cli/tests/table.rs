//! End to end against a dynalite server: `quickstore table create`, then a store on the table;
//! the CLI's errors (an SDK error, a backend gone in the middle of a benchmark), and
//! `quickstore --help`.

#[path = "../../tests/common/dynalite.rs"]
#[allow(dead_code)]
mod dynalite;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context as _};
use dynalite::Dynalite;
use quickstore::backend::Backend as _;
use quickstore::DynamoDbBackend;

fn create(server: &Dynalite, args: &[&str]) -> anyhow::Result<std::process::Output> {
    Command::new(env!("CARGO_BIN_EXE_quickstore"))
        .args(["table", "create", "--endpoint", server.endpoint()])
        .args(args)
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_PROFILE")
        .output()
        .context("cannot run quickstore")
}

#[tokio::test]
async fn table_create_makes_a_table_the_store_opens() -> anyhow::Result<()> {
    let server = Dynalite::start().map_err(|e| anyhow::anyhow!("{e}"))?;
    let made = create(&server, &["--table", "users"])?;
    let stdout = String::from_utf8_lossy(&made.stdout);
    ensure!(made.status.success(), "{made:?}");
    ensure!(stdout.contains("`users` is active"), "{stdout}");
    DynamoDbBackend::new(server.client(), "users")
        .check_table("_key")
        .await?;

    // Again: an existing table with the same key schema is accepted.
    let again = create(&server, &["--table", "users"])?;
    ensure!(again.status.success(), "{again:?}");

    // With another partition key name, the existing table does not match.
    let other = create(&server, &["--table", "users", "--partition-key", "pk"])?;
    let stderr = String::from_utf8_lossy(&other.stderr);
    ensure!(!other.status.success(), "{other:?}");
    ensure!(stderr.contains("`pk`"), "{stderr}");

    let custom = create(&server, &["--table", "orders", "--partition-key", "pk"])?;
    ensure!(custom.status.success(), "{custom:?}");
    DynamoDbBackend::new(server.client(), "orders")
        .check_table("pk")
        .await?;
    Ok(())
}

/// The table's name may be given as an argument; `--table` still works (scripts use it).
#[tokio::test]
async fn table_create_takes_the_name_as_an_argument() -> anyhow::Result<()> {
    let server = Dynalite::start().map_err(|e| anyhow::anyhow!("{e}"))?;
    let made = create(&server, &["events"])?;
    ensure!(made.status.success(), "{made:?}");
    let stdout = String::from_utf8_lossy(&made.stdout);
    ensure!(stdout.contains("`events` is active"), "{stdout}");
    DynamoDbBackend::new(server.client(), "events")
        .check_table("_key")
        .await?;
    let both = create(&server, &["events", "--table", "other"])?;
    ensure!(!both.status.success(), "{both:?}");
    let neither = create(&server, &[])?;
    ensure!(!neither.status.success(), "{neither:?}");
    Ok(())
}

/// An error from the AWS SDK prints as one sentence with its causes, with no `Debug` dump and
/// no SDK warnings before it.
#[test]
fn sdk_errors_print_as_sentences() -> anyhow::Result<()> {
    // Nothing listens on port 1 of the loopback address.
    let failed = Command::new(env!("CARGO_BIN_EXE_quickstore"))
        .args([
            "table",
            "create",
            "orders",
            "--endpoint",
            "http://127.0.0.1:1",
        ])
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_PROFILE")
        .env_remove("RUST_LOG")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .context("cannot run quickstore")?;
    ensure!(!failed.status.success(), "{failed:?}");
    let stderr = String::from_utf8_lossy(&failed.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    ensure!(lines.len() == 1, "one line: {stderr}");
    ensure!(
        lines[0].starts_with("error: cannot create table `orders`: "),
        "{stderr}"
    );
    ensure!(stderr.contains("Connection refused"), "{stderr}");
    for debug in ["{", "}", "Error {", "Some(", "source:"] {
        ensure!(!stderr.contains(debug), "`{debug}` in {stderr}");
    }
    Ok(())
}

/// `quickstore --help` says what quickstore is.
#[test]
fn help_says_what_quickstore_is() -> anyhow::Result<()> {
    let help = Command::new(env!("CARGO_BIN_EXE_quickstore"))
        .arg("--help")
        .output()
        .context("cannot run quickstore")?;
    ensure!(help.status.success(), "{help:?}");
    let stdout = String::from_utf8_lossy(&help.stdout);
    ensure!(
        stdout.starts_with("quickstore is a write-back cache in front of DynamoDB"),
        "{stdout}"
    );
    Ok(())
}

/// A backend that goes away in the middle of a benchmark fails the run once the final flush
/// has written nothing for the stall timeout (retries do not count as progress), rather than
/// retrying for ever; the store is closed before the error is printed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_gone_mid_run_fails_the_run() -> anyhow::Result<()> {
    let mut server = Dynalite::start().map_err(|e| anyhow::anyhow!("{e}"))?;
    let child = Command::new(env!("CARGO_BIN_EXE_quickstore"))
        .args(["bench", "--table", "gone", "--endpoint", server.endpoint()])
        .args(["--create-table", "--workload", "a", "--items", "200"])
        .args([
            "--duration",
            "4s",
            "--rate",
            "100",
            "--stall-timeout",
            "2s",
            "--quiet",
        ])
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_PROFILE")
        .env_remove("RUST_LOG")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot run quickstore")?;
    // Once the load phase has written every item, the server goes away during the run.
    let client = server.client();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let scan = client
            .scan()
            .table_name("gone")
            .select(aws_sdk_dynamodb::types::Select::Count)
            .send()
            .await;
        if scan.is_ok_and(|scan| scan.count() == 200) {
            break;
        }
        ensure!(Instant::now() < deadline, "the load phase did not finish");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.stop();
    let failed = tokio::task::spawn_blocking(move || child.wait_with_output()).await??;
    let stderr = String::from_utf8_lossy(&failed.stderr);
    ensure!(!failed.status.success(), "{failed:?}");
    let error = stderr
        .lines()
        .find(|line| line.starts_with("error: "))
        .with_context(|| format!("no error: {stderr}"))?;
    ensure!(error.contains("made no progress for 2s"), "{stderr}");
    ensure!(error.contains("it may be unreachable"), "{stderr}");
    ensure!(!stderr.contains("without close()"), "{stderr}");
    Ok(())
}
