//! What is particular to PostgreSQL: the schema as SQLSpec has it, storage
//! parameters, concurrent `create_table`, the database clock, the pool and
//! the errors.

use std::error::Error as _;
use std::sync::Arc;
use std::time::Duration;

use session_core::{Bytes, Error, Store, StoreConfig};
use session_postgres::{PostgresConfig, PostgresStore};
use session_test_support::{connect, unique_table_name};

/// The test server, and the tables a test made (dropped when it ends).
struct Db {
    url: String,
    client: tokio_postgres::Client,
    tables: Vec<String>,
    schemas: Vec<String>,
}

impl Db {
    /// The test server, or `None` (after printing why) when there is none.
    async fn get() -> Option<Db> {
        let url = session_test_support::pg_url_or_skip()?;
        let client = connect(&url).await.expect("connect to the test server");
        Some(Db {
            url,
            client,
            tables: Vec::new(),
            schemas: Vec::new(),
        })
    }

    fn table(&mut self, prefix: &str) -> String {
        let name = unique_table_name(prefix);
        self.tables.push(name.clone());
        name
    }

    async fn schema(&mut self, prefix: &str) -> String {
        let name = unique_table_name(prefix);
        self.client
            .batch_execute(&format!("CREATE SCHEMA {name}"))
            .await
            .unwrap();
        self.schemas.push(name.clone());
        name
    }

    fn store(&self, config: PostgresConfig) -> PostgresStore {
        PostgresStore::from_url(&self.url, config).unwrap()
    }

    /// A store on a fresh table it created.
    async fn fresh_store(&mut self, prefix: &str) -> (PostgresStore, String) {
        let table = self.table(prefix);
        let store = self.store(on(&table));
        store.create_table().await.unwrap();
        (store, table)
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        let mut sql = String::new();
        for table in &self.tables {
            sql.push_str(&format!("DROP TABLE IF EXISTS {table};"));
        }
        for schema in &self.schemas {
            sql.push_str(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE;"));
        }
        // Blocking cleanup on a runtime of its own: Drop cannot await.
        if let Err(e) = session_test_support::execute_blocking(&self.url, &sql) {
            eprintln!(
                "could not drop {:?} and schemas {:?}: {e}",
                self.tables, self.schemas
            );
        }
    }
}

/// The default config on `table`.
fn on(table: &str) -> PostgresConfig {
    PostgresConfig {
        table: table.to_owned(),
        ..PostgresConfig::default()
    }
}

fn v(s: &'static str) -> Bytes {
    Bytes::from_static(s.as_bytes())
}

const HOUR: Option<Duration> = Some(Duration::from_secs(3600));

#[tokio::test]
async fn reloptions_carry_fillfactor_and_autovacuum_settings() {
    let Some(mut db) = Db::get().await else {
        return;
    };
    let (_, defaults) = db.fresh_store("reloptdef").await;
    let custom = db.table("reloptcustom");
    let store = db.store(
        PostgresConfig::from_value(serde_json::json!({"litestar": {
            "session_table": custom,
            "fillfactor": 70,
            "autovacuum_vacuum_scale_factor": 0.1,
            "autovacuum_analyze_scale_factor": 0.5,
        }}))
        .unwrap(),
    );
    store.create_table().await.unwrap();

    for (table, expected) in [
        (
            &defaults,
            [
                "fillfactor=80",
                "autovacuum_vacuum_scale_factor=0.05",
                "autovacuum_analyze_scale_factor=0.02",
            ],
        ),
        (
            &custom,
            [
                "fillfactor=70",
                "autovacuum_vacuum_scale_factor=0.1",
                "autovacuum_analyze_scale_factor=0.5",
            ],
        ),
    ] {
        let row = db
            .client
            .query_one(
                "SELECT reloptions FROM pg_class WHERE oid = $1::text::regclass",
                &[table],
            )
            .await
            .unwrap();
        let mut options: Vec<String> = row.get(0);
        options.sort();
        let mut expected = expected.map(String::from).to_vec();
        expected.sort();
        assert_eq!(options, expected, "reloptions of {table}");
    }
}

#[tokio::test]
async fn the_expiry_index_is_partial() {
    let Some(mut db) = Db::get().await else {
        return;
    };
    let (_, table) = db.fresh_store("partialidx").await;
    let row = db
        .client
        .query_one(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = $1 AND indexname <> $2",
            &[&table, &format!("{table}_pkey")],
        )
        .await
        .unwrap();
    let name: String = row.get(0);
    let def: String = row.get(1);
    assert_eq!(name, format!("idx_{table}_expires_at"));
    assert!(
        def.starts_with(&format!("CREATE INDEX idx_{table}_expires_at ON "))
            && def.ends_with(&format!(
                ".{table} USING btree (expires_at) WHERE (expires_at IS NOT NULL)"
            )),
        "{def}"
    );
}

#[tokio::test]
async fn columns_and_types_match_the_seed() {
    let Some(mut db) = Db::get().await else {
        return;
    };
    let (_, table) = db.fresh_store("columns").await;
    let rows = db
        .client
        .query(
            "SELECT column_name::text, data_type::text, is_nullable::text, column_default::text \
             FROM information_schema.columns WHERE table_name = $1 ORDER BY ordinal_position",
            &[&table],
        )
        .await
        .unwrap();
    let columns: Vec<(String, String, String, Option<String>)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    let tz = "timestamp with time zone";
    let now = Some("CURRENT_TIMESTAMP".to_owned());
    assert_eq!(
        columns,
        vec![
            ("session_id".into(), "text".into(), "NO".into(), None),
            ("data".into(), "bytea".into(), "NO".into(), None),
            ("expires_at".into(), tz.into(), "YES".into(), None),
            ("created_at".into(), tz.into(), "NO".into(), now.clone()),
            ("updated_at".into(), tz.into(), "NO".into(), now),
        ]
    );
    let pk: String = db
        .client
        .query_one(
            "SELECT a.attname::text FROM pg_index i \
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) \
             WHERE i.indrelid = $1::text::regclass AND i.indisprimary",
            &[&table],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(pk, "session_id");
}

#[tokio::test]
async fn eight_instances_creating_the_table_at_once_all_succeed() {
    let Some(mut db) = Db::get().await else {
        return;
    };
    let table = db.table("createrace");
    // Eight application instances: eight stores, eight pools.
    let stores: Vec<PostgresStore> = (0..8).map(|_| db.store(on(&table))).collect();
    let barrier = Arc::new(tokio::sync::Barrier::new(8));
    let tasks: Vec<_> = stores
        .into_iter()
        .map(|store| {
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                store.create_table().await
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let store = db.store(on(&table));
    store.create_table().await.unwrap(); // and once more, later
    store.set("k", v("v"), None).await.unwrap();
    assert_eq!(store.get("k", None).await.unwrap(), Some(v("v")));
}

#[tokio::test]
async fn a_table_made_by_sqlspec_is_used_as_is() {
    let Some(mut db) = Db::get().await else {
        return;
    };
    let table = db.table("sqlspec");
    // The seed's DDL, verbatim but for the name.
    db.client
        .batch_execute(&format!(
            "CREATE TABLE {table} (
                session_id TEXT PRIMARY KEY,
                data BYTEA NOT NULL,
                expires_at TIMESTAMPTZ,
                created_at TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP,
                updated_at TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP
            ) WITH (fillfactor = 80);
            CREATE INDEX idx_{table}_expires_at
            ON {table}(expires_at) WHERE expires_at IS NOT NULL;"
        ))
        .await
        .unwrap();
    // Rows as SQLSpec writes them: JSON bytes, absolute expiry.
    db.client
        .execute(
            &format!(
                "INSERT INTO {table} (session_id, data, expires_at) VALUES \
                 ('live', $1, now() + interval '1 hour'), \
                 ('permanent', $2, NULL), \
                 ('expired', $3, now() - interval '1 second')"
            ),
            &[
                &br#"{"user_id": 1}"#.as_slice(),
                &br#"{"theme": "dark"}"#.as_slice(),
                &b"{}".as_slice(),
            ],
        )
        .await
        .unwrap();

    let store = db.store(on(&table));
    store.create_table().await.unwrap(); // leaves it as it is
    assert_eq!(
        store.get("live", None).await.unwrap(),
        Some(v(r#"{"user_id": 1}"#))
    );
    assert_eq!(
        store
            .get("permanent", Some(Duration::from_secs(60)))
            .await
            .unwrap(),
        Some(v(r#"{"theme": "dark"}"#))
    );
    assert_eq!(store.get("expired", None).await.unwrap(), None);
    assert!(!store.exists("expired").await.unwrap());
    let ttl = store.expires_in("live").await.unwrap().unwrap();
    assert!(
        ttl > Duration::from_secs(3500) && ttl <= Duration::from_secs(3600),
        "{ttl:?}"
    );
    assert_eq!(store.expires_in("permanent").await.unwrap(), None);
    assert_eq!(store.delete_expired().await.unwrap(), 1);

    // And what the store writes, SQLSpec reads.
    store.set("ours", v(r#"{"a": 2}"#), HOUR).await.unwrap();
    let row = db
        .client
        .query_one(
            &format!("SELECT data, expires_at > now() FROM {table} WHERE session_id = 'ours'"),
            &[],
        )
        .await
        .unwrap();
    let data: Vec<u8> = row.get(0);
    let live: bool = row.get(1);
    assert_eq!(data, br#"{"a": 2}"#);
    assert!(live);
    // The hand-made table kept its own settings.
    let options: Vec<String> = db
        .client
        .query_one(
            "SELECT reloptions FROM pg_class WHERE oid = $1::text::regclass",
            &[&table],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(options, vec!["fillfactor=80".to_owned()]);
}

#[tokio::test]
async fn expiry_follows_the_database_clock() {
    let Some(mut db) = Db::get().await else {
        return;
    };
    let (store, table) = db.fresh_store("dbclock").await;
    store.set("k", v("v"), HOUR).await.unwrap();
    let row = db
        .client
        .query_one(
            &format!(
                "SELECT EXTRACT(EPOCH FROM expires_at - now())::float8, \
                        EXTRACT(EPOCH FROM expires_at - created_at)::float8 \
                 FROM {table} WHERE session_id = 'k'"
            ),
            &[],
        )
        .await
        .unwrap();
    let remaining: f64 = row.get(0);
    let since_write: f64 = row.get(1);
    assert!(remaining > 3590.0 && remaining <= 3600.0, "{remaining}");
    // Computed in the same statement as created_at: exactly the hour.
    assert!((since_write - 3600.0).abs() < 1e-6, "{since_write}");

    // Moving the row's expiry one second into the past by the database's
    // clock makes it invisible, whatever this machine's clock says.
    db.client
        .execute(
            &format!(
                "UPDATE {table} SET expires_at = now() - interval '1 second' WHERE session_id = 'k'"
            ),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(store.get("k", None).await.unwrap(), None);
    assert_eq!(store.get("k", HOUR).await.unwrap(), None);
    assert!(!store.update("k", v("w"), HOUR).await.unwrap());
    assert!(store.create("k", v("new"), HOUR).await.unwrap());

    // A renewal is computed on the database too.
    store.get("k", Some(Duration::from_secs(60))).await.unwrap();
    let remaining: f64 = db
        .client
        .query_one(
            &format!(
                "SELECT EXTRACT(EPOCH FROM expires_at - now())::float8 FROM {table} WHERE session_id = 'k'"
            ),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(remaining > 50.0 && remaining <= 60.0, "{remaining}");
}

#[tokio::test]
async fn set_keeps_created_at_and_create_over_expired_row_renews_it() {
    let Some(mut db) = Db::get().await else {
        return;
    };
    let (store, table) = db.fresh_store("audit").await;
    let stamps = |key: &'static str| {
        let sql = format!(
            "SELECT created_at = updated_at, created_at < now() - interval '30 minutes' \
             FROM {table} WHERE session_id = '{key}'"
        );
        let client = &db.client;
        async move {
            let row = client.query_one(&sql, &[]).await.unwrap();
            (row.get::<_, bool>(0), row.get::<_, bool>(1))
        }
    };
    store.set("k", v("1"), HOUR).await.unwrap();
    db.client
        .execute(
            &format!(
                "UPDATE {table} SET created_at = now() - interval '1 hour', \
                 updated_at = now() - interval '1 hour'"
            ),
            &[],
        )
        .await
        .unwrap();
    store.set("k", v("2"), HOUR).await.unwrap();
    // created_at survived the upsert; updated_at moved.
    assert_eq!(stamps("k").await, (false, true));
    assert!(store.update("k", v("3"), HOUR).await.unwrap());
    assert_eq!(stamps("k").await, (false, true));

    // An expired row replaced by create is a new session.
    db.client
        .execute(
            &format!("UPDATE {table} SET expires_at = now() - interval '1 second'"),
            &[],
        )
        .await
        .unwrap();
    assert!(store.create("k", v("new"), HOUR).await.unwrap());
    assert_eq!(stamps("k").await, (true, false));
}

#[tokio::test]
async fn delete_expired_works_in_batches_and_spares_live_rows() {
    let Some(mut db) = Db::get().await else {
        return;
    };
    let table = db.table("batches");
    let store = db.store(PostgresConfig {
        cleanup_batch_size: 3,
        ..on(&table)
    });
    store.create_table().await.unwrap();
    db.client
        .batch_execute(&format!(
            "INSERT INTO {table} (session_id, data, expires_at)
               SELECT 'expired' || i, '\\x00', now() - interval '1 minute' FROM generate_series(1, 10) i;
             INSERT INTO {table} (session_id, data, expires_at)
               SELECT 'live' || i, '\\x00', now() + interval '1 hour' FROM generate_series(1, 4) i;
             INSERT INTO {table} (session_id, data) VALUES ('permanent', '\\x00');"
        ))
        .await
        .unwrap();
    // 10 rows in batches of 3: 3, 3, 3, 1.
    assert_eq!(store.delete_expired().await.unwrap(), 10);
    let left: i64 = db
        .client
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 5);
    assert!(store.exists("permanent").await.unwrap());
    assert!(store.exists("live4").await.unwrap());
    assert_eq!(store.delete_expired().await.unwrap(), 0);

    // Exactly one batch's worth: the loop runs a second, empty batch.
    db.client
        .batch_execute(&format!(
            "INSERT INTO {table} (session_id, data, expires_at)
               SELECT 'again' || i, '\\x00', now() - interval '1 minute' FROM generate_series(1, 3) i;"
        ))
        .await
        .unwrap();
    assert_eq!(store.delete_expired().await.unwrap(), 3);
}

#[tokio::test]
async fn a_table_mostly_expired_is_swept_in_chunks_sparing_live_rows() {
    let Some(mut db) = Db::get().await else {
        return;
    };
    let table = db.table("sweep");
    let store = db.store(PostgresConfig {
        cleanup_batch_size: 1_000,
        ..on(&table)
    });
    store.create_table().await.unwrap();
    // 12,000 rows of 1 KiB (well over the sweep's minimum of pages), every
    // other one expired, some live ones without expiry; statistics fresh,
    // so the planner counts half the table expired and the store sweeps.
    db.client
        .batch_execute(&format!(
            "INSERT INTO {table} (session_id, data, expires_at)
               SELECT 's' || i, decode(repeat('ab', 1024), 'hex'),
                      CASE WHEN i % 2 = 0 THEN now() - interval '1 minute'
                           WHEN i % 10 = 1 THEN NULL
                           ELSE now() + interval '1 hour' END
               FROM generate_series(0, 11999) i;"
        ))
        .await
        .unwrap();
    db.client
        .batch_execute(&format!("VACUUM ANALYZE {table}"))
        .await
        .unwrap();
    assert_eq!(store.delete_expired().await.unwrap(), 6_000);
    let (left, expired): (i64, i64) = {
        let row = db
            .client
            .query_one(
                &format!(
                    "SELECT count(*), count(*) FILTER (WHERE expires_at <= now()) FROM {table}"
                ),
                &[],
            )
            .await
            .unwrap();
        (row.get(0), row.get(1))
    };
    assert_eq!((left, expired), (6_000, 0));
    assert!(store.exists("s1").await.unwrap());
    assert!(store.exists("s11999").await.unwrap());
    assert_eq!(store.delete_expired().await.unwrap(), 0);
}

#[tokio::test]
async fn a_pool_of_one_serves_fifty_concurrent_callers() {
    let Some(mut db) = Db::get().await else {
        return;
    };
    let table = db.table("poolofone");
    let store = Arc::new(db.store(PostgresConfig {
        pool_size: 1,
        wait_timeout: Duration::from_secs(60),
        ..on(&table)
    }));
    store.create_table().await.unwrap();
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let key = format!("k{i}");
                store.set(&key, Bytes::from(format!("v{i}")), HOUR).await?;
                store.get(&key, HOUR).await
            })
        })
        .collect();
    for (i, task) in tasks.into_iter().enumerate() {
        let got = task.await.unwrap().unwrap();
        assert_eq!(got, Some(Bytes::from(format!("v{i}"))));
    }
    assert_eq!(store.pool().status().max_size, 1);
}

#[tokio::test]
async fn a_schema_qualified_table_works() {
    let Some(mut db) = Db::get().await else {
        return;
    };
    let schema = db.schema("auth").await;
    let table = unique_table_name("sessions");
    let store = db.store(
        PostgresConfig::from_json_str(&format!(
            r#"{{"litestar": {{"session_table": "{schema}.{table}"}}}}"#
        ))
        .unwrap(),
    );
    assert_eq!(store.table().schema(), Some(schema.as_str()));
    store.create_table().await.unwrap();
    store.create_table().await.unwrap();
    store.set("k", v("v"), HOUR).await.unwrap();
    assert_eq!(store.get("k", HOUR).await.unwrap(), Some(v("v")));
    let row = db
        .client
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE schemaname = $1 AND tablename = $2",
            &[&schema, &table],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 1);
    let index: i64 = db
        .client
        .query_one(
            "SELECT count(*) FROM pg_indexes WHERE schemaname = $1 AND indexname = $2",
            &[&schema, &format!("idx_{table}_expires_at")],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(index, 1);
    // The same name unqualified is another table: absent from the search path.
    let public = db.store(on(&table));
    let err = public.get("k", None).await.unwrap_err();
    assert!(matches!(err, Error::Backend { .. }), "{err:?}");
}

#[test]
fn unknown_keys_and_bad_values_are_refused_by_name() {
    let err = PostgresConfig::from_json_str(
        r#"{"litestar": {"session_table": "s", "fill_factor": 80, "in_memory": true}}"#,
    )
    .unwrap_err();
    match &err {
        Error::UnknownConfigKeys { unknown, .. } => {
            assert_eq!(unknown, &["fill_factor", "in_memory"])
        }
        other => panic!("expected UnknownConfigKeys, got {other:?}"),
    }
    for (doc, field) in [
        (r#"{"litestar": {"fillfactor": 9}}"#, "litestar.fillfactor"),
        (
            r#"{"litestar": {"fillfactor": 101}}"#,
            "litestar.fillfactor",
        ),
        (
            r#"{"litestar": {"fillfactor": "80"}}"#,
            "litestar.fillfactor",
        ),
        (
            r#"{"litestar": {"autovacuum_vacuum_scale_factor": 1.5}}"#,
            "litestar.autovacuum_vacuum_scale_factor",
        ),
        (
            r#"{"litestar": {"autovacuum_analyze_scale_factor": -0.1}}"#,
            "litestar.autovacuum_analyze_scale_factor",
        ),
    ] {
        match PostgresConfig::from_json_str(doc) {
            Err(Error::InvalidConfig { field: f, .. }) => assert_eq!(f, field, "{doc}"),
            other => panic!("{doc}: expected InvalidConfig, got {other:?}"),
        }
    }
    for name in ["a;b", "a.b.c", "x.\"y\"", &"t".repeat(49)] {
        let doc = serde_json::json!({"litestar": {"session_table": name}});
        assert!(
            matches!(
                PostgresConfig::from_value(doc),
                Err(Error::InvalidIdentifier { .. })
            ),
            "{name}"
        );
    }
    let in_code = |config: PostgresConfig| config.validate();
    assert!(
        in_code(PostgresConfig {
            fillfactor: 5,
            ..PostgresConfig::default()
        })
        .is_err()
    );
    assert!(
        in_code(PostgresConfig {
            cleanup_batch_size: 0,
            ..PostgresConfig::default()
        })
        .is_err()
    );
    let toml = PostgresConfig::from_toml_str(
        "[litestar]\nsession_table = \"app.sessions\"\nfillfactor = 100\n",
    )
    .unwrap();
    assert_eq!(toml.fillfactor, 100);
    assert_eq!(toml.table, "app.sessions");
}

#[tokio::test]
async fn a_missing_table_is_a_backend_error_with_its_sqlstate() {
    let Some(mut db) = Db::get().await else {
        return;
    };
    let table = db.table("nosuchtable");
    let store = db.store(on(&table));
    let err = store.get("k", None).await.unwrap_err();
    let Error::Backend { context, .. } = &err else {
        panic!("expected Error::Backend, got {err:?}")
    };
    assert!(context.contains(&table), "{context}");
    assert!(context.contains("42P01"), "{context}");
    let source = err
        .source()
        .and_then(|s| s.downcast_ref::<tokio_postgres::Error>())
        .expect("the driver's error is the source");
    assert_eq!(
        source.code(),
        Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE)
    );
}

#[tokio::test]
async fn a_refused_connection_names_the_address_not_the_password() {
    // A port nothing listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let store = PostgresStore::from_url(
        &format!("postgresql://app:hunter2@127.0.0.1:{port}/app"),
        PostgresConfig::default(),
    )
    .unwrap();
    let err = store.get("k", None).await.unwrap_err();
    let Error::Connection { context, .. } = &err else {
        panic!("expected Error::Connection, got {err:?}")
    };
    assert!(context.contains(&format!("127.0.0.1:{port}")), "{context}");
    assert!(!format!("{err:?}").contains("hunter2"), "{err:?}");
    assert!(err.is_transient());
}

#[tokio::test]
async fn an_exhausted_pool_is_a_pool_timeout() {
    let Some(mut db) = Db::get().await else {
        return;
    };
    let table = db.table("pooltimeout");
    let wait = Duration::from_millis(200);
    let store = db.store(PostgresConfig {
        pool_size: 1,
        wait_timeout: wait,
        ..on(&table)
    });
    store.create_table().await.unwrap();
    let held = store.pool().get().await.unwrap();
    match store.get("k", None).await {
        // The wait it really had: the wait timeout, and a little more.
        Err(Error::PoolTimeout { waited, .. }) => {
            assert!(waited >= wait, "{waited:?}");
            assert!(waited < wait + Duration::from_secs(1), "{waited:?}");
        }
        other => panic!("expected Error::PoolTimeout, got {other:?}"),
    }
    drop(held);
    assert_eq!(store.get("k", None).await.unwrap(), None);
}

#[tokio::test]
async fn calls_succeed_again_after_the_database_comes_back() {
    let Some(cluster) = session_test_support::throwaway_cluster_or_skip() else {
        return;
    };
    let store = PostgresStore::from_url(
        &cluster.url(),
        PostgresConfig {
            pool_size: 4,
            ..PostgresConfig::default()
        },
    )
    .unwrap();
    store.create_table().await.unwrap();
    store.set("k", v("v"), None).await.unwrap();

    cluster.stop().unwrap();
    let err = store.get("k", None).await.unwrap_err();
    assert!(
        matches!(err, Error::Connection { .. }),
        "expected Error::Connection while the database is down, got {err:?}"
    );
    cluster.restart().unwrap();
    // The broken connections are discarded and new ones made.
    assert_eq!(store.get("k", None).await.unwrap(), Some(v("v")));

    // And after a crash.
    cluster.kill().unwrap();
    assert!(store.exists("k").await.unwrap_err().is_transient());
    cluster.restart().unwrap();
    assert!(store.exists("k").await.unwrap());
}

/// `(data, created_at moved since the backdating, updated_at moved,
/// expires_at - updated_at in seconds)` of `key`; `expires_at` and
/// `updated_at` of one write are both the statement's `now()`.
async fn audit(client: &tokio_postgres::Client, table: &str, key: &str) -> Row {
    let row = client
        .query_one(
            &format!(
                "SELECT data, created_at > now() - interval '30 minutes', \
                        updated_at > now() - interval '30 minutes', \
                        EXTRACT(EPOCH FROM expires_at - updated_at)::float8 \
                 FROM {table} WHERE session_id = $1"
            ),
            &[&key],
        )
        .await
        .unwrap();
    Row {
        data: Bytes::copy_from_slice(row.get::<_, &[u8]>(0)),
        created_moved: row.get(1),
        updated_moved: row.get(2),
        ttl: row.get(3),
    }
}

#[derive(Debug, PartialEq)]
struct Row {
    data: Bytes,
    created_moved: bool,
    updated_moved: bool,
    ttl: Option<f64>,
}

/// Backdates `created_at` and `updated_at` of every row by an hour.
async fn backdate(client: &tokio_postgres::Client, table: &str) {
    client
        .execute(
            &format!(
                "UPDATE {table} SET created_at = now() - interval '1 hour', \
                 updated_at = now() - interval '1 hour'"
            ),
            &[],
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn compare_and_set_writes_like_update_and_rounds_up_to_microseconds() {
    let Some(mut db) = Db::get().await else {
        return;
    };
    let (store, table) = db.fresh_store("cas").await;
    store.set("k", v("loaded"), HOUR).await.unwrap();
    backdate(&db.client, &table).await;

    // Another value than the stored one: nothing written, not even updated_at.
    assert!(
        !store
            .compare_and_set("k", v("stale"), v("new"), HOUR)
            .await
            .unwrap()
    );
    // A prefix of the stored value is another value too.
    assert!(
        !store
            .compare_and_set("k", v("load"), v("new"), HOUR)
            .await
            .unwrap()
    );
    let before = audit(&db.client, &table, "k").await;
    assert_eq!((before.data, before.updated_moved), (v("loaded"), false));

    // The stored value: written; created_at kept, updated_at moved, the
    // expiry the hour from the statement's now().
    assert!(
        store
            .compare_and_set("k", v("loaded"), v("new"), HOUR)
            .await
            .unwrap()
    );
    assert_eq!(
        audit(&db.client, &table, "k").await,
        Row {
            data: v("new"),
            created_moved: false,
            updated_moved: true,
            ttl: Some(3600.0),
        }
    );

    // Rounded up to whole microseconds, as `set` does: 1 ns is 1 µs, 1.5 µs
    // is 2 µs; None and zero mean no expiry.
    let cases = [
        (Some(Duration::from_nanos(1)), Some(1e-6)),
        (Some(Duration::from_nanos(1_500)), Some(2e-6)),
        (None, None),
        (Some(Duration::ZERO), None),
        (Some(Duration::from_millis(1_500)), Some(1.5)),
    ];
    let mut current = v("new");
    for (i, (expires_in, ttl)) in cases.into_iter().enumerate() {
        let next = Bytes::from(format!("v{i}"));
        // Re-arm: a 1 µs expiry is over by the next statement.
        store.set("k", current.clone(), None).await.unwrap();
        assert!(
            store
                .compare_and_set("k", current, next.clone(), expires_in)
                .await
                .unwrap(),
            "{expires_in:?}"
        );
        let row = audit(&db.client, &table, "k").await;
        assert_eq!(row.data, next);
        match (row.ttl, ttl) {
            (Some(got), Some(want)) => assert!((got - want).abs() < 1e-9, "{got} vs {want}"),
            (got, want) => assert_eq!(got, want, "{expires_in:?}"),
        }
        current = next;
    }

    // The empty value is a value: compared and written like any other.
    store.set("e", Bytes::new(), HOUR).await.unwrap();
    assert!(
        !store
            .compare_and_set("e", v("x"), v("y"), HOUR)
            .await
            .unwrap()
    );
    assert!(
        store
            .compare_and_set("e", Bytes::new(), Bytes::new(), HOUR)
            .await
            .unwrap()
    );
    assert_eq!(store.get("e", None).await.unwrap(), Some(Bytes::new()));
}

#[tokio::test]
async fn an_expired_row_is_neither_compared_nor_deleted_live_by_the_database_clock() {
    let Some(mut db) = Db::get().await else {
        return;
    };
    let (store, table) = db.fresh_store("casexp").await;
    store.set("k", v("loaded"), HOUR).await.unwrap();
    // Expired by the database's clock, whatever this machine's says.
    db.client
        .execute(
            &format!(
                "UPDATE {table} SET expires_at = now() - interval '1 second' WHERE session_id = 'k'"
            ),
            &[],
        )
        .await
        .unwrap();
    assert!(
        !store
            .compare_and_set("k", v("loaded"), v("new"), HOUR)
            .await
            .unwrap()
    );
    assert!(
        !store
            .compare_and_set("k", v("loaded"), v("new"), None)
            .await
            .unwrap()
    );
    assert!(!store.delete_live("k").await.unwrap());
    // Left as it was, for cleanup: not revived, not rewritten.
    let row = db
        .client
        .query_one(
            &format!("SELECT data, expires_at <= now() FROM {table} WHERE session_id = 'k'"),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, &[u8]>(0), b"loaded");
    assert!(row.get::<_, bool>(1));
    assert_eq!(store.delete_expired().await.unwrap(), 1);

    // Missing: false, and nothing is inserted.
    assert!(
        !store
            .compare_and_set("gone", v("loaded"), v("new"), HOUR)
            .await
            .unwrap()
    );
    assert!(!store.delete_live("gone").await.unwrap());
    let count: i64 = db
        .client
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 0);

    // Live, with and without expiry: removed once.
    store.set("a", v("1"), HOUR).await.unwrap();
    store.set("b", v("1"), None).await.unwrap();
    for key in ["a", "b"] {
        assert!(store.delete_live(key).await.unwrap(), "{key}");
        assert!(!store.delete_live(key).await.unwrap(), "{key}");
        assert!(!store.exists(key).await.unwrap(), "{key}");
    }
}

/// Waits until a statement on `table` other than `watcher`'s waits for a
/// row lock.
async fn until_blocked(watcher: &tokio_postgres::Client, table: &str) {
    for _ in 0..500 {
        let waiting: i64 = watcher
            .query_one(
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE wait_event_type = 'Lock' AND query LIKE '%' || $1 || '%' \
                   AND pid <> pg_backend_pid()",
                &[&table],
            )
            .await
            .unwrap()
            .get(0);
        if waiting > 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no statement on {table} waited for the row lock");
}

#[tokio::test]
async fn a_blocked_compare_and_set_rechecks_the_row_the_other_writer_committed() {
    let Some(mut db) = Db::get().await else {
        return;
    };
    let (store, table) = db.fresh_store("casrace").await;
    let watcher = connect(&db.url).await.unwrap();

    // What the other transaction does to the loaded row, how it ends, and
    // whether the compare-and-set / delete_live waiting behind it then
    // writes: each re-checks its whole WHERE clause on the committed row.
    let cases: [(&str, &str, bool, bool); 5] = [
        // Changed: the compare-and-set loses; the row is still live.
        (
            "UPDATE {t} SET data = 'other' WHERE session_id = 'k'",
            "COMMIT",
            false,
            true,
        ),
        (
            "UPDATE {t} SET data = 'other' WHERE session_id = 'k'",
            "ROLLBACK",
            true,
            true,
        ),
        (
            "UPDATE {t} SET expires_at = now() - interval '1 second' WHERE session_id = 'k'",
            "COMMIT",
            false,
            false,
        ),
        (
            "DELETE FROM {t} WHERE session_id = 'k'",
            "COMMIT",
            false,
            false,
        ),
        // The same value written again: the row still holds what was loaded.
        (
            "UPDATE {t} SET data = 'loaded' WHERE session_id = 'k'",
            "COMMIT",
            true,
            true,
        ),
    ];
    for (change, end, cas_wins, delete_live_wins) in cases {
        let change = change.replace("{t}", &table);
        // What the other transaction leaves, if the waiting call writes nothing.
        let left = if end == "ROLLBACK" {
            Some(v("loaded"))
        } else if change.starts_with("DELETE") || change.contains("expires_at") {
            None
        } else if change.contains("'other'") {
            Some(v("other"))
        } else {
            Some(v("loaded"))
        };
        for (op, wins, then) in [
            ("compare_and_set", cas_wins, Some(v("mine"))),
            ("delete_live", delete_live_wins, None),
        ] {
            store.set("k", v("loaded"), HOUR).await.unwrap();
            db.client
                .batch_execute(&format!("BEGIN; {change}"))
                .await
                .unwrap();
            let waiting = {
                let store = store.clone();
                tokio::spawn(async move {
                    match op {
                        "compare_and_set" => {
                            store
                                .compare_and_set("k", v("loaded"), v("mine"), HOUR)
                                .await
                        }
                        _ => store.delete_live("k").await,
                    }
                })
            };
            until_blocked(&watcher, &table).await;
            db.client.batch_execute(end).await.unwrap();
            let won = waiting.await.unwrap().unwrap();
            assert_eq!(won, wins, "{op} after `{change}; {end}`");
            let expected = if wins { then } else { left.clone() };
            assert_eq!(
                store.get("k", None).await.unwrap(),
                expected,
                "{op} after `{change}; {end}`"
            );
            store.delete("k").await.unwrap();
        }
    }
}

#[tokio::test]
async fn of_many_concurrent_compare_and_sets_and_delete_lives_exactly_one_wins() {
    let Some(mut db) = Db::get().await else {
        return;
    };
    let (store, _table) = db.fresh_store("casmany").await;
    let store = Arc::new(store);
    for round in 0..5 {
        store.set("k", v("loaded"), HOUR).await.unwrap();
        let tasks: Vec<_> = (0..32)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    let mine = Bytes::from(format!("task {i}"));
                    let won = store
                        .compare_and_set("k", v("loaded"), mine.clone(), HOUR)
                        .await
                        .unwrap();
                    won.then_some(mine)
                })
            })
            .collect();
        let mut winners = Vec::new();
        for task in tasks {
            winners.extend(task.await.unwrap());
        }
        assert_eq!(winners.len(), 1, "round {round}: {winners:?}");
        assert_eq!(store.get("k", None).await.unwrap(), winners.pop());

        let tasks: Vec<_> = (0..32)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move { store.delete_live("k").await.unwrap() })
            })
            .collect();
        let mut won = 0;
        for task in tasks {
            won += usize::from(task.await.unwrap());
        }
        assert_eq!(won, 1, "round {round}");
        assert!(!store.exists("k").await.unwrap());
    }
}

#[tokio::test]
async fn compare_and_set_and_delete_live_errors_name_the_operation_not_the_key() {
    let Some(mut db) = Db::get().await else {
        return;
    };
    let table = db.table("nosuchtable");
    let store = db.store(on(&table));
    let key = "secret-session-id";
    let errors = [
        (
            "compare_and_set",
            store
                .compare_and_set(key, v("secret-expected"), v("secret-value"), HOUR)
                .await
                .unwrap_err(),
        ),
        ("delete_live", store.delete_live(key).await.unwrap_err()),
    ];
    for (op, err) in errors {
        let Error::Backend { context, .. } = &err else {
            panic!("expected Error::Backend, got {err:?}")
        };
        assert!(
            context.starts_with(&format!("{op} on {table}")),
            "{context}"
        );
        assert!(context.contains("42P01"), "{context}");
        let text = format!("{err} {err:?}");
        assert!(!text.contains("secret"), "{text}");
    }
    // Invalid keys never reach the database (which has no table here).
    for bad in ["", "a\0b"] {
        let err = store
            .compare_and_set(bad, v("a"), v("b"), HOUR)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidKey { .. }), "{err:?}");
        let err = store.delete_live(bad).await.unwrap_err();
        assert!(matches!(err, Error::InvalidKey { .. }), "{err:?}");
    }
}
