//! The whole conformance suite, against a WAL file database and against an
//! in-memory one. Every store has a table of its own; the file stores of
//! this process share one database file (and so its write lock), as the
//! pools of several app processes would.

mod common;

use std::path::PathBuf;
use std::sync::OnceLock;

use common::{config, store_on, unique};
use session_sqlite::SqliteStore;

fn shared_file() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(common::fresh_db_path)
}

async fn file_store() -> SqliteStore {
    store_on(shared_file(), &unique("conformance")).await
}

async fn memory_store() -> SqliteStore {
    let store =
        SqliteStore::in_memory_with(config(&unique("conformance"))).expect("open in memory");
    store.create_table().await.expect("create the table");
    store
}

session_conformance::store_conformance!(file_db, || async { file_store().await });
session_conformance::store_conformance!(in_memory, || async { memory_store().await });
