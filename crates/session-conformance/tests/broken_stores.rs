//! The suite has teeth: each deliberately broken store below fails the case
//! aimed at its defect, for the reason that case names; and the same store
//! without a defect passes every case, so no failure comes from the harness.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::future::join_all;
use session_conformance::{Outcome, StoreFactory, run_all, run_case};
use session_core::{Result, Store, async_trait, non_zero, validate_key};

/// Which defect a [`Broken`] store has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Defect {
    /// Stores every key without expiry.
    IgnoresExpiry,
    /// Expires every key 250 ms before its time.
    ExpiresEarly,
    /// Converts durations with `Duration::as_secs()`: 500 ms becomes zero
    /// ("never expires"), 1.5 s becomes 1 s.
    TruncatesToWholeSeconds,
    /// A renewing get gives an expiry to a key that had none.
    RenewsPermanentKeys,
    /// A renewing get does not renew.
    IgnoresRenewal,
    /// A renewing get of an expired key gives it a new expiry.
    RenewRevivesExpiredKeys,
    /// `delete_all` clears the shared backend, reaching other stores.
    DeleteAllReachesOtherStores,
    /// `create` reads, then writes, in two round trips; `widened` sleeps
    /// between them.
    CreateIsNotAtomic { widened: bool },
    /// `create` refuses any row of the key, an expired one included.
    CreateRefusesExpiredRows,
    /// `update` writes whether or not the key is live.
    UpdateRevivesKeys,
    /// `delete_expired` removes rows but reports none.
    MiscountsCleanup,
    /// Keys longer than the limit are silently cut to 200 bytes.
    TruncatesLongKeys,
    /// Keys with NUL pass validation.
    AcceptsNulKeys,
    /// Values above 32 KiB are cut to 32 KiB.
    TruncatesLargeValues,
    /// `set` writes a value in two halves, in two round trips, and lets a
    /// concurrent writer in between.
    TearsConcurrentWrites,
    /// Every read takes 250 ms: too slow to check "never early", which
    /// must then fail, not pass unchecked.
    SlowReads,
    /// `compare_and_set` writes any live row, whatever it holds.
    CasIgnoresExpected,
    /// `compare_and_set` compares, then writes, in two round trips;
    /// `widened` sleeps between them.
    CasIsNotAtomic { widened: bool },
    /// `compare_and_set` compares with an expired row's value too, and
    /// writes it back to life.
    CasRevivesExpiredRows,
    /// `compare_and_set` is an upsert: a missing key is written.
    CasCreatesMissingKeys,
    /// `compare_and_set` writes the value but keeps the old expiry.
    CasKeepsExpiry,
    /// `compare_and_set` compares only the first 32 KiB of the values.
    CasComparesPrefix,
    /// `delete_live` removes the key and says `true`, live or not.
    DeleteLiveAlwaysTrue,
    /// `delete_live` checks the row is live, then deletes it, in two round
    /// trips.
    DeleteLiveIsNotAtomic,
    /// Keys are stored lower-cased (a case-insensitive collation).
    FoldsCase,
    /// Keys are stored without leading and trailing whitespace.
    TrimsWhitespace,
    /// Keys are stored cut to their first 200 bytes (a narrow column that
    /// truncates); validation sees the whole key.
    TruncatesKeysAt200Bytes,
    /// Keys are stored with every non-ASCII character replaced by `?` (a
    /// column in a single-byte character set).
    ReplacesNonAscii,
}

struct Row {
    value: Bytes,
    expires_at: Option<Instant>,
}

impl Row {
    fn live(&self, now: Instant) -> bool {
        self.expires_at.is_none_or(|at| at > now)
    }
}

/// Rows of every store of one factory, by store and key: stores share a
/// backend (as tables share a database) without touching the keys.
type Rows = Arc<Mutex<HashMap<(usize, String), Row>>>;

/// A store over a map, honest but for its one defect. Every operation
/// starts with a yield to the scheduler, as a database round trip would.
struct Broken {
    defect: Option<Defect>,
    id: usize,
    rows: Rows,
    /// Writers started, for [`Defect::TearsConcurrentWrites`].
    writers: AtomicUsize,
    writer_started: tokio::sync::Notify,
}

impl Broken {
    fn has(&self, defect: Defect) -> bool {
        self.defect == Some(defect)
    }

    fn key(&self, key: &str) -> Result<(usize, String)> {
        let key = if self.has(Defect::TruncatesLongKeys) && key.len() > 255 {
            let mut end = 200;
            while !key.is_char_boundary(end) {
                end -= 1;
            }
            &key[..end]
        } else {
            key
        };
        if self.has(Defect::AcceptsNulKeys) {
            validate_key(&key.replace('\0', "_"))?;
        } else {
            validate_key(key)?;
        }
        // What a valid key is stored as.
        let stored = match self.defect {
            Some(Defect::FoldsCase) => key.to_lowercase(),
            Some(Defect::TrimsWhitespace) => key.trim().to_owned(),
            Some(Defect::TruncatesKeysAt200Bytes) => {
                let mut end = key.len().min(200);
                while !key.is_char_boundary(end) {
                    end -= 1;
                }
                key[..end].to_owned()
            }
            Some(Defect::ReplacesNonAscii) => key
                .chars()
                .map(|c| if c.is_ascii() { c } else { '?' })
                .collect(),
            _ => key.to_owned(),
        };
        Ok((self.id, stored))
    }

    /// The expiry a write of `expires_in` at `now` gives a key.
    fn deadline(&self, now: Instant, expires_in: Option<Duration>) -> Option<Instant> {
        let d = match self.defect {
            Some(Defect::IgnoresExpiry) => return None,
            Some(Defect::TruncatesToWholeSeconds) => {
                non_zero(expires_in.map(|d| Duration::from_secs(d.as_secs())))?
            }
            _ => non_zero(expires_in)?,
        };
        Some(match self.defect {
            Some(Defect::ExpiresEarly) => (now + d)
                .checked_sub(Duration::from_millis(250))
                .unwrap_or(now),
            _ => now + d,
        })
    }

    async fn round_trip(&self) {
        tokio::task::yield_now().await;
    }

    async fn read_round_trip(&self) {
        if self.has(Defect::SlowReads) {
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        self.round_trip().await;
    }

    fn rows(&self) -> std::sync::MutexGuard<'_, HashMap<(usize, String), Row>> {
        self.rows.lock().unwrap()
    }

    /// The torn write: the first half now, the second half appended once a
    /// later writer has written its first half (or 100 ms passed, for the
    /// last writer).
    async fn torn_set(&self, k: (usize, String), value: Bytes, expires_at: Option<Instant>) {
        let (first, second) = value.split_at(value.len() / 2);
        let ticket = {
            let mut rows = self.rows();
            rows.insert(
                k.clone(),
                Row {
                    value: Bytes::copy_from_slice(first),
                    expires_at,
                },
            );
            self.writers.fetch_add(1, Ordering::SeqCst)
        };
        self.writer_started.notify_waiters();
        let later_writer = async {
            loop {
                let started = self.writer_started.notified();
                tokio::pin!(started);
                started.as_mut().enable();
                if self.writers.load(Ordering::SeqCst) > ticket + 1 {
                    return;
                }
                started.await;
            }
        };
        let _ = tokio::time::timeout(Duration::from_millis(100), later_writer).await;
        self.round_trip().await;
        if let Some(row) = self.rows().get_mut(&k) {
            row.value = [&row.value[..], second].concat().into();
        }
    }
}

#[async_trait]
impl Store for Broken {
    async fn get(&self, key: &str, renew_for: Option<Duration>) -> Result<Option<Bytes>> {
        let k = self.key(key)?;
        self.read_round_trip().await;
        let now = Instant::now();
        let mut rows = self.rows();
        let Some(row) = rows.get_mut(&k) else {
            return Ok(None);
        };
        let renew = non_zero(renew_for).is_some();
        match self.defect {
            Some(Defect::IgnoresRenewal) => {}
            Some(Defect::RenewsPermanentKeys) if renew && row.live(now) => {
                row.expires_at = self.deadline(now, renew_for);
            }
            Some(Defect::RenewRevivesExpiredKeys) if renew && row.expires_at.is_some() => {
                row.expires_at = self.deadline(now, renew_for);
            }
            _ if renew && row.live(now) && row.expires_at.is_some() => {
                row.expires_at = self.deadline(now, renew_for);
            }
            _ => {}
        }
        Ok(row.live(now).then(|| row.value.clone()))
    }

    async fn set(&self, key: &str, value: Bytes, expires_in: Option<Duration>) -> Result<()> {
        let k = self.key(key)?;
        self.round_trip().await;
        let value = match self.defect {
            Some(Defect::TruncatesLargeValues) if value.len() > 32 * 1024 => {
                value.slice(..32 * 1024)
            }
            _ => value,
        };
        let expires_at = self.deadline(Instant::now(), expires_in);
        if self.has(Defect::TearsConcurrentWrites) {
            self.torn_set(k, value, expires_at).await;
        } else {
            self.rows().insert(k, Row { value, expires_at });
        }
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let k = self.key(key)?;
        self.round_trip().await;
        self.rows().remove(&k);
        Ok(())
    }

    async fn delete_all(&self) -> Result<()> {
        self.round_trip().await;
        if self.has(Defect::DeleteAllReachesOtherStores) {
            self.rows().clear();
        } else {
            self.rows().retain(|(id, _), _| *id != self.id);
        }
        Ok(())
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        let k = self.key(key)?;
        self.read_round_trip().await;
        let now = Instant::now();
        Ok(self.rows().get(&k).is_some_and(|row| row.live(now)))
    }

    async fn expires_in(&self, key: &str) -> Result<Option<Duration>> {
        let k = self.key(key)?;
        self.read_round_trip().await;
        let now = Instant::now();
        Ok(self
            .rows()
            .get(&k)
            .filter(|row| row.live(now))
            .and_then(|row| row.expires_at)
            .map(|at| at - now))
    }

    async fn delete_expired(&self) -> Result<u64> {
        self.round_trip().await;
        let now = Instant::now();
        let mut rows = self.rows();
        let before = rows.len();
        rows.retain(|(id, _), row| *id != self.id || row.live(now));
        let removed = (before - rows.len()) as u64;
        Ok(if self.has(Defect::MiscountsCleanup) {
            0
        } else {
            removed
        })
    }

    async fn create(&self, key: &str, value: Bytes, expires_in: Option<Duration>) -> Result<bool> {
        let k = self.key(key)?;
        self.round_trip().await;
        let now = Instant::now();
        if let Some(Defect::CreateIsNotAtomic { widened }) = self.defect {
            if self.rows().get(&k).is_some_and(|row| row.live(now)) {
                return Ok(false);
            }
            // The write is a second round trip.
            if widened {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            self.round_trip().await;
            let expires_at = self.deadline(Instant::now(), expires_in);
            self.rows().insert(k, Row { value, expires_at });
            return Ok(true);
        }
        let mut rows = self.rows();
        let taken = match rows.get(&k) {
            Some(_) if self.has(Defect::CreateRefusesExpiredRows) => true,
            Some(row) => row.live(now),
            None => false,
        };
        if taken {
            return Ok(false);
        }
        let expires_at = self.deadline(now, expires_in);
        rows.insert(k, Row { value, expires_at });
        Ok(true)
    }

    async fn update(&self, key: &str, value: Bytes, expires_in: Option<Duration>) -> Result<bool> {
        let k = self.key(key)?;
        self.round_trip().await;
        let now = Instant::now();
        let mut rows = self.rows();
        let live = rows.get(&k).is_some_and(|row| row.live(now));
        if !live && !self.has(Defect::UpdateRevivesKeys) {
            return Ok(false);
        }
        let expires_at = self.deadline(now, expires_in);
        rows.insert(k, Row { value, expires_at });
        Ok(true)
    }

    async fn compare_and_set(
        &self,
        key: &str,
        expected: Bytes,
        value: Bytes,
        expires_in: Option<Duration>,
    ) -> Result<bool> {
        let k = self.key(key)?;
        self.round_trip().await;
        let now = Instant::now();
        if let Some(Defect::CasIsNotAtomic { widened }) = self.defect {
            let holds = |row: &Row| row.live(now) && row.value == expected;
            if !self.rows().get(&k).is_some_and(holds) {
                return Ok(false);
            }
            // The write is a second round trip.
            if widened {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            self.round_trip().await;
            let expires_at = self.deadline(Instant::now(), expires_in);
            self.rows().insert(k, Row { value, expires_at });
            return Ok(true);
        }
        let mut rows = self.rows();
        let writes = match rows.get(&k) {
            None => self.has(Defect::CasCreatesMissingKeys),
            Some(row) => {
                (row.live(now) || self.has(Defect::CasRevivesExpiredRows))
                    && (self.has(Defect::CasIgnoresExpected)
                        || if self.has(Defect::CasComparesPrefix) {
                            let prefix = |v: &Bytes| v.slice(..v.len().min(32 * 1024));
                            prefix(&row.value) == prefix(&expected)
                        } else {
                            row.value == expected
                        })
            }
        };
        if !writes {
            return Ok(false);
        }
        let expires_at = match rows.get(&k) {
            Some(row) if self.has(Defect::CasKeepsExpiry) => row.expires_at,
            _ => self.deadline(now, expires_in),
        };
        rows.insert(k, Row { value, expires_at });
        Ok(true)
    }

    async fn delete_live(&self, key: &str) -> Result<bool> {
        let k = self.key(key)?;
        self.round_trip().await;
        let now = Instant::now();
        if self.has(Defect::DeleteLiveIsNotAtomic) {
            if !self.rows().get(&k).is_some_and(|row| row.live(now)) {
                return Ok(false);
            }
            // The delete is a second round trip.
            self.round_trip().await;
            self.rows().remove(&k);
            return Ok(true);
        }
        let removed = self.rows().remove(&k);
        Ok(self.has(Defect::DeleteLiveAlwaysTrue) || removed.is_some_and(|row| row.live(now)))
    }
}

struct BrokenFactory {
    defect: Option<Defect>,
    rows: Rows,
    made: AtomicUsize,
}

impl BrokenFactory {
    fn new(defect: Option<Defect>) -> Self {
        BrokenFactory {
            defect,
            rows: Rows::default(),
            made: AtomicUsize::new(0),
        }
    }
}

impl StoreFactory for BrokenFactory {
    type Store = Broken;
    async fn new_store(&self) -> std::result::Result<Broken, session_conformance::Skip> {
        Ok(Broken {
            defect: self.defect,
            id: self.made.fetch_add(1, Ordering::SeqCst),
            rows: self.rows.clone(),
            writers: AtomicUsize::new(0),
            writer_started: tokio::sync::Notify::new(),
        })
    }
}

/// Each defect, the case aimed at it, and what that case's failure must
/// say: the reason it names, not any failure. A race that one round of a
/// concurrency case happens to miss, a later round catches: those reasons
/// do not name the round's key.
const AIMED: &[(Defect, &str, &[&str])] = &[
    (
        Defect::IgnoresExpiry,
        "expired_keys_are_invisible_everywhere",
        &["after expiry, before any cleanup: get returned Some"],
    ),
    (
        Defect::ExpiresEarly,
        "never_early_and_gone_within_a_second",
        &[
            "`set` with 1s: `",
            "` found the key gone",
            "(expired early)",
        ],
    ),
    (
        Defect::TruncatesToWholeSeconds,
        "expiry_of_half_a_second_is_kept",
        &["`set` with 500ms: `expires_in` of `set` returned None while the key exists"],
    ),
    (
        Defect::TruncatesToWholeSeconds,
        "fractional_seconds_are_never_rounded_down",
        &["found the key gone", "(expired early)"],
    ),
    (
        Defect::RenewsPermanentKeys,
        "renew_leaves_permanent_key_permanent",
        &["a renewing get gave a key without expiry the expiry Some("],
    ),
    (
        Defect::IgnoresRenewal,
        "renew_extends_expiry",
        &["get renewing for 500 s: expires_in Some("],
    ),
    (
        Defect::RenewRevivesExpiredKeys,
        "renew_does_not_revive_expired_key",
        &["renewing get of an expired key returned Some"],
    ),
    (
        Defect::DeleteAllReachesOtherStores,
        "delete_all_spares_other_stores",
        &["delete_all on one store changed another store's key to None"],
    ),
    (
        Defect::CreateIsNotAtomic { widened: true },
        "concurrent_creates_of_one_key_have_one_winner",
        &[
            "of 16 concurrent creates of `k",
            "` returned true (more than one winner)",
        ],
    ),
    (
        Defect::CreateIsNotAtomic { widened: false },
        "concurrent_creates_of_one_key_have_one_winner",
        &[
            "of 16 concurrent creates of `k",
            "` returned true (more than one winner)",
        ],
    ),
    (
        Defect::CreateRefusesExpiredRows,
        "create_replaces_an_expired_row",
        &["create over an expired row returned false"],
    ),
    (
        Defect::UpdateRevivesKeys,
        "update_refuses_an_expired_key",
        &["update of an expired key returned true"],
    ),
    (
        Defect::UpdateRevivesKeys,
        "update_refuses_a_missing_key",
        &["update of a missing key returned true"],
    ),
    (
        Defect::MiscountsCleanup,
        "delete_expired_counts_exactly",
        &["delete_expired with 3 expired rows returned 0"],
    ),
    (
        Defect::TruncatesLongKeys,
        "key_of_256_bytes_is_rejected",
        &["get: expected Error::InvalidKey, got Ok("],
    ),
    (
        Defect::AcceptsNulKeys,
        "key_with_nul_is_rejected",
        &["get: expected Error::InvalidKey, got Ok("],
    ),
    (
        Defect::TruncatesLargeValues,
        "value_of_32k_plus_1_round_trips",
        &["a 32769-byte value came back as Some(<32768 bytes>)"],
    ),
    (
        Defect::TearsConcurrentWrites,
        "concurrent_writes_to_one_key_leave_one_whole_value",
        &[
            "after 64 concurrent writes the value is Some(<",
            "none of the written ones",
        ],
    ),
    (
        Defect::SlowReads,
        "never_early_and_gone_within_a_second",
        &[
            "the store answered too slowly to check that keys never expire early, in 3 attempts",
            "`set` with 1s: ",
        ],
    ),
    (
        Defect::CasIgnoresExpected,
        "compare_and_set_refuses_a_changed_value",
        &["compare_and_set against a changed value returned true"],
    ),
    (
        Defect::CasIgnoresExpected,
        "concurrent_compare_and_sets_of_one_key_have_one_winner",
        &[
            "16 of 16 concurrent compare_and_sets of `k0` from the same value returned true (more than one winner)",
        ],
    ),
    (
        Defect::CasIsNotAtomic { widened: true },
        "concurrent_compare_and_sets_of_one_key_have_one_winner",
        &[
            "of 16 concurrent compare_and_sets of `k",
            "` from the same value returned true (more than one winner)",
        ],
    ),
    (
        Defect::CasIsNotAtomic { widened: false },
        "concurrent_compare_and_sets_of_one_key_have_one_winner",
        &[
            "of 16 concurrent compare_and_sets of `k",
            "` from the same value returned true (more than one winner)",
        ],
    ),
    (
        Defect::CasRevivesExpiredRows,
        "compare_and_set_refuses_an_expired_row",
        &["compare_and_set against an expired row returned true"],
    ),
    (
        Defect::CasCreatesMissingKeys,
        "compare_and_set_refuses_a_missing_key",
        &["compare_and_set against a missing key returned true (expected b\"loaded\""],
    ),
    (
        Defect::CasKeepsExpiry,
        "compare_and_set_writes_a_live_key",
        &["compare_and_set with 500 s after 10 s: expires_in Some("],
    ),
    (
        Defect::CasComparesPrefix,
        "compare_and_set_compares_large_values_whole",
        &[
            "compare_and_set against a 32769-byte value returned true for an expected value that differs in the last byte",
        ],
    ),
    (
        Defect::DeleteLiveAlwaysTrue,
        "delete_live_of_missing_key_is_false",
        &["delete_live of a missing key returned true"],
    ),
    (
        Defect::DeleteLiveAlwaysTrue,
        "delete_live_of_expired_key_is_false",
        &["delete_live of an expired key returned true"],
    ),
    (
        Defect::DeleteLiveAlwaysTrue,
        "concurrent_delete_lives_of_one_key_have_one_winner",
        &["16 of 16 concurrent delete_lives of `k0` returned true (more than one winner)"],
    ),
    (
        Defect::DeleteLiveIsNotAtomic,
        "concurrent_delete_lives_of_one_key_have_one_winner",
        &[
            "of 16 concurrent delete_lives of `k",
            "` returned true (more than one winner)",
        ],
    ),
    (
        Defect::FoldsCase,
        "keys_differing_in_letter_case_stay_distinct",
        &[
            "keys that differ only in letter case: \"session\" reads back the value written under \"sEsSiOn\"",
            "the store does not keep them distinct",
        ],
    ),
    (
        Defect::TrimsWhitespace,
        "keys_differing_in_surrounding_whitespace_stay_distinct",
        &[
            "keys that differ only in leading or trailing whitespace: \"k\" reads back the value written under ",
            "the store does not keep them distinct",
        ],
    ),
    (
        Defect::TruncatesKeysAt200Bytes,
        "keys_differing_after_a_long_shared_prefix_stay_distinct",
        &[
            "keys that differ only after a shared prefix of 200 bytes or more: the 200-byte key \"pppppppp\"...\"pppppppp\" reads back the value written under the 255-byte key ",
            "the store does not keep them distinct",
        ],
    ),
    (
        Defect::ReplacesNonAscii,
        "keys_differing_in_one_non_ascii_character_stay_distinct",
        &[
            "keys that differ in one non-ASCII character: \"café\" reads back the value written under ",
            "the store does not keep them distinct",
        ],
    ),
];

/// Runs `case` against a store with `defect`: `Ok` if it failed saying
/// every one of `reasons`, else what happened instead.
async fn caught(defect: Defect, case: &str, reasons: &[&str]) -> std::result::Result<(), String> {
    let outcome = run_case(case, &BrokenFactory::new(Some(defect)))
        .await
        .outcome;
    match &outcome {
        Outcome::Failed(why)
            if reasons.iter().all(|r| why.contains(r))
                && !why.contains("unexpected error")
                && !why.contains("did not finish within") =>
        {
            println!("{defect:?} caught by `{case}`: {why}");
            Ok(())
        }
        _ => Err(format!(
            "{defect:?} was not caught by `{case}` for the reason {reasons:?}: {outcome:?}"
        )),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn each_defect_is_caught_by_the_case_aimed_at_it() {
    // Concurrently: most of these cases wait for an expiry.
    let misses: Vec<String> = join_all(
        AIMED
            .iter()
            .map(|(defect, case, reasons)| caught(*defect, case, reasons)),
    )
    .await
    .into_iter()
    .filter_map(std::result::Result::err)
    .collect();
    assert!(misses.is_empty(), "{}", misses.join("\n"));
}

#[test]
fn every_aimed_case_exists() {
    // The aimed cases exist: a renamed case cannot silently drop its check.
    for (_, case, _) in AIMED {
        assert!(
            session_conformance::CASE_NAMES.contains(case),
            "no case is called `{case}`"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_store_without_a_defect_passes_every_case() {
    // So a broken store's failure is its defect's, not the harness's (keys
    // of 255 bytes, the shared backend, the round trips).
    let report = run_all(&BrokenFactory::new(None)).await;
    assert!(report.all_passed(), "{report}");
}
