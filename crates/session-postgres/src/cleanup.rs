//! Coordinated cleanup: [`PostgresStore`]'s
//! [`StoreAdmin::cleanup`](session_core::StoreAdmin::cleanup) and
//! [`CleanupTarget`](session_core::cleanup::CleanupTarget), which only one
//! of many application servers runs at a time.

use std::future::Future;

use session_core::cleanup::CleanupTarget;
use session_core::{Result, Store, async_trait};
use tracing::Instrument;

use crate::error::statement_error;
use crate::store::PostgresStore;

impl PostgresStore {
    /// The session-level advisory lock key of this store's cleanup:
    /// FNV-1a (64 bit) of `session_postgres.cleanup:` and the qualified
    /// table name, the same in every process and build (and distinct from
    /// the key `create_table` and `migrate` take).
    pub fn cleanup_lock_key(&self) -> i64 {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in b"session_postgres.cleanup:"
            .iter()
            .chain(self.table().qualified().as_bytes())
        {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        i64::from_ne_bytes(hash.to_ne_bytes())
    }

    /// Runs `work` only if no other session holds this table's cleanup
    /// lock: `pg_try_advisory_lock(`[`cleanup_lock_key`](Self::cleanup_lock_key)`)`
    /// on a dedicated pooled connection, held while `work` runs (on other
    /// connections, e.g. `self.delete_expired()`), then released.
    /// `Ok(None)` when another instance holds it (nothing ran).
    ///
    /// If the lock cannot be released (an error, or the future is dropped
    /// mid-way), the connection holding it is closed instead of returned to
    /// the pool, so the server releases the lock.
    pub async fn try_with_cleanup_lock<T, F>(&self, work: F) -> Result<Option<T>>
    where
        F: Future<Output = Result<T>>,
    {
        let key = self.cleanup_lock_key();
        let table = self.table().qualified();
        let fail = |e| statement_error(e, "cleanup lock", &table, self.address());
        let client = self.client().await?;
        let locked: bool = client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
            .await
            .map_err(fail)?
            .try_get(0)
            .map_err(fail)?;
        if !locked {
            return Ok(None);
        }
        let mut guard = LockGuard(Some(client));
        let outcome = work.await;
        if let Some(client) = guard.0.as_ref() {
            let released = client
                .query_one("SELECT pg_advisory_unlock($1)", &[&key])
                .await
                .ok()
                .and_then(|row| row.try_get::<_, bool>(0).ok());
            if released == Some(true) {
                // Released: the connection may go back to the pool.
                guard.0 = None;
            } else {
                tracing::warn!("could not release the cleanup lock; closing its connection");
            }
        }
        drop(guard);
        outcome.map(Some)
    }
}

/// Holds the pooled connection of a held session lock; dropped while still
/// holding it, it closes the connection (the server then releases the
/// lock) instead of returning it to the pool.
struct LockGuard(Option<deadpool_postgres::Object>);

impl Drop for LockGuard {
    fn drop(&mut self) {
        if let Some(client) = self.0.take() {
            drop(deadpool_postgres::Object::take(client));
        }
    }
}

impl PostgresStore {
    /// One cleanup run under the table's cleanup lock: `Some(n)` rows
    /// removed by [`delete_expired`](Store::delete_expired), or `None` when
    /// another instance (another application server, or another cleaner in
    /// this one) is cleaning the same table, in which case this tick is
    /// skipped.
    pub(crate) async fn locked_cleanup(&self) -> Result<Option<u64>> {
        self.try_with_cleanup_lock(self.delete_expired())
            .instrument(self.span("cleanup"))
            .await
    }
}

/// Each run is one [`StoreAdmin::cleanup`](session_core::StoreAdmin::cleanup):
/// under the table's cleanup lock, skipped (`Ok(None)`) while another
/// instance holds it.
#[async_trait]
impl CleanupTarget for PostgresStore {
    async fn cleanup(&self) -> Result<Option<u64>> {
        self.locked_cleanup().await
    }
}
