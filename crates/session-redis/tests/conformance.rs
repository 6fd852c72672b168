//! The whole conformance suite against Redis: on one server (the machine's,
//! or a throwaway one) and on a throwaway 3-primary Redis Cluster. Each
//! store has a key prefix of its own, whose keys are deleted when the case
//! ends; nothing else on the server is touched.

use std::sync::{Mutex, OnceLock};

use session_conformance::{Skip, StoreFactory};
use session_core::Store;
use session_redis::{RedisConfig, RedisStore};
use session_test_support::redis::{ThrowawayRedisCluster, redis_required, redis_url};

/// The process's cluster, started by the first case that needs it (its
/// servers are killed by their watchdogs when the process ends).
fn cluster_url() -> Result<String, String> {
    static CLUSTER: OnceLock<Result<ThrowawayRedisCluster, String>> = OnceLock::new();
    CLUSTER
        .get_or_init(|| ThrowawayRedisCluster::start(3))
        .as_ref()
        .map(ThrowawayRedisCluster::url)
        .map_err(Clone::clone)
}

/// Makes stores with fresh prefixes and deletes their keys when the case
/// is over (the factory lives as long as one case).
struct RedisFactory {
    cluster: bool,
    made: Mutex<Vec<(String, String)>>,
}

impl RedisFactory {
    fn new(cluster: bool) -> Self {
        RedisFactory {
            cluster,
            made: Mutex::new(Vec::new()),
        }
    }
}

impl StoreFactory for RedisFactory {
    type Store = RedisStore;

    async fn new_store(&self) -> Result<RedisStore, Skip> {
        let url = if self.cluster {
            cluster_url()
        } else {
            redis_url()
        };
        let url = match url {
            Ok(url) => url,
            Err(why) if redis_required() => panic!("no Redis for the conformance suite: {why}"),
            Err(why) => return Err(Skip(format!("no Redis: {why}"))),
        };
        let prefix = session_test_support::redis::unique_prefix("conformance");
        self.made
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((url.clone(), prefix.clone()));
        let config = RedisConfig {
            prefix,
            ..RedisConfig::default()
        };
        Ok(RedisStore::open(&url, config)
            .await
            .expect("the test server is up and the prefix valid"))
    }
}

impl Drop for RedisFactory {
    fn drop(&mut self) {
        let made = std::mem::take(self.made.get_mut().unwrap_or_else(|p| p.into_inner()));
        if made.is_empty() {
            return;
        }
        // Dropped inside or outside a runtime: clean up on a thread of its own.
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async {
                for (url, prefix) in made {
                    let config = RedisConfig {
                        prefix: prefix.clone(),
                        ..RedisConfig::default()
                    };
                    let result = match RedisStore::open(&url, config).await {
                        Ok(store) => store.delete_all().await,
                        Err(e) => Err(e),
                    };
                    if let Err(e) = result {
                        eprintln!("could not delete the test keys under {prefix}: {e}");
                    }
                }
            });
        });
        let _ = cleanup.join();
    }
}

session_conformance::store_conformance!(single_server, RedisFactory::new(false));
session_conformance::store_conformance!(cluster, RedisFactory::new(true));
