//! What the criterion benchmarks share: an in-memory backend, so that no disk or network is
//! measured. (A directory, so that cargo does not take it for a benchmark of its own.)

use std::collections::HashMap;

use async_trait::async_trait;
use parking_lot::Mutex;
use quickstore::{Backend, BatchGet, Item, Write};

/// A backend that keeps items in a map and accepts every write at once.
#[derive(Debug, Default)]
pub struct MemoryBackend {
    items: Mutex<HashMap<String, Item>>,
}

#[async_trait]
impl Backend for MemoryBackend {
    async fn check_table(&self, _partition_key: &str) -> quickstore::Result<()> {
        Ok(())
    }

    async fn get(
        &self,
        _partition_key: &str,
        key: &str,
        _consistent: bool,
    ) -> quickstore::Result<Option<Item>> {
        Ok(self.items.lock().get(key).cloned())
    }

    async fn batch_get(
        &self,
        _partition_key: &str,
        keys: &[String],
        _consistent: bool,
    ) -> quickstore::Result<BatchGet> {
        let items = self.items.lock();
        Ok(BatchGet::new(
            keys.iter().filter_map(|k| items.get(k).cloned()).collect(),
            Vec::new(),
        ))
    }

    async fn batch_write(
        &self,
        partition_key: &str,
        writes: &[Write],
    ) -> quickstore::Result<Vec<usize>> {
        let mut items = self.items.lock();
        for write in writes {
            match write {
                Write::Put(item) => {
                    let key = item
                        .get(partition_key)
                        .and_then(|value| value.as_s().ok())
                        .ok_or_else(|| {
                            quickstore::Error::permanent(
                                "BatchWriteItem",
                                format!("an item has no string attribute `{partition_key}`"),
                                None,
                            )
                        })?;
                    items.insert(key.clone(), item.clone());
                }
                Write::Delete(key) => {
                    items.remove(key);
                }
                other => {
                    return Err(quickstore::Error::permanent(
                        "BatchWriteItem",
                        format!("unsupported write {other:?}"),
                        None,
                    ))
                }
            }
        }
        Ok(Vec::new())
    }
}
