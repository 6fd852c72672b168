//! Expiry arithmetic in whole unix seconds.
//!
//! SQLSpec's SQLite schema keeps `expires_at` as INTEGER unix seconds. With
//! `expires_at = ceil(now + d)` written and a row live iff
//! `expires_at > floor(now)`, a key written at `w` with time to live `d`
//! (true expiry `T = w + d`):
//!
//! * is never early: at any `t < T`, `floor(t) <= t < T <= ceil(T)`, so the
//!   row is live;
//! * is gone at most one second late: at any `t >= T + 1`,
//!   `floor(t) >= floor(T) + 1 >= ceil(T)`, so the row is not live.
//!
//! Both sides are plain integers, so SQLite compares the column directly and
//! the partial index on `expires_at` serves cleanup.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A reading of the wall clock.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Now(Duration);

impl Now {
    pub(crate) fn read() -> Self {
        // A clock before 1970 reads as the epoch: every expiry then lies in
        // the future, which errs on the side of never expiring early.
        Now(SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default())
    }

    /// `floor(now)` in unix seconds: what `expires_at` is compared with.
    pub(crate) fn secs(self) -> i64 {
        clamp(self.0.as_secs())
    }

    /// `ceil(now + d)` in unix seconds: the `expires_at` to write.
    pub(crate) fn expiry_after(self, d: Duration) -> i64 {
        let at = self.0.saturating_add(d);
        let secs = at
            .as_secs()
            .saturating_add(u64::from(at.subsec_nanos() > 0));
        clamp(secs)
    }

    /// The time from now until `expires_at` (zero if it has passed).
    pub(crate) fn until(self, expires_at: i64) -> Duration {
        let at = Duration::from_secs(u64::try_from(expires_at).unwrap_or(0));
        at.saturating_sub(self.0)
    }
}

fn clamp(secs: u64) -> i64 {
    i64::try_from(secs).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64, millis: u64) -> Now {
        Now(Duration::from_secs(secs) + Duration::from_millis(millis))
    }

    fn live(expires_at: i64, now: Now) -> bool {
        expires_at > now.secs()
    }

    #[test]
    fn never_early_and_at_most_a_second_late() {
        for written_ms in [0, 1, 250, 999] {
            for ttl_ms in [1, 999, 1000, 1001, 2500] {
                let written = at(1_000, written_ms);
                let e = written.expiry_after(Duration::from_millis(ttl_ms));
                let expiry_ms = 1_000_000 + written_ms + ttl_ms;
                // Every millisecond before the true expiry: live.
                for t in (expiry_ms - ttl_ms)..expiry_ms {
                    assert!(
                        live(e, at(0, t)),
                        "early at {t} ms (w={written_ms}, d={ttl_ms})"
                    );
                }
                // From one second after the true expiry on: gone.
                for t in (expiry_ms + 1000)..(expiry_ms + 3000) {
                    assert!(
                        !live(e, at(0, t)),
                        "late at {t} ms (w={written_ms}, d={ttl_ms})"
                    );
                }
            }
        }
    }

    #[test]
    fn huge_durations_saturate() {
        let e = at(5, 0).expiry_after(Duration::MAX);
        assert_eq!(e, i64::MAX);
        assert!(at(5, 0).until(e) > Duration::from_secs(1 << 40));
    }

    #[test]
    fn until_is_never_negative() {
        assert_eq!(at(10, 500).until(10), Duration::ZERO);
        assert_eq!(at(10, 500).until(11), Duration::from_millis(500));
        assert_eq!(at(10, 0).until(-3), Duration::ZERO);
    }
}
