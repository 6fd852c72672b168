//! Helpers shared by the demo's HTTP tests.

#![allow(dead_code)]

use std::sync::Arc;

use reqwest::header::SET_COOKIE;
use session_core::Store;
use session_tower::SessionConfig;

/// Serves the demo over `store` on a free loopback port; returns its base
/// URL (`http://127.0.0.1:PORT`).
pub(crate) async fn serve(store: Arc<dyn Store>, config: SessionConfig) -> String {
    let app = session_demo::app(store, config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

/// The whole `Set-Cookie` header of the session cookie, if the response
/// sets one.
pub(crate) fn session_cookie_header(res: &reqwest::Response) -> Option<String> {
    res.headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("session="))
        .map(str::to_owned)
}

/// The value of the session cookie the response sets, if any.
pub(crate) fn session_cookie(res: &reqwest::Response) -> Option<String> {
    session_cookie_header(res).map(|c| id_of(&c))
}

/// The value of a `Set-Cookie: session=VALUE; ...` header.
pub(crate) fn id_of(cookie: &str) -> String {
    let pair = cookie.split(';').next().unwrap_or_default();
    pair.strip_prefix("session=").unwrap_or_default().to_owned()
}

/// `POST /login` with JSON credentials through `client`.
pub(crate) async fn login(
    client: &reqwest::Client,
    base: &str,
    username: &str,
    password: &str,
) -> reqwest::Response {
    client
        .post(format!("{base}/login"))
        .json(&serde_json::json!({"username": username, "password": password}))
        .send()
        .await
        .unwrap()
}
