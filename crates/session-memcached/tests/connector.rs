//! `MemcachedConnector`: opening stores from URLs and config documents.

use bytes::Bytes;
use serde_json::json;
use session_core::{Connector, Error, Store};
use session_memcached::MemcachedConnector;
use session_test_support::memcached::{memcached_url_or_skip, unique_prefix};

#[tokio::test]
async fn a_good_url_and_config_open_a_working_store() {
    let Some(url) = memcached_url_or_skip() else {
        return;
    };
    let prefix = unique_prefix("connector");
    for url in [
        url.clone(),
        url.replace("memcache://", "MEMCACHED://") + "/",
    ] {
        let admin = MemcachedConnector
            .open(&url, &json!({"prefix": prefix, "pool_size": 2}))
            .await
            .unwrap();
        assert_eq!(admin.backend(), "memcached");
        assert!(admin.describe().contains(&prefix), "{}", admin.describe());
        let store: std::sync::Arc<dyn Store> = admin;
        store
            .set("k", Bytes::from_static(b"v"), None)
            .await
            .unwrap();
        assert!(store.exists("k").await.unwrap());
        assert!(store.expires_by_itself().is_some());
    }
    // The defaults: prefix `session:`.
    let admin = MemcachedConnector
        .open(&url, &serde_json::Value::Null)
        .await
        .unwrap();
    assert_eq!(admin.location(), "session:");
}

#[tokio::test]
async fn bad_urls_and_configs_are_invalid_config_naming_the_field() {
    for (url, config, field) in [
        ("memcache://h:x", json!(null), "url"),
        ("memcache://", json!(null), "url"),
        ("redis://h", json!(null), "url"),
        ("memcache://u:pw@h", json!(null), "url"),
        ("memcache://h/0", json!(null), "url"),
        ("memcache://127.0.0.1", json!({"prefix": "a b"}), "prefix"),
        ("memcache://127.0.0.1", json!({"pool_size": 0}), "pool_size"),
        ("memcache://127.0.0.1", json!({"table": "t"}), "table"),
    ] {
        for result in [
            MemcachedConnector.migration_sql(url, &config).map(|_| ()),
            MemcachedConnector.open(url, &config).await.map(|_| ()),
        ] {
            match result {
                Err(Error::InvalidConfig { field: got, reason }) => {
                    assert!(
                        got == field || reason.contains(field),
                        "{url}: {got}: {reason}"
                    );
                    assert!(!reason.contains("pw@"), "{reason}");
                }
                other => panic!("{url} {config}: {other:?}"),
            }
        }
    }
}

#[test]
fn the_connector_names_its_url_forms_and_has_no_sql() {
    assert_eq!(MemcachedConnector.schemes(), ["memcache", "memcached"]);
    assert!(
        MemcachedConnector
            .url_forms()
            .contains("memcache://HOST[:PORT]")
    );
    assert_eq!(
        MemcachedConnector
            .migration_sql("memcache://a:1,b:2", &serde_json::Value::Null)
            .unwrap(),
        None
    );
}
