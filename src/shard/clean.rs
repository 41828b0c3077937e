//! A shard's clean entries, and the hash that finds them.
//!
//! A key is hashed once per operation: the hash picks the key's shard (by bits the tables do
//! not use), then finds the key among the shard's clean entries, which keep each key's hash
//! beside it. A read therefore hashes its key once, and compares the key's bytes only with an
//! entry whose whole hash matches.
//!
//! Keys of up to [`INLINE`] bytes, which most rendered keys are (`User42`, a kind and a
//! 12-character random identifier), are kept inside the entry rather than in an allocation of
//! their own: comparing the key then reads memory the lookup reads anyway (the entry), not one
//! more cache line per read, and an entry costs one allocation less.

use std::hash::{BuildHasher, Hash, Hasher};

use quick_cache::{Equivalent, Weighter};

use super::Cached;

/// Hashes rendered keys: foldhash (fast on short keys), seeded per store.
#[derive(Clone, Default)]
pub(crate) struct KeyHasher(foldhash::fast::RandomState);

impl KeyHasher {
    /// `key` with its hash.
    #[inline]
    pub(crate) fn hash<'k>(&self, key: &'k str) -> Hashed<'k> {
        Hashed {
            hash: self.0.hash_one(key),
            key,
        }
    }
}

/// A rendered key and its hash.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Hashed<'k> {
    hash: u64,
    key: &'k str,
}

impl<'k> Hashed<'k> {
    /// The key's shard among `shards`, from bits of the hash that the clean entries' table
    /// leaves alone: it takes its buckets from the lowest bits and its tags from the top 7, so
    /// the keys of one shard still spread over both. A multiplication, not a division.
    #[inline]
    pub(crate) fn shard(&self, shards: usize) -> usize {
        let bits = u128::from(self.hash.rotate_left(7));
        ((bits * shards as u128) >> 64) as usize
    }

    /// The rendered key.
    #[inline]
    pub(crate) fn as_str(&self) -> &'k str {
        self.key
    }
}

impl Hash for Hashed<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

/// An entry taken out of the cache, freed when dropped.
pub(crate) struct Removed {
    _entry: Option<(CleanKey, Cached)>,
}

/// The key of a clean entry: the rendered key and its hash.
#[derive(PartialEq, Eq)]
pub(crate) struct CleanKey {
    hash: u64,
    key: KeyBytes,
}

/// Keys of up to this many bytes are kept inside their entry: as many as fit in the size of
/// a boxed slice and its tag (24 bytes).
const INLINE: usize = 22;

/// A rendered key's bytes: inside the entry when short, else boxed. Zero-padded, so that
/// derived equality compares the bytes and their length.
#[derive(PartialEq, Eq)]
enum KeyBytes {
    Inline { len: u8, bytes: [u8; INLINE] },
    Boxed(Box<[u8]>),
}

impl KeyBytes {
    fn new(key: &str) -> Self {
        let key = key.as_bytes();
        let mut bytes = [0; INLINE];
        match (u8::try_from(key.len()), bytes.get_mut(..key.len())) {
            (Ok(len), Some(head)) => {
                head.copy_from_slice(key);
                Self::Inline { len, bytes }
            }
            _ => Self::Boxed(key.into()),
        }
    }

    #[inline]
    fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Inline { len, bytes } => bytes.get(..usize::from(*len)).unwrap_or_default(),
            Self::Boxed(bytes) => bytes,
        }
    }
}

impl Hash for CleanKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

impl Equivalent<CleanKey> for Hashed<'_> {
    #[inline]
    fn equivalent(&self, key: &CleanKey) -> bool {
        self.hash == key.hash && self.key.as_bytes() == key.key.as_bytes()
    }
}

/// The table's hasher: [`Hashed`] and [`CleanKey`] hash as the hash they carry, so the table
/// uses that hash as it is.
#[derive(Clone, Default)]
pub(crate) struct Carried;

impl BuildHasher for Carried {
    type Hasher = CarriedHasher;

    fn build_hasher(&self) -> CarriedHasher {
        CarriedHasher(0)
    }
}

/// See [`Carried`].
pub(crate) struct CarriedHasher(u64);

impl Hasher for CarriedHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write_u64(&mut self, hash: u64) {
        self.0 = self.0.rotate_left(29) ^ hash;
    }

    /// Only carried hashes reach this hasher; anything else still gets a usable hash.
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(byte)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
}

/// Weighs a clean entry as the shard counted it.
#[derive(Clone)]
pub(crate) struct ByWeight;

impl Weighter<CleanKey, Cached> for ByWeight {
    fn weight(&self, _key: &CleanKey, cached: &Cached) -> u64 {
        cached.weight
    }
}

/// A shard's clean entries: a byte-bounded, scan-resistant `quick_cache`.
pub(crate) struct Clean {
    cache: quick_cache::unsync::Cache<CleanKey, Cached, ByWeight, Carried>,
    hasher: KeyHasher,
}

impl Clean {
    /// Room for `capacity` bytes of entries, about `estimated_items` of them; `hasher` must
    /// be the one that hashes the keys given to [`get`](Self::get).
    pub(crate) fn new(estimated_items: usize, capacity: u64, hasher: KeyHasher) -> Self {
        Self {
            cache: quick_cache::unsync::Cache::with(
                estimated_items,
                capacity,
                ByWeight,
                Carried,
                Default::default(),
            ),
            hasher,
        }
    }

    /// The entry of a key hashed by this shard's hasher, counted as an access.
    #[inline]
    pub(crate) fn get(&self, key: Hashed<'_>) -> Option<&Cached> {
        self.cache.get(&key)
    }

    /// The entry of `key`, counted as an access.
    pub(crate) fn get_str(&self, key: &str) -> Option<&Cached> {
        self.get(self.hasher.hash(key))
    }

    /// The entry of `key`, not counted as an access.
    pub(crate) fn peek(&self, key: &str) -> Option<&Cached> {
        self.cache.peek(&self.hasher.hash(key))
    }

    /// Sets the entry of `key`.
    pub(crate) fn insert(&mut self, key: &str, cached: Cached) {
        let Hashed { hash, key } = self.hasher.hash(key);
        self.cache.insert(
            CleanKey {
                hash,
                key: KeyBytes::new(key),
            },
            cached,
        );
    }

    /// Removes the entry of `key`, if any, and returns it for the caller to drop once it has
    /// let go of the shard's lock.
    pub(crate) fn remove(&mut self, key: &str) -> Removed {
        Removed {
            _entry: self.cache.remove(&self.hasher.hash(key)),
        }
    }

    /// Drops every entry.
    pub(crate) fn clear(&mut self) {
        self.cache.clear();
    }

    /// Every entry's key. Keys are valid UTF-8 (they were `&str`); a key that somehow is not
    /// is left out.
    pub(crate) fn keys(&self) -> impl Iterator<Item = &str> + '_ {
        self.cache
            .iter()
            .filter_map(|(key, _)| std::str::from_utf8(key.key.as_bytes()).ok())
    }

    /// How many entries there are.
    pub(crate) fn len(&self) -> usize {
        self.cache.len()
    }

    /// What the entries weigh, in bytes.
    pub(crate) fn weight(&self) -> u64 {
        self.cache.weight()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Cached {
        Cached::new(None, 100, 0)
    }

    #[test]
    fn keys_spread_over_every_shard() {
        let hasher = KeyHasher::default();
        let mut counts = [0_usize; 64];
        for i in 0..10_000 {
            let key = format!("Doc{i:05}");
            counts[hasher.hash(&key).shard(counts.len())] += 1;
        }
        // 156 a shard on average.
        assert!(
            counts.iter().all(|&n| (100..220).contains(&n)),
            "{counts:?}"
        );
        for shards in [1, 3, 7, 1000] {
            for i in 0..1000 {
                assert!(hasher.hash(&i.to_string()).shard(shards) < shards);
            }
        }
    }

    #[test]
    fn a_key_is_found_by_its_hash_and_its_bytes() {
        let hasher = KeyHasher::default();
        let mut clean = Clean::new(16, 1 << 20, hasher.clone());
        clean.insert("User42", entry());
        assert!(clean.get(hasher.hash("User42")).is_some());
        assert!(clean.get_str("User42").is_some());
        assert!(clean.peek("User42").is_some());
        assert!(clean.get(hasher.hash("User43")).is_none());
        // Same hash, other bytes: not the same key.
        let forged = Hashed {
            key: "User43",
            ..hasher.hash("User42")
        };
        assert!(clean.get(forged).is_none());
        // Another store's hash of the same bytes: not found.
        assert!(clean.get(KeyHasher::default().hash("User42")).is_none());
        assert_eq!((clean.len(), clean.weight()), (1, 100));
        clean.remove("User42");
        assert!(clean.get(hasher.hash("User42")).is_none());
        assert_eq!((clean.len(), clean.weight()), (0, 0));
    }

    #[test]
    fn short_keys_are_kept_inline_and_long_ones_boxed() {
        assert_eq!(std::mem::size_of::<KeyBytes>(), 24);
        let hasher = KeyHasher::default();
        let mut clean = Clean::new(16, 1 << 20, hasher.clone());
        let keys: Vec<String> = [0, 1, INLINE - 1, INLINE, INLINE + 1, 300]
            .into_iter()
            .map(|len| "k".repeat(len))
            .collect();
        for key in &keys {
            let inline = matches!(KeyBytes::new(key), KeyBytes::Inline { .. });
            assert_eq!(inline, key.len() <= INLINE, "{} bytes", key.len());
            assert_eq!(KeyBytes::new(key).as_bytes(), key.as_bytes());
            clean.insert(key, entry());
        }
        for key in &keys {
            assert!(clean.get(hasher.hash(key)).is_some(), "{} bytes", key.len());
        }
        // A key that is a prefix of another, with its padding: not the same key.
        let forged = Hashed {
            key: &keys[2],
            ..hasher.hash(&keys[3])
        };
        assert!(clean.get(forged).is_none());
        assert_eq!(clean.len(), keys.len());
    }
}
