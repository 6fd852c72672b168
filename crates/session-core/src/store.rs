//! The [`Store`] trait: the contract every session store fulfils.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::Result;

/// An async key/value store of opaque bytes with per-key expiry.
///
/// This is the Litestar `Store` protocol plus `delete_expired`, `create`,
/// `update`, `compare_and_set` and `delete_live`. Every method below states its contract; `session-conformance`
/// checks all of it, and a third-party store is correct when it passes that
/// suite. Rules that hold for every method:
///
/// * **Expired means expired everywhere.** A row past its expiry that
///   cleanup has not yet removed is invisible to [`get`](Store::get),
///   [`exists`](Store::exists) and [`expires_in`](Store::expires_in), and
///   [`create`](Store::create) may replace it.
/// * **Never early, at most one second late.** A key is visible until its
///   expiry time and gone at most one second after it (the coarsest
///   precision of any backend: SQLite's unix seconds).
/// * **Durations.** An `expires_in` of `None` or [`Duration::ZERO`] means
///   the key never expires. A `renew_for` of `None` or zero means no renewal.
///   Any other duration, however short, gives the key an expiry: a backend
///   coarser than the duration rounds the expiry up to its precision, never
///   down (500 ms never means "never expires", 1.5 s never 1 s).
///   Server databases compute and compare expiry on the database's clock.
/// * **Keys** are non-empty UTF-8 strings of at most
///   [`MAX_KEY_BYTES`](crate::MAX_KEY_BYTES) bytes without NUL; any other
///   key is an [`Error::InvalidKey`](crate::Error::InvalidKey) and reaches no
///   backend. **Values** are any bytes, the empty value included, up to at
///   least 1 MiB, returned byte-identical.
/// * **Concurrency.** Many tasks writing one key leave one of the written
///   values, whole; many tasks writing distinct keys lose none.
/// * **Errors are values.** Nothing panics; a backend error keeps its cause.
///
/// The trait is object safe: the middleware holds an `Arc<dyn Store>`.
#[async_trait]
pub trait Store: Send + Sync {
    /// Returns the value of `key` if it exists and has not expired, else
    /// `None`.
    ///
    /// With `renew_for = Some(d)` (non-zero) and a key that has an expiry,
    /// the key's expiry becomes now + `d`, atomically with the read (in one
    /// statement where the backend can). A key without expiry is not given
    /// one, and an expired key is not revived.
    async fn get(&self, key: &str, renew_for: Option<Duration>) -> Result<Option<Bytes>>;

    /// Inserts or replaces (upserts) `value` under `key` and resets its
    /// expiry to now + `expires_in`; `None` or zero means it never expires.
    ///
    /// A backend that records a creation time keeps it across this update;
    /// the update time moves.
    async fn set(&self, key: &str, value: Bytes, expires_in: Option<Duration>) -> Result<()>;

    /// Removes `key`. A missing key is not an error.
    async fn delete(&self, key: &str) -> Result<()>;

    /// Removes every key of this store (its table), and nothing else: other
    /// stores, even on the same database, are untouched.
    async fn delete_all(&self) -> Result<()>;

    /// True if and only if `key` is present and has not expired.
    async fn exists(&self, key: &str) -> Result<bool>;

    /// The remaining time to live of `key`; `None` if the key is missing,
    /// expired, or has no expiry.
    async fn expires_in(&self, key: &str) -> Result<Option<Duration>>;

    /// Removes expired rows and returns how many it removed. Never touches
    /// live or non-expiring keys.
    ///
    /// A store whose server expires keys by itself (Redis, Memcached) has
    /// nothing to remove: it returns 0 and says why in
    /// [`expires_by_itself`](Store::expires_by_itself).
    async fn delete_expired(&self) -> Result<u64>;

    /// Why [`delete_expired`](Store::delete_expired) has nothing to do,
    /// when the backend's server expires keys by itself (Redis,
    /// Memcached); the `sessions` CLI prints it beside the 0. Default:
    /// `None`, expired rows stay (invisible) until `delete_expired`
    /// removes them, and it returns their exact count.
    ///
    /// ```
    /// use session_core::{MemoryStore, Store};
    /// assert_eq!(MemoryStore::new().expires_by_itself(), None);
    /// ```
    fn expires_by_itself(&self) -> Option<&'static str> {
        None
    }

    /// Writes `value` under `key` only if no live row holds the key (an
    /// expired row may be replaced), with expiry as in [`set`](Store::set).
    /// Returns whether it wrote.
    ///
    /// Of many concurrent `create`s of one key, exactly one returns `true`.
    /// The middleware uses it for new sessions, so an id collision can never
    /// hand one user another's session.
    async fn create(&self, key: &str, value: Bytes, expires_in: Option<Duration>) -> Result<bool>;

    /// Replaces the value of `key` only if a live row holds it, resetting its
    /// expiry as in [`set`](Store::set). Returns whether it wrote.
    ///
    /// The middleware uses it for existing sessions, so a request that
    /// loaded a session before a concurrent logout cannot bring it back.
    async fn update(&self, key: &str, value: Bytes, expires_in: Option<Duration>) -> Result<bool>;

    /// Compare-and-set: replaces the value of `key` with `value` only if a
    /// live row holds exactly `expected` (byte for byte), resetting its
    /// expiry as in [`set`](Store::set). Returns whether it wrote; a
    /// changed, expired or missing row is left as it is. One statement (or
    /// round trip) where the backend can.
    ///
    /// Of many concurrent `compare_and_set`s of one key from the same
    /// `expected`, exactly one returns `true`. The middleware saves an
    /// existing session with it: a request that loaded the session, then
    /// lost a race to another request's save, learns so, reloads and
    /// re-applies only its own changes.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidKey`](crate::Error::InvalidKey); backend errors.
    async fn compare_and_set(
        &self,
        key: &str,
        expected: Bytes,
        value: Bytes,
        expires_in: Option<Duration>,
    ) -> Result<bool>;

    /// Removes `key` if a live row holds it and returns whether it did;
    /// `false` for a missing or expired key (an expired row may be removed
    /// too). Of many concurrent `delete_live`s of one key, exactly one
    /// returns `true`.
    ///
    /// The middleware removes the old row with it when it gives a session a
    /// new id, and goes on only if it was live: of a logout and an id
    /// change racing on one session, exactly one wins.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidKey`](crate::Error::InvalidKey); backend errors.
    async fn delete_live(&self, key: &str) -> Result<bool>;
}

macro_rules! forward_store {
    ($($ty:ty),*) => {$(
        #[async_trait]
        impl<S: Store + ?Sized> Store for $ty {
            async fn get(&self, key: &str, renew_for: Option<Duration>) -> Result<Option<Bytes>> {
                (**self).get(key, renew_for).await
            }
            async fn set(&self, key: &str, value: Bytes, expires_in: Option<Duration>) -> Result<()> {
                (**self).set(key, value, expires_in).await
            }
            async fn delete(&self, key: &str) -> Result<()> {
                (**self).delete(key).await
            }
            async fn delete_all(&self) -> Result<()> {
                (**self).delete_all().await
            }
            async fn exists(&self, key: &str) -> Result<bool> {
                (**self).exists(key).await
            }
            async fn expires_in(&self, key: &str) -> Result<Option<Duration>> {
                (**self).expires_in(key).await
            }
            async fn delete_expired(&self) -> Result<u64> {
                (**self).delete_expired().await
            }
            fn expires_by_itself(&self) -> Option<&'static str> {
                (**self).expires_by_itself()
            }
            async fn create(&self, key: &str, value: Bytes, expires_in: Option<Duration>) -> Result<bool> {
                (**self).create(key, value, expires_in).await
            }
            async fn update(&self, key: &str, value: Bytes, expires_in: Option<Duration>) -> Result<bool> {
                (**self).update(key, value, expires_in).await
            }
            async fn compare_and_set(
                &self,
                key: &str,
                expected: Bytes,
                value: Bytes,
                expires_in: Option<Duration>,
            ) -> Result<bool> {
                (**self).compare_and_set(key, expected, value, expires_in).await
            }
            async fn delete_live(&self, key: &str) -> Result<bool> {
                (**self).delete_live(key).await
            }
        }
    )*};
}

forward_store!(Arc<S>, Box<S>);

/// Normalises an `expires_in` or `renew_for` argument: `None` and zero both
/// mean "no expiry" / "no renewal", and come back as `None`.
///
/// ```
/// use std::time::Duration;
/// use session_core::non_zero;
/// assert_eq!(non_zero(Some(Duration::ZERO)), None);
/// assert_eq!(non_zero(Some(Duration::from_secs(3))), Some(Duration::from_secs(3)));
/// ```
pub fn non_zero(duration: Option<Duration>) -> Option<Duration> {
    duration.filter(|d| !d.is_zero())
}
