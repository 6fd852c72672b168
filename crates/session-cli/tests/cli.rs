//! The `sessions` binary run as a real process against a SQLite file and
//! PostgreSQL (skipped, with a note, when no server can be had, unless
//! `SESSION_TEST_REQUIRE_PG=1`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use session_sqlite::rusqlite::{Connection, params};

/// The seed's SQLite DDL, verbatim (section "Database Schema").
const SEED_SQLITE_DDL: &str = "CREATE TABLE IF NOT EXISTS litestar_session (
    session_id TEXT PRIMARY KEY,
    data BLOB NOT NULL,
    expires_at INTEGER,
    created_at INTEGER NOT NULL DEFAULT (strftime('%s', 'now')),
    updated_at INTEGER NOT NULL DEFAULT (strftime('%s', 'now'))
);
CREATE INDEX IF NOT EXISTS idx_litestar_session_expires_at
ON litestar_session(expires_at) WHERE expires_at IS NOT NULL;";

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn sessions(url: Option<&str>, config: Option<&Path>, args: &[&str]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sessions"));
    cmd.env_remove("DATABASE_URL").env_remove("ORACLE_PASSWORD");
    if let Some(url) = url {
        cmd.arg("--database-url").arg(url);
    }
    if let Some(config) = config {
        cmd.arg("--config").arg(config);
    }
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.args(args).output().expect("the sessions binary runs");
    Run {
        code: status.code().expect("exited, not killed"),
        stdout: String::from_utf8(stdout).unwrap(),
        stderr: String::from_utf8(stderr).unwrap(),
    }
}

impl Run {
    fn ok(self) -> Self {
        assert_eq!(
            self.code, 0,
            "stdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        assert_eq!(self.stderr, "", "nothing on stderr on success");
        self
    }

    /// A failure with exactly one line on stderr, returned.
    fn fails_with(self, code: i32) -> String {
        assert_eq!(
            self.code, code,
            "stdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        assert_eq!(
            self.stderr.lines().count(),
            1,
            "one line: {:?}",
            self.stderr
        );
        self.stderr
    }
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "sessions-cli-{name}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn db(&self) -> (PathBuf, String) {
        let path = self.0.join("sessions.db");
        let url = format!("sqlite://{}", path.display());
        (path, url)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Inserts `expired` rows that expired an hour ago, `live` rows that expire
/// in an hour and `permanent` rows without expiry, into a SQLite table.
fn fill_sqlite(path: &Path, table: &str, expired: usize, live: usize, permanent: usize) {
    let conn = Connection::open(path).unwrap();
    let insert = |key: String, expires: Option<i64>| {
        conn.execute(
            &format!("INSERT INTO {table} (session_id, data, expires_at) VALUES (?1, ?2, ?3)"),
            params![key, b"{}".as_slice(), expires],
        )
        .unwrap();
    };
    for i in 0..expired {
        insert(format!("expired-{i}"), Some(now() - 3600));
    }
    for i in 0..live {
        insert(format!("live-{i}"), Some(now() + 3600));
    }
    for i in 0..permanent {
        insert(format!("permanent-{i}"), None);
    }
}

fn count_sqlite(path: &Path, table: &str, prefix: &str) -> i64 {
    Connection::open(path)
        .unwrap()
        .query_row(
            &format!("SELECT COUNT(*) FROM {table} WHERE session_id LIKE ?1"),
            params![format!("{prefix}%")],
            |row| row.get(0),
        )
        .unwrap()
}

#[test]
fn sqlite_upgrade_current_and_delete_expired() {
    let dir = TempDir::new("flow");
    let (path, url) = dir.db();
    let config = dir.0.join("sessions.toml");
    std::fs::write(&config, "[litestar]\nsession_table = \"app_sessions\"\n").unwrap();
    let cfg = Some(config.as_path());

    let first = sessions(Some(&url), cfg, &["migrate", "upgrade"]).ok();
    assert_eq!(
        first.stdout,
        "applied ext_litestar_0001; now at ext_litestar_0001\n"
    );
    let again = sessions(Some(&url), cfg, &["migrate", "upgrade"]).ok();
    assert_eq!(again.stdout, "already up to date at ext_litestar_0001\n");

    let current = sessions(Some(&url), cfg, &["migrate", "current"]).ok();
    assert_eq!(current.stdout, "ext_litestar_0001\n");
    let verbose = sessions(Some(&url), cfg, &["migrate", "current", "--verbose"]).ok();
    let line = verbose.stdout.trim_end();
    assert!(line.starts_with("ext_litestar_0001  applied 20"), "{line}");
    // ext_litestar_0001 is the store's create_table() DDL.
    let checksum = session_core::migrate::checksum(&session_sqlite::SqliteStore::ddl(
        &session_core::TableName::new("app_sessions", 63).unwrap(),
    ));
    assert!(line.contains(&format!("checksum {checksum}")), "{line}");

    fill_sqlite(&path, "app_sessions", 5, 3, 2);
    let run = sessions(
        Some(&url),
        cfg,
        &["delete-expired", "--verbose", "--batch-size", "2"],
    )
    .ok();
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(
        lines[..3],
        [
            "batch 1: deleted 2 expired sessions",
            "batch 2: deleted 2 expired sessions",
            "batch 3: deleted 1 expired sessions"
        ]
    );
    assert_eq!(lines.len(), 4, "{}", run.stdout);
    assert!(
        lines[3].starts_with("deleted 5 expired sessions from `app_sessions` in "),
        "{}",
        lines[3]
    );
    assert_eq!(count_sqlite(&path, "app_sessions", "expired-"), 0);
    assert_eq!(count_sqlite(&path, "app_sessions", "live-"), 3);
    assert_eq!(count_sqlite(&path, "app_sessions", "permanent-"), 2);

    // Cron mode: only the count line.
    let quiet = sessions(Some(&url), cfg, &["delete-expired"]).ok();
    assert_eq!(quiet.stdout, "deleted 0 expired sessions\n");
}

#[test]
fn database_url_comes_from_the_environment() {
    let dir = TempDir::new("env");
    let (_, url) = dir.db();
    let out = Command::new(env!("CARGO_BIN_EXE_sessions"))
        .env("DATABASE_URL", &url)
        .args(["migrate", "upgrade"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("applied ext_litestar_0001"));
}

#[test]
fn a_missing_table_suggests_migrate_upgrade() {
    let dir = TempDir::new("missing");
    let (_, url) = dir.db();
    let err = sessions(Some(&url), None, &["delete-expired"]).fails_with(1);
    assert!(err.contains("`litestar_session` does not exist"), "{err}");
    assert!(err.contains("sessions migrate upgrade"), "{err}");
}

#[test]
fn an_unknown_scheme_lists_the_known_ones() {
    let err = sessions(
        Some("mysql://root:s3cret@db/app"),
        None,
        &["delete-expired"],
    )
    .fails_with(2);
    assert!(
        err.contains("unknown database URL scheme `mysql://`"),
        "{err}"
    );
    assert!(
        err.contains("sqlite://, postgres://, postgresql://, oracle://, redis://, rediss://, redis+cluster://"),
        "{err}"
    );
    assert!(!err.contains("s3cret"), "{err}");
}

#[test]
fn a_missing_database_url_is_a_usage_error() {
    let err = sessions(None, None, &["migrate", "upgrade"]).fails_with(2);
    assert!(err.contains("--database-url or set DATABASE_URL"), "{err}");
}

#[test]
fn a_bad_config_key_is_named() {
    let dir = TempDir::new("badkey");
    let (_, url) = dir.db();
    let config = dir.0.join("sessions.json");
    std::fs::write(
        &config,
        r#"{"litestar": {"session_table": "s", "fillfactor": 80}}"#,
    )
    .unwrap();
    let err = sessions(Some(&url), Some(&config), &["migrate", "upgrade"]).fails_with(2);
    assert!(err.contains("`fillfactor`"), "{err}");
    assert!(err.contains("accepted: `session_table`"), "{err}");
}

#[test]
fn a_config_file_of_the_backends_own_fields_works() {
    let dir = TempDir::new("ownfields");
    let (path, url) = dir.db();
    let config = dir.0.join("sessions.toml");
    std::fs::write(
        &config,
        "table = \"own_sessions\"\ncleanup_batch_size = 3\n",
    )
    .unwrap();
    let run = sessions(Some(&url), Some(&config), &["migrate", "upgrade"]).ok();
    assert_eq!(
        run.stdout,
        "applied ext_litestar_0001; now at ext_litestar_0001\n"
    );
    fill_sqlite(&path, "own_sessions", 7, 2, 1);
    let run = sessions(Some(&url), Some(&config), &["delete-expired", "--verbose"]).ok();
    // The config's batch size of 3: 7 expired rows take batches of 3, 3, 1.
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(
        lines[..3],
        [
            "batch 1: deleted 3 expired sessions",
            "batch 2: deleted 3 expired sessions",
            "batch 3: deleted 1 expired sessions",
        ]
    );
    assert_eq!(count_sqlite(&path, "own_sessions", "live"), 2);

    std::fs::write(&config, "tabel = \"own_sessions\"\n").unwrap();
    let err = sessions(Some(&url), Some(&config), &["migrate", "upgrade"]).fails_with(2);
    assert!(err.contains("tabel"), "{err}");
    std::fs::write(&config, "cleanup_batch_size = \"many\"\n").unwrap();
    let err = sessions(Some(&url), Some(&config), &["migrate", "upgrade"]).fails_with(2);
    assert!(err.contains("`cleanup_batch_size`"), "{err}");
}

#[test]
fn an_unreachable_sqlite_database_names_its_path() {
    let err = sessions(
        Some("sqlite:///nonexistent-dir-for-sessions-test/s.db"),
        None,
        &["delete-expired"],
    )
    .fails_with(1);
    assert!(err.contains("/nonexistent-dir-for-sessions-test"), "{err}");
}

#[test]
fn an_unreachable_postgres_names_the_address_not_the_password() {
    let err = sessions(
        Some("postgresql://root:s3cret@127.0.0.1:1/test?connect_timeout=2"),
        None,
        &["delete-expired"],
    )
    .fails_with(1);
    assert!(err.contains("127.0.0.1:1"), "{err}");
    assert!(!err.contains("s3cret"), "{err}");
}

#[test]
fn migrate_sql_prints_the_ddl_without_connecting() {
    let dir = TempDir::new("sql");
    let (path, url) = dir.db();
    let sqlite = sessions(Some(&url), None, &["migrate", "sql"]).ok();
    let table = session_core::TableName::new("litestar_session", 63).unwrap();
    for statement in session_sqlite::SqliteStore::ddl(&table) {
        assert!(
            sqlite.stdout.contains(&format!("{statement};\n")),
            "{}",
            sqlite.stdout
        );
    }
    assert!(!path.exists(), "migrate sql opened the database");

    // Unreachable on purpose: the SQL needs no server.
    let pg = sessions(
        Some("postgres://u@127.0.0.1:1/x"),
        None,
        &["migrate", "sql"],
    )
    .ok();
    let offline = session_postgres::PostgresStore::from_url(
        "postgres://u@127.0.0.1:1/x",
        session_postgres::PostgresConfig::default(),
    )
    .unwrap();
    for statement in offline.ddl() {
        assert!(
            pg.stdout.contains(&format!("{statement};\n")),
            "{}",
            pg.stdout
        );
    }
    assert!(
        pg.stdout
            .contains("INSERT INTO litestar_session_migrations")
    );
}

#[test]
fn sqlite_adopts_a_seed_table_with_its_rows() {
    let dir = TempDir::new("adopt");
    let (path, url) = dir.db();
    Connection::open(&path)
        .unwrap()
        .execute_batch(SEED_SQLITE_DDL)
        .unwrap();
    fill_sqlite(&path, "litestar_session", 4, 6, 1);
    let run = sessions(Some(&url), None, &["migrate", "upgrade"]).ok();
    assert_eq!(
        run.stdout,
        "adopted the existing session table at ext_litestar_0001; now at ext_litestar_0001\n"
    );
    assert_eq!(
        count_sqlite(&path, "litestar_session", ""),
        11,
        "no row lost"
    );
    let current = sessions(Some(&url), None, &["migrate", "current"]).ok();
    assert_eq!(current.stdout, "ext_litestar_0001\n");
}

#[test]
fn sqlite_refuses_to_adopt_a_table_of_another_shape() {
    let dir = TempDir::new("shape");
    let (path, url) = dir.db();
    Connection::open(&path)
        .unwrap()
        .execute_batch("CREATE TABLE litestar_session (session_id TEXT PRIMARY KEY, data TEXT NOT NULL, expires_at INTEGER)")
        .unwrap();
    let err = sessions(Some(&url), None, &["migrate", "upgrade"]).fails_with(1);
    assert!(
        err.contains("column `data` is TEXT, expected BLOB"),
        "{err}"
    );
    assert!(err.contains("column `created_at` is missing"), "{err}");
}

// ---- PostgreSQL ----

struct PgTables {
    url: String,
    names: Vec<String>,
}

impl Drop for PgTables {
    fn drop(&mut self) {
        let _ = session_test_support::drop_tables_blocking(&self.url, &self.names);
    }
}

fn pg() -> Option<String> {
    session_test_support::pg_url_or_skip()
}

fn pg_setup(prefix: &str, dir: &TempDir) -> Option<(String, String, PathBuf, PgTables)> {
    let url = pg()?;
    let table = session_test_support::unique_table_name(prefix);
    let config = dir.0.join("pg.json");
    std::fs::write(
        &config,
        format!(r#"{{"litestar": {{"session_table": "{table}", "fillfactor": 90}}}}"#),
    )
    .unwrap();
    let guard = PgTables {
        url: url.clone(),
        names: vec![format!("{table}_migrations"), table.clone()],
    };
    Some((url, table, config, guard))
}

fn pg_exec(url: &str, sql: &str) -> i64 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = session_test_support::connect(url).await.unwrap();
        if sql.starts_with("SELECT") {
            client.query_one(sql, &[]).await.unwrap().get::<_, i64>(0)
        } else {
            client.batch_execute(sql).await.unwrap();
            0
        }
    })
}

#[test]
fn postgres_upgrade_current_and_delete_expired() {
    let dir = TempDir::new("pg");
    let Some((url, table, config, _guard)) = pg_setup("cli_pg", &dir) else {
        return;
    };
    let cfg = Some(config.as_path());
    let first = sessions(Some(&url), cfg, &["migrate", "upgrade"]).ok();
    assert_eq!(
        first.stdout,
        "applied ext_litestar_0001; now at ext_litestar_0001\n"
    );
    let again = sessions(Some(&url), cfg, &["migrate", "upgrade"]).ok();
    assert_eq!(again.stdout, "already up to date at ext_litestar_0001\n");
    let verbose = sessions(Some(&url), cfg, &["migrate", "current", "--verbose"]).ok();
    assert!(
        verbose.stdout.starts_with("ext_litestar_0001  applied 20"),
        "{}",
        verbose.stdout
    );
    assert!(verbose.stdout.contains("checksum "), "{}", verbose.stdout);

    pg_exec(
        &url,
        &format!(
            "INSERT INTO {table} (session_id, data, expires_at) \
             SELECT 'expired-' || i, '\\x00', now() - interval '1 hour' FROM generate_series(1, 7) i; \
             INSERT INTO {table} (session_id, data, expires_at) \
             SELECT 'live-' || i, '\\x00', now() + interval '1 hour' FROM generate_series(1, 4) i; \
             INSERT INTO {table} (session_id, data, expires_at) VALUES ('permanent', '\\x00', NULL);"
        ),
    );
    let run = sessions(
        Some(&url),
        cfg,
        &["delete-expired", "--verbose", "--batch-size", "3"],
    )
    .ok();
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(
        lines[..3],
        [
            "batch 1: deleted 3 expired sessions",
            "batch 2: deleted 3 expired sessions",
            "batch 3: deleted 1 expired sessions"
        ]
    );
    assert!(
        lines[3].starts_with(&format!("deleted 7 expired sessions from `{table}` in ")),
        "{}",
        lines[3]
    );
    assert_eq!(pg_exec(&url, &format!("SELECT COUNT(*) FROM {table}")), 5);
    let quiet = sessions(Some(&url), cfg, &["delete-expired"]).ok();
    assert_eq!(quiet.stdout, "deleted 0 expired sessions\n");
}

#[test]
fn postgres_missing_table_and_adoption() {
    let dir = TempDir::new("pgadopt");
    let Some((url, table, config, _guard)) = pg_setup("cli_adopt", &dir) else {
        return;
    };
    let cfg = Some(config.as_path());
    let err = sessions(Some(&url), cfg, &["delete-expired"]).fails_with(1);
    assert!(err.contains("does not exist"), "{err}");
    assert!(err.contains("sessions migrate upgrade"), "{err}");

    // The seed's PostgreSQL DDL, with this test's table name.
    pg_exec(
        &url,
        &format!(
            "CREATE TABLE {table} (
                session_id TEXT PRIMARY KEY,
                data BYTEA NOT NULL,
                expires_at TIMESTAMPTZ,
                created_at TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP,
                updated_at TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP
            ) WITH (fillfactor = 80);
            CREATE INDEX idx_{table}_expires_at ON {table}(expires_at) WHERE expires_at IS NOT NULL;
            INSERT INTO {table} (session_id, data, expires_at)
            SELECT 'row-' || i, '\\x01', now() + interval '1 hour' FROM generate_series(1, 25) i;"
        ),
    );
    let run = sessions(Some(&url), cfg, &["migrate", "upgrade"]).ok();
    assert_eq!(
        run.stdout,
        "adopted the existing session table at ext_litestar_0001; now at ext_litestar_0001\n"
    );
    assert_eq!(pg_exec(&url, &format!("SELECT COUNT(*) FROM {table}")), 25);
    let again = sessions(Some(&url), cfg, &["migrate", "upgrade"]).ok();
    assert_eq!(again.stdout, "already up to date at ext_litestar_0001\n");
}

/// Redis expires keys itself: `delete-expired` says 0 and why, `migrate`
/// says there is nothing to migrate, and neither touches a key.
#[test]
fn redis_has_nothing_to_migrate_or_delete_and_says_why() {
    let Some(url) = session_test_support::redis::redis_url_or_skip() else {
        return;
    };
    let prefix = session_test_support::redis::unique_prefix("cli");
    let dir = TempDir::new("redis-cli");
    let config = dir.0.join("redis.toml");
    std::fs::write(&config, format!("prefix = \"{prefix}\"\n")).unwrap();

    let run = sessions(Some(&url), Some(&config), &["delete-expired"]).ok();
    assert!(
        run.stdout
            .starts_with("deleted 0 expired sessions: Redis expires keys itself"),
        "{}",
        run.stdout
    );
    let run = sessions(Some(&url), Some(&config), &["delete-expired", "--verbose"]).ok();
    assert!(
        run.stdout.contains("Redis expires keys itself"),
        "{}",
        run.stdout
    );
    for args in [&["migrate", "upgrade"][..], &["migrate", "current"]] {
        let run = sessions(Some(&url), Some(&config), args).ok();
        assert_eq!(
            run.stdout.trim(),
            format!(
                "redis prefix `{prefix}` at {} has no schema: nothing to migrate",
                url.trim_start_matches("redis://")
            ),
            "{args:?}"
        );
    }
    let run = sessions(Some(&url), Some(&config), &["migrate", "sql"]).ok();
    assert!(
        run.stdout.contains("has no schema: nothing to migrate"),
        "{}",
        run.stdout
    );
}

/// A Redis or memcached that is down: an error naming the address, exit
/// code 1, no hang; never "nothing to do".
#[test]
fn an_unreachable_key_value_server_names_the_address_not_the_password() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = TempDir::new("kv-down");
    let config = dir.0.join("kv.toml");
    std::fs::write(
        &config,
        "connect_timeout = \"300ms\"\nresponse_timeout = \"300ms\"\n",
    )
    .unwrap();
    for url in [
        format!("redis://app:s3cret@127.0.0.1:{port}/0"),
        format!("memcache://127.0.0.1:{port}"),
    ] {
        for args in [
            &["delete-expired"][..],
            &["migrate", "upgrade"],
            &["migrate", "current"],
        ] {
            let started = std::time::Instant::now();
            let line = sessions(Some(&url), Some(&config), args).fails_with(1);
            assert!(
                line.contains(&format!("127.0.0.1:{port}")),
                "{url} {args:?}: {line}"
            );
            assert!(
                line.contains("connection failed") || line.contains("connect"),
                "{url} {args:?}: {line}"
            );
            assert!(!line.contains("s3cret"), "{url} {args:?}: {line}");
            assert!(
                started.elapsed() < std::time::Duration::from_secs(5),
                "{url} {args:?} took {:?}",
                started.elapsed()
            );
        }
    }
}

/// `migrate upgrade` over TLS against a throwaway server with `ssl = on`:
/// `require` and `verify-full` (the test authority as `sslrootcert`)
/// succeed, and `verify-full` under a name the certificate lacks fails
/// with one line naming the address and the reason.
#[test]
fn postgres_migrate_upgrade_over_tls() {
    let Some((server, certificates)) = session_test_support::tls_cluster_or_skip() else {
        return;
    };
    let dir = TempDir::new("pgtls");
    let table = session_test_support::unique_table_name("cli_tls");
    let config = dir.0.join("pg.json");
    std::fs::write(&config, format!(r#"{{"table": "{table}"}}"#)).unwrap();
    let port = server.port();
    let url = format!("postgresql://postgres:s3cret@127.0.0.1:{port}/postgres?sslmode=require");
    let first = sessions(Some(&url), Some(&config), &["migrate", "upgrade"]).ok();
    assert_eq!(
        first.stdout,
        "applied ext_litestar_0001; now at ext_litestar_0001\n"
    );
    let root = certificates.ca.display();
    let verified = format!(
        "postgresql://postgres@localhost:{port}/postgres?sslmode=verify-full&sslrootcert={root}"
    );
    let again = sessions(Some(&verified), Some(&config), &["migrate", "upgrade"]).ok();
    assert_eq!(again.stdout, "already up to date at ext_litestar_0001\n");

    let wrong_name = format!(
        "postgresql://postgres:s3cret@db.invalid:{port}/postgres?hostaddr=127.0.0.1\
         &sslmode=verify-full&sslrootcert={root}"
    );
    let err = sessions(Some(&wrong_name), Some(&config), &["migrate", "upgrade"]).fails_with(1);
    assert!(err.contains(&format!("db.invalid:{port}")), "{err}");
    assert!(
        err.contains("certificate not valid for name \"db.invalid\""),
        "{err}"
    );
    assert!(!err.contains("s3cret"), "{err}");
}
