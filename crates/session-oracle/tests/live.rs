//! Against a real Oracle database: the whole conformance suite, the
//! In-Memory check, the migrations through `StoreAdmin`, the plan of a
//! keyed read (the primary-key index, with the store's own binds), `create`
//! racing over an expired row, the renewing read of the empty value,
//! `compare_and_set` racing from one value (small, long, empty; with and
//! without expiry) and `delete_live`.
//! Runs when ORACLE_TEST_DSN, ORACLE_TEST_USER and ORACLE_TEST_PASSWORD are
//! set (and the Oracle Instant Client is on the loader path); otherwise
//! every test here says it was skipped and why.
//!
//! None of this has run here (no Oracle server or client on the machines
//! this crate was written on): `docs/oracle.md` lists what these tests
//! would prove.
//!
//! ```text
//! ORACLE_TEST_DSN=localhost:1521/FREEPDB1 ORACLE_TEST_USER=app ORACLE_TEST_PASSWORD=... \
//!     cargo test -p session-oracle --test live
//! ```
//!
//! Each store gets a table of its own (`sess_t_<pid>_<n>`), dropped when the
//! store is dropped.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use oracle::sql_type::OracleType;
use session_conformance::{Skip, StoreFactory};
use session_core::{Result, Store, StoreAdmin};
use session_oracle::{Credentials, InMemoryStatus, OracleConfig, OracleStore};

const VARS: [&str; 3] = [
    "ORACLE_TEST_DSN",
    "ORACLE_TEST_USER",
    "ORACLE_TEST_PASSWORD",
];

/// The credentials, or why the live tests are skipped.
fn live_credentials() -> std::result::Result<Credentials, String> {
    let values: Vec<Option<String>> = VARS
        .iter()
        .map(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
        .collect();
    match values.as_slice() {
        [Some(dsn), Some(user), Some(password)] => Ok(Credentials::new(user, password, dsn)),
        _ => Err("ORACLE_TEST_DSN, ORACLE_TEST_USER and ORACLE_TEST_PASSWORD are not set".into()),
    }
}

/// Says, past the test harness's output capture, that the live test `name`
/// was skipped and why.
fn skipped(name: &str, why: &str) {
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "session-oracle live test `{name}` skipped: {why}"
    );
}

/// The live tests' config: a pool of 8, 30 s timeouts, the table `table`.
fn live_config(table: String, in_memory: bool) -> OracleConfig {
    OracleConfig {
        table,
        in_memory,
        pool_size: 8,
        wait_timeout: Duration::from_secs(30),
        connect_timeout: Duration::from_secs(30),
        ..OracleConfig::default()
    }
}

fn unique_table() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "sess_t_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A store on a table of its own, dropped (with a connection of its own, on
/// a thread of its own) when the store is dropped.
struct TempTableStore {
    store: OracleStore,
    credentials: Credentials,
    password: String,
}

impl Drop for TempTableStore {
    fn drop(&mut self) {
        // The session table, and the tracking table a migration test made.
        let table = self.store.table();
        let statements = [
            format!("DROP TABLE {table} PURGE"),
            format!("DROP TABLE {} PURGE", table.migrations_table()),
        ];
        let user = self.credentials.user().to_owned();
        let password = self.password.clone();
        let dsn = self.credentials.connect_string().to_owned();
        let dropped = std::thread::spawn(move || {
            let conn = oracle::Connection::connect(user, password, dsn)?;
            for sql in &statements {
                match conn.execute(sql, &[]) {
                    // ORA-00942: the table was never created.
                    Err(err) if err.oci_code() == Some(942) => {}
                    Err(err) => return Err(err),
                    Ok(_) => {}
                }
            }
            Ok(())
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(err)) => {
                eprintln!("session-oracle live tests: could not drop a test table: {err}")
            }
            Err(_) => eprintln!("session-oracle live tests: the table-dropping thread panicked"),
        }
    }
}

#[async_trait]
impl Store for TempTableStore {
    async fn get(&self, key: &str, renew_for: Option<Duration>) -> Result<Option<Bytes>> {
        self.store.get(key, renew_for).await
    }
    async fn set(&self, key: &str, value: Bytes, expires_in: Option<Duration>) -> Result<()> {
        self.store.set(key, value, expires_in).await
    }
    async fn delete(&self, key: &str) -> Result<()> {
        self.store.delete(key).await
    }
    async fn delete_all(&self) -> Result<()> {
        self.store.delete_all().await
    }
    async fn exists(&self, key: &str) -> Result<bool> {
        self.store.exists(key).await
    }
    async fn expires_in(&self, key: &str) -> Result<Option<Duration>> {
        self.store.expires_in(key).await
    }
    async fn delete_expired(&self) -> Result<u64> {
        self.store.delete_expired().await
    }
    async fn create(&self, key: &str, value: Bytes, expires_in: Option<Duration>) -> Result<bool> {
        self.store.create(key, value, expires_in).await
    }
    async fn update(&self, key: &str, value: Bytes, expires_in: Option<Duration>) -> Result<bool> {
        self.store.update(key, value, expires_in).await
    }
    async fn compare_and_set(
        &self,
        key: &str,
        expected: Bytes,
        value: Bytes,
        expires_in: Option<Duration>,
    ) -> Result<bool> {
        self.store
            .compare_and_set(key, expected, value, expires_in)
            .await
    }
    async fn delete_live(&self, key: &str) -> Result<bool> {
        self.store.delete_live(key).await
    }
}

async fn temp_store(in_memory: bool) -> std::result::Result<Result<TempTableStore>, Skip> {
    let store = match unmigrated_store(unique_table(), in_memory).await? {
        Ok(store) => store,
        Err(err) => return Ok(Err(err)),
    };
    Ok(store.store.create_table().await.map(|()| store))
}

/// A store on the table `table`, not created yet (dropped with the store).
async fn unmigrated_store(
    table: String,
    in_memory: bool,
) -> std::result::Result<Result<TempTableStore>, Skip> {
    let credentials = live_credentials().map_err(Skip)?;
    let password = std::env::var("ORACLE_TEST_PASSWORD").unwrap_or_default();
    let config = live_config(table, in_memory);
    Ok(OracleStore::connect(credentials.clone(), config)
        .await
        .map(|store| TempTableStore {
            store,
            credentials,
            password,
        }))
}

/// The factory of the conformance suite: a fresh table per store, or a skip
/// when no database is configured. A configured database that fails is a
/// failure, not a skip.
struct OracleFactory;

impl StoreFactory for OracleFactory {
    type Store = TempTableStore;

    async fn new_store(&self) -> std::result::Result<TempTableStore, Skip> {
        match temp_store(false).await? {
            Ok(store) => Ok(store),
            Err(err) => panic!("ORACLE_TEST_* are set but no store could be made: {err}"),
        }
    }
}

session_conformance::store_conformance!(conformance, super::OracleFactory);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_memory_check_reports_the_table() {
    let plain = match temp_store(false).await {
        Err(Skip(why)) => return skipped("in_memory_check_reports_the_table", &why),
        Ok(store) => store.expect("a plain table is created"),
    };
    assert_eq!(
        plain.store.in_memory_status().await.unwrap(),
        InMemoryStatus::Disabled
    );

    // A table that does not exist is reported as such.
    let config = live_config(unique_table(), false);
    let missing = OracleStore::connect(live_credentials().unwrap(), config)
        .await
        .unwrap();
    assert_eq!(
        missing.in_memory_status().await.unwrap(),
        InMemoryStatus::TableNotFound
    );

    // With in_memory, either the database has the option and the table is
    // ENABLED, or creating it fails with the mapped ORA-00439 / ORA-62142.
    match temp_store(true).await.expect("configured") {
        Ok(store) => {
            assert_eq!(
                store.store.in_memory_status().await.unwrap(),
                InMemoryStatus::Enabled
            )
        }
        Err(err) => {
            let text = err.to_string();
            assert!(text.contains("INMEMORY_SIZE"), "{text}");
            assert!(
                text.contains("ORA-00439") || text.contains("ORA-62142"),
                "{text}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_table_is_idempotent_and_set_keeps_created_at() {
    let store = match temp_store(false).await {
        Err(Skip(why)) => {
            return skipped("create_table_is_idempotent_and_set_keeps_created_at", &why);
        }
        Ok(store) => store.expect("a table is created"),
    };
    // A second create_table meets ORA-00955 on the table and the index.
    store.store.create_table().await.unwrap();
    store.store.create_table().await.unwrap();

    store
        .set("k", Bytes::from_static(b"v1"), None)
        .await
        .unwrap();
    let (created1, updated1) = audit_columns(&store.store).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    store
        .set("k", Bytes::from_static(b"v2"), None)
        .await
        .unwrap();
    let (created2, updated2) = audit_columns(&store.store).await;
    assert_eq!(
        store.get("k", None).await.unwrap(),
        Some(Bytes::from_static(b"v2"))
    );
    assert_eq!(created1, created2, "set kept created_at");
    assert!(
        updated2 > updated1,
        "set moved updated_at: {updated1} -> {updated2}"
    );
}

/// `created_at` and `updated_at` of key `k`, as text sortable by time.
async fn audit_columns(store: &OracleStore) -> (String, String) {
    let conn = store.pool().get_owned().await.unwrap();
    let sql = format!(
        "SELECT TO_CHAR(SYS_EXTRACT_UTC(created_at), 'YYYY-MM-DD HH24:MI:SS.FF6'), \
         TO_CHAR(SYS_EXTRACT_UTC(updated_at), 'YYYY-MM-DD HH24:MI:SS.FF6') \
         FROM {} WHERE session_id = 'k'",
        store.table()
    );
    tokio::task::spawn_blocking(move || {
        conn.connection()
            .query_row_as::<(String, String)>(&sql, &[])
            .unwrap()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_admin_migrates_adopts_and_cleans_in_batches() {
    let store = match unmigrated_store(unique_table(), false).await {
        Err(Skip(why)) => {
            return skipped("store_admin_migrates_adopts_and_cleans_in_batches", &why);
        }
        Ok(store) => store.expect("a store is made"),
    };
    // Through the trait, as the CLI calls them. Their catalog queries bind
    // the table name and a NULL owner beside SYS_CONTEXT: with NVARCHAR2
    // binds that was ORA-12704 (issue 19).
    let admin: &dyn StoreAdmin = &store.store;
    let description = admin.describe();
    assert!(description.contains(&admin.location()), "{description}");
    assert!(
        description.contains(store.credentials.connect_string()),
        "{description}"
    );
    assert!(!description.contains(&store.password), "{description}");

    assert!(!admin.session_table_exists().await.unwrap());
    assert!(admin.applied_migrations().await.unwrap().is_empty());
    let report = admin.migrate().await.unwrap();
    assert_eq!(report.applied, ["ext_litestar_0001"]);
    assert!(admin.migrate().await.unwrap().is_noop());
    let applied = admin.applied_migrations().await.unwrap();
    assert_eq!(applied.len(), 1);
    assert_eq!(applied[0].checksum, admin.migrations()[0].checksum());
    assert!(admin.session_table_exists().await.unwrap());

    // One batch removes at most `limit` expired rows.
    for key in ["a", "b", "c"] {
        store
            .set(
                key,
                Bytes::from_static(b"v"),
                Some(Duration::from_millis(1)),
            )
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(admin.delete_expired_batch(0).await.is_err());
    assert_eq!(admin.delete_expired_batch(2).await.unwrap(), 2);
    assert_eq!(admin.delete_expired_batch(2).await.unwrap(), 1);
    assert_eq!(admin.cleanup().await.unwrap(), Some(0));

    // A table made by create_table() is adopted, its rows untouched; two
    // instances migrating at once both succeed.
    let table = unique_table();
    let (Ok(Ok(first)), Ok(Ok(second))) = (
        unmigrated_store(table.clone(), false).await,
        unmigrated_store(table, false).await,
    ) else {
        panic!("stores on a shared table are made");
    };
    first.store.create_table().await.unwrap();
    first
        .set("kept", Bytes::from_static(b"v"), None)
        .await
        .unwrap();
    let (a, b) = tokio::join!(first.store.migrate(), second.store.migrate());
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(
        [a.adopted, b.adopted].iter().flatten().count(),
        1,
        "exactly one instance adopted the table: {a:?} {b:?}"
    );
    assert!(first.exists("kept").await.unwrap());
    drop(second); // its drops find the tables gone (ORA-00942): fine
}

/// A text bind as `VARCHAR2`, as the store binds its keys.
fn varchar2(value: &str) -> (&str, OracleType) {
    (value, OracleType::Varchar2(255))
}

/// The lines of a `DBMS_XPLAN` query.
fn plan_lines(conn: &oracle::Connection, sql: &str, id: Option<&str>) -> Vec<String> {
    let rows = match id {
        Some(id) => {
            let (value, ty) = varchar2(id);
            conn.query_as::<Option<String>>(sql, &[&(&value, &ty)])
        }
        None => conn.query_as::<Option<String>>(sql, &[]),
    };
    rows.expect("DBMS_XPLAN runs")
        .map(|line| line.expect("a plan line").unwrap_or_default())
        .collect()
}

/// A keyed read uses the primary-key index: `INDEX UNIQUE SCAN` of the
/// `session_id` primary key, no `TABLE ACCESS FULL`.
///
/// Two checks. `EXPLAIN PLAN` shows the SQL text can use it (EXPLAIN PLAN
/// treats every bind as VARCHAR2, so it cannot see bind types). The plan
/// of the cursor the store itself just ran (`DBMS_XPLAN.DISPLAY_CURSOR` on
/// the same session: the pool has one connection) shows its binds do: an
/// NVARCHAR2 key would read `SYS_OP_C2C(session_id) = :sid` with a full
/// scan. DISPLAY_CURSOR needs SELECT on V$SESSION, V$SQL and V$SQL_PLAN
/// (e.g. SELECT_CATALOG_ROLE); without it, that half says it was skipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keyed_get_uses_the_primary_key_index() {
    let credentials = match live_credentials() {
        Ok(credentials) => credentials,
        Err(why) => return skipped("a_keyed_get_uses_the_primary_key_index", &why),
    };
    let password = std::env::var("ORACLE_TEST_PASSWORD").unwrap_or_default();
    let config = OracleConfig {
        pool_size: 1,
        ..live_config(unique_table(), false)
    };
    let store = TempTableStore {
        store: OracleStore::connect(credentials.clone(), config)
            .await
            .expect("a store is made"),
        credentials,
        password,
    };
    store.store.create_table().await.unwrap();
    store
        .set("user:1", Bytes::from_static(b"v"), None)
        .await
        .unwrap();
    // The store's own statement, with its own binds: the last cursor of
    // the pool's only session.
    assert!(store.get("user:1", None).await.unwrap().is_some());

    let table = store.store.table().table().to_ascii_uppercase();
    let conn = store.store.pool().get_owned().await.unwrap();
    let (cursor, explained, pk) = tokio::task::spawn_blocking(move || {
        let db = conn.connection();
        // First, before any other statement of this session.
        let cursor = plan_lines(
            db,
            "SELECT plan_table_output FROM TABLE(DBMS_XPLAN.DISPLAY_CURSOR(NULL, NULL, 'BASIC'))",
            None,
        );
        let (value, ty) = varchar2(&table);
        let pk: String = db
            .query_row_as(
                "SELECT index_name FROM user_constraints \
                 WHERE table_name = :1 AND constraint_type = 'P'",
                &[&(&value, &ty)],
            )
            .expect("the table has a primary key");
        let id = format!("sess_pk_{}", std::process::id());
        let explain = format!(
            "EXPLAIN PLAN SET STATEMENT_ID = '{id}' FOR SELECT data FROM {table} \
             WHERE session_id = :sid AND (expires_at IS NULL OR expires_at > SYSTIMESTAMP)"
        );
        let (key, key_type) = varchar2("user:1");
        db.execute(&explain, &[])
            .or_else(|_| db.execute(&explain, &[&(&key, &key_type)]))
            .expect("EXPLAIN PLAN runs");
        let explained = plan_lines(
            db,
            "SELECT plan_table_output FROM TABLE(DBMS_XPLAN.DISPLAY('PLAN_TABLE', :1, 'BASIC'))",
            Some(&id),
        );
        db.rollback().unwrap();
        (cursor, explained, pk)
    })
    .await
    .unwrap();

    let uses_pk = |lines: &[String]| {
        lines
            .iter()
            .any(|l| l.contains("INDEX UNIQUE SCAN") && l.contains(&pk))
            && !lines.iter().any(|l| l.contains("TABLE ACCESS FULL"))
    };
    assert!(
        uses_pk(&explained),
        "EXPLAIN PLAN:\n{}",
        explained.join("\n")
    );
    let cursor_text = cursor.join("\n");
    if cursor_text.contains("SELECT privilege") || cursor_text.contains("cannot fetch plan") {
        println!(
            "session-oracle live tests: the plan of the store's own cursor was not checked \
             (DBMS_XPLAN.DISPLAY_CURSOR needs SELECT on V$SESSION, V$SQL, V$SQL_PLAN): {cursor_text}"
        );
    } else {
        assert!(
            cursor_text.contains("session_id"),
            "the last cursor is the store's get:\n{cursor_text}"
        );
        assert!(uses_pk(&cursor), "the store's get:\n{cursor_text}");
    }
}

/// `create` over an expired row, by several writers at once: exactly one
/// writes, and the row holds its value (the conditional UPDATE re-checks
/// `expires_at` after waiting for the winner's lock; the INSERT's ORA-00001
/// means "not written").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_over_an_expired_row_writes_once_under_concurrency() {
    let store = match temp_store(false).await {
        Err(Skip(why)) => {
            return skipped(
                "create_over_an_expired_row_writes_once_under_concurrency",
                &why,
            );
        }
        Ok(store) => store.expect("a table is created"),
    };
    for round in 0..10 {
        let key = format!("race_{round}");
        if round % 2 == 0 {
            // An expired row to revive ...
            store
                .set(
                    &key,
                    Bytes::from_static(b"old"),
                    Some(Duration::from_millis(1)),
                )
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(50)).await;
        } // ... or no row at all.
        let values: Vec<Bytes> = (0..4).map(|i| Bytes::from(format!("writer {i}"))).collect();
        let results = create_four_at_once(&store, &key, &values).await;
        let winners: Vec<usize> = (0..4).filter(|&i| results[i]).collect();
        assert_eq!(winners.len(), 1, "round {round}: {results:?}");
        assert_eq!(
            store.get(&key, None).await.unwrap(),
            Some(values[winners[0]].clone()),
            "round {round}"
        );
    }
}

/// Four `create`s of `key` at once, one per value.
async fn create_four_at_once(store: &TempTableStore, key: &str, values: &[Bytes]) -> Vec<bool> {
    let ttl = Some(Duration::from_secs(600));
    let (a, b, c, d) = tokio::join!(
        store.create(key, values[0].clone(), ttl),
        store.create(key, values[1].clone(), ttl),
        store.create(key, values[2].clone(), ttl),
        store.create(key, values[3].clone(), ttl),
    );
    vec![a.unwrap(), b.unwrap(), c.unwrap(), d.unwrap()]
}

/// The renewing read of the empty value: `EMPTY_BLOB()` left a zero-length
/// LOB, returned as a locator whose size is checked before any read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_renewing_read_of_the_empty_value() {
    let store = match temp_store(false).await {
        Err(Skip(why)) => return skipped("the_renewing_read_of_the_empty_value", &why),
        Ok(store) => store.expect("a table is created"),
    };
    let hour = Some(Duration::from_secs(3600));
    store.set("empty", Bytes::new(), hour).await.unwrap();
    let day = Some(Duration::from_secs(86_400));
    assert_eq!(store.get("empty", day).await.unwrap(), Some(Bytes::new()));
    let left = store.expires_in("empty").await.unwrap().unwrap();
    assert!(left > Duration::from_secs(3600), "renewed: {left:?}");
    // And a value past the inline limit, through the same locator path.
    let big = Bytes::from(vec![7u8; session_oracle::INLINE_VALUE_MAX * 3]);
    store.set("big", big.clone(), hour).await.unwrap();
    assert_eq!(store.get("big", day).await.unwrap(), Some(big));
}

/// Many tasks at once, each `compare_and_set`ting one key from the value it
/// holds to a value of its own: exactly one returns true, and the row holds
/// its value. The losers' `UPDATE`s waited for the winner's row lock and
/// must re-check `DBMS_LOB.COMPARE(data, ...)` on the committed row.
///
/// Rounds cover each form of the statement: a short expected value (`RAW`,
/// `TO_BLOB`), a long one (a temporary `BLOB`; 5000 bytes, past what Oracle
/// stores in the row), one just past the inline limit (stored in the row,
/// compared as a temporary `BLOB`), the empty one; each with an expiry and
/// without one. Without one, `expires_at` stays `NULL`: only the change of
/// `data` can stop the losers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compare_and_set_has_one_winner_among_racing_tasks() {
    let store = match temp_store(false).await {
        Err(Skip(why)) => {
            return skipped("compare_and_set_has_one_winner_among_racing_tasks", &why);
        }
        Ok(store) => Arc::new(store.expect("a table is created")),
    };
    const TASKS: usize = 8;
    let inline = session_oracle::INLINE_VALUE_MAX;
    let sized = |n: usize, fill: u8| Bytes::from(vec![fill; n]);
    let shapes: [(&str, Bytes, usize); 4] = [
        ("short", Bytes::from_static(b"loaded"), 16),
        ("long", sized(5000, b'e'), 5000),
        ("just past inline", sized(inline + 1, b'e'), inline + 1),
        ("empty", Bytes::new(), 16),
    ];
    for (n, (shape, expected, value_len)) in shapes.into_iter().enumerate() {
        for ttl in [Some(Duration::from_secs(600)), None] {
            for round in 0..3 {
                let what = format!("{shape}, ttl {ttl:?}, round {round}");
                let key = format!("cas_{n}_{round}_{}", ttl.is_some());
                store.set(&key, expected.clone(), ttl).await.unwrap();
                let values: Vec<Bytes> = (0..TASKS)
                    .map(|i| {
                        let mut v = vec![b'a' + i as u8; value_len];
                        v[0] = i as u8;
                        Bytes::from(v)
                    })
                    .collect();
                let barrier = Arc::new(tokio::sync::Barrier::new(TASKS));
                let tasks: Vec<_> = values
                    .iter()
                    .cloned()
                    .map(|value| {
                        let (store, barrier) = (store.clone(), barrier.clone());
                        let (key, expected) = (key.clone(), expected.clone());
                        tokio::spawn(async move {
                            barrier.wait().await;
                            store.compare_and_set(&key, expected, value, ttl).await
                        })
                    })
                    .collect();
                let mut results = Vec::new();
                for task in tasks {
                    results.push(task.await.unwrap().expect("compare_and_set runs"));
                }
                let winners: Vec<usize> = (0..TASKS).filter(|&i| results[i]).collect();
                assert_eq!(winners.len(), 1, "{what}: {results:?}");
                assert_eq!(
                    store.get(&key, None).await.unwrap(),
                    Some(values[winners[0]].clone()),
                    "{what}"
                );
                // From the value it held, nothing more is written.
                assert!(
                    !store
                        .compare_and_set(&key, expected.clone(), sized(3, b'z'), ttl)
                        .await
                        .unwrap(),
                    "{what}"
                );
            }
        }
    }
}

/// `compare_and_set` keeps `created_at` and moves `updated_at`, as `set`
/// does; one from a value the row does not hold changes neither.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compare_and_set_keeps_created_at() {
    let store = match temp_store(false).await {
        Err(Skip(why)) => return skipped("compare_and_set_keeps_created_at", &why),
        Ok(store) => store.expect("a table is created"),
    };
    let hour = Some(Duration::from_secs(3600));
    store
        .set("k", Bytes::from_static(b"v1"), hour)
        .await
        .unwrap();
    let (created1, updated1) = audit_columns(&store.store).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        !store
            .compare_and_set(
                "k",
                Bytes::from_static(b"other"),
                Bytes::from_static(b"x"),
                hour
            )
            .await
            .unwrap()
    );
    assert_eq!(
        audit_columns(&store.store).await,
        (created1.clone(), updated1.clone())
    );
    assert!(
        store
            .compare_and_set(
                "k",
                Bytes::from_static(b"v1"),
                Bytes::from_static(b"v2"),
                hour
            )
            .await
            .unwrap()
    );
    let (created2, updated2) = audit_columns(&store.store).await;
    assert_eq!(created1, created2, "compare_and_set kept created_at");
    assert!(
        updated2 > updated1,
        "compare_and_set moved updated_at: {updated1} -> {updated2}"
    );
    assert_eq!(
        store.get("k", None).await.unwrap(),
        Some(Bytes::from_static(b"v2"))
    );
}

/// `delete_live` is true once for a live row (with or without expiry), and
/// false for a missing or an expired one; of many at once, exactly one is
/// true.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_live_reports_whether_the_row_was_live() {
    let store = match temp_store(false).await {
        Err(Skip(why)) => return skipped("delete_live_reports_whether_the_row_was_live", &why),
        Ok(store) => Arc::new(store.expect("a table is created")),
    };
    let v = || Bytes::from_static(b"v");
    for ttl in [Some(Duration::from_secs(600)), None] {
        store.set("live", v(), ttl).await.unwrap();
        assert!(store.delete_live("live").await.unwrap(), "{ttl:?}");
        assert!(!store.exists("live").await.unwrap());
        assert!(!store.delete_live("live").await.unwrap(), "{ttl:?}");
    }
    assert!(!store.delete_live("missing").await.unwrap());
    store
        .set("expired", v(), Some(Duration::from_millis(1)))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!store.delete_live("expired").await.unwrap());
    assert!(store.get("expired", None).await.unwrap().is_none());

    const TASKS: usize = 8;
    for round in 0..5 {
        let key = format!("race_{round}");
        store
            .set(&key, v(), Some(Duration::from_secs(600)))
            .await
            .unwrap();
        let barrier = Arc::new(tokio::sync::Barrier::new(TASKS));
        let tasks: Vec<_> = (0..TASKS)
            .map(|_| {
                let (store, barrier, key) = (store.clone(), barrier.clone(), key.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    store.delete_live(&key).await
                })
            })
            .collect();
        let mut won = 0;
        for task in tasks {
            won += usize::from(task.await.unwrap().expect("delete_live runs"));
        }
        assert_eq!(won, 1, "round {round}");
        assert!(!store.exists(&key).await.unwrap());
    }
}
