//! `FileStore` against the raw floor: plain file operations doing the same
//! work on the same bytes, without the store's locks.
//!
//! Run: `cargo bench -p session-file` (about a minute). Without `--bench`
//! (`cargo test --benches`) only the same-work check runs.
//!
//! Same work: the raw side writes and reads the store's own file format
//! (copied below: header, key, value) at the store's paths (SHA-256 of the
//! key, two shard levels), by writing a temporary file in the same
//! directory and renaming it over the session file, and follows the
//! store's rules: an expired file an operation reads is deleted, a write
//! keeps the file's creation time (so it reads the old header first), a
//! renewing read rewrites the file with the new expiry
//! only for a live key that has one, create replaces only a missing or
//! expired file, a compare-and-set writes only over a live file holding the
//! expected bytes. What the raw side leaves out is what makes the store
//! safe across processes: the per-key lock file (open, `flock`, inode
//! check, removal when the session goes), the re-read under the lock, the
//! key check and the key validation. Before measuring, [`check_same_work`]
//! runs every operation on both sides from the same files (live, without
//! expiry, expired, missing; a compare-and-set from the file's value and
//! from a stale one) and fails unless the results and the files after are
//! the same.
//!
//! Fairness: both sides run each operation on tokio's blocking pool
//! through `spawn_blocking`, from the same multi-thread runtime, each side
//! in a directory of its own on the same file system, `fsync` off. Every
//! case runs several rounds, store and raw back to back (alternating which
//! goes first); the medians of the rounds are reported, and the ratio is
//! the median of the rounds' ratios.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use session_core::Store;
use session_file::{FileConfig, FileStore};
use session_test_support::bench::Op;
use sha2::{Digest, Sha256};

const SESSIONS: usize = 10_000;
const OPS: usize = 5_000;
const VALUE_BYTES: usize = 1024;
const ROUNDS: usize = 5;
const TTL: Duration = Duration::from_secs(3600);
const CLEANUP_FILES: usize = 20_000;

// The store's file format (`session-file/src/record.rs`).
const MAGIC: [u8; 8] = *b"SESSFIL\x01";
const HEADER_LEN: usize = 42;

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos() as u64
}

fn encode(key: &str, value: &[u8], expires_at: Option<u64>, created: u64, updated: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + key.len() + value.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&expires_at.unwrap_or(0).to_le_bytes());
    out.extend_from_slice(&created.to_le_bytes());
    out.extend_from_slice(&updated.to_le_bytes());
    out.extend_from_slice(&(key.len() as u16).to_le_bytes());
    out.extend_from_slice(&(value.len() as u64).to_le_bytes());
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(value);
    out
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// A decoded file: (expires_at, created, updated, value).
type Decoded = (Option<u64>, u64, u64, Bytes);

fn decode(bytes: Vec<u8>) -> Decoded {
    assert_eq!(bytes[..8], MAGIC, "not a session file");
    let key_len = usize::from(u16::from_le_bytes([bytes[32], bytes[33]]));
    let expires = match u64_at(&bytes, 8) {
        0 => None,
        at => Some(at),
    };
    let (created, updated) = (u64_at(&bytes, 16), u64_at(&bytes, 24));
    let value = Bytes::from(bytes).slice(HEADER_LEN + key_len..);
    (expires, created, updated, value)
}

fn live(expires: Option<u64>, now: u64) -> bool {
    expires.is_none_or(|at| now < at)
}

fn session_path(root: &Path, key: &str) -> PathBuf {
    let hash = hex::encode(Sha256::digest(key.as_bytes()));
    root.join(&hash[..2])
        .join(&hash[2..4])
        .join(format!("{hash}.session"))
}

/// What an operation returned, for [`check_same_work`].
#[derive(Debug, PartialEq)]
enum Out {
    Data(Option<Bytes>),
    Wrote(bool),
    Done,
}

/// The raw side: the store's files, written by temp file and rename, no
/// locks.
#[derive(Clone)]
struct Raw {
    root: PathBuf,
}

impl Raw {
    fn read(path: &Path) -> Option<Decoded> {
        match fs::read(path) {
            Ok(bytes) => Some(decode(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => panic!("raw read: {e}"),
        }
    }

    /// The header alone (the store's writes read only this).
    fn head(path: &Path) -> Option<(Option<u64>, u64)> {
        let mut file = match fs::File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => panic!("raw open: {e}"),
        };
        let mut head = [0u8; HEADER_LEN];
        file.read_exact(&mut head).expect("raw header");
        let expires = match u64_at(&head, 8) {
            0 => None,
            at => Some(at),
        };
        Some((expires, u64_at(&head, 16)))
    }

    fn remove(path: &Path) {
        match fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => panic!("raw remove: {e}"),
        }
    }

    fn write(path: &Path, bytes: &[u8]) {
        let dir = path.parent().expect("shard dir");
        let temp = path.with_extension(format!("{}.tmp", std::process::id()));
        let mut file = match fs::File::create_new(&temp) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                fs::create_dir_all(dir).expect("raw shard dirs");
                fs::File::create_new(&temp).expect("raw temp")
            }
            Err(e) => panic!("raw temp: {e}"),
        };
        file.write_all(bytes).expect("raw write");
        drop(file);
        fs::rename(&temp, path).expect("raw rename");
    }

    fn run_blocking(root: &Path, op: Op, key: &str, value: &[u8], expected: &[u8]) -> Out {
        let path = session_path(root, key);
        let now = now_ns();
        let exp = Some(now + TTL.as_nanos() as u64);
        match op {
            Op::Read => match Self::read(&path) {
                Some((e, .., v)) if live(e, now) => Out::Data(Some(v)),
                Some(_) => {
                    Self::remove(&path);
                    Out::Data(None)
                }
                None => Out::Data(None),
            },
            Op::RenewingRead => match Self::read(&path) {
                Some((Some(e), created, _, v)) if live(Some(e), now) => {
                    Self::write(&path, &encode(key, &v, exp, created, now));
                    Out::Data(Some(v))
                }
                Some((None, .., v)) => Out::Data(Some(v)),
                Some(_) => {
                    Self::remove(&path);
                    Out::Data(None)
                }
                None => Out::Data(None),
            },
            Op::Write => {
                let created = Self::head(&path).map_or(now, |(_, c)| c);
                Self::write(&path, &encode(key, value, exp, created, now));
                Out::Done
            }
            Op::CompareAndSet => match Self::read(&path) {
                Some((e, created, _, v)) if live(e, now) && v == expected => {
                    Self::write(&path, &encode(key, value, exp, created, now));
                    Out::Wrote(true)
                }
                Some((e, ..)) if !live(e, now) => {
                    Self::remove(&path);
                    Out::Wrote(false)
                }
                _ => Out::Wrote(false),
            },
            Op::Create => match Self::head(&path) {
                Some((e, _)) if live(e, now) => Out::Wrote(false),
                _ => {
                    Self::write(&path, &encode(key, value, exp, now, now));
                    Out::Wrote(true)
                }
            },
            Op::Delete => {
                Self::remove(&path);
                Out::Done
            }
        }
    }
}

#[derive(Clone)]
enum Target {
    Store(FileStore),
    Raw(Raw),
}

impl Target {
    fn root(&self) -> &Path {
        match self {
            Target::Store(s) => s.dir(),
            Target::Raw(r) => &r.root,
        }
    }

    async fn run(&self, op: Op, key: String, value: Bytes, expected: Bytes) -> Out {
        match self {
            Target::Raw(raw) => {
                let root = raw.root.clone();
                tokio::task::spawn_blocking(move || {
                    Raw::run_blocking(&root, op, &key, &value, &expected)
                })
                .await
                .expect("raw task")
            }
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

    /// (Re)writes the sessions `s0..s9999`, live for an hour; on the
    /// store's side with the lock file beside each, as the store's own
    /// writes leave them.
    fn populate(&self, value: &[u8]) {
        let now = now_ns();
        for i in 0..SESSIONS {
            let key = format!("s{i}");
            let path = session_path(self.root(), &key);
            if matches!(self, Target::Store(_)) {
                fs::create_dir_all(path.parent().expect("shard dir")).expect("shard dirs");
                fs::File::create(path.with_extension("lock")).expect("lock file");
            }
            Raw::write(
                &path,
                &encode(&key, value, Some(now + 3_600_000_000_000), now, now),
            );
        }
    }

    /// Replaces the check's keys with its starting files, times relative
    /// to `base`: `live` expiring in ten minutes, `forever` without expiry,
    /// `expired` a minute ago, all created and updated at 1000 ns (long
    /// ago); `missing` has no file.
    fn seed(&self, base: u64) {
        let min = 60_000_000_000u64;
        for (key, expires) in [
            ("live", Some(base + 10 * min)),
            ("forever", None),
            ("expired", Some(base - min)),
        ] {
            let path = session_path(self.root(), key);
            Raw::write(
                &path,
                &encode(key, format!("old {key}").as_bytes(), expires, 1000, 1000),
            );
        }
        let _ = fs::remove_file(session_path(self.root(), "missing"));
    }

    /// The file under `key`, its times relative to `base`.
    fn file(&self, key: &str, base: u64) -> String {
        let Some((expires, created, updated, value)) = Raw::read(&session_path(self.root(), key))
        else {
            return "no file".to_owned();
        };
        let when = |at: u64| {
            let sec = 1_000_000_000i128;
            let off = at as i128 - base as i128;
            let ttl = TTL.as_nanos() as i128;
            match at {
                1000 => "long ago".to_owned(),
                _ if (0..2 * sec).contains(&off) => "now".to_owned(),
                _ if (ttl..ttl + 2 * sec).contains(&(off)) => "now+TTL".to_owned(),
                _ => format!("now{:+}s", off / sec),
            }
        };
        format!(
            "data {:?}, expires {}, created {}, updated {}",
            String::from_utf8_lossy(&value),
            expires.map_or("never".to_owned(), when),
            when(created),
            when(updated),
        )
    }
}

/// Runs every operation on both sides, each from the same starting files
/// ([`Target::seed`]), and fails unless each returned the same and left the
/// same file behind: the raw floor does the store's work, no less.
async fn check_same_work(dir: &Path) {
    let sides = [
        Target::Store(FileStore::open(dir.join("check-store")).expect("open store")),
        Target::Raw(Raw {
            root: dir.join("check-raw"),
        }),
    ];
    let mut logs = Vec::new();
    for side in &sides {
        let mut log = Vec::new();
        for op in Op::ALL {
            for key in ["live", "forever", "expired", "missing"] {
                let expected: &[String] = match op {
                    Op::CompareAndSet => &[format!("old {key}"), "stale".to_owned()],
                    _ => &[String::new()],
                };
                for expected in expected {
                    let base = now_ns();
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
                        side.file(key, base)
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

struct Measure {
    ops_per_sec: f64,
    p99: Duration,
}

/// Runs `OPS` operations `op` over `tasks` tasks. A compare-and-set swaps
/// each session's value for the same value (every call writes), so, like
/// delete, it starts from freshly populated sessions.
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
    let dir = std::env::temp_dir().join(format!("session-file-bench-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("bench directory");
    dir
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let dir = fresh_dir();
    runtime.block_on(check_same_work(&dir));
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this
    // binary without it, and then it only runs the check.
    if !std::env::args().any(|a| a == "--bench") {
        println!("file_vs_raw: run with `cargo bench -p session-file` to measure");
        let _ = fs::remove_dir_all(&dir);
        return;
    }
    runtime.block_on(run(&dir));
    let _ = fs::remove_dir_all(&dir);
}

async fn run(dir: &Path) {
    let value = Bytes::from(
        (0..VALUE_BYTES)
            .map(|i| (i * 31 % 251) as u8)
            .collect::<Vec<u8>>(),
    );
    let store = Target::Store(FileStore::open(dir.join("store")).expect("open store"));
    let raw = Target::Raw(Raw {
        root: dir.join("raw"),
    });
    for target in [&store, &raw] {
        target.populate(&value);
        for op in [Op::Read, Op::Write] {
            measure(target, op, 16, 0, &value).await;
        }
    }

    println!(
        "FileStore vs raw file operations: {SESSIONS} sessions, {VALUE_BYTES}-byte values, \
         {OPS} operations per run, fsync off, median of {ROUNDS} rounds\n"
    );
    println!("| case | tasks | store ops/s | store p99 | raw ops/s | raw p99 | store/raw |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    for op in Op::ALL {
        for tasks in [1, 16] {
            let mut store_runs = Vec::new();
            let mut raw_runs = Vec::new();
            for round in 1..=ROUNDS {
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

    // The cost of `fsync = true`: writes of the store with and without.
    println!(
        "\n| fsync cost: write (set) | tasks | fsync off ops/s | fsync on ops/s | on/off | fsync on p99 |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    let synced = Target::Store(
        FileStore::open_with(
            dir.join("store-fsync"),
            FileConfig {
                fsync: true,
                ..FileConfig::default()
            },
        )
        .expect("open store"),
    );
    synced.populate(&value);
    for tasks in [1, 16] {
        let (mut off, mut on, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        for round in 1..=3 {
            let a = measure(&store, Op::Write, tasks, round, &value).await;
            let b = measure(&synced, Op::Write, tasks, round, &value).await;
            ratios.push(b.ops_per_sec / a.ops_per_sec);
            off.push(a);
            on.push(b);
        }
        println!(
            "| write | {tasks} | {:.0} | {:.0} | {:.3} | {} |",
            median(off.iter().map(|m| m.ops_per_sec).collect(), f64::total_cmp),
            median(on.iter().map(|m| m.ops_per_sec).collect(), f64::total_cmp),
            median(ratios, f64::total_cmp),
            fmt_p99(median(on.iter().map(|m| m.p99).collect(), Ord::cmp)),
        );
    }

    // Cleanup: half of CLEANUP_FILES files expired; the store's
    // delete_expired against a raw walk that reads each header and removes
    // the expired files.
    let (mut store_times, mut raw_times, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..3 {
        let store = FileStore::open(dir.join(format!("cleanup-store-{round}"))).expect("open");
        let raw_root = dir.join(format!("cleanup-raw-{round}"));
        for root in [store.dir(), raw_root.as_path()] {
            let now = now_ns();
            for i in 0..CLEANUP_FILES {
                let key = format!("x{i}");
                let expires = if i % 2 == 0 {
                    now - 60_000_000_000
                } else {
                    now + 3_600_000_000_000
                };
                Raw::write(
                    &session_path(root, &key),
                    &encode(&key, &value, Some(expires), now, now),
                );
            }
        }
        let started = Instant::now();
        let removed = store.delete_expired().await.expect("delete_expired");
        let s = started.elapsed();
        let started = Instant::now();
        let raw_removed = tokio::task::spawn_blocking(move || raw_cleanup(&raw_root))
            .await
            .expect("raw cleanup");
        let r = started.elapsed();
        assert_eq!(
            (removed, raw_removed),
            (CLEANUP_FILES as u64 / 2, CLEANUP_FILES as u64 / 2)
        );
        store_times.push(s);
        raw_times.push(r);
        ratios.push(r.as_secs_f64() / s.as_secs_f64());
    }
    println!(
        "\n| cleanup: {} expired of {CLEANUP_FILES} files | store | raw walk | store/raw (speed) |",
        CLEANUP_FILES / 2
    );
    println!("| --- | ---: | ---: | ---: |");
    let ms = |times: Vec<Duration>| median(times, Ord::cmp).as_secs_f64() * 1e3;
    println!(
        "| time (median of 3) | {:.0} ms | {:.0} ms | {:.2} |",
        ms(store_times),
        ms(raw_times),
        median(ratios, f64::total_cmp)
    );
}

/// Walks the two shard levels, reads each header, removes expired files.
fn raw_cleanup(root: &Path) -> u64 {
    let now = now_ns();
    let mut removed = 0;
    for top in fs::read_dir(root).expect("list").flatten() {
        for leaf in fs::read_dir(top.path()).expect("list").flatten() {
            for file in fs::read_dir(leaf.path()).expect("list").flatten() {
                let path = file.path();
                if let Some((expires, _)) = Raw::head(&path)
                    && !live(expires, now)
                {
                    fs::remove_file(&path).expect("remove");
                    removed += 1;
                }
            }
        }
    }
    removed
}
