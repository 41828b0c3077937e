//! Backends for testing code that uses a [`Store`](crate::Store) (feature `testing`): a table
//! in memory, and a wrapper that misbehaves on purpose.
//!
//! [`MemoryBackend`] keeps items in a map and answers every request at once, keeping
//! DynamoDB's rules (batch limits, distinct keys, conditional writes): a table for tests and
//! benchmarks that need no disk, no server and no cleanup. Clones share the table, so a test
//! keeps one to look at what the store wrote.
//!
//! [`FaultyBackend`] wraps any [`Backend`](crate::backend::Backend) and, from a seed, injects the faults
//! a DynamoDB table shows under load or on a bad network: throttling, batches left partly
//! unprocessed, latency, requests that never answer, connection resets before or after the
//! request was applied, and writes refused for good. [`Faults`] says which, with a probability
//! per request; every fault is off by default. Meanwhile the wrapper records what it was asked
//! ([`Observed`]) and checks the requests against DynamoDB's rules: batch sizes, no key twice
//! in one batch, and optionally a number attribute whose value must never go backwards for a
//! key. It can also hold single-key reads ([`FaultyBackend::hold_gets`]) or writes
//! ([`FaultyBackend::hold_writes`]) at a [`Gate`], which the test opens, or through which it
//! releases requests one at a time, to stop the store at a chosen point.
//!
//! The faults are deterministic: all the random choices for a request are drawn from the
//! seeded generator when the request arrives, so the same seed and the same sequence of requests
//! give the same faults. Delays use [`tokio::time::sleep`], so tests on a paused clock
//! (`#[tokio::test(start_paused = true)]`) run them without waiting.
//!
//! ```
//! use std::collections::HashMap;
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! use quickstore::testing::{Fault, Faults, FaultyBackend, MemoryBackend};
//! use quickstore::{Key, Store};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let table = MemoryBackend::new();
//! let faults = Faults::new()
//!     .seed(7)
//!     .throttle(0.3)
//!     .partial(0.3)
//!     .reset_after(0.1)
//!     .latency(Duration::from_millis(1), Duration::from_millis(3))
//!     .monotonic("n");
//! // Keep a handle on the wrapper to look at what the store asked for.
//! let backend = Arc::new(FaultyBackend::new(table.clone(), faults));
//! let store = Store::builder(Arc::clone(&backend)).open().await?;
//!
//! for n in 1..=20 {
//!     let key = Key::new("Counter", format!("c{}", n % 4))?;
//!     store.upsert(&key, &HashMap::from([("n", n)])).await?;
//! }
//! store.close().await?; // retries through every injected fault
//!
//! let observed = backend.observed();
//! assert!(observed.violations.is_empty(), "{:?}", observed.violations);
//! assert!(observed.batch_write_sizes.iter().all(|&n| n <= 25));
//! let throttles = observed.injected.iter().filter(|i| i.fault == Fault::Throttle).count();
//! println!("{throttles} throttles, {} requests", observed.injected.len());
//! // Every write reached the table in the end.
//! assert_eq!(table.len(), 4);
//! # Ok(()) }
//! ```

mod faulty;
mod gate;
mod memory;

pub use faulty::{Fault, Faults, FaultyBackend, Injected, Observed, Operation};
pub use gate::Gate;
pub use memory::MemoryBackend;
