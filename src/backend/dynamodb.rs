//! The production backend: a DynamoDB table through the AWS SDK.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::operation::RequestId;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, DeleteRequest, KeySchemaElement, KeyType,
    KeysAndAttributes, PutRequest, ReturnValue, ReturnValuesOnConditionCheckFailure,
    ScalarAttributeType, TableStatus, WriteRequest,
};
use aws_sdk_dynamodb::Client;

use super::{
    key_schema_mismatch, string_attribute, Backend, BatchGet, Condition, Conditional, Write,
};
use crate::delta::{Delta, Mark, Updated, MAX_EXPRESSION_BYTES};
use crate::error::{BackendError, Error, Result};
use crate::item::Item;

/// The backend's name in error messages.
const NAME: &str = "DynamoDB";

/// DynamoDB error codes that mean "slow down".
const THROTTLE_CODES: &[&str] = &[
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "Throttling",
    "RequestLimitExceeded",
];

/// DynamoDB error codes that mean "slow down or try again".
const RETRYABLE_CODES: &[&str] = &[
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "Throttling",
    "RequestLimitExceeded",
    "LimitExceededException",
    "InternalServerError",
    "InternalFailure",
    "ServiceUnavailable",
    "TransactionConflictException",
];

/// Converts an AWS SDK error into an [`Error::Backend`]: the one place that decides which SDK
/// errors are worth repeating, and how they read.
///
/// Retryable: throttling and server-side error codes, HTTP 429 and 5xx, timeouts, I/O failures
/// while dispatching, and unreadable responses. Everything else (validation, missing tables,
/// access denied, bad requests) is permanent. A service error keeps DynamoDB's error code and
/// request id. The SDK's error is kept whole, as [`BackendError::original`].
pub(crate) fn from_sdk<E>(operation: &'static str, err: SdkError<E, HttpResponse>) -> Error
where
    E: ProvideErrorMetadata + RequestId + std::error::Error + Send + Sync + 'static,
{
    sdk_error(NAME, operation, err)
}

/// [`from_sdk`] for any AWS service: `service` names it in error messages.
///
/// The message says what went wrong in a few words: DynamoDB's error code and message when it
/// answered with an error, else the kind of failure in plain words (no credentials, no
/// response, an unreadable response...). The source is what the SDK says below the part the
/// message tells, so that a report of the chain never says a thing twice: nothing for a service
/// error (the operation's error and its exception only repeat the code and message), and for a
/// failure to get an answer the cause the SDK found (`tcp connect error: Connection refused`).
pub(crate) fn sdk_error<E>(
    service: &'static str,
    operation: &'static str,
    err: SdkError<E, HttpResponse>,
) -> Error
where
    E: ProvideErrorMetadata + RequestId + std::error::Error + Send + Sync + 'static,
{
    let status = err
        .raw_response()
        .map(|response| response.status().as_u16());
    let request_id = err.request_id().map(str::to_owned);
    let code = match &err {
        SdkError::ServiceError(service) => service.err().code(),
        _ => None,
    };
    let throttle = code.is_some_and(|code| THROTTLE_CODES.contains(&code)) || status == Some(429);
    let credentials = match &err {
        SdkError::ServiceError(_) => None,
        other => credentials_failure(other),
    };
    let retryable = match &err {
        SdkError::ServiceError(_) => {
            code.is_some_and(|code| RETRYABLE_CODES.contains(&code))
                || status.is_some_and(|s| s == 429 || s >= 500)
        }
        SdkError::TimeoutError(_) | SdkError::ResponseError(_) => true,
        // No credentials at all is not worth repeating; a provider that failed may recover.
        SdkError::DispatchFailure(failure) => {
            (failure.is_io() || failure.is_timeout() || failure.is_other())
                && !credentials.as_ref().is_some_and(|c| c.missing)
        }
        _ => false,
    };
    let error = BackendError::new(service, operation, retryable).throttling(throttle);
    match err {
        SdkError::ServiceError(service) => {
            let inner = service.into_err();
            let request_id = inner.request_id().map(str::to_owned).or(request_id);
            let message = service_message(inner.code(), inner.message(), status);
            let told = chain_len(&inner);
            error
                .with_service(inner.code(), request_id.as_deref())
                .with_message(message)
                .with_original(Some(Arc::new(inner)), told)
        }
        other => {
            let (message, told) = match credentials {
                Some(credentials) => (credentials.words, credentials.told),
                None => failure_message(&other),
            };
            error
                .with_service(None, request_id.as_deref())
                .with_message(message)
                .with_original(Some(Arc::new(other)), told)
        }
    }
    .into()
}

/// What the service answered: `ResourceNotFoundException: Requested resource not found`.
fn service_message(code: Option<&str>, message: Option<&str>, status: Option<u16>) -> String {
    let message = message.filter(|message| !message.trim().is_empty());
    match (code, message) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.to_owned(),
        (None, Some(message)) => message.to_owned(),
        (None, None) => match status {
            Some(status) => format!("an error answer with no error code (HTTP {status})"),
            None => "an error answer with no error code".to_owned(),
        },
    }
}

/// A request that got no usable answer, in plain words, and how many levels of the SDK's error
/// chain (the `SdkError` first) the words tell.
fn failure_message<E>(err: &SdkError<E, HttpResponse>) -> (String, usize)
where
    E: std::error::Error + 'static,
{
    match err {
        SdkError::ConstructionFailure(_) => ("the request could not be built".to_owned(), 1),
        SdkError::TimeoutError(_) => ("no response in time".to_owned(), 1),
        // The `SdkError`, then the connector's error (`io error`, `timeout`, ...).
        SdkError::DispatchFailure(failure) => {
            let words = if failure.is_timeout() {
                "no response in time"
            } else if failure.is_io() {
                "no response (I/O error)"
            } else if failure.is_user() {
                "the request could not be sent (the HTTP client refused it)"
            } else {
                "no response"
            };
            (words.to_owned(), 2)
        }
        SdkError::ResponseError(response) => (
            format!(
                "the response could not be read (HTTP {})",
                response.raw().status().as_u16()
            ),
            1,
        ),
        SdkError::ServiceError(_) => ("an error answer".to_owned(), 1),
        _ => ("the request failed in the SDK".to_owned(), 1),
    }
}

/// Why a request failed for want of credentials, in plain words.
struct CredentialsFailure {
    words: String,
    /// How many levels of the SDK's error chain (the `SdkError` first) the words tell.
    told: usize,
    /// There are no credentials at all (no provider, or it found none): repeating the request
    /// cannot help. A provider that failed or timed out may recover.
    missing: bool,
}

/// A request that failed for want of credentials: the SDK reports a credentials provider's
/// error, or a client without a credentials provider, as a failure to dispatch (or, before
/// it, to build) the request, with the reason somewhere in the chain.
fn credentials_failure(err: &(dyn std::error::Error + 'static)) -> Option<CredentialsFailure> {
    use aws_credential_types::provider::error::CredentialsError;
    let mut depth = 0;
    let mut node = Some(err);
    while let Some(cause) = node {
        if let Some(credentials) = cause.downcast_ref::<CredentialsError>() {
            // The credentials error's own sentence is told; its sources follow.
            let told = depth + 1;
            let words = match credentials {
                CredentialsError::CredentialsNotLoaded(_) => {
                    "no credentials (the credentials provider found none)".to_owned()
                }
                CredentialsError::ProviderTimedOut(timeout) => format!(
                    "could not load credentials (the credentials provider timed out after {:?})",
                    timeout.timeout_duration()
                ),
                CredentialsError::InvalidConfiguration(_) => {
                    "could not load credentials (the credentials provider is misconfigured)"
                        .to_owned()
                }
                CredentialsError::ProviderError(_) => {
                    "could not load credentials (the credentials provider failed)".to_owned()
                }
                _ => "could not load credentials".to_owned(),
            };
            let missing = matches!(credentials, CredentialsError::CredentialsNotLoaded(_));
            return Some(CredentialsFailure {
                words,
                told,
                missing,
            });
        }
        if lacks_identity_resolver(cause) {
            // The SDK's own text is a paragraph on auth schemes and code generation: the
            // message says it all.
            return Some(CredentialsFailure {
                words: "no credentials (the client has no credentials provider)".to_owned(),
                told: chain_len(err),
                missing: true,
            });
        }
        node = cause.source();
        depth += 1;
    }
    None
}

/// The SDK's error for a request it could not sign because the client has no identity (for
/// DynamoDB: no credentials provider). Its type is private to the SDK, so it is known by its
/// `Debug` form, `NoMatchingAuthSchemeError(.. NoIdentityResolver ..)`; if that ever changes,
/// the error reads as a plain failure with the SDK's own text.
fn lacks_identity_resolver(err: &(dyn std::error::Error + 'static)) -> bool {
    let debug = format!("{err:?}");
    debug.starts_with("NoMatchingAuthSchemeError") && debug.contains("NoIdentityResolver")
}

/// How many errors an error's chain holds, itself included.
fn chain_len(err: &(dyn std::error::Error + 'static)) -> usize {
    std::iter::successors(Some(err), |err| err.source()).count()
}

/// A failure of the SDK's request builders (a missing required field): a bug, never retried.
fn build_error(operation: &'static str, err: aws_sdk_dynamodb::error::BuildError) -> Error {
    BackendError::new(NAME, operation, false)
        .with_message("the request could not be built")
        .with_source(Some(Arc::new(err)))
        .into()
}

/// A DynamoDB table, reached with an [`aws_sdk_dynamodb::Client`].
///
/// Build the client from `aws-config`'s standard chain:
///
/// ```no_run
/// # async fn example() {
/// let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
///     .load()
///     .await;
/// let client = aws_sdk_dynamodb::Client::new(&config);
/// let backend = quickstore::DynamoDbBackend::new(client, "my-table");
/// # }
/// ```
///
/// A local server such as dynalite or DynamoDB Local needs an endpoint URL, and the SDK needs
/// a region and credentials to sign its requests even though the server checks neither. Set
/// them in code, as here, or in the environment (`AWS_ENDPOINT_URL`, `AWS_REGION`,
/// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`) for the call above to read:
///
/// ```no_run
/// # async fn example() -> quickstore::Result<()> {
/// let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
///     .endpoint_url("http://127.0.0.1:8000")
///     .region("us-east-1")
///     .test_credentials()
///     .load()
///     .await;
/// let client = aws_sdk_dynamodb::Client::new(&config);
/// let backend = quickstore::DynamoDbBackend::new(client, "my-table");
/// backend.create_table("_key").await?; // accepts the table if it is there already
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct DynamoDbBackend {
    client: Client,
    table: String,
}

impl DynamoDbBackend {
    /// A backend for `table`, reached through `client` with the SDK's own retries turned off.
    ///
    /// The store retries every request itself, by its
    /// [`RetryPolicy`](crate::RetryPolicy), and counts each attempt, retry and throttle in
    /// [`Stats`](crate::Stats). The SDK's retries (3 attempts by default) would run underneath
    /// and multiply the attempts while hiding them, so the backend uses a copy of `client`
    /// configured with `RetryConfig::disabled()`; everything else (credentials, region,
    /// endpoint, HTTP client, timeouts) is kept. [`with_sdk_retries`](Self::with_sdk_retries)
    /// keeps the client as it is.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        let config = client
            .config()
            .to_builder()
            .retry_config(RetryConfig::disabled())
            .build();
        Self::with_sdk_retries(Client::from_conf(config), table)
    }

    /// A backend for `table` that uses `client` unchanged, SDK retries included: each request
    /// the store counts may then be several on the wire.
    pub fn with_sdk_retries(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// The SDK client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// Creates the table in the layout quickstore and the Go library use (one string partition
    /// key named `partition_key`, no sort key, on-demand billing) and waits until it is active.
    /// A table that exists already is accepted if its key schema matches.
    ///
    /// For tools, tests and first steps; production tables usually come from infrastructure
    /// code. The CLI's `quickstore table create` calls this.
    ///
    /// # Errors
    ///
    /// [`Error::Validation`] when a table of that name exists with another key schema;
    /// [`Error::Backend`] when DynamoDB refuses or fails the request (no credentials, no
    /// permission, no answer), or the table does not become active in time.
    pub async fn create_table(&self, partition_key: &str) -> Result<()> {
        let definition = AttributeDefinition::builder()
            .attribute_name(partition_key)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .map_err(|err| build_error("CreateTable", err))?;
        let schema = KeySchemaElement::builder()
            .attribute_name(partition_key)
            .key_type(KeyType::Hash)
            .build()
            .map_err(|err| build_error("CreateTable", err))?;
        let created = self
            .client
            .create_table()
            .table_name(&self.table)
            .attribute_definitions(definition)
            .key_schema(schema)
            .billing_mode(BillingMode::PayPerRequest)
            .send()
            .await;
        match created {
            Ok(_) => {}
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_in_use_exception()) => {}
            Err(err) => return Err(from_sdk("CreateTable", err)),
        }
        // The SDK's waiter polls every 20 s at first; a local server is ready in milliseconds.
        let mut delay = std::time::Duration::from_millis(20);
        let deadline = tokio::time::Instant::now() + TABLE_ACTIVE_TIMEOUT;
        loop {
            let described = self
                .client
                .describe_table()
                .table_name(&self.table)
                .send()
                .await
                .map_err(|err| from_sdk("DescribeTable", err))?;
            if described.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
                return self.check_table(partition_key).await;
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(BackendError::new(NAME, "CreateTable", true)
                    .with_message(format!(
                        "table `{}` was not active after {} s",
                        self.table,
                        TABLE_ACTIVE_TIMEOUT.as_secs()
                    ))
                    .into());
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(std::time::Duration::from_secs(2));
        }
    }
}

/// How long [`DynamoDbBackend::create_table`] waits for a new table to become active.
const TABLE_ACTIVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

fn key_item(partition_key: &str, key: &str) -> Item {
    HashMap::from([(partition_key.to_owned(), AttributeValue::S(key.to_owned()))])
}

/// DynamoDB's limit on the operators and functions in an expression.
const MAX_EXPRESSION_OPERATORS: usize = 300;

/// A condition as DynamoDB's condition expression, with its attribute names and values.
struct Expression {
    text: String,
    names: HashMap<String, String>,
    values: Option<Item>,
}

/// The condition expression `write` is sent with.
fn expression(partition_key: &str, condition: &Condition, write: &Write) -> Result<Expression> {
    let names = |name: &str| HashMap::from([("#a".to_owned(), name.to_owned())]);
    Ok(match condition {
        Condition::Absent => Expression {
            text: "attribute_not_exists(#a)".into(),
            names: names(partition_key),
            values: None,
        },
        // Version 0 is an item written without versions: present, with no version attribute.
        Condition::Version {
            attribute,
            version: 0,
        } => Expression {
            text: "attribute_exists(#p) AND attribute_not_exists(#a)".into(),
            names: HashMap::from([
                ("#p".to_owned(), partition_key.to_owned()),
                ("#a".to_owned(), attribute.clone()),
            ]),
            values: None,
        },
        Condition::Version { attribute, version } => Expression {
            text: "#a = :v".into(),
            names: names(attribute),
            values: Some(HashMap::from([(
                ":v".to_owned(),
                AttributeValue::N(version.to_string()),
            )])),
        },
        Condition::Unchanged { attribute, item } => unchanged(attribute, item, write)?,
    })
}

/// The expression of [`Condition::Unchanged`]: no version attribute, every attribute of the
/// item read (its partition key among them) as it was, and every attribute the write adds
/// absent (but the version attribute and the writer attribute `{attribute}_by` beside it,
/// which are the store's own). A permanent error when that is more than DynamoDB's limits
/// allow in one expression: such a write is refused rather than sent without its condition.
fn unchanged(attribute: &str, item: &Item, write: &Write) -> Result<Expression> {
    let mut names = HashMap::from([("#v".to_owned(), attribute.to_owned())]);
    let mut values = Item::new();
    let mut clauses = vec!["attribute_not_exists(#v)".to_owned()];
    for (i, (name, value)) in item.iter().enumerate() {
        names.insert(format!("#a{i}"), name.clone());
        values.insert(format!(":a{i}"), value.clone());
        clauses.push(format!("#a{i} = :a{i}"));
    }
    if let Write::Put(written) = write {
        let writer = format!("{attribute}_by");
        let added = written
            .keys()
            .filter(|name| !item.contains_key(*name) && **name != attribute && **name != writer);
        for (i, name) in added.enumerate() {
            names.insert(format!("#n{i}"), name.clone());
            clauses.push(format!("attribute_not_exists(#n{i})"));
        }
    }
    let text = clauses.join(" AND ");
    // Each clause is one comparison or function, and each `AND` one more operator.
    let operators = 2 * clauses.len() - 1;
    if text.len() > MAX_EXPRESSION_BYTES || operators > MAX_EXPRESSION_OPERATORS {
        let operation = match write {
            Write::Put(_) => "PutItem",
            Write::Delete(_) => "DeleteItem",
        };
        return Err(BackendError::new(NAME, operation, false)
            .with_message(format!(
                "the item read has {} attributes, too many to compare in one condition \
                 expression (DynamoDB allows {MAX_EXPRESSION_OPERATORS} operators and \
                 {MAX_EXPRESSION_BYTES} bytes); a versioned write over an item without the \
                 version attribute is refused rather than written unconditionally",
                item.len()
            ))
            .into());
    }
    Ok(Expression {
        text,
        names,
        values: Some(values),
    })
}

fn describe_schema(schema: &[KeySchemaElement], types: &HashMap<&str, String>) -> String {
    let parts: Vec<String> = schema
        .iter()
        .map(|element| {
            let name = element.attribute_name();
            let ty = types.get(name).map(String::as_str).unwrap_or("?");
            format!("{name} ({}, {ty})", element.key_type().as_str())
        })
        .collect();
    format!("[{}]", parts.join(", "))
}

#[async_trait]
impl Backend for DynamoDbBackend {
    async fn check_table(&self, partition_key: &str) -> Result<()> {
        let output = self
            .client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
            .map_err(|err| {
                let not_found = err
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception());
                let err = from_sdk("DescribeTable", err);
                if not_found {
                    Error::validation(format!("table `{}` does not exist", self.table))
                } else {
                    err
                }
            })?;
        let Some(table) = output.table() else {
            return Err(BackendError::new(NAME, "DescribeTable", false)
                .with_message(format!(
                    "no description returned for table `{}`",
                    self.table
                ))
                .into());
        };
        let types: HashMap<&str, String> = table
            .attribute_definitions()
            .iter()
            .map(|d| (d.attribute_name(), d.attribute_type().as_str().to_owned()))
            .collect();
        let schema = table.key_schema();
        let matches = match schema {
            [only] => {
                only.key_type() == &KeyType::Hash
                    && only.attribute_name() == partition_key
                    && types.get(partition_key).map(String::as_str)
                        == Some(ScalarAttributeType::S.as_str())
            }
            _ => false,
        };
        if matches {
            Ok(())
        } else {
            Err(key_schema_mismatch(
                &self.table,
                partition_key,
                &describe_schema(schema, &types),
            ))
        }
    }

    async fn get(&self, partition_key: &str, key: &str, consistent: bool) -> Result<Option<Item>> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_item(partition_key, key)))
            .consistent_read(consistent)
            .send()
            .await
            .map_err(|err| from_sdk("GetItem", err))?;
        Ok(output.item)
    }

    async fn batch_get(
        &self,
        partition_key: &str,
        keys: &[String],
        consistent: bool,
    ) -> Result<BatchGet> {
        let request = KeysAndAttributes::builder()
            .set_keys(Some(
                keys.iter().map(|k| key_item(partition_key, k)).collect(),
            ))
            .consistent_read(consistent)
            .build()
            .map_err(|err| build_error("BatchGetItem", err))?;
        let mut output = self
            .client
            .batch_get_item()
            .request_items(&self.table, request)
            .send()
            .await
            .map_err(|err| from_sdk("BatchGetItem", err))?;
        let items = output
            .responses
            .as_mut()
            .and_then(|r| r.remove(&self.table))
            .unwrap_or_default();
        let unprocessed = output
            .unprocessed_keys
            .as_mut()
            .and_then(|u| u.remove(&self.table))
            .map(|ka| {
                ka.keys()
                    .iter()
                    .filter_map(|k| string_attribute(k, partition_key).map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        Ok(BatchGet { items, unprocessed })
    }

    async fn batch_write(&self, partition_key: &str, writes: &[Write]) -> Result<Vec<usize>> {
        let requests = writes
            .iter()
            .map(|write| {
                let request = match write {
                    Write::Put(item) => WriteRequest::builder()
                        .put_request(PutRequest::builder().set_item(Some(item.clone())).build()?),
                    Write::Delete(key) => WriteRequest::builder().delete_request(
                        DeleteRequest::builder()
                            .set_key(Some(key_item(partition_key, key)))
                            .build()?,
                    ),
                };
                Ok(request.build())
            })
            .collect::<Result<Vec<_>, aws_sdk_dynamodb::error::BuildError>>()
            .map_err(|err| build_error("BatchWriteItem", err))?;
        let mut output = self
            .client
            .batch_write_item()
            .request_items(&self.table, requests)
            .send()
            .await
            .map_err(|err| from_sdk("BatchWriteItem", err))?;
        let Some(unprocessed) = output
            .unprocessed_items
            .as_mut()
            .and_then(|u| u.remove(&self.table))
        else {
            return Ok(Vec::new());
        };
        let index: HashMap<&str, usize> = writes
            .iter()
            .enumerate()
            .filter_map(|(i, w)| w.key(partition_key).map(|k| (k, i)))
            .collect();
        Ok(unprocessed
            .iter()
            .filter_map(|request| {
                let key = match (request.put_request(), request.delete_request()) {
                    (Some(put), _) => string_attribute(put.item(), partition_key),
                    (None, Some(delete)) => string_attribute(delete.key(), partition_key),
                    (None, None) => None,
                }?;
                index.get(key).copied()
            })
            .collect())
    }

    async fn write_if(
        &self,
        partition_key: &str,
        write: &Write,
        condition: &Condition,
    ) -> Result<Conditional> {
        let expression = expression(partition_key, condition, write)?;
        let all_old = ReturnValuesOnConditionCheckFailure::AllOld;
        // On a failed condition DynamoDB returns the item that is there (`ALL_OLD`); `None`
        // then means there is none, unless the server ignores the option, so it is read.
        let conflict: Option<Option<Item>> = match write {
            Write::Put(item) => match self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item.clone()))
                .condition_expression(expression.text)
                .set_expression_attribute_names(Some(expression.names))
                .set_expression_attribute_values(expression.values)
                .return_values_on_condition_check_failure(all_old)
                .send()
                .await
            {
                Ok(_) => None,
                Err(err) => match err.as_service_error() {
                    Some(PutItemError::ConditionalCheckFailedException(failed)) => {
                        Some(failed.item().cloned())
                    }
                    _ => return Err(from_sdk("PutItem", err)),
                },
            },
            Write::Delete(key) => match self
                .client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(key_item(partition_key, key)))
                .condition_expression(expression.text)
                .set_expression_attribute_names(Some(expression.names))
                .set_expression_attribute_values(expression.values)
                .return_values_on_condition_check_failure(all_old)
                .send()
                .await
            {
                Ok(_) => None,
                Err(err) => match err.as_service_error() {
                    Some(DeleteItemError::ConditionalCheckFailedException(failed)) => {
                        Some(failed.item().cloned())
                    }
                    _ => return Err(from_sdk("DeleteItem", err)),
                },
            },
        };
        match conflict {
            None => Ok(Conditional::Written),
            Some(Some(current)) => Ok(Conditional::Conflict {
                current: Some(current),
            }),
            Some(None) => {
                let key = write.key(partition_key).unwrap_or_default().to_owned();
                let current = self.get(partition_key, &key, true).await?;
                Ok(Conditional::Conflict { current })
            }
        }
    }

    fn supports_conditional_writes(&self) -> bool {
        true
    }

    async fn update(
        &self,
        partition_key: &str,
        key: &str,
        delta: &Delta,
        mark: Option<&Mark>,
    ) -> Result<Updated> {
        let expression = delta.expression(mark);
        let answer = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_item(partition_key, key)))
            .update_expression(expression.text)
            .set_condition_expression(expression.condition)
            .set_expression_attribute_names(Some(expression.names))
            .set_expression_attribute_values(Some(expression.values))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match answer {
            // An update always leaves an item, at least its key.
            Ok(output) => Ok(Updated::Applied(
                output
                    .attributes
                    .unwrap_or_else(|| key_item(partition_key, key)),
            )),
            // Only a mark makes a condition here (see `Mark::allows`). Without the item in the
            // answer (a server that ignores `ALL_OLD`), it is read.
            Err(err) => match err.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(failed)) => {
                    let current = match failed.item() {
                        Some(item) => Some(item.clone()),
                        None => self.get(partition_key, key, true).await?,
                    };
                    Ok(Updated::Unchanged(current))
                }
                _ => Err(from_sdk("UpdateItem", err)),
            },
        }
    }

    fn supports_deltas(&self) -> bool {
        true
    }

    fn table(&self) -> Option<String> {
        Some(format!("dynamodb:{}", self.table))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sdk_does_not_retry_under_the_store() {
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .build();
        let client = Client::from_conf(config);
        let backend = DynamoDbBackend::new(client.clone(), "t");
        let attempts = |client: &Client| client.config().retry_config().map(|r| r.max_attempts());
        assert_eq!(attempts(backend.client()), Some(1));
        let kept = DynamoDbBackend::with_sdk_retries(client.clone(), "t");
        assert_eq!(attempts(kept.client()), attempts(&client));
    }

    use std::error::Error as _;

    use aws_credential_types::provider::error::CredentialsError;
    use aws_sdk_dynamodb::error::{ConnectorError, ErrorMetadata};
    use aws_sdk_dynamodb::operation::get_item::GetItemError;
    use aws_sdk_dynamodb::types::error::ResourceNotFoundException;

    type TestResult = std::result::Result<(), Box<dyn std::error::Error>>;

    fn response(status: u16) -> std::result::Result<HttpResponse, Box<dyn std::error::Error>> {
        Ok(HttpResponse::new(status.try_into()?, "".into()))
    }

    /// The error's message, and the report after it.
    fn texts(err: &Error) -> (String, String) {
        let message = err.to_string();
        let report = err.report().to_string();
        let rest = report.strip_prefix(&message).unwrap_or_default().to_owned();
        (message, rest)
    }

    #[test]
    fn service_errors_say_dynamodbs_code_and_message_once() -> TestResult {
        let meta = ErrorMetadata::builder()
            .code("ResourceNotFoundException")
            .message("Requested resource not found")
            .custom("aws_request_id", "REQ1")
            .build();
        let modeled = GetItemError::ResourceNotFoundException(
            ResourceNotFoundException::builder()
                .message("Requested resource not found")
                .meta(meta)
                .build(),
        );
        let err = from_sdk("GetItem", SdkError::service_error(modeled, response(400)?));
        assert_eq!(
            texts(&err),
            (
                "the DynamoDB GetItem request failed: ResourceNotFoundException: Requested \
                 resource not found"
                    .to_owned(),
                String::new()
            )
        );
        assert_eq!(err.service_code(), Some("ResourceNotFoundException"));
        assert_eq!(err.request_id(), Some("REQ1"));
        assert!(!err.is_retryable());
        let original = err.backend().and_then(BackendError::original);
        assert!(matches!(
            original.and_then(|e| e.downcast_ref::<GetItemError>()),
            Some(GetItemError::ResourceNotFoundException(_))
        ));

        // Codes the SDK does not model for the operation read the same.
        let unmodeled = GetItemError::generic(
            ErrorMetadata::builder()
                .code("ValidationException")
                .message("The provided key element does not match the schema")
                .build(),
        );
        let err = from_sdk(
            "GetItem",
            SdkError::service_error(unmodeled, response(400)?),
        );
        assert_eq!(
            err.report().to_string(),
            "the DynamoDB GetItem request failed: ValidationException: The provided key element \
             does not match the schema"
        );
        // An answer with a code and no message, or with neither.
        let bare =
            GetItemError::generic(ErrorMetadata::builder().code("ThrottlingException").build());
        let err = from_sdk("GetItem", SdkError::service_error(bare, response(400)?));
        assert_eq!(
            err.report().to_string(),
            "the DynamoDB GetItem request failed: ThrottlingException"
        );
        assert!(err.is_throttle() && err.is_retryable());
        let empty = GetItemError::generic(ErrorMetadata::builder().build());
        let err = from_sdk("GetItem", SdkError::service_error(empty, response(503)?));
        assert_eq!(
            err.report().to_string(),
            "the DynamoDB GetItem request failed: an error answer with no error code (HTTP 503)"
        );
        assert!(err.is_retryable());
        Ok(())
    }

    #[test]
    fn failures_to_get_an_answer_say_which_and_keep_the_cause_below() -> TestResult {
        let refused =
            || std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "Connection refused");
        let cases: Vec<(SdkError<GetItemError, HttpResponse>, &str, bool)> = vec![
            (
                SdkError::dispatch_failure(ConnectorError::io(refused().into())),
                "no response (I/O error): Connection refused",
                true,
            ),
            (
                SdkError::dispatch_failure(ConnectorError::timeout(
                    "HTTP read timeout occurred after 3s".into(),
                )),
                "no response in time: HTTP read timeout occurred after 3s",
                true,
            ),
            (
                SdkError::dispatch_failure(ConnectorError::user("bad header".into())),
                "the request could not be sent (the HTTP client refused it): bad header",
                false,
            ),
            (
                SdkError::dispatch_failure(ConnectorError::other("pool closed".into(), None)),
                "no response: pool closed",
                true,
            ),
            (
                SdkError::timeout_error("operation timeout occurred after 10s"),
                "no response in time: operation timeout occurred after 10s",
                true,
            ),
            (
                SdkError::construction_failure("endpoint could not be resolved"),
                "the request could not be built: endpoint could not be resolved",
                false,
            ),
            (
                SdkError::response_error("truncated body", response(200)?),
                "the response could not be read (HTTP 200): truncated body",
                true,
            ),
        ];
        for (sdk, expected, retryable) in cases {
            let err = from_sdk("GetItem", sdk);
            assert_eq!(
                err.report().to_string(),
                format!("the DynamoDB GetItem request failed: {expected}")
            );
            assert_eq!(err.is_retryable(), retryable, "{err}");
            assert_eq!(err.service_code(), None);
            assert!(err
                .backend()
                .and_then(BackendError::original)
                .is_some_and(|e| e.is::<SdkError<GetItemError, HttpResponse>>()));
        }
        Ok(())
    }

    #[test]
    fn failures_for_want_of_credentials_say_so() {
        let credentials = |err: CredentialsError| -> SdkError<GetItemError, HttpResponse> {
            SdkError::dispatch_failure(ConnectorError::other(err.into(), None))
        };
        let cases = [
            (
                credentials(CredentialsError::not_loaded(
                    "no providers in chain provided credentials",
                )),
                "no credentials (the credentials provider found none): no providers in chain \
                 provided credentials",
            ),
            (
                credentials(CredentialsError::provider_timed_out(
                    std::time::Duration::from_secs(5),
                )),
                "could not load credentials (the credentials provider timed out after 5s)",
            ),
            (
                credentials(CredentialsError::provider_error("the token expired")),
                "could not load credentials (the credentials provider failed): the token expired",
            ),
            (
                credentials(CredentialsError::invalid_configuration("no region")),
                "could not load credentials (the credentials provider is misconfigured): no region",
            ),
            (
                SdkError::construction_failure(CredentialsError::not_loaded_no_source()),
                "no credentials (the credentials provider found none)",
            ),
        ];
        for (sdk, expected) in cases {
            let err = from_sdk("GetItem", sdk);
            assert_eq!(
                err.report().to_string(),
                format!("the DynamoDB GetItem request failed: {expected}")
            );
        }
    }

    #[test]
    fn chains_are_counted_whole() {
        let io = std::io::Error::other("x");
        assert_eq!(chain_len(&io), 1);
        let connector = ConnectorError::io(io.into());
        assert_eq!(chain_len(&connector), 2);
        assert!(connector.source().is_some());
    }
}
