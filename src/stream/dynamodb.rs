//! A DynamoDB table's stream, read through the AWS SDK for DynamoDB Streams.

use std::collections::HashMap;
use std::time::SystemTime;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodbstreams::operation::get_records::GetRecordsError;
use aws_sdk_dynamodbstreams::types::{
    AttributeValue as StreamValue, OperationType, ShardIteratorType, StreamViewType as SdkViewType,
};
use aws_sdk_dynamodbstreams::Client;

use super::{
    ChangeStream, StreamDescription, StreamImage, StreamRecord, StreamRecords, StreamShard,
    StreamStart, StreamViewType,
};
use crate::backend::sdk_error;
use crate::error::{Error, Result};
use crate::item::Item;

/// The service's name in error messages.
const NAME: &str = "DynamoDB Streams";

/// The most records one `GetRecords` request returns.
const RECORDS_PER_REQUEST: i32 = 1000;

/// A DynamoDB table's stream, reached with an [`aws_sdk_dynamodbstreams::Client`] built from
/// the same configuration as the table's client. Needs the `streams` feature, off by default.
///
/// ```no_run
/// # async fn example() -> quickstore::Result<()> {
/// let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
///     .load()
///     .await;
/// let tables = aws_sdk_dynamodb::Client::new(&config);
/// let streams = aws_sdk_dynamodbstreams::Client::new(&config);
/// let stream = quickstore::stream::DynamoDbStream::of_table(streams, &tables, "my-table").await?;
/// let store = quickstore::Store::builder(quickstore::DynamoDbBackend::new(tables, "my-table"))
///     .follow_stream(stream)
///     .open()
///     .await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct DynamoDbStream {
    client: Client,
    arn: String,
}

impl DynamoDbStream {
    /// The stream with this ARN.
    pub fn new(client: Client, stream_arn: impl Into<String>) -> Self {
        Self {
            client,
            arn: stream_arn.into(),
        }
    }

    /// The current stream of `table`, found with `DescribeTable`.
    ///
    /// # Errors
    ///
    /// [`Error::Validation`] when the table has no stream enabled; [`Error::Backend`] when
    /// `DescribeTable` fails.
    pub async fn of_table(
        client: Client,
        tables: &aws_sdk_dynamodb::Client,
        table: &str,
    ) -> Result<Self> {
        let described = tables
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|err| sdk_error("DynamoDB", "DescribeTable", err))?;
        let table_description = described.table();
        let enabled = table_description
            .and_then(|t| t.stream_specification())
            .is_some_and(|spec| spec.stream_enabled());
        match table_description.and_then(|t| t.latest_stream_arn()) {
            Some(arn) if enabled => Ok(Self::new(client, arn)),
            _ => Err(Error::validation(format!(
                "table `{table}` has no stream enabled: enable one with the view type \
                 NEW_IMAGE or NEW_AND_OLD_IMAGES to follow it"
            ))),
        }
    }

    /// The stream's ARN.
    pub fn arn(&self) -> &str {
        &self.arn
    }
}

#[async_trait]
impl ChangeStream for DynamoDbStream {
    async fn describe(&self) -> Result<StreamDescription> {
        let mut shards = Vec::new();
        let mut view = None;
        let mut start: Option<String> = None;
        loop {
            let page = self
                .client
                .describe_stream()
                .stream_arn(&self.arn)
                .set_exclusive_start_shard_id(start.take())
                .send()
                .await
                .map_err(|err| sdk_error(NAME, "DescribeStream", err))?;
            let Some(description) = page.stream_description() else {
                break;
            };
            view = view.or(description.stream_view_type().cloned());
            shards.extend(description.shards().iter().filter_map(|shard| {
                Some(StreamShard::new(
                    shard.shard_id()?,
                    shard.parent_shard_id().map(str::to_owned),
                    shard
                        .sequence_number_range()
                        .and_then(|range| range.ending_sequence_number())
                        .is_some(),
                ))
            }));
            match description.last_evaluated_shard_id() {
                Some(last) => start = Some(last.to_owned()),
                None => break,
            }
        }
        let view = match view {
            Some(SdkViewType::NewImage) => StreamViewType::NewImage,
            Some(SdkViewType::NewAndOldImages) => StreamViewType::NewAndOldImages,
            Some(SdkViewType::OldImage) => StreamViewType::OldImage,
            _ => StreamViewType::KeysOnly,
        };
        Ok(StreamDescription::new(view, shards))
    }

    async fn iterator(&self, shard: &str, start: &StreamStart) -> Result<String> {
        let request = self
            .client
            .get_shard_iterator()
            .stream_arn(&self.arn)
            .shard_id(shard);
        let request = match start {
            StreamStart::Latest => request.shard_iterator_type(ShardIteratorType::Latest),
            StreamStart::TrimHorizon => request.shard_iterator_type(ShardIteratorType::TrimHorizon),
            StreamStart::After(sequence) => request
                .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                .sequence_number(sequence),
        };
        let answer = request
            .send()
            .await
            .map_err(|err| sdk_error(NAME, "GetShardIterator", err))?;
        answer.shard_iterator().map(str::to_owned).ok_or_else(|| {
            Error::permanent(
                "GetShardIterator",
                format!("no iterator for shard `{shard}`: it has ended"),
                None,
            )
        })
    }

    async fn records(&self, iterator: &str) -> Result<StreamRecords> {
        let answer = self
            .client
            .get_records()
            .shard_iterator(iterator)
            .limit(RECORDS_PER_REQUEST)
            .send()
            .await;
        let answer = match answer {
            Ok(answer) => answer,
            Err(err) => {
                return match err.as_service_error() {
                    Some(GetRecordsError::ExpiredIteratorException(_)) => {
                        Ok(StreamRecords::Expired)
                    }
                    Some(GetRecordsError::TrimmedDataAccessException(_)) => {
                        Ok(StreamRecords::Trimmed)
                    }
                    _ => Err(sdk_error(NAME, "GetRecords", err)),
                }
            }
        };
        let changes = answer
            .records()
            .iter()
            .filter_map(|record| {
                let change = record.dynamodb()?;
                let after = match record.event_name() {
                    Some(OperationType::Remove) => StreamImage::Removed,
                    _ => change
                        .new_image()
                        .and_then(item)
                        .map_or(StreamImage::Unknown, StreamImage::Present),
                };
                let created = change
                    .approximate_creation_date_time()
                    .and_then(|at| SystemTime::try_from(*at).ok())
                    .unwrap_or(SystemTime::UNIX_EPOCH);
                Some(StreamRecord::new(
                    item(change.keys()?)?,
                    after,
                    change.sequence_number()?,
                    created,
                ))
            })
            .collect();
        Ok(StreamRecords::Read {
            changes,
            next: answer.next_shard_iterator().map(str::to_owned),
        })
    }
}

/// A stream image as an item (the two SDKs have their own, identical, attribute value types);
/// `None` if it holds a type newer than this code.
fn item(image: &HashMap<String, StreamValue>) -> Option<Item> {
    image
        .iter()
        .map(|(name, value)| Some((name.clone(), value_of(value)?)))
        .collect()
}

fn value_of(value: &StreamValue) -> Option<AttributeValue> {
    Some(match value {
        StreamValue::B(blob) => AttributeValue::B(blob.clone()),
        StreamValue::Bool(b) => AttributeValue::Bool(*b),
        StreamValue::Bs(blobs) => AttributeValue::Bs(blobs.clone()),
        StreamValue::L(list) => {
            AttributeValue::L(list.iter().map(value_of).collect::<Option<_>>()?)
        }
        StreamValue::M(map) => AttributeValue::M(item(map)?),
        StreamValue::N(n) => AttributeValue::N(n.clone()),
        StreamValue::Ns(ns) => AttributeValue::Ns(ns.clone()),
        StreamValue::Null(null) => AttributeValue::Null(*null),
        StreamValue::S(s) => AttributeValue::S(s.clone()),
        StreamValue::Ss(ss) => AttributeValue::Ss(ss.clone()),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_images_become_items() {
        let image = HashMap::from([
            ("s".to_string(), StreamValue::S("x".into())),
            (
                "m".to_string(),
                StreamValue::M(HashMap::from([(
                    "l".to_string(),
                    StreamValue::L(vec![StreamValue::N("1".into()), StreamValue::Bool(true)]),
                )])),
            ),
        ]);
        let expected = Item::from([
            ("s".to_string(), AttributeValue::S("x".into())),
            (
                "m".to_string(),
                AttributeValue::M(Item::from([(
                    "l".to_string(),
                    AttributeValue::L(vec![
                        AttributeValue::N("1".into()),
                        AttributeValue::Bool(true),
                    ]),
                )])),
            ),
        ]);
        assert_eq!(item(&image), Some(expected));
    }
}
