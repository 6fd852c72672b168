//! Helpers shared by this crate's integration tests.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use session_sqlite::{SqliteConfig, SqliteStore};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A name no other call in any test process returns.
pub(crate) fn unique(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}_{}_{n}", std::process::id())
}

/// A directory of this test process under the system's temp dir.
pub(crate) fn test_dir() -> PathBuf {
    session_test_support::scratch_dir("session-sqlite-tests")
}

/// A new database file path (not yet created).
pub(crate) fn fresh_db_path() -> PathBuf {
    test_dir().join(format!("{}.db", unique("db")))
}

/// The default config with the table `table`.
pub(crate) fn config(table: &str) -> SqliteConfig {
    SqliteConfig {
        table: table.to_owned(),
        ..SqliteConfig::default()
    }
}

/// Opens `path` with a table of its own, created.
pub(crate) async fn store_on(path: &std::path::Path, table: &str) -> SqliteStore {
    let store = SqliteStore::open_with(path.to_str().expect("a UTF-8 path"), config(table))
        .expect("open the database");
    store.create_table().await.expect("create the table");
    store
}

/// How long [`block_on`] polls before it fails the test.
pub(crate) const BLOCK_ON_LIMIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Polls a future to completion without a tokio runtime (busy: its waker
/// does nothing), failing the test if it has not completed within
/// [`BLOCK_ON_LIMIT`] instead of spinning forever.
pub(crate) fn block_on<F: std::future::Future>(future: F) -> F::Output {
    block_on_within(future, BLOCK_ON_LIMIT)
}

/// [`block_on`] with a limit of `limit`.
///
/// # Panics
///
/// When the future has not completed within `limit`.
pub(crate) fn block_on_within<F: std::future::Future>(
    future: F,
    limit: std::time::Duration,
) -> F::Output {
    use std::sync::Arc;
    use std::task::{Context, Poll, Wake, Waker};
    struct Noop;
    impl Wake for Noop {
        fn wake(self: Arc<Self>) {}
    }
    let waker = Waker::from(Arc::new(Noop));
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the future did not complete within {limit:?}"
        );
        std::thread::yield_now();
    }
}
