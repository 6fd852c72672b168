//! Migrations of the SQLite store: concurrent `migrate()`, checksum
//! mismatch, unknown versions.

mod common;

use session_core::migrate::MigrationError;
use session_core::{StoreAdmin, StoreConfig};
use session_sqlite::{SqliteConfig, SqliteStore};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_concurrent_migrations_apply_once() {
    let path = common::fresh_db_path();
    let db = path.display().to_string();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        // A store (pool) each, as separate application instances would have.
        let store = SqliteStore::open(&db).unwrap();
        tasks.push(tokio::spawn(async move { store.migrate().await }));
    }
    let mut applied = 0;
    for task in tasks {
        let report = task.await.unwrap().unwrap();
        applied += report.applied.len();
        assert_eq!(report.current.as_deref(), Some("ext_litestar_0001"));
        assert_eq!(report.adopted, None);
    }
    assert_eq!(applied, 1, "exactly one instance applied ext_litestar_0001");
    let store = SqliteStore::open(&db).unwrap();
    let records = store.applied_migrations().await.unwrap();
    assert_eq!(records.len(), 1);
    assert!(store.session_table_exists().await.unwrap());
    drop(store);
    std::fs::remove_file(&path).unwrap();
}

#[tokio::test]
async fn a_changed_checksum_is_refused_naming_the_version() {
    let store = SqliteStore::in_memory().unwrap();
    store.migrate().await.unwrap();
    let conn = store.pool().get().unwrap();
    conn.execute(
        "UPDATE litestar_session_migrations SET checksum = 'edited' WHERE version = 'ext_litestar_0001'",
        [],
    )
    .unwrap();
    drop(conn);
    let err = store.migrate().await.unwrap_err();
    assert!(err.to_string().contains("ext_litestar_0001"), "{err}");
    assert!(err.to_string().contains("checksum"), "{err}");
    assert!(
        matches!(
            MigrationError::of(&err),
            Some(MigrationError::ChecksumMismatch { .. })
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_unknown_recorded_version_is_refused() {
    let store = SqliteStore::in_memory().unwrap();
    store.migrate().await.unwrap();
    store
        .pool()
        .get()
        .unwrap()
        .execute(
            "INSERT INTO litestar_session_migrations (version, description, checksum) VALUES ('ext_litestar_0099', 'future', 'x')",
            [],
        )
        .unwrap();
    let err = store.migrate().await.unwrap_err();
    assert!(err.to_string().contains("ext_litestar_0099"), "{err}");
}

#[tokio::test]
async fn migrate_creates_what_create_table_creates() {
    let migrated = SqliteStore::in_memory().unwrap();
    migrated.migrate().await.unwrap();
    let created = SqliteStore::in_memory().unwrap();
    created.create_table().await.unwrap();
    let schema = |store: &SqliteStore| -> Vec<Option<String>> {
        let conn = store.pool().get().unwrap();
        let mut st = conn
            .prepare(
                "SELECT sql FROM sqlite_master WHERE tbl_name = 'litestar_session' ORDER BY name",
            )
            .unwrap();
        st.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    assert_eq!(schema(&migrated), schema(&created));
    // And a table create_table() made is adopted.
    let report = created.migrate().await.unwrap();
    assert_eq!(report.adopted, Some("ext_litestar_0001"));
}

#[test]
fn an_over_long_table_name_is_refused_up_front() {
    let long = "a".repeat(49);
    // In SQLSpec's document, and as the config's own field.
    let err =
        SqliteConfig::from_json_str(&format!(r#"{{"litestar": {{"session_table": "{long}"}}}}"#))
            .unwrap_err();
    assert!(err.to_string().contains("at most 48"), "{err}");
    let config = SqliteConfig {
        table: long,
        ..SqliteConfig::default()
    };
    let err = SqliteStore::in_memory_with(config).unwrap_err();
    assert!(err.to_string().contains("at most 48"), "{err}");
}
