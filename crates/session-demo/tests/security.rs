//! With hashed ids (the default), a session id handed to a browser appears
//! nowhere in the database (no column of any row, no byte of the database
//! files) and nowhere in the logs; the cookie carries `HttpOnly` and
//! `SameSite=Lax` by default and `Secure` when configured.
//!
//! The logs are captured per test, by a tracing subscriber of the test's
//! own writing to buffers: one at INFO and above (what must never hold an
//! id) and one at every level.

mod common;

use std::cell::RefCell;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::Value;
use session_core::Store;
use session_test_support::logs::LogBuffer;
use session_tower::{SessionConfig, store_key};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::{Layer, fmt};

/// The logs of one test: INFO and above (what must never hold an id), and
/// every level.
struct Logs {
    info: LogBuffer,
    all: LogBuffer,
}

thread_local! {
    /// The log subscriber of the runtime this thread belongs to.
    static DEFAULT: RefCell<Option<tracing::dispatcher::DefaultGuard>> = const { RefCell::new(None) };
}

/// Runs `test` on a runtime of its own whose every thread (its workers,
/// where the server's tasks run, and its blocking pool, where the SQLite
/// store works), and the calling thread, log into a subscriber of this call
/// alone: the logs returned are this test's, whatever other tests of the
/// binary run meanwhile (a process-wide subscriber would mix them).
fn run_logged<F: Future>(test: impl FnOnce() -> F) -> (F::Output, Logs) {
    // A process-wide subscriber that records nothing: with it, a callsite
    // first reached by a thread without a test's subscriber is cached as
    // interesting, not as "never" (tracing's one-dispatcher short path
    // asks only the registering thread; tokio-rs/tracing#3611).
    let _ = tracing::subscriber::set_global_default(tracing_subscriber::registry());
    let logs = Logs {
        info: LogBuffer::default(),
        all: LogBuffer::default(),
    };
    let (i, a) = (logs.info.clone(), logs.all.clone());
    let subscriber = tracing_subscriber::registry()
        .with(
            fmt::layer()
                .with_ansi(false)
                .with_writer(move || i.clone())
                .with_filter(LevelFilter::INFO),
        )
        .with(
            fmt::layer()
                .with_ansi(false)
                .with_writer(move || a.clone())
                .with_filter(LevelFilter::TRACE),
        );
    let dispatch = tracing::Dispatch::new(subscriber);
    let for_threads = dispatch.clone();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .on_thread_start(move || {
            let guard = tracing::dispatcher::set_default(&for_threads);
            DEFAULT.with(|d| *d.borrow_mut() = Some(guard));
        })
        .on_thread_stop(|| DEFAULT.with(|d| drop(d.borrow_mut().take())))
        .build()
        .unwrap();
    let output = {
        let _default = tracing::dispatcher::set_default(&dispatch);
        runtime.block_on(test())
    };
    drop(runtime);
    (output, logs)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn hex_decode(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

/// Every value of every column of every row of `table`, as bytes.
fn table_cells(db: &Path, table: &str) -> Vec<Vec<u8>> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn.prepare(&format!("SELECT * FROM {table}")).unwrap();
    let columns = stmt.column_count();
    let mut rows = stmt.query([]).unwrap();
    let mut cells = Vec::new();
    while let Some(row) = rows.next().unwrap() {
        for i in 0..columns {
            use rusqlite::types::ValueRef;
            cells.push(match row.get_ref(i).unwrap() {
                ValueRef::Null => Vec::new(),
                ValueRef::Integer(n) => n.to_string().into_bytes(),
                ValueRef::Real(f) => f.to_string().into_bytes(),
                ValueRef::Text(t) | ValueRef::Blob(t) => t.to_vec(),
            });
        }
    }
    cells
}

/// The bytes of the database file and its WAL and shared-memory files.
fn file_bytes(db: &Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        if let Ok(b) = std::fs::read(PathBuf::from(name)) {
            bytes.extend(b);
        }
    }
    bytes
}

/// Logs in as alice through the demo on a fresh SQLite file; returns the
/// database path, the session id from the cookie and the cookie.
async fn login_on_sqlite(name: &str, config: SessionConfig) -> (PathBuf, String, String) {
    let dir = session_test_support::scratch_dir("session-demo-security");
    let db = dir.join(format!("{name}.sqlite"));
    let store: Arc<dyn Store> =
        session_demo::open_store(&format!("sqlite://{}", db.display()), &Value::Null)
            .await
            .unwrap();
    let base = common::serve(store, config).await;
    let client = reqwest::Client::new();
    // A failed login first: its log line must not hold anything secret.
    let res = common::login(&client, &base, "alice", "wrong").await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = common::login(&client, &base, "alice", "wonderland").await;
    assert_eq!(res.status(), StatusCode::OK);
    let cookie = common::session_cookie_header(&res).expect("login sets the cookie");
    let id = common::id_of(&cookie);
    // The cookie sent back by hand: a client's cookie jar keeps `Secure`
    // cookies off plain HTTP.
    let res = client
        .get(format!("{base}/profile"))
        .header(reqwest::header::COOKIE, format!("session={id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    (db, id, cookie)
}

#[test]
fn a_hashed_session_id_is_nowhere_in_the_database_or_the_logs() {
    let ((db, id, cookie), logs) =
        run_logged(|| login_on_sqlite("hashed", session_demo::session_config()));
    let raw_bytes = hex_decode(&id);
    let key = store_key(&id, true);

    let cells = table_cells(&db, "litestar_session");
    assert!(
        cells.iter().any(|c| c == key.as_bytes()),
        "the row under the hashed key is missing"
    );
    for cell in &cells {
        assert!(!contains(cell, id.as_bytes()), "the raw id is in a column");
        assert!(
            !contains(cell, &raw_bytes),
            "the id's bytes are in a column"
        );
    }
    let files = file_bytes(&db);
    assert!(
        contains(&files, key.as_bytes()),
        "the hashed key is not in the files: the scan would see nothing"
    );
    assert!(
        !contains(&files, id.as_bytes()),
        "the raw id is in the database files"
    );
    assert!(
        !contains(&files, &raw_bytes),
        "the id's bytes are in the database files"
    );
    println!(
        "hashed ids: {} cells and {} bytes of database files scanned; the id is in none",
        cells.len(),
        files.len()
    );

    let (info, all) = (logs.info.text(), logs.all.text());
    // This test's own login, in this test's own capture.
    assert!(
        info.contains("logged in"),
        "the log capture caught nothing: {info}"
    );
    assert!(!info.contains(&id), "the session id is in the INFO logs");
    assert!(
        !all.contains(&id),
        "the session id is in the DEBUG/TRACE logs"
    );
    println!(
        "logs: {} bytes at INFO and above, {} bytes at all levels; the id is in neither",
        info.len(),
        all.len()
    );

    // The cookie: HttpOnly and SameSite=Lax by default, no Secure (the
    // demo runs on plain HTTP); session-tower's tests/http.rs checks every
    // attribute of a configured cookie.
    assert!(cookie.contains("; HttpOnly"), "{cookie}");
    assert!(cookie.contains("; SameSite=Lax"), "{cookie}");
    assert!(!cookie.contains("Secure"), "{cookie}");
    let _ = std::fs::remove_file(&db);
}

#[test]
fn raw_ids_are_visible_to_the_same_scan_and_secure_is_sent_when_configured() {
    // Raw ids (for tables shared with Litestar): the scan finds the id, so
    // the scan above is able to fail.
    let config = session_demo::session_config()
        .to_builder()
        .hash_session_ids(false)
        .secure(true)
        .build()
        .unwrap();
    let ((db, id, cookie), logs) = run_logged(|| login_on_sqlite("raw", config));
    assert!(logs.info.text().contains("logged in"));
    let cells = table_cells(&db, "litestar_session");
    assert!(cells.iter().any(|c| c == id.as_bytes()));
    assert!(contains(&file_bytes(&db), id.as_bytes()));
    assert!(cookie.contains("; Secure"), "{cookie}");
    assert!(cookie.contains("; HttpOnly; SameSite=Lax"), "{cookie}");
    let _ = std::fs::remove_file(&db);
}

/// Captures are per test: one running while another test logs in sees
/// none of it. Ordered by channels: the quiet test's capture is installed
/// before the other logs in, and ends after.
#[test]
fn a_capture_holds_its_own_test_alone() {
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<()>();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let quiet = std::thread::spawn(move || {
        run_logged(|| async move {
            tracing::info!("the quiet test runs");
            ready_tx.send(()).unwrap();
            done_rx.await.unwrap();
        })
        .1
    });
    let ((), busy) = run_logged(|| async move {
        ready_rx.await.unwrap();
        login_on_sqlite("isolation", session_demo::session_config()).await;
        done_tx.send(()).unwrap();
    });
    let quiet = quiet.join().unwrap();
    assert!(
        busy.info.text().contains("logged in"),
        "{}",
        busy.info.text()
    );
    assert!(
        !busy.all.text().contains("the quiet test runs"),
        "{}",
        busy.all.text()
    );
    let quiet = quiet.all.text();
    assert!(quiet.contains("the quiet test runs"), "{quiet}");
    assert!(
        !quiet.contains("logged in"),
        "another test's logs reached this capture: {quiet}"
    );
}
