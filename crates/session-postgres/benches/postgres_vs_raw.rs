//! `PostgresStore` against raw `tokio-postgres` prepared statements doing
//! the minimum SQL, on the same server, in one run.
//!
//! Run with `cargo bench -p session-postgres`. Cases: read, renewing read,
//! write (`set`), compare-and-set, create and delete of ~1 KiB sessions
//! among 10,000, at 1 task (5,000 operations) and 16 concurrent tasks
//! (20,000 operations); and cleanup of 50,000 expired rows spread evenly
//! through 100,000 (every other row), with the latency of reads running
//! during it. The compare-and-set writes the value it expects (every row
//! holds the same 1 KiB), so every call compares all 1,024 bytes and
//! writes, as a save of a session that changed nothing else meanwhile.
//! The raw side is the one-statement-per-operation floor: a pool of the
//! same size (a semaphore and a LIFO stack of connections, each with its
//! statements prepared once), one statement per call. Each operation case
//! runs 5 rounds, store and raw back to back (alternating which goes
//! first); the tables give the medians of ops/s, p50 and p99, and the ratio
//! is the median of the rounds' ratios (store ops/s over raw ops/s).
//! Cleanup: 10 rounds; the time is the median of the rounds, the read
//! latencies are those of all rounds' reads pooled (4 tasks, each at most
//! one read a millisecond, from 300 ms before the cleanup to 300 ms after
//! it; the reads before and after are those without a cleanup). Prints
//! Markdown tables, as in `docs/performance.md`.
//! Without `--bench` (`cargo test --benches`) it measures nothing and
//! touches no database.

use session_test_support::bench::{
    Measured, Op, ReadsAround, comparison_row_with_p50, fmt_count, fmt_latency, fmt_rate, median,
    reads_around, run_tasks,
};
use std::sync::Arc;
use std::time::{Duration, Instant};

use session_core::{Bytes, Store};
use session_postgres::{PostgresConfig, PostgresStore};
use tokio_postgres::{Client, Statement};

const SESSIONS: usize = 10_000;
const VALUE_LEN: usize = 1024;
const POOL: usize = 16;
const CLEANUP_ROWS: usize = 100_000;
/// Rounds per operation case, store and raw back to back; medians reported.
const ROUNDS: usize = 5;
/// Operations per run at 1 task, and at [`POOL`] tasks.
const OPS_ALONE: usize = 5_000;
const OPS_CONCURRENT: usize = 20_000;
/// Rounds of the cleanup case (each repopulates 100,000 rows).
const CLEANUP_ROUNDS: usize = 10;
/// Tasks reading during the cleanup case, each at most one read per
/// [`READ_EVERY`]: a steady load the cleanup must not stall.
const READERS: usize = 4;
const READ_EVERY: Duration = Duration::from_millis(1);
/// How long the readers run before a cleanup and after it, for their
/// latency without one.
const WINDOW: Duration = Duration::from_millis(300);
const DAY: f64 = 86_400.0;

/// One raw connection with its statements, prepared once.
struct RawConn {
    client: Client,
    get: Statement,
    renew: Statement,
    set: Statement,
    compare_and_set: Statement,
    create: Statement,
    delete: Statement,
}

/// The raw side's pool: the minimum a pool does. A semaphore of `POOL`
/// permits and a LIFO stack of connections, each with its statements
/// prepared once.
struct Raw {
    permits: tokio::sync::Semaphore,
    idle: std::sync::Mutex<Vec<RawConn>>,
}

/// A connection taken from [`Raw`], put back on drop.
struct Checkout<'a> {
    raw: &'a Raw,
    conn: Option<RawConn>,
    _permit: tokio::sync::SemaphorePermit<'a>,
}

impl std::ops::Deref for Checkout<'_> {
    type Target = RawConn;
    fn deref(&self) -> &RawConn {
        self.conn.as_ref().expect("checked out")
    }
}

impl Drop for Checkout<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.raw.idle.lock().expect("pool lock").push(conn);
        }
    }
}

impl Raw {
    async fn connect(url: &str, table: &str) -> Raw {
        let mut conns = Vec::with_capacity(POOL);
        for _ in 0..POOL {
            let client = session_test_support::connect(url).await.expect("connect");
            let prepare = |sql: String| {
                let client = &client;
                async move { client.prepare(&sql).await.expect("prepare") }
            };
            let get = prepare(format!(
                "SELECT data FROM {table} WHERE session_id = $1 \
                 AND (expires_at IS NULL OR expires_at > now())"
            ))
            .await;
            let renew = prepare(format!(
                "UPDATE {table} SET expires_at = now() + $2::float8 * interval '1 second' \
                 WHERE session_id = $1 AND expires_at > now() RETURNING data"
            ))
            .await;
            let set = prepare(format!(
                "INSERT INTO {table} (session_id, data, expires_at) \
                 VALUES ($1, $2, now() + $3::float8 * interval '1 second') \
                 ON CONFLICT (session_id) DO UPDATE SET data = EXCLUDED.data, \
                 expires_at = EXCLUDED.expires_at, updated_at = now()"
            ))
            .await;
            let compare_and_set = prepare(format!(
                "UPDATE {table} SET data = $3, \
                 expires_at = now() + $4::float8 * interval '1 second', updated_at = now() \
                 WHERE session_id = $1 AND data = $2 \
                 AND (expires_at IS NULL OR expires_at > now())"
            ))
            .await;
            let create = prepare(format!(
                "INSERT INTO {table} (session_id, data, expires_at) \
                 VALUES ($1, $2, now() + $3::float8 * interval '1 second') \
                 ON CONFLICT (session_id) DO NOTHING"
            ))
            .await;
            let delete = prepare(format!("DELETE FROM {table} WHERE session_id = $1")).await;
            conns.push(RawConn {
                client,
                get,
                renew,
                set,
                compare_and_set,
                create,
                delete,
            });
        }
        Raw {
            permits: tokio::sync::Semaphore::new(POOL),
            idle: std::sync::Mutex::new(conns),
        }
    }

    async fn get(&self) -> Checkout<'_> {
        let permit = self.permits.acquire().await.expect("semaphore open");
        let conn = self.idle.lock().expect("pool lock").pop();
        Checkout {
            raw: self,
            conn,
            _permit: permit,
        }
    }
}

#[derive(Clone)]
enum Target {
    Store(Arc<PostgresStore>),
    Raw(Arc<Raw>),
}

impl Target {
    async fn run(&self, op: Op, key: &str, value: &Bytes) {
        let ttl = Some(Duration::from_secs(DAY as u64));
        match self {
            Target::Store(s) => match op {
                Op::Read => drop(s.get(key, None).await.expect("get")),
                Op::RenewingRead => drop(s.get(key, ttl).await.expect("renewing get")),
                Op::Write => s.set(key, value.clone(), ttl).await.expect("set"),
                Op::CompareAndSet => assert!(
                    s.compare_and_set(key, value.clone(), value.clone(), ttl)
                        .await
                        .expect("compare_and_set")
                ),
                Op::Create => assert!(s.create(key, value.clone(), ttl).await.expect("create")),
                Op::Delete => s.delete(key).await.expect("delete"),
            },
            Target::Raw(r) => {
                let c = r.get().await;
                let data: &[u8] = value;
                match op {
                    Op::Read => {
                        let row = c.client.query_opt(&c.get, &[&key]).await.expect("get");
                        drop(row.map(|r| Bytes::copy_from_slice(r.get::<_, &[u8]>(0))));
                    }
                    Op::RenewingRead => {
                        let row = c
                            .client
                            .query_opt(&c.renew, &[&key, &DAY])
                            .await
                            .expect("renew");
                        drop(row.map(|r| Bytes::copy_from_slice(r.get::<_, &[u8]>(0))));
                    }
                    Op::Write => {
                        c.client
                            .execute(&c.set, &[&key, &data, &DAY])
                            .await
                            .expect("set");
                    }
                    Op::CompareAndSet => {
                        let n = c
                            .client
                            .execute(&c.compare_and_set, &[&key, &data, &data, &DAY])
                            .await
                            .expect("compare_and_set");
                        assert_eq!(n, 1);
                    }
                    Op::Create => {
                        let n = c
                            .client
                            .execute(&c.create, &[&key, &data, &DAY])
                            .await
                            .expect("create");
                        assert_eq!(n, 1);
                    }
                    Op::Delete => {
                        c.client.execute(&c.delete, &[&key]).await.expect("delete");
                    }
                }
            }
        }
    }
}

async fn measure(target: &Target, op: Op, tasks: usize, ops: usize, tag: &str) -> Measured {
    let value = Bytes::from(vec![0xab; VALUE_LEN]);
    let (target, tag) = (target.clone(), tag.to_owned());
    run_tasks(tasks, ops / tasks, move |t, i, random| {
        let key = match op {
            Op::Read | Op::RenewingRead | Op::Write | Op::CompareAndSet => {
                format!("s{}", random % SESSIONS as u64)
            }
            Op::Create | Op::Delete => format!("{tag}_{t}_{i}"),
        };
        let (target, value) = (target.clone(), value.clone());
        async move { target.run(op, &key, &value).await }
    })
    .await
}

async fn populate(client: &Client, table: &str, rows: usize, expired_every_other: bool) {
    let expiry = if expired_every_other {
        "CASE WHEN i % 2 = 0 THEN now() - interval '1 hour' ELSE now() + interval '1 day' END"
    } else {
        "now() + interval '1 day'"
    };
    client
        .batch_execute(&format!(
            "TRUNCATE {table};
             INSERT INTO {table} (session_id, data, expires_at)
               SELECT 's' || i, decode(repeat('ab', {VALUE_LEN}), 'hex'), {expiry}
               FROM generate_series(0, {}) i;",
            rows - 1
        ))
        .await
        .expect("populate");
    vacuum(client, table).await;
}

/// Rows keyed `<tag>_<task>_<i>` for the delete case to remove.
async fn populate_for_delete(client: &Client, table: &str, tag: &str, tasks: usize, ops: usize) {
    let per_task = ops / tasks;
    client
        .batch_execute(&format!(
            "INSERT INTO {table} (session_id, data, expires_at)
               SELECT '{tag}_' || t || '_' || i, decode(repeat('ab', {VALUE_LEN}), 'hex'),
                      now() + interval '1 day'
               FROM generate_series(0, {}) t, generate_series(0, {}) i;",
            tasks - 1,
            per_task - 1
        ))
        .await
        .expect("populate for delete");
    vacuum(client, table).await;
}

/// Both sides start each case from a vacuumed, analysed table.
async fn vacuum(client: &Client, table: &str) {
    client
        .batch_execute(&format!("VACUUM ANALYZE {table}"))
        .await
        .expect("vacuum");
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` (or
    // `--all-targets`) runs this binary without it, and then it only says so
    // instead of measuring on the shared database.
    if !std::env::args().any(|a| a == "--bench") {
        println!("postgres_vs_raw: run with `cargo bench -p session-postgres` to measure");
        return;
    }
    let url = match session_test_support::pg_url() {
        Ok(url) => url,
        Err(reason) => {
            println!("benchmark skipped: {reason}");
            return;
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    // `cargo bench -p session-postgres -- cleanup` runs the cases whose
    // name holds the word given.
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    runtime.block_on(bench(&url, filter.as_deref().unwrap_or("")));
}

async fn bench(url: &str, filter: &str) {
    let admin = session_test_support::connect(url).await.expect("connect");
    let store_table = session_test_support::unique_table_name("bench_store");
    let raw_table = session_test_support::unique_table_name("bench_raw");
    // Like with like: the raw side connects without TLS, so the store
    // does too (its default, libpq's `prefer`, would use TLS on a server
    // that offers it).
    let store_url = if url.contains("://") {
        let sep = if url.contains('?') { '&' } else { '?' };
        format!("{url}{sep}sslmode=disable")
    } else {
        format!("{url} sslmode=disable")
    };
    let make_store = |table: &str| {
        PostgresStore::from_url(
            &store_url,
            PostgresConfig {
                table: table.to_owned(),
                pool_size: POOL as u32,
                // `CLEANUP_BATCH=n` tries another cleanup batch size.
                cleanup_batch_size: std::env::var("CLEANUP_BATCH")
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(PostgresConfig::default().cleanup_batch_size),
                ..PostgresConfig::default()
            },
        )
        .expect("store")
    };
    let store = Arc::new(make_store(&store_table));
    store.create_table().await.expect("create table");
    // The raw side's table is identical: the same DDL.
    for ddl in make_store(&raw_table).ddl() {
        admin.batch_execute(&ddl).await.expect("raw ddl");
    }
    let raw = Arc::new(Raw::connect(url, &raw_table).await);
    let targets = [
        ("raw", Target::Raw(raw), raw_table.clone()),
        ("store", Target::Store(store.clone()), store_table.clone()),
    ];

    for (_, _, table) in &targets {
        populate(&admin, table, SESSIONS, false).await;
    }
    // Warm up: every statement prepared, the pool filled, caches hot.
    for (name, target, _) in &targets {
        for op in [Op::Read, Op::RenewingRead, Op::Write, Op::CompareAndSet] {
            measure(target, op, POOL, 2_000, &format!("warm_{name}")).await;
        }
    }
    println!(
        "| case | tasks | store ops/s | store p50 | store p99 | raw ops/s | raw p50 | raw p99 | store/raw |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    let mut case_id = 0;
    for op in Op::ALL {
        if !op.name().contains(filter) {
            continue;
        }
        for tasks in [1, POOL] {
            let ops = if tasks == 1 {
                OPS_ALONE
            } else {
                OPS_CONCURRENT
            };
            // rounds[side] holds (ops/s, p99) of each round.
            let mut rounds: [Vec<Measured>; 2] = [Vec::new(), Vec::new()];
            for round in 0..ROUNDS {
                // Back to back, alternating which side goes first.
                let order: [usize; 2] = if round % 2 == 0 { [0, 1] } else { [1, 0] };
                for side in order {
                    let (_, target, table) = &targets[side];
                    case_id += 1;
                    let tag = format!("c{case_id}");
                    if op == Op::Delete {
                        populate_for_delete(&admin, table, &tag, tasks, ops).await;
                    }
                    rounds[side].push(measure(target, op, tasks, ops, &tag).await);
                }
            }
            println!(
                "{}",
                comparison_row_with_p50(op.name(), tasks, &rounds[1], &rounds[0])
            );
        }
    }

    if "cleanup".contains(filter) {
        cleanup(&admin, &store, &store_table, &raw_table, &make_store).await;
    }

    admin
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS {store_table}; DROP TABLE IF EXISTS {raw_table};"
        ))
        .await
        .expect("drop bench tables");
}

/// The cleanup case: 50,000 expired rows spread through 100,000, removed by
/// the store's `delete_expired` (its batches) and by one raw `DELETE`, each
/// while [`READERS`] tasks read live sessions through a store, from
/// [`WINDOW`] before the cleanup to [`WINDOW`] after it (the reads without
/// a cleanup). Latencies are pooled over the rounds ([`ReadsAround`]).
async fn cleanup(
    admin: &Client,
    store: &Arc<PostgresStore>,
    store_table: &str,
    raw_table: &str,
    make_store: &dyn Fn(&str) -> PostgresStore,
) {
    // Readers of each table, through a store of their own.
    let readers = [
        Arc::new(make_store(raw_table)),
        Arc::new(make_store(store_table)),
    ];
    let mut times: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    let mut reads: [ReadsAround; 2] = Default::default();
    for round in 0..CLEANUP_ROUNDS {
        let order: [usize; 2] = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for side in order {
            let table = if side == 0 { raw_table } else { store_table };
            populate(admin, table, CLEANUP_ROWS, true).await;
            let read = {
                let reader = readers[side].clone();
                move |_task: usize, random: u64| {
                    let reader = reader.clone();
                    async move {
                        let key = format!("s{}", (random % (CLEANUP_ROWS as u64 / 2)) * 2 + 1);
                        let found = reader.get(&key, None).await.expect("read during cleanup");
                        assert!(found.is_some(), "live session {key} not found");
                    }
                }
            };
            // Warm the readers' connections.
            let _ = reads_around(READERS, Some(READ_EVERY), WINDOW / 4, read.clone(), async {
            })
            .await;
            let (round_reads, (elapsed, removed)) =
                reads_around(READERS, Some(READ_EVERY), WINDOW, read, async {
                    let started = Instant::now();
                    let removed = if side == 0 {
                        admin
                            .execute(
                                &format!("DELETE FROM {table} WHERE expires_at <= now()"),
                                &[],
                            )
                            .await
                            .expect("raw cleanup")
                    } else {
                        store.delete_expired().await.expect("store cleanup")
                    };
                    (started.elapsed(), removed)
                })
                .await;
            assert_eq!(removed, (CLEANUP_ROWS / 2) as u64);
            times[side].push(elapsed.as_secs_f64());
            reads[side].add_round(&round_reads);
        }
    }
    let time =
        |side: usize| fmt_latency(Duration::from_secs_f64(median(times[side].iter().copied())));
    let time_ratio = median(times[1].iter().zip(&times[0]).map(|(s, r)| s / r));
    let [raw, ours] = &reads;
    println!();
    println!(
        "| cleanup: 50,000 expired spread through 100,000 rows | store (batches of {}) | raw (one DELETE) | store/raw |",
        fmt_rate(f64::from(store.config().cleanup_batch_size))
    );
    println!("| --- | ---: | ---: | ---: |");
    println!(
        "| time (median of {CLEANUP_ROUNDS} rounds; ratio: median of the rounds' store time / raw time) | {} | {} | {time_ratio:.2} |",
        time(1),
        time(0),
    );
    println!(
        "| reads without / during the cleanup (all rounds) | {} / {} | {} / {} | |",
        fmt_count(ours.counts().0 as u64),
        fmt_count(ours.counts().1 as u64),
        fmt_count(raw.counts().0 as u64),
        fmt_count(raw.counts().1 as u64),
    );
    for pct in [50, 99] {
        println!(
            "| read p{pct} without a cleanup | {} | {} | |",
            fmt_latency(ours.without(pct)),
            fmt_latency(raw.without(pct))
        );
        println!(
            "| read p{pct} during the cleanup (x without) | {} ({:.2}x) | {} ({:.2}x) | |",
            fmt_latency(ours.during(pct)),
            ours.during(pct).as_secs_f64() / ours.without(pct).as_secs_f64(),
            fmt_latency(raw.during(pct)),
            raw.during(pct).as_secs_f64() / raw.without(pct).as_secs_f64(),
        );
    }
    let ((ours_lo, ours_hi), (raw_lo, raw_hi)) = (ours.round_ratios(), raw.round_ratios());
    println!(
        "| one round's p99 during / without: lowest to highest | {ours_lo:.2}x to {ours_hi:.2}x | {raw_lo:.2}x to {raw_hi:.2}x | |"
    );
}
