//! Session lifetime (issue 16) over real HTTP on a loopback port: the
//! expiry modes as the cookie and the store show them, the absolute
//! lifetime, the renewal threshold's saved writes, `save()` and
//! `fingerprint()`, for store-backed and client-side sessions.

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::extract::Path;
use axum::routing::{get, post};
use axum::{Extension, Router};
use session_core::{MemoryStore, Store};
use session_tower::{
    ClientSideConfig, Expiry, METADATA_KEY, Session, SessionConfig, SessionError, SessionLayer,
    fingerprint_of_key, store_key,
};
use support::app::{config, incr};
use support::client::{Browser, max_age};
use support::serve;
use support::store::CountingStore;

type Res<T> = Result<T, SessionError>;

fn mode(name: &str) -> Expiry {
    match name {
        "configured" => Expiry::Configured,
        "browser" => Expiry::OnSessionEnd,
        "inactivity" => Expiry::OnInactivity(Duration::from_secs(7200)),
        "at" => Expiry::AtDateTime(SystemTime::now() + Duration::from_secs(300)),
        other => panic!("no mode {other}"),
    }
}

async fn login(session: Session, Path(m): Path<String>) -> Res<&'static str> {
    session.cycle_id().await?;
    session.insert("user", "alice").await?;
    session.set_expiry(mode(&m)).await?;
    Ok("in")
}

async fn whoami(session: Session) -> Res<String> {
    Ok(session
        .get::<String>("user")
        .await?
        .unwrap_or_else(|| "anonymous".into()))
}

async fn expiry(session: Session) -> Res<String> {
    Ok(format!("{:?}", session.expiry().await?))
}

async fn data(session: Session) -> Res<String> {
    Ok(serde_json::to_string(&session.data().await?).unwrap())
}

async fn reserved(session: Session) -> Res<String> {
    Ok(match session.insert(METADATA_KEY, 1).await {
        Err(SessionError::ReservedKey { key }) => format!("refused {key}"),
        other => format!("{other:?}"),
    })
}

async fn fingerprint(session: Session) -> Res<String> {
    Ok(session
        .fingerprint()
        .await?
        .unwrap_or_else(|| "none".into()))
}

async fn cycle(session: Session) -> Res<&'static str> {
    session.cycle_id().await?;
    Ok("cycled")
}

/// Inserts `a`, saves, checks the session is stored (it has a
/// fingerprint), inserts `b` only if `more`.
async fn save_then(session: Session, Path(more): Path<bool>) -> Res<String> {
    let before = session.fingerprint().await?;
    session.insert("a", 1).await?;
    session.save().await?;
    let after = session.fingerprint().await?;
    if more {
        session.insert("b", 2).await?;
    }
    Ok(format!("{} {}", before.is_some(), after.is_some()))
}

/// What a task the handler spawned saw when it saved after the response.
type Outcomes = Arc<Mutex<Vec<String>>>;

/// Spawns a task that changes the session 300 ms after the response left
/// and saves it (as a WebSocket or streaming task would).
async fn later(session: Session, Extension(outcomes): Extension<Outcomes>) -> &'static str {
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let result = async {
            session.insert("late", true).await?;
            session.save().await
        }
        .await;
        outcomes.lock().unwrap().push(match result {
            Ok(()) => "saved".into(),
            Err(e) => e.to_string(),
        });
    });
    "spawned"
}

/// Inserts `n` bytes under `k`; says whether `insert` took them.
async fn big(session: Session, Path(n): Path<usize>) -> Res<&'static str> {
    Ok(match session.insert("k", "x".repeat(n)).await {
        Ok(()) => "accepted",
        Err(SessionError::TooLarge { .. }) => "refused",
        Err(other) => return Err(other),
    })
}

/// Inserts `n` bytes, then asks for a two-hour inactivity timeout; says
/// whether `set_expiry` took it.
async fn big_remember(session: Session, Path(n): Path<usize>) -> Res<&'static str> {
    session.insert("k", "x".repeat(n)).await?;
    let two_hours = Expiry::OnInactivity(Duration::from_secs(7200));
    Ok(match session.set_expiry(two_hours).await {
        Ok(()) => "accepted",
        Err(SessionError::TooLarge { .. }) => "refused",
        Err(other) => return Err(other),
    })
}

async fn late(session: Session) -> Res<String> {
    Ok(format!("{:?}", session.get::<bool>("late").await?))
}

fn routes() -> Router {
    Router::new()
        .route("/login/{mode}", post(login))
        .route("/whoami", get(whoami))
        .route("/incr", post(incr))
        .route("/expiry", get(expiry))
        .route("/data", get(data))
        .route("/reserved", post(reserved))
        .route("/fingerprint", get(fingerprint))
        .route("/cycle", post(cycle))
        .route("/save-then/{more}", post(save_then))
        .route("/later", post(later))
        .route("/late", get(late))
        .route("/big/{n}", post(big))
        .route("/big-remember/{n}", post(big_remember))
}

struct App {
    base: String,
    store: Arc<CountingStore>,
    outcomes: Outcomes,
}

async fn serve_store(config: SessionConfig) -> App {
    let store = Arc::new(CountingStore::default());
    let outcomes = Outcomes::default();
    let app = routes()
        .layer(Extension(outcomes.clone()))
        .layer(SessionLayer::with_shared(store.clone(), config));
    App {
        base: serve(app).await,
        store,
        outcomes,
    }
}

async fn serve_client_side(config: SessionConfig) -> String {
    let client = ClientSideConfig::builder()
        .secret_keys(["a test secret of thirty-two bytes or more"])
        .build()
        .unwrap();
    let app = routes()
        .layer(Extension(Outcomes::default()))
        .layer(SessionLayer::client_side(client, config).unwrap());
    serve(app).await
}

impl App {
    fn key(&self, browser: &Browser) -> String {
        store_key(&browser.get("session").expect("a session cookie"), true)
    }
    async fn stored_for(&self, browser: &Browser) -> Option<Duration> {
        self.store
            .inner
            .expires_in(&self.key(browser))
            .await
            .unwrap()
    }
    async fn raw(&self, browser: &Browser) -> serde_json::Value {
        let bytes = self
            .store
            .inner
            .get(&self.key(browser), None)
            .await
            .unwrap()
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }
}

fn near(d: Duration, secs: u64) -> bool {
    let d = d.as_secs_f64();
    d <= secs as f64 + 0.01 && d > secs as f64 - 5.0
}

/// Each mode as the cookie and the store show it, at login and on a later
/// write (the mode is kept in the stored session), and the metadata never
/// in the handler's view.
#[tokio::test]
async fn each_expiry_mode_shows_in_the_cookie_and_the_store() {
    let app = serve_store(config()).await;
    // (mode, cookie Max-Age, stored expiry), in seconds.
    let cases = [
        ("configured", Some(600), 600),
        ("browser", None, 600),
        ("inactivity", Some(7200), 7200),
        ("at", Some(300), 300),
    ];
    for (name, cookie_max_age, stored) in cases {
        let browser = Browser::new(&app.base);
        let res = browser.send("POST", &format!("/login/{name}")).await;
        assert_eq!(res.status, 200, "{name}: {res:?}");
        let cookie = res.cookie();
        match cookie_max_age {
            None => {
                assert!(
                    !cookie.contains("Max-Age") && !cookie.contains("Expires"),
                    "{name}: a browser-session cookie has no Max-Age: {cookie}"
                );
            }
            Some(secs) => {
                let got = max_age(cookie).unwrap_or_else(|| panic!("{name}: {cookie}"));
                assert!(got <= secs && got + 2 >= secs, "{name}: {cookie}");
            }
        }
        let left = app.stored_for(&browser).await.unwrap();
        assert!(near(left, stored), "{name}: stored expiry {left:?}");

        // The mode holds on the next request, and on its writes.
        let mode = browser.send("GET", "/expiry").await.body;
        let expected = match name {
            "configured" => "Configured",
            "browser" => "OnSessionEnd",
            "inactivity" => "OnInactivity(7200s)",
            _ => "AtDateTime(",
        };
        assert!(mode.starts_with(expected), "{name}: {mode}");
        let res = browser.send("POST", "/incr").await;
        assert_eq!(max_age(res.cookie()).is_none(), cookie_max_age.is_none());
        let left = app.stored_for(&browser).await.unwrap();
        assert!(near(left, stored), "{name}: after a write {left:?}");

        // The handler never sees the metadata; the store keeps it only for
        // a mode other than the configured one.
        let data = browser.send("GET", "/data").await.body;
        assert_eq!(data, r#"{"n":1,"user":"alice"}"#, "{name}");
        let raw = app.raw(&browser).await;
        assert_eq!(
            raw.get(METADATA_KEY).is_some(),
            name != "configured",
            "{raw}"
        );
        assert_eq!(
            browser.send("POST", "/reserved").await.body,
            format!("refused {METADATA_KEY}")
        );
    }
}

/// An inactivity timeout slides on access whatever `renew_on_access`
/// says; a fixed time never does.
#[tokio::test]
async fn an_inactivity_timeout_renews_on_access_and_a_fixed_time_never() {
    let app = serve_store(config()).await;
    for (name, renewed) in [("inactivity", true), ("at", false), ("configured", false)] {
        let browser = Browser::new(&app.base);
        browser.send("POST", &format!("/login/{name}")).await;
        // Age the row: 100 s left.
        let key = app.key(&browser);
        let value = app.store.inner.get(&key, None).await.unwrap().unwrap();
        let aged = Some(Duration::from_secs(100));
        app.store.inner.set(&key, value, aged).await.unwrap();
        let res = browser.send("GET", "/whoami").await;
        assert_eq!(res.body, "alice");
        let left = app.stored_for(&browser).await.unwrap();
        if renewed {
            assert_eq!(max_age(res.cookie()), Some(7200), "{name}");
            assert!(near(left, 7200), "{name}: {left:?}");
        } else {
            assert!(res.set_cookies.is_empty(), "{name}: {res:?}");
            assert!(near(left, 100), "{name}: {left:?}");
        }
    }
}

/// `absolute_lifetime` 3 s with a 2 s inactivity timeout renewed on every
/// access: requests every second keep the session alive without it, and
/// with it the session is refused from the third second on.
#[tokio::test]
async fn a_session_past_its_absolute_lifetime_is_refused_though_renewed_every_second() {
    let base = config()
        .to_builder()
        .max_age(Duration::from_secs(2))
        .renew_on_access(true)
        .renew_threshold(1.0)
        .build()
        .unwrap();
    let bounded = base
        .to_builder()
        .absolute_lifetime(Duration::from_secs(3))
        .build()
        .unwrap();
    for (config, expected) in [
        (base, ["alice", "alice", "alice", "alice", "alice"]),
        (
            bounded,
            ["alice", "alice", "anonymous", "anonymous", "anonymous"],
        ),
    ] {
        let absolute = config.absolute_lifetime();
        let app = serve_store(config).await;
        let browser = Browser::new(&app.base);
        browser.send("POST", "/login/configured").await;
        if absolute.is_some() {
            // The creation time is in the stored session.
            let raw = app.raw(&browser).await;
            assert!(raw[METADATA_KEY]["created"].is_u64(), "{raw}");
        }
        let mut seen = Vec::new();
        for second in 1..=5 {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let res = browser.send("GET", "/whoami").await;
            if res.body == "alice" && second == 1 {
                // The access renewed the expiry (and the cookie's Max-Age).
                assert_eq!(max_age(res.cookie()), Some(2), "{res:?}");
            }
            if let Some(left) = app
                .store
                .inner
                .expires_in(&store_key(
                    &browser.get("session").unwrap_or_default(),
                    true,
                ))
                .await
                .unwrap()
            {
                let cap = 3.0 - second as f64 + 0.01;
                assert!(
                    absolute.is_none() || left.as_secs_f64() <= cap,
                    "second {second}: stored expiry {left:?} beyond the absolute lifetime"
                );
            }
            seen.push(res.body);
        }
        assert_eq!(seen, expected, "absolute_lifetime {absolute:?}");
    }
}

/// The creation time is enforced from the stored session: a row whose
/// `created` is older than the absolute lifetime is refused and deleted,
/// whatever its store expiry and the cookie say.
#[tokio::test]
async fn the_absolute_lifetime_is_enforced_from_the_stored_creation_time() {
    let config = config()
        .to_builder()
        .absolute_lifetime(Duration::from_secs(60))
        .build()
        .unwrap();
    let app = serve_store(config).await;
    let id = "cd".repeat(32);
    let key = store_key(&id, true);
    let created = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
        - 61_000;
    let value = format!(r#"{{"user":"alice","{METADATA_KEY}":{{"created":{created}}}}}"#);
    let ttl = Some(Duration::from_secs(600));
    app.store.inner.set(&key, value.into(), ttl).await.unwrap();
    let browser = Browser::new(&app.base);
    browser.set("session", &id);
    let res = browser.send("GET", "/whoami").await;
    assert_eq!(res.body, "anonymous");
    assert!(
        res.cookie().starts_with("session=null;") && res.cookie().contains("Max-Age=0"),
        "{res:?}"
    );
    assert!(!app.store.inner.exists(&key).await.unwrap(), "row kept");

    // A row stored before the absolute lifetime was configured counts from
    // the first load after: stamped with a creation time once.
    let id = "ef".repeat(32);
    let key = store_key(&id, true);
    app.store
        .inner
        .set(&key, br#"{"user":"bob"}"#.to_vec().into(), ttl)
        .await
        .unwrap();
    browser.set("session", &id);
    assert_eq!(browser.send("GET", "/whoami").await.body, "bob");
    let raw: serde_json::Value =
        serde_json::from_slice(&app.store.inner.get(&key, None).await.unwrap().unwrap()).unwrap();
    assert!(raw[METADATA_KEY]["created"].is_u64(), "{raw}");
}

/// With `renew_on_access`, 100 requests in the first half of the lifetime
/// cost one store write (the creation); the first request in the second
/// half renews (one renewing `get`), and then none again. With
/// `renew_threshold` 1.0, the old behaviour: a write per request; the same
/// under `litestar_compatible`, as a Litestar application rewrites the
/// session on every response, with or without `renew_on_access`.
#[tokio::test]
async fn renewals_write_once_per_half_lifetime() {
    let renewing = config().to_builder().renew_on_access(true).build().unwrap();
    {
        let config = renewing.clone();
        let label = "default";
        let hashed = config.hash_session_ids();
        let app = serve_store(config).await;
        let browser = Browser::new(&app.base);
        assert_eq!(browser.send("POST", "/incr").await.body, "1");
        assert_eq!(app.store.writes(), 1, "{label}: the creation");
        for _ in 0..100 {
            let res = browser.send("GET", "/whoami").await;
            assert_eq!(res.status, 200);
            assert!(res.set_cookies.is_empty(), "{label}: {res:?}");
        }
        assert_eq!(
            app.store.writes(),
            1,
            "{label}: 100 reads in the first half of the lifetime wrote"
        );
        // Into the second half: 200 s of 600 left.
        let key = store_key(&browser.get("session").unwrap(), hashed);
        let value = app.store.inner.get(&key, None).await.unwrap().unwrap();
        let aged = Some(Duration::from_secs(200));
        app.store.inner.set(&key, value, aged).await.unwrap();
        let res = browser.send("GET", "/whoami").await;
        assert_eq!(max_age(res.cookie()), Some(600), "{label}");
        assert_eq!(app.store.writes(), 2, "{label}: one renewal");
        assert!(near(
            app.store.inner.expires_in(&key).await.unwrap().unwrap(),
            600
        ));
        for _ in 0..20 {
            assert!(browser.send("GET", "/whoami").await.set_cookies.is_empty());
        }
        assert_eq!(app.store.writes(), 2, "{label}: renewed once");
    }

    let every = renewing.to_builder().renew_threshold(1.0).build().unwrap();
    let app = serve_store(every).await;
    let browser = Browser::new(&app.base);
    browser.send("POST", "/incr").await;
    for _ in 0..100 {
        browser.send("GET", "/whoami").await;
    }
    assert_eq!(
        app.store.writes(),
        101,
        "renew_threshold 1.0 renews every access"
    );

    for renew_on_access in [true, false] {
        let litestar = SessionConfig::builder()
            .max_age(Duration::from_secs(600))
            .secure(false)
            .renew_on_access(renew_on_access)
            .litestar_compatible(true)
            .build()
            .unwrap();
        let app = serve_store(litestar).await;
        let browser = Browser::new(&app.base);
        browser.send("POST", "/incr").await;
        let key = browser.get("session").unwrap();
        for _ in 0..100 {
            let res = browser.send("GET", "/whoami").await;
            assert_eq!(max_age(res.cookie()), Some(600), "{res:?}");
        }
        assert_eq!(
            app.store.writes(),
            101,
            "litestar_compatible (renew_on_access {renew_on_access}) renews every access"
        );
        let aged = app.store.inner.get(&key, None).await.unwrap().unwrap();
        app.store
            .inner
            .set(&key, aged, Some(Duration::from_secs(60)))
            .await
            .unwrap();
        browser.send("GET", "/whoami").await;
        assert!(near(
            app.store.inner.expires_in(&key).await.unwrap().unwrap(),
            600
        ));
    }
}

/// `save()` writes at once; the save after the handler writes only what
/// changed since (nothing, or one compare-and-set).
#[tokio::test]
async fn save_writes_now_and_the_end_of_the_request_only_what_changed_after() {
    let app = serve_store(config()).await;
    let browser = Browser::new(&app.base);
    let res = browser.send("POST", "/save-then/false").await;
    assert_eq!(
        res.body, "false true",
        "stored by save(), before the response"
    );
    assert_eq!(app.store.writes(), 1, "only save()'s create");
    assert_eq!(res.set_cookies.len(), 1, "{res:?}");
    assert_eq!(browser.send("GET", "/data").await.body, r#"{"a":1}"#);

    let browser = Browser::new(&app.base);
    let before = app.store.writes();
    let res = browser.send("POST", "/save-then/true").await;
    assert_eq!(res.set_cookies.len(), 1, "{res:?}");
    assert_eq!(
        app.store.writes() - before,
        2,
        "save()'s create and the end's compare-and-set"
    );
    assert_eq!(browser.send("GET", "/data").await.body, r#"{"a":1,"b":2}"#);
}

/// After the response: a change of an existing session is saved; a new
/// session cannot be (its cookie could no longer be sent).
#[tokio::test]
async fn save_after_the_response_updates_an_existing_session_only() {
    let app = serve_store(config()).await;
    let browser = Browser::new(&app.base);
    browser.send("POST", "/incr").await;
    assert_eq!(browser.send("POST", "/later").await.body, "spawned");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(browser.send("GET", "/late").await.body, "Some(true)");

    let stranger = Browser::new(&app.base);
    let writes = app.store.writes();
    assert_eq!(stranger.send("POST", "/later").await.body, "spawned");
    tokio::time::sleep(Duration::from_millis(600)).await;
    let outcomes = app.outcomes.lock().unwrap().clone();
    assert_eq!(outcomes[0], "saved");
    assert!(
        outcomes[1].contains("response has been sent"),
        "{outcomes:?}"
    );
    assert_eq!(app.store.writes(), writes, "a new session was written");
}

/// The fingerprint: 12 hex digits derived from the store key (never the
/// id), stable across requests, new after `cycle_id`.
#[tokio::test]
async fn fingerprints_follow_the_store_key() {
    let app = serve_store(config()).await;
    let browser = Browser::new(&app.base);
    assert_eq!(browser.send("GET", "/fingerprint").await.body, "none");
    browser.send("POST", "/incr").await;
    let id = browser.get("session").unwrap();
    let fp = browser.send("GET", "/fingerprint").await.body;
    assert_eq!(fp.len(), 12);
    assert!(fp.bytes().all(|b| b.is_ascii_hexdigit()), "{fp}");
    assert!(!id.contains(&fp) && !store_key(&id, true).contains(&fp));
    assert_eq!(fp, fingerprint_of_key(&store_key(&id, true)));
    browser.send("POST", "/incr").await;
    assert_eq!(browser.send("GET", "/fingerprint").await.body, fp);
    browser.send("POST", "/cycle").await;
    let cycled = browser.send("GET", "/fingerprint").await.body;
    assert_ne!(cycled, fp);
    assert_eq!(cycled.len(), 12);
}

/// Client-side sessions: the modes in the cookie, a mode longer than
/// `max_age` outliving it, a stable fingerprint, and the absolute
/// lifetime sealed inside.
#[tokio::test]
async fn client_side_sessions_keep_their_mode_fingerprint_and_absolute_lifetime() {
    let short = config()
        .to_builder()
        .max_age(Duration::from_secs(1))
        .build()
        .unwrap();
    let base = serve_client_side(short).await;
    let browser = Browser::new(&base);
    let res = browser.send("POST", "/login/browser").await;
    assert!(!res.cookie().contains("Max-Age"), "{res:?}");
    let res = browser.send("POST", "/login/inactivity").await;
    assert_eq!(max_age(res.cookie()), Some(7200));
    let fp = browser.send("GET", "/fingerprint").await.body;
    assert_eq!(fp.len(), 12);
    // Older than max_age (1 s): the inactivity mode keeps it open.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(browser.send("GET", "/whoami").await.body, "alice");
    assert_eq!(browser.send("POST", "/incr").await.body, "1");
    assert_eq!(
        browser.send("GET", "/fingerprint").await.body,
        fp,
        "resealed"
    );
    browser.send("POST", "/cycle").await;
    assert_ne!(browser.send("GET", "/fingerprint").await.body, fp);

    let bounded = config()
        .to_builder()
        .max_age(Duration::from_secs(2))
        .renew_on_access(true)
        .renew_threshold(1.0)
        .absolute_lifetime(Duration::from_secs(2))
        .build()
        .unwrap();
    let base = serve_client_side(bounded).await;
    let browser = Browser::new(&base);
    browser.send("POST", "/login/configured").await;
    let mut seen = Vec::new();
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(1000)).await;
        seen.push(browser.send("GET", "/whoami").await.body);
    }
    assert_eq!(seen, ["alice", "anonymous", "anonymous"]);
}

/// `set_expiry` under `litestar_compatible` takes only the configured
/// mode, so the stored session stays what Litestar reads.
#[tokio::test]
async fn litestar_compatible_refuses_modes_that_need_metadata() {
    let config = SessionConfig::builder()
        .secure(false)
        .litestar_compatible(true)
        .build()
        .unwrap();
    let store = Arc::new(MemoryStore::new());
    async fn remember(session: Session) -> Res<String> {
        session.insert("user", "alice").await?;
        let week = Expiry::OnInactivity(Duration::from_secs(7 * 86_400));
        Ok(match session.set_expiry(week).await {
            Err(e) => e.to_string(),
            Ok(()) => "accepted".into(),
        })
    }
    let app = Router::new()
        .route("/remember", post(remember))
        .layer(SessionLayer::new(store.clone(), config));
    let browser = Browser::new(&serve(app).await);
    let body = browser.send("POST", "/remember").await.body;
    assert!(body.contains("litestar_compatible"), "{body}");
    let id = browser.get("session").unwrap();
    let raw = store.get(&id, None).await.unwrap().unwrap();
    assert_eq!(&raw[..], br#"{"user":"alice"}"#);
}

fn unix_ms_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// Metadata in a stored session that is unreadable or out of range ends
/// the session (fail closed): the request sees no session, the row is
/// deleted and the cookie expired; nothing panics, nothing is written back
/// with a "never expires" TTL, and an unreadable sibling field or a
/// creation time in the future does not escape the absolute lifetime.
#[tokio::test]
async fn stored_metadata_unreadable_or_out_of_range_ends_the_session() {
    const DAY_MS: u64 = 86_400_000;
    let config = config()
        .to_builder()
        .absolute_lifetime(Duration::from_secs(3600))
        .build()
        .unwrap();
    let app = serve_store(config).await;
    let now = unix_ms_now();
    let two_hours_ago = now - 2 * 3600 * 1000;
    let cases = [
        r#""junk""#.to_owned(),
        r#"{"expiry":{"mode":"on_inactivity","secs":0}}"#.to_owned(),
        format!(
            r#"{{"expiry":{{"mode":"on_inactivity","secs":{}}}}}"#,
            u64::MAX
        ),
        format!(
            r#"{{"expiry":{{"mode":"on_inactivity","secs":{}}}}}"#,
            400 * 86_400 + 1
        ),
        format!(r#"{{"expiry":{{"mode":"at","unix_ms":{}}}}}"#, u64::MAX),
        format!(
            r#"{{"expiry":{{"mode":"at","unix_ms":{}}}}}"#,
            now + 401 * DAY_MS
        ),
        r#"{"expiry":{"mode":"a_later_mode"}}"#.to_owned(),
        // The absolute lifetime: a readable `created` two hours old beside
        // an unreadable field, and a creation time ten years ahead.
        format!(r#"{{"created":{two_hours_ago},"expiry":"?"}}"#),
        format!(r#"{{"created":{}}}"#, now + 3650 * DAY_MS),
        format!(r#"{{"created":{}}}"#, u64::MAX),
    ];
    for (i, meta) in cases.iter().enumerate() {
        let id = format!("{:02x}", i + 1).repeat(32);
        let key = store_key(&id, true);
        let value = format!(r#"{{"user":"alice","{METADATA_KEY}":{meta}}}"#);
        let ttl = Some(Duration::from_secs(600));
        app.store.inner.set(&key, value.into(), ttl).await.unwrap();
        let browser = Browser::new(&app.base);
        browser.set("session", &id);
        let res = browser.send("GET", "/whoami").await;
        assert_eq!(
            (res.status, res.body.as_str()),
            (200, "anonymous"),
            "{meta}"
        );
        assert!(
            res.cookie().contains("Max-Age=0"),
            "{meta}: the cookie must be expired: {res:?}"
        );
        assert!(
            !app.store.inner.exists(&key).await.unwrap(),
            "{meta}: the row was kept"
        );
    }

    // Valid metadata (a creation time a minute ahead: clock skew between
    // servers) is honoured.
    let id = "ab".repeat(32);
    let key = store_key(&id, true);
    let meta = format!(
        r#"{{"created":{},"expiry":{{"mode":"on_inactivity","secs":7200}}}}"#,
        now + 60_000
    );
    let value = format!(r#"{{"user":"alice","{METADATA_KEY}":{meta}}}"#);
    let ttl = Some(Duration::from_secs(600));
    app.store.inner.set(&key, value.into(), ttl).await.unwrap();
    let browser = Browser::new(&app.base);
    browser.set("session", &id);
    assert_eq!(browser.send("GET", "/whoami").await.body, "alice");
    assert_eq!(
        browser.send("GET", "/expiry").await.body,
        "OnInactivity(7200s)"
    );
}

/// `insert` (and `set_expiry`) measure the session with the metadata its
/// save will stamp: the creation time under `absolute_lifetime`, a
/// client-side session's fingerprint seed. A change the save could not
/// store is refused when made, the session unchanged, never a 413 after
/// the handler has run.
#[tokio::test]
async fn insert_counts_the_metadata_the_save_will_add() {
    // `{"k":"x..x"}` with 50 x is 58 bytes: under 64 without metadata, over
    // it with the creation time (45 bytes more).
    let small = config()
        .to_builder()
        .max_session_bytes(64usize)
        .absolute_lifetime(Duration::from_secs(3600))
        .build()
        .unwrap();
    let app = serve_store(small).await;
    let browser = Browser::new(&app.base);
    let res = browser.send("POST", "/big/50").await;
    assert_eq!((res.status, res.body.as_str()), (200, "refused"), "{res:?}");
    assert!(res.set_cookies.is_empty(), "{res:?}");
    assert_eq!(app.store.writes(), 0, "nothing stored");
    let res = browser.send("POST", "/big/10").await;
    assert_eq!(
        (res.status, res.body.as_str()),
        (200, "accepted"),
        "{res:?}"
    );
    assert_eq!(app.raw(&browser).await["k"], "x".repeat(10));

    // The expiry mode counts too: 60 bytes and the creation time fit in
    // 128, not with a two-hour inactivity timeout beside them.
    let medium = config()
        .to_builder()
        .max_session_bytes(128usize)
        .absolute_lifetime(Duration::from_secs(3600))
        .build()
        .unwrap();
    let app = serve_store(medium).await;
    let browser = Browser::new(&app.base);
    let res = browser.send("POST", "/big-remember/60").await;
    assert_eq!((res.status, res.body.as_str()), (200, "refused"), "{res:?}");
    let raw = app.raw(&browser).await;
    assert_eq!(raw["k"], "x".repeat(60), "{raw}");
    assert!(raw[METADATA_KEY].get("expiry").is_none(), "{raw}");

    // Client-side: the fingerprint seed sealed with the session.
    let small = config()
        .to_builder()
        .max_session_bytes(64usize)
        .build()
        .unwrap();
    let base = serve_client_side(small).await;
    let browser = Browser::new(&base);
    let res = browser.send("POST", "/big/50").await;
    assert_eq!((res.status, res.body.as_str()), (200, "refused"), "{res:?}");
    assert!(res.set_cookies.is_empty(), "{res:?}");
}
