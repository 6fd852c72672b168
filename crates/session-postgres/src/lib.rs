//! A PostgreSQL session store: [`PostgresStore`] implements
//! [`session_core::Store`] (the request path) and
//! [`session_core::StoreAdmin`] (migrations, cleanup) on `tokio-postgres`
//! and `deadpool-postgres`; [`PostgresConfig`] configures it and
//! [`PostgresConnector`] opens it from a `postgres://` URL.
//!
//! * **SQLSpec's schema.** The table is byte-for-byte SQLSpec's (`TEXT`
//!   key, `BYTEA` data, `TIMESTAMPTZ` expiry and audit columns), with a
//!   fillfactor for HOT updates, per-table autovacuum settings and a partial
//!   index on `expires_at`; a table made by either is used by the other.
//! * **The database's clock.** Expiry is computed and compared with
//!   `now()` on the server, so application servers with skewed clocks agree.
//! * **One round trip per operation**, a renewing `get` included, each
//!   statement prepared once per connection.
//! * **Coalesced reads.** Concurrent `get`s (and, separately, concurrent
//!   renewing `get`s) are served by one statement over `session_id =
//!   ANY($1)`: a call that finds none in flight runs at once, alone; calls
//!   arriving while one is in flight are batched into the next. Each caller
//!   gets its own answer and its own renewal.
//! * **Batched, coordinated cleanup.** [`delete_expired`](session_core::Store::delete_expired)
//!   deletes in short statements (about 5,000 rows each by default), so
//!   readers never wait behind one huge delete: chunks of one sweep through
//!   the table's pages when much of it is expired, else batches through the
//!   expiry index; [`StoreAdmin::cleanup`](session_core::StoreAdmin::cleanup)
//!   runs it under an advisory lock, so one of many servers cleans at a time.
//! * **Migrations** through session-core's runner, each step under
//!   `pg_advisory_xact_lock`, adopting a table SQLSpec made.
//! * **Typed errors.** A pool timeout is [`Error::PoolTimeout`], a refused or
//!   lost connection [`Error::Connection`] naming `host:port`, a failed
//!   statement [`Error::Backend`] with the SQLSTATE and the driver's error as
//!   source; no error repeats a password.
//! * **TLS as libpq.** The URL's `sslmode` (`disable`, `prefer` — the
//!   default —, `require`, `verify-ca`, `verify-full`) and `sslrootcert`
//!   (a PEM file, or `system`; or the config's
//!   [`ssl_root_cert`](PostgresConfig::ssl_root_cert)) mean what they mean
//!   to libpq, over rustls: `require` never falls back to plain text,
//!   `verify-ca` checks the certificate chain, `verify-full` the chain and
//!   the host name (against the system's roots without a root
//!   certificate). A refused handshake is an [`Error::Connection`] naming
//!   the address and the TLS reason. See `docs/postgres.md`.
//!
//! ```no_run
//! use session_core::{StoreAdmin, StoreConfig};
//! use session_postgres::{PostgresConfig, PostgresStore};
//!
//! # async fn demo() -> session_core::Result<()> {
//! // Its own fields, or SQLSpec's `{"litestar": {...}}` shape.
//! let config = PostgresConfig::from_json_str(r#"{"table": "litestar_session", "fillfactor": 80}"#)?;
//! let store = PostgresStore::from_url("postgresql://app@db:5432/app", config)?;
//! println!("{}: {}", store.describe(), store.migrate().await?);
//! # Ok(()) }
//! ```
//!
//! [`Error::PoolTimeout`]: session_core::Error::PoolTimeout
//! [`Error::Connection`]: session_core::Error::Connection
//! [`Error::Backend`]: session_core::Error::Backend

mod admin;
mod cleanup;
mod coalesce;
mod config;
mod connector;
mod error;
mod migrations;
mod store;
mod tls;

pub use config::PostgresConfig;
pub use connector::PostgresConnector;
pub use store::PostgresStore;

/// Re-exported: the pool type [`PostgresStore::new`] takes, and its driver.
pub use deadpool_postgres;
