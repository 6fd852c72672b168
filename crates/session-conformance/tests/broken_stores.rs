//! The suite has teeth: each deliberately broken store below fails the case
//! meant to catch its defect (and the honest `MemoryStore` passes it).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use session_conformance::{Outcome, StoreFactory, run_case};
use session_core::{MemoryStore, Result, Store, async_trait};

/// Which defect a [`Broken`] store has.
#[derive(Clone, Copy, Debug)]
enum Defect {
    /// Stores every key without expiry.
    IgnoresExpiry,
    /// A renewing get gives an expiry to a key that had none.
    RenewsPermanentKeys,
    /// `delete_all` clears the shared backend, reaching other stores.
    DeleteAllReachesOtherStores,
    /// `create` checks, then writes: not atomic.
    CreateIsNotAtomic,
    /// `update` writes whether or not the key is live.
    UpdateRevivesKeys,
    /// `delete_expired` removes rows but reports none.
    MiscountsCleanup,
    /// Keys longer than the limit are silently truncated.
    TruncatesLongKeys,
    /// A renewing get does not renew.
    IgnoresRenewal,
    /// Values above 32 KiB are cut to 32 KiB.
    TruncatesLargeValues,
}

/// A store over a backend shared by every store of one factory, each store
/// under its own key prefix (as tables share a database).
struct Broken {
    defect: Defect,
    prefix: String,
    shared: Arc<MemoryStore>,
}

impl Broken {
    fn k(&self, key: &str) -> String {
        format!("{}/{key}", self.prefix)
    }

    fn check(&self, key: &str) -> Result<String> {
        if matches!(self.defect, Defect::TruncatesLongKeys) && key.len() > 255 {
            // Cut to 200 bytes, leaving room for the prefix in the backend.
            let mut end = 200;
            while !key.is_char_boundary(end) {
                end -= 1;
            }
            return Ok(self.k(&key[..end]));
        }
        session_core::validate_key(key)?;
        Ok(self.k(key))
    }
}

#[async_trait]
impl Store for Broken {
    async fn get(&self, key: &str, renew_for: Option<Duration>) -> Result<Option<Bytes>> {
        let k = self.check(key)?;
        match self.defect {
            Defect::RenewsPermanentKeys if renew_for.is_some() => {
                let value = self.shared.get(&k, None).await?;
                if let Some(v) = &value {
                    self.shared.set(&k, v.clone(), renew_for).await?;
                }
                Ok(value)
            }
            Defect::IgnoresRenewal => self.shared.get(&k, None).await,
            _ => self.shared.get(&k, renew_for).await,
        }
    }
    async fn set(&self, key: &str, value: Bytes, expires_in: Option<Duration>) -> Result<()> {
        let k = self.check(key)?;
        let value = match self.defect {
            Defect::TruncatesLargeValues if value.len() > 32 * 1024 => value.slice(..32 * 1024),
            _ => value,
        };
        match self.defect {
            Defect::IgnoresExpiry => self.shared.set(&k, value, None).await,
            _ => self.shared.set(&k, value, expires_in).await,
        }
    }
    async fn delete(&self, key: &str) -> Result<()> {
        self.shared.delete(&self.check(key)?).await
    }
    async fn delete_all(&self) -> Result<()> {
        // The honest variants cannot list their prefix in a MemoryStore, so
        // only the broken one is exercised by the case below.
        self.shared.delete_all().await
    }
    async fn exists(&self, key: &str) -> Result<bool> {
        self.shared.exists(&self.check(key)?).await
    }
    async fn expires_in(&self, key: &str) -> Result<Option<Duration>> {
        self.shared.expires_in(&self.check(key)?).await
    }
    async fn delete_expired(&self) -> Result<u64> {
        let n = self.shared.delete_expired().await?;
        Ok(match self.defect {
            Defect::MiscountsCleanup => 0,
            _ => n,
        })
    }
    async fn create(&self, key: &str, value: Bytes, expires_in: Option<Duration>) -> Result<bool> {
        let k = self.check(key)?;
        if let Defect::CreateIsNotAtomic = self.defect {
            if self.shared.exists(&k).await? {
                return Ok(false);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            self.shared.set(&k, value, expires_in).await?;
            return Ok(true);
        }
        self.shared.create(&k, value, expires_in).await
    }
    async fn update(&self, key: &str, value: Bytes, expires_in: Option<Duration>) -> Result<bool> {
        let k = self.check(key)?;
        if let Defect::UpdateRevivesKeys = self.defect {
            self.shared.set(&k, value, expires_in).await?;
            return Ok(true);
        }
        self.shared.update(&k, value, expires_in).await
    }
}

struct BrokenFactory {
    defect: Defect,
    shared: Arc<MemoryStore>,
    made: AtomicUsize,
}

impl StoreFactory for BrokenFactory {
    type Store = Broken;
    async fn new_store(&self) -> std::result::Result<Broken, session_conformance::Skip> {
        Ok(Broken {
            defect: self.defect,
            prefix: self.made.fetch_add(1, Ordering::SeqCst).to_string(),
            shared: self.shared.clone(),
        })
    }
}

async fn assert_caught(defect: Defect, case: &str) {
    let factory = BrokenFactory {
        defect,
        shared: Arc::new(MemoryStore::new()),
        made: AtomicUsize::new(0),
    };
    let outcome = run_case(case, &factory).await;
    match outcome.outcome {
        Outcome::Failed(why) => println!("{defect:?} caught by `{case}`: {why}"),
        other => panic!("{defect:?} was not caught by `{case}`: {other:?}"),
    }
    // The same case passes against the honest reference store.
    let honest = run_case(case, &|| async { MemoryStore::new() }).await;
    assert_eq!(
        honest.outcome,
        Outcome::Passed,
        "`{case}` fails MemoryStore"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_store_ignoring_expiry_fails() {
    assert_caught(
        Defect::IgnoresExpiry,
        "expired_keys_are_invisible_everywhere",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_store_renewing_permanent_keys_fails() {
    assert_caught(
        Defect::RenewsPermanentKeys,
        "renew_leaves_permanent_key_permanent",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_store_whose_delete_all_reaches_another_fails() {
    assert_caught(
        Defect::DeleteAllReachesOtherStores,
        "delete_all_spares_other_stores",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_store_with_racy_create_fails() {
    assert_caught(
        Defect::CreateIsNotAtomic,
        "concurrent_creates_of_one_key_have_one_winner",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_store_whose_update_revives_keys_fails() {
    assert_caught(Defect::UpdateRevivesKeys, "update_refuses_an_expired_key").await;
    assert_caught(Defect::UpdateRevivesKeys, "update_refuses_a_missing_key").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_store_miscounting_cleanup_fails() {
    assert_caught(Defect::MiscountsCleanup, "delete_expired_counts_exactly").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_store_truncating_long_keys_fails() {
    assert_caught(Defect::TruncatesLongKeys, "key_of_256_bytes_is_rejected").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_store_ignoring_renewal_fails() {
    assert_caught(Defect::IgnoresRenewal, "renew_extends_expiry").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_store_truncating_large_values_fails() {
    assert_caught(
        Defect::TruncatesLargeValues,
        "value_of_32k_plus_1_round_trips",
    )
    .await;
}
