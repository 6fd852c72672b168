//! Helpers shared by this crate's integration tests.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use session_core::ExtensionConfig;
use session_sqlite::SqliteStore;

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A name no other call in any test process returns.
pub fn unique(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}_{}_{n}", std::process::id())
}

/// A directory of this test process under the system's temp dir.
pub fn test_dir() -> PathBuf {
    session_conformance::scratch_dir("session-sqlite-tests")
}

/// A new database file path (not yet created).
pub fn fresh_db_path() -> PathBuf {
    test_dir().join(format!("{}.db", unique("db")))
}

/// An extension config naming `table`.
pub fn config(table: &str) -> ExtensionConfig {
    ExtensionConfig::from_value(
        serde_json::json!({"litestar": {"session_table": table}}),
        SqliteStore::ACCEPTED_KEYS,
    )
    .expect("a valid config")
}

/// Opens `path` with a table of its own, created.
pub async fn store_on(path: &std::path::Path, table: &str) -> SqliteStore {
    let store = SqliteStore::open(path.to_str().expect("a UTF-8 path"), config(table))
        .expect("open the database");
    store.create_table().await.expect("create the table");
    store
}
