//! `MemcachedStore` against the raw meta-protocol client (`memcache::exp`)
//! sending the same commands, on one throwaway memcached, in one run.
//!
//! Run: `cargo bench -p session-memcached`. Without `--bench`
//! (`cargo test --benches`) only the same-work check runs.
//!
//! Same work: for each operation the raw side sends the store's commands
//! with the same flags on the same client and pool size: a read is
//! `mg v f t c`, a write `ms T F`, a renewing read `mg` then a
//! CAS-guarded `ms`, a compare-and-set `mg v f t c` then `ms C`, a create
//! `ms ME`, a delete `md`. What the raw side leaves out is what the store
//! adds: the namespace generation read pipelined with each operation (one
//! more `mg` in the same round trip), key validation and encoding, and the
//! exact-expiry check. Before measuring, [`check_same_work`] runs every
//! operation on both sides from the same keys (live, missing; a
//! compare-and-set from the value and from a stale one) and fails unless
//! the results and the values after agree.
//!
//! Cases: ~1 KiB sessions among 10,000, at 1 and 16 tasks, 5 rounds of
//! 5,000 operations, store and raw back to back (alternating which goes
//! first); medians, and the ratio is the median of the rounds' ratios
//! (store ops/s over raw ops/s). Prints a Markdown table, as in
//! `docs/performance.md`.

use session_test_support::bench::{Measured, Op, comparison_row, run_tasks};
use std::sync::Arc;
use std::time::Duration;

use session_core::{Bytes, Store};
use session_memcached::memcache::exp::{
    AsyncMetaClient, Delete, Get, GetStatus, Meta, MutationStatus, Set, Ttl,
};
use session_memcached::{MemcachedConfig, MemcachedStore};
use session_test_support::memcached::ThrowawayMemcached;

const SESSIONS: usize = 10_000;
const VALUE_LEN: usize = 1024;
const POOL: usize = 16;
const ROUNDS: usize = 5;
const OPS: usize = 5_000;
const DAY: Duration = Duration::from_secs(86_400);

/// The raw side: the same client and pool size, the store's commands.
struct Raw {
    client: AsyncMetaClient,
    permits: tokio::sync::Semaphore,
    prefix: String,
}

/// What an operation answered, to compare the two sides.
#[derive(Debug, PartialEq)]
enum Answer {
    Value(Option<Bytes>),
    Wrote(bool),
    Done,
}

impl Raw {
    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    fn write(&self, key: &str, value: &[u8], ttl: Duration) -> Set {
        // The store's `T` (2 s longer) and a deadline in the flags.
        Set::new(self.key(key), value)
            .ttl(Ttl::secs(ttl.as_secs() as u32 + 2))
            .client_flags(0x5eed)
    }

    async fn run(&self, op: Op, key: &str, value: &Bytes) -> Answer {
        let _permit = self.permits.acquire().await.expect("permit");
        let read = || Get::new(self.key(key)).meta(Meta::NONE.ttl().cas());
        match op {
            Op::Read => {
                let got = self.client.run(read()).await.expect("raw read");
                let hit = got.hit();
                Answer::Value(got.value.filter(|_| hit).map(Bytes::from))
            }
            Op::RenewingRead => {
                let got = self.client.run(read()).await.expect("raw read");
                if got.status != GetStatus::Hit {
                    return Answer::Value(None);
                }
                let value = got.value.unwrap_or_default();
                if got.item.ttl.is_some_and(|t| t >= 0) {
                    let cas = got.item.cas.expect("cas");
                    self.client
                        .run(self.write(key, &value, DAY).compare_cas(cas))
                        .await
                        .expect("raw renew");
                }
                Answer::Value(Some(Bytes::from(value)))
            }
            Op::Write => {
                let set = self.write(key, value, DAY);
                self.client.run(set).await.expect("raw write");
                Answer::Done
            }
            Op::CompareAndSet => {
                let got = self.client.run(read()).await.expect("raw read");
                if got.value.as_deref() != Some(&value[..]) || !got.hit() {
                    return Answer::Wrote(false);
                }
                let set = self
                    .write(key, value, DAY)
                    .compare_cas(got.item.cas.expect("cas"));
                let wrote = self.client.run(set).await.expect("raw cas");
                Answer::Wrote(wrote.status == MutationStatus::Applied)
            }
            Op::Create => {
                let set = self.write(key, value, DAY).add();
                let wrote = self.client.run(set).await.expect("raw create");
                Answer::Wrote(wrote.status == MutationStatus::Applied)
            }
            Op::Delete => {
                self.client
                    .run(Delete::new(self.key(key)))
                    .await
                    .expect("raw delete");
                Answer::Done
            }
        }
    }
}

#[derive(Clone)]
enum Target {
    Store(Arc<MemcachedStore>),
    Raw(Arc<Raw>),
}

impl Target {
    async fn run(&self, op: Op, key: &str, value: &Bytes) -> Answer {
        match self {
            Target::Raw(raw) => raw.run(op, key, value).await,
            Target::Store(store) => match op {
                Op::Read => Answer::Value(store.get(key, None).await.expect("read")),
                Op::RenewingRead => Answer::Value(store.get(key, Some(DAY)).await.expect("renew")),
                Op::Write => {
                    store
                        .set(key, value.clone(), Some(DAY))
                        .await
                        .expect("write");
                    Answer::Done
                }
                Op::CompareAndSet => Answer::Wrote(
                    store
                        .compare_and_set(key, value.clone(), value.clone(), Some(DAY))
                        .await
                        .expect("cas"),
                ),
                Op::Create => Answer::Wrote(
                    store
                        .create(key, value.clone(), Some(DAY))
                        .await
                        .expect("create"),
                ),
                Op::Delete => {
                    store.delete(key).await.expect("delete");
                    Answer::Done
                }
            },
        }
    }
}

async fn sides(url: &str) -> [Target; 2] {
    let store = MemcachedStore::connect(
        url,
        MemcachedConfig {
            prefix: session_test_support::memcached::unique_prefix("bench_store"),
            pool_size: POOL as u32,
            ..MemcachedConfig::default()
        },
    )
    .await
    .expect("store");
    let client = AsyncMetaClient::builder()
        .connect_timeout(Some(Duration::from_secs(5)))
        .io_timeout(Some(Duration::from_secs(5)))
        .max_idle(POOL)
        .max_connections(Some(POOL))
        .connect_async(url.trim_start_matches("memcache://").to_owned())
        .await
        .expect("raw client");
    let raw = Raw {
        client,
        permits: tokio::sync::Semaphore::new(POOL),
        prefix: session_test_support::memcached::unique_prefix("bench_raw"),
    };
    [Target::Raw(Arc::new(raw)), Target::Store(Arc::new(store))]
}

/// Every operation on both sides from the same keys: the answers and the
/// values after must agree.
async fn check_same_work(targets: &[Target; 2]) {
    let value = Bytes::from(vec![0xab; VALUE_LEN]);
    let stale = Bytes::from(vec![0xcd; VALUE_LEN]);
    let mut cases = 0;
    for op in Op::ALL {
        for (start, argument) in [
            (Some(&value), &value),
            (None, &value),
            (Some(&value), &stale),
        ] {
            let mut answers = Vec::new();
            for target in targets {
                let key = format!("same_{}_{cases}", op.name().replace(' ', "_"));
                if let Some(start) = start {
                    target.run(Op::Write, &key, start).await;
                }
                let answer = target.run(op, &key, argument).await;
                let after = target.run(Op::Read, &key, argument).await;
                answers.push((answer, after));
            }
            assert_eq!(
                answers[0],
                answers[1],
                "same work: {} from {:?} with {} bytes: raw and store differ",
                op.name(),
                start.map(|s| s[0]),
                argument.len()
            );
            cases += 1;
        }
    }
    println!("same work: the store and the raw side agree on {cases} cases");
}

async fn measure(target: &Target, op: Op, tasks: usize, ops: usize, tag: &str) -> Measured {
    let value = Bytes::from(vec![0xab; VALUE_LEN]);
    let (target, tag) = (target.clone(), tag.to_owned());
    run_tasks(tasks, ops / tasks, move |t, i, random| {
        let key = match op {
            Op::Create | Op::Delete => format!("{tag}_{t}_{i}"),
            _ => format!("s{}", random % SESSIONS as u64),
        };
        let (target, value) = (target.clone(), value.clone());
        async move {
            target.run(op, &key, &value).await;
        }
    })
    .await
}

fn main() {
    let measuring = std::env::args().any(|a| a == "--bench");
    let server = match ThrowawayMemcached::start(&["-I", "2m", "-m", "256"]) {
        Ok(server) => server,
        Err(why) if session_test_support::memcached::memcached_required() => {
            panic!("no memcached, and it is required: {why}")
        }
        Err(why) => {
            println!("memcached_vs_raw skipped: no memcached ({why})");
            return;
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let targets = sides(&server.url()).await;
        check_same_work(&targets).await;
        if measuring {
            bench(&targets).await;
        } else {
            println!("memcached_vs_raw: run with `cargo bench -p session-memcached` to measure");
        }
    });
}

async fn bench(targets: &[Target; 2]) {
    let value = Bytes::from(vec![0xab; VALUE_LEN]);
    for target in targets {
        for i in 0..SESSIONS {
            target.run(Op::Write, &format!("s{i}"), &value).await;
        }
        for op in [Op::Read, Op::RenewingRead, Op::Write, Op::CompareAndSet] {
            measure(target, op, POOL, 2_000, "warm").await;
        }
    }
    println!("| case | tasks | store ops/s | store p99 | raw ops/s | raw p99 | store/raw |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    let mut case_id = 0;
    for op in Op::ALL {
        for tasks in [1, POOL] {
            let mut rounds: [Vec<Measured>; 2] = [Vec::new(), Vec::new()];
            for round in 0..ROUNDS {
                let order: [usize; 2] = if round % 2 == 0 { [0, 1] } else { [1, 0] };
                for side in order {
                    case_id += 1;
                    let tag = format!("c{case_id}");
                    if op == Op::Delete {
                        // Delete what exists: create the keys first.
                        measure(&targets[side], Op::Create, tasks, OPS, &tag).await;
                    }
                    rounds[side].push(measure(&targets[side], op, tasks, OPS, &tag).await);
                }
            }
            println!(
                "{}",
                comparison_row(op.name(), tasks, &rounds[1], &rounds[0])
            );
        }
    }
}
