//! A store that counts its calls and can be told to fail.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use session_core::{Error, MemoryStore, Result, Store, async_trait};

/// A [`MemoryStore`] that counts every call, as a read (`exists`,
/// `expires_in`, a `get` that does not renew) or a write (all others,
/// and a `get` that renews), and fails every call while `failing` is
/// set, every write while `failing_writes` is.
#[derive(Default)]
pub(crate) struct CountingStore {
    pub(crate) inner: MemoryStore,
    reads: AtomicUsize,
    writes: AtomicUsize,
    pub(crate) failing: AtomicBool,
    pub(crate) failing_writes: AtomicBool,
}

impl CountingStore {
    /// Every call so far.
    pub(crate) fn calls(&self) -> usize {
        self.reads.load(Ordering::SeqCst) + self.writes.load(Ordering::SeqCst)
    }
    pub(crate) fn writes(&self) -> usize {
        self.writes.load(Ordering::SeqCst)
    }
    fn read(&self) -> Result<()> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.check()
    }
    fn write(&self) -> Result<()> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        if self.failing_writes.load(Ordering::SeqCst) {
            return Err(Error::backend(
                "test",
                "write session",
                std::io::Error::other("disk full"),
            ));
        }
        self.check()
    }
    fn check(&self) -> Result<()> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(Error::connection(
                "test",
                "127.0.0.1:1",
                std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
            ));
        }
        Ok(())
    }
}

#[async_trait]
impl Store for CountingStore {
    async fn get(&self, key: &str, renew_for: Option<Duration>) -> Result<Option<Bytes>> {
        if session_core::non_zero(renew_for).is_some() {
            self.write()?;
        } else {
            self.read()?;
        }
        self.inner.get(key, renew_for).await
    }
    async fn set(&self, key: &str, value: Bytes, expires_in: Option<Duration>) -> Result<()> {
        self.write()?;
        self.inner.set(key, value, expires_in).await
    }
    async fn delete(&self, key: &str) -> Result<()> {
        self.write()?;
        self.inner.delete(key).await
    }
    async fn delete_all(&self) -> Result<()> {
        self.write()?;
        self.inner.delete_all().await
    }
    async fn exists(&self, key: &str) -> Result<bool> {
        self.read()?;
        self.inner.exists(key).await
    }
    async fn expires_in(&self, key: &str) -> Result<Option<Duration>> {
        self.read()?;
        self.inner.expires_in(key).await
    }
    async fn delete_expired(&self) -> Result<u64> {
        self.write()?;
        self.inner.delete_expired().await
    }
    async fn create(&self, key: &str, value: Bytes, expires_in: Option<Duration>) -> Result<bool> {
        self.write()?;
        self.inner.create(key, value, expires_in).await
    }
    async fn update(&self, key: &str, value: Bytes, expires_in: Option<Duration>) -> Result<bool> {
        self.write()?;
        self.inner.update(key, value, expires_in).await
    }
    async fn compare_and_set(
        &self,
        key: &str,
        expected: Bytes,
        value: Bytes,
        expires_in: Option<Duration>,
    ) -> Result<bool> {
        self.write()?;
        self.inner
            .compare_and_set(key, expected, value, expires_in)
            .await
    }
    async fn delete_live(&self, key: &str) -> Result<bool> {
        self.write()?;
        self.inner.delete_live(key).await
    }
}
