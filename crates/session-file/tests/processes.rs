//! Two OS processes hammering one session directory: this test binary runs
//! a second copy of itself (the `child_role` test, which does nothing
//! unless started this way), both open a `FileStore` on the same
//! directory, start together and race on shared and distinct keys with
//! `create`, `compare_and_set`, `delete_live`, `set` and a
//! compare-and-set counter. Then the ledger of both is checked: every
//! distinct-key write is there, each race had exactly one winner whose
//! value is stored, the counter lost no increment, and no read ever saw a
//! torn value (each value carries its length and SHA-256).
//!
//! ```text
//! cargo test -p session-file --test processes -- --nocapture
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use session_core::{Bytes, Store};
use session_file::FileStore;
use sha2::{Digest, Sha256};

const ENV_DIR: &str = "SESSION_FILE_HAMMER_DIR";
const ENV_LEDGER: &str = "SESSION_FILE_HAMMER_LEDGER";

/// Tasks per process.
const TASKS: usize = 8;
/// Keys raced on per operation (`create-r`, `cas-r`, `del-r`).
const ROUNDS: usize = 24;
/// Counter increments per task.
const INCREMENTS: usize = 12;
/// Keys every task of both processes `set`s and reads (large values).
const SHARED: usize = 4;
const TTL: Option<Duration> = Some(Duration::from_secs(3600));

/// A value that proves itself whole: seed, length, body, SHA-256 of all
/// before it.
fn checked_value(seed: u64, len: usize) -> Bytes {
    let mut out = Vec::with_capacity(len + 48);
    out.extend_from_slice(&seed.to_le_bytes());
    out.extend_from_slice(&(len as u64).to_le_bytes());
    let mut x = seed | 1;
    for _ in 0..len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.push(x as u8);
    }
    let digest = Sha256::digest(&out);
    out.extend_from_slice(&digest);
    Bytes::from(out)
}

/// True if `value` is a whole [`checked_value`].
fn is_whole(value: &[u8]) -> bool {
    if value.len() < 48 {
        return false;
    }
    let (body, digest) = value.split_at(value.len() - 32);
    let len = u64::from_le_bytes(body[8..16].try_into().unwrap()) as usize;
    body.len() == 16 + len && Sha256::digest(body).as_slice() == digest
}

fn role_seed(role: &str, task: usize, i: usize) -> u64 {
    let r = if role == "parent" { 1 } else { 2 };
    (r << 40) | ((task as u64) << 20) | i as u64
}

/// One process's share of the hammering; returns its ledger lines.
async fn workload(store: FileStore, role: &'static str) -> Vec<String> {
    let other = if role == "parent" { "child" } else { "parent" };
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(TASKS));
    let handles: Vec<_> = (0..TASKS)
        .map(|task| {
            let store = store.clone();
            let barrier = barrier.clone();
            tokio::spawn(async move {
                let me = format!("{role}-{task}");
                let mut ledger = Vec::new();
                let mut torn = 0;
                let mut increments = 0;
                for r in 0..ROUNDS {
                    // Both processes start each round together, so every
                    // race has contenders from both: a barrier of this
                    // process's tasks, then one task meets the other
                    // process through the store itself.
                    if barrier.wait().await.is_leader() {
                        let mark = Bytes::from_static(b"");
                        store
                            .set(&format!("arrived-{role}-{r}"), mark, TTL)
                            .await
                            .unwrap();
                        let deadline = Instant::now() + Duration::from_secs(60);
                        while !store.exists(&format!("arrived-{other}-{r}")).await.unwrap() {
                            assert!(
                                Instant::now() < deadline,
                                "{role}: the other process is gone"
                            );
                            tokio::time::sleep(Duration::from_micros(200)).await;
                        }
                    }
                    barrier.wait().await;
                    let mine = Bytes::from(me.clone());
                    let won = store
                        .create(&format!("create-{r}"), mine.clone(), TTL)
                        .await
                        .unwrap();
                    ledger.push(format!("create {r} {won} {me}"));
                    let won = store
                        .compare_and_set(&format!("cas-{r}"), Bytes::from_static(b"v0"), mine, TTL)
                        .await
                        .unwrap();
                    ledger.push(format!("cas {r} {won} {me}"));
                    let won = store.delete_live(&format!("del-{r}")).await.unwrap();
                    ledger.push(format!("delete_live {r} {won} {me}"));

                    // A distinct key of this task: must survive.
                    let seed = role_seed(role, task, r);
                    store
                        .set(
                            &format!("distinct-{seed}"),
                            checked_value(seed, 64 + r * 97),
                            TTL,
                        )
                        .await
                        .unwrap();

                    // Large values on shared keys, written and read by all.
                    let shared = format!("shared-{}", (task + r) % SHARED);
                    let len = 1_000 + (seed as usize * 7919) % 200_000;
                    store
                        .set(&shared, checked_value(seed, len), TTL)
                        .await
                        .unwrap();
                    let other = format!("shared-{}", (task + r + 1) % SHARED);
                    if let Some(v) = store.get(&other, None).await.unwrap() {
                        torn += usize::from(!is_whole(&v));
                    }

                    // The counter: read, then compare-and-set one more.
                    if r < INCREMENTS {
                        loop {
                            let current = store.get("counter", None).await.unwrap().unwrap();
                            let n: u64 = std::str::from_utf8(&current).unwrap().parse().unwrap();
                            let next = Bytes::from((n + 1).to_string());
                            if store
                                .compare_and_set("counter", current, next, None)
                                .await
                                .unwrap()
                            {
                                increments += 1;
                                break;
                            }
                        }
                    }
                }
                ledger.push(format!("torn {torn}"));
                ledger.push(format!("increments {increments}"));
                ledger
            })
        })
        .collect();
    let mut ledger = Vec::new();
    for handle in handles {
        ledger.extend(handle.await.expect("hammer task"));
    }
    ledger
}

fn wait_for(path: &Path, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !path.exists() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The second process. Started by `two_processes_share_one_directory` with
/// the directory in the environment; run any other way it does nothing.
#[test]
#[ignore = "the second process of two_processes_share_one_directory, which starts it"]
fn child_role() {
    let (Ok(dir), Ok(ledger)) = (std::env::var(ENV_DIR), std::env::var(ENV_LEDGER)) else {
        eprintln!("child_role: not started by two_processes_share_one_directory; nothing to do");
        return;
    };
    let dir = PathBuf::from(dir);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let store = FileStore::open(dir.join("store")).expect("child: open the store");
    std::fs::write(dir.join("ready"), "").unwrap();
    wait_for(&dir.join("go"), "the parent's go");
    let lines = runtime.block_on(workload(store, "child"));
    std::fs::write(&ledger, lines.join("\n")).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_processes_share_one_directory() {
    let dir = session_test_support::scratch_dir("session-file").join("processes");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let store = FileStore::open(dir.join("store")).unwrap();
    store
        .set("counter", Bytes::from_static(b"0"), None)
        .await
        .unwrap();
    for r in 0..ROUNDS {
        store
            .set(&format!("cas-{r}"), Bytes::from_static(b"v0"), TTL)
            .await
            .unwrap();
        store
            .set(&format!("del-{r}"), Bytes::from_static(b"x"), TTL)
            .await
            .unwrap();
    }
    let ledger_path = dir.join("child-ledger.txt");
    let child = Command::new(std::env::current_exe().unwrap())
        .args([
            "child_role",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ENV_DIR, &dir)
        .env(ENV_LEDGER, &ledger_path)
        .spawn()
        .expect("start the second process");
    let ready = dir.join("ready");
    tokio::task::spawn_blocking(move || wait_for(&ready, "the child to open the store"))
        .await
        .unwrap();
    std::fs::write(dir.join("go"), "").unwrap();
    let started = Instant::now();
    let mut lines = workload(store.clone(), "parent").await;
    let status = tokio::task::spawn_blocking(move || {
        let mut child = child;
        child.wait()
    })
    .await
    .unwrap()
    .unwrap();
    assert!(status.success(), "the second process failed: {status}");
    let child_lines = std::fs::read_to_string(&ledger_path).expect("the child's ledger");
    let child_count = child_lines.lines().count();
    lines.extend(child_lines.lines().map(str::to_owned));
    assert!(
        child_count > ROUNDS * TASKS,
        "the child's ledger is short: {child_count} lines"
    );
    println!(
        "two processes x {TASKS} tasks: {} ledger lines in {:.2} s",
        lines.len(),
        started.elapsed().as_secs_f64()
    );

    // Exactly one winner per raced key, and the winner's value stored.
    let mut winners: BTreeMap<(String, usize), Vec<String>> = BTreeMap::new();
    let (mut torn, mut increments) = (0, 0);
    for line in &lines {
        let parts: Vec<&str> = line.split(' ').collect();
        match parts[..] {
            [op, r, won, who] => {
                let entry = winners
                    .entry((op.to_owned(), r.parse().unwrap()))
                    .or_default();
                if won == "true" {
                    entry.push(who.to_owned());
                }
            }
            ["torn", n] => torn += n.parse::<usize>().unwrap(),
            ["increments", n] => increments += n.parse::<usize>().unwrap(),
            _ => panic!("bad ledger line {line:?}"),
        }
    }
    assert_eq!(
        winners.len(),
        3 * ROUNDS,
        "a race is missing from the ledger"
    );
    let mut from_child = 0;
    for ((op, r), who) in &winners {
        assert_eq!(who.len(), 1, "{op} of round {r}: winners {who:?}");
        from_child += usize::from(who[0].starts_with("child"));
        let stored = store
            .get(&format!("{}-{r}", op.replace("delete_live", "del")), None)
            .await
            .unwrap();
        match op.as_str() {
            "create" | "cas" => assert_eq!(stored, Some(Bytes::from(who[0].clone())), "{op} {r}"),
            _ => assert_eq!(stored, None, "{op} {r}: deleted yet still there"),
        }
    }
    println!(
        "races won by the second process: {from_child} of {}",
        winners.len()
    );
    assert!(
        from_child > 0 && from_child < winners.len(),
        "one process won every race: the processes did not overlap"
    );

    // Nothing lost: every distinct key of both processes, whole.
    for role in ["parent", "child"] {
        for task in 0..TASKS {
            for r in 0..ROUNDS {
                let seed = role_seed(role, task, r);
                let got = store.get(&format!("distinct-{seed}"), None).await.unwrap();
                assert_eq!(
                    got,
                    Some(checked_value(seed, 64 + r * 97)),
                    "{role} {task} {r}"
                );
            }
        }
    }
    assert_eq!(torn, 0, "torn values were read");
    for j in 0..SHARED {
        let v = store
            .get(&format!("shared-{j}"), None)
            .await
            .unwrap()
            .unwrap();
        assert!(is_whole(&v), "shared-{j} is torn");
    }
    assert_eq!(increments, 2 * TASKS * INCREMENTS);
    let counter = store.get("counter", None).await.unwrap().unwrap();
    assert_eq!(
        counter,
        Bytes::from(increments.to_string()),
        "counter increments lost"
    );

    // No temporary file is left behind, and cleanup has nothing to do.
    assert_eq!(count_files(store.dir(), ".tmp"), 0);
    assert_eq!(store.delete_expired().await.unwrap(), 0);
    std::fs::remove_dir_all(&dir).unwrap();
}

fn count_files(dir: &Path, suffix: &str) -> usize {
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            n += count_files(&path, suffix);
        } else if path.to_string_lossy().ends_with(suffix) {
            n += 1;
        }
    }
    n
}
