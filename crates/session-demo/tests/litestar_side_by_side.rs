//! Side by side with the real thing: a Litestar application (Litestar's
//! `ServerSideSessionConfig` on SQLSpec's asyncpg session store, served by
//! uvicorn; `tests/litestar_app/app.py`) and the demo binary with
//! `--litestar-compatible`, on one PostgreSQL session table, checked over
//! HTTP with the cookie sent by hand to both:
//!
//! * a login on either side is seen by the other's `/profile`, under the
//!   same cookie (same id, same attributes) and one row keyed by the raw id
//!   holding the JSON object both read;
//! * a logout on either side ends the session for the other (401);
//! * a renewal on either side is the other's new expiry, and with
//!   `renew_on_access` off on both sides a read on either still slides it
//!   (Litestar rewrites the session on every response; the middleware does
//!   the same under `litestar_compatible`);
//! * a row that is not JSON is refused by the demo (500) and left alone,
//!   its expiry included.
//!
//! Checks of behaviour that differs between the two are marked `DIFFERS`.
//!
//! The Python side lives in a virtual environment under
//! `target/litestar-venv`, built with the pinned packages of
//! `tests/litestar_app/requirements.txt` from PyPI on first use and reused
//! while they are installed (`PYTHON3` names the interpreter to build it
//! with; default `python3`). Without `python3` (with `venv`), PyPI or
//! PostgreSQL the test prints a skip line, and fails instead under
//! `SESSION_TEST_REQUIRE_PYTHON` / `SESSION_TEST_REQUIRE_PG` (or `CI`).

mod common;

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{DEMO, Server};
use reqwest::StatusCode;
use reqwest::header::{COOKIE, SET_COOKIE};
use serde_json::{Value, json};
use session_core::Store;

/// The fixture application and its pinned requirements.
const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/litestar_app");

/// The demo's (and the fixture's) `max_age`: one day.
const MAX_AGE: u64 = 24 * 3600;

/// Writes `line` to the process's standard error directly: the harness
/// captures `eprintln!` and shows it only for a failed test.
fn note(line: &str) {
    let _ = std::io::stderr()
        .lock()
        .write_all(format!("{line}\n").as_bytes());
}

/// Cargo's target directory: the demo binary is `<target>/<profile>/session-demo`.
fn target_dir() -> PathBuf {
    let exe = Path::new(DEMO);
    exe.parent()
        .and_then(Path::parent)
        .map_or_else(|| PathBuf::from("target"), Path::to_path_buf)
}

/// Runs `cmd` to its end; its output, or why it failed with the tail of
/// what it printed.
fn run(cmd: &mut Command, what: &str) -> Result<String, String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {what}: {e}"))?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let tail: Vec<&str> = text.lines().rev().take(15).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    Err(format!(
        "{what} failed ({}):\n{}",
        out.status,
        tail.join("\n")
    ))
}

/// Checks that every `name==version` pin of the requirements file is what
/// `python` has installed (exit 0), else names the first that is not.
const CHECK_PINS: &str = r##"
import re, sys
from importlib.metadata import version, PackageNotFoundError
for line in open(sys.argv[1]):
    line = line.split("#")[0].strip()
    if not line:
        continue
    m = re.fullmatch(r"([A-Za-z0-9_.-]+)(\[[^\]]*\])?==(\S+)", line)
    if m is None:
        sys.exit(f"not a pin: {line}")
    try:
        have = version(m.group(1))
    except PackageNotFoundError:
        sys.exit(f"{m.group(1)} is not installed")
    if have != m.group(3):
        sys.exit(f"{m.group(1)} is {have}, not {m.group(3)}")
print("%d.%d.%d" % sys.version_info[:3])
"##;

/// The Python of `target/litestar-venv`, with the pinned packages; built
/// (`python3 -m venv`, then `pip install -r requirements.txt` from PyPI)
/// unless it already has them. One process at a time builds it: others
/// wait on `target/litestar-venv.lock`.
fn litestar_python() -> Result<PathBuf, String> {
    let target = target_dir();
    std::fs::create_dir_all(&target).map_err(|e| format!("cannot create {target:?}: {e}"))?;
    let venv = target.join("litestar-venv");
    let python = venv.join("bin").join("python");
    let requirements = Path::new(FIXTURE).join("requirements.txt");
    let lock_path = target.join("litestar-venv.lock");
    let lock = File::create(&lock_path).map_err(|e| format!("cannot create {lock_path:?}: {e}"))?;
    lock.lock()
        .map_err(|e| format!("cannot lock {lock_path:?}: {e}"))?;
    let check = || {
        run(
            Command::new(&python)
                .arg("-c")
                .arg(CHECK_PINS)
                .arg(&requirements),
            "the pin check",
        )
    };
    if python.is_file()
        && let Ok(version) = check()
    {
        note(&format!(
            "litestar_side_by_side: reusing {} (Python {})",
            venv.display(),
            version.trim()
        ));
        return Ok(python);
    }
    let started = Instant::now();
    let python3 = std::env::var_os("PYTHON3").unwrap_or_else(|| "python3".into());
    run(
        Command::new(&python3).args([
            "-c",
            "import sys; sys.exit(None if sys.version_info >= (3, 11) else \
             'Python %d.%d is too old: SQLSpec needs 3.11 or later' % sys.version_info[:2])",
        ]),
        "python3",
    )?;
    run(
        Command::new(&python3)
            .args(["-m", "venv", "--clear"])
            .arg(&venv),
        "python3 -m venv (Debian: apt-get install python3-venv)",
    )?;
    run(
        Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "-r",
            ])
            .arg(&requirements),
        "pip install (from PyPI)",
    )?;
    let version = check()?;
    note(&format!(
        "litestar_side_by_side: built {} (Python {}) in {:.1} s",
        venv.display(),
        version.trim(),
        started.elapsed().as_secs_f64()
    ));
    Ok(python)
}

/// The session table (and the demo's migration tracking table), dropped
/// when the test ends, after the servers (declare it before them).
struct Tables {
    url: String,
    names: Vec<String>,
}

impl Drop for Tables {
    fn drop(&mut self) {
        if let Err(e) = session_test_support::drop_tables_blocking(&self.url, &self.names) {
            eprintln!("could not drop {:?}: {e}", self.names);
        }
    }
}

/// One HTTP answer: status, the session cookie it sets (whole header) and
/// its JSON body.
#[derive(Debug)]
struct Reply {
    status: StatusCode,
    set_cookie: Option<String>,
    body: Value,
}

impl Reply {
    /// The session id the reply's cookie carries.
    fn cookie_id(&self) -> Option<String> {
        self.set_cookie.as_deref().map(common::id_of)
    }
}

/// The attributes of a `Set-Cookie` header (all but `name=value`), in
/// lower case and sorted: `["httponly", "max-age=86400", ...]`.
fn attributes(set_cookie: &str) -> Vec<String> {
    let mut attrs: Vec<String> = set_cookie
        .split(';')
        .skip(1)
        .map(|a| a.trim().to_ascii_lowercase())
        .filter(|a| !a.is_empty())
        .collect();
    attrs.sort();
    attrs
}

/// A client sending only the cookies it is told to: both servers are on
/// 127.0.0.1, so a cookie jar would mix them.
struct Http {
    client: reqwest::Client,
}

impl Http {
    async fn call(
        &self,
        method: reqwest::Method,
        url: String,
        id: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut req = self.client.request(method, url);
        if let Some(id) = id {
            req = req.header(COOKIE, format!("session={id}"));
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.unwrap();
        let set_cookie = res
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|c| c.starts_with("session="))
            .map(str::to_owned);
        let status = res.status();
        let text = res.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Reply {
            status,
            set_cookie,
            body,
        }
    }

    async fn login(&self, base: &str, id: Option<&str>, user: &str, password: &str) -> Reply {
        let body = json!({"username": user, "password": password});
        self.call(
            reqwest::Method::POST,
            format!("{base}/login"),
            id,
            Some(body),
        )
        .await
    }

    async fn profile(&self, base: &str, id: &str) -> Reply {
        self.call(
            reqwest::Method::GET,
            format!("{base}/profile"),
            Some(id),
            None,
        )
        .await
    }

    async fn logout(&self, base: &str, id: &str) -> Reply {
        self.call(
            reqwest::Method::POST,
            format!("{base}/logout"),
            Some(id),
            None,
        )
        .await
    }

    /// What SQLSpec's store says of `id`, outside Litestar's session
    /// middleware (so without renewing it): `(exists, expires_in seconds)`.
    async fn litestar_expiry(&self, base: &str, id: &str) -> (bool, Option<u64>) {
        let reply = self
            .call(
                reqwest::Method::GET,
                format!("{base}/expiry"),
                Some(id),
                None,
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
        assert_eq!(reply.set_cookie, None, "/expiry skips the session");
        (
            reply.body["exists"].as_bool().unwrap(),
            reply.body["expires_in"].as_u64(),
        )
    }
}

/// The table's row for `id`: its data and the seconds until it expires, by
/// the server's clock.
async fn row(db: &tokio_postgres::Client, table: &str, id: &str) -> Option<(Vec<u8>, f64)> {
    db.query_opt(
        &format!(
            "SELECT data, extract(epoch FROM expires_at - now())::float8 \
             FROM {table} WHERE session_id = $1"
        ),
        &[&id],
    )
    .await
    .unwrap()
    .map(|r| (r.get::<_, Vec<u8>>(0), r.get::<_, f64>(1)))
}

/// The JSON object stored under `id`.
async fn stored(db: &tokio_postgres::Client, table: &str, id: &str) -> Value {
    let (data, _) = row(db, table, id)
        .await
        .unwrap_or_else(|| panic!("no row under the raw id {id}"));
    serde_json::from_slice(&data).unwrap_or_else(|e| {
        panic!(
            "the row is not JSON ({e}): {:?}",
            String::from_utf8_lossy(&data)
        )
    })
}

/// Seconds until the row of `id` expires.
async fn ttl(db: &tokio_postgres::Client, table: &str, id: &str) -> f64 {
    row(db, table, id)
        .await
        .unwrap_or_else(|| panic!("no row under {id}"))
        .1
}

/// One hour: the session's expiry is set this near before each renewal, so
/// the renewal (back to a day) shows without waiting.
const HOUR: f64 = 3600.0;

/// Moves the expiry of `id` to an hour from now.
async fn age(db: &tokio_postgres::Client, table: &str, id: &str) {
    let n = db
        .execute(
            &format!(
                "UPDATE {table} SET expires_at = now() + interval '1 hour' WHERE session_id = $1"
            ),
            &[&id],
        )
        .await
        .unwrap();
    assert_eq!(n, 1, "no row under {id}");
}

/// An expiry just set to `max_age` (a minute's slack for slow machines).
fn is_fresh(secs: f64) -> bool {
    secs > MAX_AGE as f64 - 60.0 && secs <= MAX_AGE as f64 + 1.0
}

/// An expiry [`age`]d and not renewed since.
fn is_aged(secs: f64) -> bool {
    secs > HOUR - 60.0 && secs <= HOUR + 1.0
}

/// 64 lower-case hex digits: a 32-byte id, as both sides make them.
fn is_session_id(id: &str) -> bool {
    id.len() == 64 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The cookie attributes both sides send with a live session.
const ATTRIBUTES: [&str; 4] = ["httponly", "max-age=86400", "path=/", "samesite=lax"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_session_table_one_login_beside_a_real_litestar_app() {
    let Some(url) = session_test_support::pg_url_or_skip() else {
        return;
    };
    let python = match litestar_python() {
        Ok(python) => python,
        Err(why) => {
            let _: Option<()> = session_test_support::skip_or_panic(
                "Python 3.11+ with venv and the pinned Litestar packages from PyPI",
                session_test_support::REQUIRE_PYTHON_VAR,
                &why,
            );
            return;
        }
    };
    let table = session_test_support::unique_table_name("litestar_sbs");
    // Dropped last: after the servers below.
    let _tables = Tables {
        url: url.clone(),
        names: vec![format!("{table}_migrations"), table.clone()],
    };
    let logs = session_test_support::scratch_dir("session-demo-litestar");
    let litestar_app = |renew: &str| {
        let mut cmd = Command::new(&python);
        cmd.arg(Path::new(FIXTURE).join("app.py"))
            .env("DATABASE_URL", &url)
            .env("SESSION_TABLE", &table)
            .env("SESSION_RENEW_ON_ACCESS", renew)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env_remove("PORT");
        cmd
    };
    // Litestar first: SQLSpec creates the table, and the demo adopts it.
    let litestar = Server::start(
        "the Litestar app",
        &mut litestar_app("1"),
        "litestar-app: serving on ",
        logs.join(format!("{table}-litestar.log")),
    );
    let demo = common::start_demo(
        &logs,
        &format!("{table}-demo"),
        &["--litestar-compatible"],
        &[("DATABASE_URL", &url), ("SESSION_TABLE", &table)],
    );
    let (ls, rs) = (litestar.base.clone(), demo.base.clone());
    let http = Http {
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
    };
    let db = session_test_support::connect(&url).await.unwrap();
    // The store the demo runs on, for its view of expiries.
    let rust_store = session_demo::open_store(&url, &session_demo::store_config(Some(&table)))
        .await
        .unwrap();
    let applied: i64 = db
        .query_one(&format!("SELECT count(*) FROM {table}_migrations"), &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(applied, 1, "the demo adopted SQLSpec's table");

    let alice = json!({"user_id": 1, "username": "alice", "roles": ["user", "admin"]});
    let bob = json!({"user_id": 2, "username": "bob", "roles": ["user"]});
    let not_authenticated = json!({"error": "Not authenticated"});

    // No session: both answer 401 alike.
    let r = http
        .call(reqwest::Method::GET, format!("{rs}/profile"), None, None)
        .await;
    assert_eq!(
        (r.status, &r.body),
        (StatusCode::UNAUTHORIZED, &not_authenticated)
    );
    assert_eq!(r.set_cookie, None, "the demo makes no session for nothing");
    let l = http
        .call(reqwest::Method::GET, format!("{ls}/profile"), None, None)
        .await;
    assert_eq!(
        (l.status, &l.body),
        (StatusCode::UNAUTHORIZED, &not_authenticated)
    );
    // DIFFERS (Litestar's own behaviour, not copied): Litestar answers an
    // anonymous request with a cookie and writes an empty session `{}`
    // under it; the demo writes nothing.
    let anonymous = l
        .cookie_id()
        .expect("Litestar sets a cookie on every response");
    assert!(is_session_id(&anonymous), "{anonymous}");
    assert_eq!(stored(&db, &table, &anonymous).await, json!({}));

    // Log in on the Rust demo: the Litestar app sees the same user under
    // the same cookie.
    let login = http.login(&rs, None, "alice", "wonderland").await;
    assert_eq!(login.status, StatusCode::OK, "{login:?}");
    assert_eq!(login.body, json!({"status": "logged in"}));
    let rust_cookie = login.set_cookie.clone().expect("login sets the cookie");
    let id = login.cookie_id().unwrap();
    assert!(is_session_id(&id), "{id}");
    assert_eq!(attributes(&rust_cookie), ATTRIBUTES, "{rust_cookie}");
    assert_eq!(
        stored(&db, &table, &id).await,
        alice,
        "one row, keyed by the raw id, holding the session as a JSON object"
    );
    assert!(is_fresh(ttl(&db, &table, &id).await));
    let seen = http.profile(&ls, &id).await;
    assert_eq!(
        (seen.status, &seen.body),
        (StatusCode::OK, &alice),
        "{seen:?}"
    );
    let litestar_cookie = seen
        .set_cookie
        .clone()
        .expect("Litestar re-sends the cookie");
    assert_eq!(
        seen.cookie_id().as_deref(),
        Some(id.as_str()),
        "the same cookie"
    );
    assert_eq!(attributes(&litestar_cookie), attributes(&rust_cookie));
    // What Litestar wrote back (its own JSON encoding), the demo reads.
    let again = http.profile(&rs, &id).await;
    assert_eq!((again.status, &again.body), (StatusCode::OK, &alice));
    assert_eq!(again.cookie_id().as_deref(), Some(id.as_str()));

    // Log in on the Litestar app: the demo's /profile sees that user.
    let login = http.login(&ls, None, "bob", "builder").await;
    assert_eq!(login.status, StatusCode::OK, "{login:?}");
    assert_eq!(login.body, json!({"status": "logged in"}));
    let id2 = login.cookie_id().expect("login sets the cookie");
    assert!(is_session_id(&id2), "{id2}");
    assert_eq!(stored(&db, &table, &id2).await, bob);
    let seen = http.profile(&rs, &id2).await;
    assert_eq!(
        (seen.status, &seen.body),
        (StatusCode::OK, &bob),
        "{seen:?}"
    );
    assert_eq!(seen.cookie_id().as_deref(), Some(id2.as_str()));
    assert_eq!(
        attributes(seen.set_cookie.as_deref().unwrap()),
        attributes(&litestar_cookie)
    );

    // A renewal on the Rust side is the Litestar side's new expiry.
    age(&db, &table, &id).await;
    let (exists, before) = http.litestar_expiry(&ls, &id).await;
    assert!(exists && is_aged(before.unwrap() as f64), "{before:?}");
    let renewed = http.profile(&rs, &id).await;
    assert_eq!(renewed.status, StatusCode::OK);
    assert_eq!(
        attributes(
            renewed
                .set_cookie
                .as_deref()
                .expect("a renewal re-sends the cookie")
        ),
        ATTRIBUTES
    );
    assert!(is_fresh(ttl(&db, &table, &id).await));
    let (_, after) = http.litestar_expiry(&ls, &id).await;
    assert!(is_fresh(after.unwrap() as f64), "{after:?}");
    // A renewal on the Litestar side is the Rust side's new expiry.
    age(&db, &table, &id2).await;
    let before = rust_store.expires_in(&id2).await.unwrap().unwrap();
    assert!(is_aged(before.as_secs_f64()), "{before:?}");
    let renewed = http.profile(&ls, &id2).await;
    assert_eq!(renewed.status, StatusCode::OK);
    assert_eq!(
        attributes(renewed.set_cookie.as_deref().unwrap()),
        ATTRIBUTES
    );
    let after = rust_store.expires_in(&id2).await.unwrap().unwrap();
    assert!(is_fresh(after.as_secs_f64()), "{after:?}");

    // Log out on the Rust side: the Litestar app sees no session.
    let out = http.logout(&rs, &id).await;
    assert_eq!(
        (out.status, &out.body),
        (StatusCode::OK, &json!({"status": "logged out"}))
    );
    assert_eq!(out.cookie_id().as_deref(), Some("null"));
    assert!(row(&db, &table, &id).await.is_none(), "logout left the row");
    assert_eq!(http.litestar_expiry(&ls, &id).await, (false, None));
    let after = http.profile(&ls, &id).await;
    assert_eq!(
        (after.status, &after.body),
        (StatusCode::UNAUTHORIZED, &not_authenticated)
    );
    // DIFFERS (Litestar's own behaviour): a request with the ended id gets
    // it back, as an empty session; the demo reads that as no session.
    assert_eq!(after.cookie_id().as_deref(), Some(id.as_str()));
    assert_eq!(stored(&db, &table, &id).await, json!({}));
    let after = http.profile(&rs, &id).await;
    assert_eq!(
        (after.status, &after.body),
        (StatusCode::UNAUTHORIZED, &not_authenticated)
    );
    // Log out on the Litestar side: the demo sees no session.
    let out = http.logout(&ls, &id2).await;
    assert_eq!(
        (out.status, &out.body),
        (StatusCode::OK, &json!({"status": "logged out"}))
    );
    assert_eq!(out.cookie_id().as_deref(), Some("null"));
    assert!(
        row(&db, &table, &id2).await.is_none(),
        "logout left the row"
    );
    assert!(!rust_store.exists(&id2).await.unwrap());
    let after = http.profile(&rs, &id2).await;
    assert_eq!(
        (after.status, &after.body),
        (StatusCode::UNAUTHORIZED, &not_authenticated)
    );

    // Logging in on the demo with a Litestar session's cookie gives a new
    // id (Litestar keeps the id across a login), and ends the old one.
    let login = http
        .login(&rs, Some(&anonymous), "alice", "wonderland")
        .await;
    assert_eq!(login.status, StatusCode::OK);
    let id3 = login.cookie_id().unwrap();
    assert!(is_session_id(&id3) && id3 != anonymous, "{id3}");
    assert!(row(&db, &table, &anonymous).await.is_none());
    let seen = http.profile(&ls, &id3).await;
    assert_eq!((seen.status, &seen.body), (StatusCode::OK, &alice));

    // A session that is not JSON (a Litestar app with another serializer):
    // the demo answers 500 and leaves the row as it was.
    let pickled: &[u8] = b"\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00}\x94\x8c\x04user\x94.";
    let id4 = "ab".repeat(32);
    db.execute(
        &format!(
            "INSERT INTO {table} (session_id, data, expires_at) \
             VALUES ($1, $2, now() + interval '1 hour')"
        ),
        &[&id4, &pickled],
    )
    .await
    .unwrap();
    let refused = http.profile(&rs, &id4).await;
    assert_eq!(
        refused.status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "{refused:?}"
    );
    assert_eq!(refused.set_cookie, None);
    let (data, left) = row(&db, &table, &id4).await.unwrap();
    assert_eq!(data, pickled, "the row's data must be left as it was");
    // Its expiry too: renew_on_access renews a session once it is read,
    // and this one never is (`SessionError::Unreadable`: the row "is left
    // as it is").
    assert!(is_aged(left), "the refused row's expiry moved: {left}");

    // With renew_on_access off on both sides (Litestar's default), a
    // Litestar read still moves the expiry (Litestar rewrites the session
    // on every response), and so does a Rust read under
    // litestar_compatible, whatever its renew_on_access.
    let quiet = Server::start(
        "the Litestar app (renew_on_access off)",
        &mut litestar_app("0"),
        "litestar-app: serving on ",
        logs.join(format!("{table}-litestar-no-renew.log")),
    );
    let no_renew = session_demo::litestar_session_config()
        .to_builder()
        .renew_on_access(false)
        .build()
        .unwrap();
    assert!(!no_renew.renew_on_access());
    let rust_quiet = common::serve(rust_store.clone(), no_renew).await;
    age(&db, &table, &id3).await;
    let read = http.profile(&quiet.base, &id3).await;
    assert_eq!((read.status, &read.body), (StatusCode::OK, &alice));
    assert_eq!(read.cookie_id().as_deref(), Some(id3.as_str()));
    assert!(
        is_fresh(ttl(&db, &table, &id3).await),
        "Litestar slides the expiry on a read, renew_on_access or not"
    );
    age(&db, &table, &id3).await;
    let read = http.profile(&rust_quiet, &id3).await;
    assert_eq!((read.status, &read.body), (StatusCode::OK, &alice));
    assert_eq!(
        read.cookie_id().as_deref(),
        Some(id3.as_str()),
        "the demo re-sends the cookie, as Litestar does"
    );
    assert_eq!(
        attributes(read.set_cookie.as_deref().unwrap()),
        attributes(&litestar_cookie)
    );
    assert!(
        is_fresh(ttl(&db, &table, &id3).await),
        "a Rust read under litestar_compatible slides the expiry, as Litestar's does"
    );
    drop(quiet);
}
