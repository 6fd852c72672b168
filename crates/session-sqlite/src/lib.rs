//! `SqliteStore`: the embedded default session store, on SQLite through
//! `rusqlite` (SQLite bundled, no system library needed) and an `r2d2` pool.
//!
//! * [`SqliteStore`]: the store. [`SqliteStore::open`] takes a file path or
//!   a `sqlite:` URL and works with the defaults; [`SqliteStore::open_with`]
//!   takes a [`SqliteConfig`].
//! * [`SqliteConfig`]: the one configuration struct (table, pool size, wait
//!   and busy timeouts, cleanup batch size), loaded from its own JSON/TOML
//!   fields or SQLSpec's `{"litestar": {...}}` document through
//!   [`StoreConfig`](session_core::StoreConfig).
//! * **Schema**: SQLSpec's SQLite table, byte for byte
//!   ([`SqliteStore::ddl`]); [`SqliteStore::create_table`] creates it
//!   idempotently, a table SQLSpec created is used as is, and the versioned
//!   migrations run through [`StoreAdmin`](session_core::StoreAdmin).
//! * [`SqliteConnector`]: opens a store from a `sqlite:` URL, as the
//!   `sessions` CLI and the demo do.
//! * **Expiry** is `INTEGER` unix seconds computed in Rust, rounded up when
//!   written and compared with the current second, so a key is never early
//!   and gone at most one second late, and the partial index on
//!   `expires_at` serves cleanup.
//! * **Connections**: WAL journal, `synchronous=NORMAL`, a busy timeout,
//!   cached prepared statements; reads run on tokio's blocking pool, writes
//!   of a file database on the store's single writer thread, which commits
//!   queued writes together and leaves checkpoints to a thread of their
//!   own.
//!
//! ```
//! use std::time::Duration;
//! use session_core::{Bytes, Store, StoreAdmin, StoreConfig};
//! use session_sqlite::{SqliteConfig, SqliteStore};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> session_core::Result<()> {
//! let dir = std::env::temp_dir().join(format!("session-sqlite-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).unwrap();
//! let config = SqliteConfig::from_json_str(r#"{"table": "app_sessions", "pool_size": 4}"#)?;
//! let store = SqliteStore::open_with(dir.join("sessions.db").to_str().unwrap(), config)?;
//! store.migrate().await?;
//! store.set("session-1", Bytes::from_static(b"{}"), Some(Duration::from_secs(3600))).await?;
//! assert!(store.exists("session-1").await?);
//! # drop(store); std::fs::remove_dir_all(&dir).unwrap();
//! # Ok(()) }
//! ```

mod clock;
mod config;
mod connector;
mod migrations;
mod schema;
mod store;
mod writer;

#[cfg(test)]
/// A database file path for one unit test, `<name>.db` in this test
/// process's scratch directory (which the next test run sweeps once this
/// process is gone).
fn test_db_path(name: &str) -> std::path::PathBuf {
    session_test_support::scratch_dir("session-sqlite-unit").join(format!("{name}.db"))
}

pub use config::SqliteConfig;
pub use connector::SqliteConnector;
pub use store::SqliteStore;

/// The pool crate of [`SqliteStore::from_pool`] and [`SqliteStore::pool`],
/// re-exported so a pool you build has the exact version this crate uses.
pub use r2d2;
/// The connection manager crate of the pool, re-exported for the same reason.
pub use r2d2_sqlite;
/// The SQLite driver, re-exported for statements of your own on
/// [`SqliteStore::pool`] connections.
pub use rusqlite;
