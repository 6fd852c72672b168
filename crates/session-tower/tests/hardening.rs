//! HTTP hardening of the middleware (issue 16) over real HTTP on a
//! loopback port: `Secure` by default and the cookie name prefixes, cache
//! headers on responses that set the session cookie, type errors that
//! never carry the stored value, no save after a `5xx`, and
//! `Option<Session>` on routes without the layer.

mod support;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use session_core::{Error, Store};
use session_tower::{Session, SessionConfig, SessionError, SessionLayer, store_key};
use support::app::{config, incr};
use support::client::Browser;
use support::logs::capture;
use support::serve;
use support::store::CountingStore;

type Res<T> = Result<T, SessionError>;

async fn read(session: Session) -> Res<String> {
    Ok(format!("{:?}", session.get_value("n").await?))
}

/// A write, with the handler's own cache headers.
async fn incr_cacheable(session: Session) -> Res<impl IntoResponse> {
    let n = incr(session).await?;
    let mut headers = HeaderMap::new();
    headers.insert(header::CACHE_CONTROL, "public, max-age=60".parse().unwrap());
    headers.insert(header::VARY, "Accept-Encoding".parse().unwrap());
    Ok((headers, n))
}

async fn put_secret(session: Session) -> Res<&'static str> {
    session.insert("n", "s3cr3t-token-value").await?;
    Ok("stored")
}

/// A change, then a failure.
async fn fail(session: Session) -> Res<StatusCode> {
    session.insert("n", 99).await?;
    Ok(StatusCode::INTERNAL_SERVER_ERROR)
}

async fn optional(session: Option<Session>) -> Res<String> {
    Ok(match session {
        Some(session) => format!("session {:?}", session.get_value("n").await?),
        None => "no session".into(),
    })
}

async fn required(session: Session) -> Res<String> {
    Ok(format!("session {:?}", session.get_value("n").await?))
}

fn routes() -> Router {
    Router::new()
        .route("/incr", post(incr))
        .route("/read", get(read))
        .route("/incr-cacheable", post(incr_cacheable))
        .route("/secret", post(put_secret))
        .route(
            "/as-number",
            get(|s: Session| async move { s.get::<u64>("n").await.map(|n| format!("{n:?}")) }),
        )
        .route("/fail", post(fail))
        .route("/optional", get(optional))
}

async fn serve_with(config: SessionConfig) -> (String, Arc<CountingStore>) {
    let store = Arc::new(CountingStore::default());
    let app = routes().layer(SessionLayer::with_shared(store.clone(), config));
    (serve(app).await, store)
}

#[tokio::test]
async fn the_cookie_is_secure_by_default() {
    let (base, _) = serve_with(SessionConfig::default()).await;
    let res = Browser::new(&base).send("POST", "/incr").await;
    let attributes: Vec<&str> = res.cookie().split("; ").skip(1).collect();
    assert!(attributes.contains(&"Secure"), "{attributes:?}");

    // A `__Host-` cookie: Secure, Path=/, no Domain.
    let host = SessionConfig::builder()
        .cookie_name("__Host-sid")
        .build()
        .unwrap();
    let (base, _) = serve_with(host).await;
    let res = Browser::new(&base).send("POST", "/incr").await;
    let cookie = res.cookie();
    assert!(cookie.starts_with("__Host-sid="), "{cookie}");
    assert!(
        cookie.contains("; Path=/;") && cookie.contains("; Secure"),
        "{cookie}"
    );
    assert!(!cookie.contains("Domain"), "{cookie}");
}

fn field(err: Error) -> (String, String) {
    match err {
        Error::InvalidConfig { field, reason } => (field, reason),
        other => panic!("expected InvalidConfig, got {other:?}"),
    }
}

#[test]
fn cookie_name_prefixes_are_checked_when_the_config_is_built() {
    let host = || SessionConfig::builder().cookie_name("__Host-sid");
    let cases = [
        (host().secure(false), "secure", "__Host-"),
        (host().path("/app"), "path", "__Host-"),
        (host().domain(Some("example.com")), "domain", "__Host-"),
        (
            SessionConfig::builder()
                .cookie_name("__Secure-sid")
                .secure(false),
            "secure",
            "__Secure-",
        ),
        // Browsers match the prefixes in any case.
        (
            SessionConfig::builder()
                .cookie_name("__host-sid")
                .secure(false),
            "secure",
            "__Host-",
        ),
    ];
    for (builder, expected_field, rule) in cases {
        let (field, reason) = field(builder.build().unwrap_err());
        assert_eq!(field, expected_field, "{reason}");
        assert!(reason.contains(rule), "{reason}");
    }
    assert!(
        SessionConfig::builder()
            .cookie_name("__Secure-sid")
            .domain(Some("example.com"))
            .path("/app")
            .build()
            .is_ok()
    );
    // From a file too, naming the field.
    let err = SessionConfig::from_json_str(r#"{"key": "__Host-s", "path": "/x"}"#).unwrap_err();
    assert_eq!(field(err).0, "path");
}

#[tokio::test]
async fn a_response_that_sets_the_session_cookie_is_kept_out_of_shared_caches() {
    let (base, _) = serve_with(config()).await;
    let browser = Browser::new(&base);
    let res = browser.send("POST", "/incr").await;
    assert_eq!(res.set_cookies.len(), 1);
    assert_eq!(res.header("cache-control"), ["no-store"]);
    assert_eq!(res.header("vary"), ["Cookie"]);

    // The handler's own headers: `private` put in front (`public`
    // removed), `Cookie` appended to its `Vary`.
    let res = browser.send("POST", "/incr-cacheable").await;
    assert_eq!(res.set_cookies.len(), 1);
    assert_eq!(res.header("cache-control"), ["private, max-age=60"]);
    assert_eq!(res.header("vary"), ["Accept-Encoding", "Cookie"]);

    // No session cookie, no change.
    let res = browser.send("GET", "/read").await;
    assert!(res.set_cookies.is_empty());
    assert!(res.header("cache-control").is_empty(), "{res:?}");
    assert!(res.header("vary").is_empty(), "{res:?}");
}

#[tokio::test]
async fn a_value_of_the_wrong_type_is_an_error_without_the_value() {
    let logs = capture(tracing::Level::DEBUG);

    let (base, _) = serve_with(config()).await;
    let browser = Browser::new(&base);
    browser.send("POST", "/secret").await;
    let res = browser.send("GET", "/as-number").await;
    assert_eq!(res.status, 500);
    assert!(!res.body.contains("s3cr3t"), "{}", res.body);

    let text = logs.text();
    let line = text
        .lines()
        .find(|l| l.contains("session error"))
        .unwrap_or_else(|| panic!("no error event in {text:?}"));
    assert!(line.contains("ERROR"), "{line}");
    // The key and the type asked for, never the value.
    assert!(line.contains("`n`") && line.contains("u64"), "{line}");
    assert!(
        !text.contains("s3cr3t"),
        "the stored value was logged: {text}"
    );
}

#[test]
fn the_type_error_chain_carries_no_value() {
    let err = SessionError::Deserialize {
        key: "token".into(),
        expected: "u64",
        found: "string",
    };
    assert_eq!(
        err.to_string(),
        "session value `token` is not a `u64` (it is stored as a JSON string)"
    );
    assert!(std::error::Error::source(&err).is_none());
}

#[tokio::test]
async fn a_server_error_response_saves_nothing() {
    let (base, store) = serve_with(config()).await;
    let browser = Browser::new(&base);
    browser.send("POST", "/incr").await;
    let key = store_key(&browser.get("session").unwrap(), true);
    let writes = store.writes();
    let res = browser.send("POST", "/fail").await;
    assert_eq!(res.status, 500);
    assert!(res.set_cookies.is_empty(), "{res:?}");
    assert_eq!(store.writes(), writes, "the failed request wrote");
    let stored = store.inner.get(&key, None).await.unwrap().unwrap();
    assert_eq!(&stored[..], br#"{"n":1}"#);
    assert_eq!(browser.send("GET", "/read").await.body, "Some(Number(1))");

    // A new session in a failed request: no row, no cookie.
    let stranger = Browser::new(&base);
    let res = stranger.send("POST", "/fail").await;
    assert!(res.set_cookies.is_empty(), "{res:?}");
    assert_eq!(store.inner.len(), 1, "the failed request created a row");

    // Turned off, the failed request's change is saved.
    let saving = config()
        .to_builder()
        .skip_save_on_server_error(false)
        .build()
        .unwrap();
    let (base, _) = serve_with(saving).await;
    let browser = Browser::new(&base);
    browser.send("POST", "/incr").await;
    let res = browser.send("POST", "/fail").await;
    assert_eq!((res.status, res.set_cookies.len()), (500, 1));
    assert_eq!(browser.send("GET", "/read").await.body, "Some(Number(99))");
}

#[tokio::test]
async fn option_session_is_none_without_the_layer() {
    let store = Arc::new(CountingStore::default());
    let with_layer = Router::new()
        .route("/optional", get(optional))
        .layer(SessionLayer::with_shared(store, config()));
    let app = Router::new()
        .route("/bare/optional", get(optional))
        .route("/bare/required", get(required))
        .merge(with_layer);
    let browser = Browser::new(&serve(app).await);
    let res = browser.send("GET", "/bare/optional").await;
    assert_eq!((res.status, res.body.as_str()), (200, "no session"));
    let res = browser.send("GET", "/optional").await;
    assert_eq!((res.status, res.body.as_str()), (200, "session None"));
    // `Session` itself still refuses a route without the layer.
    assert_eq!(browser.send("GET", "/bare/required").await.status, 500);
}
