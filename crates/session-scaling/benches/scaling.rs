//! The scaling benchmark: see the crate docs (`src/lib.rs`) and
//! `docs/scaling.md`. Run with `cargo bench -p session-scaling`; without
//! `--bench` it prints one line and touches no database.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use session_core::{Store, StoreAdmin};
use session_postgres::{PostgresConfig, PostgresStore};
use session_redis::{RedisConfig, RedisStore};
use session_sqlite::{SqliteConfig, SqliteStore, rusqlite};
use session_test_support::bench::{
    Measured, fmt_count, fmt_latency, fmt_rate, median, next, percentile, run_tasks,
};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::Type;

const VALUE_LEN: usize = 1024;
const TTL: Duration = Duration::from_secs(86_400);
/// KiB per session the estimates assume: 1 KiB of data plus the key, row
/// and index overhead, as measured (docs/scaling.md: 1,400 MiB per million
/// on SQLite, 1,661 on PostgreSQL, 1,389 to 1,406 on Redis), rounded up.
fn kib_per_session(backend: Backend) -> f64 {
    match backend {
        Backend::Sqlite | Backend::Redis => 1.5,
        Backend::Postgres => 1.75,
    }
}
const GIB: f64 = 1024.0 * 1024.0 * 1024.0;
/// Rows per SQLite load transaction: one transaction per million rows keeps
/// the WAL to about a million rows' worth.
const SQLITE_LOAD_TX: u64 = 1_000_000;
/// Keys per Redis pipeline.
const REDIS_BATCH: u64 = 1_000;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Backend {
    Sqlite,
    Postgres,
    Redis,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
            Backend::Redis => "redis",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
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

struct Settings {
    sizes: Vec<u64>,
    backends: Vec<Backend>,
    rounds: usize,
    ops: usize,
}

fn settings() -> Settings {
    let sizes = std::env::var("SCALING_SIZES")
        .unwrap_or_else(|_| "10000,1000000,10000000".into())
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| {
            s.trim()
                .replace('_', "")
                .parse::<u64>()
                .expect("SCALING_SIZES: numbers separated by commas")
        })
        .collect();
    let backends = std::env::var("SCALING_BACKENDS")
        .unwrap_or_else(|_| "sqlite,postgres,redis".into())
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| match s.trim() {
            "sqlite" => Backend::Sqlite,
            "postgres" => Backend::Postgres,
            "redis" => Backend::Redis,
            other => panic!("SCALING_BACKENDS: unknown backend {other:?}"),
        })
        .collect();
    let number = |var: &str, default: usize| {
        std::env::var(var).map_or(default, |v| {
            v.trim()
                .parse()
                .unwrap_or_else(|_| panic!("{var}: a number"))
        })
    };
    Settings {
        sizes,
        backends,
        rounds: number("SCALING_ROUNDS", 3),
        ops: number("SCALING_OPS", 5_000),
    }
}

/// splitmix64: a well-mixed 64-bit value of `x`.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The key of loaded session `i` of `n`: 64 hex digits like a real session
/// id, spread evenly over the key space, and in key order as `i` grows (so
/// the load appends to the primary-key index instead of splitting pages at
/// random, while lookups still land anywhere in it).
fn loaded_key(i: u64, n: u64) -> String {
    let stride = u64::MAX / n.max(1);
    format!(
        "{:016x}{:016x}{:016x}{:016x}",
        i * stride,
        mix(i ^ 0x1111),
        mix(i ^ 0x2222),
        mix(i ^ 0x3333)
    )
}

/// A fresh key for the create (and then delete) case: random over the key
/// space, like a newly generated session id.
fn fresh_key(tag: u64, task: usize, i: usize) -> String {
    let seed = (tag << 40) ^ ((task as u64) << 24) ^ i as u64;
    format!(
        "{:016x}{:016x}{:016x}{:016x}",
        mix(seed ^ 0xaaaa),
        mix(seed ^ 0xbbbb),
        mix(seed ^ 0xcccc),
        mix(seed ^ 0xdddd)
    )
}

/// Every 4th loaded session is expired.
fn is_expired(i: u64) -> bool {
    i % 4 == 3
}

/// A live loaded session drawn from `random`.
fn live_index(random: u64, n: u64) -> u64 {
    let i = random % n;
    if is_expired(i) { i - 1 } else { i }
}

fn value() -> Bytes {
    Bytes::from(vec![0xab; VALUE_LEN])
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

/// Available bytes on the file system holding `path`, from `df -Pk`.
fn disk_available(path: &Path) -> Option<f64> {
    let out = std::process::Command::new("df")
        .arg("-Pk")
        .arg(path)
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let line = text.lines().nth(1)?;
    let kib: f64 = line.split_whitespace().nth(3)?.parse().ok()?;
    Some(kib * 1024.0)
}

/// `MemAvailable` from `/proc/meminfo`, in bytes.
fn memory_available() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024.0)
}

fn gib(bytes: f64) -> String {
    format!("{:.2} GiB", bytes / GIB)
}

fn mib(bytes: f64) -> String {
    format!("{:.0} MiB", bytes / (1024.0 * 1024.0))
}

/// Whether `n` sessions fit; prints what they need and why not.
fn fits(backend: Backend, n: u64, disk_path: &Path) -> bool {
    let per = kib_per_session(backend);
    let need = n as f64 * per * 1024.0;
    let (what, place, available, unknown) = match backend {
        Backend::Redis => (
            "memory",
            String::new(),
            memory_available(),
            "cannot read /proc/meminfo".to_owned(),
        ),
        Backend::Sqlite | Backend::Postgres => (
            "disk",
            format!(" on {}", disk_path.display()),
            disk_available(disk_path),
            format!("`df` did not answer for {}", disk_path.display()),
        ),
    };
    let label = if what == "memory" {
        "MemAvailable"
    } else {
        "available"
    };
    println!(
        "{} at {} sessions needs about {} of {what} (estimate: {} × {per} KiB){place}; {label} {}",
        backend.name(),
        fmt_count(n),
        gib(need),
        fmt_count(n),
        available.map_or("unknown".into(), gib)
    );
    match available {
        Some(a) if a >= need * 1.2 + GIB => true,
        Some(a) => {
            println!(
                "skipped {} at {}: needs {} (+20% and 1 GiB headroom), only {} available",
                backend.name(),
                fmt_count(n),
                gib(need),
                gib(a)
            );
            false
        }
        None => {
            println!("skipped: {unknown}");
            false
        }
    }
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!(
            "scaling: run with `cargo bench -p session-scaling` to measure (see docs/scaling.md)"
        );
        return;
    }
    let settings = settings();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(bench(settings));
}

async fn bench(settings: Settings) {
    println!(
        "scaling: sizes {:?}, backends {:?}, {} rounds × {} ops per case",
        settings.sizes,
        settings
            .backends
            .iter()
            .map(|b| b.name())
            .collect::<Vec<_>>(),
        settings.rounds,
        settings.ops
    );
    let mut results = Vec::new();
    for &n in &settings.sizes {
        for &backend in &settings.backends {
            if let Some(r) = run_size(backend, n, &settings).await {
                results.push(r);
            }
        }
    }
    println!();
    println!("## Summary");
    println!();
    println!(
        "| backend | sessions | load | storage | per million | cleanup removed | cleanup time | rows/s | read p99 during cleanup (reads) |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for r in &results {
        println!(
            "| {} | {} | {:.1} s | {} | {} | {} | {} | {} | {} |",
            r.backend.name(),
            fmt_count(r.n),
            r.load.as_secs_f64(),
            mib(r.storage),
            mib(r.storage_per_million),
            r.cleanup
                .as_ref()
                .map_or("n/a".into(), |c| fmt_count(c.removed)),
            r.cleanup
                .as_ref()
                .map_or("n/a".into(), |c| format!("{:.2} s", c.time.as_secs_f64())),
            r.cleanup.as_ref().map_or("n/a".into(), |c| fmt_rate(
                c.removed as f64 / c.time.as_secs_f64()
            )),
            r.cleanup.as_ref().map_or("n/a".into(), |c| format!(
                "{} ({})",
                fmt_latency(c.read_p99),
                fmt_count(c.reads)
            )),
        );
    }
}

struct Cleanup {
    removed: u64,
    time: Duration,
    read_p99: Duration,
    reads: u64,
}

struct SizeResult {
    backend: Backend,
    n: u64,
    load: Duration,
    storage: f64,
    storage_per_million: f64,
    cleanup: Option<Cleanup>,
}

/// A store under test, and what is left to remove when it is done.
struct Loaded {
    store: Arc<dyn StoreAdmin>,
    load: Duration,
    /// Bytes stored and the number of sessions they hold.
    storage: (f64, u64),
    teardown: Teardown,
    probe: Probe,
}

/// Where the server's own counters are read, to explain the figures.
#[derive(Clone)]
enum Probe {
    None,
    /// `pg_statio_user_tables` of the table: blocks found in shared_buffers
    /// and blocks read from outside (the OS page cache or the disk).
    Postgres {
        url: String,
        table: String,
    },
    /// `DBSIZE` and `INFO stats` `expired_keys`: Redis's own expiry at work.
    Redis {
        url: String,
    },
}

impl Probe {
    async fn snapshot(&self) -> Option<[i64; 4]> {
        match self {
            Probe::None => None,
            Probe::Postgres { url, table } => {
                let client = session_test_support::connect(url).await.ok()?;
                let row = client
                    .query_one(
                        "SELECT coalesce(heap_blks_read, 0), coalesce(heap_blks_hit, 0), \
                         coalesce(idx_blks_read, 0), coalesce(idx_blks_hit, 0) \
                         FROM pg_statio_user_tables WHERE relname = $1",
                        &[table],
                    )
                    .await
                    .ok()?;
                Some([row.get(0), row.get(1), row.get(2), row.get(3)])
            }
            Probe::Redis { url } => {
                let client = redis::Client::open(url.as_str()).ok()?;
                let mut conn = client.get_multiplexed_async_connection().await.ok()?;
                let keys = redis_dbsize(&mut conn).await.ok()? as i64;
                let info: String = redis::cmd("INFO")
                    .arg("stats")
                    .query_async(&mut conn)
                    .await
                    .ok()?;
                let expired = info
                    .lines()
                    .find_map(|l| l.strip_prefix("expired_keys:"))
                    .and_then(|v| v.trim().parse::<i64>().ok())?;
                Some([keys, expired, 0, 0])
            }
        }
    }
}

enum Teardown {
    Postgres { url: String, tables: Vec<String> },
    Sqlite { dir: PathBuf },
    Redis(session_test_support::redis::ThrowawayRedis),
}

impl Teardown {
    fn run(self) {
        match self {
            Teardown::Postgres { url, tables } => {
                if let Err(e) = session_test_support::drop_tables_blocking(&url, &tables) {
                    println!("could not drop {tables:?}: {e}");
                }
            }
            Teardown::Sqlite { dir } => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Teardown::Redis(server) => drop(server),
        }
    }
}

async fn run_size(backend: Backend, n: u64, settings: &Settings) -> Option<SizeResult> {
    println!();
    println!("### {} at {} sessions", backend.name(), fmt_count(n));
    let disk_path = match backend {
        Backend::Postgres => postgres_data_dir().await,
        _ => std::env::temp_dir(),
    };
    if !fits(backend, n, &disk_path) {
        return None;
    }
    let loaded = match backend {
        Backend::Postgres => load_postgres(n).await,
        Backend::Sqlite => load_sqlite(n).await,
        Backend::Redis => load_redis(n).await,
    };
    let loaded = match loaded {
        Ok(l) => l,
        Err(why) => {
            println!("skipped {} at {}: {why}", backend.name(), fmt_count(n));
            return None;
        }
    };
    let (bytes, sessions) = loaded.storage;
    let per_million = bytes / sessions.max(1) as f64 * 1e6;
    println!(
        "loaded in {:.1} s; storage {} for {} sessions: {} per million",
        loaded.load.as_secs_f64(),
        mib(bytes),
        fmt_count(sessions),
        mib(per_million)
    );
    let store = loaded.store.clone();
    measure_ops(&store, backend, n, settings, &loaded.probe).await;
    let cleanup = measure_cleanup(&store, backend, n).await;
    drop(store);
    let result = SizeResult {
        backend,
        n,
        load: loaded.load,
        storage: bytes,
        storage_per_million: per_million,
        cleanup,
    };
    drop(loaded.store);
    tokio::task::spawn_blocking(move || loaded.teardown.run())
        .await
        .expect("teardown");
    Some(result)
}

async fn measure_ops(
    store: &Arc<dyn StoreAdmin>,
    backend: Backend,
    n: u64,
    settings: &Settings,
    probe: &Probe,
) {
    // Warm up: pool filled, statements prepared.
    run_case(store, Op::Read, 16, 2_000, n, 0).await;
    let ops_started = Instant::now();
    let before_ops = probe.snapshot().await;
    // Where the pages of the 1-task reads came from (PostgreSQL): the
    // counters are flushed by idle backends within 10 s, hence the waits.
    if let Probe::Postgres { .. } = probe {
        tokio::time::sleep(Duration::from_secs(11)).await;
        let before = probe.snapshot().await;
        let reads = settings.rounds * settings.ops;
        for _ in 0..settings.rounds {
            run_case(store, Op::Read, 1, settings.ops, n, 0).await;
        }
        tokio::time::sleep(Duration::from_secs(11)).await;
        if let (Some(b), Some(a)) = (before, probe.snapshot().await) {
            let per = |i: usize| (a[i] - b[i]) as f64 / reads as f64;
            println!(
                "postgres {} sessions, {} reads at 1 task, blocks per read: table {:.2} from outside shared_buffers + {:.2} hit, index {:.2} outside + {:.2} hit",
                fmt_count(n),
                fmt_count(reads as u64),
                per(0),
                per(1),
                per(2),
                per(3)
            );
        }
    }
    println!();
    println!("| backend | sessions | case | tasks | ops/s | p50 | p99 |");
    println!("| --- | ---: | --- | ---: | ---: | ---: | ---: |");
    let mut tag = 1_u64;
    let print = |op: Op, tasks: usize, rounds: &[Measured]| {
        println!(
            "| {} | {} | {} | {tasks} | {} | {} | {} |",
            backend.name(),
            fmt_count(n),
            op.name(),
            fmt_rate(median(rounds.iter().map(|m| m.ops_per_sec))),
            fmt_latency(Duration::from_secs_f64(median(
                rounds.iter().map(|m| m.p50.as_secs_f64())
            ))),
            fmt_latency(Duration::from_secs_f64(median(
                rounds.iter().map(|m| m.p99.as_secs_f64())
            ))),
        );
    };
    for op in [Op::Read, Op::RenewingRead, Op::Write] {
        for tasks in [1, 16] {
            let mut rounds = Vec::new();
            for _ in 0..settings.rounds {
                rounds.push(run_case(store, op, tasks, settings.ops, n, 0).await);
            }
            print(op, tasks, &rounds);
        }
    }
    // Create, then delete the very keys created (fresh random ids).
    for tasks in [1, 16] {
        let (mut creates, mut deletes) = (Vec::new(), Vec::new());
        for _ in 0..settings.rounds {
            tag += 1;
            creates.push(run_case(store, Op::Create, tasks, settings.ops, n, tag).await);
            deletes.push(run_case(store, Op::Delete, tasks, settings.ops, n, tag).await);
        }
        print(Op::Create, tasks, &creates);
        print(Op::Delete, tasks, &deletes);
    }
    if let (Probe::Redis { .. }, Some(b), Some(a)) = (probe, before_ops, probe.snapshot().await) {
        println!(
            "redis during the {:.0} s of operations: keys {} -> {}, expired_keys +{}",
            ops_started.elapsed().as_secs_f64(),
            fmt_count(b[0] as u64),
            fmt_count(a[0] as u64),
            fmt_count((a[1] - b[1]) as u64)
        );
    }
}

async fn run_case(
    store: &Arc<dyn StoreAdmin>,
    op: Op,
    tasks: usize,
    ops: usize,
    n: u64,
    tag: u64,
) -> Measured {
    let store = store.clone();
    let value = value();
    run_tasks(tasks, ops / tasks, move |task, i, random| {
        let (store, value) = (store.clone(), value.clone());
        async move {
            match op {
                Op::Read => {
                    let key = loaded_key(live_index(random, n), n);
                    drop(store.get(&key, None).await.expect("get"));
                }
                Op::RenewingRead => {
                    let key = loaded_key(live_index(random, n), n);
                    drop(store.get(&key, Some(TTL)).await.expect("renewing get"));
                }
                Op::Write => {
                    let key = loaded_key(live_index(random, n), n);
                    store.set(&key, value, Some(TTL)).await.expect("set");
                }
                Op::Create => {
                    let key = fresh_key(tag, task, i);
                    assert!(store.create(&key, value, Some(TTL)).await.expect("create"));
                }
                Op::Delete => {
                    let key = fresh_key(tag, task, i);
                    store.delete(&key).await.expect("delete");
                }
            }
        }
    })
    .await
}

/// One `StoreAdmin::cleanup` of the expired quarter, with one task reading
/// live sessions back to back meanwhile.
async fn measure_cleanup(store: &Arc<dyn StoreAdmin>, backend: Backend, n: u64) -> Option<Cleanup> {
    if backend == Backend::Redis {
        println!();
        println!("cleanup: n/a (Redis expires keys itself)");
        return None;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (store, stop) = (store.clone(), stop.clone());
        tokio::spawn(async move {
            let mut seed = 0x5eed_u64;
            let mut latencies = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let key = loaded_key(live_index(next(&mut seed), n), n);
                let t0 = Instant::now();
                drop(store.get(&key, None).await.expect("get during cleanup"));
                latencies.push(t0.elapsed());
            }
            latencies
        })
    };
    // Let the reader start.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let started = Instant::now();
    let removed = store.cleanup().await.expect("cleanup").unwrap_or(0);
    let time = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let mut latencies = reader.await.expect("reader");
    latencies.sort_unstable();
    let read_p99 = if latencies.is_empty() {
        Duration::ZERO
    } else {
        percentile(&latencies, 99)
    };
    let read_p50 = if latencies.is_empty() {
        Duration::ZERO
    } else {
        percentile(&latencies, 50)
    };
    println!();
    println!(
        "| backend | sessions | cleanup removed | time | rows/s | reads during it | read p50 | read p99 |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    println!(
        "| {} | {} | {} | {:.2} s | {} | {} | {} | {} |",
        backend.name(),
        fmt_count(n),
        fmt_count(removed),
        time.as_secs_f64(),
        fmt_rate(removed as f64 / time.as_secs_f64()),
        fmt_count(latencies.len() as u64),
        fmt_latency(read_p50),
        fmt_latency(read_p99),
    );
    Some(Cleanup {
        removed,
        time,
        read_p99,
        reads: latencies.len() as u64,
    })
}

/// The server's data directory if this user may read the setting (on the
/// same machine, as `pg_url` finds it), else the temporary directory.
async fn postgres_data_dir() -> PathBuf {
    let Ok(url) = session_test_support::pg_url() else {
        return std::env::temp_dir();
    };
    let Ok(client) = session_test_support::connect(&url).await else {
        return std::env::temp_dir();
    };
    match client.query_one("SHOW data_directory", &[]).await {
        Ok(row) => PathBuf::from(row.get::<_, String>(0)),
        Err(_) => std::env::temp_dir(),
    }
}

async fn load_postgres(n: u64) -> Result<Loaded, String> {
    let url = session_test_support::pg_url()?;
    let client = session_test_support::connect(&url)
        .await
        .map_err(|e| e.to_string())?;
    for setting in ["shared_buffers", "max_connections"] {
        if let Ok(row) = client.query_one(&format!("SHOW {setting}"), &[]).await {
            println!("postgres {setting} = {}", row.get::<_, String>(0));
        }
    }
    let table = session_test_support::unique_table_name("scaling");
    let teardown = Teardown::Postgres {
        url: url.clone(),
        tables: vec![table.clone(), format!("{table}_migrations")],
    };
    let store = PostgresStore::from_url(
        &url,
        PostgresConfig {
            table: table.clone(),
            ..PostgresConfig::default()
        },
    )
    .map_err(|e| e.to_string())?;
    store.migrate().await.map_err(|e| e.to_string())?;
    let started = Instant::now();
    let sink = client
        .copy_in(&format!(
            "COPY {table} (session_id, data, expires_at) FROM STDIN (FORMAT binary)"
        ))
        .await
        .map_err(|e| e.to_string())?;
    let writer = BinaryCopyInWriter::new(sink, &[Type::TEXT, Type::BYTEA, Type::TIMESTAMPTZ]);
    let mut writer = std::pin::pin!(writer);
    let data = vec![0xab_u8; VALUE_LEN];
    let now = SystemTime::now();
    let (live, expired) = (now + TTL, now - Duration::from_secs(3_600));
    for i in 0..n {
        let key = loaded_key(i, n);
        let expires = if is_expired(i) { expired } else { live };
        writer
            .as_mut()
            .write(&[&key, &data.as_slice(), &expires])
            .await
            .map_err(|e| e.to_string())?;
    }
    writer.finish().await.map_err(|e| e.to_string())?;
    let copied = started.elapsed();
    client
        .batch_execute(&format!("VACUUM ANALYZE {table}"))
        .await
        .map_err(|e| e.to_string())?;
    let load = started.elapsed();
    println!(
        "postgres: COPY of {} rows {:.1} s, then VACUUM ANALYZE: {:.1} s in all",
        fmt_count(n),
        copied.as_secs_f64(),
        load.as_secs_f64()
    );
    let row = client
        .query_one(
            &format!(
                "SELECT pg_total_relation_size('{table}'), pg_relation_size('{table}'), \
                 pg_indexes_size('{table}')"
            ),
            &[],
        )
        .await
        .map_err(|e| e.to_string())?;
    let (total, heap, indexes): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
    println!(
        "postgres storage: total {} = table {} + indexes {} (+ TOAST/FSM/VM {})",
        mib(total as f64),
        mib(heap as f64),
        mib(indexes as f64),
        mib((total - heap - indexes) as f64)
    );
    Ok(Loaded {
        store: Arc::new(store),
        load,
        storage: (total as f64, n),
        teardown,
        probe: Probe::Postgres { url, table },
    })
}

async fn load_sqlite(n: u64) -> Result<Loaded, String> {
    let dir = session_test_support::scratch_dir("session-scaling").join(format!("sqlite-{n}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let path = dir.join("sessions.db");
    let store = SqliteStore::open_with(
        path.to_str().ok_or("non-UTF-8 path")?,
        SqliteConfig::default(),
    )
    .map_err(|e| e.to_string())?;
    store.migrate().await.map_err(|e| e.to_string())?;
    let table = store.table().qualified();
    let started = Instant::now();
    let load_path = path.clone();
    tokio::task::spawn_blocking(move || -> rusqlite::Result<()> {
        let mut conn = rusqlite::Connection::open(&load_path)?;
        conn.busy_timeout(Duration::from_secs(30))?;
        conn.pragma_update(None, "cache_size", -262_144)?;
        let data = vec![0xab_u8; VALUE_LEN];
        let now = unix_now();
        let (live, expired) = (now + TTL.as_secs() as i64, now - 3_600);
        let mut start = 0;
        while start < n {
            let end = (start + SQLITE_LOAD_TX).min(n);
            let tx = conn.transaction()?;
            {
                let mut insert = tx.prepare(&format!(
                    "INSERT INTO {table} (session_id, data, expires_at, created_at, updated_at) \
                     VALUES (?1, ?2, ?3, ?4, ?4)"
                ))?;
                for i in start..end {
                    let expires = if is_expired(i) { expired } else { live };
                    insert.execute(rusqlite::params![loaded_key(i, n), &data, expires, now])?;
                }
            }
            tx.commit()?;
            start = end;
        }
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE); ANALYZE;")?;
        Ok(())
    })
    .await
    .expect("load thread")
    .map_err(|e| e.to_string())?;
    let load = started.elapsed();
    let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
    let wal = PathBuf::from(format!("{}-wal", path.display()));
    let (main, wal) = (size(&path), size(&wal));
    println!(
        "sqlite: {} rows in transactions of {} prepared INSERTs, checkpoint and ANALYZE: {:.1} s; file {} + WAL {}",
        fmt_count(n),
        fmt_count(SQLITE_LOAD_TX.min(n)),
        load.as_secs_f64(),
        mib(main as f64),
        mib(wal as f64)
    );
    Ok(Loaded {
        store: Arc::new(store),
        load,
        storage: ((main + wal) as f64, n),
        teardown: Teardown::Sqlite { dir },
        probe: Probe::None,
    })
}

async fn redis_info_used_memory(
    conn: &mut redis::aio::MultiplexedConnection,
) -> Result<f64, String> {
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query_async(conn)
        .await
        .map_err(|e| e.to_string())?;
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .ok_or_else(|| "no used_memory in INFO memory".to_owned())
}

async fn redis_dbsize(conn: &mut redis::aio::MultiplexedConnection) -> Result<u64, String> {
    redis::cmd("DBSIZE")
        .query_async(conn)
        .await
        .map_err(|e| e.to_string())
}

async fn load_redis(n: u64) -> Result<Loaded, String> {
    let server = session_test_support::redis::ThrowawayRedis::start()?;
    let url = server.url();
    println!("redis: a throwaway redis-server at {url}");
    let store = RedisStore::open(&url, RedisConfig::default())
        .await
        .map_err(|e| e.to_string())?;
    let client = redis::Client::open(url.as_str()).map_err(|e| e.to_string())?;
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .map_err(|e| e.to_string())?;
    let baseline = redis_info_used_memory(&mut conn).await?;
    let data = vec![0xab_u8; VALUE_LEN];
    let live_ms = TTL.as_millis() as u64;
    let started = Instant::now();
    let mut start = 0;
    while start < n {
        let end = (start + REDIS_BATCH).min(n);
        let mut pipe = redis::pipe();
        for i in start..end {
            // The expired quarter: written with PX 1, expired by Redis itself.
            let ms = if is_expired(i) { 1 } else { live_ms };
            pipe.cmd("SET")
                .arg(store.redis_key(&loaded_key(i, n)))
                .arg(data.as_slice())
                .arg("PX")
                .arg(ms)
                .ignore();
        }
        pipe.query_async::<()>(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
        start = end;
    }
    let load = started.elapsed();
    let live = n - n / 4;
    // Redis's active expiry removes most of the PX 1 keys within seconds;
    // the last few percent go when sampled or touched. Wait at most 10 s.
    let waited = Instant::now();
    let mut keys = redis_dbsize(&mut conn).await?;
    while keys > live && waited.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(250)).await;
        keys = redis_dbsize(&mut conn).await?;
    }
    let used = redis_info_used_memory(&mut conn).await? - baseline;
    println!(
        "redis: {} pipelined SETs (batches of {REDIS_BATCH}) in {:.1} s; after {:.1} s {} keys remain of {} live; used_memory {} above the empty server's",
        fmt_count(n),
        load.as_secs_f64(),
        waited.elapsed().as_secs_f64(),
        fmt_count(keys),
        fmt_count(live),
        mib(used)
    );
    Ok(Loaded {
        store: Arc::new(store),
        load,
        storage: (used, keys),
        teardown: Teardown::Redis(server),
        probe: Probe::Redis { url },
    })
}
