//! Background cleanup: a tokio task that deletes expired sessions every
//! interval, so the session table never bloats.
//!
//! [`spawn_cleanup`] runs a [`CleanupTarget`] every
//! [`interval`](CleanupOptions::new) (each wait shortened or lengthened by a
//! random [`jitter`](CleanupOptions::jitter), so many application servers
//! started together do not clean in lock step). It logs every run with
//! `tracing` (target `session_core::cleanup`: counts only, never keys or
//! values), survives errors (logged, retried at the next tick) and stops
//! when its [`CleanupHandle`] is dropped or [`stop`](CleanupHandle::stop)ped.
//!
//! Any [`Store`] is a target through [`StoreCleanup`]. A store shared by
//! many application servers can do better: `session_postgres::PostgresStore`
//! implements [`CleanupTarget`] itself, taking a PostgreSQL advisory lock so
//! that only one server cleans at a time while the others skip that tick
//! (`Ok(None)`).
//!
//! ```
//! use std::time::Duration;
//! use session_core::cleanup::{CleanupOptions, StoreCleanup, spawn_cleanup};
//! use session_core::{Bytes, MemoryStore, Store};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> session_core::Result<()> {
//! let store = std::sync::Arc::new(MemoryStore::new());
//! store.set("old", Bytes::new(), Some(Duration::from_millis(1))).await?;
//! let cleaner = spawn_cleanup(
//!     StoreCleanup(store.clone()),
//!     CleanupOptions::new(Duration::from_millis(20)),
//! )?;
//! let stats = cleaner.wait_for_runs(2).await;
//! assert_eq!(stats.failures, 0);
//! cleaner.stop().await;
//! # Ok(()) }
//! ```

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::{Error, Result, Store};

/// Something a background cleaner runs once per tick.
#[async_trait]
pub trait CleanupTarget: Send + Sync {
    /// Removes expired sessions once. `Ok(Some(n))`: `n` rows removed.
    /// `Ok(None)`: skipped, because another instance is cleaning the same
    /// table right now (it holds the lock). An error is logged by the
    /// cleaner, which tries again at the next tick.
    async fn cleanup(&self) -> Result<Option<u64>>;
}

#[async_trait]
impl<T: CleanupTarget + ?Sized> CleanupTarget for Arc<T> {
    async fn cleanup(&self) -> Result<Option<u64>> {
        (**self).cleanup().await
    }
}

/// Any [`StoreAdmin`](crate::StoreAdmin) behind an `Arc` is a
/// [`CleanupTarget`]: each run is one
/// [`StoreAdmin::cleanup`](crate::StoreAdmin::cleanup), which takes the
/// backend's cleanup lock where it has one.
#[async_trait]
impl CleanupTarget for dyn crate::StoreAdmin {
    async fn cleanup(&self) -> Result<Option<u64>> {
        crate::StoreAdmin::cleanup(self).await
    }
}

/// Any [`Store`] as a [`CleanupTarget`]: each run is one
/// [`delete_expired`](Store::delete_expired), never skipped. Without a
/// lock, cleaners on many servers may run at once; that is correct (each
/// row is deleted once) but does redundant work.
#[derive(Debug, Clone)]
pub struct StoreCleanup<S>(pub S);

#[async_trait]
impl<S: Store> CleanupTarget for StoreCleanup<S> {
    async fn cleanup(&self) -> Result<Option<u64>> {
        self.0.delete_expired().await.map(Some)
    }
}

/// How often a background cleaner runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CleanupOptions {
    interval: Duration,
    jitter: f64,
}

impl CleanupOptions {
    /// The default jitter: each wait is the interval ± 10%.
    pub const DEFAULT_JITTER: f64 = 0.1;

    /// Runs every `interval` (more than zero), ± the default jitter. The
    /// first run comes one (jittered) interval after the spawn.
    pub fn new(interval: Duration) -> Self {
        CleanupOptions {
            interval,
            jitter: Self::DEFAULT_JITTER,
        }
    }

    /// Each wait is `interval × (1 ± fraction)`, chosen at random per
    /// tick; `fraction` is in `0.0..1.0` (0 for a fixed period).
    pub fn jitter(mut self, fraction: f64) -> Self {
        self.jitter = fraction;
        self
    }

    /// The configured interval.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// The configured jitter fraction.
    pub fn get_jitter(&self) -> f64 {
        self.jitter
    }

    fn validate(&self) -> Result<()> {
        if self.interval.is_zero() {
            return Err(Error::invalid_config(
                "cleanup.interval",
                "zero; it must be more than zero",
            ));
        }
        if !(self.jitter.is_finite() && (0.0..1.0).contains(&self.jitter)) {
            return Err(Error::invalid_config(
                "cleanup.jitter",
                format!("{} is outside 0.0..1.0", self.jitter),
            ));
        }
        Ok(())
    }

    /// One wait: the interval scaled by a random factor in
    /// `[1 - jitter, 1 + jitter]`.
    fn next_wait(&self) -> Duration {
        if self.jitter == 0.0 {
            return self.interval;
        }
        // Without randomness (it cannot fail on supported platforms) the
        // wait is simply the interval.
        let unit = getrandom::u64().map_or(0.5, |r| (r >> 11) as f64 / (1u64 << 53) as f64);
        self.interval
            .mul_f64(1.0 + self.jitter * (2.0 * unit - 1.0))
    }
}

/// What a background cleaner has done so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CleanupStats {
    /// Completed runs: cleaned, skipped or failed.
    pub runs: u64,
    /// Rows removed over all runs.
    pub removed: u64,
    /// Runs skipped because another instance held the lock.
    pub skipped: u64,
    /// Runs that failed (each logged).
    pub failures: u64,
    /// The message of the most recent failure, if any.
    pub last_error: Option<String>,
}

/// The handle of a background cleaner. Dropping it stops the cleaner (after
/// the run in progress, if any, finishes); [`stop`](Self::stop) does the
/// same and waits for it.
#[derive(Debug)]
pub struct CleanupHandle {
    stop: watch::Sender<bool>,
    stats: watch::Receiver<CleanupStats>,
    task: JoinHandle<()>,
}

impl CleanupHandle {
    /// The counts so far.
    pub fn stats(&self) -> CleanupStats {
        self.stats.borrow().clone()
    }

    /// Waits until at least `runs` runs have completed and returns the
    /// counts then (or the final counts, if the cleaner ended first).
    pub async fn wait_for_runs(&self, runs: u64) -> CleanupStats {
        let mut rx = self.stats.clone();
        if let Ok(stats) = rx.wait_for(|s| s.runs >= runs).await {
            return stats.clone();
        }
        self.stats.borrow().clone()
    }

    /// Stops the cleaner and waits until it has ended: a run in progress
    /// finishes first, no new one starts. Returns the final counts.
    pub async fn stop(self) -> CleanupStats {
        let _ = self.stop.send(true);
        if let Err(e) = self.task.await {
            tracing::warn!(target: "session_core::cleanup", error = %e, "the cleanup task ended abnormally");
        }
        self.stats.borrow().clone()
    }
}

/// Spawns a task on the current tokio runtime that runs `target` every
/// interval of `options` (jittered) until the returned handle is dropped or
/// stopped.
///
/// Every run is logged (`info` when rows were removed, `debug` otherwise,
/// `warn` on an error, which does not stop the cleaner: the next tick tries
/// again). A panic inside a run is caught and counted as a failure.
///
/// Errors: [`Error::InvalidConfig`] for a zero interval or a jitter outside
/// `0.0..1.0`; [`Error::Backend`] when called outside a tokio runtime.
pub fn spawn_cleanup<T>(target: T, options: CleanupOptions) -> Result<CleanupHandle>
where
    T: CleanupTarget + 'static,
{
    options.validate()?;
    let runtime = tokio::runtime::Handle::try_current().map_err(|e| {
        Error::backend(
            "cleanup",
            "spawn_cleanup must be called within a tokio runtime",
            e,
        )
    })?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let (stats_tx, stats_rx) = watch::channel(CleanupStats::default());
    let target: Arc<dyn CleanupTarget> = Arc::new(target);
    let task = runtime.spawn(run(target, options, stop_rx, stats_tx));
    Ok(CleanupHandle {
        stop: stop_tx,
        stats: stats_rx,
        task,
    })
}

async fn run(
    target: Arc<dyn CleanupTarget>,
    options: CleanupOptions,
    mut stop: watch::Receiver<bool>,
    stats: watch::Sender<CleanupStats>,
) {
    tracing::debug!(target: "session_core::cleanup", interval = ?options.interval, "background cleanup started");
    loop {
        // Ends on a stop request and when the handle was dropped (the
        // sender is gone); times out at the tick.
        let wait = options.next_wait();
        if tokio::time::timeout(wait, stop.wait_for(|stopped| *stopped))
            .await
            .is_ok()
        {
            break;
        }
        let t = Arc::clone(&target);
        let outcome = tokio::spawn(async move { t.cleanup().await }).await;
        stats.send_modify(|s| {
            s.runs += 1;
            match outcome {
                Ok(Ok(Some(removed))) => {
                    s.removed += removed;
                    if removed > 0 {
                        tracing::info!(target: "session_core::cleanup", removed, "expired sessions deleted");
                    } else {
                        tracing::debug!(target: "session_core::cleanup", removed, "no expired sessions");
                    }
                }
                Ok(Ok(None)) => {
                    s.skipped += 1;
                    tracing::debug!(target: "session_core::cleanup", "skipped: another instance is cleaning");
                }
                Ok(Err(e)) => {
                    s.failures += 1;
                    tracing::warn!(target: "session_core::cleanup", error = %crate::error_chain(&e), "cleanup failed; retrying at the next tick");
                    s.last_error = Some(crate::error_chain(&e));
                }
                Err(join) => {
                    s.failures += 1;
                    tracing::warn!(target: "session_core::cleanup", error = %join, "cleanup run panicked; retrying at the next tick");
                    s.last_error = Some(join.to_string());
                }
            }
        });
    }
    tracing::debug!(target: "session_core::cleanup", "background cleanup stopped");
}

/// Runs `batch` — one statement deleting at most `batch_size` expired rows
/// and returning how many it deleted — until a batch deletes fewer than
/// `batch_size`, and returns the total: the loop of every adapter's batched
/// `delete_expired`, for backends whose driver is blocking.
///
/// ```
/// let mut left = 2_500u64;
/// let total = session_core::cleanup::delete_in_batches(1_000, || {
///     let n = left.min(1_000);
///     left -= n;
///     Ok::<_, session_core::Error>(n)
/// })
/// .unwrap();
/// assert_eq!(total, 2_500);
/// ```
pub fn delete_in_batches<E>(
    batch_size: u64,
    mut batch: impl FnMut() -> std::result::Result<u64, E>,
) -> std::result::Result<u64, E> {
    let mut total = 0;
    loop {
        let removed = batch()?;
        total += removed;
        if removed < batch_size {
            return Ok(total);
        }
    }
}

/// Checks the `limit` of one cleanup batch
/// ([`StoreAdmin::delete_expired_batch`](crate::StoreAdmin::delete_expired_batch)):
/// at least one row.
///
/// # Errors
///
/// [`Error::InvalidConfig`] for `batch_size` when `limit` is 0.
pub fn check_batch_limit(limit: u32) -> Result<()> {
    if limit == 0 {
        return Err(Error::invalid_config(
            "batch_size",
            "0 rows; at least 1 is needed",
        ));
    }
    Ok(())
}

/// The async twin of [`delete_in_batches`], for async drivers.
pub async fn delete_in_batches_async<F, Fut, E>(
    batch_size: u64,
    mut batch: F,
) -> std::result::Result<u64, E>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = std::result::Result<u64, E>>,
{
    let mut total = 0;
    loop {
        let removed = batch().await?;
        total += removed;
        if removed < batch_size {
            return Ok(total);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_validated() {
        assert!(CleanupOptions::new(Duration::ZERO).validate().is_err());
        let err = CleanupOptions::new(Duration::from_secs(1))
            .jitter(1.5)
            .validate()
            .unwrap_err();
        assert!(err.to_string().contains("cleanup.jitter"), "{err}");
        assert!(
            CleanupOptions::new(Duration::from_secs(1))
                .validate()
                .is_ok()
        );
    }

    /// Checks 1,000 draws of `wait` against `interval × (1 ± jitter)`: each
    /// within that range, and every tenth of the range drawn at least once
    /// (a uniform draw misses one with a probability below 1e-44), so a
    /// wait that ignores the jitter, or applies part of it or one side of
    /// it, fails.
    fn check_jittered(
        mut wait: impl FnMut() -> Duration,
        interval: Duration,
        jitter: f64,
    ) -> std::result::Result<(), String> {
        let low = interval.mul_f64(1.0 - jitter);
        let high = interval.mul_f64(1.0 + jitter);
        let mut tenths = [0u32; 10];
        for _ in 0..1000 {
            let w = wait();
            if w < low || w > high {
                return Err(format!("{w:?} is outside {low:?}..={high:?}"));
            }
            let tenth = ((w - low).as_secs_f64() / (high - low).as_secs_f64() * 10.0) as usize;
            tenths[tenth.min(9)] += 1;
        }
        if tenths.contains(&0) {
            return Err(format!(
                "the waits do not cover {low:?}..={high:?}: {tenths:?} per tenth of it"
            ));
        }
        Ok(())
    }

    #[test]
    fn waits_stay_within_the_jitter() {
        let interval = Duration::from_secs(100);
        let options = CleanupOptions::new(interval).jitter(0.2);
        check_jittered(|| options.next_wait(), interval, 0.2).unwrap();
        let small = CleanupOptions::new(Duration::from_millis(5)).jitter(0.5);
        check_jittered(|| small.next_wait(), Duration::from_millis(5), 0.5).unwrap();
        let fixed = CleanupOptions::new(Duration::from_secs(7)).jitter(0.0);
        assert_eq!(fixed.next_wait(), Duration::from_secs(7));
    }

    /// The check above fails on waits that ignore the jitter, apply half of
    /// it, or only lengthen the interval.
    #[test]
    fn a_wait_that_ignores_the_jitter_is_caught() {
        let interval = Duration::from_secs(100);
        let err = check_jittered(|| interval, interval, 0.2).unwrap_err();
        assert!(err.contains("do not cover"), "{err}");
        let half = CleanupOptions::new(interval).jitter(0.1);
        assert!(check_jittered(|| half.next_wait(), interval, 0.2).is_err());
        let options = CleanupOptions::new(interval).jitter(0.2);
        let longer_only = || {
            let w = options.next_wait();
            if w < interval { interval * 2 - w } else { w }
        };
        assert!(check_jittered(longer_only, interval, 0.2).is_err());
    }

    #[test]
    fn spawning_outside_a_runtime_is_an_error() {
        let err = spawn_cleanup(
            StoreCleanup(crate::MemoryStore::new()),
            CleanupOptions::new(Duration::from_secs(1)),
        )
        .unwrap_err();
        assert!(err.to_string().contains("tokio runtime"), "{err}");
    }
}
