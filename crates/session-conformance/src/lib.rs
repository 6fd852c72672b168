//! The conformance suite of the session [`Store`] contract.
//!
//! Add this crate as a dev-dependency of your store and give the suite an
//! async factory that returns a fresh, isolated store (its own table or
//! keyspace) on every call. Two ways to run it:
//!
//! * [`store_conformance!`] expands, in your test file, to one `#[test]` per
//!   case, so `cargo test` lists every case by name and a failure names the
//!   case that caught it.
//! * [`run_all`] runs every case (concurrently, so the expiry waits
//!   overlap) and returns a [`Report`], for harnesses of your own.
//!
//! Either way the cases run together: at most two do work at once, and the
//! cases waiting for a key to expire wait side by side, so the whole suite
//! takes a few seconds.
//!
//! ```
//! use session_core::MemoryStore;
//!
//! # #[tokio::main] async fn main() {
//! let report = session_conformance::run_all(&|| async { MemoryStore::new() }).await;
//! assert!(report.all_passed(), "{report}");
//! # }
//! ```
//!
//! A factory that may not be able to make a store (no database reachable)
//! implements [`StoreFactory`] itself and returns [`Skip`] with the reason:
//! the case then prints that it was skipped instead of failing.

mod cases;
mod factory;
mod report;
mod suite;

pub use cases::CASE_NAMES;
pub use factory::{Skip, StoreFactory};
pub use report::{CaseOutcome, Outcome, Report};
#[doc(hidden)]
pub use suite::Suite as __Suite;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
pub use session_core::Store;

/// Table names an attacker (or a careless config) may give, which every
/// adapter must refuse with `Error::InvalidIdentifier` before it builds any
/// SQL: quotes and comment markers, whitespace and control characters,
/// Unicode lookalikes, leading digits, stray dots, over-long names, the
/// empty name. A schema-qualified `schema.table` is not in the list: some
/// backends accept it.
pub fn hostile_table_names() -> Vec<String> {
    let mut names: Vec<String> = [
        "hostile\"; DROP TABLE users; --",
        "hostile'; DROP TABLE users; --",
        "hostile;",
        "hostile sessions",
        " hostile",
        "hostile\t",
        "hostile\n",
        "hostile--",
        "hostile/**/",
        "hostile\0",
        "\u{4bb}ostile",                                            // Cyrillic shha
        "host\u{456}le",                                            // Ukrainian i
        "\u{ff48}\u{ff4f}\u{ff53}\u{ff54}\u{ff49}\u{ff4c}\u{ff45}", // full width
        "host\u{200b}ile",                                          // zero-width space
        "hostile\u{301}",                                           // combining accent
        "1hostile",
        "hostile-table",
        "\"hostile\"",
        "`hostile`",
        "[hostile]",
        "hostile@dblink",
        "hostile.",
        ".hostile",
        "a.b.hostile",
        "",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    names.push(format!("hostile{}", "x".repeat(57))); // 64 characters
    names.push(format!("hostile{}", "x".repeat(10_000)));
    names
}

/// The longest a single case may run before it counts as failed (a store
/// that hangs must not hang the suite).
pub const CASE_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs the case called `name` against stores from `factory`.
///
/// # Panics
///
/// If `name` is not one of [`CASE_NAMES`].
pub async fn run_case<F: StoreFactory>(name: &str, factory: &F) -> CaseOutcome {
    let started = Instant::now();
    let outcome = match tokio::time::timeout(CASE_TIMEOUT, cases::run(name, factory)).await {
        Ok(Ok(())) => Outcome::Passed,
        Ok(Err(cases::CaseError::Failed(why))) => Outcome::Failed(why),
        Ok(Err(cases::CaseError::Skipped(why))) => Outcome::Skipped(why),
        // Cases retry an inconclusive check themselves; one that still
        // escapes is a failure, never a pass or a skip.
        Ok(Err(cases::CaseError::Inconclusive(why))) => Outcome::Failed(why),
        Err(_) => Outcome::Failed(format!("did not finish within {CASE_TIMEOUT:?}")),
    };
    CaseOutcome {
        name: CASE_NAMES
            .iter()
            .find(|n| **n == name)
            .copied()
            .unwrap_or("unknown"),
        outcome,
        elapsed: started.elapsed(),
    }
}

/// Runs every case concurrently against stores from `factory` and reports
/// each outcome.
///
/// At most two cases do work at once; a case waiting for a key to expire
/// does not count, so the expiry waits overlap.
pub async fn run_all<F: StoreFactory>(factory: &F) -> Report {
    let slots = Arc::new(tokio::sync::Semaphore::new(suite::ACTIVE_CASES));
    let outcomes = join_all(
        CASE_NAMES
            .iter()
            .map(|name| suite::gated(&slots, run_case(name, factory))),
    )
    .await;
    Report { outcomes }
}

/// Runs one case on a runtime of its own and panics with the failure, if
/// any. This is what [`store_conformance!`]'s tests do under `cargo
/// nextest`, which runs each test in a process of its own.
#[doc(hidden)]
pub fn __run_case_blocking<F: StoreFactory>(name: &str, factory: F) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("the conformance suite could not start a tokio runtime");
    let outcome = runtime.block_on(run_case(name, &factory));
    match outcome.outcome {
        Outcome::Passed => {}
        Outcome::Skipped(why) => report_skip(&why),
        Outcome::Failed(why) => panic!("conformance case `{name}` failed: {why}"),
    }
}

/// Prints a skip reason once per process, straight to stderr so the test
/// harness's output capture cannot hide it: a skipped suite is never silent.
pub(crate) fn report_skip(why: &str) {
    use std::io::Write;
    static REPORTED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let mut reported = REPORTED.lock().unwrap_or_else(|p| p.into_inner());
    if !reported.iter().any(|r| r == why) {
        reported.push(why.to_owned());
        let _ = writeln!(
            std::io::stderr(),
            "conformance suite skipped ({} cases): {why}",
            CASE_NAMES.len()
        );
    }
}

/// Expands to one `#[test]` per conformance case, each reporting the case
/// against stores made by the factory expression.
///
/// The factory is an expression evaluated once per case: a closure
/// returning a future of a [`Store`], or any [`StoreFactory`].
///
/// The first of the tests to run runs every case, together (as
/// [`run_all`] does), and each test waits for that run, then reports its
/// own case. So the cases waiting for an expiry wait side by side however
/// many threads the test harness has, and a filtered run (`cargo test
/// key_of`) still runs, and waits for, the whole suite: a few seconds.
///
/// ```ignore
/// // tests/conformance.rs of your store
/// session_conformance::store_conformance!(|| async { my_store::MyStore::new() });
///
/// // or several suites in one file, each in a module of its own
/// // (the module sees the file's items through `use super::*`):
/// session_conformance::store_conformance!(file_db, || async { file_store().await });
/// ```
#[macro_export]
macro_rules! store_conformance {
    ($module:ident, $factory:expr $(,)?) => {
        mod $module {
            #[allow(unused_imports)]
            use super::*;
            $crate::store_conformance!($factory);
        }
    };
    ($factory:expr $(,)?) => {
        fn __conformance_factory() -> impl $crate::StoreFactory + 'static {
            $factory
        }
        static __CONFORMANCE_SUITE: $crate::__Suite = $crate::__Suite::new();
        $crate::__with_case_names! { [$crate::__conformance_tests] [] }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_tests {
    (; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                __CONFORMANCE_SUITE.run_case(stringify!($case), __conformance_factory);
            }
        )*
    };
}

/// The one list of the suite's cases, in the order they run: expands to
/// `callback! { args ; case, case, ... }`, so the generated tests, the
/// case dispatcher and [`CASE_NAMES`] can never disagree.
#[doc(hidden)]
#[macro_export]
macro_rules! __with_case_names {
    ([$($callback:tt)*] [$($args:tt)*]) => {
        $($callback)*! { $($args)* ;
            get_missing_is_none,
            set_then_get_round_trips,
            set_replaces_the_value,
            set_without_expiry_never_expires,
            set_with_zero_expiry_never_expires,
            set_resets_expiry,
            expires_in_reports_remaining_time,
            expires_in_of_missing_is_none,
            expired_keys_are_invisible_everywhere,
            never_early_and_gone_within_a_second,
            expiry_of_half_a_second_is_kept,
            fractional_seconds_are_never_rounded_down,
            renew_extends_expiry,
            renew_returns_the_value,
            renew_leaves_permanent_key_permanent,
            renew_does_not_revive_expired_key,
            renew_of_zero_does_not_renew,
            delete_removes_the_key,
            delete_of_missing_key_is_ok,
            delete_all_empties_the_store,
            delete_all_spares_other_stores,
            exists_tracks_presence,
            delete_expired_counts_exactly,
            delete_expired_on_empty_store_is_zero,
            create_writes_a_missing_key,
            create_refuses_a_live_key,
            create_replaces_an_expired_row,
            update_refuses_a_missing_key,
            update_refuses_an_expired_key,
            update_writes_a_live_key,
            compare_and_set_writes_a_live_key,
            compare_and_set_refuses_a_changed_value,
            compare_and_set_compares_large_values_whole,
            compare_and_set_refuses_an_expired_row,
            compare_and_set_refuses_a_missing_key,
            delete_live_removes_a_live_key,
            delete_live_of_missing_key_is_false,
            delete_live_of_expired_key_is_false,
            empty_key_is_rejected,
            key_of_255_bytes_is_accepted,
            key_of_256_bytes_is_rejected,
            key_with_nul_is_rejected,
            non_ascii_key_round_trips,
            keys_differing_in_letter_case_stay_distinct,
            keys_differing_in_surrounding_whitespace_stay_distinct,
            keys_differing_in_one_non_ascii_character_stay_distinct,
            keys_differing_after_a_long_shared_prefix_stay_distinct,
            empty_value_round_trips,
            value_with_nul_bytes_round_trips,
            value_of_32k_minus_1_round_trips,
            value_of_32k_plus_1_round_trips,
            value_of_1mib_round_trips,
            concurrent_writes_to_one_key_leave_one_whole_value,
            concurrent_writes_to_distinct_keys_lose_none,
            concurrent_creates_of_one_key_have_one_winner,
            concurrent_compare_and_sets_of_one_key_have_one_winner,
            concurrent_delete_lives_of_one_key_have_one_winner,
        }
    };
}
