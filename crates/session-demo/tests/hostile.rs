//! Hostile input: requests to the demo over HTTP that a browser would never
//! send, and table names with SQL in them. Every request gets a sane answer
//! (a new session, a 4xx), no malformed key reaches the store (a wrapping
//! store records every key it is asked for), the server keeps answering;
//! and no hostile table name gets as far as SQL in SQLite or PostgreSQL.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{COOKIE, HeaderValue};
use serde_json::{Value, json};
use session_core::{Bytes, Error, Result, Store, StoreConfig, async_trait};
use session_postgres::{PostgresConfig, PostgresStore};
use session_sqlite::{SqliteConfig, SqliteStore};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Forwards to a store and records every key it is asked for.
struct RecordingStore {
    inner: Arc<dyn Store>,
    keys: Mutex<Vec<String>>,
}

impl RecordingStore {
    fn record(&self, key: &str) {
        self.keys.lock().unwrap().push(key.to_owned());
    }
    fn keys(&self) -> Vec<String> {
        self.keys.lock().unwrap().clone()
    }
}

#[async_trait]
impl Store for RecordingStore {
    async fn get(&self, key: &str, renew_for: Option<Duration>) -> Result<Option<Bytes>> {
        self.record(key);
        self.inner.get(key, renew_for).await
    }
    async fn set(&self, key: &str, value: Bytes, expires_in: Option<Duration>) -> Result<()> {
        self.record(key);
        self.inner.set(key, value, expires_in).await
    }
    async fn delete(&self, key: &str) -> Result<()> {
        self.record(key);
        self.inner.delete(key).await
    }
    async fn delete_all(&self) -> Result<()> {
        self.inner.delete_all().await
    }
    async fn exists(&self, key: &str) -> Result<bool> {
        self.record(key);
        self.inner.exists(key).await
    }
    async fn expires_in(&self, key: &str) -> Result<Option<Duration>> {
        self.record(key);
        self.inner.expires_in(key).await
    }
    async fn delete_expired(&self) -> Result<u64> {
        self.inner.delete_expired().await
    }
    async fn create(&self, key: &str, value: Bytes, expires_in: Option<Duration>) -> Result<bool> {
        self.record(key);
        self.inner.create(key, value, expires_in).await
    }
    async fn update(&self, key: &str, value: Bytes, expires_in: Option<Duration>) -> Result<bool> {
        self.record(key);
        self.inner.update(key, value, expires_in).await
    }
    async fn compare_and_set(
        &self,
        key: &str,
        expected: Bytes,
        value: Bytes,
        expires_in: Option<Duration>,
    ) -> Result<bool> {
        self.record(key);
        self.inner
            .compare_and_set(key, expected, value, expires_in)
            .await
    }
    async fn delete_live(&self, key: &str) -> Result<bool> {
        self.record(key);
        self.inner.delete_live(key).await
    }
}

fn is_sha256_hex(key: &str) -> bool {
    key.len() == 64 && key.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

async fn serve(store: Arc<RecordingStore>) -> std::net::SocketAddr {
    let app = session_demo::app(store, session_demo::session_config());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// Sends `request` as raw bytes (what no HTTP client library would send)
/// and returns the status code of the answer, or `None` if the server
/// closed the connection without one.
async fn raw(addr: std::net::SocketAddr, request: &[u8]) -> Option<u16> {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer));
    // A reset after the answer is fine; the answer is what counts.
    let _ = read.await.expect("the server neither answered nor closed");
    let text = String::from_utf8_lossy(&answer);
    text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_get_sane_answers_and_never_reach_the_store_malformed() {
    let inner = SqliteStore::in_memory().unwrap();
    inner.create_table().await.unwrap();
    let store = Arc::new(RecordingStore {
        inner: Arc::new(inner),
        keys: Mutex::new(Vec::new()),
    });
    let addr = serve(store.clone()).await;
    let base = format!("http://{addr}");
    let client = reqwest::Client::new();
    let profile = |cookie: Vec<u8>| {
        let client = client.clone();
        let url = format!("{base}/profile");
        async move {
            client
                .get(url)
                .header(COOKIE, HeaderValue::from_bytes(&cookie).unwrap())
                .send()
                .await
                .unwrap()
        }
    };
    let mut answers: Vec<(String, u16)> = Vec::new();

    // Cookies a client library can send: each is a stranger, 401, no
    // session adopted, no cookie set.
    let unknown_id = session_core::generate_session_id(32).unwrap();
    let mut many = String::new();
    for i in 0..500 {
        many.push_str(&format!("session=x{i}; "));
    }
    many.push_str(&format!("session={unknown_id}"));
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "16 KiB cookie",
            format!("session={}", "a".repeat(16 * 1024)).into_bytes(),
        ),
        (
            "16 KiB of hex",
            format!("session={}", "ab".repeat(8 * 1024)).into_bytes(),
        ),
        ("500 session cookies", many.into_bytes()),
        ("SQL in the id", b"session=' OR '1'='1".to_vec()),
        (
            "SQL after a well-formed id",
            format!("session={unknown_id}'; DROP TABLE litestar_session; --").into_bytes(),
        ),
        (
            "upper-case hex",
            format!("session={}", unknown_id.to_uppercase()).into_bytes(),
        ),
        (
            "63 hex digits",
            format!("session={}", &unknown_id[..63]).into_bytes(),
        ),
        ("non-UTF-8", b"session=\xff\xfe\xfd\x80abc".to_vec()),
        (
            "non-UTF-8 hex lookalike",
            [
                b"session=".as_slice(),
                &[0xef, 0xbc, 0x90],
                &unknown_id.as_bytes()[1..],
            ]
            .concat(),
        ),
        ("quoted garbage", b"session=\"\"\"; session=\"".to_vec()),
        ("empty", b"session=".to_vec()),
        (
            "unknown well-formed id",
            format!("session={unknown_id}").into_bytes(),
        ),
    ];
    for (name, cookie) in cases {
        let res = profile(cookie).await;
        let status = res.status();
        assert!(
            common::session_cookie(&res).is_none(),
            "{name}: a session cookie was set for a stranger"
        );
        let body: Value = res.json().await.unwrap();
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{name}: {body}");
        assert_eq!(body, json!({"error": "Not authenticated"}), "{name}");
        answers.push((name.into(), status.as_u16()));
    }

    // Many Cookie headers at once.
    let mut req = client.get(format!("{base}/profile"));
    for i in 0..100 {
        req = req.header(COOKIE, format!("session=evil{i}; other=1"));
    }
    let status = req.send().await.unwrap().status();
    // hyper allows 100 headers per request: this one has 102, and is
    // refused before the middleware runs.
    assert_eq!(status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    answers.push(("100 Cookie headers".into(), status.as_u16()));
    let mut req = client.get(format!("{base}/profile"));
    for i in 0..90 {
        req = req.header(COOKIE, format!("session=evil{i}; other=1"));
    }
    let status = req.send().await.unwrap().status();
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    answers.push(("90 Cookie headers".into(), status.as_u16()));

    // Bytes no client library sends: control characters, NUL, DEL, a
    // bare LF. The HTTP parser refuses them before the middleware runs.
    for (name, cookie) in [
        ("control characters", b"session=\x01\x02\x1b[31m".as_slice()),
        ("NUL", b"session=abc\x00def"),
        ("DEL", b"session=\x7f\x7f"),
        ("CR inside", b"session=ab\rcd"),
    ] {
        let request = [
            b"GET /profile HTTP/1.1\r\nHost: x\r\nConnection: close\r\nCookie: ".as_slice(),
            cookie,
            b"\r\n\r\n",
        ]
        .concat();
        let status = raw(addr, &request).await;
        assert!(
            matches!(status, Some(400..=499) | None),
            "{name}: answered {status:?}"
        );
        answers.push((name.into(), status.unwrap_or(0)));
    }
    // A 1 MiB header: over the parser's limit, refused, not a crash.
    let request = format!(
        "GET /profile HTTP/1.1\r\nHost: x\r\nConnection: close\r\nCookie: session={}\r\n\r\n",
        "a".repeat(1 << 20)
    );
    let status = raw(addr, request.as_bytes()).await;
    assert!(
        matches!(status, Some(400..=499) | None),
        "1 MiB cookie: answered {status:?}"
    );
    answers.push(("1 MiB cookie".into(), status.unwrap_or(0)));

    // Login bodies: over the size limit, malformed, wrong type, wrong shape.
    // A client of its own per request: a connection the server cut after
    // an oversized upload is never reused for the next case.
    let login = |body: Vec<u8>, content_type: &'static str| {
        let client = reqwest::Client::new();
        let url = format!("{base}/login");
        async move {
            client
                .post(url)
                .header("content-type", content_type)
                .body(body)
                .send()
                .await
        }
    };
    let huge = format!(
        r#"{{"username": "alice", "password": "{}"}}"#,
        "x".repeat(3 << 20)
    );
    for (name, body, content_type, expected) in [
        (
            "3 MiB login body",
            huge.into_bytes(),
            "application/json",
            413,
        ),
        (
            "malformed JSON",
            b"{\"username\": ".to_vec(),
            "application/json",
            400,
        ),
        (
            "not JSON",
            b"username=alice".to_vec(),
            "application/x-www-form-urlencoded",
            415,
        ),
        (
            "wrong shape",
            b"{\"user\": 1}".to_vec(),
            "application/json",
            422,
        ),
        (
            "non-UTF-8 JSON",
            b"{\"username\": \"\xff\"}".to_vec(),
            "application/json",
            400,
        ),
        (
            "SQL as the username",
            br#"{"username": "' OR 1=1; --", "password": "x"}"#.to_vec(),
            "application/json",
            401,
        ),
    ] {
        let res = match login(body, content_type).await {
            Ok(res) => res,
            // The server answers an oversized body with 413 as soon as the
            // limit is crossed and closes the connection; a client still
            // uploading may see the close before the answer. Refused either
            // way (and the store check below proves nothing was written).
            Err(e) if expected == 413 && e.is_request() => {
                answers.push((format!("{name} (connection closed mid-upload)"), 413));
                continue;
            }
            Err(e) => panic!("{name}: {e}"),
        };
        let status = res.status();
        assert!(
            common::session_cookie(&res).is_none(),
            "{name}: a session was created"
        );
        assert_eq!(status.as_u16(), expected, "{name}");
        answers.push((name.into(), status.as_u16()));
    }
    println!("hostile requests and their answers: {answers:?}");

    // The server still answers, and a real login works.
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let res = common::login(&client, &base, "alice", "wonderland").await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = client.get(format!("{base}/profile")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);

    // Every key the store was asked for is a SHA-256 in hex: the well-formed
    // unknown id (hashed) reached it, nothing malformed did.
    let keys = store.keys();
    println!("{} store calls, every key a SHA-256 hex digest", keys.len());
    assert!(
        keys.contains(&session_tower::store_key(&unknown_id, true)),
        "the well-formed unknown id was never looked up"
    );
    for key in &keys {
        assert!(
            is_sha256_hex(key),
            "a malformed key reached the store: {key:?}"
        );
    }
}

fn hostile_table_names() -> Vec<String> {
    session_conformance::hostile_table_names()
}

/// SQLSpec's config document naming the session table `name`.
fn extension(name: &str) -> Value {
    json!({"litestar": {"session_table": name}})
}

/// An unvalidated SQLite config naming the session table `name`: the
/// constructors themselves must refuse it.
fn sqlite_config(name: &str) -> SqliteConfig {
    SqliteConfig {
        table: name.to_owned(),
        ..SqliteConfig::default()
    }
}

fn assert_refused<T>(result: std::result::Result<T, Error>, what: &str) {
    match result {
        Err(Error::InvalidIdentifier { .. }) => {}
        Err(other) => panic!("{what:?}: expected InvalidIdentifier, got {other:?}"),
        Ok(_) => panic!("{what:?}: accepted"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_table_names_never_reach_sqlite() {
    let dir = session_test_support::scratch_dir("session-demo-hostile");
    let existing = dir.join("existing.sqlite");
    let conn = rusqlite::Connection::open(&existing).unwrap();
    conn.execute_batch("CREATE TABLE users (id INTEGER)")
        .unwrap();
    for (i, name) in hostile_table_names().iter().enumerate() {
        let fresh = dir.join(format!("fresh{i}.sqlite"));
        let fresh_url = format!("sqlite://{}", fresh.display());
        assert_refused(SqliteConfig::from_value(extension(name)), name);
        assert_refused(
            SqliteStore::open_with(&fresh_url, sqlite_config(name)),
            name,
        );
        assert_refused(SqliteStore::in_memory_with(sqlite_config(name)), name);
        assert_refused(
            SqliteStore::open_with(existing.to_str().unwrap(), sqlite_config(name)),
            name,
        );
        assert_refused(
            session_demo::open_store(&fresh_url, &extension(name)).await,
            name,
        );
        assert_refused(
            session_demo::open_store(&fresh_url, &json!({ "table": name })).await,
            name,
        );
        assert!(!fresh.exists(), "{name:?}: the database was opened");
    }
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<std::result::Result<_, _>>()
        .unwrap();
    assert_eq!(tables, ["users"]);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A schema of this test's own on the server at `url`, dropped with
/// everything in it when it goes.
struct Schema {
    url: String,
    name: String,
}

impl Drop for Schema {
    fn drop(&mut self) {
        let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name);
        if let Err(e) = session_test_support::execute_blocking(&self.url, &sql) {
            eprintln!("could not drop the schema {}: {e}", self.name);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_table_names_never_reach_postgres() {
    let Some(server) = session_test_support::pg_url_or_skip() else {
        return;
    };
    // Whatever a hostile name could create lands in a schema of this test's
    // own: unqualified names through the search path of every connection
    // the stores open, qualified ones because they name it. So the count
    // below is of that schema alone, which nothing else on the server
    // touches, and its `users` table is what a `DROP TABLE users` in a name
    // would hit.
    let schema = Schema {
        url: server.clone(),
        name: session_test_support::unique_table_name("hostile_s"),
    };
    let s = schema.name.clone();
    let client = session_test_support::connect(&server).await.unwrap();
    client
        .batch_execute(&format!(
            "CREATE SCHEMA {s}; CREATE TABLE {s}.users (id integer)"
        ))
        .await
        .unwrap();
    let url = session_test_support::url_with_search_path(&server, &s);
    let relations = || async {
        client
            .query(
                "SELECT c.relname::text FROM pg_class c \
                 JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = $1 ORDER BY 1",
                &[&s],
            )
            .await
            .unwrap()
            .iter()
            .map(|row| row.get::<_, String>(0))
            .collect::<Vec<String>>()
    };
    assert_eq!(relations().await, ["users"]);
    let mut names = hostile_table_names();
    names.extend([
        format!("{s}.\"hostile\""),
        "hostile;.sessions".to_owned(),
        format!("{s}.hostile; DROP TABLE users"),
        format!("{s}.hostile{}", "x".repeat(42)), // index name over 63
    ]);
    for name in &names {
        let unchecked = PostgresConfig {
            table: name.clone(),
            ..PostgresConfig::default()
        };
        assert_refused(unchecked.validate(), name);
        assert_refused(PostgresStore::from_url(&url, unchecked), name);
        assert_refused(PostgresConfig::from_value(extension(name)), name);
        let toml = format!(
            "[litestar]\nsession_table = {}\n",
            serde_json::to_string(name).unwrap()
        );
        assert_refused(PostgresConfig::from_toml_str(&toml), name);
        // The demo's path: would create the table if the name got through.
        assert_refused(session_demo::open_store(&url, &extension(name)).await, name);
    }
    assert_eq!(
        relations().await,
        ["users"],
        "a hostile name created or dropped a table"
    );
    // A valid name in the same shape is accepted and lands in the schema,
    // so the check can fail.
    let table = session_test_support::unique_table_name("hostile_ok");
    let store = PostgresStore::from_url(
        &url,
        PostgresConfig {
            table: table.clone(),
            ..PostgresConfig::default()
        },
    )
    .unwrap();
    store.create_table().await.unwrap();
    let with_valid = relations().await;
    assert!(with_valid.contains(&table), "{with_valid:?}");
    assert!(with_valid.contains(&"users".to_owned()), "{with_valid:?}");
}
