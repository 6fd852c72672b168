//! [`OracleStore`]: the session [`Store`](session_core::Store) on Oracle
//! Database, on the `oracle` crate (ODPI-C) and a bb8 pool, with its
//! operations side, [`StoreAdmin`](session_core::StoreAdmin) (migrations,
//! cleanup batches), and [`OracleConnector`], which opens it from an
//! `oracle://USER@HOST:PORT/SERVICE` URL.
//!
//! * The table is SQLSpec's Oracle session table, column for column, so a
//!   table made by SQLSpec and one made here are interchangeable; with
//!   `in_memory` it is created `INMEMORY` (Oracle Database In-Memory, a
//!   separately licensed Enterprise Edition option).
//! * The `oracle` driver is blocking: every call runs on
//!   `tokio::task::spawn_blocking`, never on the async runtime's workers.
//! * The driver loads the Oracle Instant Client at run time. This crate
//!   builds without it; a store cannot connect without it, and says so
//!   (DPI-1047) with how to install it and point the loader at it.
//! * Configuration is [`OracleConfig`], a plain serde struct (SQLSpec's
//!   `{"litestar": {"session_table": ..., "in_memory": ...}}` loads too);
//!   who connects where is [`Credentials`], kept out of it.
//!
//! ```no_run
//! use session_core::{StoreAdmin, StoreConfig};
//! use session_oracle::{Credentials, OracleConfig, OracleStore};
//!
//! # #[tokio::main] async fn main() -> session_core::Result<()> {
//! let config = OracleConfig::from_json_str(
//!     r#"{"table": "app_sessions", "pool_size": 20, "wait_timeout": "5s"}"#,
//! )?;
//! let credentials = Credentials::new("app_user", "secret", "db.internal:1521/FREEPDB1");
//! let store = OracleStore::connect(credentials, config).await?;
//! store.migrate().await?;
//! println!("{}", store.describe()); // oracle table `app_sessions` at `db.internal:1521/FREEPDB1` as `app_user`
//! # Ok(()) }
//! ```
//!
//! See `docs/oracle.md` for setup, the schema, In-Memory and how to run the
//! conformance suite against a real database.

mod bind;
mod config;
mod connector;
mod error;
mod manager;
mod migrations;
mod reserved;
mod sql;
mod store;

pub use config::{Credentials, OracleConfig};
pub use connector::OracleConnector;
pub use manager::{ConnectError, ConnectErrors, OracleConnection, OracleConnectionManager};
pub use reserved::ORACLE_RESERVED_WORDS;
pub use sql::InMemoryStatus;
pub use store::{INLINE_VALUE_MAX, MAX_EXPIRY, OraclePool, OracleStore};

/// The backend name in this crate's errors.
pub const BACKEND: &str = "oracle";

/// The identifier limit this store validates table names against: 128
/// bytes, as Oracle Database 12.2 and later allow (12.1 and older allow 30).
///
/// The workspace's own limit is stricter and applies first: table names
/// (and so the derived `idx_<table>_expires_at`) are at most 63
/// characters, so a table name is at most 48 characters.
///
/// On Oracle 12.1 or earlier, and on 12.2 or later with the `COMPATIBLE`
/// parameter below 12.2, identifiers are at most 30 bytes: keep the index
/// name within 30, i.e. the table name within 15 characters. The default
/// `litestar_session` gives `idx_litestar_session_expires_at`, 31 bytes:
/// such a server refuses it with ORA-00972, which the store reports with
/// this explanation. Unquoted names are stored upper case by Oracle
/// (`app_sessions` is `APP_SESSIONS` in `all_tables`), and Oracle's
/// reserved words ([`ORACLE_RESERVED_WORDS`]) are refused as table names.
pub const MAX_IDENTIFIER_LEN: usize = 128;
