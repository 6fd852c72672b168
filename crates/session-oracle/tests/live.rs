//! Against a real Oracle database: the whole conformance suite and the
//! In-Memory check. Runs when ORACLE_TEST_DSN, ORACLE_TEST_USER and
//! ORACLE_TEST_PASSWORD are set (and the Oracle Instant Client is on the
//! loader path); otherwise every test here says it was skipped and why.
//!
//! ```text
//! ORACLE_TEST_DSN=localhost:1521/FREEPDB1 ORACLE_TEST_USER=app ORACLE_TEST_PASSWORD=... \
//!     cargo test -p session-oracle --test live
//! ```
//!
//! Each store gets a table of its own (`sess_t_<pid>_<n>`), dropped when the
//! store is dropped.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use session_conformance::{Skip, StoreFactory};
use session_core::{Result, Store};
use session_oracle::{ConnectOptions, InMemoryStatus, OracleStore, StoreSettings};

const VARS: [&str; 3] = [
    "ORACLE_TEST_DSN",
    "ORACLE_TEST_USER",
    "ORACLE_TEST_PASSWORD",
];

/// The connection settings, or why the live tests are skipped.
fn live_options() -> std::result::Result<ConnectOptions, String> {
    let values: Vec<Option<String>> = VARS
        .iter()
        .map(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
        .collect();
    match values.as_slice() {
        [Some(dsn), Some(user), Some(password)] => Ok(ConnectOptions::new(user, password, dsn)
            .pool_max(8)
            .connection_timeout(Duration::from_secs(30))),
        _ => Err("ORACLE_TEST_DSN, ORACLE_TEST_USER and ORACLE_TEST_PASSWORD are not set".into()),
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
    options: ConnectOptions,
    user: String,
    password: String,
}

impl Drop for TempTableStore {
    fn drop(&mut self) {
        let sql = self.store.statements().drop_table().to_owned();
        let (user, password) = (self.user.clone(), self.password.clone());
        let dsn = self.options.connect_string().to_owned();
        let dropped = std::thread::spawn(move || {
            oracle::Connection::connect(user, password, dsn)
                .and_then(|conn| conn.execute(&sql, &[]).map(|_| ()))
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            // ORA-00942: the table was never created (create_table failed).
            Ok(Err(err)) if err.oci_code() == Some(942) => {}
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
}

async fn temp_store(in_memory: bool) -> std::result::Result<Result<TempTableStore>, Skip> {
    let options = live_options().map_err(Skip)?;
    let user = std::env::var("ORACLE_TEST_USER").unwrap_or_default();
    let password = std::env::var("ORACLE_TEST_PASSWORD").unwrap_or_default();
    let settings = match StoreSettings::new().table_name(&unique_table()) {
        Ok(s) => s.in_memory(in_memory),
        Err(err) => return Ok(Err(err)),
    };
    let store = match OracleStore::connect(options.clone(), settings).await {
        Ok(store) => store,
        Err(err) => return Ok(Err(err)),
    };
    let temp = TempTableStore {
        store,
        options,
        user,
        password,
    };
    Ok(temp.store.create_table().await.map(|()| temp))
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
        // Unset variables: the conformance suite above says so, once.
        Err(_) => return,
        Ok(store) => store.expect("a plain table is created"),
    };
    assert_eq!(
        plain.store.in_memory_status().await.unwrap(),
        InMemoryStatus::Disabled
    );

    // A table that does not exist is reported as such.
    let settings = StoreSettings::new().table_name(&unique_table()).unwrap();
    let options = live_options().unwrap();
    let missing = OracleStore::connect(options, settings).await.unwrap();
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
        Err(_) => return,
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
