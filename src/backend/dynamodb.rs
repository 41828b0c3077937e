//! The production backend: a DynamoDB table through the AWS SDK.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{
    AttributeValue, DeleteRequest, KeySchemaElement, KeyType, KeysAndAttributes, PutRequest,
    ScalarAttributeType, WriteRequest,
};
use aws_sdk_dynamodb::Client;

use super::{key_schema_mismatch, string_attribute, Backend, BatchGet, Write};
use crate::error::{Error, Result};
use crate::item::Item;
use crate::retry::from_sdk;

/// A DynamoDB table, reached with an [`aws_sdk_dynamodb::Client`].
///
/// Build the client from `aws-config`'s standard chain; for a local server such as dynalite or
/// DynamoDB Local, set an endpoint URL on the config:
///
/// ```no_run
/// # async fn example() {
/// let config = aws_config::load_from_env().await;
/// let client = aws_sdk_dynamodb::Client::new(&config);
/// let backend = quickstore::DynamoDbBackend::new(client, "my-table");
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct DynamoDbBackend {
    client: Client,
    table: String,
}

impl DynamoDbBackend {
    /// A backend for `table`, reached through `client`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
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
}

fn key_item(partition_key: &str, key: &str) -> Item {
    HashMap::from([(partition_key.to_owned(), AttributeValue::S(key.to_owned()))])
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
            return Err(Error::permanent(
                "DescribeTable",
                format!("no description returned for table `{}`", self.table),
                None,
            ));
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
            .map_err(|err| Error::permanent("BatchGetItem", err.to_string(), None))?;
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
            .map_err(|err| Error::permanent("BatchWriteItem", err.to_string(), None))?;
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
}
