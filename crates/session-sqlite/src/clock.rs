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
    use rusqlite::{Connection, OptionalExtension, params};
    use session_core::TableName;

    use super::*;
    use crate::schema::{Statements, ddl};

    fn at(secs: u64, millis: u64) -> Now {
        Now(Duration::from_secs(secs) + Duration::from_millis(millis))
    }

    fn at_ms(ms: u64) -> Now {
        Now(Duration::from_millis(ms))
    }

    fn statements() -> Statements {
        Statements::new(&TableName::new("clock_sessions", 63).unwrap())
    }

    /// How the expiry of a write is computed: [`Now::expiry_after`], or a
    /// broken stand-in.
    type ExpiryOf = fn(Now, Duration) -> i64;

    /// What each statement of the store makes of the row `k` at `now`,
    /// with the parameters the store binds: whether it treats the row as
    /// live, by name, and the `expires_at` that `expires_in` reads. The
    /// writing statements run inside a savepoint that is rolled back, so
    /// every probe sees the row as written.
    #[derive(Clone)]
    struct Views {
        live: Vec<(&'static str, bool)>,
        expires_at: Option<Option<i64>>,
    }

    fn views(conn: &Connection, sql: &Statements, now: Now, expiry_of: ExpiryOf) -> Views {
        let s = now.secs();
        let later = Some(expiry_of(now, Duration::from_secs(3600)));
        let get = conn
            .prepare_cached(&sql.get)
            .unwrap()
            .query_row(params!["k", s], |r| r.get::<_, Vec<u8>>(0))
            .optional()
            .unwrap()
            .is_some();
        let exists = conn
            .prepare_cached(&sql.exists)
            .unwrap()
            .exists(params!["k", s])
            .unwrap();
        let expires_at: Option<Option<i64>> = conn
            .prepare_cached(&sql.expires_at)
            .unwrap()
            .query_row(params!["k", s], |r| r.get(0))
            .optional()
            .unwrap();
        let rolled_back = |probe: &dyn Fn() -> bool| {
            conn.execute_batch("SAVEPOINT probe").unwrap();
            let answer = probe();
            conn.execute_batch("ROLLBACK TO probe; RELEASE probe")
                .unwrap();
            answer
        };
        let renew = rolled_back(&|| {
            conn.prepare_cached(&sql.renew)
                .unwrap()
                .query_row(params!["k", s, later, s], |r| r.get::<_, Vec<u8>>(0))
                .optional()
                .unwrap()
                .is_some()
        });
        let update = rolled_back(&|| {
            conn.prepare_cached(&sql.update)
                .unwrap()
                .execute(params!["k", b"w".as_slice(), later, s])
                .unwrap()
                == 1
        });
        // `create` over the key succeeds only where the row is expired.
        let create_refused = rolled_back(&|| {
            conn.prepare_cached(&sql.create)
                .unwrap()
                .execute(params!["k", b"w".as_slice(), later, s])
                .unwrap()
                == 0
        });
        // `compare_and_set` from the value `check` wrote.
        let compare_and_set = rolled_back(&|| {
            conn.prepare_cached(&sql.compare_and_set)
                .unwrap()
                .execute(params!["k", b"w".as_slice(), later, s, b"v".as_slice()])
                .unwrap()
                == 1
        });
        let delete_live = rolled_back(&|| {
            conn.prepare_cached(&sql.delete_live)
                .unwrap()
                .execute(params!["k", s])
                .unwrap()
                == 1
        });
        let kept_by_cleanup = rolled_back(&|| {
            conn.prepare_cached(&sql.delete_expired)
                .unwrap()
                .execute(params![s, 1000])
                .unwrap()
                == 0
        });
        Views {
            live: vec![
                ("get", get),
                ("exists", exists),
                ("expires_at", expires_at.is_some()),
                ("renew", renew),
                ("update", update),
                ("create", create_refused),
                ("compare_and_set", compare_and_set),
                ("delete_live", delete_live),
                ("delete_expired", kept_by_cleanup),
            ],
            expires_at,
        }
    }

    /// Writes `k` with the store's `set` statement at `written_ms` (unix
    /// milliseconds) with time to live `ttl_ms`, then asks every statement
    /// about it at every millisecond from the write to the true expiry
    /// (live everywhere, and `expires_in` never shorter than the true time
    /// left) and over the two seconds that start one second after it (gone
    /// everywhere). The first violation is the error.
    ///
    /// The statements see the time as `now.secs()` alone, so they are asked
    /// once per second of `now.secs()`; what depends on the milliseconds
    /// (`now.secs()` itself, and `expires_in`) is checked at every one.
    fn check(sql: &Statements, expiry_of: ExpiryOf) -> Result<(), String> {
        for written_ms in [0, 1, 250, 999] {
            for ttl_ms in [1, 999, 1000, 1001, 2500] {
                let w = 1_000_000 + written_ms;
                let conn = Connection::open_in_memory().unwrap();
                for statement in ddl(&TableName::new("clock_sessions", 63).unwrap()) {
                    conn.execute_batch(&statement).unwrap();
                }
                let written = at_ms(w);
                let ttl = Duration::from_millis(ttl_ms);
                let expires_at = Some(expiry_of(written, ttl));
                conn.execute(
                    &sql.set,
                    params!["k", b"v".as_slice(), expires_at, written.secs()],
                )
                .unwrap();
                let expiry = w + ttl_ms;
                let case = format!("written at +{written_ms} ms with {ttl_ms} ms to live");
                let mut asked: Option<(i64, Views)> = None;
                let mut ask = |now: Now| -> Views {
                    if asked.as_ref().is_none_or(|(secs, _)| *secs != now.secs()) {
                        asked = Some((now.secs(), views(&conn, sql, now, expiry_of)));
                    }
                    asked.as_ref().unwrap().1.clone()
                };
                for t in w..expiry {
                    let now = at_ms(t);
                    let seen = ask(now);
                    if let Some((name, _)) = seen.live.iter().find(|(_, live)| !live) {
                        return Err(format!(
                            "{name}: early, gone {} ms before the expiry ({case})",
                            expiry - t
                        ));
                    }
                    let left = Duration::from_millis(expiry - t);
                    match seen.expires_at.flatten().map(|at| now.until(at)) {
                        Some(r) if r >= left && r < left + Duration::from_secs(1) => {}
                        other => {
                            return Err(format!(
                                "expires_in: {other:?} with {left:?} left ({case})"
                            ));
                        }
                    }
                }
                for t in (expiry + 1000)..(expiry + 3000) {
                    let seen = ask(at_ms(t));
                    if let Some((name, _)) = seen.live.iter().find(|(_, live)| *live) {
                        return Err(format!(
                            "{name}: late, live {} ms after the expiry ({case})",
                            t - expiry
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    #[test]
    fn every_statement_is_never_early_and_at_most_a_second_late() {
        check(&statements(), Now::expiry_after).unwrap();
    }

    /// The check above fails on a predicate off by one either way in any
    /// statement, and on an expiry rounded down.
    #[test]
    fn an_early_or_late_statement_is_caught() {
        type Edit = fn(&mut Statements) -> &mut String;
        let cases: [(Edit, &str, &str, &str); 12] = [
            (
                |s| &mut s.get,
                "expires_at > ?2",
                "expires_at >= ?2",
                "get: late",
            ),
            (
                |s| &mut s.get,
                "expires_at > ?2",
                "expires_at > ?2 + 1",
                "get: early",
            ),
            (
                |s| &mut s.exists,
                "expires_at > ?2",
                "expires_at >= ?2",
                "exists: late",
            ),
            (
                |s| &mut s.expires_at,
                "expires_at > ?2",
                "expires_at > ?2 + 1",
                "expires_at: early",
            ),
            (
                |s| &mut s.renew,
                "expires_at > ?2",
                "expires_at >= ?2",
                "renew: late",
            ),
            (
                |s| &mut s.update,
                "expires_at > ?4",
                "expires_at >= ?4",
                "update: late",
            ),
            (
                |s| &mut s.compare_and_set,
                "expires_at > ?4",
                "expires_at >= ?4",
                "compare_and_set: late",
            ),
            (
                |s| &mut s.compare_and_set,
                "expires_at > ?4",
                "expires_at > ?4 + 1",
                "compare_and_set: early",
            ),
            (
                |s| &mut s.delete_live,
                "expires_at > ?2",
                "expires_at >= ?2",
                "delete_live: late",
            ),
            (
                |s| &mut s.delete_live,
                "expires_at > ?2",
                "expires_at > ?2 + 1",
                "delete_live: early",
            ),
            (
                |s| &mut s.create,
                "expires_at <= ?4",
                "expires_at < ?4",
                "create: late",
            ),
            (
                |s| &mut s.delete_expired,
                "expires_at <= ?1",
                "expires_at <= ?1 + 1",
                "delete_expired: early",
            ),
        ];
        for (field, from, to, expected) in cases {
            let mut sql = statements();
            let text = field(&mut sql);
            assert!(text.contains(from), "{text}");
            *text = text.replace(from, to);
            let err = check(&sql, Now::expiry_after).expect_err(expected);
            assert!(err.starts_with(expected), "{expected}: {err}");
        }
        let rounded_down: ExpiryOf = |now, d| clamp(now.0.saturating_add(d).as_secs());
        let err = check(&statements(), rounded_down).expect_err("a rounded-down expiry");
        assert!(err.contains("early"), "{err}");
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
