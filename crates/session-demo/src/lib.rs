//! The quick start of the guide as a running service: `POST /login`,
//! `GET /profile`, `POST /logout`, and a small HTML page at `/`, on
//! server-side sessions stored in SQLite (default), PostgreSQL or any store
//! of `session-open`'s scheme table, or on client-side sessions sealed in
//! the cookie ([`client_side_layer`]).
//!
//! [`app`] builds the router over any store and [`app_with_layer`] over a
//! ready [`SessionLayer`], so the tests run the very service
//! `cargo run -p session-demo` serves.
//!
//! The demo does what a real login should: passwords are kept as Argon2id
//! hashes and checked in constant time, with the same work for an unknown
//! user ([`authenticate`]), and a request that changes state (`POST
//! /login`, `POST /logout`) from another site is refused with a `403`
//! before it reaches the session.

use std::sync::Arc;

use argon2::{Argon2, PasswordHash, PasswordVerifier};
use axum::Router;
use axum::extract::{Json, Request};
use axum::http::header::{HOST, ORIGIN};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use session_core::{Error, Store, StoreAdmin};
use session_tower::{
    ClientSideConfig, MIN_SECRET_BYTES, Session, SessionConfig, SessionConfigBuilder, SessionError,
    SessionLayer,
};

/// A demo account: `alice` / `wonderland` among them.
#[derive(Debug, Clone, Copy)]
pub struct DemoUser {
    /// The numeric id stored in the session.
    pub id: u64,
    /// The login name.
    pub username: &'static str,
    /// The password's Argon2id hash as a PHC string
    /// (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`): the password itself
    /// is kept nowhere.
    pub password_hash: &'static str,
    /// The roles stored in the session.
    pub roles: &'static [&'static str],
}

/// The fixed accounts of the demo, documented in the README (`alice` /
/// `wonderland`, `bob` / `builder`). Their passwords were hashed once with
/// Argon2id at OWASP's parameters (19 MiB, 2 passes, 1 lane; the `argon2`
/// crate's defaults) and a random 16-byte salt each.
pub const DEMO_USERS: &[DemoUser] = &[
    DemoUser {
        id: 1,
        username: "alice",
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$J+3LdBCjP83zys/ogPoB9w$6FludvB7lI3q53mTurs/rLHbxeLmBrdQ0e0wmC7W660",
        roles: &["user", "admin"],
    },
    DemoUser {
        id: 2,
        username: "bob",
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$xFjO4vdFo97llGBHgTVcVw$jDk0/qPLI+vSsAQgxO3KS9U676KOLH9arxFcng7rW5c",
        roles: &["user"],
    },
];

/// What an unknown user name is checked against: the hash of a random
/// password nobody knows, with the same parameters as [`DEMO_USERS`], so a
/// login attempt costs the same whether the user exists or not (the answer
/// time does not tell which names exist).
pub const DUMMY_PASSWORD_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$hg+Rsb451WoyJQPQx+cOdw$4ITnKCrk/LhA08GJkIVg5pRCa+NZDl418TpXSneavzg";

/// The account `username` / `password` logs in to, or `None`.
///
/// Exactly one Argon2id verification runs whatever the input: against the
/// user's hash, or against [`DUMMY_PASSWORD_HASH`] for an unknown name.
/// `argon2` compares the computed hash with the stored one in constant
/// time. It takes tens of milliseconds by design: call it off the async
/// runtime (`tokio::task::spawn_blocking`), as the demo's `POST /login` does.
///
/// # Examples
///
/// ```
/// let alice = session_demo::authenticate("alice", "wonderland").expect("README password");
/// assert_eq!(alice.id, 1);
/// assert!(session_demo::authenticate("alice", "Wonderland").is_none());
/// assert!(session_demo::authenticate("mallory", "wonderland").is_none());
/// ```
pub fn authenticate(username: &str, password: &str) -> Option<&'static DemoUser> {
    let user = DEMO_USERS.iter().find(|u| u.username == username);
    let hash = user.map_or(DUMMY_PASSWORD_HASH, |u| u.password_hash);
    let verified = match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(e) => {
            tracing::error!(error = %e, "a demo password hash does not parse");
            false
        }
    };
    user.filter(|_| verified)
}

/// The database the demo uses when `DATABASE_URL` is not set: a SQLite file
/// in the current directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://session-demo.sqlite";

/// Opens the store named by `database_url` through the scheme table of
/// `session-open` (`sqlite://path`, `sqlite::memory:`, `postgres://...`,
/// any backend it compiles in), with `config` the backend's configuration
/// document (`Value::Null` for the defaults, its own fields, or SQLSpec's
/// `{"litestar": {...}}` shape), and migrates its table (creating or
/// adopting it).
///
/// # Errors
///
/// An unknown scheme or malformed URL (as an [`Error::InvalidConfig`] of
/// `DATABASE_URL`, the URL shown without its password), a bad config, an
/// unreachable database (a server without a schema, such as Redis, is
/// asked whether it is there) or a refused migration.
pub async fn open_store(database_url: &str, config: &Value) -> Result<Arc<dyn StoreAdmin>, Error> {
    let connector = session_open::connector_for(database_url).map_err(|e| match e {
        Error::InvalidConfig { reason, .. } => Error::invalid_config(
            "DATABASE_URL",
            format!("{reason} (in {})", session_open::redact(database_url)),
        ),
        other => other,
    })?;
    let store = connector.open(database_url, config).await?;
    store.migrate().await?;
    // A backend without a schema migrates without a word to its server:
    // prove it is there before serving.
    store.session_table_exists().await?;
    Ok(store)
}

/// The demo's session settings: one day, `Secure` off so it works over plain
/// HTTP on localhost (turn it on behind HTTPS).
pub fn session_config() -> SessionConfig {
    demo_builder()
        .build()
        .expect("the demo's session config is valid")
}

/// What both of the demo's configs share: one day.
fn demo_builder() -> SessionConfigBuilder {
    SessionConfig::builder()
        .max_age(std::time::Duration::from_secs(24 * 3600))
        // The demo serves plain http on 127.0.0.1, where a browser would
        // not send back a `Secure` cookie: a development setting, never for
        // a service reached over the network.
        .secure(false)
}

/// The session table SQLSpec's Litestar stores use by default (and this
/// workspace's SQL stores too): the table `--litestar-compatible` shares.
pub const LITESTAR_SESSION_TABLE: &str = "litestar_session";

/// The demo's settings under `--litestar-compatible`: [`session_config`]
/// with [`litestar_compatible`](session_tower::SessionConfigBuilder::litestar_compatible)
/// (the raw session id as the store key, a stored session that is not a
/// JSON object refused with a 500 and left alone) and `renew_on_access`
/// on with a `renew_threshold` of `1.0`: a Litestar application rewrites a
/// session, with a fresh expiry, on every response that carries one, so
/// renewing on each read (not only past half the lifetime, the
/// middleware's default) is what keeps the two sides' expiries alike. Give
/// the Litestar side the same values:
///
/// ```python
/// ServerSideSessionConfig(max_age=86400, renew_on_access=True)
/// ```
///
/// (cookie `session`, 32-byte ids, `Path=/`, `HttpOnly`, `SameSite=Lax`
/// and `Secure` off are both sides' defaults).
///
/// # Examples
///
/// ```
/// let config = session_demo::litestar_session_config();
/// assert!(config.litestar_compatible() && config.renew_on_access());
/// assert_eq!(config.renew_threshold(), 1.0);
/// assert!(!config.hash_session_ids());
/// assert_eq!(config.max_age(), session_demo::session_config().max_age());
/// ```
pub fn litestar_session_config() -> SessionConfig {
    demo_builder()
        .litestar_compatible(true)
        .renew_on_access(true)
        .renew_threshold(1.0)
        .build()
        .expect("the demo's Litestar-compatible session config is valid")
}

/// The store configuration document for [`open_store`]: `Value::Null` (the
/// backend's defaults) without a `table`, else SQLSpec's extension shape
/// `{"litestar": {"session_table": table}}`, which the SQL backends read
/// (a backend without tables refuses `session_table` by name).
///
/// # Examples
///
/// ```
/// use serde_json::json;
///
/// assert_eq!(session_demo::store_config(None), serde_json::Value::Null);
/// assert_eq!(
///     session_demo::store_config(Some("litestar_session")),
///     json!({"litestar": {"session_table": "litestar_session"}})
/// );
/// ```
pub fn store_config(table: Option<&str>) -> Value {
    match table {
        None => Value::Null,
        Some(table) => json!({ "litestar": { "session_table": table } }),
    }
}

/// The environment variable holding the demo's client-side secrets.
pub const SESSION_SECRET_VAR: &str = "SESSION_SECRET";

/// The secrets of `SESSION_SECRET`: one, or several separated by commas for
/// rotation (`new,old`: the first seals, every one opens), each at least
/// 32 bytes, spaces around each trimmed. A secret therefore cannot hold a
/// comma: `openssl rand -base64 32` and
/// [`CookieKeys::generate_secret`](session_tower::CookieKeys::generate_secret)
/// make none.
///
/// # Errors
///
/// [`Error::InvalidConfig`] naming `SESSION_SECRET`: the value is empty, an
/// entry is empty (`new,,old`), or an entry is shorter than 32 bytes (the
/// message says which entry and how long it is, never its content).
///
/// # Examples
///
/// ```
/// let new = "n".repeat(40);
/// let old = "o".repeat(32);
/// let secrets = session_demo::parse_session_secrets(&format!("{new}, {old}")).unwrap();
/// assert_eq!(secrets, [new.clone(), old]);
///
/// let err = session_demo::parse_session_secrets(&format!("{new},too short")).unwrap_err();
/// assert!(err.to_string().contains("SESSION_SECRET"), "{err}");
/// assert!(err.to_string().contains("secret 2 of 2 is 9 bytes"), "{err}");
/// ```
pub fn parse_session_secrets(value: &str) -> Result<Vec<String>, Error> {
    if value.trim().is_empty() {
        return Err(Error::invalid_config(
            SESSION_SECRET_VAR,
            format!(
                "is empty: set one secret of {MIN_SECRET_BYTES} bytes or more (or several, \
                 separated by commas, the first sealing), e.g. from `openssl rand -base64 32`, \
                 or unset it for a random secret that lasts until the demo stops"
            ),
        ));
    }
    let entries: Vec<&str> = value.split(',').map(str::trim).collect();
    for (i, entry) in entries.iter().enumerate() {
        if entry.is_empty() {
            return Err(Error::invalid_config(
                SESSION_SECRET_VAR,
                format!(
                    "secret {} of {} is empty (a comma too many?)",
                    i + 1,
                    entries.len()
                ),
            ));
        }
        if entry.len() < MIN_SECRET_BYTES {
            return Err(Error::invalid_config(
                SESSION_SECRET_VAR,
                format!(
                    "secret {} of {} is {} bytes; each needs at least {MIN_SECRET_BYTES} \
                     (make one with `openssl rand -base64 32`)",
                    i + 1,
                    entries.len(),
                    entry.len()
                ),
            ));
        }
    }
    Ok(entries.into_iter().map(str::to_owned).collect())
}

/// The demo's client-side layer: sessions sealed (AES-256-GCM) in the
/// cookie under `secrets` (the first seals, all open), with the same
/// [`session_config`] as the store-backed demo (one day, `Secure` off for
/// plain http on 127.0.0.1). No store, no cleaner: the sealed expiry ends
/// a session.
///
/// # Errors
///
/// [`Error::InvalidConfig`] naming `secret_keys` (or `secret_keys[i]`) when
/// there is no secret or one is shorter than 32 bytes;
/// [`parse_session_secrets`] checks `SESSION_SECRET` first, naming it.
///
/// # Examples
///
/// ```
/// let layer = session_demo::client_side_layer(&["a secret of at least thirty-two bytes"])?;
/// assert!(layer.is_client_side());
/// let app = session_demo::app_with_layer(layer);
/// # let _ = app;
/// # Ok::<(), session_core::Error>(())
/// ```
pub fn client_side_layer<S: AsRef<[u8]>>(secrets: &[S]) -> Result<SessionLayer, Error> {
    let client = ClientSideConfig::builder().secret_keys(secrets).build()?;
    SessionLayer::client_side(client, session_config())
}

/// The demo service over `store`: [`app_with_layer`] with a layer over
/// `store` and `config`.
pub fn app(store: Arc<dyn Store>, config: SessionConfig) -> Router {
    app_with_layer(SessionLayer::with_shared(store, config))
}

/// The demo service over a ready session layer (a store's, or
/// [`client_side_layer`]'s), with cross-site requests that change state
/// refused before they reach it ([`cross_site`]).
pub fn app_with_layer(layer: SessionLayer) -> Router {
    let page = if layer.is_client_side() {
        PageText {
            title: "Client-side sessions",
            where_sessions_live: "The browser keeps the whole session, sealed (encrypted and \
                authenticated with AES-256-GCM) in its cookie; there is no database.",
        }
    } else {
        PageText {
            title: "Server-side sessions",
            where_sessions_live: "The browser keeps only a random session id; the data below \
                lives in the database.",
        }
    };
    Router::new()
        .route("/", get(move |session: Session| index(session, page)))
        .route("/login", post(login))
        .route("/profile", get(profile))
        .route("/logout", post(logout))
        .layer(layer)
        // Outside the session layer: a refused request never loads, renews
        // nor writes a session.
        .layer(middleware::from_fn(refuse_cross_site))
}

/// Why a request is cross-site, or `None` when it may change state.
///
/// A request is cross-site when its `Sec-Fetch-Site` is `cross-site`, or
/// its `Origin` (which browsers send with every `POST`) is not the origin
/// the request was sent to: `null`, malformed, or naming another host or
/// port than the `Host` header (the request's authority under HTTP/2),
/// default ports (`80` for http, `443` for https) being equal to none. The
/// scheme is not compared: behind a TLS proxy the service sees plain http
/// while the browser's `Origin` says https, and one host and port are one
/// server either way. A request without `Origin` (curl, scripts) passes: it
/// is not a browser carrying someone's cookie from another site.
///
/// Behind a reverse proxy, forward the original `Host` (nginx:
/// `proxy_set_header Host $host;`), or every browser login is refused.
///
/// # Examples
///
/// ```
/// use axum::http::{HeaderMap, HeaderValue, Uri};
///
/// let mut headers = HeaderMap::new();
/// headers.insert("host", HeaderValue::from_static("127.0.0.1:8000"));
/// let uri = Uri::from_static("/login");
/// assert_eq!(session_demo::cross_site(&headers, &uri), None);
/// headers.insert("origin", HeaderValue::from_static("http://127.0.0.1:8000"));
/// assert_eq!(session_demo::cross_site(&headers, &uri), None);
/// headers.insert("origin", HeaderValue::from_static("http://evil.example"));
/// assert!(session_demo::cross_site(&headers, &uri).is_some());
/// ```
pub fn cross_site(headers: &HeaderMap, uri: &Uri) -> Option<String> {
    if headers
        .get_all("sec-fetch-site")
        .iter()
        .any(|v| v.as_bytes().eq_ignore_ascii_case(b"cross-site"))
    {
        return Some("Sec-Fetch-Site is cross-site".into());
    }
    let mut origins = headers.get_all(ORIGIN).iter();
    let origin = origins.next()?;
    if origins.next().is_some() {
        return Some("more than one Origin header".into());
    }
    let Ok(origin) = origin.to_str() else {
        return Some("the Origin is not ASCII text".into());
    };
    let origin = origin.trim();
    if origin.eq_ignore_ascii_case("null") {
        return Some("the Origin is opaque (null)".into());
    }
    let Some((scheme, authority)) = origin.split_once("://") else {
        return Some(format!("the Origin {origin:?} is not scheme://host[:port]"));
    };
    let scheme = scheme.to_ascii_lowercase();
    if authority.is_empty() || authority.contains(['/', '?', '#', '@', ' ']) {
        return Some(format!("the Origin {origin:?} is not scheme://host[:port]"));
    }
    let host = headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| uri.authority().map(|a| a.as_str().to_owned()));
    let Some(host) = host else {
        return Some(format!("the Origin {origin:?} cannot be checked: no Host"));
    };
    if normalized(authority, &scheme) == normalized(host.trim(), &scheme) {
        None
    } else {
        Some(format!(
            "the Origin {origin:?} is not this service's ({host:?})"
        ))
    }
}

/// `authority` in lower case, without the default port of `scheme`.
fn normalized(authority: &str, scheme: &str) -> String {
    let authority = authority.to_ascii_lowercase();
    let default_port = match scheme {
        "http" | "ws" => ":80",
        "https" | "wss" => ":443",
        _ => return authority,
    };
    match authority.strip_suffix(default_port) {
        Some(bare) => bare.to_owned(),
        None => authority,
    }
}

/// Refuses a cross-site request that may change state (any method but
/// `GET`, `HEAD`, `OPTIONS` and `TRACE`) with a `403` and a JSON error.
async fn refuse_cross_site(request: Request, next: Next) -> Response {
    let safe = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    );
    if !safe && let Some(reason) = cross_site(request.headers(), request.uri()) {
        tracing::warn!(
            method = %request.method(),
            path = request.uri().path(),
            reason,
            "refused a cross-site request"
        );
        return json_error(StatusCode::FORBIDDEN, "Cross-site request refused");
    }
    next.run(request).await
}

/// The body of `POST /login`.
#[derive(Debug, Deserialize)]
pub struct Credentials {
    /// The login name.
    pub username: String,
    /// The password.
    pub password: String,
}

fn json_error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

async fn login(session: Session, Json(creds): Json<Credentials>) -> Result<Response, SessionError> {
    // Argon2 takes tens of milliseconds of CPU: off the async workers.
    let checked =
        tokio::task::spawn_blocking(move || authenticate(&creds.username, &creds.password)).await;
    let user = match checked {
        Ok(user) => user,
        Err(e) => {
            tracing::error!(error = %e, "the password check failed");
            return Ok(json_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal error",
            ));
        }
    };
    let Some(user) = user else {
        tracing::info!("failed login");
        return Ok(json_error(
            StatusCode::UNAUTHORIZED,
            "Invalid username or password",
        ));
    };
    // A new id on login: an id planted before authentication is worthless.
    session.cycle_id().await?;
    session.insert("user_id", user.id).await?;
    session.insert("username", user.username).await?;
    session.insert("roles", user.roles).await?;
    tracing::info!(user_id = user.id, "logged in");
    Ok(Json(json!({ "status": "logged in" })).into_response())
}

async fn profile(session: Session) -> Result<Response, SessionError> {
    let Some(user_id) = session.get::<u64>("user_id").await? else {
        return Ok(json_error(StatusCode::UNAUTHORIZED, "Not authenticated"));
    };
    Ok(Json(json!({
        "user_id": user_id,
        "username": session.get_value("username").await?,
        "roles": session.get_value("roles").await?,
    }))
    .into_response())
}

async fn logout(session: Session) -> Result<Response, SessionError> {
    session.clear().await?;
    Ok(Json(json!({ "status": "logged out" })).into_response())
}

/// What the page at `/` says about where sessions live.
#[derive(Debug, Clone, Copy)]
struct PageText {
    title: &'static str,
    where_sessions_live: &'static str,
}

async fn index(session: Session, page: PageText) -> Result<Html<String>, SessionError> {
    let data = Value::Object(session.data().await?);
    let pretty = serde_json::to_string_pretty(&data).unwrap_or_default();
    Ok(Html(
        INDEX_HTML
            .replace("{{title}}", page.title)
            .replace("{{where}}", page.where_sessions_live)
            .replace("{{session}}", &escape_html(&pretty)),
    ))
}

fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const INDEX_HTML: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>session-store demo</title>
<style>
 body { font: 16px/1.5 system-ui, sans-serif; max-width: 40rem; margin: 2rem auto; padding: 0 1rem; }
 form { display: grid; gap: .5rem; max-width: 20rem; }
 pre { background: #f4f4f4; padding: 1rem; }
 #result { min-height: 1.5em; }
</style>
</head>
<body>
<h1>{{title}}</h1>
<p>Log in as <code>alice</code> / <code>wonderland</code> or <code>bob</code> / <code>builder</code>.
{{where}}</p>
<form id="login">
 <label>Username <input name="username" autocomplete="username" required></label>
 <label>Password <input name="password" type="password" autocomplete="current-password" required></label>
 <button type="submit">Log in</button>
</form>
<p><button id="profile">GET /profile</button> <button id="logout">Log out</button></p>
<p id="result"></p>
<h2>This session</h2>
<pre id="session">{{session}}</pre>
<script>
const show = async (res) => {
  document.getElementById('result').textContent = res.status + ' ' + await res.text();
};
document.getElementById('login').addEventListener('submit', async (e) => {
  e.preventDefault();
  const form = new FormData(e.target);
  const res = await fetch('/login', {method: 'POST', headers: {'Content-Type': 'application/json'},
    body: JSON.stringify({username: form.get('username'), password: form.get('password')})});
  await show(res);
  if (res.ok) location.reload();
});
document.getElementById('profile').addEventListener('click', async () => show(await fetch('/profile')));
document.getElementById('logout').addEventListener('click', async () => {
  await show(await fetch('/logout', {method: 'POST'}));
  location.reload();
});
</script>
</body>
</html>
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            session_open::redact("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(
            session_open::redact("postgres://u@h/db"),
            "postgres://u@h/db"
        );
        assert_eq!(session_open::redact("sqlite://x.db"), "sqlite://x.db");
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, axum::http::HeaderValue::from_static(value));
        }
        headers
    }

    #[test]
    fn same_origin_and_no_origin_pass() {
        let uri = Uri::from_static("/login");
        for pairs in [
            &[("host", "127.0.0.1:8000")][..],
            &[
                ("host", "127.0.0.1:8000"),
                ("origin", "http://127.0.0.1:8000"),
            ],
            &[("host", "Example.COM"), ("origin", "https://example.com")],
            &[
                ("host", "example.com:443"),
                ("origin", "https://example.com"),
            ],
            &[("host", "example.com"), ("origin", "http://example.com:80")],
            &[("host", "[::1]:8000"), ("origin", "http://[::1]:8000")],
            // Behind a TLS proxy the service cannot see the scheme: the
            // same host and port are the same server.
            &[
                ("host", "127.0.0.1:8000"),
                ("origin", "https://127.0.0.1:8000"),
            ],
            &[
                ("host", "127.0.0.1:8000"),
                ("origin", "http://127.0.0.1:8000"),
                ("sec-fetch-site", "same-origin"),
            ],
            &[("sec-fetch-site", "none")],
        ] {
            assert_eq!(cross_site(&headers(pairs), &uri), None, "{pairs:?}");
        }
        // HTTP/2: the authority is in the URI, not in a Host header.
        let uri = Uri::from_static("http://127.0.0.1:8000/login");
        assert_eq!(
            cross_site(&headers(&[("origin", "http://127.0.0.1:8000")]), &uri),
            None
        );
    }

    #[test]
    fn cross_site_requests_are_named() {
        let uri = Uri::from_static("/login");
        for (pairs, why) in [
            (
                &[
                    ("host", "127.0.0.1:8000"),
                    ("origin", "http://evil.example"),
                ][..],
                "is not this service's",
            ),
            (
                &[
                    ("host", "127.0.0.1:8000"),
                    ("origin", "http://127.0.0.1:8001"),
                ],
                "is not this service's",
            ),
            (
                &[
                    ("host", "127.0.0.1:8000"),
                    ("origin", "http://localhost:8000"),
                ],
                "is not this service's",
            ),
            (
                &[
                    ("host", "example.com"),
                    ("origin", "https://example.com:8443"),
                ],
                "is not this service's",
            ),
            (
                &[
                    ("host", "example.com:8080"),
                    ("origin", "http://example.com"),
                ],
                "is not this service's",
            ),
            (
                &[
                    ("host", "example.com"),
                    ("origin", "http://sub.example.com"),
                ],
                "is not this service's",
            ),
            (&[("host", "127.0.0.1:8000"), ("origin", "null")], "opaque"),
            (
                &[("host", "127.0.0.1:8000"), ("origin", "127.0.0.1:8000")],
                "is not scheme://host",
            ),
            (
                &[
                    ("host", "127.0.0.1:8000"),
                    ("origin", "http://127.0.0.1:8000/path"),
                ],
                "is not scheme://host",
            ),
            (
                &[
                    ("host", "127.0.0.1:8000"),
                    ("origin", "http://127.0.0.1:8000"),
                    ("origin", "http://evil.example"),
                ],
                "more than one",
            ),
            (&[("origin", "http://127.0.0.1:8000")], "no Host"),
            (&[("sec-fetch-site", "cross-site")], "Sec-Fetch-Site"),
            (
                &[
                    ("host", "127.0.0.1:8000"),
                    ("origin", "http://127.0.0.1:8000"),
                    ("sec-fetch-site", "Cross-Site"),
                ],
                "Sec-Fetch-Site",
            ),
        ] {
            let reason = cross_site(&headers(pairs), &uri).unwrap_or_default();
            assert!(reason.contains(why), "{pairs:?}: {reason:?}");
        }
    }

    #[test]
    fn escapes_html() {
        assert_eq!(
            escape_html("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
