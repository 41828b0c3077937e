//! Warm restarts. At `close`, a store given a file
//! ([`StoreBuilder::warm_restart`](crate::StoreBuilder::warm_restart)) saves the keys of the
//! clean entries its cache holds, found or known absent: keys only, never values, so nothing
//! stale survives a restart. At `open` it reads them back and prefetches them in the
//! background, in batches, while it serves; [`Stats::prefetched`](crate::Stats::prefetched) and
//! [`Stats::prefetch_hits`](crate::Stats::prefetch_hits) count what that loaded and how much of
//! it was then read. A file that is missing, damaged, or saved by a store of another table or
//! partition key is ignored, with a warning.
//!
//! The file: the magic `QSWARM01`; the table's name ([`Backend::table`], empty when the backend
//! has none) and the partition key attribute, each as a little-endian `u32` length and its
//! bytes; the number of keys (`u32`) and each key, as a length and its bytes; and a CRC-32C of
//! everything before it (`u32`). It is written to a temporary file beside it and renamed over
//! it, so that a crash while saving leaves the old file or the new one.
//!
//! [`Backend::table`]: crate::Backend::table

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures_util::stream::{self, StreamExt as _};

use crate::backend::MAX_BATCH_GET_KEYS;
use crate::load::Loader;
use crate::shared::Shared;

/// The file's first bytes, naming the format and its version.
const MAGIC: &[u8; 8] = b"QSWARM01";

/// Chunks of [`MAX_BATCH_GET_KEYS`] keys the warm-up prefetches at once: each goes out as a
/// batch of its own at once, and the reads the store serves meanwhile keep room in flight.
const CHUNKS_IN_FLIGHT: usize = 4;

/// What a warm-restart file holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Saved {
    /// The name of the table the keys are from ([`Backend::table`](crate::backend::Backend::table));
    /// empty when the backend has none.
    pub table: String,
    /// The partition key attribute of the store that saved them.
    pub partition_key: String,
    /// The rendered keys.
    pub keys: Vec<String>,
}

/// The file's bytes for `saved`. Strings longer than `u32::MAX` bytes cannot occur: keys are at
/// most 2048 bytes, and the names are a table's and an attribute's.
pub fn encode(saved: &Saved) -> Vec<u8> {
    fn put(out: &mut Vec<u8>, bytes: &[u8]) {
        out.extend_from_slice(&u32::try_from(bytes.len()).unwrap_or(u32::MAX).to_le_bytes());
        out.extend_from_slice(bytes);
    }
    let size = saved.keys.iter().map(|key| key.len() + 4).sum::<usize>();
    let mut out = Vec::with_capacity(MAGIC.len() + size + 64);
    out.extend_from_slice(MAGIC);
    put(&mut out, saved.table.as_bytes());
    put(&mut out, saved.partition_key.as_bytes());
    let count = u32::try_from(saved.keys.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&count.to_le_bytes());
    for key in saved.keys.iter().take(count as usize) {
        put(&mut out, key.as_bytes());
    }
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Reads a file's bytes back; `Err` says why they are not a warm-restart file.
pub fn decode(bytes: &[u8]) -> Result<Saved, String> {
    let (body, crc) = bytes
        .split_last_chunk::<4>()
        .ok_or("shorter than its checksum")?;
    if crc32c::crc32c(body) != u32::from_le_bytes(*crc) {
        return Err("its checksum does not match: the file is damaged".into());
    }
    let mut reader = Reader(body);
    if reader.take(MAGIC.len())? != MAGIC {
        return Err("it does not start as a warm-restart file".into());
    }
    let table = reader.string()?;
    let partition_key = reader.string()?;
    let count = reader.u32()? as usize;
    // Each key takes at least its length: a count the rest cannot hold is refused before
    // anything is allocated for it.
    if count > reader.0.len() / 4 {
        return Err(format!("it says {count} keys, more than it holds"));
    }
    let mut keys = Vec::with_capacity(count);
    for _ in 0..count {
        keys.push(reader.string()?);
    }
    if !reader.0.is_empty() {
        return Err("bytes follow its last key".into());
    }
    Ok(Saved {
        table,
        partition_key,
        keys,
    })
}

/// The bytes of a file not read yet.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize) -> Result<&'a [u8], String> {
        if len > self.0.len() {
            return Err("it ends early".into());
        }
        let (head, rest) = self.0.split_at(len);
        self.0 = rest;
        Ok(head)
    }

    fn u32(&mut self) -> Result<u32, String> {
        let (head, rest) = self.0.split_first_chunk::<4>().ok_or("it ends early")?;
        self.0 = rest;
        Ok(u32::from_le_bytes(*head))
    }

    fn string(&mut self) -> Result<String, String> {
        let len = self.u32()? as usize;
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| "a string in it is not UTF-8".to_string())
    }
}

/// What identifies the store's table in a file: its name and partition key attribute.
fn identity(shared: &Shared) -> (String, String) {
    (
        shared.backend().table().unwrap_or_default(),
        shared.options().partition_key.to_string(),
    )
}

/// Saves the keys of every clean entry to `path`; returns how many. Blocking file I/O.
pub(crate) fn save(shared: &Shared, path: &Path) -> std::io::Result<usize> {
    let (table, partition_key) = identity(shared);
    let keys: Vec<String> = shared
        .shards()
        .iter()
        .flat_map(|shard| shard.clean_keys())
        .collect();
    let count = keys.len();
    let bytes = encode(&Saved {
        table,
        partition_key,
        keys,
    });
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    let mut file = std::fs::File::create(&temporary)?;
    file.write_all(&bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&temporary, path)?;
    Ok(count)
}

/// Reads the keys saved in `path` for this store, or says (as a warning) why there are none
/// to prefetch. Blocking file I/O.
fn saved_keys(shared: &Shared, path: &Path) -> Option<Vec<String>> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(err) => {
            tracing::warn!(path = %path.display(), error = %err, "warm restart: no saved keys to prefetch; starting cold");
            return None;
        }
    };
    let saved = match decode(&bytes) {
        Ok(saved) => saved,
        Err(reason) => {
            tracing::warn!(path = %path.display(), reason = %reason, "warm restart: the saved keys are unreadable; starting cold");
            return None;
        }
    };
    let (table, partition_key) = identity(shared);
    if (saved.table.as_str(), saved.partition_key.as_str()) != (&table, &partition_key) {
        tracing::warn!(
            path = %path.display(),
            saved_table = %saved.table,
            saved_partition_key = %saved.partition_key,
            table = %table,
            partition_key = %partition_key,
            "warm restart: the saved keys are another table's; starting cold"
        );
        return None;
    }
    Some(saved.keys)
}

/// Prefetches the keys saved in `path`, in batches, while the store serves.
pub(crate) async fn warm_up(loader: Loader, shared: Arc<Shared>, path: PathBuf) {
    let keys = {
        let shared = Arc::clone(&shared);
        match tokio::task::spawn_blocking(move || saved_keys(&shared, &path)).await {
            Ok(Some(keys)) => keys,
            Ok(None) => return,
            Err(err) => {
                tracing::warn!(error = %err, "warm restart: reading the saved keys failed");
                return;
            }
        }
    };
    let chunks: Vec<Vec<String>> = keys
        .chunks(MAX_BATCH_GET_KEYS)
        .map(<[String]>::to_vec)
        .collect();
    let prefetches: Vec<_> = chunks
        .iter()
        .map(|chunk| loader.prefetch(chunk.iter().map(String::as_str).collect()))
        .collect();
    let mut prefetches = stream::iter(prefetches).buffer_unordered(CHUNKS_IN_FLIGHT);
    let mut failures = 0_usize;
    while let Some(done) = prefetches.next().await {
        if let Err(err) = done {
            if shared.is_closed() {
                return;
            }
            failures += 1;
            if failures == 1 {
                tracing::warn!(error = %err.report(), "warm restart: a prefetch failed; its keys will be read when asked for");
            }
        }
    }
    tracing::debug!(keys = keys.len(), failures, "warm restart: prefetch done");
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn saved(keys: &[&str]) -> Saved {
        Saved {
            table: "dynamodb:users".into(),
            partition_key: "_key".into(),
            keys: keys.iter().map(|key| key.to_string()).collect(),
        }
    }

    #[test]
    fn a_saved_file_reads_back() {
        for keys in [&[][..], &["User1", "User1.Post2", "ü"][..]] {
            assert_eq!(decode(&encode(&saved(keys))), Ok(saved(keys)));
        }
    }

    #[test]
    fn damage_is_refused() {
        let bytes = encode(&saved(&["User1", "User2"]));
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        for at in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x10;
            assert!(decode(&damaged).is_err(), "byte {at} flipped");
        }
    }

    proptest! {
        #[test]
        fn any_keys_read_back(
            table in ".{0,20}",
            partition_key in ".{0,10}",
            keys in proptest::collection::vec(".{0,40}", 0..50),
        ) {
            let saved = Saved { table, partition_key, keys };
            prop_assert_eq!(decode(&encode(&saved)), Ok(saved));
        }

        #[test]
        fn any_bytes_are_read_or_refused(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode(&bytes);
        }
    }
}
