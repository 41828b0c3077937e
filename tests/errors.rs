//! What DynamoDB failures read like, on dynalite and on endpoints that never answer: a `Display`
//! of one line that names the operation and what went wrong (DynamoDB's code and message when
//! it answered), a short `Debug` with no SDK structures in it, and a report that says nothing
//! twice.

mod common;

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{future, ProvideCredentials};
use aws_sdk_dynamodb::config::{Credentials, Region};
use aws_sdk_dynamodb::Client;
use common::*;
use quickstore::backend::{Backend, Condition, Write};
use quickstore::{DynamoDbBackend, Error, Item, Store};

/// A loopback port where nothing listens: connections to it are refused.
const NOTHING_LISTENS: &str = "http://127.0.0.1:1";

/// Checks what every DynamoDB error must read like, and returns its report.
fn check_readable(err: &Error, operation: &str) -> TestResult<String> {
    let message = err.to_string();
    let report = err.report().to_string();
    let debug = format!("{err:?}");
    let alternate = format!("{err:#?}");
    let context = || format!("\n{message}\n{report}\n{debug}\n{alternate}");

    let opening = format!("the DynamoDB {operation} request failed: ");
    let refusal = "the DynamoDB refused the write of key";
    if !message.starts_with(&opening) && !report.contains(refusal) {
        return Err(format!("the message does not name {operation}:{}", context()).into());
    }
    assert!(!message.contains('\n'), "one line:{}", context());
    assert!(report.starts_with(&message), "{}", context());

    // Nothing is said twice: no part of the report comes back further on.
    let parts: Vec<&str> = report.split(": ").collect();
    for (i, part) in parts.iter().enumerate() {
        assert!(
            !parts[i + 1..].contains(part),
            "`{part}` is repeated:{}",
            context()
        );
    }

    // `Debug` is the code and the report, short, with none of the SDK's structures.
    assert_eq!(debug, format!("{}: {report}", err.code()));
    assert!(
        debug.len() < 300,
        "{} characters:{}",
        debug.len(),
        context()
    );
    for text in [&debug, &alternate] {
        for noise in [
            "ServiceError",
            "DispatchFailure",
            "ConnectorError",
            "ErrorMetadata",
            "raw:",
            "source:",
            "Some(",
        ] {
            assert!(!text.contains(noise), "`{noise}` in Debug:{}", context());
        }
    }
    assert!(!debug.contains(" { "), "a struct in Debug:{}", context());
    assert!(alternate.contains("BackendError {"), "{}", context());
    assert!(alternate.len() < 1_000, "{}", context());
    Ok(report)
}

/// A client for `endpoint` as an application builds one with `aws-config`, with `credentials`
/// (or none at all).
async fn client(endpoint: &str, credentials: Option<Credentials>) -> Client {
    let loader = aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"));
    let loader = match credentials {
        Some(credentials) => loader.credentials_provider(credentials),
        None => loader.no_credentials(),
    };
    Client::new(&loader.load().await)
}

fn test_credentials() -> Option<Credentials> {
    Some(Credentials::new("test", "test", None, None, "tests"))
}

/// A credentials provider that never has any, as the default chain on a machine with no
/// credentials configured (which would ask the instance metadata service over the network).
#[derive(Debug)]
struct NoCredentials;

impl ProvideCredentials for NoCredentials {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::ready(Err(CredentialsError::not_loaded(
            "no providers in chain provided credentials",
        )))
    }
}

#[tokio::test]
async fn a_client_without_credentials_provider_says_credentials_are_missing() -> TestResult {
    let backend = DynamoDbBackend::new(client(NOTHING_LISTENS, None).await, "items");
    let err = Store::builder(backend)
        .open()
        .await
        .err()
        .ok_or("a store opened without credentials")?;
    let report = check_readable(&err, "DescribeTable")?;
    assert_eq!(
        report,
        "the DynamoDB DescribeTable request failed: no credentials (the client has no \
         credentials provider)"
    );
    assert_eq!(err.service_code(), None);
    assert!(!err.is_retryable(), "no credentials is not worth repeating");
    Ok(())
}

#[tokio::test]
async fn a_credentials_provider_that_finds_none_says_credentials_are_missing() -> TestResult {
    let config = aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(NOTHING_LISTENS)
        .region(Region::new("us-east-1"))
        .credentials_provider(NoCredentials)
        .load()
        .await;
    let backend = DynamoDbBackend::new(Client::new(&config), "items");
    let err = backend
        .get("_key", "User1", true)
        .await
        .err()
        .ok_or("a read succeeded without credentials")?;
    let report = check_readable(&err, "GetItem")?;
    assert_eq!(
        report,
        "the DynamoDB GetItem request failed: no credentials (the credentials provider found \
         none): no providers in chain provided credentials"
    );
    assert!(!err.is_retryable(), "no credentials is not worth repeating");
    Ok(())
}

#[tokio::test]
async fn an_endpoint_where_nothing_listens_says_there_was_no_response() -> TestResult {
    let client = client(NOTHING_LISTENS, test_credentials()).await;
    let err = Store::builder(DynamoDbBackend::new(client.clone(), "items"))
        .open()
        .await
        .err()
        .ok_or("a store opened on a closed port")?;
    check_readable(&err, "DescribeTable")?;
    assert_eq!(
        err.to_string(),
        "the DynamoDB DescribeTable request failed: no response (I/O error)"
    );
    // The cause is below the message: the connection was refused.
    let report = err.report().to_string();
    assert!(report.contains(": tcp connect error: "), "{report}");
    assert!(err.is_retryable());
    assert_eq!(err.service_code(), None);

    let err = DynamoDbBackend::new(client, "items")
        .get("_key", "User1", true)
        .await
        .err()
        .ok_or("a read succeeded on a closed port")?;
    check_readable(&err, "GetItem")?;
    Ok(())
}

#[tokio::test]
async fn a_missing_table_says_dynamodbs_code_and_message() -> TestResult {
    let server = Dynalite::start()?;
    let client = client(server.endpoint(), test_credentials()).await;
    let err = DynamoDbBackend::new(client.clone(), "absent")
        .get("_key", "User1", true)
        .await
        .err()
        .ok_or("a read of a missing table succeeded")?;
    let report = check_readable(&err, "GetItem")?;
    assert_eq!(
        report,
        "the DynamoDB GetItem request failed: ResourceNotFoundException: Requested resource not \
         found"
    );
    assert_eq!(err.service_code(), Some("ResourceNotFoundException"));
    assert!(err.request_id().is_some_and(|id| !id.is_empty()));
    assert!(!err.is_retryable());

    // Through a store whose table is deleted under it.
    create_table(&client, "items", "_key").await?;
    let store = Store::builder(DynamoDbBackend::new(client.clone(), "items"))
        .open()
        .await?;
    client.delete_table().table_name("items").send().await?;
    let err = store
        .get::<serde_json::Value>(&key("User", 1))
        .await
        .err()
        .ok_or("a read of a deleted table succeeded")?;
    let report = check_readable(&err, "GetItem")?;
    assert!(
        report.starts_with(
            "the DynamoDB GetItem request failed: ResourceNotFoundException: Requested \
             resource not found"
        ),
        "{report}"
    );
    assert_eq!(err.service_code(), Some("ResourceNotFoundException"));
    store.close().await?;
    Ok(())
}

#[tokio::test]
async fn a_request_dynamodb_refuses_says_dynamodbs_code_and_message() -> TestResult {
    let server = Dynalite::start()?;
    let client = client(server.endpoint(), test_credentials()).await;
    create_table(&client, "items", "_key").await?;
    let backend = DynamoDbBackend::new(client.clone(), "items");

    // An item without its key.
    let mut item = Item::new();
    item.insert("n".into(), number(1));
    let err = backend
        .write_if("_key", &Write::Put(item), &Condition::Absent)
        .await
        .err()
        .ok_or("a put without the key succeeded")?;
    let report = check_readable(&err, "PutItem")?;
    assert_eq!(
        report,
        "the DynamoDB PutItem request failed: ValidationException: One or more parameter \
         values were invalid: Missing the key _key in the item"
    );
    assert_eq!(err.service_code(), Some("ValidationException"));

    // Through a store: the table is deleted under it, so the flush's write is refused.
    let store = Store::builder(backend).open().await?;
    let refused = key("User", 1);
    let mut item = Item::new();
    item.insert("n".into(), number(1));
    store.upsert_item(&refused, item).await?;
    client.delete_table().table_name("items").send().await?;
    let err = store
        .flush()
        .await
        .err()
        .ok_or("the flush reported no refusal")?;
    let report = check_readable(&err, "BatchWriteItem")?;
    assert!(report.contains(&format!("`{refused}`")), "{report}");
    assert!(report.contains(": ResourceNotFoundException: "), "{report}");
    assert_eq!(err.service_code(), Some("ResourceNotFoundException"));
    store.close().await?;
    Ok(())
}

#[tokio::test]
async fn a_request_that_times_out_says_there_was_no_response_in_time() -> TestResult {
    // Accepts connections (the kernel does, into the backlog) and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0")?;
    let endpoint = format!("http://{}", silent.local_addr()?);
    let config = aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(&endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "tests"))
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .operation_attempt_timeout(Duration::from_millis(100))
                .build(),
        )
        .load()
        .await;
    let err = DynamoDbBackend::new(Client::new(&config), "items")
        .get("_key", "User1", true)
        .await
        .err()
        .ok_or("a read from a silent server succeeded")?;
    let report = check_readable(&err, "GetItem")?;
    assert!(
        report.starts_with("the DynamoDB GetItem request failed: no response in time: "),
        "{report}"
    );
    assert!(err.is_retryable());
    Ok(())
}
