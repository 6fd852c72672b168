//! Redis session store: [`RedisStore`] on one Redis server or a Redis
//! Cluster, through the [`redis`] crate's tokio connection manager and
//! async cluster client.
//!
//! Each store owns the keys under its [`prefix`](RedisConfig::prefix)
//! (default `session:`): `session:<session id>` holds the session's bytes,
//! with Redis's own millisecond expiry. Redis expires keys itself, so there
//! is no schema to migrate and no cleanup job:
//! [`delete_expired`](session_core::Store::delete_expired) returns 0.
//!
//! ```no_run
//! use std::time::Duration;
//! use session_core::{Bytes, Store, StoreAdmin};
//! use session_redis::{RedisConfig, RedisStore};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> session_core::Result<()> {
//! // One server; `redis+cluster://host:7000,host:7001` for a cluster.
//! let config = RedisConfig { prefix: "myapp:session:".into(), ..RedisConfig::default() };
//! let store = RedisStore::open("redis://127.0.0.1:6379/0", config).await?;
//!
//! let hour = Some(Duration::from_secs(3600));
//! assert!(store.create("sid", Bytes::from_static(b"{}"), hour).await?);
//! assert!(store.expires_in("sid").await?.unwrap() > Duration::from_secs(3590));
//! assert_eq!(store.delete_expired().await?, 0); // Redis expires keys itself
//! assert_eq!(store.describe(), "redis prefix `myapp:session:` at 127.0.0.1:6379/0");
//! # Ok(()) }
//! ```
//!
//! A Redis that is down gives [`Error::Connection`](session_core::Error::Connection)
//! within [`RedisConfig::call_deadline`] (connect timeout plus response
//! timeout), never a hang; the connection is re-established in the
//! background and calls succeed again as soon as the server answers.

mod config;
mod connector;
mod store;

pub use config::{DEFAULT_PREFIX, MAX_PREFIX_BYTES, RedisConfig};
pub use connector::RedisConnector;
pub use store::{COMPARE_AND_SET_SCRIPT, RENEWING_GET_SCRIPT, RedisStore};
