//! What is particular to SQLite: the schema, the SQLSpec layout,
//! identifier and config checks, construction errors, locking, pools. (The
//! SQL plan of cleanup is a unit test of `src/schema.rs`.)

mod common;

use std::error::Error as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{config, fresh_db_path, store_on, unique};
use rusqlite::Connection;
use session_core::{Bytes, Error, ExtensionConfig, Store, StoreAdmin, StoreConfig, TableName};
use session_sqlite::{SqliteConfig, SqliteStore};

/// SQLSpec's SQLite DDL, verbatim from the seed's "Database Schema".
const SEED_DDL: &str = "CREATE TABLE IF NOT EXISTS litestar_session (
    session_id TEXT PRIMARY KEY,
    data BLOB NOT NULL,
    expires_at INTEGER,
    created_at INTEGER NOT NULL DEFAULT (strftime('%s', 'now')),
    updated_at INTEGER NOT NULL DEFAULT (strftime('%s', 'now'))
);

CREATE INDEX IF NOT EXISTS idx_litestar_session_expires_at
ON litestar_session(expires_at) WHERE expires_at IS NOT NULL;";

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

fn squash(sql: &str) -> String {
    sql.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn raw(path: &std::path::Path) -> Connection {
    Connection::open(path).expect("open the database directly")
}

fn path_str(path: &std::path::Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}

#[tokio::test(flavor = "multi_thread")]
async fn created_schema_is_the_seed_ddl() {
    let path = fresh_db_path();
    let table = unique("schema");
    let _store = store_on(&path, &table).await;

    // The CREATE statements stored in sqlite_master are the seed's, with our
    // table name (SQLite stores them without `IF NOT EXISTS`).
    let conn = raw(&path);
    let stored: Vec<String> = conn
        .prepare("SELECT sql FROM sqlite_master WHERE tbl_name = ?1 AND sql IS NOT NULL ORDER BY type DESC")
        .unwrap()
        .query_map([&table], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let expected: Vec<String> = SEED_DDL
        .replace("litestar_session", &table)
        .replace(" IF NOT EXISTS", "")
        .split(';')
        .map(squash)
        .filter(|s| !s.is_empty())
        .collect();
    assert_eq!(
        stored.iter().map(|s| squash(s)).collect::<Vec<_>>(),
        expected
    );

    // Column by column: name, declared type, NOT NULL, default, primary key.
    let columns: Vec<(String, String, bool, Option<String>, bool)> = conn
        .prepare(&format!("PRAGMA table_info({table})"))
        .unwrap()
        .query_map([], |r| {
            Ok((
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get::<_, i64>(5)? > 0,
            ))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let now = Some("strftime('%s', 'now')".to_string());
    assert_eq!(
        columns,
        vec![
            ("session_id".into(), "TEXT".into(), false, None, true),
            ("data".into(), "BLOB".into(), true, None, false),
            ("expires_at".into(), "INTEGER".into(), false, None, false),
            (
                "created_at".into(),
                "INTEGER".into(),
                true,
                now.clone(),
                false
            ),
            ("updated_at".into(), "INTEGER".into(), true, now, false),
        ]
    );

    // The index: partial, on expires_at alone.
    let (name, partial): (String, bool) = conn
        .query_row(
            &format!("SELECT name, partial FROM pragma_index_list('{table}') WHERE origin = 'c'"),
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(name, format!("idx_{table}_expires_at"));
    assert!(partial);
    let indexed: String = conn
        .query_row(
            &format!("SELECT name FROM pragma_index_info('{name}')"),
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(indexed, "expires_at");
}

#[tokio::test(flavor = "multi_thread")]
async fn ddl_is_the_seed_ddl_and_create_table_is_idempotent() {
    let table = TableName::new("litestar_session", 63).unwrap();
    assert_eq!(
        SqliteStore::ddl(&table)
            .iter()
            .map(|s| squash(s))
            .collect::<Vec<_>>(),
        SEED_DDL
            .split(';')
            .map(squash)
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
    );

    let path = fresh_db_path();
    let store = store_on(&path, &unique("idem")).await;
    store
        .set("k", Bytes::from_static(b"v"), None)
        .await
        .unwrap();
    store.create_table().await.unwrap();
    store.create_table().await.unwrap();
    assert_eq!(
        store.get("k", None).await.unwrap(),
        Some(Bytes::from_static(b"v"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn set_keeps_created_at_and_moves_updated_at() {
    let path = fresh_db_path();
    let table = unique("times");
    let store = store_on(&path, &table).await;
    store
        .set(
            "k",
            Bytes::from_static(b"one"),
            Some(Duration::from_secs(60)),
        )
        .await
        .unwrap();
    let conn = raw(&path);
    conn.execute(
        &format!("UPDATE {table} SET created_at = 1000, updated_at = 1000"),
        [],
    )
    .unwrap();

    let before = now_secs();
    store
        .set(
            "k",
            Bytes::from_static(b"two"),
            Some(Duration::from_secs(60)),
        )
        .await
        .unwrap();
    let (created, updated, data_type, expires_type): (i64, i64, String, String) = conn
        .query_row(
            &format!("SELECT created_at, updated_at, typeof(data), typeof(expires_at) FROM {table} WHERE session_id = 'k'"),
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert_eq!(created, 1000, "set replaced created_at");
    assert!(
        updated >= before,
        "updated_at did not move: {updated} < {before}"
    );
    assert_eq!(
        (data_type.as_str(), expires_type.as_str()),
        ("blob", "integer")
    );

    // update moves updated_at too and keeps created_at.
    conn.execute(&format!("UPDATE {table} SET updated_at = 1000"), [])
        .unwrap();
    assert!(
        store
            .update("k", Bytes::from_static(b"three"), None)
            .await
            .unwrap()
    );
    let (created, updated): (i64, i64) = conn
        .query_row(
            &format!("SELECT created_at, updated_at FROM {table}"),
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(created, 1000);
    assert!(updated >= before);
}

/// `compare_and_set` writes as `update` does: `created_at` kept,
/// `updated_at` moved, the expiry reset to `ceil(now + ttl)` (an INTEGER)
/// or NULL, the data a BLOB.
#[tokio::test(flavor = "multi_thread")]
async fn compare_and_set_keeps_created_at_and_resets_the_expiry() {
    let path = fresh_db_path();
    let table = unique("cas_times");
    let store = store_on(&path, &table).await;
    store
        .set("k", Bytes::from_static(b"one"), None)
        .await
        .unwrap();
    let conn = raw(&path);
    conn.execute(
        &format!("UPDATE {table} SET created_at = 1000, updated_at = 1000"),
        [],
    )
    .unwrap();
    let row = || -> (Vec<u8>, String, Option<i64>, i64, i64) {
        conn.query_row(
            &format!(
                "SELECT data, typeof(data), expires_at, created_at, updated_at \
                 FROM {table} WHERE session_id = 'k'"
            ),
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .unwrap()
    };

    let before = now_secs();
    let ttl = Duration::from_millis(60_500);
    assert!(
        store
            .compare_and_set(
                "k",
                Bytes::from_static(b"one"),
                Bytes::from_static(b"two"),
                Some(ttl)
            )
            .await
            .unwrap()
    );
    let (data, data_type, expires_at, created, updated) = row();
    let after = now_secs();
    assert_eq!((data.as_slice(), data_type.as_str()), (&b"two"[..], "blob"));
    assert_eq!(created, 1000, "compare_and_set replaced created_at");
    assert!((before..=after).contains(&updated), "updated_at {updated}");
    // ceil(now + 60.5 s): 61 or 62 seconds after the second it was written.
    let expires_at = expires_at.expect("an expiry");
    assert!(
        (before + 61..=after + 62).contains(&expires_at),
        "{expires_at} for a write at {before}..={after}"
    );

    // A stale expected value writes nothing, not even the times.
    conn.execute(&format!("UPDATE {table} SET updated_at = 1000"), [])
        .unwrap();
    assert!(
        !store
            .compare_and_set(
                "k",
                Bytes::from_static(b"one"),
                Bytes::from_static(b"three"),
                None
            )
            .await
            .unwrap()
    );
    assert_eq!(
        row(),
        (b"two".to_vec(), "blob".into(), Some(expires_at), 1000, 1000)
    );

    // None (and zero) mean "never expires": NULL.
    for never in [None, Some(Duration::ZERO)] {
        let current = store.get("k", None).await.unwrap().unwrap();
        assert!(
            store
                .compare_and_set("k", current, Bytes::from_static(b"four"), never)
                .await
                .unwrap()
        );
        assert_eq!(row().2, None, "{never:?}");
    }
}

/// A row whose data a JSON-storing writer left as TEXT: `get` returns its
/// bytes, and a compare-and-set from those bytes writes.
#[tokio::test(flavor = "multi_thread")]
async fn compare_and_set_matches_text_data_by_its_bytes() {
    let path = fresh_db_path();
    let table = unique("cas_text");
    let store = store_on(&path, &table).await;
    let conn = raw(&path);
    conn.execute(
        &format!("INSERT INTO {table} (session_id, data, expires_at) VALUES ('k', ?1, ?2)"),
        rusqlite::params!["{\"user\":\"é\"}", now_secs() + 3600],
    )
    .unwrap();
    let loaded = store.get("k", None).await.unwrap().expect("the row");
    assert_eq!(&loaded[..], "{\"user\":\"é\"}".as_bytes());
    // Different bytes (and the same bytes as text would compare as another
    // type) are refused.
    assert!(
        !store
            .compare_and_set(
                "k",
                Bytes::from_static(b"{}"),
                Bytes::from_static(b"x"),
                None
            )
            .await
            .unwrap()
    );
    assert!(
        store
            .compare_and_set("k", loaded, Bytes::from_static(b"{}"), None)
            .await
            .unwrap()
    );
    assert_eq!(
        store.get("k", None).await.unwrap(),
        Some(Bytes::from_static(b"{}"))
    );
}

/// `delete_live` removes a live row and says so; an expired row answers
/// false and is left to cleanup.
#[tokio::test(flavor = "multi_thread")]
async fn delete_live_removes_live_rows_and_leaves_expired_ones_to_cleanup() {
    let path = fresh_db_path();
    let table = unique("delete_live");
    let store = store_on(&path, &table).await;
    let conn = raw(&path);
    let insert =
        format!("INSERT INTO {table} (session_id, data, expires_at) VALUES (?1, x'00', ?2)");
    let now = now_secs();
    for (key, expires_at) in [
        ("live", Some(now + 600)),
        ("forever", None),
        ("expired", Some(now - 5)),
    ] {
        conn.execute(&insert, rusqlite::params![key, expires_at])
            .unwrap();
    }
    assert!(store.delete_live("live").await.unwrap());
    assert!(store.delete_live("forever").await.unwrap());
    assert!(!store.delete_live("expired").await.unwrap());
    assert!(!store.delete_live("missing").await.unwrap());
    assert!(!store.delete_live("live").await.unwrap(), "removed twice");
    let left: Vec<String> = conn
        .prepare(&format!("SELECT session_id FROM {table}"))
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(left, ["expired"]);
    assert_eq!(store.delete_expired().await.unwrap(), 1);
}

/// Two stores on one file (two pools, as two application processes would
/// have): of 2 x 16 concurrent compare-and-sets of one key from the value
/// they all loaded, exactly one writes, and its value is the one left; of
/// 2 x 16 concurrent `delete_live`s of one key, exactly one removes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_compare_and_set_and_one_delete_live_win_across_pools() {
    let path = fresh_db_path();
    let table = unique("cas_race");
    let a = store_on(&path, &table).await;
    let b = SqliteStore::open_with(path_str(&path), config(&table)).unwrap();
    for round in 0..20 {
        a.set(
            "k",
            Bytes::from_static(b"loaded"),
            Some(Duration::from_secs(60)),
        )
        .await
        .unwrap();
        let start = std::sync::Arc::new(tokio::sync::Barrier::new(32));
        let tasks: Vec<_> = (0..32)
            .map(|i| {
                let store = if i % 2 == 0 { a.clone() } else { b.clone() };
                let start = start.clone();
                tokio::spawn(async move {
                    let value = Bytes::from(format!("task {i}"));
                    start.wait().await;
                    let wrote = store
                        .compare_and_set("k", Bytes::from_static(b"loaded"), value.clone(), None)
                        .await
                        .unwrap();
                    wrote.then_some(value)
                })
            })
            .collect();
        let mut winners = Vec::new();
        for task in tasks {
            winners.extend(task.await.unwrap());
        }
        assert_eq!(winners.len(), 1, "round {round}: {winners:?}");
        assert_eq!(b.get("k", None).await.unwrap(), Some(winners[0].clone()));

        let start = std::sync::Arc::new(tokio::sync::Barrier::new(32));
        let tasks: Vec<_> = (0..32)
            .map(|i| {
                let store = if i % 2 == 0 { a.clone() } else { b.clone() };
                let start = start.clone();
                tokio::spawn(async move {
                    start.wait().await;
                    store.delete_live("k").await.unwrap()
                })
            })
            .collect();
        let mut removed = 0;
        for task in tasks {
            removed += usize::from(task.await.unwrap());
        }
        assert_eq!(removed, 1, "round {round}");
        assert!(!a.exists("k").await.unwrap());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn delete_expired_works_in_batches_and_spares_live_rows() {
    let path = fresh_db_path();
    let table = unique("batches");
    let store = SqliteStore::open_with(
        path_str(&path),
        SqliteConfig {
            cleanup_batch_size: 3,
            ..config(&table)
        },
    )
    .unwrap();
    store.create_table().await.unwrap();
    let conn = raw(&path);
    let past = now_secs() - 10;
    for i in 0..10 {
        conn.execute(
            &format!("INSERT INTO {table} (session_id, data, expires_at) VALUES (?1, x'00', ?2)"),
            rusqlite::params![format!("old{i}"), past],
        )
        .unwrap();
    }
    store
        .set(
            "live",
            Bytes::from_static(b"v"),
            Some(Duration::from_secs(60)),
        )
        .await
        .unwrap();
    store
        .set("forever", Bytes::from_static(b"v"), None)
        .await
        .unwrap();
    assert_eq!(store.delete_expired().await.unwrap(), 10);
    assert_eq!(store.delete_expired().await.unwrap(), 0);
    let left: i64 = conn
        .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
        .unwrap();
    assert_eq!(left, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn table_name_with_sql_is_refused_before_any_sql_runs() {
    let path = fresh_db_path();
    let hostile = "sessions; DROP TABLE users; --";
    // In SQLSpec's document, and as the config's own field.
    let err = SqliteConfig::from_value(serde_json::json!({"litestar": {"session_table": hostile}}))
        .unwrap_err();
    assert!(
        matches!(&err, Error::InvalidIdentifier { name, .. } if name == hostile),
        "{err}"
    );
    let cfg = config(hostile);
    let err = SqliteStore::open_with(path_str(&path), cfg.clone()).unwrap_err();
    assert!(
        matches!(&err, Error::InvalidIdentifier { name, .. } if name == hostile),
        "{err}"
    );
    assert!(
        !path.exists(),
        "the database was opened before the name was checked"
    );

    // Nor against an existing database: nothing is created, nothing dropped.
    let conn = raw(&path);
    conn.execute_batch("CREATE TABLE users (id INTEGER)")
        .unwrap();
    assert!(SqliteStore::open_with(path_str(&path), cfg.clone()).is_err());
    assert!(SqliteStore::in_memory_with(cfg).is_err());
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(tables, ["users"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_table_created_by_sqlspec_is_used_as_is() {
    let path = fresh_db_path();
    let conn = raw(&path);
    conn.execute_batch(SEED_DDL).unwrap();
    // Rows as SQLSpec writes them: BLOB data, INTEGER unix-second expiry,
    // timestamps from the column defaults.
    let now = now_secs();
    let insert = "INSERT INTO litestar_session (session_id, data, expires_at) VALUES (?1, ?2, ?3)";
    conn.execute(
        insert,
        rusqlite::params!["live", b"{\"user\":1}".as_slice(), now + 3600],
    )
    .unwrap();
    conn.execute(
        insert,
        rusqlite::params!["forever", b"{}".as_slice(), None::<i64>],
    )
    .unwrap();
    conn.execute(
        insert,
        rusqlite::params!["expired", b"{}".as_slice(), now - 5],
    )
    .unwrap();

    // The default table name, and no create_table: the table is used as is.
    let store = SqliteStore::open(path_str(&path)).unwrap();
    assert_eq!(store.table().table(), "litestar_session");
    assert_eq!(
        store.get("live", None).await.unwrap(),
        Some(Bytes::from_static(b"{\"user\":1}"))
    );
    let ttl = store.expires_in("live").await.unwrap().expect("an expiry");
    assert!(
        ttl > Duration::from_secs(3590) && ttl <= Duration::from_secs(3601),
        "{ttl:?}"
    );
    assert_eq!(
        store
            .get("forever", Some(Duration::from_secs(60)))
            .await
            .unwrap(),
        Some(Bytes::from_static(b"{}"))
    );
    assert_eq!(store.expires_in("forever").await.unwrap(), None);
    assert!(!store.exists("expired").await.unwrap());
    assert_eq!(store.delete_expired().await.unwrap(), 1);

    // What the store writes, SQLSpec reads: same columns, same types.
    store
        .set(
            "mine",
            Bytes::from_static(b"[1]"),
            Some(Duration::from_secs(60)),
        )
        .await
        .unwrap();
    let (data, expires_at): (Vec<u8>, i64) = conn
        .query_row(
            "SELECT data, expires_at FROM litestar_session WHERE session_id = 'mine'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(data, b"[1]");
    assert!((now + 60..=now + 62).contains(&expires_at), "{expires_at}");
}

#[test]
fn unknown_extension_keys_are_refused_by_name() {
    let err = ExtensionConfig::from_json_str(
        r#"{"litestar": {"session_table": "s", "fillfactr": 80}}"#,
        SqliteConfig::EXTENSION_KEYS,
    )
    .unwrap_err();
    assert!(
        matches!(&err, Error::UnknownConfigKeys { unknown, .. } if unknown == &["fillfactr"]),
        "{err}"
    );

    // A config parsed for PostgreSQL, handed to SQLite: its key is named.
    let pg = ExtensionConfig::from_json_str(
        r#"{"litestar": {"session_table": "s", "fillfactor": 80}}"#,
        &["session_table", "fillfactor"],
    )
    .unwrap();
    let err = SqliteConfig::from_extension(&pg).unwrap_err();
    match &err {
        Error::UnknownConfigKeys {
            unknown, accepted, ..
        } => {
            assert_eq!(unknown, &["fillfactor"]);
            assert_eq!(accepted, &["session_table"]);
        }
        other => panic!("expected UnknownConfigKeys, got {other}"),
    }
}

#[test]
fn a_missing_directory_fails_at_open() {
    let path = common::test_dir()
        .join(unique("no_such_dir"))
        .join("sessions.db");
    let err = SqliteStore::open(path_str(&path)).unwrap_err();
    assert!(matches!(err, Error::Connection { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("no_such_dir") && text.contains("not accessible"),
        "{text}"
    );
    assert!(err.source().is_some(), "the I/O error is kept as source");
}

#[test]
fn bad_options_are_refused_by_name() {
    let default = SqliteConfig::default;
    for (config, field) in [
        (
            SqliteConfig {
                pool_size: 0,
                ..default()
            },
            "pool_size",
        ),
        (
            SqliteConfig {
                cleanup_batch_size: 0,
                ..default()
            },
            "cleanup_batch_size",
        ),
        (
            SqliteConfig {
                wait_timeout: Duration::ZERO,
                ..default()
            },
            "wait_timeout",
        ),
        (
            SqliteConfig {
                busy_timeout: Duration::from_secs(1 << 40),
                ..default()
            },
            "busy_timeout",
        ),
    ] {
        let err = SqliteStore::open_with(":memory:", config).unwrap_err();
        assert!(
            matches!(&err, Error::InvalidConfig { field: f, .. } if f == field),
            "{err}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_locked_database_is_a_clear_error_and_reads_go_on() {
    let path = fresh_db_path();
    let table = unique("locked");
    let store = SqliteStore::open_with(
        path_str(&path),
        SqliteConfig {
            busy_timeout: Duration::from_millis(50),
            ..config(&table)
        },
    )
    .unwrap();
    store.create_table().await.unwrap();
    store
        .set("k", Bytes::from_static(b"v"), None)
        .await
        .unwrap();

    // Another connection (another process, say) holds the write lock.
    let holder = raw(&path);
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let err = store
        .set("k", Bytes::from_static(b"w"), None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Backend { .. }), "{err}");
    assert!(err.to_string().contains("database is locked"), "{err}");
    let source = err.source().expect("the rusqlite error is kept");
    assert!(
        source.downcast_ref::<rusqlite::Error>().is_some(),
        "{source}"
    );
    // WAL: readers are not blocked by the writer.
    assert_eq!(
        store.get("k", None).await.unwrap(),
        Some(Bytes::from_static(b"v"))
    );
    holder.execute_batch("ROLLBACK").unwrap();
    store
        .set("k", Bytes::from_static(b"w"), None)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_table_error_says_what_to_do() {
    let store = SqliteStore::in_memory_with(config("never_created")).unwrap();
    let err = store.get("k", None).await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("never_created") && text.contains("create_table"),
        "{text}"
    );
    assert!(err.source().is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn file_databases_use_wal_and_open_from_a_url() {
    let path = fresh_db_path();
    let url = format!("sqlite://{}", path_str(&path));
    let store = SqliteStore::open_with(&url, config(&unique("url"))).unwrap();
    store.create_table().await.unwrap();
    store
        .set("k", Bytes::from_static(b"v"), None)
        .await
        .unwrap();
    let conn = store.pool().get().unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    let sync: i64 = conn
        .query_row("PRAGMA synchronous", [], |r| r.get(0))
        .unwrap();
    let busy: i64 = conn
        .query_row("PRAGMA busy_timeout", [], |r| r.get(0))
        .unwrap();
    assert_eq!((mode.as_str(), sync, busy), ("wal", 1, 5000));
    drop(conn);
    // Another store on the same file sees the same rows.
    let again = SqliteStore::open_with(path_str(&path), config(store.table().table())).unwrap();
    assert_eq!(
        again.get("k", None).await.unwrap(),
        Some(Bytes::from_static(b"v"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn in_memory_stores_are_private() {
    let a = SqliteStore::open(":memory:").unwrap();
    let b = SqliteStore::in_memory().unwrap();
    a.create_table().await.unwrap();
    b.create_table().await.unwrap();
    a.set("k", Bytes::from_static(b"a"), None).await.unwrap();
    assert_eq!(b.get("k", None).await.unwrap(), None);
    // Clones share the database.
    assert_eq!(
        a.clone().get("k", None).await.unwrap(),
        Some(Bytes::from_static(b"a"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_existing_pool_is_used() {
    let path = fresh_db_path();
    let manager = SqliteConfig::default().connection_manager(&path);
    let pool = r2d2::Pool::builder().max_size(2).build(manager).unwrap();
    let store = SqliteStore::from_pool(pool.clone(), config(&unique("pool"))).unwrap();
    store.create_table().await.unwrap();
    store
        .set("k", Bytes::from_static(b"v"), None)
        .await
        .unwrap();
    let count: i64 = pool
        .get()
        .unwrap()
        .query_row(
            &format!("SELECT count(*) FROM {}", store.table()),
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(count, 1);
}

/// A cleanup on an application's pool leaves the progress handler the
/// application set on its connection in place (only the store's own writer
/// yields during cleanup batches).
#[tokio::test(flavor = "multi_thread")]
async fn cleanup_on_an_existing_pool_keeps_the_applications_progress_handler() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    let path = fresh_db_path();
    let manager = SqliteConfig::default().connection_manager(&path);
    let pool = r2d2::Pool::builder().max_size(1).build(manager).unwrap();
    let calls = Arc::new(AtomicU64::new(0));
    {
        let counted = calls.clone();
        pool.get()
            .unwrap()
            .progress_handler(
                100,
                Some(move || {
                    counted.fetch_add(1, Ordering::Relaxed);
                    false
                }),
            )
            .unwrap();
    }
    let store = SqliteStore::from_pool(pool.clone(), config(&unique("pool_cleanup"))).unwrap();
    store.create_table().await.unwrap();
    let past = now_secs() - 60;
    pool.get()
        .unwrap()
        .execute(
            &format!(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200) \
                 INSERT INTO {} (session_id, data, expires_at) SELECT 'old' || i, x'00', ?1 FROM n",
                store.table()
            ),
            [past],
        )
        .unwrap();
    assert_eq!(store.cleanup().await.unwrap(), Some(200));

    let before = calls.load(Ordering::Relaxed);
    pool.get()
        .unwrap()
        .query_row(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000) \
             SELECT count(*) FROM n",
            [],
            |r| r.get::<_, i64>(0),
        )
        .unwrap();
    assert!(
        calls.load(Ordering::Relaxed) > before,
        "the application's progress handler was removed by the cleanup"
    );
}

#[test]
fn operations_outside_a_runtime_are_errors_not_panics() {
    let store = SqliteStore::in_memory().unwrap();
    let result = common::block_on(store.delete_all());
    assert!(matches!(result, Err(Error::Backend { .. })), "{result:?}");
}

/// The poll loop above ends: a future that never completes fails the test
/// at the limit instead of hanging it.
#[test]
#[should_panic(expected = "did not complete within")]
fn a_future_that_never_completes_fails_instead_of_hanging() {
    common::block_on_within(
        std::future::pending::<()>(),
        std::time::Duration::from_millis(50),
    );
}

/// Application processes starting together all open one new database file:
/// the switch to WAL must wait its turn, never fail with "locked".
#[test]
fn stores_opening_a_new_file_at_once_all_succeed() {
    for _ in 0..40 {
        let path = common::fresh_db_path();
        let start = std::sync::Arc::new(std::sync::Barrier::new(8));
        let openers: Vec<_> = (0..8)
            .map(|_| {
                let path = path.clone();
                let start = start.clone();
                std::thread::spawn(move || {
                    start.wait();
                    SqliteStore::open(path.to_str().unwrap()).map(drop)
                })
            })
            .collect();
        for opener in openers {
            if let Err(e) = opener.join().unwrap() {
                panic!(
                    "opening a new file concurrently failed: {}",
                    session_core::error_chain(&e)
                );
            }
        }
    }
}
