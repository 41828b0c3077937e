//! `quickstore table create`: makes a DynamoDB table in the layout quickstore (and the Go
//! library) uses, so that a first run needs no console or infrastructure code.

use anyhow::Context as _;
use clap::{ArgGroup, Args, Subcommand};
use quickstore::DynamoDbBackend;

use crate::backend::{self, BackendArgs, PARTITION_KEY};

/// `quickstore table`.
#[derive(Debug, Args)]
pub struct TableArgs {
    /// What to do with the table.
    #[command(subcommand)]
    command: TableCommand,
}

/// The `table` subcommands.
#[derive(Debug, Subcommand)]
enum TableCommand {
    /// Create a table with one string partition key and on-demand billing, and wait until it
    /// is active. An existing table with that key schema is left as it is.
    Create(CreateArgs),
}

/// `quickstore table create`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("name").required(true).args(["table_name", "table"])))]
struct CreateArgs {
    /// The table's name.
    #[arg(value_name = "NAME")]
    table_name: Option<String>,

    /// The table's name, as an option (the same as NAME).
    #[arg(long, value_name = "NAME")]
    table: Option<String>,

    /// Reach DynamoDB at this URL, e.g. a local dynalite or DynamoDB Local. Without AWS
    /// credentials in the environment, dummy credentials are used.
    #[arg(long, value_name = "URL")]
    endpoint: Option<String>,

    /// The AWS region (default: from the environment and AWS config; us-east-1 with
    /// `--endpoint`).
    #[arg(long, value_name = "REGION")]
    region: Option<String>,

    /// The partition key attribute's name.
    #[arg(long, value_name = "NAME", default_value = PARTITION_KEY)]
    partition_key: String,
}

/// Runs `quickstore table`.
pub async fn run(args: TableArgs) -> anyhow::Result<()> {
    match args.command {
        TableCommand::Create(args) => create(args).await,
    }
}

async fn create(args: CreateArgs) -> anyhow::Result<()> {
    // The group requires one of them, and allows only one.
    let table = args
        .table_name
        .or(args.table)
        .context("no table name was given: pass it as NAME")?;
    let location = BackendArgs {
        table: Some(table.clone()),
        endpoint: args.endpoint,
        region: args.region,
        ..BackendArgs::default()
    };
    let client = backend::dynamodb_client(&location).await?;
    DynamoDbBackend::new(client, table.clone())
        .create_table(&args.partition_key)
        .await
        .with_context(|| format!("cannot create table `{table}`"))?;
    crate::print(&format!(
        "table `{table}` is active, with string partition key `{}`\n",
        args.partition_key
    ))
}
