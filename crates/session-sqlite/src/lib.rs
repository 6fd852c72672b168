//! `SqliteStore`: the embedded default session store, on SQLite through
//! `rusqlite` (SQLite bundled, no system library needed) and an `r2d2` pool.
//!
//! * **Schema**: SQLSpec's SQLite table, byte for byte ([`schema::ddl`]);
//!   [`SqliteStore::create_table`] creates it idempotently, and a table
//!   SQLSpec created is used as is.
//! * **Expiry** is `INTEGER` unix seconds computed in Rust, rounded up when
//!   written and compared with the current second, so a key is never early
//!   and gone at most one second late, and the partial index on
//!   `expires_at` serves cleanup.
//! * **Connections**: WAL journal, `synchronous=NORMAL`, a busy timeout,
//!   cached prepared statements; all blocking work runs on tokio's blocking
//!   pool.
//!
//! ```
//! use std::time::Duration;
//! use session_core::{Bytes, ExtensionConfig, Store};
//! use session_sqlite::SqliteStore;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> session_core::Result<()> {
//! let dir = std::env::temp_dir().join(format!("session-sqlite-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).unwrap();
//! let config = ExtensionConfig::from_json_str(
//!     r#"{"litestar": {"session_table": "app_sessions"}}"#,
//!     SqliteStore::ACCEPTED_KEYS,
//! )?;
//! let store = SqliteStore::open(dir.join("sessions.db").to_str().unwrap(), config)?;
//! store.create_table().await?;
//! store.set("session-1", Bytes::from_static(b"{}"), Some(Duration::from_secs(3600))).await?;
//! assert!(store.exists("session-1").await?);
//! # drop(store); std::fs::remove_dir_all(&dir).unwrap();
//! # Ok(()) }
//! ```

mod clock;
pub mod migrations;
mod options;
pub mod schema;
mod store;

pub use options::SqliteOptions;
pub use store::SqliteStore;

/// The pool crate of [`SqliteStore::from_pool`] and [`SqliteStore::pool`],
/// re-exported so a pool you build has the exact version this crate uses.
pub use r2d2;
/// The connection manager crate of the pool, re-exported for the same reason.
pub use r2d2_sqlite;
/// The SQLite driver, re-exported for statements of your own on
/// [`SqliteStore::pool`] connections.
pub use rusqlite;
