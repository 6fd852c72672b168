//! Test harness shared by the workspace's tests: finds a PostgreSQL server to
//! test against, or starts a throwaway one. Not for use outside this
//! workspace.
//!
//! [`pg_url`] looks, once per process, in this order:
//!
//! 1. `SESSION_TEST_PG_URL`, if set (used as is; if it cannot be reached the
//!    tests skip or fail, they do not fall back to anything else);
//! 2. a server on `127.0.0.1:5432`, database `test`, as user `root`, then as
//!    `postgres`;
//! 3. a [`ThrowawayCluster`] started from PostgreSQL's server binaries
//!    (`/usr/lib/postgresql/*/bin`), stopped and deleted when the process
//!    exits.
//!
//! If none can be had it returns the reason, and a test reports that it was
//! skipped ([`pg_url_or_skip`] does both); but with
//! `SESSION_TEST_REQUIRE_PG=1` (as `.ci/run` sets) it panics with the
//! reason instead, so a CI run without PostgreSQL fails.
//!
//! A skip is reported with [`report_skip`], which writes to the process's
//! standard error directly: the test harness captures `println!` and
//! `eprintln!` and shows them only for a failed test, so a skip printed
//! that way is invisible on the "ok" it leaves.
//!
//! ```no_run
//! # async fn demo() {
//! let Some(url) = session_test_support::pg_url_or_skip() else {
//!     return; // "test <name> skipped: no PostgreSQL (...)" on stderr
//! };
//! let table = session_test_support::unique_table_name("demo");
//! let client = session_test_support::connect(&url).await.unwrap();
//! client
//!     .batch_execute(&format!("DROP TABLE IF EXISTS {table}"))
//!     .await
//!     .unwrap();
//! # }
//! ```

pub mod bench;
mod cluster;
pub mod documents;
pub mod logs;
pub mod memcached;
mod process;
pub mod redis;
pub mod tls;

pub use cluster::ThrowawayCluster;
pub use process::{required, skip_or_panic, spawn_watchdog};

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The variable holding a PostgreSQL URL to test against.
pub const PG_URL_VAR: &str = "SESSION_TEST_PG_URL";

/// The variable that, set to `1`, turns a missing PostgreSQL from a skip
/// into a failure.
pub const REQUIRE_PG_VAR: &str = "SESSION_TEST_REQUIRE_PG";

/// How long a probe waits for a server to answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// Where PostgreSQL was found, kept for the life of the process.
struct Found {
    url: String,
    /// The cluster this process started, if it had to; never dropped (it is
    /// in a static): its watchdog stops and deletes it when the process exits.
    _cluster: Option<ThrowawayCluster>,
}

static FOUND: OnceLock<Result<Found, String>> = OnceLock::new();

/// The URL of a PostgreSQL server to test against, or why there is none.
///
/// Probed once per process (see the crate docs for the order) and cached.
/// Safe to call from inside an async runtime: the probe runs on a thread of
/// its own.
///
/// # Panics
///
/// When no server can be had and `SESSION_TEST_REQUIRE_PG=1`: a required
/// database that is missing is a failure, not a skip.
pub fn pg_url() -> Result<String, String> {
    let found = FOUND.get_or_init(|| {
        std::thread::spawn(find_postgres)
            .join()
            .unwrap_or_else(|_| Err("the PostgreSQL probe panicked".to_owned()))
    });
    match found {
        Ok(found) => Ok(found.url.clone()),
        Err(reason) if pg_required() => {
            panic!("{REQUIRE_PG_VAR}=1 but no PostgreSQL is available: {reason}")
        }
        Err(reason) => Err(reason.clone()),
    }
}

/// True when `SESSION_TEST_REQUIRE_PG=1`.
pub fn pg_required() -> bool {
    std::env::var(REQUIRE_PG_VAR).is_ok_and(|v| v.trim() == "1")
}

/// The variable that, set to `1`, makes tests that need `python3` fail
/// instead of skipping without it (`.ci/run` sets it).
pub const REQUIRE_PYTHON_VAR: &str = "SESSION_TEST_REQUIRE_PYTHON";

/// True when a test needing `python3` must fail without it: with
/// `SESSION_TEST_REQUIRE_PYTHON=1`, and on CI (`CI` set to anything but
/// empty, `0` or `false`, as CI services set it).
pub fn python_required() -> bool {
    required(REQUIRE_PYTHON_VAR)
}

/// A key prefix no other test (or process) uses: `test:<name>:<unique>:`,
/// for the stores that keep keys under a prefix (Redis, memcached).
pub fn unique_prefix(name: &str) -> String {
    format!("test:{}:", unique_table_name(name))
}

/// Reports that the running test is skipped, and why:
/// `test <name> skipped: <why>`, written to the process's standard error
/// directly (not through `eprintln!`, which the test harness captures and
/// shows only for a failed test), so a test that did nothing never passes
/// silently. `<name>` is the current thread's name, which the harness
/// sets to the test's; call it from the test's own thread.
pub fn report_skip(why: &str) {
    use std::io::Write;
    let thread = std::thread::current();
    let name = thread.name().unwrap_or("(unnamed thread)");
    let line = format!("test {name} skipped: {why}\n");
    // One write of the whole line: lines of parallel tests do not mix.
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// [`pg_url`], or `None` after [`report_skip`]ping why there is none.
///
/// # Panics
///
/// As [`pg_url`]: when no server can be had and `SESSION_TEST_REQUIRE_PG=1`.
pub fn pg_url_or_skip() -> Option<String> {
    match pg_url() {
        Ok(url) => Some(url),
        Err(why) => {
            report_skip(&format!("no PostgreSQL ({why})"));
            None
        }
    }
}

/// A [`ThrowawayCluster`] of the test's own, or `None` after
/// [`report_skip`]ping why it cannot start.
///
/// # Panics
///
/// When it cannot start and `SESSION_TEST_REQUIRE_PG=1`.
pub fn throwaway_cluster_or_skip() -> Option<ThrowawayCluster> {
    match ThrowawayCluster::start() {
        Ok(cluster) => Some(cluster),
        Err(why) if !pg_required() => {
            report_skip(&format!("cannot start a throwaway cluster: {why}"));
            None
        }
        Err(why) => panic!("{REQUIRE_PG_VAR}=1 but a throwaway cluster cannot start: {why}"),
    }
}

/// A throwaway cluster with TLS on ([`ThrowawayCluster::start_tls`]) and
/// the test certificates it presents (made by `openssl` in a scratch
/// folder; SANs `localhost` and `127.0.0.1`), shared by the process's
/// tests (stopped and deleted when the process exits); or `None` after
/// [`report_skip`]ping why it cannot be had (no server binaries, no
/// `openssl`).
///
/// # Panics
///
/// When it cannot be had and `SESSION_TEST_REQUIRE_PG` or `CI` is set
/// ([`skip_or_panic`]).
pub fn tls_cluster_or_skip() -> Option<&'static (ThrowawayCluster, tls::TestCertificates)> {
    static TLS: OnceLock<Result<(ThrowawayCluster, tls::TestCertificates), String>> =
        OnceLock::new();
    let found = TLS.get_or_init(|| {
        let dir = scratch_dir("session-test-pg-tls").join(format!(
            "certs-{}",
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        let certificates = tls::TestCertificates::make(&dir)?;
        let cluster = ThrowawayCluster::start_tls(&certificates)?;
        Ok((cluster, certificates))
    });
    match found {
        Ok(found) => Some(found),
        Err(why) => skip_or_panic("PostgreSQL with TLS", REQUIRE_PG_VAR, why),
    }
}

/// `url` (a URL or a `key=value` connection string) with the session's
/// `search_path` set to `schema` alone, so unqualified names are created
/// and found in that schema.
pub fn url_with_search_path(url: &str, schema: &str) -> String {
    let option = format!("-c search_path={schema}");
    if url.contains("://") {
        let encoded = option.replace(' ', "%20").replace('=', "%3D");
        let sep = if url.contains('?') { '&' } else { '?' };
        format!("{url}{sep}options={encoded}")
    } else {
        format!("{url} options='{option}'")
    }
}

fn find_postgres() -> Result<Found, String> {
    if let Ok(url) = std::env::var(PG_URL_VAR) {
        return match probe(&url) {
            Ok(()) => Ok(Found {
                url,
                _cluster: None,
            }),
            Err(e) => Err(format!("{PG_URL_VAR} is set but cannot be used: {e}")),
        };
    }
    let mut tried = Vec::new();
    for user in ["root", "postgres"] {
        let url = format!("postgresql://{user}@127.0.0.1:5432/test");
        match probe(&url) {
            Ok(()) => {
                return Ok(Found {
                    url,
                    _cluster: None,
                });
            }
            Err(e) => tried.push(format!("127.0.0.1:5432 as {user}: {e}")),
        }
    }
    match ThrowawayCluster::start() {
        Ok(cluster) => {
            let url = cluster.url();
            probe(&url).map_err(|e| format!("the throwaway cluster does not answer: {e}"))?;
            Ok(Found {
                url,
                _cluster: Some(cluster),
            })
        }
        Err(e) => {
            tried.push(format!("throwaway cluster: {e}"));
            Err(format!("no PostgreSQL found ({})", tried.join("; ")))
        }
    }
}

/// Connects to `url` and runs `SELECT 1`, within [`PROBE_TIMEOUT`].
fn probe(url: &str) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a runtime to probe: {e}"))?;
    runtime.block_on(async {
        let attempt = async {
            let client = connect(url).await.map_err(|e| e.to_string())?;
            client
                .simple_query("SELECT 1")
                .await
                .map_err(|e| e.to_string())?;
            Ok::<(), String>(())
        };
        tokio::time::timeout(PROBE_TIMEOUT, attempt)
            .await
            .map_err(|_| format!("no answer within {PROBE_TIMEOUT:?}"))?
    })
}

/// Connects one plain client to `url` (no TLS) and drives its connection on
/// the current tokio runtime.
///
/// # Panics
///
/// If called outside a tokio runtime.
pub async fn connect(url: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(async move {
        // The connection ends when the client is dropped or the server goes
        // away; the client reports the latter on its next call.
        let _ = connection.await;
    });
    Ok(client)
}

/// Drops `tables` (`DROP TABLE IF EXISTS`, each name as given, so only pass
/// names this process made, e.g. by [`unique_table_name`]) on the server at
/// `url`.
///
/// Blocking, on a thread and runtime of its own: callable from `Drop`, from
/// synchronous code and from inside an async runtime alike.
pub fn drop_tables_blocking(url: &str, tables: &[String]) -> Result<(), String> {
    if tables.is_empty() {
        return Ok(());
    }
    let sql: String = tables
        .iter()
        .map(|t| format!("DROP TABLE IF EXISTS {t};"))
        .collect();
    execute_blocking(url, &sql)
}

/// Runs `sql` (one or more statements) on the server at `url`.
///
/// Blocking, on a thread and runtime of its own: callable from `Drop`, from
/// synchronous code and from inside an async runtime alike.
pub fn execute_blocking(url: &str, sql: &str) -> Result<(), String> {
    let url = url.to_owned();
    let sql = sql.to_owned();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        runtime.block_on(async {
            let client = connect(&url).await.map_err(|e| e.to_string())?;
            client.batch_execute(&sql).await.map_err(|e| e.to_string())
        })
    })
    .join()
    .unwrap_or_else(|_| Err("the thread running SQL panicked".to_owned()))
}

/// A table name no other test, process or earlier run uses:
/// `<prefix>_<pid>_<time>_<n>`, all lower case, at most 48 characters (so
/// the derived index name `idx_<table>_expires_at` fits PostgreSQL's 63).
///
/// `prefix` is reduced to ASCII letters, digits and underscores and cut to
/// 16 characters; an empty or digit-led prefix becomes `t_...`.
pub fn unique_table_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut clean: String = prefix
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .map(|c| c.to_ascii_lowercase())
        .take(16)
        .collect();
    if !clean.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        clean.insert_str(0, "t_");
    }
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    // Seconds since the epoch, modulo ~11.5 days: tells apart a reused pid.
    let time = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() % 1_000_000);
    format!("{clean}_{}_{time}_{n}", std::process::id())
}

/// A scratch directory for this test process's database files:
/// `<temp dir>/<prefix>-<pid>`, created if missing.
///
/// Test processes end without a chance to clean up after themselves (a
/// file store's database lives as long as the suite), so the first call in
/// a process removes the `<prefix>-<pid>` directories of processes that no
/// longer run (on Linux, where `/proc` tells; elsewhere nothing is swept).
pub fn scratch_dir(prefix: &str) -> std::path::PathBuf {
    static SWEPT: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let temp = std::env::temp_dir();
    let mut swept = SWEPT.lock().unwrap_or_else(|p| p.into_inner());
    if !swept.iter().any(|p| p == prefix) {
        swept.push(prefix.to_owned());
        if std::path::Path::new("/proc/self").exists() {
            if let Ok(entries) = std::fs::read_dir(&temp) {
                for entry in entries.flatten() {
                    let name = entry.file_name();
                    let Some(pid) = name
                        .to_str()
                        .and_then(|n| n.strip_prefix(prefix))
                        .and_then(|n| n.strip_prefix('-'))
                        .and_then(|n| n.parse::<u32>().ok())
                    else {
                        continue;
                    };
                    if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                        let _ = std::fs::remove_dir_all(entry.path());
                    }
                }
            }
        }
    }
    let dir = temp.join(format!("{prefix}-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    dir
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_path_goes_into_either_form_of_url() {
        assert_eq!(
            url_with_search_path("postgresql://u@h:5432/db", "s1"),
            "postgresql://u@h:5432/db?options=-c%20search_path%3Ds1"
        );
        assert_eq!(
            url_with_search_path("postgresql://u@h/db?sslmode=disable", "s1"),
            "postgresql://u@h/db?sslmode=disable&options=-c%20search_path%3Ds1"
        );
        assert_eq!(
            url_with_search_path("host=h user=u", "s1"),
            "host=h user=u options='-c search_path=s1'"
        );
        for url in [
            url_with_search_path("postgresql://u@h:5432/db", "s1"),
            url_with_search_path("host=h user=u", "s1"),
        ] {
            let config: tokio_postgres::Config = url.parse().unwrap();
            assert_eq!(config.get_options(), Some("-c search_path=s1"), "{url}");
        }
    }

    #[test]
    fn unique_names_are_valid_distinct_identifiers() {
        let a = unique_table_name("Conformance-Suite!");
        let b = unique_table_name("Conformance-Suite!");
        assert_ne!(a, b);
        assert!(a.starts_with("conformancesuite_"), "{a}");
        let weird = unique_table_name("9");
        assert!(weird.starts_with("t_9_"), "{weird}");
        let long = unique_table_name(&"x".repeat(100));
        assert!(long.len() <= 48, "{long} is {} long", long.len());
        for name in [a, b, weird, long] {
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                "{name}"
            );
        }
    }
}
