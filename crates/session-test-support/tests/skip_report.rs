//! A skip reported with `report_skip` shows in the output of a passing
//! test; one printed with `eprintln!` does not (the harness captures it and
//! shows it only for a failed test), which is why the helper exists. Each
//! check runs this test binary again as a child, with the harness's usual
//! output capture, and reads what it printed.

use std::process::Command;

/// Set in the child: the `child_*` tests do their thing only then.
const CHILD_VAR: &str = "SESSION_TEST_SUPPORT_SKIP_CHILD";

const REASON: &str = "the child's reason to skip";

#[test]
fn child_reports_a_skip() {
    if std::env::var_os(CHILD_VAR).is_some() {
        session_test_support::report_skip(REASON);
    }
}

#[test]
fn child_prints_a_skip_with_eprintln() {
    if std::env::var_os(CHILD_VAR).is_some() {
        eprintln!("test child_prints_a_skip_with_eprintln skipped: {REASON}");
        println!("test child_prints_a_skip_with_eprintln skipped: {REASON}");
    }
}

/// Runs the one test `name` of this binary in a child process, output
/// captured as by default; returns its stdout and stderr together.
fn run_child(name: &str) -> String {
    let output = Command::new(std::env::current_exe().expect("the test binary's path"))
        .args(["--exact", name])
        .env(CHILD_VAR, "1")
        .env_remove("RUST_TEST_NOCAPTURE")
        .output()
        .expect("run the test binary again");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "the child test failed:\n{text}");
    assert!(
        text.contains("1 passed"),
        "the child did not run exactly one test:\n{text}"
    );
    text
}

#[test]
fn a_reported_skip_shows_on_a_passing_test() {
    let text = run_child("child_reports_a_skip");
    assert!(
        text.contains(&format!("test child_reports_a_skip skipped: {REASON}")),
        "the skip is not in the output:\n{text}"
    );
}

#[test]
fn a_skip_printed_with_eprintln_is_hidden_on_a_passing_test() {
    let text = run_child("child_prints_a_skip_with_eprintln");
    assert!(
        !text.contains(REASON),
        "the harness no longer hides eprintln! of a passing test:\n{text}"
    );
}
