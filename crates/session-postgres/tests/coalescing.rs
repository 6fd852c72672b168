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
    fresh_with(
        url,
        prefix,
        PostgresConfig {
            pool_size: 4,
            ..Default::default()
        },
    )
    .await
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
        // Every caller, led or queued, has the driver's error itself as
        // its source, as a call served alone does.
        let driver = std::error::Error::source(&err)
            .and_then(|s| s.downcast_ref::<tokio_postgres::Error>())
            .unwrap_or_else(|| panic!("the driver's error is not the source of {err:?}"));
        assert_eq!(
            driver.code(),
            Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE)
        );
    }
    println!("every caller failed within {:?}", started.elapsed());
    // The store serves again once the table is back.
    store.create_table().await.unwrap();
    assert_eq!(store.get("k", Some(DAY)).await.unwrap(), None);
}

/// A store on a fresh table with `config`'s pool fields, and its dropper.
async fn fresh_with(
    url: &str,
    prefix: &str,
    config: PostgresConfig,
) -> (Arc<PostgresStore>, Dropper) {
    let table = unique_table_name(prefix);
    let store = PostgresStore::from_url(
        url,
        PostgresConfig {
            table: table.clone(),
            ..config
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

/// xorshift64: a test's own pseudo-random numbers, seeded and printed.
struct Rng(u64);

impl Rng {
    fn seeded() -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
            | 1;
        println!("seed {seed}");
        Rng(seed)
    }

    fn below(&mut self, n: u64) -> u64 {
        session_test_support::bench::next(&mut self.0) % n
    }
}

/// Calls dropped while they wait (a request timeout, a client gone, an
/// aborted task) never keep the slot: afterwards a plain read, and a
/// renewing one, are served at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_dropped_while_queued_never_keep_the_slot() {
    let Some(url) = session_test_support::pg_url_or_skip() else {
        return;
    };
    let (store, _dropper) = fresh(&url, "coalesce_cancel").await;
    for i in 0..16 {
        store
            .set(&format!("k{i}"), Bytes::from(format!("v{i}")), Some(HOUR))
            .await
            .unwrap();
    }
    let mut rng = Rng::seeded();
    for round in 0..100 {
        let mut calls = Vec::new();
        for i in 0..48u64 {
            let store = store.clone();
            let key = format!("k{}", i % 16);
            let renew = (rng.below(2) == 0).then_some(DAY);
            let cut = rng.below(3) == 0;
            let after = Duration::from_micros(1 + rng.below(2_000));
            calls.push(tokio::spawn(async move {
                if cut {
                    // Dropped after a few microseconds to 2 ms: by a
                    // timeout (which polls the call first), or by a
                    // server that checks first whether its client left.
                    if after.as_micros() % 2 == 0 {
                        let _ = tokio::time::timeout(after, store.get(&key, renew)).await;
                    } else {
                        tokio::select! {
                            biased;
                            () = tokio::time::sleep(after) => {}
                            _ = store.get(&key, renew) => {}
                        }
                    }
                } else {
                    store.get(&key, renew).await.unwrap();
                }
            }));
        }
        // And some tasks aborted outright, wherever they are: queued,
        // leading, or just handed the slot.
        for _ in 0..16 {
            for _ in 0..rng.below(40) {
                tokio::task::yield_now().await;
            }
            calls[rng.below(48) as usize].abort();
        }
        for call in calls {
            // Err: aborted.
            let _ = tokio::time::timeout(Duration::from_secs(10), call)
                .await
                .unwrap_or_else(|_| panic!("round {round}: a call hung"));
        }
        for renew in [None, Some(DAY)] {
            let got = tokio::time::timeout(Duration::from_secs(1), store.get("k1", renew))
                .await
                .unwrap_or_else(|_| panic!("round {round}: a get (renew {renew:?}) hung"));
            assert_eq!(got.unwrap(), Some(Bytes::from_static(b"v1")));
        }
    }
}

/// A read queued behind a statement that waits on a row lock gives up
/// after `wait_timeout`, and says how long it really waited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_call_gives_up_after_wait_timeout_with_its_real_wait() {
    let Some(url) = session_test_support::pg_url_or_skip() else {
        return;
    };
    let wait = Duration::from_millis(500);
    let (store, dropper) = fresh_with(
        &url,
        "coalesce_deadline",
        PostgresConfig {
            pool_size: 4,
            wait_timeout: wait,
            ..PostgresConfig::default()
        },
    )
    .await;
    for key in ["slow", "other"] {
        store
            .set(key, Bytes::from_static(b"v"), Some(HOUR))
            .await
            .unwrap();
    }
    let admin = connect(&url).await.unwrap();
    lock_row(&admin, &dropper.table, "slow", true)
        .await
        .unwrap();
    // The renewal of `slow` waits on the row lock, holding the slot.
    let slow = {
        let store = store.clone();
        tokio::spawn(async move { store.get("slow", Some(DAY)).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    let queued = {
        let store = store.clone();
        tokio::spawn(async move { store.get("other", Some(DAY)).await })
    };
    let outcome = tokio::time::timeout(Duration::from_secs(3), queued).await;
    admin.batch_execute("COMMIT").await.unwrap();
    let result = outcome
        .expect("the queued call waited past wait_timeout")
        .unwrap();
    let elapsed = started.elapsed();
    let Err(Error::PoolTimeout { waited, .. }) = result else {
        panic!("expected Error::PoolTimeout, got {result:?}")
    };
    assert!(waited >= wait, "{waited:?}");
    assert!(waited <= elapsed, "{waited:?} > {elapsed:?}");
    assert!(elapsed < wait * 2, "{elapsed:?}");
    // The slow call itself is served once the lock is gone.
    assert_eq!(slow.await.unwrap().unwrap(), Some(Bytes::from_static(b"v")));
    assert_eq!(
        store.get("other", Some(DAY)).await.unwrap(),
        Some(Bytes::from_static(b"v"))
    );
}

/// With the pool exhausted, every read (the one leading and the ones
/// queued behind it) waits at most `wait_timeout` in all, and reports the
/// wait it really had.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_pool_exhausted_no_read_waits_past_wait_timeout() {
    let Some(url) = session_test_support::pg_url_or_skip() else {
        return;
    };
    let wait = Duration::from_millis(400);
    let (store, _dropper) = fresh_with(
        &url,
        "coalesce_pool_wait",
        PostgresConfig {
            pool_size: 1,
            wait_timeout: wait,
            ..PostgresConfig::default()
        },
    )
    .await;
    store
        .set("k", Bytes::from_static(b"v"), Some(HOUR))
        .await
        .unwrap();
    // The only connection is taken.
    let held = store.pool().get().await.unwrap();
    let spawn_get = |key: String| {
        let store = store.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let result = store.get(&key, None).await;
            (started.elapsed(), result)
        })
    };
    let first = spawn_get("k".into());
    tokio::time::sleep(Duration::from_millis(50)).await;
    let queued: Vec<_> = (0..8).map(|i| spawn_get(format!("k{i}"))).collect();
    for call in std::iter::once(first).chain(queued) {
        let (elapsed, result) = tokio::time::timeout(Duration::from_secs(10), call)
            .await
            .expect("a read hung")
            .unwrap();
        let Err(Error::PoolTimeout { waited, .. }) = result else {
            panic!("expected Error::PoolTimeout, got {result:?}")
        };
        assert!(
            elapsed < wait + Duration::from_millis(250),
            "waited {elapsed:?} in all, wait_timeout {wait:?}"
        );
        assert!(waited <= elapsed, "reported {waited:?}, waited {elapsed:?}");
        assert!(
            waited + Duration::from_millis(50) >= wait,
            "reported {waited:?}"
        );
    }
    drop(held);
    assert_eq!(
        store.get("k", None).await.unwrap(),
        Some(Bytes::from_static(b"v"))
    );
}

/// Locks the row of `key` in `client`'s transaction (`begin`: opening
/// one first), as another application's `SELECT ... FOR UPDATE` would.
async fn lock_row(
    client: &tokio_postgres::Client,
    table: &str,
    key: &str,
    begin: bool,
) -> Result<(), tokio_postgres::Error> {
    let begin = if begin { "BEGIN; " } else { "" };
    client
        .batch_execute(&format!(
            "{begin}SELECT 1 FROM {table} WHERE session_id = '{key}' FOR UPDATE"
        ))
        .await
}

/// Stores `v-<key>` under each of `keys`, live for an hour.
async fn seed(store: &PostgresStore, keys: &[&str]) {
    for key in keys {
        store
            .set(key, Bytes::from(format!("v-{key}")), Some(HOUR))
            .await
            .unwrap();
    }
}

/// Each call, within 10 s, answers `v-<key>` for its key.
async fn expect_served(
    calls: Vec<tokio::task::JoinHandle<session_core::Result<Option<Bytes>>>>,
    keys: &[&str],
) {
    for (call, key) in calls.into_iter().zip(keys) {
        let got = tokio::time::timeout(Duration::from_secs(10), call)
            .await
            .expect("a renewal hung")
            .unwrap();
        assert_eq!(got.unwrap(), Some(Bytes::from(format!("v-{key}"))), "{key}");
    }
}

/// Makes the store's next renewing batch hold exactly `keys`: a renewal of
/// `gate` waits on a row lock the returned transaction holds, the
/// renewals of `keys` queue behind it; committing the transaction (see
/// [`Gate::open`]) lets the gate's statement finish and the batch run.
struct Gate {
    admin: tokio_postgres::Client,
    gate: tokio::task::JoinHandle<session_core::Result<Option<Bytes>>>,
    calls: Vec<tokio::task::JoinHandle<session_core::Result<Option<Bytes>>>>,
}

impl Gate {
    async fn close(store: &Arc<PostgresStore>, url: &str, table: &str, keys: &[&str]) -> Gate {
        let admin = connect(url).await.unwrap();
        lock_row(&admin, table, "gate", true).await.unwrap();
        let spawn = |key: String| {
            let store = store.clone();
            tokio::spawn(async move { store.get(&key, Some(DAY)).await })
        };
        let gate = spawn("gate".into());
        tokio::time::sleep(Duration::from_millis(150)).await;
        let calls = keys.iter().map(|k| spawn((*k).to_owned())).collect();
        tokio::time::sleep(Duration::from_millis(150)).await;
        Gate { admin, gate, calls }
    }

    /// Lets the batch run; its calls, in the order given.
    async fn open(self) -> Vec<tokio::task::JoinHandle<session_core::Result<Option<Bytes>>>> {
        self.admin.batch_execute("COMMIT").await.unwrap();
        assert!(self.gate.await.unwrap().unwrap().is_some());
        self.calls
    }
}

/// A renewing batch locks its rows in key order, whatever order they lie
/// in on disk: a transaction locking rows in that same order never
/// deadlocks with it (here: never waits on a row the batch locked out of
/// order).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewing_batch_locks_its_rows_in_key_order() {
    let Some(url) = session_test_support::pg_url_or_skip() else {
        return;
    };
    let (store, dropper) = fresh(&url, "coalesce_lock_order").await;
    // On disk: kz before ka.
    seed(&store, &["kz", "gate", "ka"]).await;
    let other = connect(&url).await.unwrap();
    other
        .batch_execute(&format!(
            "BEGIN; SET LOCAL lock_timeout = '700ms'; \
             SELECT 1 FROM {} WHERE session_id = 'ka' FOR UPDATE",
            dropper.table
        ))
        .await
        .unwrap();
    let gate = Gate::close(&store, &url, &dropper.table, &["ka", "kz"]).await;
    let calls = gate.open().await;
    // The batch now waits for `ka`; it must not hold `kz`.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let second = lock_row(&other, &dropper.table, "kz", false).await;
    let _ = other.batch_execute("COMMIT").await;
    second.expect("the batch held `kz` while waiting for `ka`: rows locked out of key order");
    expect_served(calls, &["ka", "kz"]).await;
}

/// A renewing batch that the server aborts as a deadlock victim (40P01)
/// does not fail its callers: each is served by a statement of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadlocked_batch_serves_its_callers_one_by_one() {
    let Some(url) = session_test_support::pg_url_or_skip() else {
        return;
    };
    let (store, dropper) = fresh(&url, "coalesce_deadlock").await;
    seed(&store, &["ka", "gate", "kz"]).await;
    // Another transaction holds `kz` ...
    let other = connect(&url).await.unwrap();
    lock_row(&other, &dropper.table, "kz", true).await.unwrap();
    // ... the batch locks `ka` and waits for `kz` ...
    let gate = Gate::close(&store, &url, &dropper.table, &["ka", "kz"]).await;
    let calls = gate.open().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    // ... and the other transaction then wants `ka`: a deadlock, which the
    // batch (waiting first) detects after deadlock_timeout, as its victim.
    let second = lock_row(&other, &dropper.table, "ka", false).await;
    let _ = other.batch_execute("COMMIT").await;
    second.expect("the other transaction was the deadlock's victim");
    expect_served(calls, &["ka", "kz"]).await;
}

/// A cleanup statement that the server aborts as a deadlock's victim (a
/// renewing batch, here a transaction, holding a row it wants while
/// waiting for one it holds) runs again instead of failing the cleanup.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cleanup_statement_chosen_as_a_deadlock_victim_runs_again() {
    let Some(url) = session_test_support::pg_url_or_skip() else {
        return;
    };
    let (store, dropper) = fresh(&url, "cleanup_deadlock").await;
    let admin = connect(&url).await.unwrap();
    // Two expired rows: e1 first on disk, then e2.
    admin
        .batch_execute(&format!(
            "INSERT INTO {t} (session_id, data, expires_at) VALUES \
                 ('e1', 'x', now() - interval '1 hour'); \
             INSERT INTO {t} (session_id, data, expires_at) VALUES \
                 ('e2', 'x', now() - interval '1 hour')",
            t = dropper.table
        ))
        .await
        .unwrap();
    // Another transaction holds e2; the cleanup deletes e1 and waits for
    // e2; the other transaction then wants e1.
    let other = connect(&url).await.unwrap();
    lock_row(&other, &dropper.table, "e2", true).await.unwrap();
    let cleanup = {
        let store = store.clone();
        tokio::spawn(async move { store.delete_expired().await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let second = lock_row(&other, &dropper.table, "e1", false).await;
    let _ = other.batch_execute("COMMIT").await;
    second.expect("the other transaction was the deadlock's victim");
    let removed = tokio::time::timeout(Duration::from_secs(10), cleanup)
        .await
        .expect("the cleanup hung")
        .unwrap()
        .expect("the cleanup failed");
    assert_eq!(removed, 2);
}
