//! The quick start of the guide as a running service: `POST /login`,
//! `GET /profile`, `POST /logout`, and a small HTML page at `/`, on
//! server-side sessions stored in SQLite (default) or PostgreSQL.
//!
//! [`app`] builds the router over any store, so the tests run the very
//! service `cargo run -p session-demo` serves.

use std::sync::Arc;

use axum::Router;
use axum::extract::Json;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use session_core::{Error, Store, StoreAdmin};
use session_tower::{Session, SessionConfig, SessionConfigBuilder, SessionError, SessionLayer};

/// A demo account: `alice` / `wonderland` among them.
#[derive(Debug, Clone, Copy)]
pub struct DemoUser {
    /// The numeric id stored in the session.
    pub id: u64,
    /// The login name.
    pub username: &'static str,
    /// The password (a demo: never keep passwords like this).
    pub password: &'static str,
    /// The roles stored in the session.
    pub roles: &'static [&'static str],
}

/// The fixed accounts of the demo, documented in the README.
pub const DEMO_USERS: &[DemoUser] = &[
    DemoUser {
        id: 1,
        username: "alice",
        password: "wonderland",
        roles: &["user", "admin"],
    },
    DemoUser {
        id: 2,
        username: "bob",
        password: "builder",
        roles: &["user"],
    },
];

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
/// on: a Litestar application rewrites a session, with a fresh expiry, on
/// every response that carries one, so renewing on each read is what keeps
/// the two sides' expiries alike. Give the Litestar side the same values:
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
/// assert!(!config.hash_session_ids());
/// assert_eq!(config.max_age(), session_demo::session_config().max_age());
/// ```
pub fn litestar_session_config() -> SessionConfig {
    demo_builder()
        .litestar_compatible(true)
        .renew_on_access(true)
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

/// The demo service over `store`.
pub fn app(store: Arc<dyn Store>, config: SessionConfig) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/login", post(login))
        .route("/profile", get(profile))
        .route("/logout", post(logout))
        .layer(SessionLayer::with_shared(store, config))
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
    let Some(user) = DEMO_USERS
        .iter()
        .find(|u| u.username == creds.username && u.password == creds.password)
    else {
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

async fn index(session: Session) -> Result<Html<String>, SessionError> {
    let data = Value::Object(session.data().await?);
    let pretty = serde_json::to_string_pretty(&data).unwrap_or_default();
    Ok(Html(
        INDEX_HTML.replace("{{session}}", &escape_html(&pretty)),
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
<h1>Server-side sessions</h1>
<p>Log in as <code>alice</code> / <code>wonderland</code> or <code>bob</code> / <code>builder</code>.
The browser keeps only a random session id; the data below lives in the database.</p>
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

    #[test]
    fn escapes_html() {
        assert_eq!(
            escape_html("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
