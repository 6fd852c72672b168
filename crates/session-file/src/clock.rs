//! Expiry arithmetic in unix nanoseconds.
//!
//! A session file keeps its expiry as unix nanoseconds, so the expiry
//! written is exactly the moment of the write plus the duration given (no
//! rounding is needed: nothing coarser than the clock is involved), and a
//! key is live while the clock reads before that moment. Every process on
//! the machine reads the same clock.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A reading of the wall clock, in unix nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Now(u64);

impl Now {
    pub(crate) fn read() -> Self {
        // A clock before 1970 reads as the epoch: every expiry then lies in
        // the future, which errs on the side of never expiring early.
        Now(SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, nanos))
    }

    #[cfg(test)]
    pub(crate) fn at(nanos: u64) -> Self {
        Now(nanos)
    }

    /// The reading itself, for `created_at` and `updated_at`.
    pub(crate) fn nanos(self) -> u64 {
        self.0
    }

    /// The expiry of a write now with time to live `d` (more than zero):
    /// now + `d`, to the nanosecond, saturating far in the future. Never 0
    /// (0 on disk means "never expires").
    pub(crate) fn after(self, d: Duration) -> u64 {
        self.0.saturating_add(nanos(d)).max(1)
    }

    /// True while an expiry of `expires_at` (`None`: never) has not come.
    pub(crate) fn is_before(self, expires_at: Option<u64>) -> bool {
        expires_at.is_none_or(|at| self.0 < at)
    }

    /// The time from now until `expires_at` (zero if it has passed).
    pub(crate) fn until(self, expires_at: u64) -> Duration {
        Duration::from_nanos(expires_at.saturating_sub(self.0))
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_is_exact_and_never_early() {
        let now = Now::at(1_000_000_000);
        let at = now.after(Duration::from_millis(500));
        assert_eq!(at, 1_500_000_000);
        assert!(Now::at(1_499_999_999).is_before(Some(at)));
        assert!(!Now::at(1_500_000_000).is_before(Some(at)));
        assert!(Now::at(u64::MAX).is_before(None));
        // One nanosecond still gives an expiry, never "never".
        assert_eq!(Now::at(0).after(Duration::from_nanos(1)), 1);
    }

    #[test]
    fn huge_durations_saturate() {
        let at = Now::at(5).after(Duration::MAX);
        assert_eq!(at, u64::MAX);
        assert!(Now::read().until(at) > Duration::from_secs(1 << 33));
    }

    #[test]
    fn until_is_never_negative() {
        assert_eq!(Now::at(10).until(3), Duration::ZERO);
        assert_eq!(Now::at(10).until(15), Duration::from_nanos(5));
    }
}
