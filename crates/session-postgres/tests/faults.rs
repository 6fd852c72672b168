//! Faults, each on a PostgreSQL cluster of its own (never the shared
//! server): the database stopped and restarted under load, an exhausted
//! pool, and a connection killed mid-statement. Each test prints its
//! figures (`cargo test -p session-postgres --test faults -- --nocapture`).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use session_core::{Bytes, Error, Store};
use session_postgres::{PostgresConfig, PostgresStore};
use session_test_support::{connect, throwaway_cluster_or_skip};

/// A store on `url` with a pool of `max_size` that waits `wait` for a
/// connection, its table created and holding `k` = `v`.
async fn store_with_one_row(
    url: &str,
    max_size: u32,
    wait: Duration,
    v: &'static [u8],
) -> PostgresStore {
    let config = PostgresConfig {
        pool_size: max_size,
        wait_timeout: wait,
        connect_timeout: Duration::from_secs(2),
        test_on_checkout: false,
        ..PostgresConfig::default()
    };
    let store = PostgresStore::from_url(url, config).unwrap();
    store.create_table().await.unwrap();
    store.set("k", Bytes::from_static(v), None).await.unwrap();
    store
}

fn value(text: String) -> Bytes {
    Bytes::from(text.into_bytes())
}

/// One call of the load: when it started and ended, relative to the test's
/// start, and how it went.
struct Call {
    start: Duration,
    end: Duration,
    error: Option<Error>,
}

/// What one task's keys must hold at the end: the last acknowledged write,
/// and the writes after it whose outcome is unknown (they failed, but the
/// server may have committed them before the connection went).
#[derive(Default, Clone)]
struct Entry {
    acknowledged: Option<Bytes>,
    uncertain: Vec<Bytes>,
}

const TASKS: usize = 16;
const KEYS_PER_TASK: usize = 8;
const ROWS_BEFORE: usize = 500;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stop_and_restart_under_load_loses_nothing_and_recovers() {
    let Some(cluster) = throwaway_cluster_or_skip() else {
        return;
    };
    let cluster = Arc::new(cluster);
    let config = PostgresConfig {
        pool_size: 8,
        wait_timeout: Duration::from_millis(500),
        connect_timeout: Duration::from_millis(500),
        test_on_checkout: false,
        ..PostgresConfig::default()
    };
    // The longest any call may take while the database is down: a wait for
    // a slot, then one connection attempt or recycle, plus scheduling slack
    // on a busy 2-core machine.
    let bound = config.wait_timeout + config.connect_timeout + Duration::from_secs(2);
    let store = PostgresStore::from_url(&cluster.url(), config).unwrap();
    store.create_table().await.unwrap();

    // Rows written (and acknowledged) well before the outage.
    for i in 0..ROWS_BEFORE {
        store
            .set(&format!("before_{i}"), value(format!("v{i}")), None)
            .await
            .unwrap();
    }

    let t0 = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let store = store.clone();
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let mut calls = Vec::new();
            let mut ledger: HashMap<String, Entry> = HashMap::new();
            let mut n = 0usize;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let key = format!("t{task}_k{}", n % KEYS_PER_TASK);
                let start = t0.elapsed();
                // Two reads for every write, reads checked against the ledger.
                let error = if n % 3 == 0 {
                    let v = value(format!("t{task}_n{n}"));
                    match store
                        .set(&key, v.clone(), Some(Duration::from_secs(3600)))
                        .await
                    {
                        Ok(()) => {
                            ledger.insert(
                                key,
                                Entry {
                                    acknowledged: Some(v),
                                    uncertain: Vec::new(),
                                },
                            );
                            None
                        }
                        Err(e) => {
                            ledger.entry(key).or_default().uncertain.push(v);
                            Some(e)
                        }
                    }
                } else {
                    match store.get(&key, None).await {
                        Ok(got) => {
                            let entry = ledger.get(&key).cloned().unwrap_or_default();
                            let expected_ok = got == entry.acknowledged
                                || got.as_ref().is_some_and(|g| entry.uncertain.contains(g));
                            assert!(expected_ok, "{key}: read {got:?}, ledger has {:?}", {
                                entry.acknowledged
                            });
                            None
                        }
                        Err(e) => Some(e),
                    }
                };
                calls.push(Call {
                    start,
                    end: t0.elapsed(),
                    error,
                });
                if calls.last().is_some_and(|c| c.error.is_some()) {
                    // A failing call returns at once; do not spin.
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
            (calls, ledger)
        }));
    }

    tokio::time::sleep(Duration::from_secs(1)).await;
    let c = cluster.clone();
    let down_at = t0.elapsed();
    tokio::task::spawn_blocking(move || c.stop())
        .await
        .unwrap()
        .unwrap();
    let stopped_at = t0.elapsed();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let restart_at = t0.elapsed();
    let c = cluster.clone();
    tokio::task::spawn_blocking(move || c.restart())
        .await
        .unwrap()
        .unwrap();
    // `pg_ctl start -w` returns once the server accepts connections.
    let up_at = t0.elapsed();
    tokio::time::sleep(Duration::from_secs(4)).await;
    stop.store(true, Ordering::Relaxed);

    let mut calls = Vec::new();
    let mut ledger: HashMap<String, Entry> = HashMap::new();
    for task in tasks {
        // A panic in any task (a wrong read included) fails here.
        let (c, l) = task.await.expect("a load task panicked");
        calls.extend(c);
        ledger.extend(l);
    }

    let before: Vec<&Call> = calls.iter().filter(|c| c.end < down_at).collect();
    let failed: Vec<&Call> = calls.iter().filter(|c| c.error.is_some()).collect();
    let during: Vec<&Call> = calls
        .iter()
        .filter(|c| c.start >= stopped_at && c.end <= restart_at)
        .collect();
    let during_failed = during.iter().filter(|c| c.error.is_some()).count();
    let last_failure_end = failed.iter().map(|c| c.end).max();
    // Recovery, from the moment `pg_ctl start -w` reported the server
    // accepting connections (an upper bound: it polls), and from the moment
    // the restart began.
    let recovery = last_failure_end.map_or(Duration::ZERO, |end| end.saturating_sub(up_at));
    let since_restart =
        last_failure_end.map_or(Duration::ZERO, |end| end.saturating_sub(restart_at));
    let slowest_failure = failed.iter().map(|c| c.end - c.start).max();
    let after_recovery = calls
        .iter()
        .filter(|c| c.start > last_failure_end.unwrap_or_default())
        .count();
    println!(
        "outage under load: {} calls from {TASKS} tasks; {} before the stop, all ok: {}; \
         stop took {:?}, outage {:?}, restart took {:?}; {} calls while down, {} failed; \
         {} failures in all, slowest failure {:?} (bound {:?}); last failure ended {:?} \
         after the restart began, {:?} after pg_ctl reported the database accepting \
         connections; {} calls after it, all ok",
        calls.len(),
        before.len(),
        before.iter().all(|c| c.error.is_none()),
        stopped_at - down_at,
        restart_at - stopped_at,
        up_at - restart_at,
        during.len(),
        during_failed,
        failed.len(),
        slowest_failure.unwrap_or_default(),
        bound,
        since_restart,
        recovery,
        after_recovery,
    );
    let mut kinds: HashMap<String, usize> = HashMap::new();
    for call in &failed {
        let kind = match call.error.as_ref().unwrap() {
            Error::Connection { .. } => "Connection",
            Error::PoolTimeout { .. } => "PoolTimeout",
            Error::Backend { .. } => "Backend",
            _ => "other",
        };
        *kinds.entry(kind.into()).or_default() += 1;
    }
    println!("failures by kind: {kinds:?}");

    // Before the outage, everything worked.
    assert!(before.len() > 100, "too little load before the outage");
    assert!(before.iter().all(|c| c.error.is_none()));
    // While down, calls failed, each with a transient typed error, fast.
    assert!(
        during_failed > 0,
        "no call failed while the database was down"
    );
    assert!(
        during.iter().all(|c| c.error.is_some()),
        "a call succeeded while the database was down"
    );
    for call in &failed {
        let err = call.error.as_ref().unwrap();
        assert!(
            err.is_transient(),
            "an outage error is not a typed transient error: {err:?}"
        );
        assert!(
            call.end - call.start <= bound,
            "a call took {:?} to fail, more than {bound:?}: {err}",
            call.end - call.start
        );
    }
    // Back: a generous bound (the figure printed above is the measure).
    assert!(
        recovery < Duration::from_secs(3),
        "calls still failed {recovery:?} after the database came back"
    );
    assert!(after_recovery > 100, "too little load after the recovery");

    // Nothing acknowledged is lost: the rows from before the outage, and
    // each key's last acknowledged write (or a later write whose outcome
    // was unknown).
    for i in 0..ROWS_BEFORE {
        assert_eq!(
            store.get(&format!("before_{i}"), None).await.unwrap(),
            Some(value(format!("v{i}"))),
            "before_{i} was lost"
        );
    }
    for (key, entry) in &ledger {
        let got = store.get(key, None).await.unwrap();
        assert!(
            got == entry.acknowledged || got.as_ref().is_some_and(|g| entry.uncertain.contains(g)),
            "{key}: holds {got:?}, last acknowledged {:?}",
            entry.acknowledged
        );
    }
    println!(
        "no loss: {ROWS_BEFORE} rows from before the outage and {} keys' last acknowledged writes read back",
        ledger.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exhausted_pool_times_out_in_its_wait_and_serves_once_freed() {
    let Some(cluster) = throwaway_cluster_or_skip() else {
        return;
    };
    let wait = Duration::from_millis(300);
    let store = store_with_one_row(&cluster.url(), 2, wait, b"v").await;

    // Both connections busy inside a statement of 1.5 s.
    let mut sleepers = Vec::new();
    for _ in 0..2 {
        let client = store.pool().get().await.unwrap();
        sleepers.push(tokio::spawn(async move {
            client.simple_query("SELECT pg_sleep(1.5)").await.unwrap();
        }));
    }
    let started = Instant::now();
    let err = store.get("k", None).await.unwrap_err();
    let waited_for = started.elapsed();
    println!("pool of 2 busy: the third call failed after {waited_for:?} with: {err}");
    assert!(
        // The wait it really had (a `get` reports it, not the setting).
        matches!(err, Error::PoolTimeout { waited, .. } if waited >= wait && waited <= waited_for),
        "expected Error::PoolTimeout after {wait:?}, got {err:?}"
    );
    assert!(waited_for >= wait, "failed before the wait was over");
    assert!(
        waited_for < wait + Duration::from_secs(1),
        "took {waited_for:?}, the wait is {wait:?}"
    );
    assert!(err.is_transient());

    // A call made now waits for a connection to free and succeeds.
    let store2 = store.clone();
    let waiting = tokio::spawn(async move {
        let started = Instant::now();
        // Each attempt waits `wait`; retry until a sleeper is done.
        loop {
            match store2.get("k", None).await {
                Ok(v) => return (v, started.elapsed()),
                Err(Error::PoolTimeout { .. }) if started.elapsed() < Duration::from_secs(5) => {}
                Err(e) => panic!("unexpected error while the pool drains: {e:?}"),
            }
        }
    });
    for sleeper in sleepers {
        sleeper.await.unwrap();
    }
    let (got, after) = waiting.await.unwrap();
    assert_eq!(got, Some(Bytes::from_static(b"v")));
    println!("served {after:?} after the pool was exhausted (the sleeps lasted 1.5 s)");
    let started = Instant::now();
    assert_eq!(
        store.get("k", None).await.unwrap(),
        Some(Bytes::from_static(b"v"))
    );
    println!("a call on the freed pool took {:?}", started.elapsed());
}

/// The pid of the one backend that runs the store's statements.
async fn store_backend_pid(store: &PostgresStore) -> i32 {
    let client = store.pool().get().await.unwrap();
    client
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_killed_mid_statement_fails_that_call_only() {
    let Some(cluster) = throwaway_cluster_or_skip() else {
        return;
    };
    let url = cluster.url();
    // One connection, so "a fresh connection" is checkable by its pid.
    let store = store_with_one_row(&url, 1, Duration::from_secs(2), b"v1").await;
    let first_pid = store_backend_pid(&store).await;

    // Mid-statement: another session locks the table, so the store's
    // UPDATE waits inside the server, and is terminated while it waits.
    let admin = connect(&url).await.unwrap();
    admin
        .batch_execute("BEGIN; LOCK TABLE litestar_session IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let result = store.set("k", Bytes::from_static(b"v2"), None).await;
            (result, started.elapsed())
        })
    };
    // Wait until the store's backend is waiting on the lock.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let row = admin
            .query_opt(
                "SELECT pid FROM pg_stat_activity WHERE pid = $1 AND wait_event_type = 'Lock'",
                &[&first_pid],
            )
            .await
            .unwrap();
        if row.is_some() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the store never blocked on the lock"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let terminated: bool = admin
        .query_one("SELECT pg_terminate_backend($1)", &[&first_pid])
        .await
        .unwrap()
        .get(0);
    assert!(terminated);
    let (result, took) = writer.await.unwrap();
    let err = result.expect_err("the killed statement succeeded");
    println!("killed mid-statement: the call failed after {took:?} with: {err}");
    assert!(
        matches!(err, Error::Connection { .. }),
        "expected Error::Connection, got {err:?}"
    );
    assert!(err.to_string().contains("lost the connection"), "{err}");
    admin.batch_execute("ROLLBACK").await.unwrap();

    // The very next call succeeds, on a new backend; the killed write did
    // not happen.
    assert_eq!(
        store.get("k", None).await.unwrap(),
        Some(Bytes::from_static(b"v1"))
    );
    let second_pid = store_backend_pid(&store).await;
    assert_ne!(first_pid, second_pid, "the killed connection was reused");

    // Between calls: the pooled idle connection is killed; a call then
    // gets a fresh one.
    let killed: bool = admin
        .query_one("SELECT pg_terminate_backend($1)", &[&second_pid])
        .await
        .unwrap()
        .get(0);
    assert!(killed);
    let mut failures = 0;
    let mut first_result = None;
    for attempt in 0..2 {
        match store.set("k", Bytes::from_static(b"v3"), None).await {
            Ok(()) => {
                first_result.get_or_insert(attempt);
                break;
            }
            Err(e) => {
                println!("killed between calls: attempt {attempt} failed with: {e}");
                assert!(e.is_transient(), "{e:?}");
                failures += 1;
            }
        }
    }
    println!("killed between calls: {failures} failed call(s) before success");
    assert!(failures <= 1, "more than one call failed after the kill");
    assert_eq!(
        store.get("k", None).await.unwrap(),
        Some(Bytes::from_static(b"v3"))
    );
    assert_ne!(store_backend_pid(&store).await, second_pid);
}
