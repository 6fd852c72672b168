//! The whole suite against the reference `MemoryStore`, one test per case,
//! and once more through `run_all`, timed.

use std::time::{Duration, Instant};

use session_core::MemoryStore;

session_conformance::store_conformance!(|| async { MemoryStore::new() });

#[tokio::test(flavor = "multi_thread")]
async fn run_all_passes_within_30_seconds() {
    let started = Instant::now();
    let report = session_conformance::run_all(&|| async { MemoryStore::new() }).await;
    let elapsed = started.elapsed();
    println!("{report}");
    println!(
        "{} cases against MemoryStore in {elapsed:?}",
        report.outcomes.len()
    );
    assert!(report.all_passed(), "{report}");
    assert_eq!(report.outcomes.len(), session_conformance::CASE_NAMES.len());
    assert!(
        elapsed < Duration::from_secs(30),
        "the suite took {elapsed:?}"
    );
}
