//! An HTTP service in front of DynamoDB with a `Store`: items as JSON, a counter, Prometheus
//! metrics, and a shutdown that loses nothing it acknowledged.
//!
//! | request | does | answers |
//! |---|---|---|
//! | `GET /items/{kind}/{id}` | `get` | 200 and the item as JSON, 404 if there is none |
//! | `PUT /items/{kind}/{id}` with a JSON object | `upsert` | 204 |
//! | the same with `If-Match: *` | `update` | 204, 409 if there is no item |
//! | `POST /items/{kind}/{id}` with a JSON object | `insert` | 201, 409 if there is an item |
//! | `DELETE /items/{kind}/{id}` | `delete` | 204 |
//! | `POST /counters/{name}?by=N` (`by` defaults to 1) | `apply`, adding N on the server | 200 and `{"value": ...}` as this instance sees it |
//! | `GET /metrics` | | the store's metrics and the service's, for Prometheus |
//!
//! Errors are 400 for a bad key or value, 409 as above, 429 while the writes waiting for
//! DynamoDB fill the store, 503 when DynamoDB fails in a way that may pass, 500 otherwise, each
//! with a JSON body `{"code": ..., "message": ...}` (`code` is `quickstore::Error::code`).
//!
//! A write is answered once the store holds it, before DynamoDB has it. On SIGTERM (or Ctrl-C)
//! the service stops accepting connections, finishes the requests it is serving, and only then
//! closes the store, which writes everything pending to DynamoDB: every write it answered with
//! a 2xx is in the table when it exits with status 0 (`tests/service.rs` checks it under load).
//! Without a journal a crash (`kill -9`) loses the writes not yet flushed; see
//! `examples/journaled.rs`.
//!
//! Run it against a local server (see the README's "A local server"), which creates its table:
//!
//! ```sh
//! npx --yes dynalite --host 127.0.0.1 --port 8000 &
//! cargo run --example service -- --endpoint http://127.0.0.1:8000
//! curl -i -X PUT localhost:3000/items/User/ada -H 'content-type: application/json' -d '{"name":"Ada"}'
//! curl -i localhost:3000/items/User/ada
//! curl -i -X POST 'localhost:3000/counters/visits?by=2'
//! curl -s localhost:3000/metrics | grep quickstore_items_written_total
//! ```
//!
//! Options: `--endpoint URL`, a local DynamoDB-compatible server (any region and dummy
//! credentials are used; without it the standard AWS configuration is read: environment,
//! `~/.aws/config`, instance roles, and `AWS_ENDPOINT_URL`); `--table NAME` (`items`), created
//! if absent with the partition key `_key`; `--listen ADDR` (`127.0.0.1:3000`; port 0 picks a
//! free one); `--max-pending N`, the keys whose writes may wait for DynamoDB at once (the
//! store's default, 100,000) before writes are answered 429. `RUST_LOG`-style filtering is left out to stay short: it logs at `info`.

use std::io::IsTerminal as _;
use std::time::Duration;

use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use quickstore::{Delta, DynamoDbBackend, Key, Store};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// How long the store may take to write what is pending when the service stops.
const CLOSE_WITHIN: Duration = Duration::from_secs(30);

#[derive(Clone)]
struct App {
    store: Store,
    metrics: PrometheusHandle,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_max_level(tracing::Level::INFO)
        .init();
    let options = Options::parse()?;

    // Installed before the store opens, so that the store's metrics land in it.
    let metrics = PrometheusBuilder::new().install_recorder()?;
    let upkeep = metrics.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(5));
        loop {
            every.tick().await;
            upkeep.run_upkeep(); // drains histograms, as the exporter asks
        }
    });

    let mut config = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(endpoint) = &options.endpoint {
        // A local server checks neither region nor credentials, but the SDK signs with them.
        config = config
            .endpoint_url(endpoint)
            .region("us-east-1")
            .test_credentials();
    }
    let client = aws_sdk_dynamodb::Client::new(&config.load().await);
    let backend = DynamoDbBackend::new(client, &options.table);
    backend.create_table("_key").await?; // accepts the table if it is there already
    let mut builder = Store::builder(backend);
    if let Some(keys) = options.max_pending {
        builder = builder.max_pending(keys);
    }
    let store = builder.open().await?;

    let app = Router::new()
        .route(
            "/items/{kind}/{id}",
            get(get_item)
                .put(put_item)
                .post(create_item)
                .delete(delete_item),
        )
        .route("/counters/{name}", post(increment))
        .route("/metrics", get(render_metrics))
        .layer(middleware::from_fn(count_requests))
        .with_state(App {
            store: store.clone(),
            metrics,
        });
    let listener = tokio::net::TcpListener::bind(&options.listen).await?;
    tracing::info!(table = %options.table, "listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app)
        .with_graceful_shutdown(stop_signal())
        .await?;

    // No request is being served and none will be: every write answered is in the store.
    tracing::info!(
        pending = store.stats().pending,
        "stopped serving; writing what is pending to DynamoDB"
    );
    store.close_within(CLOSE_WITHIN).await?;
    let stats = store.stats();
    tracing::info!(
        mutations = stats.mutations,
        items_written = stats.items_written,
        write_requests = stats.write_requests,
        "closed: every acknowledged write is in DynamoDB"
    );
    Ok(())
}

/// Completes on SIGTERM (what `kill`, systemd and Kubernetes send) or Ctrl-C.
async fn stop_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sigterm) => {
                sigterm.recv().await;
            }
            Err(err) => {
                tracing::error!("cannot listen for SIGTERM: {err}");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = terminate => tracing::info!("SIGTERM: no new connections; finishing the requests in progress"),
        _ = tokio::signal::ctrl_c() => tracing::info!("Ctrl-C: no new connections; finishing the requests in progress"),
    }
}

async fn get_item(
    State(app): State<App>,
    Path((kind, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let key = Key::new(kind, id)?;
    Ok(match app.store.get::<Value>(&key).await? {
        Some(item) => Json(item).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    })
}

async fn put_item(
    State(app): State<App>,
    Path((kind, id)): Path<(String, String)>,
    headers: HeaderMap,
    Json(item): Json<Value>,
) -> Result<StatusCode, ApiError> {
    let key = Key::new(kind, id)?;
    if headers.get(header::IF_MATCH).is_some_and(|tag| tag == "*") {
        app.store.update(&key, &item).await?; // only over an item that is there
    } else {
        app.store.upsert(&key, &item).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn create_item(
    State(app): State<App>,
    Path((kind, id)): Path<(String, String)>,
    Json(item): Json<Value>,
) -> Result<StatusCode, ApiError> {
    app.store.insert(&Key::new(kind, id)?, &item).await?;
    Ok(StatusCode::CREATED)
}

async fn delete_item(
    State(app): State<App>,
    Path((kind, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    app.store.delete(&Key::new(kind, id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct Increment {
    by: Option<i64>,
}

#[derive(Default, Serialize, Deserialize)]
struct Counter {
    value: i64,
}

/// Adds to a counter with a delta that DynamoDB applies on the server, so that several
/// instances of this service can count on one item without losing an increment.
async fn increment(
    State(app): State<App>,
    Path(name): Path<String>,
    Query(increment): Query<Increment>,
) -> Result<Json<Counter>, ApiError> {
    let key = Key::new("Counter", name)?;
    let by = increment.by.unwrap_or(1);
    app.store.apply(&key, Delta::new().add("value", by)).await?;
    // This instance's view: its own increments, and others' as of its last read or write.
    Ok(Json(app.store.get(&key).await?.unwrap_or_default()))
}

async fn render_metrics(State(app): State<App>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.metrics.render(),
    )
}

/// Counts responses by method and status: `http_responses_total`.
async fn count_requests(request: Request, next: Next) -> Response {
    let method = request.method().to_string();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("http_responses_total", "method" => method, "status" => status).increment(1);
    response
}

/// A quickstore error as an HTTP response: the status follows the error's code.
struct ApiError(quickstore::Error);

impl<E: Into<quickstore::Error>> From<E> for ApiError {
    fn from(err: E) -> Self {
        ApiError(err.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let err = self.0;
        let status = match err.code() {
            "ValidationException" | "SerializeException" => StatusCode::BAD_REQUEST,
            "ItemExisted" | "ItemNotExisted" => StatusCode::CONFLICT,
            "TooManyRequests" => StatusCode::TOO_MANY_REQUESTS,
            "Closed" => StatusCode::SERVICE_UNAVAILABLE,
            _ if err.is_retryable() => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status.is_server_error() {
            tracing::error!("{}", err.report()); // the error and its causes
        }
        let body = Json(json!({ "code": err.code(), "message": err.to_string() }));
        if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE {
            (status, [(header::RETRY_AFTER, "1")], body).into_response()
        } else {
            (status, body).into_response()
        }
    }
}

/// The command line: `--endpoint URL`, `--table NAME`, `--listen ADDR`, `--max-pending N`.
struct Options {
    endpoint: Option<String>,
    table: String,
    listen: String,
    max_pending: Option<usize>,
}

impl Options {
    fn parse() -> anyhow::Result<Self> {
        let mut options = Options {
            endpoint: None,
            table: "items".into(),
            listen: "127.0.0.1:3000".into(),
            max_pending: None,
        };
        let mut args = std::env::args().skip(1);
        while let Some(flag) = args.next() {
            let value = args.next();
            match (flag.as_str(), value) {
                ("--endpoint", Some(url)) => options.endpoint = Some(url),
                ("--table", Some(table)) => options.table = table,
                ("--listen", Some(addr)) => options.listen = addr,
                ("--max-pending", Some(keys)) => options.max_pending = Some(keys.parse()?),
                _ => anyhow::bail!(
                    "usage: service [--endpoint URL] [--table NAME] [--listen ADDR] \
                     [--max-pending N]"
                ),
            }
        }
        Ok(options)
    }
}
