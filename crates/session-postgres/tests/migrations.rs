//! Migrations and coordinated cleanup of the PostgreSQL store, against a
//! real server (skipped, with a note, when none can be had, unless
//! `SESSION_TEST_REQUIRE_PG=1`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use session_core::cleanup::{CleanupOptions, CleanupTarget, spawn_cleanup};
use session_core::migrate::MigrationError;
use session_core::{Result, Store, StoreAdmin, async_trait};
use session_postgres::{PostgresConfig, PostgresStore};

struct Tables {
    url: String,
    names: Vec<String>,
}

impl Drop for Tables {
    fn drop(&mut self) {
        let _ = session_test_support::drop_tables_blocking(&self.url, &self.names);
    }
}

fn setup(prefix: &str) -> Option<(String, String, Tables)> {
    let url = session_test_support::pg_url_or_skip()?;
    let table = session_test_support::unique_table_name(prefix);
    let tables = Tables {
        url: url.clone(),
        names: vec![format!("{table}_migrations"), table.clone()],
    };
    Some((url, table, tables))
}

fn store(url: &str, table: &str) -> PostgresStore {
    let config = PostgresConfig {
        table: table.to_owned(),
        ..PostgresConfig::default()
    };
    PostgresStore::from_url(url, config).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_concurrent_migrations_apply_once() {
    let Some((url, table, _tables)) = setup("mig_conc") else {
        return;
    };
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = store(&url, &table);
        tasks.push(tokio::spawn(async move { store.migrate().await }));
    }
    let mut applied = 0;
    for task in tasks {
        let report = task.await.unwrap().unwrap();
        applied += report.applied.len();
        assert_eq!(report.current.as_deref(), Some("ext_litestar_0001"));
    }
    assert_eq!(applied, 1);
    let records = store(&url, &table).applied_migrations().await.unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(
        records[0].checksum,
        store(&url, &table).migrations()[0].checksum()
    );
}

#[tokio::test]
async fn a_changed_checksum_is_refused_naming_the_version() {
    let Some((url, table, _tables)) = setup("mig_sum") else {
        return;
    };
    store(&url, &table).migrate().await.unwrap();
    // The same table with another fillfactor renders other SQL.
    let config = PostgresConfig {
        table: table.clone(),
        fillfactor: 70,
        ..PostgresConfig::default()
    };
    let other = PostgresStore::from_url(&url, config).unwrap();
    let err = other.migrate().await.unwrap_err();
    assert!(err.to_string().contains("ext_litestar_0001"), "{err}");
    assert!(
        matches!(
            MigrationError::of(&err),
            Some(MigrationError::ChecksumMismatch { .. })
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_table_of_another_shape_is_not_adopted() {
    let Some((url, table, _tables)) = setup("mig_shape") else {
        return;
    };
    let client = session_test_support::connect(&url).await.unwrap();
    client
        .batch_execute(&format!(
            "CREATE TABLE {table} (session_id TEXT PRIMARY KEY, data JSONB NOT NULL, expires_at TIMESTAMPTZ)"
        ))
        .await
        .unwrap();
    let err = store(&url, &table).migrate().await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("column `data` is jsonb, expected bytea"),
        "{text}"
    );
    assert!(text.contains("column `created_at` is missing"), "{text}");
}

/// The backends (pids) holding the advisory lock `key` in this database,
/// as `pg_locks` shows them to `observer`: a connection of its own, in no
/// store's pool (a session-level lock can be taken again by the session
/// holding it, so only another session sees whether it was released).
async fn lock_holders(observer: &tokio_postgres::Client, key: i64) -> Vec<i32> {
    observer
        .query(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted \
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
             AND classid = (($1::bigint >> 32) & 4294967295)::oid \
             AND objid = ($1::bigint & 4294967295)::oid AND objsubid = 1",
            &[&key],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect()
}

#[test]
fn the_cleanup_lock_key_is_pinned() {
    // Pinned (FNV-1a 64 of `session_postgres.cleanup:<table>`, computed
    // independently): instances of different releases cleaning one table
    // must take the same lock.
    let key = |table: &str| {
        PostgresStore::from_url(
            "postgresql://app@host/db",
            PostgresConfig {
                table: table.to_owned(),
                ..PostgresConfig::default()
            },
        )
        .unwrap()
        .cleanup_lock_key()
    };
    assert_eq!(key("litestar_session"), 8_085_118_283_056_682_146);
    assert_eq!(key("auth.litestar_session"), 6_008_996_250_219_513_344);
}

/// How many times each of the two cleaners has cleaned (taken the lock
/// and run): the probes take turns by it, and the test waits on it.
type Progress = Arc<tokio::sync::watch::Sender<[usize; 2]>>;

/// One of two cleaners: counts how many cleanups run at once across both,
/// checks from the observer's connection that exactly one backend holds
/// the lock while it cleans and that this backend no longer does once the
/// cleanup has returned, and takes turns with the other cleaner: one that
/// has cleaned more often than the other skips its tick without trying the
/// lock, so each gets to clean if (and only if) the lock is released.
struct Probe {
    me: usize,
    store: PostgresStore,
    observer: Arc<tokio_postgres::Client>,
    inside: Arc<AtomicUsize>,
    max_inside: Arc<AtomicUsize>,
    lock_skips: Arc<AtomicUsize>,
    progress: Progress,
    violations: Arc<Mutex<Vec<String>>>,
}

impl Probe {
    fn violation(&self, what: String) {
        self.violations.lock().unwrap().push(what);
    }
}

#[async_trait]
impl CleanupTarget for Probe {
    async fn cleanup(&self) -> Result<Option<u64>> {
        let counts = *self.progress.borrow();
        if counts[self.me] > counts[1 - self.me] {
            return Ok(None);
        }
        let key = self.store.cleanup_lock_key();
        let outcome = self
            .store
            .try_with_cleanup_lock(async {
                let now = self.inside.fetch_add(1, Ordering::SeqCst) + 1;
                self.max_inside.fetch_max(now, Ordering::SeqCst);
                let holders = lock_holders(&self.observer, key).await;
                let removed = self.store.delete_expired().await;
                // Stay inside long enough that an unlocked rival would overlap.
                tokio::time::sleep(Duration::from_millis(20)).await;
                self.inside.fetch_sub(1, Ordering::SeqCst);
                removed.map(|n| (n, holders))
            })
            .await?;
        let Some((removed, holders)) = outcome else {
            self.lock_skips.fetch_add(1, Ordering::SeqCst);
            return Ok(None);
        };
        if holders.len() != 1 {
            self.violation(format!(
                "cleaner {}: while it cleaned, the lock was held by {holders:?}",
                self.me
            ));
        }
        let after = lock_holders(&self.observer, key).await;
        if let Some(pid) = holders.iter().find(|pid| after.contains(pid)) {
            self.violation(format!(
                "cleaner {}: backend {pid} still holds the lock after the cleanup returned",
                self.me
            ));
        }
        self.progress.send_modify(|c| c[self.me] += 1);
        Ok(Some(removed))
    }
}

/// How many times each cleaner must clean.
const TURNS: usize = 5;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_cleaners_never_run_at_once() {
    let Some((url, table, _tables)) = setup("cleanup_two") else {
        return;
    };
    store(&url, &table).migrate().await.unwrap();
    let key = store(&url, &table).cleanup_lock_key();
    let observer = Arc::new(session_test_support::connect(&url).await.unwrap());
    let inside = Arc::new(AtomicUsize::new(0));
    let max_inside = Arc::new(AtomicUsize::new(0));
    let lock_skips = Arc::new(AtomicUsize::new(0));
    let violations = Arc::new(Mutex::new(Vec::new()));
    let progress: Progress = Arc::new(tokio::sync::watch::Sender::new([0, 0]));
    let options = CleanupOptions::new(Duration::from_millis(5)).jitter(0.5);
    // Two "application servers": separate pools on one database.
    let cleaners: Vec<_> = (0..2)
        .map(|me| {
            spawn_cleanup(
                Probe {
                    me,
                    store: store(&url, &table),
                    observer: observer.clone(),
                    inside: inside.clone(),
                    max_inside: max_inside.clone(),
                    lock_skips: lock_skips.clone(),
                    progress: progress.clone(),
                    violations: violations.clone(),
                },
                options,
            )
            .unwrap()
        })
        .collect();
    // Each cleans TURNS times. A lock left held after a cleanup (by a
    // connection back in its pool) would let only its own cleaner in:
    // bounded, so that fails instead of hanging.
    let mut counts = progress.subscribe();
    // The borrow `wait_for` returns holds the channel's read lock: dropped
    // at once, or a cleaner's `send_modify` (its write) blocks, and with it
    // `stop()` below.
    let done = tokio::time::timeout(
        Duration::from_secs(30),
        counts.wait_for(|c| c.iter().all(|&n| n >= TURNS)),
    )
    .await
    .map(|waited| waited.map(drop));
    let reached = *progress.borrow();
    let mut failures = 0;
    for cleaner in cleaners {
        let stats = cleaner.stop().await;
        failures += stats.failures;
        assert_eq!(stats.failures, 0, "{:?}", stats.last_error);
    }
    let violations = violations.lock().unwrap().clone();
    assert!(violations.is_empty(), "{violations:#?}");
    assert!(
        done.is_ok(),
        "the cleaners did not each clean {TURNS} times within 30 s (cleaned {reached:?}): \
         the lock is not released for the other instance"
    );
    assert_eq!(
        max_inside.load(Ordering::SeqCst),
        1,
        "two cleanups overlapped"
    );
    assert!(
        lock_holders(&observer, key).await.is_empty(),
        "the lock is held after both cleaners stopped"
    );
    eprintln!(
        "cleaned {:?} times, skipped {} times on the held lock, {failures} failures",
        *progress.borrow(),
        lock_skips.load(Ordering::SeqCst)
    );
}

#[tokio::test]
async fn a_held_lock_makes_cleanup_skip_and_touch_nothing() {
    let Some((url, table, _tables)) = setup("cleanup_held") else {
        return;
    };
    let store = store(&url, &table);
    // Another application server: a pool (so connections) of its own.
    let other = self::store(&url, &table);
    store.migrate().await.unwrap();
    let observer = session_test_support::connect(&url).await.unwrap();
    let client = session_test_support::connect(&url).await.unwrap();
    client
        .batch_execute(&format!(
            "INSERT INTO {table} (session_id, data, expires_at) \
             SELECT 'old-' || i, '\\x00', now() - interval '1 minute' FROM generate_series(1, 3) i"
        ))
        .await
        .unwrap();
    // Another instance holds the cleanup lock.
    let key = store.cleanup_lock_key();
    client
        .execute("SELECT pg_advisory_lock($1)", &[&key])
        .await
        .unwrap();
    let holder: i32 = client
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(lock_holders(&observer, key).await, [holder]);
    assert_eq!(StoreAdmin::cleanup(&store).await.unwrap(), None);
    assert_eq!(CleanupTarget::cleanup(&store).await.unwrap(), None);
    assert_eq!(
        lock_holders(&observer, key).await,
        [holder],
        "a skipped cleanup took the lock"
    );
    let count: i64 = client
        .query_one(&format!("SELECT COUNT(*) FROM {table}"), &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 3, "a skipped cleanup deletes nothing");
    client
        .execute("SELECT pg_advisory_unlock($1)", &[&key])
        .await
        .unwrap();
    assert_eq!(lock_holders(&observer, key).await, [] as [i32; 0]);

    // After each cleanup the lock is free, as seen from a connection of
    // its own, and the other instance can clean: a lock left held by a
    // connection back in the pool would be taken again by its own store
    // (the pool hands that connection back) but by no one else.
    assert_eq!(StoreAdmin::cleanup(&store).await.unwrap(), Some(3));
    assert_eq!(
        lock_holders(&observer, key).await,
        [] as [i32; 0],
        "the lock is still held after StoreAdmin::cleanup returned"
    );
    assert_eq!(StoreAdmin::cleanup(&other).await.unwrap(), Some(0));
    assert_eq!(lock_holders(&observer, key).await, [] as [i32; 0]);
    assert_eq!(CleanupTarget::cleanup(&store).await.unwrap(), Some(0));
    assert_eq!(
        lock_holders(&observer, key).await,
        [] as [i32; 0],
        "the lock is still held after CleanupTarget::cleanup returned"
    );
    assert_eq!(CleanupTarget::cleanup(&other).await.unwrap(), Some(0));
    assert_eq!(lock_holders(&observer, key).await, [] as [i32; 0]);
}

/// The defect the checks above are for, made by hand: a cleanup lock taken
/// on a pooled connection and never released. The store's own pool takes
/// it again (what a check from the store itself would see), but the
/// observer sees it held and the other instance skips.
#[tokio::test]
async fn a_lock_left_held_in_the_pool_is_caught_by_these_checks() {
    let Some((url, table, _tables)) = setup("cleanup_leak") else {
        return;
    };
    let store = store(&url, &table);
    let other = self::store(&url, &table);
    store.migrate().await.unwrap();
    let observer = session_test_support::connect(&url).await.unwrap();
    let key = store.cleanup_lock_key();
    let try_lock = "SELECT pg_try_advisory_lock($1)";
    {
        let conn = store.pool().get().await.unwrap();
        let locked: bool = conn.query_one(try_lock, &[&key]).await.unwrap().get(0);
        assert!(locked);
        // Back to the pool without `pg_advisory_unlock`.
    }
    {
        let conn = store.pool().get().await.unwrap();
        let again: bool = conn.query_one(try_lock, &[&key]).await.unwrap().get(0);
        assert!(again, "the same pooled session takes the lock again");
        conn.query_one("SELECT pg_advisory_unlock($1)", &[&key])
            .await
            .unwrap();
    }
    assert_eq!(lock_holders(&observer, key).await.len(), 1);
    assert_eq!(StoreAdmin::cleanup(&other).await.unwrap(), None);
    // Closing the pool's connections releases it.
    drop(store);
    let deadline = Duration::from_secs(10);
    tokio::time::timeout(deadline, async {
        while !lock_holders(&observer, key).await.is_empty() {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the lock outlived the pool holding it");
    assert_eq!(StoreAdmin::cleanup(&other).await.unwrap(), Some(0));
}
