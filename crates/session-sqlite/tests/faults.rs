//! Faults of a file database: another process holding the write lock past
//! the busy timeout, and directories that cannot hold a database. The lock
//! holder is a real second process (`python3` and its `sqlite3` module),
//! so the locking is SQLite's file locking between processes.
//!
//! ```text
//! cargo test -p session-sqlite --test faults -- --nocapture
//! ```

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use common::{config, fresh_db_path, test_dir, unique};
use session_core::{Bytes, Error, Store};
use session_sqlite::{SqliteConfig, SqliteStore};

/// A second process that takes the write lock (`BEGIN IMMEDIATE`), writes
/// a row, and holds the lock until told to commit.
struct LockHolder {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

const HOLDER: &str = r#"
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=10)
conn.execute("BEGIN IMMEDIATE")
conn.execute("INSERT OR REPLACE INTO " + sys.argv[2] +
             " (session_id, data, expires_at) VALUES ('from_python', x'7079', NULL)")
print("locked", flush=True)
sys.stdin.readline()
conn.execute("COMMIT")
print("released", flush=True)
"#;

impl LockHolder {
    /// Starts the process and waits until it holds the lock; `None` (after
    /// reporting the skip) when python3 is missing.
    ///
    /// # Panics
    ///
    /// When python3 is missing where it is required (on CI, or with
    /// `SESSION_TEST_REQUIRE_PYTHON=1`: see
    /// [`python_required`](session_test_support::python_required)).
    fn start(db: &std::path::Path, table: &str) -> Option<LockHolder> {
        let child = Command::new("python3")
            .arg("-c")
            .arg(HOLDER)
            .arg(db)
            .arg(table)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn();
        let mut child = match child {
            Ok(child) => child,
            Err(e) if session_test_support::python_required() => {
                panic!("python3 is required here (CI, or SESSION_TEST_REQUIRE_PYTHON=1): {e}")
            }
            Err(e) => {
                session_test_support::report_skip(&format!("cannot run python3: {e}"));
                return None;
            }
        };
        let stdin = child.stdin.take().unwrap();
        let mut holder = LockHolder {
            stdout: BufReader::new(child.stdout.take().unwrap()),
            child,
            stdin,
        };
        assert_eq!(holder.line(), "locked");
        Some(holder)
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        line.trim().to_owned()
    }

    /// Commits and ends the process.
    fn release(mut self) {
        writeln!(self.stdin, "go").unwrap();
        self.stdin.flush().unwrap();
        assert_eq!(self.line(), "released");
        assert!(self.child.wait().unwrap().success());
    }
}

impl Drop for LockHolder {
    fn drop(&mut self) {
        // Only a process that is still running (a failed test) is killed.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_lock_held_by_another_process_is_a_clear_error_then_released() {
    let path = fresh_db_path();
    let table = unique("plocked");
    let busy = Duration::from_millis(200);
    let store = SqliteStore::open_with(
        path.to_str().unwrap(),
        SqliteConfig {
            busy_timeout: busy,
            ..config(&table)
        },
    )
    .unwrap();
    store.create_table().await.unwrap();
    store
        .set("k", Bytes::from_static(b"v"), None)
        .await
        .unwrap();

    // Opened before the lock is taken: opening probes the write lock, and
    // waits out its busy timeout while another process holds it.
    let patient = SqliteStore::open_with(
        path.to_str().unwrap(),
        SqliteConfig {
            busy_timeout: Duration::from_secs(10),
            ..config(&table)
        },
    )
    .unwrap();

    let Some(holder) = LockHolder::start(&path, &table) else {
        return;
    };
    let started = Instant::now();
    let err = store
        .set("k", Bytes::from_static(b"w"), None)
        .await
        .unwrap_err();
    let took = started.elapsed();
    println!(
        "write lock held by another process: the write failed after {took:?} (busy timeout {busy:?}): {err}"
    );
    assert!(matches!(err, Error::Backend { .. }), "{err:?}");
    assert!(err.to_string().contains("database is locked"), "{err}");
    assert!(took >= busy, "failed before the busy timeout: {took:?}");
    assert!(took < busy + Duration::from_secs(2), "took {took:?}");
    // Readers are not blocked (WAL), and see neither uncommitted write.
    assert_eq!(
        store.get("k", None).await.unwrap(),
        Some(Bytes::from_static(b"v"))
    );
    assert_eq!(store.get("from_python", None).await.unwrap(), None);

    // A writer with a longer busy timeout waits for the lock and succeeds
    // as soon as the other process commits.
    let waiting = tokio::spawn(async move {
        let started = Instant::now();
        let result = patient.set("k", Bytes::from_static(b"x"), None).await;
        (result, started.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !waiting.is_finished(),
        "the write did not wait for the lock"
    );
    tokio::task::spawn_blocking(move || holder.release())
        .await
        .unwrap();
    let (result, waited) = waiting.await.unwrap();
    result.expect("the waiting write failed after the lock was released");
    println!("a write that waited for the lock succeeded after {waited:?} (released at ~500 ms)");
    assert!(waited >= Duration::from_millis(500));

    // And the first store works again, seeing the other process's commit.
    store
        .set("k", Bytes::from_static(b"y"), None)
        .await
        .unwrap();
    assert_eq!(
        store.get("k", None).await.unwrap(),
        Some(Bytes::from_static(b"y"))
    );
    assert_eq!(
        store.get("from_python", None).await.unwrap(),
        Some(Bytes::from_static(b"py"))
    );
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn assert_open_fails(location: &str, what: &str) -> Error {
    let started = Instant::now();
    let err = SqliteStore::open(location).unwrap_err();
    println!("{what}: refused at open in {:?}: {err}", started.elapsed());
    assert!(matches!(err, Error::Connection { .. }), "{what}: {err:?}");
    assert!(
        err.to_string()
            .contains(location.trim_start_matches("sqlite://")),
        "{what}: the error does not name the database: {err}"
    );
    err
}

#[test]
fn a_directory_that_cannot_hold_the_database_fails_at_construction() {
    // A read-only directory: mode 0555, which root ignores, so as root a
    // directory of a read-only file system (/proc) stands in.
    let (dir, cleanup) = if running_as_root() {
        (std::path::PathBuf::from("/proc"), None)
    } else {
        let dir = test_dir().join(unique("readonly"));
        std::fs::create_dir_all(&dir).unwrap();
        let mut perms = std::fs::metadata(&dir).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o555);
        std::fs::set_permissions(&dir, perms).unwrap();
        (dir.clone(), Some(dir))
    };
    let db = dir.join(format!("{}.db", unique("sessions")));
    assert_open_fails(db.to_str().unwrap(), "read-only directory");
    assert!(!db.exists());
    if let Some(dir) = cleanup {
        let mut perms = std::fs::metadata(&dir).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
        std::fs::set_permissions(&dir, perms).unwrap();
    }

    // A "directory" that is a file.
    let file = test_dir().join(unique("plain_file"));
    std::fs::write(&file, b"not a directory").unwrap();
    let db = file.join("sessions.db");
    assert_open_fails(db.to_str().unwrap(), "parent is a file");

    // A missing directory, through a sqlite:// URL.
    let db = test_dir().join(unique("missing")).join("sessions.db");
    let err = assert_open_fails(&format!("sqlite://{}", db.display()), "missing directory");
    assert!(err.to_string().contains("not accessible"), "{err}");

    // A file that is not a database.
    let garbage = test_dir().join(unique("garbage"));
    std::fs::write(&garbage, vec![0x5a; 8192]).unwrap();
    assert_open_fails(garbage.to_str().unwrap(), "not a database");
}
