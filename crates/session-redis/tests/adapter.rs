//! Behaviour beyond the conformance suite, on the shared Redis (only under
//! prefixes of the tests' own).

use std::time::Duration;

use session_core::{Bytes, Store};
use session_redis::{RedisConfig, RedisStore};
use session_test_support::redis::{redis_url_or_skip, unique_prefix};

async fn store(url: &str, prefix: &str) -> RedisStore {
    let config = RedisConfig {
        prefix: prefix.to_owned(),
        delete_all_batch_size: 3,
        ..RedisConfig::default()
    };
    RedisStore::open(url, config).await.unwrap()
}

/// `delete_all` removes every key under the prefix, in batches, binary
/// (non-UTF-8) keys written by another client included, and nothing of a
/// neighbouring prefix.
#[tokio::test]
async fn delete_all_removes_binary_keys_and_spares_other_prefixes() {
    let Some(url) = redis_url_or_skip() else {
        return;
    };
    let prefix = unique_prefix("adapter");
    let other_prefix = unique_prefix("adapter_other");
    let (ours, theirs) = (store(&url, &prefix).await, store(&url, &other_prefix).await);
    for i in 0..10 {
        ours.set(&format!("k{i}"), Bytes::from_static(b"v"), None)
            .await
            .unwrap();
    }
    theirs
        .set("k0", Bytes::from_static(b"kept"), None)
        .await
        .unwrap();
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut raw = client.get_multiplexed_async_connection().await.unwrap();
    let mut binary = prefix.as_bytes().to_vec();
    binary.extend_from_slice(b"\xff\xfe");
    let () = redis::cmd("SET")
        .arg(&binary)
        .arg("x")
        .query_async(&mut raw)
        .await
        .unwrap();

    ours.delete_all().await.unwrap();
    let left: u64 = redis::cmd("EXISTS")
        .arg(&binary)
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(left, 0, "the binary key survived delete_all");
    for i in 0..10 {
        assert!(!ours.exists(&format!("k{i}")).await.unwrap());
    }
    assert_eq!(
        theirs.get("k0", None).await.unwrap(),
        Some(Bytes::from_static(b"kept"))
    );
    theirs.delete_all().await.unwrap();
}

/// A renewing read keeps a key without expiry without one, and moves the
/// expiry of a key that has one.
#[tokio::test]
async fn a_renewing_read_renews_only_keys_with_an_expiry() {
    let Some(url) = redis_url_or_skip() else {
        return;
    };
    let s = store(&url, &unique_prefix("adapter_renew")).await;
    s.set("forever", Bytes::from_static(b"1"), None)
        .await
        .unwrap();
    s.set(
        "short",
        Bytes::from_static(b"2"),
        Some(Duration::from_secs(5)),
    )
    .await
    .unwrap();
    let hour = Some(Duration::from_secs(3600));
    assert_eq!(
        s.get("forever", hour).await.unwrap(),
        Some(Bytes::from_static(b"1"))
    );
    assert_eq!(s.expires_in("forever").await.unwrap(), None);
    assert_eq!(
        s.get("short", hour).await.unwrap(),
        Some(Bytes::from_static(b"2"))
    );
    assert!(s.expires_in("short").await.unwrap().unwrap() > Duration::from_secs(3590));
    s.delete_all().await.unwrap();
}
