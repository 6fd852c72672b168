//! The middleware over real HTTP on a loopback port, with a client that
//! keeps cookies, and a store wrapper that counts every call.

mod support;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::Request;
use axum::routing::{get, post};
use axum::{Extension, Router};
use reqwest::header::COOKIE;
use session_core::Store;
use session_tower::{
    SameSite, Session, SessionConfig, SessionError, SessionLayer, SkipSessionLayer, store_key,
};
use support::app::incr;
use support::client::set_cookies;
use support::logs::capture;
use support::store::CountingStore;
use tokio::sync::Notify;

async fn read(session: Session) -> std::result::Result<String, SessionError> {
    let n: Option<u64> = session.get("n").await?;
    Ok(n.map_or("none".into(), |n| n.to_string()))
}

async fn login(session: Session) -> std::result::Result<&'static str, SessionError> {
    session.cycle_id().await?;
    session.insert("user", "alice").await?;
    Ok("in")
}

async fn logout(session: Session) -> std::result::Result<&'static str, SessionError> {
    session.clear().await?;
    Ok("out")
}

/// Two signals between a test and [`paused_write`]: the handler says it has
/// loaded the session, the test lets it go on.
#[derive(Default)]
struct Gate {
    loaded: Notify,
    release: Notify,
}

/// Loads the session, signals `loaded`, waits for `release`, then writes:
/// the test decides what happens between the load and the write.
async fn paused_write(
    Extension(gate): Extension<Arc<Gate>>,
    session: Session,
) -> std::result::Result<String, SessionError> {
    let user = session.get::<String>("user").await?;
    gate.loaded.notify_one();
    gate.release.notified().await;
    session.insert("late", true).await?;
    Ok(format!(
        "written for {}",
        user.as_deref().unwrap_or("nobody")
    ))
}

async fn forget(session: Session) -> std::result::Result<&'static str, SessionError> {
    session.remove::<u64>("n").await?;
    Ok("forgotten")
}

async fn big(session: Session) -> std::result::Result<&'static str, SessionError> {
    session.insert("blob", "x".repeat(10_000)).await?;
    Ok("stored")
}

/// Reports whether the request carried a session, and touches it if so.
async fn probe(req: Request) -> String {
    match req.extensions().get::<Session>() {
        Some(session) => {
            let _ = session.get_value("n").await;
            "session".into()
        }
        None => "no session".into(),
    }
}

async fn untouched() -> &'static str {
    "hello"
}

fn config() -> SessionConfig {
    support::app::config()
        .to_builder()
        .exclude(["^/excluded"])
        .max_session_bytes(4096usize)
        .build()
        .unwrap()
}

struct App {
    url: String,
    store: Arc<CountingStore>,
    client: reqwest::Client,
    gate: Arc<Gate>,
}

async fn serve(config: SessionConfig) -> App {
    let store = Arc::new(CountingStore::default());
    let gate = Arc::new(Gate::default());
    let app = Router::new()
        .route("/incr", post(incr))
        .route("/read", get(read))
        .route("/login", post(login))
        .route("/logout", post(logout))
        .route(
            "/paused-write",
            post(paused_write).layer(Extension(gate.clone())),
        )
        .route("/forget", post(forget))
        .route("/big", post(big))
        .route("/untouched", get(untouched))
        .route("/excluded/probe", get(probe))
        .route("/probe", get(probe))
        .route("/skip", get(probe).route_layer(SkipSessionLayer))
        .layer(SessionLayer::with_shared(store.clone(), config));
    App {
        url: support::serve(app).await,
        store,
        client: client(),
        gate,
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap()
}

impl App {
    async fn send(&self, method: &str, path: &str) -> reqwest::Response {
        self.send_with(&self.client, method, path, None).await
    }

    async fn send_with(
        &self,
        client: &reqwest::Client,
        method: &str,
        path: &str,
        cookie: Option<&[u8]>,
    ) -> reqwest::Response {
        let url = format!("{}{path}", self.url);
        let mut req = match method {
            "GET" => client.get(url),
            _ => client.post(url),
        };
        if let Some(cookie) = cookie {
            req = req.header(
                COOKIE,
                reqwest::header::HeaderValue::from_bytes(cookie).unwrap(),
            );
        }
        req.send().await.unwrap()
    }
}

fn session_id(res: &reqwest::Response) -> String {
    let cookies = set_cookies(res);
    assert_eq!(cookies.len(), 1, "expected one Set-Cookie, got {cookies:?}");
    let value = cookies[0].split(';').next().unwrap();
    value.strip_prefix("session=").unwrap().to_owned()
}

#[tokio::test]
async fn a_request_that_never_touches_the_session_costs_nothing() {
    let app = serve(config()).await;
    let res = app.send("GET", "/untouched").await;
    assert_eq!(res.status(), 200);
    assert!(set_cookies(&res).is_empty());
    assert_eq!(app.store.calls(), 0);
}

#[tokio::test]
async fn a_new_session_is_created_then_read_without_writes() {
    let app = serve(config()).await;
    let res = app.send("POST", "/incr").await;
    assert_eq!(res.status(), 200);
    let id = session_id(&res);
    assert_eq!(id.len(), 64);
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(res.text().await.unwrap(), "1");

    // Stored under the hash of the id, never the id itself.
    assert!(app.store.inner.exists(&store_key(&id, true)).await.unwrap());
    assert!(!app.store.inner.exists(&id).await.unwrap());

    let writes = app.store.writes();
    let res = app.send("GET", "/read").await;
    assert!(
        set_cookies(&res).is_empty(),
        "a read-only request sent a cookie"
    );
    assert_eq!(res.text().await.unwrap(), "1");
    assert_eq!(app.store.writes(), writes, "a read-only request wrote");

    let res = app.send("POST", "/incr").await;
    assert_eq!(session_id(&res), id, "an existing session kept its id");
    assert_eq!(res.text().await.unwrap(), "2");
}

#[tokio::test]
async fn an_attacker_chosen_id_is_never_adopted() {
    let app = serve(config()).await;
    let planted = "ab".repeat(32);
    let fresh = client();
    let cookie = format!("session={planted}");
    let res = app
        .send_with(&fresh, "POST", "/incr", Some(cookie.as_bytes()))
        .await;
    assert_eq!(res.status(), 200);
    let id = session_id(&res);
    assert_ne!(id, planted);
    assert!(
        !app.store
            .inner
            .exists(&store_key(&planted, true))
            .await
            .unwrap()
    );
    assert!(app.store.inner.exists(&store_key(&id, true)).await.unwrap());
}

#[tokio::test]
async fn malformed_ids_cause_no_store_call() {
    let app = serve(config()).await;
    let fresh = client();
    let long = format!("session={}", "a".repeat(8000));
    let hostile: Vec<&[u8]> = vec![
        b"session=../../etc/passwd",
        b"session='; DROP TABLE litestar_session; --",
        b"session=ABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABAB",
        b"session=abab",
        b"session=\xff\xfe\xfd",
        b"session=\"\"",
        b"session=",
        long.as_bytes(),
    ];
    for cookie in hostile {
        let res = app.send_with(&fresh, "GET", "/read", Some(cookie)).await;
        assert_eq!(res.status(), 200, "{}", String::from_utf8_lossy(cookie));
        assert_eq!(res.text().await.unwrap(), "none");
    }
    assert_eq!(app.store.calls(), 0, "a malformed id reached the store");
}

/// The layer's filter follows the config: ids of the configured length
/// under the configured name are adopted; the default length (64 hex
/// digits) or the default name are not, and reach no store.
#[tokio::test]
async fn the_configured_cookie_name_and_id_length_are_what_the_layer_accepts() {
    let config = config()
        .to_builder()
        .cookie_name("sid")
        .session_id_bytes(20usize)
        .build()
        .unwrap();
    let app = serve(config).await;
    let res = app.send("POST", "/incr").await;
    let cookies = set_cookies(&res);
    assert_eq!(cookies.len(), 1, "{cookies:?}");
    let id = cookies[0]
        .split(';')
        .next()
        .and_then(|pair| pair.strip_prefix("sid="))
        .unwrap_or_else(|| panic!("{cookies:?}"))
        .to_owned();
    assert_eq!(id.len(), 40, "{id}");
    // The id the layer issued is adopted on the next request.
    let sent = format!("theme=dark; sid={id}; lang=en");
    let res = app
        .send_with(&client(), "POST", "/incr", Some(sent.as_bytes()))
        .await;
    assert_eq!(res.text().await.unwrap(), "2");

    let calls = app.store.calls();
    let default_length = "ab".repeat(32);
    let fresh = client();
    for cookie in [
        format!("sid={default_length}"),
        format!("session={id}"),
        format!("sid={}", &id[..38]),
        format!("sid={id}00"),
    ] {
        let res = app
            .send_with(&fresh, "GET", "/read", Some(cookie.as_bytes()))
            .await;
        assert_eq!(res.text().await.unwrap(), "none", "{cookie}");
    }
    assert_eq!(
        app.store.calls(),
        calls,
        "an id the config refuses reached the store"
    );
}

#[tokio::test]
async fn cycle_id_changes_the_id_keeps_the_data_and_kills_the_old_id() {
    let app = serve(config()).await;
    let first = session_id(&app.send("POST", "/incr").await);
    let res = app.send("POST", "/login").await;
    let second = session_id(&res);
    assert_ne!(first, second);
    // Same data under the new id.
    assert_eq!(app.send("GET", "/read").await.text().await.unwrap(), "1");
    // The old id no longer works.
    assert!(
        !app.store
            .inner
            .exists(&store_key(&first, true))
            .await
            .unwrap()
    );
    let old = format!("session={first}");
    let res = app
        .send_with(&client(), "GET", "/read", Some(old.as_bytes()))
        .await;
    assert_eq!(res.text().await.unwrap(), "none");
}

#[tokio::test]
async fn renew_on_access_moves_the_expiry_and_refreshes_the_cookie() {
    let config = config().to_builder().renew_on_access(true).build().unwrap();
    let app = serve(config).await;
    let id = session_id(&app.send("POST", "/incr").await);
    let key = store_key(&id, true);
    // Age the row: 5 s left.
    let value = app.store.inner.get(&key, None).await.unwrap().unwrap();
    app.store
        .inner
        .set(&key, value, Some(Duration::from_secs(5)))
        .await
        .unwrap();

    let res = app.send("GET", "/read").await;
    let cookies = set_cookies(&res);
    assert_eq!(cookies.len(), 1, "{cookies:?}");
    assert!(
        cookies[0].starts_with(&format!("session={id}; ")),
        "{cookies:?}"
    );
    assert!(cookies[0].contains("Max-Age=600"), "{cookies:?}");
    let left = app.store.inner.expires_in(&key).await.unwrap().unwrap();
    assert!(
        left > Duration::from_secs(590),
        "expiry not renewed: {left:?}"
    );
}

#[tokio::test]
async fn excluded_paths_and_skipped_routes_get_no_session() {
    let app = serve(config()).await;
    app.send("POST", "/incr").await;
    let calls = app.store.calls();
    for path in ["/excluded/probe", "/skip"] {
        let res = app.send("GET", path).await;
        assert!(set_cookies(&res).is_empty());
        assert_eq!(res.text().await.unwrap(), "no session", "{path}");
    }
    assert_eq!(
        app.store.calls(),
        calls,
        "an excluded path reached the store"
    );
    // The same handler elsewhere sees the session.
    assert_eq!(
        app.send("GET", "/probe").await.text().await.unwrap(),
        "session"
    );
}

/// Bounds a wait on the server, so a handler that never signals fails the
/// test instead of hanging it. Ordering comes from the signals, never from
/// this bound.
async fn within<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), fut)
        .await
        .unwrap_or_else(|_| panic!("{what}: no progress in 30 s"))
}

/// The race, in this order every run: a request loads the session, the
/// logout runs to completion, then the first request modifies the session
/// and the layer saves it. The save must not bring the session back.
#[tokio::test]
async fn a_write_racing_a_logout_stays_a_logout() {
    let app = Arc::new(serve(config()).await);
    let id = session_id(&app.send("POST", "/login").await);
    let writer = {
        let app = app.clone();
        tokio::spawn(async move { app.send("POST", "/paused-write").await })
    };
    // The writer holds the session as loaded before the logout.
    within("the writer's load", app.gate.loaded.notified()).await;
    let res = app.send("POST", "/logout").await;
    assert_eq!(res.status(), 200);
    assert!(set_cookies(&res)[0].contains("Max-Age=0"));
    assert!(!app.store.inner.exists(&store_key(&id, true)).await.unwrap());
    // Only now does the writer change the session, and the layer save it.
    app.gate.release.notify_one();
    let written = within("the writer's response", writer).await.unwrap();
    assert_eq!(written.status(), 200);
    let cookies = set_cookies(&written);
    assert_eq!(
        written.text().await.unwrap(),
        "written for alice",
        "the writer did not load the logged-in session"
    );
    assert_eq!(cookies.len(), 1, "{cookies:?}");
    assert!(
        cookies[0].starts_with("session=null;") && cookies[0].contains("Max-Age=0"),
        "{cookies:?}"
    );
    assert!(!app.store.inner.exists(&store_key(&id, true)).await.unwrap());
    assert!(
        app.store.inner.is_empty(),
        "the write after the logout left a row"
    );
    let old = format!("session={id}");
    let res = app
        .send_with(&client(), "GET", "/read", Some(old.as_bytes()))
        .await;
    assert_eq!(res.text().await.unwrap(), "none");
}

#[tokio::test]
async fn every_cookie_attribute_is_sent_as_configured() {
    let config = SessionConfig::builder()
        .cookie_name("sid")
        .path("/")
        .domain(Some("example.test"))
        .secure(true)
        .http_only(true)
        .same_site(SameSite::Strict)
        .max_age(Duration::from_secs(3600))
        .build()
        .unwrap();
    let app = serve(config).await;
    let res = app.send("POST", "/incr").await;
    let cookies = set_cookies(&res);
    assert_eq!(cookies.len(), 1);
    let parts: Vec<&str> = cookies[0].split("; ").collect();
    assert!(
        parts[0].starts_with("sid=") && parts[0].len() == 4 + 64,
        "{parts:?}"
    );
    assert_eq!(
        &parts[1..],
        &[
            "Path=/",
            "Max-Age=3600",
            "Domain=example.test",
            "Secure",
            "HttpOnly",
            "SameSite=Strict"
        ]
    );

    // And the defaults: Secure (since issue 16), HttpOnly and
    // SameSite=Lax, no Domain.
    let app = serve(SessionConfig::default()).await;
    let cookie = &set_cookies(&app.send("POST", "/incr").await)[0];
    assert!(
        cookie.ends_with("; Path=/; Max-Age=1209600; Secure; HttpOnly; SameSite=Lax"),
        "{cookie}"
    );
}

#[tokio::test]
async fn a_store_failure_is_a_500_and_the_next_request_works() {
    let app = serve(config()).await;
    app.send("POST", "/incr").await;
    app.store.failing.store(true, Ordering::SeqCst);
    // Loading fails inside the handler.
    let res = app.send("POST", "/incr").await;
    assert_eq!(res.status(), 500);
    assert!(set_cookies(&res).is_empty());
    assert_eq!(res.text().await.unwrap(), "internal server error");
    // Saving a new session fails in the middleware.
    let res = app.send_with(&client(), "POST", "/incr", None).await;
    assert_eq!(res.status(), 500);
    assert!(set_cookies(&res).is_empty());

    app.store.failing.store(false, Ordering::SeqCst);
    let res = app.send("POST", "/incr").await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "2");
}

#[tokio::test]
async fn a_failure_while_saving_is_a_500() {
    let app = serve(config()).await;
    app.send("POST", "/incr").await;
    // Fail only the write: the handler reads fine, the save fails.
    app.store.failing_writes.store(true, Ordering::SeqCst);
    let res = app.send("POST", "/incr").await;
    assert_eq!(res.status(), 500);
    assert!(set_cookies(&res).is_empty());
    app.store.failing_writes.store(false, Ordering::SeqCst);
    // Nothing was half-written: the session still holds the first value.
    assert_eq!(app.send("GET", "/read").await.text().await.unwrap(), "1");
}

#[tokio::test]
async fn an_oversized_session_is_refused_and_nothing_is_written() {
    let app = serve(config()).await;
    let res = app.send("POST", "/big").await;
    assert_eq!(res.status(), 413);
    assert!(set_cookies(&res).is_empty());
    assert_eq!(app.store.writes(), 0);
    assert!(app.store.inner.is_empty());
}

#[tokio::test]
async fn an_emptied_session_deletes_its_row_and_expires_the_cookie() {
    let app = serve(config()).await;
    let id = session_id(&app.send("POST", "/incr").await);
    let res = app.send("POST", "/forget").await;
    let cookies = set_cookies(&res);
    assert!(
        cookies[0].starts_with("session=null;") && cookies[0].contains("Max-Age=0"),
        "{cookies:?}"
    );
    assert!(!app.store.inner.exists(&store_key(&id, true)).await.unwrap());
    assert!(app.store.inner.is_empty());
}

#[tokio::test]
async fn raw_ids_can_be_stored_for_tables_shared_with_litestar() {
    let config = config()
        .to_builder()
        .hash_session_ids(false)
        .build()
        .unwrap();
    let app = serve(config).await;
    let id = session_id(&app.send("POST", "/incr").await);
    assert!(app.store.inner.exists(&id).await.unwrap());
    let stored = app.store.inner.get(&id, None).await.unwrap().unwrap();
    assert_eq!(&stored[..], br#"{"n":1}"#);
}

#[tokio::test]
async fn a_store_failure_is_logged_with_its_cause() {
    let logs = capture(tracing::Level::INFO);

    let app = serve(config()).await;
    let id = session_id(&app.send("POST", "/incr").await);
    app.store.failing_writes.store(true, Ordering::SeqCst);
    assert_eq!(app.send("POST", "/incr").await.status(), 500);

    let text = logs.text();
    let line = text
        .lines()
        .find(|l| l.contains("saving the session failed"))
        .unwrap_or_else(|| panic!("no error event in {text:?}"));
    assert!(line.contains("ERROR"), "{line}");
    assert!(line.contains("disk full"), "the cause is missing: {line}");
    assert!(!text.contains(&id), "the session id was logged");
}

#[tokio::test]
async fn connection_types_outside_the_scopes_get_no_session() {
    let config = config()
        .to_builder()
        .scopes([session_tower::Scope::Http])
        .build()
        .unwrap();
    let app = serve(config).await;
    let probe = |upgrade: Option<&'static str>| {
        let mut req = app.client.get(format!("{}/probe", app.url));
        if let Some(protocol) = upgrade {
            req = req.header("upgrade", protocol);
        }
        req.send()
    };
    let res = probe(Some("websocket")).await.unwrap();
    assert_eq!(res.text().await.unwrap(), "no session");
    let res = probe(Some("h2c")).await.unwrap();
    assert_eq!(res.text().await.unwrap(), "session");
    let res = probe(None).await.unwrap();
    assert_eq!(res.text().await.unwrap(), "session");
}
