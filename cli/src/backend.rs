//! Choosing and opening the backend a command runs against: an embedded database (a temporary
//! one by default, for commands that allow it) or a DynamoDB table.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context as _};
use aws_config::BehaviorVersion;
use aws_sdk_dynamodb::config::{Credentials, Region};
use aws_sdk_dynamodb::Client;
use clap::Args;
use quickstore::backend::Backend;
use quickstore::{DynamoDbBackend, EmbeddedBackend, Store, StoreBuilder};
use tempfile::TempDir;

use crate::meter::Meter;
use crate::round_trip::RoundTrip;

/// The partition key attribute the store uses (the library's default), and that
/// `--create-table` gives the table.
pub const PARTITION_KEY: &str = "_key";

/// The region used with `--endpoint` when none is configured; local servers ignore it.
const LOCAL_REGION: &str = "us-east-1";

/// Where the store keeps its items. Each command flattening these sets the help heading,
/// since commands differ in whether a location is required.
#[derive(Debug, Clone, Default, Args)]
pub struct BackendArgs {
    /// Use this embedded (redb) database file, created if missing, and keep it afterwards.
    #[arg(long, value_name = "FILE", conflicts_with = "table")]
    pub path: Option<PathBuf>,

    /// Use this DynamoDB table; its key must be one string partition key, named `_key` or as
    /// `--partition-key` says.
    #[arg(long, value_name = "NAME")]
    pub table: Option<String>,

    /// Reach DynamoDB at this URL, e.g. a local dynalite or DynamoDB Local. Without AWS
    /// credentials in the environment, dummy credentials are used.
    #[arg(long, value_name = "URL", requires = "table")]
    pub endpoint: Option<String>,

    /// The AWS region (default: from the environment and AWS config; us-east-1 with
    /// `--endpoint`).
    #[arg(long, value_name = "REGION", requires = "table")]
    pub region: Option<String>,

    /// Create the table (a string partition key, on-demand billing) if it does not exist.
    #[arg(long, requires = "table")]
    pub create_table: bool,

    /// The attribute holding each item's key (default: `_key`, the library's).
    #[arg(long, value_name = "NAME")]
    pub partition_key: Option<String>,

    /// Add this long to every request, e.g. `5ms`: the network round trip a service pays to
    /// DynamoDB, which a local server on loopback (dynalite, say) lacks.
    #[arg(long, value_name = "DURATION", value_parser = crate::values::round_trip)]
    pub round_trip: Option<std::time::Duration>,
}

impl BackendArgs {
    /// The partition key attribute to use.
    pub fn partition_key(&self) -> &str {
        self.partition_key.as_deref().unwrap_or(PARTITION_KEY)
    }
}

/// An open store, with what keeps its backend alive.
#[derive(Debug)]
pub struct OpenStore {
    /// The store.
    pub store: Store,
    /// What the store runs against, for reports.
    pub target: Target,
    /// What the store asked of its backend, and what DynamoDB would bill for it.
    pub meter: Arc<Meter<Arc<dyn Backend>>>,
}

/// What a store runs against.
#[derive(Debug)]
pub enum Target {
    /// An embedded database file, in `dir` when temporary (removed when this is dropped).
    Embedded {
        /// The database file.
        path: PathBuf,
        /// The temporary directory holding it, if any.
        dir: Option<TempDir>,
    },
    /// A DynamoDB table.
    DynamoDb {
        /// The table name.
        table: String,
        /// The endpoint URL, when not AWS's own.
        endpoint: Option<String>,
    },
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Embedded { path, dir } => {
                write!(f, "embedded database {}", path.display())?;
                if dir.is_some() {
                    write!(f, " (temporary)")?;
                }
                Ok(())
            }
            Target::DynamoDb { table, endpoint } => {
                write!(f, "DynamoDB table `{table}`")?;
                if let Some(endpoint) = endpoint {
                    write!(f, " at {endpoint}")?;
                }
                Ok(())
            }
        }
    }
}

/// What to do when `args` name neither `--path` nor `--table`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unspecified {
    /// Use an embedded database in a temporary directory, removed afterwards.
    Temporary,
    /// Fail: the command needs a lasting location.
    Refuse,
}

/// Opens the backend `args` choose and a store over it, configured by `configure`. Without
/// `--path` or `--table`, `unspecified` decides.
pub async fn open_store(
    args: &BackendArgs,
    unspecified: Unspecified,
    configure: impl FnOnce(StoreBuilder) -> StoreBuilder,
) -> anyhow::Result<OpenStore> {
    let (backend, target) = match &args.table {
        Some(table) => {
            let backend = DynamoDbBackend::new(dynamodb_client(args).await?, table.clone());
            if args.create_table {
                backend
                    .create_table(args.partition_key())
                    .await
                    .with_context(|| format!("cannot create table `{table}`"))?;
            }
            let target = Target::DynamoDb {
                table: table.clone(),
                endpoint: args.endpoint.clone(),
            };
            (Arc::new(backend) as Arc<dyn Backend>, target)
        }
        None => {
            let (path, dir) = match &args.path {
                Some(path) => (path.clone(), None),
                None if unspecified == Unspecified::Refuse => {
                    bail!("no backend was chosen: pass --path FILE or --table NAME")
                }
                None => {
                    let dir = tempfile::Builder::new()
                        .prefix("quickstore-bench-")
                        .tempdir()
                        .context("cannot create a temporary directory")?;
                    (dir.path().join("bench.redb"), Some(dir))
                }
            };
            let backend = EmbeddedBackend::open(&path)?;
            (
                Arc::new(backend) as Arc<dyn Backend>,
                Target::Embedded { path, dir },
            )
        }
    };
    let backend = match args.round_trip {
        Some(round_trip) => Arc::new(RoundTrip::new(backend, round_trip)) as Arc<dyn Backend>,
        None => backend,
    };
    let meter = Arc::new(Meter::new(backend));
    let builder = Store::builder(Arc::clone(&meter)).partition_key(args.partition_key());
    let store = configure(builder)
        .open()
        .await
        .with_context(|| format!("cannot open a store on the {target}"))?;
    Ok(OpenStore {
        store,
        target,
        meter,
    })
}

/// A DynamoDB client from the standard AWS configuration chain, with `args`' overrides.
pub async fn dynamodb_client(args: &BackendArgs) -> anyhow::Result<Client> {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(endpoint) = &args.endpoint {
        loader = loader.endpoint_url(endpoint);
        if !env_is_set(&["AWS_ACCESS_KEY_ID", "AWS_PROFILE"]) {
            loader = loader.credentials_provider(Credentials::new(
                "dummy",
                "dummy",
                None,
                None,
                "quickstore-cli",
            ));
        }
        if args.region.is_none() && !env_is_set(&["AWS_REGION", "AWS_DEFAULT_REGION"]) {
            loader = loader.region(Region::new(LOCAL_REGION));
        }
    }
    if let Some(region) = &args.region {
        loader = loader.region(Region::new(region.clone()));
    }
    let config = loader.load().await;
    if config.region().is_none() {
        bail!("no AWS region is configured: pass --region or set AWS_REGION");
    }
    Ok(Client::new(&config))
}

/// True when any of `names` is set to a non-empty value.
fn env_is_set(names: &[&str]) -> bool {
    names
        .iter()
        .any(|name| std::env::var_os(name).is_some_and(|value| !value.is_empty()))
}
