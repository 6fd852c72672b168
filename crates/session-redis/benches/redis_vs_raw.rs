//! `RedisStore` against the raw `redis` client sending the same commands
//! over the same kind of connection (a `ConnectionManager`), on one server.
//!
//! Run: `cargo bench -p session-redis` (about a minute; the machine's Redis
//! on 127.0.0.1:6379, or `SESSION_TEST_REDIS_URL`; keys only under the
//! bench's own prefixes, deleted afterwards). Without `--bench`
//! (`cargo test --benches`) only the same-work check runs.
//!
//! Same work: the raw side sends the store's own commands (the same
//! scripts for the renewing read and compare-and-set, `SET ... PX` with
//! `NX`/`XX`, `UNLINK`, `EXISTS`, `PTTL`; the scripts are the store's
//! exported `RENEWING_GET_SCRIPT` and `COMPARE_AND_SET_SCRIPT`), so the ratio is the cost of the
//! store's Rust side: key validation and prefixing, the deadline timer, the
//! tracing span, error mapping. Before measuring, [`check_same_work`] runs
//! every operation on both sides from the same keys (live, without expiry,
//! missing; a compare-and-set from the key's value and from a stale one)
//! and fails unless the results and the keys after are the same.
//!
//! Each case: 31 rounds of 1,600 operations on 1 KiB values among 10,000
//! sessions, store and raw back to back (alternating which goes first), at
//! 1 and 16 tasks; the table gives the medians, and the ratio is the
//! median of the rounds' ratios (store ops/s over raw ops/s).

use session_test_support::bench::{Measured, comparison_row, run_tasks};
use std::sync::Arc;
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::{Script, Value};
use session_core::{Bytes, Store};
use session_redis::{COMPARE_AND_SET_SCRIPT, RENEWING_GET_SCRIPT, RedisConfig, RedisStore};

const SESSIONS: usize = 10_000;
const VALUE_LEN: usize = 1024;
const ROUNDS: usize = 31;
const OPS: usize = 1_600;
const DAY_MS: u64 = 86_400_000;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Op {
    Read,
    RenewingRead,
    Write,
    Create,
    Update,
    CompareAndSet,
    Exists,
    ExpiresIn,
    Delete,
    DeleteLive,
}

const OPS_LIST: [Op; 10] = [
    Op::Read,
    Op::RenewingRead,
    Op::Write,
    Op::Create,
    Op::Update,
    Op::CompareAndSet,
    Op::Exists,
    Op::ExpiresIn,
    Op::Delete,
    Op::DeleteLive,
];

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Read => "read",
            Op::RenewingRead => "renewing read",
            Op::Write => "write",
            Op::Create => "create",
            Op::Update => "update",
            Op::CompareAndSet => "compare-and-set",
            Op::Exists => "exists",
            Op::ExpiresIn => "expires_in",
            Op::Delete => "delete",
            Op::DeleteLive => "delete_live",
        }
    }

    /// Operations that consume their keys: each run gets fresh ones.
    fn fresh_keys(self) -> bool {
        matches!(self, Op::Create | Op::Delete | Op::DeleteLive)
    }
}

/// The raw client: a connection manager, its prefix, the same scripts.
struct Raw {
    conn: ConnectionManager,
    prefix: String,
    renewing_get: Script,
    compare_and_set: Script,
}

#[derive(Clone)]
enum Target {
    Store(Arc<RedisStore>),
    Raw(Arc<Raw>),
}

/// What an operation returned, comparable across the sides.
#[derive(Debug, PartialEq)]
enum Out {
    Value(Option<Bytes>),
    Done,
    Wrote(bool),
    Ttl(Option<u64>),
}

impl Target {
    async fn run(&self, op: Op, key: &str, expected: &Bytes, value: &Bytes) -> Out {
        let ttl = Some(Duration::from_millis(DAY_MS));
        match self {
            Target::Store(s) => match op {
                Op::Read => Out::Value(s.get(key, None).await.expect("get")),
                Op::RenewingRead => Out::Value(s.get(key, ttl).await.expect("renewing get")),
                Op::Write => {
                    s.set(key, value.clone(), ttl).await.expect("set");
                    Out::Done
                }
                Op::Create => Out::Wrote(s.create(key, value.clone(), ttl).await.expect("create")),
                Op::Update => Out::Wrote(s.update(key, value.clone(), ttl).await.expect("update")),
                Op::CompareAndSet => Out::Wrote(
                    s.compare_and_set(key, expected.clone(), value.clone(), ttl)
                        .await
                        .expect("compare_and_set"),
                ),
                Op::Exists => Out::Wrote(s.exists(key).await.expect("exists")),
                Op::ExpiresIn => Out::Ttl(
                    s.expires_in(key)
                        .await
                        .expect("expires_in")
                        .map(|d| d.as_secs().div_ceil(60)),
                ),
                Op::Delete => {
                    s.delete(key).await.expect("delete");
                    Out::Done
                }
                Op::DeleteLive => Out::Wrote(s.delete_live(key).await.expect("delete_live")),
            },
            Target::Raw(r) => {
                let mut c = r.conn.clone();
                let full = format!("{}{key}", r.prefix);
                let set = |condition: Option<&str>| {
                    let mut cmd = redis::cmd("SET");
                    cmd.arg(&full).arg(value.as_ref()).arg("PX").arg(DAY_MS);
                    if let Some(condition) = condition {
                        cmd.arg(condition);
                    }
                    cmd
                };
                match op {
                    Op::Read => Out::Value(
                        redis::cmd("GET")
                            .arg(&full)
                            .query_async(&mut c)
                            .await
                            .expect("get"),
                    ),
                    Op::RenewingRead => Out::Value(
                        r.renewing_get
                            .key(&full)
                            .arg(DAY_MS)
                            .invoke_async(&mut c)
                            .await
                            .expect("renewing get"),
                    ),
                    Op::Write => {
                        let _: Value = set(None).query_async(&mut c).await.expect("set");
                        Out::Done
                    }
                    Op::Create | Op::Update => {
                        let condition = if op == Op::Create { "NX" } else { "XX" };
                        let reply: Value =
                            set(Some(condition)).query_async(&mut c).await.expect("set");
                        Out::Wrote(!matches!(reply, Value::Nil))
                    }
                    Op::CompareAndSet => {
                        let n: i64 = r
                            .compare_and_set
                            .key(&full)
                            .arg(expected.as_ref())
                            .arg(value.as_ref())
                            .arg(DAY_MS)
                            .invoke_async(&mut c)
                            .await
                            .expect("compare_and_set");
                        Out::Wrote(n == 1)
                    }
                    Op::Exists => {
                        let n: u64 = redis::cmd("EXISTS")
                            .arg(&full)
                            .query_async(&mut c)
                            .await
                            .expect("exists");
                        Out::Wrote(n > 0)
                    }
                    Op::ExpiresIn => {
                        let ms: i64 = redis::cmd("PTTL")
                            .arg(&full)
                            .query_async(&mut c)
                            .await
                            .expect("pttl");
                        Out::Ttl(u64::try_from(ms).ok().map(|ms| (ms / 1000).div_ceil(60)))
                    }
                    Op::Delete | Op::DeleteLive => {
                        let n: u64 = redis::cmd("UNLINK")
                            .arg(&full)
                            .query_async(&mut c)
                            .await
                            .expect("unlink");
                        if op == Op::Delete {
                            Out::Done
                        } else {
                            Out::Wrote(n > 0)
                        }
                    }
                }
            }
        }
    }

    fn prefix(&self) -> String {
        match self {
            Target::Store(s) => s.config().prefix.clone(),
            Target::Raw(r) => r.prefix.clone(),
        }
    }
}

/// Writes `keys` (relative to the side's prefix) with 1 KiB values and a
/// day's expiry, pipelined.
async fn populate(conn: &ConnectionManager, prefix: &str, keys: impl Iterator<Item = String>) {
    let mut conn = conn.clone();
    let value = vec![0xab_u8; VALUE_LEN];
    let keys: Vec<String> = keys.collect();
    for chunk in keys.chunks(1_000) {
        let mut pipe = redis::pipe();
        for key in chunk {
            pipe.cmd("SET")
                .arg(format!("{prefix}{key}"))
                .arg(&value)
                .arg("PX")
                .arg(DAY_MS)
                .ignore();
        }
        let () = pipe.query_async(&mut conn).await.expect("populate");
    }
}

/// Runs every operation on both sides from the same keys and fails unless
/// each returned the same and left the same key behind.
async fn check_same_work(sides: &[Target; 2], conn: &ConnectionManager) {
    let mut logs: Vec<Vec<String>> = Vec::new();
    for side in sides {
        let prefix = side.prefix();
        let mut log = Vec::new();
        for op in OPS_LIST {
            for key in ["live", "forever", "missing"] {
                let expected: &[&str] = match op {
                    Op::CompareAndSet => &["old", "stale"],
                    _ => &["old"],
                };
                for expected in expected {
                    // Seed: `live` with a minute's expiry, `forever` without.
                    let mut c = conn.clone();
                    let _: () = redis::pipe()
                        .cmd("SET")
                        .arg(format!("{prefix}live"))
                        .arg("old")
                        .arg("PX")
                        .arg(60_000)
                        .ignore()
                        .cmd("SET")
                        .arg(format!("{prefix}forever"))
                        .arg("old")
                        .ignore()
                        .cmd("UNLINK")
                        .arg(format!("{prefix}missing"))
                        .ignore()
                        .query_async(&mut c)
                        .await
                        .expect("seed");
                    let out = side
                        .run(
                            op,
                            key,
                            &Bytes::from(expected.to_string()),
                            &Bytes::from_static(b"new"),
                        )
                        .await;
                    let (after, pttl): (Option<Vec<u8>>, i64) = redis::pipe()
                        .cmd("GET")
                        .arg(format!("{prefix}{key}"))
                        .cmd("PTTL")
                        .arg(format!("{prefix}{key}"))
                        .query_async(&mut c)
                        .await
                        .expect("read back");
                    // The expiry to the minute: both sides wrote a day, a
                    // minute, or none.
                    let ttl = u64::try_from(pttl)
                        .map(|ms| (ms / 1000).div_ceil(60).to_string())
                        .unwrap_or_else(|_| pttl.to_string());
                    log.push(format!(
                        "{} {key} from {expected:?}: {out:?}, then {:?} ttl {ttl} min",
                        op.name(),
                        after.map(|v| String::from_utf8_lossy(&v).into_owned()),
                    ));
                }
            }
        }
        logs.push(log);
    }
    for (store, raw) in logs[0].iter().zip(&logs[1]) {
        assert_eq!(store, raw, "the raw side does not do the store's work");
    }
    for wrote in ["Wrote(true)", "Wrote(false)"] {
        assert!(
            logs[0]
                .iter()
                .any(|l| l.starts_with("compare-and-set") && l.contains(wrote)),
            "no compare-and-set case returned {wrote}"
        );
    }
    println!(
        "same work: the store and the raw side agree on {} cases",
        logs[0].len()
    );
}

async fn measure(target: &Target, op: Op, tasks: usize, tag: &str) -> Measured {
    let value = Bytes::from(vec![0xab; VALUE_LEN]);
    let (target, tag) = (target.clone(), tag.to_owned());
    run_tasks(tasks, OPS / tasks, move |t, i, random| {
        let key = if op.fresh_keys() {
            format!("{tag}_{t}_{i}")
        } else {
            format!("s{}", random % SESSIONS as u64)
        };
        let (target, value) = (target.clone(), value.clone());
        async move {
            // A compare-and-set from the value every session holds.
            let out = target.run(op, &key, &value, &value).await;
            if matches!(op, Op::Create | Op::CompareAndSet | Op::DeleteLive) {
                assert_eq!(out, Out::Wrote(true), "{} of {key}", op.name());
            }
        }
    })
    .await
}

fn main() {
    let measuring = std::env::args().any(|a| a == "--bench");
    let url = match session_test_support::redis::redis_url() {
        Ok(url) => url,
        Err(reason) if session_test_support::redis::redis_required() => {
            panic!("no Redis for the benchmark: {reason}")
        }
        Err(reason) => {
            println!("redis_vs_raw skipped: {reason}");
            return;
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(bench(&url, measuring));
}

async fn bench(url: &str, measuring: bool) {
    let client = redis::Client::open(url).expect("the Redis URL");
    let conn = ConnectionManager::new(client.clone())
        .await
        .expect("connect");
    let store_prefix = session_test_support::redis::unique_prefix("bench_store");
    let raw_prefix = session_test_support::redis::unique_prefix("bench_raw");
    let store = Arc::new(
        RedisStore::open(
            url,
            RedisConfig {
                prefix: store_prefix.clone(),
                ..RedisConfig::default()
            },
        )
        .await
        .expect("store"),
    );
    let raw = Arc::new(Raw {
        conn: ConnectionManager::new(client).await.expect("connect"),
        prefix: raw_prefix.clone(),
        renewing_get: Script::new(RENEWING_GET_SCRIPT),
        compare_and_set: Script::new(COMPARE_AND_SET_SCRIPT),
    });
    let sides = [Target::Store(store.clone()), Target::Raw(raw)];
    check_same_work(&sides, &conn).await;
    if measuring {
        measure_all(&sides, &conn).await;
    } else {
        println!("redis_vs_raw: run with `cargo bench -p session-redis` to measure");
    }
    // Delete both prefixes' keys (the raw side's through a store of its prefix).
    store.delete_all().await.expect("delete the store's keys");
    let raw_store = RedisStore::open(
        url,
        RedisConfig {
            prefix: raw_prefix,
            ..RedisConfig::default()
        },
    )
    .await
    .expect("store");
    raw_store
        .delete_all()
        .await
        .expect("delete the raw side's keys");
}

async fn measure_all(sides: &[Target; 2], conn: &ConnectionManager) {
    for side in sides {
        populate(conn, &side.prefix(), (0..SESSIONS).map(|i| format!("s{i}"))).await;
    }
    for side in sides {
        for op in [Op::Read, Op::RenewingRead, Op::Write, Op::CompareAndSet] {
            measure(side, op, 16, "warm").await;
        }
    }
    println!("| operation | tasks | store ops/s | store p99 | raw ops/s | raw p99 | store/raw |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    let mut case_id = 0;
    for op in OPS_LIST {
        for tasks in [1, 16] {
            // rounds[0]: store, rounds[1]: raw.
            let mut rounds: [Vec<Measured>; 2] = [Vec::new(), Vec::new()];
            for round in 0..ROUNDS {
                let order: [usize; 2] = if round % 2 == 0 { [0, 1] } else { [1, 0] };
                for side in order {
                    case_id += 1;
                    let tag = format!("c{case_id}");
                    if matches!(op, Op::Delete | Op::DeleteLive) {
                        let per_task = OPS / tasks;
                        populate(
                            conn,
                            &sides[side].prefix(),
                            (0..tasks).flat_map(|t| {
                                let tag = tag.clone();
                                (0..per_task).map(move |i| format!("{tag}_{t}_{i}"))
                            }),
                        )
                        .await;
                    }
                    rounds[side].push(measure(&sides[side], op, tasks, &tag).await);
                }
            }
            println!(
                "{}",
                comparison_row(op.name(), tasks, &rounds[0], &rounds[1])
            );
        }
    }
}
