//! The whole suite against the reference `MemoryStore`, one test per case,
//! and once more through `run_all`.

use std::time::Instant;

use session_core::MemoryStore;

session_conformance::store_conformance!(|| async { MemoryStore::new() });

#[tokio::test(flavor = "multi_thread")]
async fn run_all_passes() {
    let started = Instant::now();
    let report = session_conformance::run_all(&|| async { MemoryStore::new() }).await;
    // How long it took is printed, not asserted: speed is measured, not
    // tested (`cargo test -- --nocapture` shows it).
    println!("{report}");
    println!(
        "{} cases against MemoryStore in {:?}",
        report.outcomes.len(),
        started.elapsed()
    );
    assert!(report.all_passed(), "{report}");
    assert_eq!(report.outcomes.len(), session_conformance::CASE_NAMES.len());
}
