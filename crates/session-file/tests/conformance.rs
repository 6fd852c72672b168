//! The whole conformance suite, each store in a fresh directory of its own
//! under this process's scratch directory, and once more with `fsync` on.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use session_file::{FileConfig, FileStore};

fn fresh_dir() -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    session_test_support::scratch_dir("session-file").join(format!("conformance-{n}"))
}

fn store(fsync: bool) -> FileStore {
    FileStore::open_with(
        fresh_dir(),
        FileConfig {
            fsync,
            ..FileConfig::default()
        },
    )
    .expect("open a fresh directory")
}

session_conformance::store_conformance!(file, || async { store(false) });
session_conformance::store_conformance!(file_fsync, || async { store(true) });
