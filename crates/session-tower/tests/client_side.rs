//! Client-side sessions (the session sealed in the cookie, no store) and
//! signed id cookies, over real HTTP on a loopback port.
//!
//! Most tests keep the cookies themselves (a small jar that applies each
//! `Set-Cookie` as a browser does), so every cookie sent and received can
//! be inspected; the login flow runs through reqwest's own cookie store.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::header::COOKIE;
use session_core::{MemoryStore, Store};
use session_tower::{
    ClientSideConfig, CookieKeys, Session, SessionConfig, SessionError, SessionLayer,
};
use support::app::{config, incr};
use support::client::set_cookies;
use support::logs::capture;
use support::store::CountingStore;

const OLD: &str = "the old secret: thirty-two bytes or more of it";
const NEW: &str = "the new secret: thirty-two bytes or more of it";

async fn login(session: Session) -> std::result::Result<&'static str, SessionError> {
    session.cycle_id().await?;
    session.insert("user", "alice").await?;
    session.insert("roles", ["user", "admin"]).await?;
    Ok("logged in")
}

async fn profile(session: Session) -> std::result::Result<impl IntoResponse, SessionError> {
    Ok(match session.get::<String>("user").await? {
        Some(user) => (StatusCode::OK, format!("user {user}")),
        None => (StatusCode::UNAUTHORIZED, "Not authenticated".to_owned()),
    })
}

async fn logout(session: Session) -> std::result::Result<&'static str, SessionError> {
    session.clear().await?;
    Ok("logged out")
}

async fn read(session: Session) -> std::result::Result<String, SessionError> {
    let n: Option<u64> = session.get("n").await?;
    Ok(n.map_or("none".into(), |n| n.to_string()))
}

/// Stores a blob of `bytes` characters (a digit pattern, so a mixed or
/// reordered blob would not compare equal).
async fn grow(
    session: Session,
    Path(bytes): Path<usize>,
) -> std::result::Result<String, SessionError> {
    session.insert("blob", blob(bytes)).await?;
    Ok("grown".into())
}

async fn blob_len(session: Session) -> std::result::Result<String, SessionError> {
    Ok(match session.get::<String>("blob").await? {
        Some(b) if b == blob(b.len()) => b.len().to_string(),
        Some(_) => "corrupt".into(),
        None => "none".into(),
    })
}

async fn shrink(session: Session) -> std::result::Result<&'static str, SessionError> {
    session.remove::<String>("blob").await?;
    Ok("shrunk")
}

async fn expires(session: Session) -> std::result::Result<String, SessionError> {
    Ok(match session.expires_in().await? {
        Some(left) => left.as_secs().to_string(),
        None => "none".into(),
    })
}

fn blob(len: usize) -> String {
    (0..len)
        .map(|i| char::from(b'0' + (i % 10) as u8))
        .collect()
}

fn routes() -> Router {
    Router::new()
        .route("/login", post(login))
        .route("/profile", get(profile))
        .route("/logout", post(logout))
        .route("/incr", post(incr))
        .route("/read", get(read))
        .route("/grow/{bytes}", post(grow))
        .route("/blob", get(blob_len))
        .route("/shrink", post(shrink))
        .route("/expires", get(expires))
}

fn client_config(secrets: &[&str], max_cookie_bytes: usize) -> ClientSideConfig {
    ClientSideConfig::builder()
        .secret_keys(secrets)
        .max_cookie_bytes(max_cookie_bytes)
        .build()
        .unwrap()
}

struct App {
    url: String,
    client: reqwest::Client,
}

async fn serve_layer(layer: SessionLayer) -> App {
    App {
        url: support::serve(routes().layer(layer)).await,
        client: reqwest::Client::new(),
    }
}

/// A client-side app with `secrets` and a 16 KiB cookie cap.
async fn serve(secrets: &[&str], config: SessionConfig) -> App {
    serve_layer(SessionLayer::client_side(client_config(secrets, 16 * 1024), config).unwrap()).await
}

/// The cookies a browser holds for the app.
#[derive(Clone, Debug, Default)]
struct Jar(BTreeMap<String, String>);

impl Jar {
    /// Applies each `Set-Cookie` of `res` (`Max-Age=0` removes) and returns
    /// them.
    fn apply(&mut self, res: &reqwest::Response) -> Vec<String> {
        let cookies = set_cookies(res);
        for cookie in &cookies {
            let pair = cookie.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            if cookie.contains("Max-Age=0") {
                self.0.remove(name);
            } else {
                self.0.insert(name.to_owned(), value.to_owned());
            }
        }
        cookies
    }

    fn header(&self) -> String {
        self.0
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn names(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }

    fn get(&self, name: &str) -> &str {
        &self.0[name]
    }

    fn with(&self, name: &str, value: &str) -> Jar {
        let mut jar = self.clone();
        jar.0.insert(name.to_owned(), value.to_owned());
        jar
    }

    fn without(&self, name: &str) -> Jar {
        let mut jar = self.clone();
        jar.0.remove(name);
        jar
    }
}

impl App {
    /// Sends a request with the `Cookie` header `cookies` (raw bytes).
    async fn send_raw(&self, method: &str, path: &str, cookies: &[u8]) -> reqwest::Response {
        let url = format!("{}{path}", self.url);
        let mut req = match method {
            "GET" => self.client.get(url),
            _ => self.client.post(url),
        };
        if !cookies.is_empty() {
            req = req.header(
                COOKIE,
                reqwest::header::HeaderValue::from_bytes(cookies).unwrap(),
            );
        }
        req.send().await.unwrap()
    }

    /// Sends a request with `jar`'s cookies and applies the response's.
    async fn send(
        &self,
        method: &str,
        path: &str,
        jar: &mut Jar,
    ) -> (StatusCode, String, Vec<String>) {
        let res = self.send_raw(method, path, jar.header().as_bytes()).await;
        let status = StatusCode::from_u16(res.status().as_u16()).unwrap();
        let cookies = jar.apply(&res);
        (status, res.text().await.unwrap(), cookies)
    }

    async fn logged_in(&self) -> Jar {
        let mut jar = Jar::default();
        let (status, _, _) = self.send("POST", "/login", &mut jar).await;
        assert_eq!(status, 200);
        jar
    }
}

/// The README's curl session, through reqwest's cookie store, with no
/// store anywhere.
#[tokio::test]
async fn login_profile_logout_works_with_no_store() {
    let app = serve(&[NEW], config()).await;
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let call = |method: &'static str, path: &'static str| {
        let url = format!("{}{path}", app.url);
        let req = if method == "GET" {
            browser.get(url)
        } else {
            browser.post(url)
        };
        async move {
            let res = req.send().await.unwrap();
            let cookies = set_cookies(&res);
            (res.status().as_u16(), cookies, res.text().await.unwrap())
        }
    };
    assert_eq!(call("GET", "/profile").await.0, 401);
    let (status, cookies, _) = call("POST", "/login").await;
    assert_eq!(status, 200);
    assert_eq!(cookies.len(), 1, "{cookies:?}");
    assert!(cookies[0].starts_with("session="), "{cookies:?}");
    assert!(
        cookies[0].ends_with("; Path=/; Max-Age=600; HttpOnly; SameSite=Lax"),
        "{cookies:?}"
    );
    // The cookie holds no readable data.
    assert!(!cookies[0].contains("alice"));
    let (status, cookies, body) = call("GET", "/profile").await;
    assert_eq!((status, body.as_str()), (200, "user alice"));
    assert!(cookies.is_empty(), "a read sent {cookies:?}");
    let (status, cookies, _) = call("POST", "/logout").await;
    assert_eq!(status, 200);
    assert_eq!(cookies.len(), 1);
    assert!(cookies[0].starts_with("session=null;") && cookies[0].contains("Max-Age=0"));
    let (status, _, body) = call("GET", "/profile").await;
    assert_eq!((status, body.as_str()), (401, "Not authenticated"));
}

/// What client-side sessions cannot do, as the docs say: a copy of the
/// cookie taken before the logout still opens until it expires.
#[tokio::test]
async fn a_logout_cannot_revoke_a_copied_cookie() {
    let app = serve(&[NEW], config()).await;
    let mut jar = app.logged_in().await;
    let copy = jar.clone();
    app.send("POST", "/logout", &mut jar).await;
    assert_eq!(app.send("GET", "/profile", &mut jar).await.0, 401);
    let mut copy = copy;
    assert_eq!(app.send("GET", "/profile", &mut copy).await.0, 200);
}

#[tokio::test]
async fn a_large_session_splits_into_chunks_and_shrinks_back_to_one_cookie() {
    let app = serve(&[NEW], config()).await;
    let mut jar = app.logged_in().await;
    assert_eq!(jar.names(), ["session"]);

    let (status, _, cookies) = app.send("POST", "/grow/4000", &mut jar).await;
    assert_eq!(status, 200);
    assert_eq!(jar.names(), ["session-0", "session-1"], "{cookies:?}");
    // The single cookie is expired in the same response.
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with("session=null;") && c.contains("Max-Age=0")),
        "{cookies:?}"
    );
    for cookie in &cookies {
        assert!(cookie.len() <= 4096, "a cookie of {} bytes", cookie.len());
    }
    assert!(jar.get("session-0").starts_with("2."));
    let (_, body, _) = app.send("GET", "/blob", &mut jar).await;
    assert_eq!(body, "4000");
    assert_eq!(app.send("GET", "/profile", &mut jar).await.1, "user alice");

    // Three chunks, then back to two: the surplus chunk is expired.
    let (_, _, cookies) = app.send("POST", "/grow/7000", &mut jar).await;
    assert_eq!(
        jar.names(),
        ["session-0", "session-1", "session-2"],
        "{cookies:?}"
    );
    assert_eq!(app.send("GET", "/blob", &mut jar).await.1, "7000");
    let (_, _, cookies) = app.send("POST", "/grow/4500", &mut jar).await;
    assert_eq!(jar.names(), ["session-0", "session-1"], "{cookies:?}");
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with("session-2=null;") && c.contains("Max-Age=0"))
    );
    assert_eq!(app.send("GET", "/blob", &mut jar).await.1, "4500");

    let (status, _, cookies) = app.send("POST", "/shrink", &mut jar).await;
    assert_eq!(status, 200);
    assert_eq!(cookies.len(), 3, "{cookies:?}");
    assert_eq!(jar.names(), ["session"], "{cookies:?}");
    for chunk in ["session-0", "session-1"] {
        assert!(
            cookies
                .iter()
                .any(|c| c.starts_with(&format!("{chunk}=null;")) && c.contains("Max-Age=0")),
            "{chunk} not expired: {cookies:?}"
        );
    }
    assert_eq!(app.send("GET", "/blob", &mut jar).await.1, "none");
    assert_eq!(app.send("GET", "/profile", &mut jar).await.1, "user alice");
}

#[tokio::test]
async fn a_session_over_the_cookie_cap_is_a_413_and_the_old_one_stays() {
    let layer = SessionLayer::client_side(client_config(&[NEW], 8 * 1024), config()).unwrap();
    let app = serve_layer(layer).await;
    let mut jar = app.logged_in().await;
    let before = jar.clone();
    let (status, body, cookies) = app.send("POST", "/grow/7000", &mut jar).await;
    assert_eq!(status, 413, "{body}");
    assert!(cookies.is_empty(), "{cookies:?}");
    assert_eq!(jar.0, before.0);
    assert_eq!(app.send("GET", "/profile", &mut jar).await.1, "user alice");
    // What fits is stored.
    assert_eq!(app.send("POST", "/grow/5000", &mut jar).await.0, 200);
    assert_eq!(app.send("GET", "/blob", &mut jar).await.1, "5000");
}

#[tokio::test]
async fn rotation_opens_old_cookies_and_reseals_them_with_the_new_key_on_write() {
    let before = serve(&[OLD], config()).await;
    let mut jar = before.logged_in().await;
    before.send("POST", "/incr", &mut jar).await;
    let sealed_with_old = jar.clone();

    let rotated = serve(&[NEW, OLD], config()).await;
    let (status, body, cookies) = rotated.send("GET", "/profile", &mut jar).await;
    assert_eq!((status.as_u16(), body.as_str()), (200, "user alice"));
    assert!(cookies.is_empty(), "a read re-sealed: {cookies:?}");
    // The next write seals with the new key.
    let (_, body, cookies) = rotated.send("POST", "/incr", &mut jar).await;
    assert_eq!(body, "2");
    assert_eq!(cookies.len(), 1);

    let only_new = serve(&[NEW], config()).await;
    assert_eq!(only_new.send("GET", "/read", &mut jar).await.1, "2");
    assert_eq!(
        only_new.send("GET", "/profile", &mut jar).await.1,
        "user alice"
    );
    // The old key removed: the cookie it sealed is no session.
    let mut old = sealed_with_old;
    assert_eq!(only_new.send("GET", "/profile", &mut old).await.0, 401);
}

#[tokio::test]
async fn renewal_on_access_reseals_with_a_new_expiry() {
    // Every access renews (`renew_threshold` 1.0): a read 1 s after the
    // seal is due (with the default 0.5, not before half of max_age).
    let config = config()
        .to_builder()
        .renew_on_access(true)
        .renew_threshold(1.0)
        .build()
        .unwrap();
    let app = serve(&[NEW], config).await;
    let mut jar = app.logged_in().await;
    let first = jar.get("session").to_owned();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, _, cookies) = app.send("GET", "/profile", &mut jar).await;
    assert_eq!(status, 200);
    assert_eq!(cookies.len(), 1, "{cookies:?}");
    assert!(cookies[0].contains("Max-Age=600"), "{cookies:?}");
    assert_ne!(jar.get("session"), first);
    assert_eq!(app.send("GET", "/expires", &mut jar).await.1, "600");
}

#[tokio::test]
async fn expires_in_counts_down_from_the_sealed_expiry() {
    let app = serve(&[NEW], config()).await;
    let mut jar = Jar::default();
    assert_eq!(app.send("GET", "/expires", &mut jar).await.1, "none");
    app.send("POST", "/login", &mut jar).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let left: u64 = app
        .send("GET", "/expires", &mut jar)
        .await
        .1
        .parse()
        .unwrap();
    assert!((590..600).contains(&left), "{left}");
}

/// Flips one bit of byte `at` of the sealed bytes behind `value`.
fn flip(value: &str, at: usize) -> String {
    let mut raw = URL_SAFE_NO_PAD.decode(value).unwrap();
    raw[at] ^= 0x01;
    URL_SAFE_NO_PAD.encode(raw)
}

/// Hostile cookies, each sent to `/profile` (the route answers 401 without
/// a session) and `/read` (200 `none`): no session, never a 500.
#[tokio::test]
async fn hostile_cookies_are_no_session_and_never_a_500() {
    let short = config()
        .to_builder()
        .max_age(Duration::from_secs(1))
        .build()
        .unwrap();
    let app = serve(&[NEW], config()).await;
    let expiring = serve(&[NEW], short).await;
    let other_name = serve(
        &[NEW],
        config().to_builder().cookie_name("other").build().unwrap(),
    )
    .await;
    let other_key = serve(&[OLD], config()).await;

    // Real sessions to tamper with.
    let small = app.logged_in().await;
    let value = small.get("session").to_owned();
    let raw_len = URL_SAFE_NO_PAD.decode(&value).unwrap().len();
    let mut big_a = app.logged_in().await;
    app.send("POST", "/grow/7000", &mut big_a).await;
    assert_eq!(big_a.names(), ["session-0", "session-1", "session-2"]);
    let mut big_b = app.logged_in().await;
    app.send("POST", "/grow/7000", &mut big_b).await;
    let mut two_chunks = app.logged_in().await;
    app.send("POST", "/grow/4000", &mut two_chunks).await;
    assert_eq!(two_chunks.names(), ["session-0", "session-1"]);
    let old_expired = expiring.logged_in().await;
    let other_named = other_name.logged_in().await;
    let other_keyed = other_key.logged_in().await;
    // Each of them works as sent.
    for jar in [&small, &big_a, &big_b, &two_chunks] {
        let res = app
            .send_raw("GET", "/profile", jar.header().as_bytes())
            .await;
        assert_eq!(res.status(), 200);
    }

    let chunk0 = big_a.get("session-0");
    let (count, first_piece) = chunk0.split_once('.').unwrap();
    assert_eq!(count, "3");
    let whole: String = [first_piece, big_a.get("session-1"), big_a.get("session-2")].concat();

    let mut hostile: Vec<(String, Vec<u8>)> = Vec::new();
    let mut add = |kind: &str, cookie: String| hostile.push((kind.to_owned(), cookie.into_bytes()));
    // Flipped bits: the version byte, every nonce byte, every ciphertext
    // and tag byte.
    for at in 0..raw_len {
        let part = match at {
            0 => "version",
            1..=12 => "nonce",
            _ if at >= raw_len - 16 => "tag",
            _ => "ciphertext",
        };
        add(
            &format!("bit flipped in the {part} (byte {at})"),
            format!("session={}", flip(&value, at)),
        );
    }
    add(
        "last character dropped",
        format!("session={}", &value[..value.len() - 1]),
    );
    add(
        "truncated to half",
        format!("session={}", &value[..value.len() / 2]),
    );
    add("one character appended", format!("session={value}A"));
    add("empty value", "session=".into());
    add("the expired placeholder", "session=null".into());
    add("garbage base64", "session=!!!not*base64***".into());
    add(
        "standard base64 with padding",
        format!("session={}=", value.replace('-', "+")),
    );
    add(
        "random bytes, well encoded",
        format!("session={}", URL_SAFE_NO_PAD.encode([0x5au8; 80])),
    );
    add(
        "sealed for another cookie name",
        format!("session={}", other_named.get("other")),
    );
    add(
        "sealed with a key not configured",
        format!("session={}", other_keyed.get("session")),
    );
    add(
        "oversized single cookie",
        format!("session={}", "A".repeat(5000)),
    );
    add(
        "a signed id, not a sealed session",
        format!("session={}.{}", "ab".repeat(32), "A".repeat(43)),
    );
    add(
        "chunks 1 and 2 swapped",
        big_a
            .with("session-1", big_a.get("session-2"))
            .with("session-2", big_a.get("session-1"))
            .header(),
    );
    add("chunk 1 missing", big_a.without("session-1").header());
    add("last chunk missing", big_a.without("session-2").header());
    add("chunk 0 missing", big_a.without("session-0").header());
    add(
        "chunks of two sessions mixed",
        big_a.with("session-1", big_b.get("session-1")).header(),
    );
    add(
        "first chunk of another session",
        big_a.with("session-0", big_b.get("session-0")).header(),
    );
    add(
        "count lowered",
        big_a
            .with("session-0", &format!("2.{first_piece}"))
            .header(),
    );
    add(
        "count raised",
        big_a
            .with("session-0", &format!("4.{first_piece}"))
            .header(),
    );
    add(
        "count removed",
        big_a.with("session-0", first_piece).header(),
    );
    add(
        "a huge count",
        big_a
            .with("session-0", &format!("31.{first_piece}"))
            .header(),
    );
    add(
        "a single cookie as chunk 0 of one",
        format!("session-0=1.{value}"),
    );
    add(
        "the chunks joined into one cookie",
        format!("session={whole}"),
    );
    add(
        "a two-chunk session's chunks under a three-chunk count",
        two_chunks
            .with("session-2", big_a.get("session-2"))
            .with(
                "session-0",
                &format!(
                    "3.{}",
                    two_chunks.get("session-0").split_once('.').unwrap().1
                ),
            )
            .header(),
    );
    add(
        "an oversized chunk",
        big_a.with("session-1", &"A".repeat(5000)).header(),
    );
    add(
        "garbage before the real cookie",
        format!("session=garbage; {}", small.header()),
    );

    let mut sent = hostile;
    // Non-UTF-8 bytes.
    sent.push((
        "bytes that are not UTF-8".into(),
        b"session=\xff\xfe\xfd".to_vec(),
    ));
    // Replay past expiry: a cookie of a 1 s session, 2 s later.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    sent.push((
        "replayed past its expiry".into(),
        format!("session={}", old_expired.get("session")).into_bytes(),
    ));

    let kinds: std::collections::BTreeSet<&str> = sent
        .iter()
        .map(|(k, _)| k.split(" (byte").next().unwrap())
        .collect();
    assert!(kinds.len() >= 20, "only {} kinds", kinds.len());
    for (kind, cookie) in &sent {
        let target = if kind.starts_with("replayed") {
            &expiring
        } else {
            &app
        };
        let res = target.send_raw("GET", "/profile", cookie).await;
        assert_eq!(res.status(), 401, "{kind}");
        assert_eq!(res.text().await.unwrap(), "Not authenticated", "{kind}");
        let res = target.send_raw("GET", "/read", cookie).await;
        assert_eq!(res.status(), 200, "{kind}");
        assert_eq!(res.text().await.unwrap(), "none", "{kind}");
        // A write starts a fresh session; the hostile cookie is replaced.
        let res = target.send_raw("POST", "/incr", cookie).await;
        assert_eq!(res.status(), 200, "{kind}");
        assert_eq!(res.text().await.unwrap(), "1", "{kind}");
    }
    println!(
        "{} hostile cookies of {} kinds refused",
        sent.len(),
        kinds.len()
    );
}

#[tokio::test]
async fn a_refused_cookie_is_a_debug_event_without_its_content() {
    let logs = capture(tracing::Level::DEBUG);

    let app = serve(&[NEW], config()).await;
    let jar = app.logged_in().await;
    let value = jar.get("session").to_owned();
    let tampered = flip(&value, 20);
    let res = app
        .send_raw("GET", "/profile", format!("session={tampered}").as_bytes())
        .await;
    assert_eq!(res.status(), 401);

    let text = logs.text();
    let line = text
        .lines()
        .find(|l| l.contains("session cookie refused"))
        .unwrap_or_else(|| panic!("no event in {text:?}"));
    assert!(line.contains("DEBUG"), "{line}");
    assert!(line.contains("no key opens it"), "{line}");
    for secret in [value.as_str(), tampered.as_str(), &value[..40]] {
        assert!(!text.contains(secret), "cookie content was logged");
    }
}

#[test]
fn a_short_or_missing_key_is_refused_at_build_time() {
    let err = ClientSideConfig::builder().build().unwrap_err();
    assert!(err.to_string().contains("`secret_keys`"), "{err}");
    let err = ClientSideConfig::builder()
        .secret_keys([NEW, "0123456789"])
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("`secret_keys[1]`"), "{err}");
    assert!(err.to_string().contains("got 10"), "{err}");
}

#[tokio::test]
async fn signed_id_cookies_keep_forged_ids_away_from_the_store() {
    let store = Arc::new(CountingStore::default());
    let keys = CookieKeys::from_secrets([NEW]).unwrap();
    let layer = SessionLayer::with_shared(store.clone(), config())
        .with_signed_ids(keys)
        .unwrap();
    let app = serve_layer(layer).await;
    let mut jar = app.logged_in().await;
    let value = jar.get("session").to_owned();
    let (id, signature) = value.split_once('.').expect("a signed id");
    assert_eq!((id.len(), signature.len()), (64, 43), "{value}");
    assert!(
        store
            .inner
            .exists(&session_tower::store_key(id, true))
            .await
            .unwrap()
    );
    assert_eq!(app.send("GET", "/profile", &mut jar).await.1, "user alice");

    let calls = store.calls();
    let mut other_id = id.as_bytes().to_vec();
    other_id[0] = if other_id[0] == b'a' { b'b' } else { b'a' };
    let other_id = String::from_utf8(other_id).unwrap();
    let forged = [
        format!("session={id}"),
        format!("session={other_id}.{signature}"),
        format!("session={id}.{}", "A".repeat(43)),
        format!("session={id}.{}", &signature[..42]),
        format!("session={id}.{signature}A"),
        format!("session={id}..{signature}"),
        format!("session=.{signature}"),
        format!("session={}.{signature}", id.to_uppercase()),
        "session=garbage".to_owned(),
    ];
    for cookie in &forged {
        let res = app.send_raw("GET", "/profile", cookie.as_bytes()).await;
        assert_eq!(res.status(), 401, "{cookie}");
    }
    assert_eq!(store.calls(), calls, "a forged id reached the store");

    // Rotation: signed with the old key, verified after the rotation.
    let rotated = CookieKeys::from_secrets([OLD, NEW]).unwrap();
    let layer = SessionLayer::with_shared(store.clone(), config())
        .with_signed_ids(rotated)
        .unwrap();
    let app2 = serve_layer(layer).await;
    assert_eq!(app2.send("GET", "/profile", &mut jar).await.1, "user alice");
    // Logout still ends it for every copy: the row is gone.
    let copy = jar.clone();
    app2.send("POST", "/logout", &mut jar).await;
    let mut copy = copy;
    assert_eq!(app2.send("GET", "/profile", &mut copy).await.0, 401);
}

/// Signed ids make the cookie `<id>.<signature>`, which a Litestar
/// application cannot read: refused when the layer is built, naming
/// `litestar_compatible`, as `client_side` is.
#[test]
fn signed_ids_are_refused_under_litestar_compatible() {
    let litestar = SessionConfig::builder()
        .litestar_compatible(true)
        .build()
        .unwrap();
    let keys = CookieKeys::from_secrets([NEW]).unwrap();
    let err = SessionLayer::new(MemoryStore::new(), litestar)
        .with_signed_ids(keys)
        .unwrap_err();
    match err {
        session_core::Error::InvalidConfig { field, reason } => {
            assert_eq!(field, "litestar_compatible", "{reason}");
            assert!(reason.contains("with_signed_ids"), "{reason}");
        }
        other => panic!("expected InvalidConfig, got {other:?}"),
    }
    // Without the setting, signed ids are taken.
    let keys = CookieKeys::from_secrets([NEW]).unwrap();
    assert!(
        SessionLayer::new(MemoryStore::new(), config())
            .with_signed_ids(keys)
            .is_ok()
    );
}
