//! `SqliteStore` against raw rusqlite prepared statements doing the minimum
//! SQL for the same operation, on WAL file databases.
//!
//! Run: `cargo bench -p session-sqlite` (about two minutes).
//!
//! Fairness: both sides use the same connection settings (WAL,
//! `synchronous=NORMAL`, 5 s busy timeout, the same open flags), the same
//! r2d2 pool size (8), the same threading model (each operation on tokio's
//! blocking pool through `spawn_blocking`, from a multi-thread runtime) and
//! cached prepared statements; each side has a database file of its own.
//! Every case runs several rounds, each a store run and a raw run back to
//! back (alternating which goes first); the medians of the rounds are
//! reported, and the ratio is the median of the rounds' ratios, so a burst
//! of load from elsewhere on the machine skews one round, not the result.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use r2d2::Pool;
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{OpenFlags, OptionalExtension, params};
use session_core::Store;
use session_sqlite::{SqliteConfig, SqliteStore};

const SESSIONS: usize = 10_000;
const OPS: usize = 5_000;
const VALUE_BYTES: usize = 1024;
const POOL_SIZE: u32 = 8;
const ROUNDS: usize = 5;
const TTL: Duration = Duration::from_secs(3600);
const CLEANUP_ROWS: usize = 100_000;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    Read,
    RenewingRead,
    Write,
    Create,
    Delete,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Read => "read",
            Op::RenewingRead => "renewing read",
            Op::Write => "write",
            Op::Create => "create",
            Op::Delete => "delete",
        }
    }
}

/// The raw side: an r2d2 pool and the minimum SQL per operation.
#[derive(Clone)]
struct Raw {
    pool: Pool<SqliteConnectionManager>,
}

const RAW_READ: &str =
    "SELECT data FROM t WHERE session_id = ?1 AND (expires_at IS NULL OR expires_at > ?2)";
const RAW_RENEW: &str =
    "UPDATE t SET expires_at = ?3 WHERE session_id = ?1 AND expires_at > ?2 RETURNING data";
const RAW_WRITE: &str = "REPLACE INTO t (session_id, data, expires_at, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4)";
const RAW_CREATE: &str = "INSERT INTO t (session_id, data, expires_at, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4) ON CONFLICT(session_id) DO NOTHING";
const RAW_DELETE: &str = "DELETE FROM t WHERE session_id = ?1";
const RAW_CLEANUP: &str = "DELETE FROM t WHERE expires_at IS NOT NULL AND expires_at <= ?1";

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

impl Raw {
    fn open(path: &Path) -> Raw {
        let busy = SqliteConfig::default().busy_timeout;
        let setup = rusqlite::Connection::open(path).expect("open raw database");
        setup
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get::<_, String>(0))
            .expect("WAL");
        for ddl in SqliteStore::ddl(&session_core::TableName::new("t", 63).expect("name")) {
            setup.execute_batch(&ddl).expect("create raw table");
        }
        let manager = SqliteConnectionManager::file(path)
            .with_flags(
                OpenFlags::SQLITE_OPEN_READ_WRITE
                    | OpenFlags::SQLITE_OPEN_CREATE
                    | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .with_init(move |c| {
                c.busy_timeout(busy)?;
                c.pragma_update(None, "synchronous", "NORMAL")
            });
        let pool = Pool::builder()
            .max_size(POOL_SIZE)
            .min_idle(Some(1))
            .build(manager)
            .expect("raw pool");
        Raw { pool }
    }

    async fn run(&self, op: Op, key: String, value: Bytes) {
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || -> rusqlite::Result<()> {
            let conn = pool.get().expect("raw connection");
            let now = now();
            let exp = now + TTL.as_secs() as i64;
            match op {
                Op::Read => {
                    let v: Option<Vec<u8>> = conn
                        .prepare_cached(RAW_READ)?
                        .query_row(params![key, now], |r| r.get(0))
                        .optional()?;
                    std::hint::black_box(v.map(Bytes::from));
                }
                Op::RenewingRead => {
                    let v: Option<Vec<u8>> = conn
                        .prepare_cached(RAW_RENEW)?
                        .query_row(params![key, now, exp], |r| r.get(0))
                        .optional()?;
                    std::hint::black_box(v.map(Bytes::from));
                }
                Op::Write => {
                    conn.prepare_cached(RAW_WRITE)?
                        .execute(params![key, &value[..], exp, now])?;
                }
                Op::Create => {
                    conn.prepare_cached(RAW_CREATE)?
                        .execute(params![key, &value[..], exp, now])?;
                }
                Op::Delete => {
                    conn.prepare_cached(RAW_DELETE)?.execute(params![key])?;
                }
            }
            Ok(())
        })
        .await
        .expect("raw task")
        .expect("raw statement");
    }
}

#[derive(Clone)]
enum Target {
    Store(SqliteStore),
    Raw(Raw),
}

impl Target {
    async fn run(&self, op: Op, key: String, value: Bytes) {
        match self {
            Target::Raw(raw) => raw.run(op, key, value).await,
            Target::Store(store) => match op {
                Op::Read => {
                    std::hint::black_box(store.get(&key, None).await.expect("get"));
                }
                Op::RenewingRead => {
                    std::hint::black_box(store.get(&key, Some(TTL)).await.expect("renew"));
                }
                Op::Write => store.set(&key, value, Some(TTL)).await.expect("set"),
                Op::Create => {
                    store.create(&key, value, Some(TTL)).await.expect("create");
                }
                Op::Delete => store.delete(&key).await.expect("delete"),
            },
        }
    }

    /// The connection pool of either side, for setup by plain SQL.
    fn pool(&self) -> &Pool<SqliteConnectionManager> {
        match self {
            Target::Store(s) => s.pool(),
            Target::Raw(r) => &r.pool,
        }
    }

    fn table(&self) -> String {
        match self {
            Target::Store(s) => s.table().qualified(),
            Target::Raw(_) => "t".into(),
        }
    }

    /// (Re)writes the 10,000 sessions `s0..s9999` in one transaction.
    fn populate(&self, value: &[u8]) {
        let mut conn = self.pool().get().expect("setup connection");
        let tx = conn.transaction().expect("setup transaction");
        {
            let mut st = tx
                .prepare(&format!(
                    "REPLACE INTO {} (session_id, data, expires_at, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4)",
                    self.table()
                ))
                .expect("setup statement");
            let now = now();
            for i in 0..SESSIONS {
                st.execute(params![format!("s{i}"), value, now + 3600, now])
                    .expect("setup row");
            }
        }
        tx.commit().expect("setup commit");
    }
}

struct Measure {
    ops_per_sec: f64,
    p99: Duration,
}

async fn measure(target: &Target, op: Op, tasks: usize, round: usize, value: &Bytes) -> Measure {
    if op == Op::Delete {
        target.populate(value);
    }
    let per_task = OPS / tasks;
    let started = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            let target = target.clone();
            let value = value.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(per_task);
                for i in 0..per_task {
                    let n = t * per_task + i;
                    let key = match op {
                        Op::Create => format!("c{tasks}-{round}-{n}"),
                        // Spread over the sessions, each key once per run.
                        _ => format!("s{}", (n * 7919) % SESSIONS),
                    };
                    let begun = Instant::now();
                    target.run(op, key, value.clone()).await;
                    latencies.push(begun.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(OPS);
    for handle in handles {
        latencies.extend(handle.await.expect("bench task"));
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    let p99 = latencies[(latencies.len() * 99 / 100).min(latencies.len() - 1)];
    Measure {
        ops_per_sec: latencies.len() as f64 / elapsed.as_secs_f64(),
        p99,
    }
}

fn median<T: Copy>(mut values: Vec<T>, cmp: impl Fn(&T, &T) -> std::cmp::Ordering) -> T {
    values.sort_by(cmp);
    values[values.len() / 2]
}

fn fmt_p99(d: Duration) -> String {
    if d >= Duration::from_millis(1) {
        format!("{:.2} ms", d.as_secs_f64() * 1e3)
    } else {
        format!("{} µs", d.as_micros())
    }
}

fn fresh_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("session-sqlite-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("bench directory");
    dir
}

fn open_store(path: &Path) -> SqliteStore {
    SqliteStore::open_with(
        path.to_str().expect("UTF-8 path"),
        SqliteConfig {
            pool_size: POOL_SIZE,
            ..SqliteConfig::default()
        },
    )
    .expect("open store")
}

/// Fills `target` with `CLEANUP_ROWS` rows, half expired, and times the
/// removal of the expired half.
async fn cleanup(target: &Target, value: &[u8]) -> (Duration, u64) {
    {
        let mut conn = target.pool().get().expect("setup connection");
        let tx = conn.transaction().expect("setup transaction");
        {
            let mut st = tx
                .prepare(&format!(
                    "INSERT INTO {} (session_id, data, expires_at, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4)",
                    target.table()
                ))
                .expect("setup statement");
            let now = now();
            for i in 0..CLEANUP_ROWS {
                // Interleaved: every other row expired a minute ago.
                let expires = if i % 2 == 0 { now - 60 } else { now + 3600 };
                st.execute(params![format!("x{i}"), value, expires, now])
                    .expect("setup row");
            }
        }
        tx.commit().expect("setup commit");
    }
    let started = Instant::now();
    let removed = match target {
        Target::Store(s) => s.delete_expired().await.expect("delete_expired"),
        Target::Raw(r) => {
            let pool = r.pool.clone();
            tokio::task::spawn_blocking(move || {
                let conn = pool.get().expect("raw connection");
                conn.prepare_cached(RAW_CLEANUP)
                    .and_then(|mut st| st.execute(params![now()]))
                    .expect("raw cleanup") as u64
            })
            .await
            .expect("raw task")
        }
    };
    (started.elapsed(), removed)
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this
    // binary without it, and then it only says so instead of measuring.
    if !std::env::args().any(|a| a == "--bench") {
        println!("sqlite_vs_raw: run with `cargo bench -p session-sqlite` to measure");
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(run());
}

async fn run() {
    let dir = fresh_dir();
    let value = Bytes::from(
        (0..VALUE_BYTES)
            .map(|i| (i * 31 % 251) as u8)
            .collect::<Vec<u8>>(),
    );
    let store = open_store(&dir.join("store.db"));
    store.create_table().await.expect("create table");
    let store = Target::Store(store);
    let raw = Target::Raw(Raw::open(&dir.join("raw.db")));
    store.populate(&value);
    raw.populate(&value);
    // Warm every connection's statement cache on both sides.
    for target in [&store, &raw] {
        for op in [Op::Read, Op::RenewingRead, Op::Write, Op::Delete] {
            measure(target, op, 16, 0, &value).await;
        }
        // The warm-up deleted sessions: every case starts from all 10,000.
        target.populate(&value);
    }

    println!(
        "SqliteStore vs raw rusqlite: {SESSIONS} sessions, {VALUE_BYTES}-byte values, \
         {OPS} operations per run, pool of {POOL_SIZE}, median of {ROUNDS} rounds\n"
    );
    println!("| case | tasks | store ops/s | store p99 | raw ops/s | raw p99 | store/raw |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    for op in [
        Op::Read,
        Op::RenewingRead,
        Op::Write,
        Op::Create,
        Op::Delete,
    ] {
        for tasks in [1, 16] {
            let mut store_runs = Vec::new();
            let mut raw_runs = Vec::new();
            for round in 1..=ROUNDS {
                // Alternate which side goes first.
                if round % 2 == 1 {
                    store_runs.push(measure(&store, op, tasks, round, &value).await);
                    raw_runs.push(measure(&raw, op, tasks, round, &value).await);
                } else {
                    raw_runs.push(measure(&raw, op, tasks, round, &value).await);
                    store_runs.push(measure(&store, op, tasks, round, &value).await);
                }
            }
            let ratio = median(
                store_runs
                    .iter()
                    .zip(&raw_runs)
                    .map(|(s, r)| s.ops_per_sec / r.ops_per_sec)
                    .collect(),
                f64::total_cmp,
            );
            let ops = |runs: &[Measure]| {
                median(runs.iter().map(|m| m.ops_per_sec).collect(), f64::total_cmp)
            };
            let p99 = |runs: &[Measure]| median(runs.iter().map(|m| m.p99).collect(), Ord::cmp);
            println!(
                "| {} | {tasks} | {:.0} | {} | {:.0} | {} | {ratio:.2} |",
                op.name(),
                ops(&store_runs),
                fmt_p99(p99(&store_runs)),
                ops(&raw_runs),
                fmt_p99(p99(&raw_runs)),
            );
        }
    }

    // Cleanup: fresh databases each round, so no earlier rows count.
    let batch: u32 = std::env::var("CLEANUP_BATCH")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(SqliteConfig::default().cleanup_batch_size);
    let (mut store_times, mut raw_times, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..ROUNDS.min(3) {
        let path = dir.join(format!("store-cleanup-{round}.db"));
        let store = SqliteStore::open_with(
            path.to_str().expect("UTF-8 path"),
            SqliteConfig {
                pool_size: POOL_SIZE,
                cleanup_batch_size: batch,
                ..SqliteConfig::default()
            },
        )
        .expect("open store");
        store.create_table().await.expect("create table");
        let store = Target::Store(store);
        let raw = Target::Raw(Raw::open(&dir.join(format!("raw-cleanup-{round}.db"))));
        let ((s, s_removed), (r, r_removed)) = if round % 2 == 0 {
            let s = cleanup(&store, &value).await;
            (s, cleanup(&raw, &value).await)
        } else {
            let r = cleanup(&raw, &value).await;
            (cleanup(&store, &value).await, r)
        };
        assert_eq!((s_removed, r_removed), (50_000, 50_000));
        store_times.push(s);
        raw_times.push(r);
        ratios.push(r.as_secs_f64() / s.as_secs_f64());
    }
    println!(
        "\n| cleanup: 50,000 expired of 100,000 rows | store (batches of {batch}) | raw (one DELETE) | store/raw |"
    );
    println!("| --- | ---: | ---: | ---: |");
    let ms = |times: Vec<Duration>| median(times, Ord::cmp).as_secs_f64() * 1e3;
    println!(
        "| time (median of {}) | {:.0} ms | {:.0} ms | {:.2} |",
        ratios.len(),
        ms(store_times),
        ms(raw_times),
        median(ratios, f64::total_cmp)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
