//! `SqliteStore` against raw rusqlite prepared statements doing the same
//! work for the same operation, on WAL file databases: the workloads of
//! issue 17.
//!
//! Run: `cargo bench -p session-sqlite` (about four minutes). Without
//! `--bench` (`cargo test --benches`) only the same-work check runs.
//! `BENCH_ROUNDS=n` changes the number of rounds (default 5);
//! `BENCH_ONLY=diagnosis`, `operations` or `cleanup` runs one section;
//! `BENCH_CASES` picks cases of the operations table (see [`selected`]);
//! `CLEANUP_BATCH=n` sets the store's cleanup batch; `CLEANUP_WRITER` set
//! (to any value) adds a task that writes a session, waits 2 ms, and
//! again, around each cleanup, and prints its write latencies without
//! and during a cleanup.
//!
//! Same work: the raw side runs the store's own SQL (copied below: a write
//! keeps the row's `created_at` and sets `updated_at`, a renewing read
//! keeps a key without expiry and sets `updated_at`, create replaces an
//! expired row, a compare-and-set writes only over a live row holding the
//! expected bytes), with the same clock arithmetic, one statement per
//! operation on a pool of 8, each in its own transaction: the floor of one
//! statement per operation. Before measuring, [`check_same_work`] runs
//! every operation on both sides from the same rows (live, without expiry,
//! expired, missing; a compare-and-set from the row's value and from a
//! stale one) and fails unless the results and the rows after are the
//! same. The store's single writer (which may commit several queued
//! writes in one transaction) is what the comparison measures. Cleanup
//! differs on purpose: the store deletes in batches, each its own
//! transaction, the raw side in one unbatched `DELETE`.
//!
//! Fairness: both sides use the same connection settings (WAL,
//! `synchronous=NORMAL`, 5 s busy timeout, the same open flags), the same
//! r2d2 pool size (8), the same threading model for statements on the pool
//! (tokio's blocking pool through `spawn_blocking`, from a multi-thread
//! runtime) and cached prepared statements; each side has a database file
//! of its own. Every case runs several rounds, each a store run and a raw
//! run back to back (alternating which goes first); the medians of the
//! rounds are reported, and the ratio is the median of the rounds' ratios,
//! so a burst of load from elsewhere on the machine skews one round, not
//! the result. The cleanup's read latencies are those of all rounds' reads
//! pooled ([`ReadsAround`]): one round's p99 rests on its few slowest
//! reads.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use r2d2::Pool;
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{OpenFlags, OptionalExtension, params};
use session_core::{Store, StoreAdmin};
use session_sqlite::{SqliteConfig, SqliteStore};
use session_test_support::bench::{
    Measured, Op, ReadsAround, comparison_row_with_p50, fmt_count, fmt_latency, fmt_rate, median,
    percentile, reads_around, run_tasks,
};

const SESSIONS: usize = 10_000;
/// Operations per run at 1 task and at 16 tasks (issue 17's counts).
const OPS_ONE: usize = 5_000;
const OPS_MANY: usize = 20_000;
const VALUE_BYTES: usize = 1024;
const POOL_SIZE: u32 = 8;
const TTL: Duration = Duration::from_secs(3600);
const CLEANUP_ROWS: usize = 100_000;
/// Tasks reading while a cleanup runs.
const CLEANUP_READERS: usize = 4;

fn rounds() -> usize {
    std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(5)
}

/// Whether the operations table measures `op` at `tasks`:
/// `BENCH_CASES` lists the cases to run, comma-separated, as
/// `<op>` or `<op>@<tasks>` with the short names `read`, `renew`, `set`,
/// `cas`, `create`, `delete` (e.g. `BENCH_CASES=set@1,create@1,read@16`);
/// unset, every case.
fn selected(op: Op, tasks: usize) -> bool {
    let Ok(cases) = std::env::var("BENCH_CASES") else {
        return true;
    };
    cases.split(',').map(str::trim).any(|case| {
        let (name, at) = case.split_once('@').unwrap_or((case, ""));
        name == op.short() && (at.is_empty() || at.parse() == Ok(tasks))
    })
}

/// An operation's row label: `set` is named, as the store's API has both
/// `set` and `update`.
fn label(op: Op) -> &'static str {
    match op {
        Op::Write => "write (`set`)",
        _ => op.name(),
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
const RAW_WRITE: &str = SET_UPSERT;
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

/// The two ways of writing `set` the diagnosis compares: `REPLACE INTO`
/// with a sub-select carrying `created_at` over, and an upsert that
/// updates the row in place.
const SET_REPLACE: &str = "REPLACE INTO t (session_id, data, expires_at, created_at, updated_at) \
     VALUES (?1, ?2, ?3, COALESCE((SELECT created_at FROM t WHERE session_id = ?1), ?4), ?4)";
const SET_UPSERT: &str = "INSERT INTO t (session_id, data, expires_at, created_at, updated_at) \
     VALUES (?1, ?2, ?3, ?4, ?4) ON CONFLICT(session_id) DO UPDATE SET data = excluded.data, \
     expires_at = excluded.expires_at, updated_at = excluded.updated_at";

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

fn raw_manager(path: &Path) -> SqliteConnectionManager {
    let busy = SqliteConfig::default().busy_timeout;
    SqliteConnectionManager::file(path)
        .with_flags(
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .with_init(move |c| {
            c.busy_timeout(busy)?;
            c.pragma_update(None, "synchronous", "NORMAL")
        })
}

impl Raw {
    fn open(path: &Path) -> Raw {
        Self::with_manager(path, raw_manager(path))
    }

    fn with_manager(path: &Path, manager: SqliteConnectionManager) -> Raw {
        let setup = rusqlite::Connection::open(path).expect("open raw database");
        setup
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get::<_, String>(0))
            .expect("WAL");
        for ddl in SqliteStore::ddl(&session_core::TableName::new("t", 63).expect("name")) {
            setup.execute_batch(&ddl).expect("create raw table");
        }
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

    /// Writes the rows `{prefix}{i}` for `i` in `0..count`, expiring an
    /// hour from now (or, where `expired(i)`, a minute ago), in one
    /// transaction.
    fn insert(&self, prefix: &str, count: usize, value: &[u8], expired: impl Fn(usize) -> bool) {
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
            for i in 0..count {
                let expires = if expired(i) { now - 60 } else { now + 3600 };
                st.execute(params![format!("{prefix}{i}"), value, expires, now])
                    .expect("setup row");
            }
        }
        tx.commit().expect("setup commit");
    }

    /// Removes the rows whose key starts with `prefix` (one letter).
    fn remove(&self, prefix: char) {
        let next = char::from(prefix as u8 + 1);
        self.pool()
            .get()
            .expect("setup connection")
            .execute(
                &format!(
                    "DELETE FROM {} WHERE session_id >= ?1 AND session_id < ?2",
                    self.table()
                ),
                params![prefix.to_string(), next.to_string()],
            )
            .expect("remove rows");
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
    let store = open_store(&dir.join("check-store.db"), None);
    store.create_table().await.expect("create table");
    let sides = [
        Target::Store(store),
        Target::Raw(Raw::open(&dir.join("check-raw.db"))),
    ];
    let mut logs = Vec::new();
    for side in &sides {
        let mut log = Vec::new();
        for op in Op::ALL {
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

/// One run of `op` over `tasks` tasks (5,000 operations at 1 task, 20,000
/// at 16). Reads and writes draw keys at random from the 10,000 sessions
/// (the same keys on both sides); a compare-and-set swaps a session's
/// value for the same value (every call writes: the cost of a successful
/// conditional save), so it starts from freshly written sessions; create
/// makes new keys (removed after the run) and delete removes keys made
/// for it before the run, so every delete finds its row.
async fn measure(target: &Target, op: Op, tasks: usize, round: usize, value: &Bytes) -> Measured {
    let ops = if tasks == 1 { OPS_ONE } else { OPS_MANY };
    let per_task = ops / tasks;
    match op {
        Op::CompareAndSet => target.insert("s", SESSIONS, value, |_| false),
        Op::Delete => target.insert("d", ops, value, |_| false),
        _ => {}
    }
    let target_ = target.clone();
    let value_ = value.clone();
    let measured = run_tasks(tasks, per_task, move |task, i, random| {
        let target = target_.clone();
        let value = value_.clone();
        async move {
            let n = task * per_task + i;
            let key = match op {
                Op::Create => format!("c{tasks}-{round}-{n}"),
                Op::Delete => format!("d{n}"),
                _ => format!("s{}", random % SESSIONS as u64),
            };
            let out = target.run(op, key, value.clone(), value).await;
            if op == Op::CompareAndSet {
                assert_eq!(out, Out::Wrote(true), "a compare-and-set missed");
            }
            std::hint::black_box(out);
        }
    })
    .await;
    if op == Op::Create {
        target.remove('c');
    }
    measured
}

/// Removes a database file and its WAL and shared-memory files, so a
/// section or round leaves no file (and no dirty pages for the kernel to
/// write back) behind for the next one.
fn remove_database(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

fn fresh_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("session-sqlite-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("bench directory");
    dir
}

fn open_store(path: &Path, cleanup_batch_size: Option<u32>) -> SqliteStore {
    let default = SqliteConfig::default();
    SqliteStore::open_with(
        path.to_str().expect("UTF-8 path"),
        SqliteConfig {
            pool_size: POOL_SIZE,
            cleanup_batch_size: cleanup_batch_size.unwrap_or(default.cleanup_batch_size),
            ..default
        },
    )
    .expect("open store")
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
    let value = Bytes::from(
        (0..VALUE_BYTES)
            .map(|i| (i * 31 % 251) as u8)
            .collect::<Vec<u8>>(),
    );
    // `BENCH_ONLY=diagnosis|operations|cleanup` runs one section.
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    let run = |section: &str| only.is_empty() || only == section;
    if run("diagnosis") {
        runtime.block_on(diagnose(&dir, &value));
    }
    if run("operations") {
        runtime.block_on(operations(&dir, &value));
    }
    if run("cleanup") {
        runtime.block_on(cleanup(&dir, &value));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The operations table: every case at 1 and 16 tasks, store and raw
/// alternating, `rounds()` rounds.
async fn operations(dir: &Path, value: &Bytes) {
    let rounds = rounds();
    let store = open_store(&dir.join("store.db"), None);
    store.create_table().await.expect("create table");
    let store = Target::Store(store);
    let raw = Target::Raw(Raw::open(&dir.join("raw.db")));
    for target in [&store, &raw] {
        target.insert("s", SESSIONS, value, |_| false);
        // Warm every connection's statement cache.
        for op in Op::ALL {
            measure(target, op, 16, 0, value).await;
        }
    }
    println!(
        "\n## Operations\n\nSqliteStore vs raw rusqlite (one statement per operation, pool of {POOL_SIZE}): \
         {SESSIONS} sessions, {VALUE_BYTES}-byte values, {OPS_ONE} operations per run at 1 task, \
         {OPS_MANY} at 16; medians of {rounds} rounds, store/raw the median of the rounds' ratios\n"
    );
    println!(
        "| case | tasks | store ops/s | store p50 | store p99 | raw ops/s | raw p50 | raw p99 | store/raw |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for op in Op::ALL {
        for tasks in [1, 16] {
            if !selected(op, tasks) {
                continue;
            }
            let mut store_runs = Vec::new();
            let mut raw_runs = Vec::new();
            for round in 1..=rounds {
                // Alternate which side goes first.
                if round % 2 == 1 {
                    store_runs.push(measure(&store, op, tasks, round, value).await);
                    raw_runs.push(measure(&raw, op, tasks, round, value).await);
                } else {
                    raw_runs.push(measure(&raw, op, tasks, round, value).await);
                    store_runs.push(measure(&store, op, tasks, round, value).await);
                }
            }
            println!(
                "{}",
                comparison_row_with_p50(label(op), tasks, &store_runs, &raw_runs)
            );
        }
    }
    drop((store, raw));
    remove_database(&dir.join("store.db"));
    remove_database(&dir.join("raw.db"));
}

/// Deletes the expired rows: the store's `cleanup` (batched), or the raw
/// side's one `DELETE`.
async fn run_cleanup(target: &Target) -> u64 {
    match target {
        Target::Store(s) => s.cleanup().await.expect("cleanup").expect("never skipped"),
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
    }
}

/// What one cleanup round measured on one side.
struct CleanupRun {
    /// The cleanup alone.
    time: Duration,
    /// The cleanup and then a `FULL` checkpoint: all its WAL frames copied
    /// into the database file (the raw `DELETE`'s automatic checkpoint
    /// runs inside its statement; the store's run on its checkpoint thread).
    with_checkpoint: Duration,
    /// The second cleanup, the one the readers ran beside: the store's
    /// batches give their CPU way to the readers, so it takes longer.
    under_reads: Duration,
}

/// Fills a fresh table with `CLEANUP_ROWS` rows, every other one expired
/// (spread evenly, as a real table ages), and times the removal of the
/// expired half; then refills it and reads on `CLEANUP_READERS` tasks
/// without a break ([`reads_around`]): for as long as the cleanup took (at
/// least 200 ms) before a cleanup, during one, and as long again after it.
/// The reads before and after are the reads without a cleanup, so a change
/// of the machine's load during the round weighs on both sides of the
/// ratio; they are added to `reads`, pooled over the rounds.
async fn cleanup_round(
    target: &Target,
    value: &[u8],
    reads: &mut ReadsAround,
    writes: &mut [Vec<Duration>; 2],
) -> CleanupRun {
    target.insert("x", CLEANUP_ROWS, value, |i| i % 2 == 0);
    let started = Instant::now();
    assert_eq!(run_cleanup(target).await, (CLEANUP_ROWS / 2) as u64);
    let time = started.elapsed();
    let pool = target.pool().clone();
    tokio::task::spawn_blocking(move || {
        pool.get()
            .expect("connection")
            .query_row("PRAGMA wal_checkpoint(FULL)", [], |_| Ok(()))
            .expect("checkpoint")
    })
    .await
    .expect("checkpoint task");
    let with_checkpoint = started.elapsed();

    target.insert("x", CLEANUP_ROWS, value, |i| i % 2 == 0);
    let read = {
        let target = target.clone();
        move |_task: usize, random: u64| {
            let target = target.clone();
            async move {
                let key = format!("x{}", (random as usize % (CLEANUP_ROWS / 2)) * 2 + 1);
                let out = target.run(Op::Read, key, Bytes::new(), Bytes::new()).await;
                assert!(matches!(out, Out::Data(Some(_))), "a live row was not read");
            }
        }
    };
    let window = time.max(Duration::from_millis(200));
    // `CLEANUP_WRITER=1`: one more task writes a session every 2 ms
    // meanwhile, its writes timed and split by whether they started
    // during the cleanup.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = std::env::var_os("CLEANUP_WRITER").map(|_| {
        let (target, stop, value) = (target.clone(), stop.clone(), Bytes::copy_from_slice(value));
        tokio::spawn(async move {
            let mut timed = Vec::new();
            for i in 0.. {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let t0 = Instant::now();
                let key = format!("w{}", i % 100);
                target
                    .run(Op::Write, key, value.clone(), Bytes::new())
                    .await;
                timed.push((t0, t0.elapsed()));
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            timed
        })
    });
    let timed = async {
        let started = Instant::now();
        (run_cleanup(target).await, started, started.elapsed())
    };
    let (round_reads, (removed, started, under_reads)) =
        reads_around(CLEANUP_READERS, None, window, read, timed).await;
    assert_eq!(removed, (CLEANUP_ROWS / 2) as u64);
    reads.add_round(&round_reads);
    stop.store(true, Ordering::Relaxed);
    if let Some(writer) = writer {
        for (t0, took) in writer.await.expect("writer task") {
            let during = t0 >= started && t0 <= started + under_reads;
            writes[usize::from(during)].push(took);
        }
    }
    CleanupRun {
        time,
        with_checkpoint,
        under_reads,
    }
}

async fn cleanup(dir: &Path, value: &[u8]) {
    let rounds = rounds();
    let batch = std::env::var("CLEANUP_BATCH")
        .ok()
        .and_then(|v| v.parse().ok());
    let mut store_runs = Vec::new();
    let mut raw_runs = Vec::new();
    let (mut store_reads, mut raw_reads) = (ReadsAround::default(), ReadsAround::default());
    let (mut store_writes, mut raw_writes) = <([Vec<Duration>; 2], [Vec<Duration>; 2])>::default();
    for round in 0..rounds {
        // Fresh databases each round, so no earlier rows count; removed
        // after it.
        let (store_path, raw_path) = (
            dir.join(format!("store-cleanup-{round}.db")),
            dir.join(format!("raw-cleanup-{round}.db")),
        );
        let store = open_store(&store_path, batch);
        store.create_table().await.expect("create table");
        let store = Target::Store(store);
        let raw = Target::Raw(Raw::open(&raw_path));
        if round % 2 == 0 {
            store_runs
                .push(cleanup_round(&store, value, &mut store_reads, &mut store_writes).await);
            raw_runs.push(cleanup_round(&raw, value, &mut raw_reads, &mut raw_writes).await);
        } else {
            raw_runs.push(cleanup_round(&raw, value, &mut raw_reads, &mut raw_writes).await);
            store_runs
                .push(cleanup_round(&store, value, &mut store_reads, &mut store_writes).await);
        }
        drop((store, raw));
        remove_database(&store_path);
        remove_database(&raw_path);
    }
    let ms = |d: Duration| fmt_latency(d);
    let med = |runs: &[CleanupRun], f: fn(&CleanupRun) -> Duration| {
        Duration::from_secs_f64(median(runs.iter().map(|r| f(r).as_secs_f64())))
    };
    let ratio = |f: fn(&CleanupRun) -> f64| {
        median(store_runs.iter().zip(&raw_runs).map(|(s, r)| f(s) / f(r)))
    };
    let batch = batch.map_or("the default batches".to_owned(), |b| {
        format!("batches of {b}")
    });
    println!(
        "\n## Cleanup\n\n{} expired rows spread evenly through {CLEANUP_ROWS} (every other row); \
         the store's `cleanup()` ({batch}) against one raw `DELETE`; reads on {CLEANUP_READERS} tasks \
         during a cleanup and, without one, for as long before and after it; times: medians of \
         {rounds} rounds; read latencies: all rounds' reads pooled\n",
        CLEANUP_ROWS / 2
    );
    println!(
        "| side | cleanup time | with its checkpoint | under the reads | reads without / during | read p99 without | read p99 during | during/without | one round's during/without |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (name, runs, reads) in [
        ("store", &store_runs, &store_reads),
        ("raw", &raw_runs, &raw_reads),
    ] {
        let (lowest, highest) = reads.round_ratios();
        println!(
            "| {name} | {} | {} | {} | {} / {} | {} | {} | {:.2} | {lowest:.2} to {highest:.2} |",
            ms(med(runs, |r| r.time)),
            ms(med(runs, |r| r.with_checkpoint)),
            ms(med(runs, |r| r.under_reads)),
            fmt_count(reads.counts().0 as u64),
            fmt_count(reads.counts().1 as u64),
            ms(reads.without(99)),
            ms(reads.during(99)),
            reads.p99_ratio(),
        );
    }
    for (name, writes) in [("store", &mut store_writes), ("raw", &mut raw_writes)] {
        if writes[1].is_empty() {
            continue;
        }
        let [without, during] = writes.each_mut().map(|w| {
            w.sort();
            let max = w.last().copied().unwrap_or_default();
            let (p50, p99) = (percentile(w, 50), percentile(w, 99));
            format!(
                "{} / {} / {} ({} writes)",
                ms(p50),
                ms(p99),
                ms(max),
                w.len()
            )
        });
        println!(
            "\n{name}: a write every 2 ms, p50 / p99 / max without a cleanup {without}, during one {during}"
        );
    }
    println!(
        "\ncleanup time store/raw (medians of the rounds' ratios): {:.2} alone, {:.2} with the checkpoint",
        ratio(|r| r.time.as_secs_f64()),
        ratio(|r| r.with_checkpoint.as_secs_f64())
    );
}

// ---------------------------------------------------------------------
// Diagnosis: where a write's time goes.

/// SQLite's own busy handler sleeps (ms) for its 1st, 2nd, ... call
/// (`sqliteDefaultBusyCallback`); after the last, 100 ms each.
const BUSY_DELAYS_MS: [u64; 12] = [1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100];

static BUSY_CALLS: AtomicU64 = AtomicU64::new(0);
static BUSY_FIRST_CALLS: AtomicU64 = AtomicU64::new(0);
static BUSY_SLEPT_US: AtomicU64 = AtomicU64::new(0);

/// SQLite's default busy handler, counted: the same sleeps, the same 5 s
/// limit.
fn counting_busy_handler(count: i32) -> bool {
    let count = count as usize;
    let delay = BUSY_DELAYS_MS[count.min(BUSY_DELAYS_MS.len() - 1)];
    let before: u64 = BUSY_DELAYS_MS.iter().take(count).sum::<u64>()
        + 100 * count.saturating_sub(BUSY_DELAYS_MS.len()) as u64;
    if before + delay > 5_000 {
        return false;
    }
    BUSY_CALLS.fetch_add(1, Ordering::Relaxed);
    if count == 0 {
        BUSY_FIRST_CALLS.fetch_add(1, Ordering::Relaxed);
    }
    std::thread::sleep(Duration::from_millis(delay));
    BUSY_SLEPT_US.fetch_add(delay * 1000, Ordering::Relaxed);
    true
}

/// Prints what shows the cost of a write: the query plans of the two ways
/// of writing `set`, what each statement costs and writes to the WAL on one
/// connection, and how much of a write at 16 tasks on a pool is spent
/// sleeping in the busy handler waiting for SQLite's write lock.
async fn diagnose(dir: &Path, value: &Bytes) {
    println!("\n## Diagnosis: where a write's time goes\n");
    let path = dir.join("diagnose.db");
    let raw = Target::Raw(Raw::open(&path));
    raw.insert("s", SESSIONS, value, |_| false);
    {
        let conn = raw.pool().get().expect("connection");
        for (name, sql) in [
            ("set as REPLACE", SET_REPLACE),
            ("set as upsert", SET_UPSERT),
        ] {
            let plan: Vec<String> = conn
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .expect("explain")
                .query_map(params!["s1", &value[..], 1, 1], |r| r.get(3))
                .expect("plan")
                .collect::<Result<_, _>>()
                .expect("plan rows");
            let ops: i64 = conn
                .prepare(&format!("EXPLAIN {sql}"))
                .expect("explain")
                .query_map(params!["s1", &value[..], 1, 1], |_| Ok(()))
                .expect("program")
                .count() as i64;
            println!("- {name}: plan {plan:?}, {ops} VDBE instructions");
        }
    }
    // Each statement alone: 5,000 runs over existing keys (new keys for
    // create) on one connection, autocheckpoint off so the WAL frames each
    // writes can be counted.
    println!(
        "\n| statement (one connection, {OPS_ONE} runs) | µs per statement | WAL pages per statement |"
    );
    println!("| --- | ---: | ---: |");
    let conn = raw.pool().get().expect("connection");
    conn.pragma_update(None, "wal_autocheckpoint", 0)
        .expect("autocheckpoint off");
    for (name, sql, new_keys) in [
        ("set as REPLACE", SET_REPLACE, false),
        ("set as upsert", SET_UPSERT, false),
        ("create (new keys)", RAW_CREATE, true),
        ("renewing read", RAW_RENEW, false),
        ("delete", RAW_DELETE, false),
    ] {
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .expect("checkpoint");
        let mut st = conn.prepare_cached(sql).expect("prepare");
        let mut seed = 7u64;
        let started = Instant::now();
        for i in 0..OPS_ONE {
            let key = if new_keys {
                format!("n{i}")
            } else {
                format!(
                    "s{}",
                    session_test_support::bench::next(&mut seed) % SESSIONS as u64
                )
            };
            let (now, exp) = clock();
            match sql {
                RAW_DELETE => st.execute(params![key]),
                RAW_RENEW => st
                    .query_row(params![key, now, exp, now], |_| Ok(()))
                    .optional()
                    .map(|_| 1),
                _ => st.execute(params![key, &value[..], exp, now]),
            }
            .expect("statement");
        }
        let took = started.elapsed();
        let frames: i64 = conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get(1))
            .expect("wal frames");
        println!(
            "| {name} | {:.1} | {:.2} |",
            took.as_secs_f64() * 1e6 / OPS_ONE as f64,
            frames as f64 / OPS_ONE as f64
        );
        if sql == RAW_DELETE || new_keys {
            raw.insert("s", SESSIONS, value, |_| false);
            raw.remove('n');
        }
    }
    conn.pragma_update(None, "wal_autocheckpoint", 1000)
        .expect("autocheckpoint on");
    drop(conn);
    drop(raw);

    // Lock waits: the raw pool with SQLite's busy handler, counted.
    let path = dir.join("diagnose-busy.db");
    let manager = raw_manager(&path).with_init(|c| {
        c.busy_handler(Some(counting_busy_handler))?;
        c.pragma_update(None, "synchronous", "NORMAL")
    });
    let raw = Target::Raw(Raw::with_manager(&path, manager));
    raw.insert("s", SESSIONS, value, |_| false);
    measure(&raw, Op::Write, 16, 0, value).await;
    println!(
        "\n| writes on a pool of {POOL_SIZE}, 16 tasks, {OPS_MANY} ops | ops/s | p50 | p99 | ops that slept for the lock | busy-handler sleeps | time asleep per op |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    for op in [Op::Write, Op::Create, Op::Delete] {
        BUSY_CALLS.store(0, Ordering::Relaxed);
        BUSY_FIRST_CALLS.store(0, Ordering::Relaxed);
        BUSY_SLEPT_US.store(0, Ordering::Relaxed);
        let m = measure(&raw, op, 16, 0, value).await;
        let first = BUSY_FIRST_CALLS.load(Ordering::Relaxed);
        println!(
            "| {} | {} | {} | {} | {:.1}% | {} | {:.0} µs |",
            label(op),
            fmt_rate(m.ops_per_sec),
            fmt_latency(m.p50),
            fmt_latency(m.p99),
            first as f64 * 100.0 / OPS_MANY as f64,
            BUSY_CALLS.load(Ordering::Relaxed),
            BUSY_SLEPT_US.load(Ordering::Relaxed) as f64 / OPS_MANY as f64,
        );
    }
}
