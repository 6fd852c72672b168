//! A memcached session store: [`MemcachedStore`] implements
//! [`session_core::Store`] and [`session_core::StoreAdmin`] on memcached's
//! meta protocol (`mg`/`ms`/`md`/`ma`), through the async client of the
//! `memcache` crate (`memcache::exp`); [`MemcachedConfig`] configures it and
//! [`MemcachedConnector`] opens it from a `memcache://` URL.
//!
//! * **Keys.** Store keys become `<prefix><generation>:k<key>` with bytes
//!   outside printable ASCII (and `%`) percent-escaped, or
//!   `<prefix><generation>:h<SHA-256 hex>` when that would not fit
//!   memcached's 250 bytes: every valid key works, distinct keys stay
//!   distinct, and session ids stay readable.
//! * **Exact expiry.** memcached's clock counts whole seconds from a
//!   moment the client cannot see, so a TTL of `n` s ends anywhere from
//!   about `n - 1` (`n - 2` for long TTLs) to `n + 1` s later. The store
//!   keeps the exact expiry (unix milliseconds, rounded up) in the item's
//!   client flags and treats the item as gone from that instant on; the TTL
//!   it gives memcached is 2 s longer, so memcached frees the item 0 to 3 s
//!   after it expired, never before. Expiry is computed and compared on the
//!   application server's clock: servers sharing a memcached need
//!   synchronised clocks (NTP). An expiry past what memcached's signed
//!   32-bit time holds (2038-01-19) is written without a TTL, the flags
//!   holding it in unix seconds (cut at 2106).
//! * **Native conditional writes.** `create` is `ms` in add mode; `update`,
//!   `compare_and_set`, `delete_live` and a renewing `get` read the item
//!   with its CAS and write with `C<cas>`, so a concurrent write is never
//!   lost or overwritten.
//! * **`delete_all` without `flush_all`.** Every key holds the namespace
//!   generation kept under `<prefix>gen`; `delete_all` increments it
//!   (`ma`), and the old keys are never read again (memcached drops them
//!   when they expire or when it needs the memory). Each operation reads
//!   the generation in the same round trip (pipelined), so another
//!   process's `delete_all` is seen by the very next operation.
//! * **No cleanup.** [`delete_expired`](session_core::Store::delete_expired)
//!   returns 0: memcached drops expired items itself. It also *evicts*
//!   items, live sessions included, when its memory is full: size it for
//!   your sessions.
//! * **Values** up to the item size limit less the key and about 70 bytes
//!   of item header: the default `-I 1m` does not hold a 1 MiB value;
//!   start memcached with `-I 2m` for the contract's 1 MiB and set
//!   [`item_size_max`](MemcachedConfig::item_size_max) to match. A larger
//!   value is [`Error::Backend`](session_core::Error::Backend) naming the
//!   limit, refused before it is sent (memcached, refusing a value, would
//!   also delete the session stored under the key), never truncated.
//!
//! ```no_run
//! use std::time::Duration;
//! use session_core::{Store, StoreAdmin, StoreConfig};
//! use session_memcached::{MemcachedConfig, MemcachedStore};
//!
//! # async fn demo() -> session_core::Result<()> {
//! let config = MemcachedConfig::from_json_str(r#"{"prefix": "app:session:"}"#)?;
//! let store = MemcachedStore::connect("memcache://127.0.0.1:11211", config).await?;
//! store.set("sid", "{}".into(), Some(Duration::from_secs(3600))).await?;
//! assert!(store.exists("sid").await?);
//! println!("{}", store.describe()); // memcached prefix app:session: at 127.0.0.1:11211
//! # Ok(()) }
//! ```
//!
//! The guide page, with the server settings and the benchmark: `docs/memcached.md`.

mod admin;
mod config;
mod connector;
mod error;
mod keys;
mod store;

pub use config::{DEFAULT_ITEM_SIZE_MAX, MAX_PREFIX_BYTES, MemcachedConfig};
pub use connector::MemcachedConnector;
pub use store::MemcachedStore;

/// Re-exported: the client crate (its `exp` module is the meta-protocol
/// client the store runs on), for benchmarks and tools that talk to the
/// server directly.
pub use memcache;
