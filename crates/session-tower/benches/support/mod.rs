//! What the benchmarks share. In `benches/support/` rather than
//! `benches/support.rs`, which Cargo would take for a benchmark of its own.

use http::{Request, header::COOKIE};

/// A `GET /page` sending the `Cookie` header `cookie`.
pub(crate) fn request(cookie: &str) -> Request<String> {
    Request::builder()
        .uri("/page")
        .header(COOKIE, cookie)
        .body(String::new())
        .expect("a valid request")
}
