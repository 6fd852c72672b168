//! The whole conformance suite against a throwaway memcached of this test
//! process (`-I 2m`), each store under a prefix of its own.

use session_conformance::{Skip, StoreFactory};
use session_memcached::{MemcachedConfig, MemcachedStore};
use session_test_support::memcached::{memcached_required, memcached_url, unique_prefix};

struct Factory;

impl StoreFactory for Factory {
    type Store = MemcachedStore;

    async fn new_store(&self) -> Result<MemcachedStore, Skip> {
        let url = match memcached_url() {
            Ok(url) => url,
            Err(why) if memcached_required() => panic!("no memcached, and it is required: {why}"),
            Err(why) => return Err(Skip(format!("no memcached ({why})"))),
        };
        let config = MemcachedConfig {
            prefix: unique_prefix("conformance"),
            // The shared server runs with -I 2m, for the contract's 1 MiB.
            item_size_max: 2 * 1024 * 1024,
            ..MemcachedConfig::default()
        };
        Ok(MemcachedStore::connect(&url, config)
            .await
            .expect("the throwaway server's URL and a unique prefix are valid"))
    }
}

session_conformance::store_conformance!(memcached, Factory);
