//! `SqliteConnector` (opening a store from a URL) and the `StoreAdmin`
//! side of `SqliteStore`, through `Arc<dyn ...>` as the CLI uses them.

mod common;

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use session_core::{Bytes, Connector, Error, Store, StoreAdmin};
use session_sqlite::{SqliteConnector, SqliteStore};

#[tokio::test(flavor = "multi_thread")]
async fn a_file_url_opens_and_the_store_works() {
    let path = common::fresh_db_path();
    let url = format!("sqlite://{}", path.display()); // sqlite:///tmp/...: absolute
    let connector: Arc<dyn Connector> = Arc::new(SqliteConnector);
    assert_eq!(connector.schemes(), ["sqlite"]);
    assert!(connector.url_forms().contains("sqlite::memory:"));

    let config = json!({"litestar": {"session_table": "via_url"}});
    let admin = connector.open(&url, &config).await.unwrap();
    assert!(path.exists(), "the database file was created at open");
    assert_eq!(admin.backend(), "sqlite");
    assert_eq!(admin.location(), "via_url");
    assert!(!admin.session_table_exists().await.unwrap());
    let report = admin.migrate().await.unwrap();
    assert_eq!(report.applied, ["ext_litestar_0001"]);
    assert!(admin.session_table_exists().await.unwrap());

    let store: Arc<dyn Store> = admin.clone();
    store
        .set("k", Bytes::from_static(b"v"), Some(Duration::from_secs(60)))
        .await
        .unwrap();
    // The same file, opened directly, sees the row.
    let direct = SqliteStore::open_with(path.to_str().unwrap(), common::config("via_url")).unwrap();
    assert_eq!(
        direct.get("k", None).await.unwrap(),
        Some(Bytes::from_static(b"v"))
    );
    let described = admin.describe();
    assert!(
        described.contains("sqlite") && described.contains("via_url"),
        "{described}"
    );
    assert!(described.contains(path.to_str().unwrap()), "{described}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_memory_url_opens_with_the_configs_own_fields() {
    let config = json!({"table": "mem_sessions", "cleanup_batch_size": 2, "busy_timeout": "1s"});
    let admin = SqliteConnector
        .open("sqlite::memory:", &config)
        .await
        .unwrap();
    assert_eq!(admin.cleanup_batch_size(), 2);
    assert_eq!(admin.describe(), "sqlite :memory: (table mem_sessions)");
    admin.migrate().await.unwrap();
    for i in 0..3 {
        admin
            .set(
                &format!("k{i}"),
                Bytes::from_static(b"v"),
                Some(Duration::from_millis(1)),
            )
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(1100)).await; // whole seconds
    assert_eq!(admin.delete_expired_batch(2).await.unwrap(), 2);
    assert_eq!(admin.delete_expired_batch(2).await.unwrap(), 1);
    assert_eq!(admin.cleanup().await.unwrap(), Some(0));
    let err = admin.delete_expired_batch(0).await.unwrap_err();
    assert!(matches!(err, Error::InvalidConfig { .. }), "{err}");
    assert_eq!(admin.applied_migrations().await.unwrap().len(), 1);
}

/// The error of an `open` that must fail (`dyn StoreAdmin` is not `Debug`).
fn refused(result: session_core::Result<Arc<dyn StoreAdmin>>) -> Error {
    match result {
        Ok(admin) => panic!("opened {}", admin.describe()),
        Err(err) => err,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_urls_and_configs_are_refused_without_a_password() {
    for url in [
        "postgres://app:s3cret@db.example/app",
        "sqlite://app:s3cret@host/sessions.db",
        "sqlite:///var/db/s.db?password=s3cret",
        "sqlite://",
        "s3cret",
    ] {
        let err = refused(SqliteConnector.open(url, &json!(null)).await);
        let text = err.to_string();
        assert!(
            matches!(&err, Error::InvalidConfig { field, .. } if field == "url"),
            "{url}: {text}"
        );
        assert!(!text.contains("s3cret"), "{url}: {text}");
        let err = SqliteConnector
            .migration_sql(url, &json!(null))
            .unwrap_err();
        assert!(!err.to_string().contains("s3cret"), "{url}: {err}");
    }
    let err = refused(
        SqliteConnector
            .open("sqlite::memory:", &json!({"pool_sise": 2}))
            .await,
    );
    assert!(err.to_string().contains("pool_sise"), "{err}");
}

#[test]
fn migration_sql_needs_no_database() {
    let dir = common::test_dir().join(common::unique("never_created"));
    let path = dir.join("sessions.db");
    let url = format!("sqlite://{}", path.display());
    let sql = SqliteConnector
        .migration_sql(&url, &json!({"table": "app_sessions"}))
        .unwrap()
        .unwrap();
    assert!(sql.contains("CREATE TABLE IF NOT EXISTS app_sessions_migrations"));
    assert!(sql.contains("-- ext_litestar_0001:"));
    assert!(
        !dir.exists() && !path.exists(),
        "migration_sql created files"
    );
    // The store's own, for the same table, is the same text.
    let store = SqliteStore::in_memory_with(common::config("app_sessions")).unwrap();
    assert_eq!(store.migration_sql(), Some(sql));
    assert_eq!(store.migrations().len(), 1);
}

#[test]
fn open_outside_a_runtime_is_an_error() {
    // No tokio runtime: polled by hand.
    let err = refused(common::block_on(
        SqliteConnector.open("sqlite::memory:", &json!(null)),
    ));
    assert!(matches!(err, Error::Backend { .. }), "{err}");
}
