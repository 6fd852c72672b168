//! The single writer of a file database: writes from many tasks all land,
//! in one commit or many, each with its own answer; reads never queue
//! behind it; a lock held by another connection fails the queued writes
//! with an error naming the database file.

mod common;

use std::error::Error as _;
use std::time::{Duration, Instant};

use common::{config, fresh_db_path, unique};
use rusqlite::Connection;
use session_core::{Bytes, Error, Store, StoreAdmin};
use session_sqlite::{SqliteConfig, SqliteStore};

async fn open(path: &std::path::Path, busy_timeout: Duration) -> SqliteStore {
    let store = SqliteStore::open_with(
        path.to_str().unwrap(),
        SqliteConfig {
            busy_timeout,
            ..config(&unique("writer"))
        },
    )
    .unwrap();
    store.create_table().await.unwrap();
    store
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writes_from_many_tasks_all_land_with_their_own_answers() {
    let path = fresh_db_path();
    let store = open(&path, Duration::from_secs(5)).await;
    const TASKS: usize = 16;
    const EACH: usize = 100;
    // Seeded rows for the conditional writes: each task's compare-and-set
    // over `shared` races the others, and exactly one may win.
    store
        .set("shared", Bytes::from_static(b"start"), None)
        .await
        .unwrap();
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut wins = 0;
                for i in 0..EACH {
                    let key = format!("t{t}-{i}");
                    let value = Bytes::from(format!("value {t} {i}"));
                    assert!(store.create(&key, value.clone(), None).await.unwrap());
                    assert!(!store.create(&key, value.clone(), None).await.unwrap());
                    store
                        .set(&key, value.clone(), Some(Duration::from_secs(60)))
                        .await
                        .unwrap();
                    assert!(store.update(&key, value, None).await.unwrap());
                    if i == EACH / 2 {
                        let won = store
                            .compare_and_set(
                                "shared",
                                Bytes::from_static(b"start"),
                                Bytes::from(format!("task {t}")),
                                None,
                            )
                            .await
                            .unwrap();
                        wins += usize::from(won);
                    }
                    if i % 10 == 0 {
                        store.delete(&key).await.unwrap();
                        assert!(!store.delete_live(&key).await.unwrap());
                    }
                }
                wins
            })
        })
        .collect();
    let mut wins = 0;
    for task in tasks {
        wins += task.await.unwrap();
    }
    assert_eq!(wins, 1, "one compare-and-set from the same value wins");

    // Every write is in the file, seen by a connection of its own.
    let conn = Connection::open(&path).unwrap();
    let count: i64 = conn
        .query_row(
            &format!(
                "SELECT count(*) FROM {} WHERE session_id != 'shared'",
                store.table()
            ),
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(count as usize, TASKS * EACH * 9 / 10);
    for t in 0..TASKS {
        for i in (1..EACH).filter(|i| i % 10 != 0) {
            let got = store.get(&format!("t{t}-{i}"), None).await.unwrap();
            assert_eq!(got, Some(Bytes::from(format!("value {t} {i}"))));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reads_go_on_while_the_writer_waits_for_the_lock() {
    let path = fresh_db_path();
    let store = open(&path, Duration::from_secs(5)).await;
    store
        .set("k", Bytes::from_static(b"v"), None)
        .await
        .unwrap();

    // Another connection holds the write lock: the writer waits for it.
    let holder = Connection::open(&path).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let writing = tokio::spawn({
        let store = store.clone();
        async move { store.set("k", Bytes::from_static(b"w"), None).await }
    });
    let renewing = tokio::spawn({
        let store = store.clone();
        async move { store.get("k", Some(Duration::from_secs(60))).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !writing.is_finished(),
        "the write did not wait for the lock"
    );

    // Reads (on the pool) do not queue behind the waiting writer.
    let started = Instant::now();
    for _ in 0..200 {
        assert_eq!(
            store.get("k", None).await.unwrap(),
            Some(Bytes::from_static(b"v"))
        );
        assert!(store.exists("k").await.unwrap());
    }
    let took = started.elapsed();
    println!("400 reads while the writer waited for the lock: {took:?}");
    assert!(took < Duration::from_secs(2), "reads waited: {took:?}");
    assert!(!writing.is_finished());

    holder.execute_batch("COMMIT").unwrap();
    writing.await.unwrap().unwrap();
    // The renewal queued behind the write, and read what it wrote or the
    // value before: it ran after the lock was released, in order.
    let renewed = renewing.await.unwrap().unwrap();
    assert!(renewed.is_some());
    assert_eq!(
        store.get("k", None).await.unwrap(),
        Some(Bytes::from_static(b"w"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn queued_writes_fail_naming_the_database_when_the_lock_is_held() {
    let path = fresh_db_path();
    let busy = Duration::from_millis(200);
    let store = open(&path, busy).await;
    store
        .set("k", Bytes::from_static(b"v"), None)
        .await
        .unwrap();

    let holder = Connection::open(&path).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let started = Instant::now();
    // Many writes at once: the first waits alone, the rest queue and are
    // tried together.
    let writes: Vec<_> = (0..12)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .set(&format!("k{i}"), Bytes::from_static(b"x"), None)
                    .await
            })
        })
        .collect();
    for write in writes {
        let err = write.await.unwrap().unwrap_err();
        assert!(matches!(err, Error::Backend { .. }), "{err:?}");
        let text = err.to_string();
        assert!(text.contains("database is locked"), "{text}");
        assert!(
            text.contains(path.to_str().unwrap()),
            "the error does not name the file: {text}"
        );
        assert!(err.source().is_some());
    }
    let took = started.elapsed();
    println!("12 queued writes failed after {took:?} (busy timeout {busy:?})");
    assert!(took >= busy, "failed before the busy timeout: {took:?}");
    // The queue failed in a few busy timeouts, not one per write.
    assert!(took < busy * 6, "took {took:?}");

    holder.execute_batch("ROLLBACK").unwrap();
    store
        .set("k", Bytes::from_static(b"w"), None)
        .await
        .unwrap();
    assert_eq!(
        store.get("k", None).await.unwrap(),
        Some(Bytes::from_static(b"w"))
    );
    // Cleanup goes through the writer too.
    assert_eq!(store.cleanup().await.unwrap(), Some(0));
}

#[test]
fn a_database_that_cannot_be_opened_is_named() {
    let missing = std::env::temp_dir()
        .join(unique("no-such-dir"))
        .join("sessions.db");
    let err = SqliteStore::open(missing.to_str().unwrap()).unwrap_err();
    assert!(matches!(err, Error::Connection { .. }), "{err:?}");
    assert!(err.to_string().contains(missing.to_str().unwrap()), "{err}");
}
