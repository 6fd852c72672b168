//! `SqliteStore` against raw rusqlite prepared statements doing the same
//! work for the same operation, on WAL file databases.
//!
//! Run: `cargo bench -p session-sqlite` (about two minutes). Without
//! `--bench` (`cargo test --benches`) only the same-work check runs.
//!
//! Same work: the raw side runs the store's own SQL (copied below: a write
//! keeps the row's `created_at` and sets `updated_at`, a renewing read
//! keeps a key without expiry and sets `updated_at`, create replaces an
//! expired row, a compare-and-set writes only over a live row holding the
//! expected bytes), with the same clock arithmetic, so the ratio is the cost
//! of the store's Rust side (key validation, the pool and task plumbing,
//! error mapping). Before measuring, [`check_same_work`] runs every
//! operation on both sides from the same rows (live, without expiry,
//! expired, missing; a compare-and-set from the row's value and from a
//! stale one) and fails unless the results and the rows after are
//! the same. The one difference on purpose is cleanup: the store deletes
//! in batches of `cleanup_batch_size`, each its own transaction, the raw
//! side in one `DELETE`.
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
    CompareAndSet,
    Create,
    Delete,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Read => "read",
            Op::RenewingRead => "renewing read",
            Op::Write => "write",
            Op::CompareAndSet => "compare-and-set",
            Op::Create => "create",
            Op::Delete => "delete",
        }
    }
}

/// The raw side: an r2d2 pool and the store's SQL per operation.
#[derive(Clone)]
struct Raw {
    pool: Pool<SqliteConnectionManager>,
}

// The store's statements (`session-sqlite/src/schema.rs`) on table `t`.
// `?1` key, `?2` data or now, `?3` expiry, `?4` now, `?5` expected data.
const RAW_READ: &str =
    "SELECT data FROM t WHERE session_id = ?1 AND (expires_at IS NULL OR expires_at > ?2)";
const RAW_RENEW: &str = "UPDATE t SET expires_at = CASE WHEN expires_at IS NULL THEN NULL ELSE ?3 END, \
     updated_at = ?4 WHERE session_id = ?1 AND (expires_at IS NULL OR expires_at > ?2) RETURNING data";
const RAW_WRITE: &str = "REPLACE INTO t (session_id, data, expires_at, created_at, updated_at) \
     VALUES (?1, ?2, ?3, COALESCE((SELECT created_at FROM t WHERE session_id = ?1), ?4), ?4)";
const RAW_COMPARE_AND_SET: &str = "UPDATE t SET data = ?2, expires_at = ?3, updated_at = ?4 \
     WHERE session_id = ?1 AND (expires_at IS NULL OR expires_at > ?4) AND CAST(data AS BLOB) = ?5";
const RAW_CREATE: &str = "INSERT INTO t (session_id, data, expires_at, created_at, updated_at) \
     VALUES (?1, ?2, ?3, ?4, ?4) \
     ON CONFLICT(session_id) DO UPDATE SET data = excluded.data, \
     expires_at = excluded.expires_at, created_at = excluded.created_at, \
     updated_at = excluded.updated_at \
     WHERE t.expires_at IS NOT NULL AND t.expires_at <= ?4";
const RAW_DELETE: &str = "DELETE FROM t WHERE session_id = ?1";
const RAW_CLEANUP: &str = "DELETE FROM t WHERE expires_at IS NOT NULL AND expires_at <= ?1";

fn now() -> i64 {
    clock().0
}

/// The clock as the store reads it: `floor(now)` to compare with and to
/// stamp rows, and `ceil(now + TTL)` for the expiry to write.
fn clock() -> (i64, i64) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970");
    let expiry = now + TTL;
    let ceil = expiry.as_secs() + u64::from(expiry.subsec_nanos() > 0);
    (now.as_secs() as i64, ceil as i64)
}

/// What an operation returned, for [`check_same_work`]: the data read, or
/// whether a create or compare-and-set wrote; `Done` for write and delete,
/// which return nothing.
#[derive(Debug, PartialEq)]
enum Out {
    Data(Option<Bytes>),
    Wrote(bool),
    Done,
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

    async fn run(&self, op: Op, key: String, value: Bytes, expected: Bytes) -> Out {
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || -> rusqlite::Result<Out> {
            let conn = pool.get().expect("raw connection");
            let (now, exp) = clock();
            Ok(match op {
                Op::Read => {
                    let v: Option<Vec<u8>> = conn
                        .prepare_cached(RAW_READ)?
                        .query_row(params![key, now], |r| r.get(0))
                        .optional()?;
                    Out::Data(v.map(Bytes::from))
                }
                Op::RenewingRead => {
                    let v: Option<Vec<u8>> = conn
                        .prepare_cached(RAW_RENEW)?
                        .query_row(params![key, now, exp, now], |r| r.get(0))
                        .optional()?;
                    Out::Data(v.map(Bytes::from))
                }
                Op::Write => {
                    conn.prepare_cached(RAW_WRITE)?
                        .execute(params![key, &value[..], exp, now])?;
                    Out::Done
                }
                Op::CompareAndSet => {
                    let written = conn.prepare_cached(RAW_COMPARE_AND_SET)?.execute(params![
                        key,
                        &value[..],
                        exp,
                        now,
                        &expected[..]
                    ])?;
                    Out::Wrote(written == 1)
                }
                Op::Create => {
                    let written = conn.prepare_cached(RAW_CREATE)?.execute(params![
                        key,
                        &value[..],
                        exp,
                        now
                    ])?;
                    Out::Wrote(written == 1)
                }
                Op::Delete => {
                    conn.prepare_cached(RAW_DELETE)?.execute(params![key])?;
                    Out::Done
                }
            })
        })
        .await
        .expect("raw task")
        .expect("raw statement")
    }
}

#[derive(Clone)]
enum Target {
    Store(SqliteStore),
    Raw(Raw),
}

impl Target {
    /// Runs `op` on `key`; `expected` is the compare-and-set's expected
    /// value, unused by the other operations.
    async fn run(&self, op: Op, key: String, value: Bytes, expected: Bytes) -> Out {
        match self {
            Target::Raw(raw) => raw.run(op, key, value, expected).await,
            Target::Store(store) => match op {
                Op::Read => Out::Data(store.get(&key, None).await.expect("get")),
                Op::RenewingRead => Out::Data(store.get(&key, Some(TTL)).await.expect("renew")),
                Op::Write => {
                    store.set(&key, value, Some(TTL)).await.expect("set");
                    Out::Done
                }
                Op::CompareAndSet => Out::Wrote(
                    store
                        .compare_and_set(&key, expected, value, Some(TTL))
                        .await
                        .expect("compare_and_set"),
                ),
                Op::Create => {
                    Out::Wrote(store.create(&key, value, Some(TTL)).await.expect("create"))
                }
                Op::Delete => {
                    store.delete(&key).await.expect("delete");
                    Out::Done
                }
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

    /// Replaces every row with the same-work check's starting rows, times
    /// relative to `base`: `live` expiring in ten minutes, `forever`
    /// without expiry, `expired` a minute ago, all created and updated at
    /// 1000 (long ago); `missing` has no row.
    fn seed(&self, base: i64) {
        let conn = self.pool().get().expect("setup connection");
        let t = self.table();
        conn.execute(&format!("DELETE FROM {t}"), [])
            .expect("clear the table");
        let mut st = conn
            .prepare(&format!(
                "INSERT INTO {t} (session_id, data, expires_at, created_at, updated_at) \
                 VALUES (?1, ?2, ?3, 1000, 1000)"
            ))
            .expect("seed statement");
        for (key, expires) in [
            ("live", Some(base + 600)),
            ("forever", None),
            ("expired", Some(base - 60)),
        ] {
            st.execute(params![key, format!("old {key}").as_bytes(), expires])
                .expect("seed row");
        }
    }

    /// The row under `key`, its times relative to `base`.
    fn row(&self, key: &str, base: i64) -> String {
        let conn = self.pool().get().expect("setup connection");
        let row: Option<(Vec<u8>, Option<i64>, i64, i64)> = conn
            .query_row(
                &format!(
                    "SELECT data, expires_at, created_at, updated_at FROM {} WHERE session_id = ?1",
                    self.table()
                ),
                params![key],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()
            .expect("read the row");
        let when = |at: i64| {
            let ttl = TTL.as_secs() as i64;
            let off = at - base;
            // A second may tick between `base` and the operation.
            match at {
                1000 => "long ago".to_owned(),
                _ if (0..=2).contains(&off) => "now".to_owned(),
                _ if (ttl..=ttl + 2).contains(&off) => "now+TTL".to_owned(),
                _ => format!("now{off:+}"),
            }
        };
        match row {
            None => "no row".to_owned(),
            Some((data, expires, created, updated)) => format!(
                "data {:?}, expires {}, created {}, updated {}",
                String::from_utf8_lossy(&data),
                expires.map_or("never".to_owned(), when),
                when(created),
                when(updated),
            ),
        }
    }
}

/// Runs every operation on both sides, each from the same starting rows
/// ([`Target::seed`]), and fails unless each returned the same and left the
/// same row behind: the raw baseline does the store's work, no less.
async fn check_same_work(dir: &Path) {
    let store = open_store(&dir.join("check-store.db"));
    store.create_table().await.expect("create table");
    let sides = [
        Target::Store(store),
        Target::Raw(Raw::open(&dir.join("check-raw.db"))),
    ];
    let mut logs = Vec::new();
    for side in &sides {
        let mut log = Vec::new();
        for op in [
            Op::Read,
            Op::RenewingRead,
            Op::Write,
            Op::CompareAndSet,
            Op::Create,
            Op::Delete,
        ] {
            for key in ["live", "forever", "expired", "missing"] {
                // A compare-and-set from the value the row holds
                // ([`Target::seed`]) and from a stale one.
                let expected: &[String] = match op {
                    Op::CompareAndSet => &[format!("old {key}"), "stale".to_owned()],
                    _ => &[String::new()],
                };
                for expected in expected {
                    let base = now();
                    side.seed(base);
                    let out = side
                        .run(
                            op,
                            key.to_owned(),
                            Bytes::from_static(b"new"),
                            Bytes::from(expected.clone()),
                        )
                        .await;
                    log.push(format!(
                        "{} {key} from {expected:?}: {out:?}, then {}",
                        op.name(),
                        side.row(key, base)
                    ));
                }
            }
        }
        logs.push(log);
    }
    for (store, raw) in logs[0].iter().zip(&logs[1]) {
        assert_eq!(store, raw, "the raw side does not do the store's work");
    }
    // The check exercises both answers of the conditional writes.
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

struct Measure {
    ops_per_sec: f64,
    p99: Duration,
}

/// Runs `OPS` operations `op` over `tasks` tasks. A compare-and-set swaps
/// each session's `value` for the same `value` (every call writes: the
/// cost of a successful conditional save), so, like delete, it starts
/// from freshly populated sessions.
async fn measure(target: &Target, op: Op, tasks: usize, round: usize, value: &Bytes) -> Measure {
    if matches!(op, Op::Delete | Op::CompareAndSet) {
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
                    let out = target.run(op, key, value.clone(), value.clone()).await;
                    latencies.push(begun.elapsed());
                    if op == Op::CompareAndSet {
                        assert_eq!(out, Out::Wrote(true), "a compare-and-set missed");
                    }
                    std::hint::black_box(out);
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
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let dir = fresh_dir();
    runtime.block_on(check_same_work(&dir));
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this
    // binary without it, and then it only runs the check instead of
    // measuring.
    if !std::env::args().any(|a| a == "--bench") {
        println!("sqlite_vs_raw: run with `cargo bench -p session-sqlite` to measure");
        let _ = std::fs::remove_dir_all(&dir);
        return;
    }
    runtime.block_on(run(&dir));
}

async fn run(dir: &Path) {
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
        for op in [
            Op::Read,
            Op::RenewingRead,
            Op::Write,
            Op::CompareAndSet,
            Op::Delete,
        ] {
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
        Op::CompareAndSet,
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
    let _ = std::fs::remove_dir_all(dir);
}
