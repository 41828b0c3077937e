//! examples/service.rs run as its users run it: built with cargo, started against dynalite,
//! loaded with concurrent writes and counter increments over HTTP, and sent SIGTERM in the
//! middle of the load. It must exit with status 0 having lost nothing it acknowledged: every
//! item whose PUT it answered with a 2xx is in the table, and every counter holds exactly the
//! increments it answered with a 2xx. And with DynamoDB gone, it answers 429 and 503.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{header, Method, Request, StatusCode};
use common::{Dynalite, TestResult};
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use quickstore::AttributeValue;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

/// Concurrent clients during the load.
const CLIENTS: usize = 8;
/// Counters the clients increment, so that each is incremented by several at once.
const COUNTERS: usize = 3;
/// Answers received before SIGTERM is sent: the signal lands in the middle of the load, which
/// goes on until the service stops answering.
const SIGTERM_AFTER: usize = 1_500;
/// A bound on each wait for the service (to start, to exit) so that a broken service fails the
/// test instead of hanging it; not a performance threshold.
const PATIENCE: Duration = Duration::from_secs(120);

/// What one client had acknowledged: items by key, and increments by counter.
#[derive(Default)]
struct Acknowledged {
    items: BTreeMap<String, (usize, usize)>,
    increments: HashMap<String, u64>,
    refused: Vec<(String, StatusCode)>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_acknowledged_is_lost_when_the_service_is_stopped_under_load() -> TestResult {
    let dynalite = Dynalite::start()?;
    let program = build_example("service")?;
    let mut service = Service::start(&program, dynalite.endpoint(), "service", &[]).await?;
    let http = Http::new(&service.address);

    // A status per outcome, before the load: what is sent, then the status and error code.
    let ada = json!({ "name": "Ada" });
    let list = json!([1, 2]);
    let cases = [
        ("GET", "/items/User/ada", None, 404, None),
        ("POST", "/items/User/ada", Some(&ada), 201, None),
        (
            "POST",
            "/items/User/ada",
            Some(&ada),
            409,
            Some("ItemExisted"),
        ),
        (
            "PUT",
            "/items/User/a.b",
            Some(&ada),
            400,
            Some("ValidationException"),
        ),
        (
            "PUT",
            "/items/User/x",
            Some(&list),
            400,
            Some("SerializeException"),
        ),
        ("GET", "/items/User/ada", None, 200, None),
        ("DELETE", "/items/User/ada", None, 204, None),
        ("GET", "/items/User/ada", None, 404, None),
        ("POST", "/counters/check?by=5", None, 200, None),
    ];
    for (method, path, body, status, code) in cases {
        let (got, answer) = http.call(method.parse()?, path, body).await?;
        let got = (got.as_u16(), answer["code"].as_str());
        assert_eq!(got, (status, code), "{method} {path}: {answer}");
    }
    let (_, counter) = http.call(Method::GET, "/items/Counter/check", None).await?;
    assert_eq!(counter, json!({ "value": 5 }));
    // `If-Match: *` makes a PUT an `update`, which needs an item there.
    let mut update = http.request(Method::PUT, "/items/User/bob", Some(&ada))?;
    let any = header::HeaderValue::from_static("*");
    update.headers_mut().insert(header::IF_MATCH, any);
    let (status, answer) = http.send(update).await?;
    assert_eq!(
        (status.as_u16(), answer["code"].as_str()),
        (409, Some("ItemNotExisted"))
    );
    let metrics = http.text("/metrics").await?;
    assert!(
        metrics.contains(r#"http_responses_total{method="POST",status="409"} 1"#),
        "{metrics}"
    );

    // The load, with SIGTERM in the middle of it.
    let answered = Arc::new(AtomicUsize::new(0));
    let stopped = Arc::new(AtomicUsize::new(0));
    let mut clients = tokio::task::JoinSet::new();
    for client in 0..CLIENTS {
        let (http, answered, stopped) = (http.clone(), answered.clone(), stopped.clone());
        clients.spawn(async move {
            let acknowledged = http.load(client, &answered).await;
            stopped.fetch_add(1, Ordering::Relaxed);
            acknowledged
        });
    }
    while answered.load(Ordering::Relaxed) < SIGTERM_AFTER {
        if let Some(status) = service.child.try_wait()? {
            return Err(format!("the service exited during the load: {status}").into());
        }
        if stopped.load(Ordering::Relaxed) == CLIENTS {
            return Err("every client lost the service before SIGTERM".into());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    service.terminate()?;
    let status = tokio::time::timeout(PATIENCE, service.child.wait())
        .await
        .map_err(|_| "the service did not exit after SIGTERM")??;
    assert!(status.success(), "the service exited with {status}");
    let log = service.log().await;
    assert!(
        log.iter()
            .any(|line| line.contains("closed: every acknowledged write is in DynamoDB")),
        "{log:#?}"
    );

    let mut acknowledged = Acknowledged::default();
    while let Some(client) = clients.join_next().await {
        let client = client?;
        acknowledged.items.extend(client.items);
        for (counter, n) in client.increments {
            *acknowledged.increments.entry(counter).or_default() += n;
        }
        acknowledged.refused.extend(client.refused);
    }
    assert!(
        acknowledged.refused.is_empty(),
        "{:?}",
        acknowledged.refused
    );
    assert!(acknowledged.items.len() + sum(&acknowledged.increments) >= SIGTERM_AFTER);

    // The table, read directly.
    let table = scan(&dynalite, "service").await?;
    for (key, (client, n)) in &acknowledged.items {
        let item = table
            .get(key)
            .ok_or_else(|| format!("{key} was acknowledged, not written"))?;
        assert_eq!(item.get("client"), Some(&number(*client)), "{key}");
        assert_eq!(item.get("n"), Some(&number(*n)), "{key}");
    }
    for counter in 0..COUNTERS {
        let key = format!("Counterc{counter}");
        let acked = acknowledged.increments.get(&key).copied().unwrap_or(0);
        let stored = match table.get(&key).and_then(|item| item.get("value")) {
            Some(value) => value.as_n().map_err(|_| "not a number")?.parse()?,
            None => 0,
        };
        assert_eq!(
            stored, acked,
            "{key}: the table against the increments acknowledged"
        );
    }
    eprintln!(
        "{} items and {} increments acknowledged, all in the table",
        acknowledged.items.len(),
        sum(&acknowledged.increments)
    );
    Ok(())
}

/// With DynamoDB gone, the statuses of its failures: 429 once the writes waiting for it fill
/// the store (`--max-pending 1`), and 503 for a read that cannot reach it, each with its code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_table_is_answered_429_and_503() -> TestResult {
    let mut dynalite = Dynalite::start()?;
    let program = build_example("service")?;
    let service = Service::start(
        &program,
        dynalite.endpoint(),
        "outage",
        &["--max-pending", "1"],
    )
    .await?;
    let http = Http::new(&service.address);
    dynalite.stop();

    let ada = json!({ "name": "Ada" });
    let (status, answer) = http
        .call(Method::PUT, "/items/User/ada", Some(&ada))
        .await?;
    assert_eq!(status.as_u16(), 204, "{answer}");
    let (status, answer) = http
        .call(Method::PUT, "/items/User/bob", Some(&ada))
        .await?;
    assert_eq!(
        (status.as_u16(), answer["code"].as_str()),
        (429, Some("TooManyRequests")),
        "{answer}"
    );
    // The store's reads retry, then give up: at most the retry policy's 20-second deadline.
    let (status, answer) = http.call(Method::GET, "/items/User/carol", None).await?;
    assert_eq!(
        (status.as_u16(), answer["code"].as_str()),
        (503, Some("DynamoDBException")),
        "{answer}"
    );
    Ok(()) // the service is killed as it drops: what it holds is not this test's concern
}

fn sum(increments: &HashMap<String, u64>) -> usize {
    increments.values().sum::<u64>() as usize
}

fn number(n: usize) -> AttributeValue {
    AttributeValue::N(n.to_string())
}

/// Builds an example with this test's features and profile and returns the path of its
/// executable, as cargo reports it. Like `cargo test` in the workspace's root, it selects the
/// default members (quickstore and the CLI), whose dependencies' features are unified, so that
/// what `cargo test` built is reused rather than built again with other features.
fn build_example(name: &str) -> TestResult<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let features: Vec<&str> = [
        ("quickstore/embedded", cfg!(feature = "embedded")),
        ("quickstore/streams", cfg!(feature = "streams")),
        ("quickstore/testing", cfg!(feature = "testing")),
    ]
    .into_iter()
    .filter_map(|(feature, on)| on.then_some(feature))
    .collect();
    let mut command = std::process::Command::new(cargo);
    command
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["build", "--example", name])
        .args([
            "--message-format",
            "json-render-diagnostics",
            "--no-default-features",
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit());
    if !features.is_empty() {
        command.args(["--features", &features.join(",")]);
    }
    if !cfg!(debug_assertions) {
        command.arg("--release");
    }
    let output = command.output()?;
    if !output.status.success() {
        return Err(format!("cargo build --example {name} failed: {}", output.status).into());
    }
    let stdout = String::from_utf8(output.stdout)?;
    for line in stdout.lines() {
        let message: Value = serde_json::from_str(line)?;
        let is_example = message["target"]["kind"] == json!(["example"]);
        if message["reason"] == "compiler-artifact"
            && is_example
            && message["target"]["name"] == name
        {
            if let Some(path) = message["executable"].as_str() {
                return Ok(PathBuf::from(path));
            }
        }
    }
    Err(format!("cargo built no executable for the example {name}").into())
}

/// The service's process, killed if the test ends before it does, and its log lines.
struct Service {
    child: Child,
    address: String,
    lines: mpsc::UnboundedReceiver<String>,
}

impl Service {
    async fn start(program: &Path, endpoint: &str, table: &str, more: &[&str]) -> TestResult<Self> {
        let mut child = Command::new(program)
            .args([
                "--endpoint",
                endpoint,
                "--table",
                table,
                "--listen",
                "127.0.0.1:0",
            ])
            .args(more)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let stderr = child.stderr.take().ok_or("no stderr")?;
        // Every line is shown (the test's output on failure) and kept.
        let (send, mut lines) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                eprintln!("service: {line}");
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        let listening = async {
            while let Some(line) = lines.recv().await {
                if let Some((_, rest)) = line.split_once("listening on http://") {
                    return rest.split_whitespace().next().map(str::to_owned);
                }
            }
            None
        };
        let address = tokio::time::timeout(PATIENCE, listening)
            .await
            .map_err(|_| "the service did not say where it listens")?
            .ok_or("the service exited before it listened")?;
        Ok(Service {
            child,
            address,
            lines,
        })
    }

    /// Sends SIGTERM with `kill`, as a process manager would.
    fn terminate(&self) -> TestResult {
        let pid = self.child.id().ok_or("the service has exited")?;
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()?;
        if !status.success() {
            return Err(format!("kill -TERM {pid}: {status}").into());
        }
        Ok(())
    }

    /// The log lines after the address, once the service has exited.
    async fn log(&mut self) -> Vec<String> {
        let mut log = Vec::new();
        while let Some(line) = self.lines.recv().await {
            log.push(line);
        }
        log
    }
}

/// A JSON client of the service over plain HTTP/1.1 with pooled connections.
#[derive(Clone)]
struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
    base: String,
}

impl Http {
    fn new(address: &str) -> Self {
        Http {
            client: Client::builder(TokioExecutor::new()).build_http(),
            base: format!("http://{address}"),
        }
    }

    fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> TestResult<Request<Full<Bytes>>> {
        let body = body.map(Value::to_string).unwrap_or_default();
        Ok(Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))?)
    }

    /// The status and the JSON body (`null` when empty).
    async fn send(&self, request: Request<Full<Bytes>>) -> TestResult<(StatusCode, Value)> {
        let response = self.client.request(request).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        let json = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&body)?
        };
        Ok((status, json))
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> TestResult<(StatusCode, Value)> {
        self.send(self.request(method, path, body)?).await
    }

    async fn text(&self, path: &str) -> TestResult<String> {
        let response = self
            .client
            .request(self.request(Method::GET, path, None)?)
            .await?;
        let body = response.into_body().collect().await?.to_bytes();
        Ok(String::from_utf8(body.to_vec())?)
    }

    /// Writes new items and increments counters in turn until the service stops answering,
    /// and returns what it acknowledged. A request that gets no answer is not acknowledged.
    async fn load(&self, client: usize, answered: &AtomicUsize) -> Acknowledged {
        let mut acknowledged = Acknowledged::default();
        for n in 0.. {
            let (path, body) = if n % 2 == 0 {
                let body = json!({ "client": client, "n": n });
                (format!("/items/Load/{client}-{n}"), Some(body))
            } else {
                (format!("/counters/c{}", (client + n) % COUNTERS), None)
            };
            let method = if body.is_some() {
                Method::PUT
            } else {
                Method::POST
            };
            let status = match self.call(method, &path, body.as_ref()).await {
                Ok((status, _)) => status,
                Err(_) => break, // the service is gone, or going
            };
            answered.fetch_add(1, Ordering::Relaxed);
            if !status.is_success() {
                acknowledged.refused.push((path, status));
            } else if body.is_some() {
                acknowledged
                    .items
                    .insert(format!("Load{client}-{n}"), (client, n));
            } else {
                let counter = format!("Counterc{}", (client + n) % COUNTERS);
                *acknowledged.increments.entry(counter).or_default() += 1;
            }
        }
        acknowledged
    }
}

/// Every item in the table, by partition key, read with the SDK (strongly consistent).
async fn scan(
    dynalite: &Dynalite,
    table: &str,
) -> TestResult<BTreeMap<String, HashMap<String, AttributeValue>>> {
    let mut items = BTreeMap::new();
    let mut pages = dynalite
        .client()
        .scan()
        .table_name(table)
        .consistent_read(true)
        .into_paginator()
        .items()
        .send();
    while let Some(item) = pages.try_next().await? {
        let key = item.get("_key").and_then(|key| key.as_s().ok()).cloned();
        items.insert(key.ok_or("an item without _key")?, item);
    }
    Ok(items)
}
