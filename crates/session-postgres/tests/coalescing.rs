//! Concurrent reads and renewing reads are coalesced into one statement:
//! every caller still gets exactly its own answer, with its own renewal,
//! and a failed statement fails every caller it served.

use std::sync::Arc;
use std::time::{Duration, Instant};

use session_core::{Bytes, Error, Store};
use session_postgres::{PostgresConfig, PostgresStore};
use session_test_support::{connect, unique_table_name};

/// A store on a fresh table, and a guard dropping it.
async fn fresh(url: &str, prefix: &str) -> (Arc<PostgresStore>, Dropper) {
    let table = unique_table_name(prefix);
    let store = PostgresStore::from_url(
        url,
        PostgresConfig {
            table: table.clone(),
            pool_size: 4,
            ..PostgresConfig::default()
        },
    )
    .unwrap();
    store.create_table().await.unwrap();
    (
        Arc::new(store),
        Dropper {
            url: url.to_owned(),
            table,
        },
    )
}

struct Dropper {
    url: String,
    table: String,
}

impl Drop for Dropper {
    fn drop(&mut self) {
        let _ = session_test_support::drop_tables_blocking(
            &self.url,
            std::slice::from_ref(&self.table),
        );
    }
}

const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86_400);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_concurrent_caller_gets_its_own_answer_and_renewal() {
    let Some(url) = session_test_support::pg_url_or_skip() else {
        return;
    };
    let (store, dropper) = fresh(&url, "coalesce_answers").await;
    let admin = connect(&url).await.unwrap();
    // 40 live keys with an hour left, 10 without expiry, 10 expired, and
    // 10 never written.
    for i in 0..40 {
        store
            .set(
                &format!("live{i}"),
                Bytes::from(format!("v-live{i}")),
                Some(HOUR),
            )
            .await
            .unwrap();
    }
    for i in 0..10 {
        store
            .set(
                &format!("forever{i}"),
                Bytes::from(format!("v-forever{i}")),
                None,
            )
            .await
            .unwrap();
        store
            .set(
                &format!("gone{i}"),
                Bytes::from(format!("v-gone{i}")),
                Some(HOUR),
            )
            .await
            .unwrap();
    }
    admin
        .batch_execute(&format!(
            "UPDATE {} SET expires_at = now() - interval '1 second' WHERE session_id LIKE 'gone%'",
            dropper.table
        ))
        .await
        .unwrap();

    // Rounds of 200 concurrent calls: each key read many times, by plain
    // reads and by renewing reads. live0..19 are renewed for a day,
    // live20..29 for a minute, live30..39 only read.
    for round in 0..5 {
        let mut calls = Vec::new();
        for n in 0..200usize {
            let (key, renew): (String, Option<Duration>) = match n % 7 {
                0 | 1 => (format!("live{}", n % 20), Some(DAY)),
                2 => (
                    format!("live{}", 20 + n % 10),
                    Some(Duration::from_secs(60)),
                ),
                3 => (format!("live{}", 30 + n % 10), None),
                4 => (
                    format!("forever{}", n % 10),
                    if n % 2 == 0 { Some(DAY) } else { None },
                ),
                5 => (
                    format!("gone{}", n % 10),
                    if n % 2 == 0 { Some(DAY) } else { None },
                ),
                _ => (
                    format!("missing{}", n % 10),
                    if n % 2 == 0 { Some(DAY) } else { None },
                ),
            };
            let store = store.clone();
            calls.push(tokio::spawn(async move {
                let got = store.get(&key, renew).await.unwrap();
                (key, got)
            }));
        }
        for call in calls {
            let (key, got) = tokio::time::timeout(Duration::from_secs(30), call)
                .await
                .expect("a coalesced caller hung")
                .unwrap();
            let expected = if key.starts_with("live") || key.starts_with("forever") {
                Some(Bytes::from(format!("v-{key}")))
            } else {
                None
            };
            assert_eq!(got, expected, "round {round}: {key}");
        }
    }

    // Each key carries its own renewal; a key without expiry keeps none;
    // an expired row was neither returned nor revived.
    for i in 0..40 {
        let key = format!("live{i}");
        let left = store.expires_in(&key).await.unwrap().unwrap();
        let (low, high) = match i {
            0..20 => (DAY - Duration::from_secs(60), DAY),
            20..30 => (Duration::from_secs(30), Duration::from_secs(60)),
            _ => (HOUR - Duration::from_secs(120), HOUR),
        };
        assert!(left > low && left <= high, "{key}: {left:?} left");
    }
    for i in 0..10 {
        let key = format!("forever{i}");
        assert!(store.exists(&key).await.unwrap());
        assert_eq!(store.expires_in(&key).await.unwrap(), None, "{key}");
        assert!(!store.exists(&format!("gone{i}")).await.unwrap());
    }
    let expired: i64 = admin
        .query_one(
            &format!(
                "SELECT count(*) FROM {} WHERE session_id LIKE 'gone%' AND expires_at <= now()",
                dropper.table
            ),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(expired, 10, "an expired row was revived");
    assert!(!store.exists("missing0").await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_queued_behind_a_slow_read_are_served_by_one_statement() {
    let Some(url) = session_test_support::pg_url_or_skip() else {
        return;
    };
    let (store, dropper) = fresh(&url, "coalesce_queue").await;
    for i in 0..30 {
        store
            .set(&format!("k{i}"), Bytes::from(format!("v{i}")), Some(HOUR))
            .await
            .unwrap();
    }
    // The first read waits on a table lock; the reads made meanwhile
    // queue, and are all served together once it is released.
    let admin = connect(&url).await.unwrap();
    admin
        .batch_execute(&format!(
            "BEGIN; LOCK TABLE {} IN ACCESS EXCLUSIVE MODE",
            dropper.table
        ))
        .await
        .unwrap();
    let first = {
        let store = store.clone();
        tokio::spawn(async move { store.get("k0", None).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let calls: Vec<_> = (1..30)
        .map(|i| {
            let store = store.clone();
            let renew = (i % 2 == 0).then_some(DAY);
            tokio::spawn(async move { (i, store.get(&format!("k{i}"), renew).await) })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    admin.batch_execute("COMMIT").await.unwrap();
    assert_eq!(
        first.await.unwrap().unwrap(),
        Some(Bytes::from_static(b"v0"))
    );
    for call in calls {
        let (i, got) = tokio::time::timeout(Duration::from_secs(30), call)
            .await
            .expect("a queued caller hung")
            .unwrap();
        assert_eq!(got.unwrap(), Some(Bytes::from(format!("v{i}"))), "k{i}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_coalesced_statement_fails_every_caller_it_served() {
    let Some(url) = session_test_support::pg_url_or_skip() else {
        return;
    };
    let (store, dropper) = fresh(&url, "coalesce_error").await;
    store
        .set("k", Bytes::from_static(b"v"), Some(HOUR))
        .await
        .unwrap();
    // The first read waits on a lock held by a transaction that drops the
    // table; the reads queued meanwhile run as one statement on a table
    // that is gone.
    let admin = connect(&url).await.unwrap();
    admin
        .batch_execute(&format!(
            "BEGIN; LOCK TABLE {} IN ACCESS EXCLUSIVE MODE",
            dropper.table
        ))
        .await
        .unwrap();
    let spawn_get = |key: String, renew: Option<Duration>| {
        let store = store.clone();
        tokio::spawn(async move { store.get(&key, renew).await })
    };
    let first = spawn_get("k".into(), None);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut plain = Vec::new();
    let mut renewing = Vec::new();
    for i in 0..20 {
        plain.push(spawn_get(format!("k{}", i % 3), None));
        renewing.push(spawn_get(format!("k{}", i % 3), Some(DAY)));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    admin
        .batch_execute(&format!("DROP TABLE {}; COMMIT", dropper.table))
        .await
        .unwrap();
    let started = Instant::now();
    assert!(first.await.unwrap().is_err());
    for call in plain.into_iter().chain(renewing) {
        let result = tokio::time::timeout(Duration::from_secs(30), call)
            .await
            .expect("a caller of a failed statement hung")
            .unwrap();
        let err = result.expect_err("read a dropped table");
        let Error::Backend { context, .. } = &err else {
            panic!("expected Error::Backend, got {err:?}")
        };
        assert!(context.contains(&dropper.table), "{context}");
        assert!(context.contains("42P01"), "{context}");
        // The driver's error is in the chain.
        let mut source = std::error::Error::source(&err);
        let mut found = false;
        while let Some(cause) = source {
            found |= cause.downcast_ref::<tokio_postgres::Error>().is_some();
            source = cause.source();
        }
        assert!(found, "no driver error in {err:?}");
    }
    println!("every caller failed within {:?}", started.elapsed());
    // The store serves again once the table is back.
    store.create_table().await.unwrap();
    assert_eq!(store.get("k", Some(DAY)).await.unwrap(), None);
}
