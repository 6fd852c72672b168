//! `FileConnector`: `file:` URLs open a store; other forms are refused
//! naming `url`; the operations side says "no schema".

use std::path::PathBuf;

use serde_json::json;
use session_core::{Bytes, Connector, Error};
use session_file::FileConnector;

fn fresh_dir(name: &str) -> PathBuf {
    let dir = session_test_support::scratch_dir("session-file").join(format!("connector-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[tokio::test]
async fn an_absolute_file_url_opens_and_creates_the_directory() {
    let dir = fresh_dir("open");
    let url = format!("file://{}", dir.display());
    let admin = FileConnector.open(&url, &json!(null)).await.unwrap();
    assert!(dir.is_dir(), "the directory was not created");
    assert_eq!(admin.backend(), "file");
    assert_eq!(admin.location(), dir.display().to_string());
    assert_eq!(admin.describe(), format!("file store at {}", dir.display()));
    assert_eq!(admin.migration_sql(), None);
    assert!(admin.migrations().is_empty());
    assert!(admin.applied_migrations().await.unwrap().is_empty());
    assert!(admin.session_table_exists().await.unwrap());
    admin
        .set("k", Bytes::from_static(b"v"), None)
        .await
        .unwrap();
    assert!(admin.exists("k").await.unwrap());
    assert_eq!(admin.cleanup().await.unwrap(), Some(0));

    // A second store on the same URL sees the same sessions.
    let localhost = format!("file://localhost{}", dir.display());
    let other = FileConnector
        .open(&localhost, &json!({"fsync": true}))
        .await
        .unwrap();
    assert_eq!(
        other.get("k", None).await.unwrap(),
        Some(Bytes::from_static(b"v"))
    );

    // migrate: nothing to migrate; it recreates a removed directory.
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(!admin.session_table_exists().await.unwrap());
    let report = admin.migrate().await.unwrap();
    assert!(report.is_noop(), "{report}");
    assert!(dir.is_dir());
    assert!(admin.session_table_exists().await.unwrap());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn other_urls_are_refused_naming_url() {
    for url in [
        "file://otherhost/x",
        "file:relative",
        "file:relative/dir",
        "file:/abs/but/one/slash",
        "file://",
        "file:///",
        "file:",
        "file:///tmp/x?fsync=true",
        "redis://localhost/0",
    ] {
        let err = FileConnector.open(url, &json!(null)).await.unwrap_err();
        assert!(
            matches!(&err, Error::InvalidConfig { field, .. } if field == "url"),
            "{url}: {err}"
        );
        let err = FileConnector.migration_sql(url, &json!(null)).unwrap_err();
        assert!(
            matches!(&err, Error::InvalidConfig { field, .. } if field == "url"),
            "{url}: {err}"
        );
    }
}

#[tokio::test]
async fn the_config_document_is_checked() {
    let dir = fresh_dir("config");
    let url = format!("file://{}", dir.display());
    let err = FileConnector
        .open(&url, &json!({"fsink": true}))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("fsink"), "{err}");
    assert!(!dir.exists(), "a refused config created the directory");
    let err = FileConnector
        .migration_sql(&url, &json!({"litestar": {"session_table": "s"}}))
        .unwrap_err();
    assert!(matches!(err, Error::UnknownConfigKeys { .. }), "{err}");
    assert_eq!(
        FileConnector
            .migration_sql(&url, &json!({"fsync": true}))
            .unwrap(),
        None
    );
}
