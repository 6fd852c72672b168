//! A PostgreSQL session store: [`PostgresStore`] implements
//! [`session_core::Store`] on `tokio-postgres` and `deadpool-postgres`.
//!
//! * **SQLSpec's schema.** The table is byte-for-byte SQLSpec's (`TEXT`
//!   key, `BYTEA` data, `TIMESTAMPTZ` expiry and audit columns), with a
//!   fillfactor for HOT updates, per-table autovacuum settings and a partial
//!   index on `expires_at`; a table made by either is used by the other.
//! * **The database's clock.** Expiry is computed and compared with
//!   `now()` on the server, so application servers with skewed clocks agree.
//! * **One round trip per operation**, a renewing `get` included, each
//!   statement prepared once per connection.
//! * **Batched cleanup.** [`delete_expired`](session_core::Store::delete_expired)
//!   deletes in short batches (5,000 rows by default), so readers never wait
//!   behind one huge delete.
//! * **Typed errors.** A pool timeout is [`Error::PoolTimeout`], a refused or
//!   lost connection [`Error::Connection`] naming `host:port`, a failed
//!   statement [`Error::Backend`] with the SQLSTATE and the driver's error as
//!   source.
//!
//! Configure it like SQLSpec, with the `litestar` extension config
//! (keys: [`ACCEPTED_KEYS`]):
//!
//! ```no_run
//! use session_postgres::{PoolSettings, PostgresStore, PostgresStoreConfig};
//!
//! # async fn demo() -> session_core::Result<()> {
//! let config = PostgresStoreConfig::from_json_str(
//!     r#"{"litestar": {"session_table": "litestar_session", "fillfactor": 80}}"#,
//! )?;
//! let store = PostgresStore::from_url("postgresql://app@db:5432/app", PoolSettings::default(), config)?;
//! store.create_table().await?;
//! # Ok(()) }
//! ```
//!
//! [`Error::PoolTimeout`]: session_core::Error::PoolTimeout
//! [`Error::Connection`]: session_core::Error::Connection
//! [`Error::Backend`]: session_core::Error::Backend

mod cleanup;
mod config;
mod error;
pub mod migrations;
mod store;

pub use config::{
    ACCEPTED_KEYS, DEFAULT_AUTOVACUUM_ANALYZE_SCALE_FACTOR, DEFAULT_AUTOVACUUM_VACUUM_SCALE_FACTOR,
    DEFAULT_DELETE_BATCH_SIZE, DEFAULT_FILLFACTOR, PoolSettings, PostgresStoreConfig,
};
pub use store::PostgresStore;

/// Re-exported: the pool type [`PostgresStore::new`] takes, and its driver.
pub use deadpool_postgres;
