//! Faults on throwaway servers of the test's own: a Redis that is down, and
//! one killed and restarted under load. The shared server is never touched.

use std::sync::Arc;
use std::time::{Duration, Instant};

use session_core::{Bytes, Error, Store};
use session_redis::{RedisConfig, RedisStore};
use session_test_support::redis::{ThrowawayRedis, redis_required};

/// Timeouts short enough for a test: a call gives up within 1 s.
fn quick() -> RedisConfig {
    RedisConfig {
        prefix: session_test_support::redis::unique_prefix("faults"),
        connect_timeout: Duration::from_millis(500),
        response_timeout: Duration::from_millis(500),
        reconnect_max_delay: Duration::from_millis(200),
        ..RedisConfig::default()
    }
}

/// Slack for scheduling on a busy 2-core machine.
const SLACK: Duration = Duration::from_millis(500);

fn throwaway_or_skip() -> Option<ThrowawayRedis> {
    match ThrowawayRedis::start() {
        Ok(server) => Some(server),
        Err(why) if redis_required() => panic!("cannot start a throwaway Redis: {why}"),
        Err(why) => {
            session_test_support::report_skip(&format!("no throwaway Redis ({why})"));
            None
        }
    }
}

/// A port nothing listens on.
fn dead_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test]
async fn a_redis_that_is_down_is_a_connection_error_within_the_deadline() {
    let config = quick();
    let deadline = config.call_deadline();
    let url = format!("redis://127.0.0.1:{}/0", dead_port());
    let store = RedisStore::open(&url, config)
        .await
        .expect("opening is lazy");
    for _ in 0..3 {
        let started = Instant::now();
        let err = store.get("k", None).await.unwrap_err();
        assert!(matches!(err, Error::Connection { .. }), "{err:?}");
        assert!(
            started.elapsed() <= deadline + SLACK,
            "took {:?}",
            started.elapsed()
        );
        assert!(
            err.to_string().contains(&url["redis://".len()..]),
            "names the server: {err}"
        );
        assert!(
            std::error::Error::source(&err).is_some(),
            "keeps its cause: {err:?}"
        );
    }
}

#[tokio::test]
async fn a_cluster_that_is_down_fails_to_open_within_the_deadline() {
    let config = quick();
    let deadline = config.call_deadline();
    let url = format!(
        "redis+cluster://127.0.0.1:{},127.0.0.1:{}",
        dead_port(),
        dead_port()
    );
    let started = Instant::now();
    let err = RedisStore::open(&url, config).await.unwrap_err();
    assert!(matches!(err, Error::Connection { .. }), "{err:?}");
    assert!(
        started.elapsed() <= deadline + SLACK,
        "took {:?}",
        started.elapsed()
    );
}

/// What one call did.
struct Call {
    started: Instant,
    took: Duration,
    result: Result<(), String>,
    connection_error: bool,
}

/// A Redis killed and restarted under 16 tasks of load: calls during the
/// outage fail with `Error::Connection` within the deadline, none hangs,
/// and calls succeed again within 1 s of the restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_under_load_fails_fast_and_recovers_within_a_second() {
    let Some(server) = throwaway_or_skip() else {
        return;
    };
    let config = quick();
    let deadline = config.call_deadline();
    let store = Arc::new(RedisStore::open(&server.url(), config).await.unwrap());
    let stop_at = Instant::now() + Duration::from_secs(6);
    let mut tasks = Vec::new();
    for task in 0..16 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut calls = Vec::new();
            let key = format!("task-{task}");
            let mut n = 0u64;
            while Instant::now() < stop_at {
                n += 1;
                let value = Bytes::from(format!("{task}:{n}"));
                let started = Instant::now();
                let result = async {
                    store
                        .set(&key, value.clone(), Some(Duration::from_secs(60)))
                        .await?;
                    let read = store.get(&key, None).await?;
                    assert_eq!(read, Some(value), "task {task} read back another value");
                    Ok::<_, Error>(())
                }
                .await;
                let took = started.elapsed();
                let connection_error = matches!(result, Err(Error::Connection { .. }));
                calls.push(Call {
                    started,
                    took,
                    result: result.map_err(|e| e.to_string()),
                    connection_error,
                });
                if calls.last().is_some_and(|c| c.result.is_err()) {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            calls
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let stopped = Instant::now();
    server.stop().unwrap();
    let down_at = Instant::now();
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let restart_began = Instant::now();
    server.restart().unwrap();
    let up_at = Instant::now();

    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    // Before the kill: every call succeeded.
    let before: Vec<&Call> = all
        .iter()
        .filter(|c| c.started + c.took < stopped)
        .collect();
    assert!(before.len() > 16, "load ran: {} calls", before.len());
    assert!(
        before.iter().all(|c| c.result.is_ok()),
        "a call failed before the outage"
    );
    // During the outage: every call failed, as a connection error.
    let during: Vec<&Call> = all
        .iter()
        .filter(|c| c.started > down_at && c.started + c.took < restart_began)
        .collect();
    assert!(
        during.len() >= 16,
        "calls were made during the outage: {}",
        during.len()
    );
    for call in &during {
        assert!(
            call.connection_error,
            "not a connection error: {:?}",
            call.result
        );
    }
    // No call hung, outage or not: two round trips, each within the deadline.
    let slowest = all.iter().map(|c| c.took).max().unwrap();
    assert!(slowest <= 2 * deadline + SLACK, "a call took {slowest:?}");
    // After the restart: every call started a second after it succeeds.
    let after: Vec<&Call> = all
        .iter()
        .filter(|c| c.started > up_at + Duration::from_secs(1))
        .collect();
    assert!(
        after.len() > 16,
        "calls were made after the restart: {}",
        after.len()
    );
    let failed: Vec<&String> = after
        .iter()
        .filter_map(|c| c.result.as_ref().err())
        .collect();
    assert!(
        failed.is_empty(),
        "{} calls failed more than 1 s after the restart: {:?}",
        failed.len(),
        failed.first()
    );
    let first_success = all
        .iter()
        .filter(|c| c.started > restart_began && c.result.is_ok())
        .map(|c| c.started + c.took)
        .min()
        .expect("a call succeeded after the restart");
    eprintln!(
        "outage: {} calls failed, slowest call {slowest:?}; first success {:?} after the restart",
        during.len(),
        first_success.saturating_duration_since(up_at)
    );
}

/// A primary of a Redis Cluster fails over (its replica takes its slots)
/// under 64 tasks of load: calls may fail for a moment, never hang, and
/// from 5 s after the failover every call succeeds again. (The redis
/// crate's cluster connection alone can stay stuck after a failover, every
/// call timing out; the store then makes a new one.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_failover_under_load_recovers() {
    use session_test_support::redis::ThrowawayRedisCluster;
    let cluster = match ThrowawayRedisCluster::start_with_replicas(3, 1) {
        Ok(cluster) => cluster,
        Err(why) if redis_required() => panic!("cannot start a throwaway cluster: {why}"),
        Err(why) => {
            session_test_support::report_skip(&format!("no throwaway cluster ({why})"));
            return;
        }
    };
    let config = quick();
    let deadline = config.call_deadline();
    let store = Arc::new(RedisStore::open(&cluster.url(), config).await.unwrap());
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tasks = Vec::new();
    for task in 0..64 {
        let (store, stop) = (store.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut calls = Vec::new();
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                n += 1;
                // Keys spread over every slot range, so every primary serves.
                let key = format!("task-{task}-{}", n % 8);
                let value = Bytes::from(format!("{task}:{n}"));
                let started = Instant::now();
                let result = async {
                    store
                        .set(&key, value.clone(), Some(Duration::from_secs(60)))
                        .await?;
                    assert_eq!(store.get(&key, None).await?, Some(value));
                    Ok::<_, Error>(())
                }
                .await;
                calls.push((
                    started,
                    started.elapsed(),
                    result.map_err(|e| e.to_string()),
                ));
                if calls.last().is_some_and(|c| c.2.is_err()) {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            calls
        }));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let replica = *cluster.replica_ports().first().expect("a replica");
    tokio::task::block_in_place(|| cluster.failover(replica)).unwrap();
    // From the moment the replica is a primary.
    let failover_at = Instant::now();
    tokio::time::sleep(Duration::from_secs(8)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    let slowest = all.iter().map(|c| c.1).max().unwrap();
    assert!(slowest <= 2 * deadline + SLACK, "a call took {slowest:?}");
    let after: Vec<_> = all
        .iter()
        .filter(|c| c.0 > failover_at + Duration::from_secs(5))
        .collect();
    assert!(
        after.len() > 64,
        "calls after the failover: {}",
        after.len()
    );
    let failed: Vec<&String> = after.iter().filter_map(|c| c.2.as_ref().err()).collect();
    assert!(
        failed.is_empty(),
        "{} of {} calls failed from 5 s after the failover: {:?}",
        failed.len(),
        after.len(),
        failed.first()
    );
    let failed_at_all = all.iter().filter(|c| c.2.is_err()).count();
    eprintln!(
        "failover: {failed_at_all} of {} calls failed around it, slowest {slowest:?}; {} calls after 5 s all succeeded",
        all.len(),
        after.len()
    );
}
