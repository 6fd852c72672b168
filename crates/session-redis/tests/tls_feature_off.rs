//! Without the `tls` feature the TLS tests (`tests/tls.rs`) are not
//! compiled: say so, instead of passing silently. (`cargo test
//! --workspace` turns the feature on through `session-open`; alone:
//! `cargo test -p session-redis --features tls`.)
#![cfg(not(feature = "tls"))]

#[test]
fn tls_tests_need_the_tls_feature() {
    session_test_support::report_skip(
        "the rediss:// tests need the `tls` feature: cargo test -p session-redis --features tls",
    );
}
