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
    open_waiting(path, busy_timeout, SqliteConfig::default().wait_timeout).await
}

async fn open_waiting(
    path: &std::path::Path,
    busy_timeout: Duration,
    wait_timeout: Duration,
) -> SqliteStore {
    let store = SqliteStore::open_with(
        path.to_str().unwrap(),
        SqliteConfig {
            busy_timeout,
            wait_timeout,
            ..config(&unique("writer"))
        },
    )
    .unwrap();
    store.create_table().await.unwrap();
    store
}

/// Rows whose key starts with `prefix`, seen by a connection of its own.
fn rows_like(path: &std::path::Path, store: &SqliteStore, prefix: &str) -> i64 {
    Connection::open(path)
        .unwrap()
        .query_row(
            &format!(
                "SELECT count(*) FROM {} WHERE session_id LIKE ?1",
                store.table()
            ),
            [format!("{prefix}%")],
            |r| r.get(0),
        )
        .unwrap()
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

    // Every write is in the file, seen by a connection of its own (every
    // key but "shared" starts with "t").
    assert_eq!(
        rows_like(&path, &store, "t") as usize,
        TASKS * EACH * 9 / 10
    );
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

/// With another connection holding the write lock, many concurrent writes
/// all fail within the wait timeout (for a turn at the writer) plus the
/// busy timeout (for the lock, once the writer runs the write), not one
/// busy timeout per group of queued writes; none of them runs later; and
/// once the lock is released, writes succeed again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writes_behind_a_held_lock_fail_within_the_wait_and_busy_timeouts() {
    let path = fresh_db_path();
    let busy = Duration::from_millis(500);
    let wait = Duration::from_millis(50);
    let store = open_waiting(&path, busy, wait).await;

    let holder = Connection::open(&path).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    const WRITES: usize = 200;
    let started = Instant::now();
    let writes: Vec<_> = (0..WRITES)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let began = Instant::now();
                let result = store
                    .set(&format!("w{i}"), Bytes::from_static(b"x"), None)
                    .await;
                (result, began.elapsed())
            })
        })
        .collect();
    let (mut timed_out, mut locked, mut slowest) = (0, 0, Duration::ZERO);
    for write in writes {
        let (result, took) = write.await.unwrap();
        slowest = slowest.max(took);
        match result.expect_err("a write landed under another connection's lock") {
            Error::PoolTimeout { waited, .. } => {
                assert!(waited >= wait, "waited {waited:?}, less than {wait:?}");
                assert!(waited <= took, "reported {waited:?}, waited {took:?}");
                timed_out += 1;
            }
            err => {
                let text = err.to_string();
                assert!(text.contains("database is locked"), "{text}");
                assert!(text.contains(path.to_str().unwrap()), "{text}");
                locked += 1;
            }
        }
    }
    let took = started.elapsed();
    let bound = (wait + busy) * 3;
    println!(
        "{WRITES} writes under a held lock: {timed_out} timed out waiting for the writer, \
         {locked} found the database locked; all failed after {took:?}, the slowest caller \
         waited {slowest:?} (wait_timeout {wait:?}, busy_timeout {busy:?}, bound {bound:?})"
    );
    assert!(took < bound, "took {took:?}, more than {bound:?}");

    holder.execute_batch("ROLLBACK").unwrap();
    store
        .set("after", Bytes::from_static(b"v"), None)
        .await
        .unwrap();
    assert_eq!(
        store.get("after", None).await.unwrap(),
        Some(Bytes::from_static(b"v"))
    );
    // The writes that failed never ran later (the write above queued
    // behind any that were left).
    assert_eq!(rows_like(&path, &store, "w"), 0);
}

/// A write whose caller has gone (its future dropped) before the writer
/// reaches it is not run.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writes_whose_callers_have_gone_are_not_run() {
    let path = fresh_db_path();
    let store = open(&path, Duration::from_secs(10)).await;
    let holder = Connection::open(&path).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    // The writer runs this one and waits for the lock...
    let first = tokio::spawn({
        let store = store.clone();
        async move { store.set("first", Bytes::from_static(b"1"), None).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    // ...while these queue, and their callers give up.
    let gone: Vec<_> = (0..10)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .set(&format!("gone{i}"), Bytes::from_static(b"x"), None)
                    .await
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    for task in gone {
        task.abort();
        assert!(task.await.unwrap_err().is_cancelled());
    }
    holder.execute_batch("COMMIT").unwrap();
    first.await.unwrap().unwrap();
    store
        .set("last", Bytes::from_static(b"2"), None)
        .await
        .unwrap();
    assert_eq!(rows_like(&path, &store, "gone"), 0, "abandoned writes ran");
    assert_eq!(rows_like(&path, &store, "first"), 1);
    assert_eq!(rows_like(&path, &store, "last"), 1);
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
