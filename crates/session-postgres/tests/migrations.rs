//! Migrations and coordinated cleanup of the PostgreSQL store, against a
//! real server (skipped, with a note, when none can be had, unless
//! `SESSION_TEST_REQUIRE_PG=1`).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
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
    let url = match session_test_support::pg_url() {
        Ok(url) => url,
        Err(why) => {
            eprintln!("skipped: no PostgreSQL ({why})");
            return None;
        }
    };
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

/// Counts how many cleanups run at once, across every cleaner.
struct Probe {
    store: PostgresStore,
    inside: Arc<AtomicUsize>,
    max_inside: Arc<AtomicUsize>,
}

#[async_trait]
impl CleanupTarget for Probe {
    async fn cleanup(&self) -> Result<Option<u64>> {
        self.store
            .try_with_cleanup_lock(async {
                let now = self.inside.fetch_add(1, Ordering::SeqCst) + 1;
                self.max_inside.fetch_max(now, Ordering::SeqCst);
                let removed = self.store.delete_expired().await;
                // Stay inside long enough that an unlocked rival would overlap.
                tokio::time::sleep(Duration::from_millis(20)).await;
                self.inside.fetch_sub(1, Ordering::SeqCst);
                removed
            })
            .await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_cleaners_never_run_at_once() {
    let Some((url, table, _tables)) = setup("cleanup_two") else {
        return;
    };
    store(&url, &table).migrate().await.unwrap();
    let inside = Arc::new(AtomicUsize::new(0));
    let max_inside = Arc::new(AtomicUsize::new(0));
    let options = CleanupOptions::new(Duration::from_millis(5)).jitter(0.5);
    // Two "application servers": separate pools on one database.
    let cleaners: Vec<_> = (0..2)
        .map(|_| {
            spawn_cleanup(
                Probe {
                    store: store(&url, &table),
                    inside: inside.clone(),
                    max_inside: max_inside.clone(),
                },
                options,
            )
            .unwrap()
        })
        .collect();
    let mut skipped = 0;
    let mut cleaned = 0;
    for cleaner in cleaners {
        cleaner.wait_for_runs(30).await;
        let stats = cleaner.stop().await;
        assert_eq!(stats.failures, 0, "{:?}", stats.last_error);
        skipped += stats.skipped;
        cleaned += stats.runs - stats.skipped;
    }
    assert_eq!(
        max_inside.load(Ordering::SeqCst),
        1,
        "two cleanups overlapped"
    );
    assert!(cleaned > 0);
    eprintln!("cleaned {cleaned} times, skipped {skipped} times");
}

#[tokio::test]
async fn a_held_lock_makes_cleanup_skip_and_touch_nothing() {
    let Some((url, table, _tables)) = setup("cleanup_held") else {
        return;
    };
    let store = store(&url, &table);
    store.migrate().await.unwrap();
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
    assert_eq!(StoreAdmin::cleanup(&store).await.unwrap(), None);
    assert_eq!(CleanupTarget::cleanup(&store).await.unwrap(), None);
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
    assert_eq!(StoreAdmin::cleanup(&store).await.unwrap(), Some(3));
    // The lock was released after the run: a second run takes it again.
    assert_eq!(StoreAdmin::cleanup(&store).await.unwrap(), Some(0));
    assert_eq!(CleanupTarget::cleanup(&store).await.unwrap(), Some(0));
}
