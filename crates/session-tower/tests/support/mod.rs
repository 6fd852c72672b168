//! What the HTTP test files share: a server on a loopback port, and in
//! small modules the parts only some of them use (the app's config and
//! handlers, a store that counts its calls, a client that shows every
//! cookie, the capture of `tracing` output).
//!
//! Every file that declares `mod support;` uses [`serve`]; a module another
//! file does not use is dead code in that test binary, hence the
//! `allow(dead_code)` on each module (naming the files that use it).

use axum::Router;

/// Serves `app` on a free loopback port; returns its base URL.
pub(crate) async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

#[allow(dead_code)] // used by client_side, hardening, http, lifetime, litestar
pub(crate) mod app;

#[allow(dead_code)] // used by client_side, hardening, http, lifetime
pub(crate) mod store;

#[allow(dead_code)] // used by client_side, hardening, http, lifetime
pub(crate) mod client;

#[allow(dead_code)] // used by client_side, hardening, http
pub(crate) mod logs;
