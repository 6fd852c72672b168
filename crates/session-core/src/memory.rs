//! [`MemoryStore`]: the reference implementation of [`Store`].

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;

use crate::{Result, Store, non_zero, validate_key};

/// An in-process [`Store`] behind a mutex: the reference implementation of
/// the contract, for tests, development and as a model for store authors.
///
/// Data lives as long as the value; nothing is shared between processes.
/// Each `MemoryStore` is its own keyspace, so `delete_all` on one leaves
/// every other untouched.
///
/// ```
/// use std::time::Duration;
/// use bytes::Bytes;
/// use session_core::{MemoryStore, Store};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> session_core::Result<()> {
/// let store = MemoryStore::new();
/// store.set("k", Bytes::from_static(b"v"), Some(Duration::from_secs(60))).await?;
/// assert_eq!(store.get("k", None).await?, Some(Bytes::from_static(b"v")));
/// assert!(!store.create("k", Bytes::new(), None).await?); // live key: refused
/// # Ok(()) }
/// ```
#[derive(Debug, Default)]
pub struct MemoryStore {
    entries: Mutex<HashMap<String, Entry>>,
}

/// `now + d`; a duration past what the clock can count (centuries) is
/// capped at about 136 years, never a panic.
fn deadline(now: Instant, d: Duration) -> Option<Instant> {
    const FAR: Duration = Duration::from_secs(u32::MAX as u64);
    now.checked_add(d.min(FAR))
        .or_else(|| now.checked_add(Duration::from_secs(365 * 24 * 3600)))
}

#[derive(Debug, Clone)]
struct Entry {
    value: Bytes,
    expires_at: Option<Instant>,
}

impl Entry {
    fn new(value: Bytes, expires_in: Option<Duration>) -> Self {
        Entry {
            value,
            expires_at: non_zero(expires_in).and_then(|d| deadline(Instant::now(), d)),
        }
    }

    fn is_live(&self, now: Instant) -> bool {
        self.expires_at.is_none_or(|at| at > now)
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The number of rows held, expired ones not yet removed included.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True if the store holds no rows at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        // A panic while holding this lock cannot leave a map half-updated
        // (every mutation is a single insert/remove), so poisoning is ignored.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn live<R>(&self, key: &str, f: impl FnOnce(&mut Entry, Instant) -> R) -> Result<Option<R>> {
        validate_key(key)?;
        let now = Instant::now();
        let mut map = self.lock();
        Ok(match map.get_mut(key) {
            Some(entry) if entry.is_live(now) => Some(f(entry, now)),
            _ => None,
        })
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn get(&self, key: &str, renew_for: Option<Duration>) -> Result<Option<Bytes>> {
        self.live(key, |entry, now| {
            if let (Some(renew), Some(_)) = (non_zero(renew_for), entry.expires_at) {
                entry.expires_at = deadline(now, renew);
            }
            entry.value.clone()
        })
    }

    async fn set(&self, key: &str, value: Bytes, expires_in: Option<Duration>) -> Result<()> {
        validate_key(key)?;
        self.lock()
            .insert(key.to_owned(), Entry::new(value, expires_in));
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<()> {
        validate_key(key)?;
        self.lock().remove(key);
        Ok(())
    }

    async fn delete_all(&self) -> Result<()> {
        self.lock().clear();
        Ok(())
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        Ok(self.live(key, |_, _| ())?.is_some())
    }

    async fn expires_in(&self, key: &str) -> Result<Option<Duration>> {
        Ok(self
            .live(key, |entry, now| entry.expires_at.map(|at| at - now))?
            .flatten())
    }

    async fn delete_expired(&self) -> Result<u64> {
        let now = Instant::now();
        let mut map = self.lock();
        let before = map.len();
        map.retain(|_, entry| entry.is_live(now));
        Ok((before - map.len()) as u64)
    }

    async fn create(&self, key: &str, value: Bytes, expires_in: Option<Duration>) -> Result<bool> {
        validate_key(key)?;
        let now = Instant::now();
        let mut map = self.lock();
        if map.get(key).is_some_and(|e| e.is_live(now)) {
            return Ok(false);
        }
        map.insert(key.to_owned(), Entry::new(value, expires_in));
        Ok(true)
    }

    async fn update(&self, key: &str, value: Bytes, expires_in: Option<Duration>) -> Result<bool> {
        Ok(self
            .live(key, |entry, _| *entry = Entry::new(value, expires_in))?
            .is_some())
    }

    async fn compare_and_set(
        &self,
        key: &str,
        expected: Bytes,
        value: Bytes,
        expires_in: Option<Duration>,
    ) -> Result<bool> {
        Ok(self
            .live(key, |entry, _| {
                let same = entry.value == expected;
                if same {
                    *entry = Entry::new(value, expires_in);
                }
                same
            })?
            .unwrap_or(false))
    }

    async fn delete_live(&self, key: &str) -> Result<bool> {
        validate_key(key)?;
        let now = Instant::now();
        let mut map = self.lock();
        Ok(map.remove(key).is_some_and(|entry| entry.is_live(now)))
    }
}

/// The memory store has no schema: every migration method keeps its
/// default (nothing to migrate), and a cleanup batch is one
/// [`delete_expired`](Store::delete_expired).
#[async_trait]
impl crate::StoreAdmin for MemoryStore {
    fn describe(&self) -> String {
        "memory store (this process)".to_owned()
    }

    fn backend(&self) -> &'static str {
        "memory"
    }

    fn location(&self) -> String {
        "memory".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_huge_expiry_is_capped_not_a_panic() {
        let store = MemoryStore::new();
        store
            .set("k", Bytes::from_static(b"v"), Some(Duration::MAX))
            .await
            .unwrap();
        assert!(store.get("k", Some(Duration::MAX)).await.unwrap().is_some());
        let left = store.expires_in("k").await.unwrap().unwrap();
        assert!(
            left > Duration::from_secs(100 * 365 * 24 * 3600),
            "{left:?}"
        );
        assert!(
            store
                .create(
                    "k2",
                    Bytes::from_static(b"v"),
                    Some(Duration::from_secs(u64::MAX))
                )
                .await
                .unwrap()
        );
    }
}
