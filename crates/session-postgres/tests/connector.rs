//! [`PostgresConnector`]: opening a store from a URL and a config document,
//! against the test server (skipped, with a note, when there is none), and
//! refusing malformed URLs without repeating a password.

use std::sync::Arc;

use serde_json::{Value, json};
use session_core::{Bytes, Connector, Error, Store};
use session_postgres::PostgresConnector;

/// The test server's URL with a password in it (trust authentication
/// ignores it), or `None` when there is no server.
fn url_with_password() -> Option<String> {
    let url = session_test_support::pg_url_or_skip()?;
    let (scheme, rest) = url.split_once("://")?;
    Some(match rest.split_once('@') {
        Some((user, host)) if !user.contains(':') => format!("{scheme}://{user}:secret@{host}"),
        _ => url,
    })
}

struct Dropped {
    url: String,
    tables: Vec<String>,
}

impl Drop for Dropped {
    fn drop(&mut self) {
        let _ = session_test_support::drop_tables_blocking(&self.url, &self.tables);
    }
}

fn dropped(url: &str, table: &str) -> Dropped {
    Dropped {
        url: url.to_owned(),
        tables: vec![format!("{table}_migrations"), table.to_owned()],
    }
}

#[tokio::test]
async fn a_good_url_opens_a_working_store() {
    let Some(url) = url_with_password() else {
        return;
    };
    for (scheme, config) in [
        ("postgresql", json!({"table": "T", "pool_size": 2})),
        ("postgres", json!({"litestar": {"session_table": "T"}})),
    ] {
        let table = session_test_support::unique_table_name("connector");
        let _drop = dropped(&url, &table);
        let config: Value =
            serde_json::from_str(&config.to_string().replace("\"T\"", &format!("\"{table}\"")))
                .unwrap();
        let url = format!("{scheme}://{}", url.split_once("://").unwrap().1);
        let admin = PostgresConnector.open(&url, &config).await.unwrap();
        assert_eq!(admin.backend(), "postgres");
        assert_eq!(admin.location(), table);
        let described = admin.describe();
        assert!(described.contains(&table), "{described}");
        assert!(!described.contains("secret"), "{described}");
        assert!(!admin.session_table_exists().await.unwrap());
        assert_eq!(
            admin.migrate().await.unwrap().applied,
            ["ext_litestar_0001"]
        );
        assert!(admin.session_table_exists().await.unwrap());
        let store: Arc<dyn Store> = admin.clone();
        store
            .set("k", Bytes::from_static(b"v"), None)
            .await
            .unwrap();
        assert_eq!(
            store.get("k", None).await.unwrap(),
            Some(Bytes::from_static(b"v"))
        );
        assert_eq!(admin.cleanup().await.unwrap(), Some(0));
    }
}

#[tokio::test]
async fn a_malformed_url_is_invalid_config_without_the_password() {
    for (url, problem) in [
        (
            "postgres://u:secret@db:notaport/app",
            "invalid value for option `port`",
        ),
        (
            "postgresql://u:secret@db/app?sslmode=maybe",
            "invalid value for option `sslmode`",
        ),
        (
            "postgresql://u:secret@db/app?bogus_option=1",
            "unknown option `bogus_option`",
        ),
        (
            "host=db user=u password=secret port=notaport",
            "invalid value for option `port`",
        ),
        ("host=db user=u password=secret dbname", "unexpected EOF"),
        (
            "mysql://u:secret@db/app",
            "the scheme `mysql:` is not PostgreSQL's",
        ),
    ] {
        for result in [
            PostgresConnector.open(url, &Value::Null).await.map(drop),
            PostgresConnector.migration_sql(url, &Value::Null).map(drop),
        ] {
            match result {
                Err(Error::InvalidConfig { field, reason }) => {
                    assert_eq!(field, "url", "{url}");
                    assert!(reason.contains(problem), "{url}: {reason}");
                    assert!(!reason.contains("secret"), "{url}: {reason}");
                }
                other => panic!("{url}: expected InvalidConfig, got {other:?}"),
            }
        }
    }
}

#[tokio::test]
async fn a_bad_config_document_names_its_field() {
    let err = PostgresConnector
        .open("postgres://u@db/app", &json!({"fillfactor": 5}))
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("`fillfactor`"), "{err}");
    let err = PostgresConnector
        .migration_sql("postgres://u@db/app", &json!({"fill_factor": 90}))
        .unwrap_err();
    assert!(err.to_string().contains("fill_factor"), "{err}");
}

#[test]
fn migration_sql_needs_no_server() {
    // Nothing listens on port 1; the SQL is rendered all the same.
    let sql = PostgresConnector
        .migration_sql(
            "postgresql://app:secret@127.0.0.1:1/app",
            &json!({"table": "auth.sessions", "fillfactor": 90}),
        )
        .unwrap()
        .unwrap();
    assert!(
        sql.contains("CREATE TABLE IF NOT EXISTS auth.sessions_migrations"),
        "{sql}"
    );
    assert!(
        sql.contains("CREATE TABLE IF NOT EXISTS auth.sessions ("),
        "{sql}"
    );
    assert!(sql.contains("WITH (fillfactor = 90"), "{sql}");
    assert!(
        sql.contains("INSERT INTO auth.sessions_migrations"),
        "{sql}"
    );
    assert_eq!(PostgresConnector.schemes(), ["postgres", "postgresql"]);
    assert!(PostgresConnector.url_forms().contains("postgres://"));
}
