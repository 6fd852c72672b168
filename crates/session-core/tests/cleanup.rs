//! Background cleanup with real stores: expired rows go within a couple of
//! intervals, and a cleaner survives failing runs.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use session_core::cleanup::{CleanupOptions, StoreCleanup, spawn_cleanup};
use session_core::{Bytes, Error, MemoryStore, Result, Store, async_trait};

async fn fill(store: &MemoryStore) {
    for i in 0..5 {
        store
            .set(
                &format!("old-{i}"),
                Bytes::new(),
                Some(Duration::from_millis(1)),
            )
            .await
            .unwrap();
    }
    store
        .set("live", Bytes::new(), Some(Duration::from_secs(3600)))
        .await
        .unwrap();
    store.set("forever", Bytes::new(), None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
}

#[tokio::test]
async fn expired_rows_are_gone_after_two_runs() {
    let store = Arc::new(MemoryStore::new());
    fill(&store).await;
    let cleaner = spawn_cleanup(
        StoreCleanup(store.clone()),
        CleanupOptions::new(Duration::from_millis(10)),
    )
    .unwrap();
    let stats = cleaner.wait_for_runs(2).await;
    assert_eq!(stats.removed, 5);
    assert_eq!(stats.failures, 0);
    // Nothing expired is left to remove; live keys stay.
    assert_eq!(store.delete_expired().await.unwrap(), 0);
    assert!(store.exists("live").await.unwrap());
    assert!(store.exists("forever").await.unwrap());
    let final_stats = cleaner.stop().await;
    assert!(final_stats.runs >= 2);
}

/// A store whose first `failures` cleanups fail, like a database that is
/// briefly down.
struct Flaky {
    inner: MemoryStore,
    failures: u64,
    calls: AtomicU64,
}

#[async_trait]
impl Store for Flaky {
    async fn get(&self, key: &str, renew_for: Option<Duration>) -> Result<Option<Bytes>> {
        self.inner.get(key, renew_for).await
    }
    async fn set(&self, key: &str, value: Bytes, expires_in: Option<Duration>) -> Result<()> {
        self.inner.set(key, value, expires_in).await
    }
    async fn delete(&self, key: &str) -> Result<()> {
        self.inner.delete(key).await
    }
    async fn delete_all(&self) -> Result<()> {
        self.inner.delete_all().await
    }
    async fn exists(&self, key: &str) -> Result<bool> {
        self.inner.exists(key).await
    }
    async fn expires_in(&self, key: &str) -> Result<Option<Duration>> {
        self.inner.expires_in(key).await
    }
    async fn delete_expired(&self) -> Result<u64> {
        if self.calls.fetch_add(1, Ordering::SeqCst) < self.failures {
            return Err(Error::connection(
                "flaky",
                "connecting to db:5432",
                std::io::Error::other("connection refused"),
            ));
        }
        self.inner.delete_expired().await
    }
    async fn create(&self, key: &str, value: Bytes, expires_in: Option<Duration>) -> Result<bool> {
        self.inner.create(key, value, expires_in).await
    }
    async fn update(&self, key: &str, value: Bytes, expires_in: Option<Duration>) -> Result<bool> {
        self.inner.update(key, value, expires_in).await
    }
    async fn compare_and_set(
        &self,
        key: &str,
        expected: Bytes,
        value: Bytes,
        expires_in: Option<Duration>,
    ) -> Result<bool> {
        self.inner
            .compare_and_set(key, expected, value, expires_in)
            .await
    }
    async fn delete_live(&self, key: &str) -> Result<bool> {
        self.inner.delete_live(key).await
    }
}

#[tokio::test]
async fn a_cleaner_keeps_running_across_errors() {
    let inner = MemoryStore::new();
    fill(&inner).await;
    let store = Arc::new(Flaky {
        inner,
        failures: 3,
        calls: AtomicU64::new(0),
    });
    let cleaner = spawn_cleanup(
        StoreCleanup(store.clone()),
        CleanupOptions::new(Duration::from_millis(5)),
    )
    .unwrap();
    let stats = cleaner.wait_for_runs(4).await;
    assert_eq!(stats.failures, 3);
    assert!(stats.last_error.as_deref().unwrap().contains("db:5432"));
    assert_eq!(stats.removed, 5, "the first successful run removed them");
    assert!(store.exists("live").await.unwrap());
    drop(cleaner); // dropping the handle stops it
}

#[tokio::test]
async fn a_dropped_handle_stops_the_cleaner() {
    let store = Arc::new(MemoryStore::new());
    let cleaner = spawn_cleanup(
        StoreCleanup(store.clone()),
        CleanupOptions::new(Duration::from_millis(5)),
    )
    .unwrap();
    cleaner.wait_for_runs(1).await;
    drop(cleaner);
    // The task held the only other reference to the store: once it has
    // ended, this is the last one.
    last_reference(&store, Duration::from_secs(10))
        .await
        .expect("dropping the handle did not stop the cleaner");
}

/// Waits until `shared` is the last reference to its value; an error (not
/// a hang) if another one is still held after `limit`.
async fn last_reference<T>(shared: &Arc<T>, limit: Duration) -> std::result::Result<(), String> {
    tokio::time::timeout(limit, async {
        while Arc::strong_count(shared) > 1 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .map_err(|_| {
        format!(
            "{} other references still held after {limit:?}",
            Arc::strong_count(shared) - 1
        )
    })
}

/// The wait above is bounded: a reference that is never released (as a
/// cleaner that never stops would hold) fails it instead of hanging.
#[tokio::test]
async fn a_reference_never_released_fails_the_wait() {
    let store = Arc::new(MemoryStore::new());
    let held = store.clone();
    let err = last_reference(&store, Duration::from_millis(50))
        .await
        .unwrap_err();
    assert!(err.contains("1 other references"), "{err}");
    drop(held);
    last_reference(&store, Duration::from_millis(50))
        .await
        .unwrap();
}
