//! What the criterion benchmarks share: an in-memory backend, `quickstore::testing`'s table (a
//! `HashMap` behind a mutex that accepts every write at once), so that no disk or network is
//! measured. (A directory, so that cargo does not take it for a benchmark of its own.)

pub use quickstore::testing::MemoryBackend;
