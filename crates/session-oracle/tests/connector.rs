//! `OracleConnector`, the `oracle:` row of the scheme table, offline: a
//! good URL gets as far as the driver (DPI-1047 here, without the client
//! library; a connection error on a machine with one), a malformed URL or
//! config is refused by name without echoing a password, and the migration
//! SQL needs no connection.

use std::error::Error as _;
use std::process::Command;
use std::sync::Arc;

use serde_json::{Value, json};
use session_core::{Connector, Error, StoreAdmin};
use session_oracle::{Credentials, OracleConnector};

/// Nothing listens on port 1 of the loopback address.
const NOWHERE: &str = "oracle://app@127.0.0.1:1/nothing";

/// The password this test puts in ORACLE_PASSWORD of its child process.
const PASSWORD: &str = "pw-from-the-environment";

const CHILD: &str = "SESSION_ORACLE_CONNECTOR_TEST_CHILD";

fn client_library_present() -> bool {
    match oracle::InitParams::new().init() {
        Ok(_) => true,
        Err(err) => err.dpi_code() != Some(1047),
    }
}

fn field_of(err: &Error) -> &str {
    match err {
        Error::InvalidConfig { field, .. } => field,
        other => panic!("expected InvalidConfig, got {other:?}"),
    }
}

/// Setting a variable in this process is `unsafe` (edition 2024) and this
/// workspace forbids `unsafe`: the test runs itself again in a child
/// process with ORACLE_PASSWORD set, and checks it there.
#[test]
fn a_good_url_with_oracle_password_reaches_the_driver() {
    if std::env::var_os(CHILD).is_none() {
        let output = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "a_good_url_with_oracle_password_reaches_the_driver",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD, "1")
            .env("ORACLE_PASSWORD", PASSWORD)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "the child run failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(stdout.contains("1 passed"), "{stdout}");
        return;
    }
    let credentials = Credentials::from_url(NOWHERE).unwrap();
    assert_eq!(credentials.user(), "app");
    assert_eq!(credentials.connect_string(), "127.0.0.1:1/nothing");
    assert!(!format!("{credentials:?}").contains(PASSWORD));

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let config = json!({"table": "app_sessions", "connect_timeout": "20s"});
    let Err(err) = runtime.block_on(OracleConnector.open(NOWHERE, &config)) else {
        panic!("no database listens there");
    };
    let chain = session_core::error_chain(&err);
    println!("{chain}");
    assert!(
        !chain.contains(PASSWORD),
        "never prints the password: {chain}"
    );
    assert!(
        chain.contains("127.0.0.1:1/nothing"),
        "names the address: {chain}"
    );
    if client_library_present() {
        assert!(matches!(err, Error::Connection { .. }), "{chain}");
    } else {
        assert!(matches!(err, Error::Backend { .. }), "{chain}");
        assert!(err.to_string().contains("Oracle Instant Client"), "{chain}");
        let cause = err.source().expect("the driver error is the source");
        assert!(cause.to_string().contains("DPI-1047"), "{chain}");
    }
}

#[tokio::test(flavor = "current_thread")]
async fn malformed_urls_and_configs_are_refused_before_connecting() {
    let connector: &dyn Connector = &OracleConnector;
    for url in [
        "oracle://app:s3cret@db:1521/FREEPDB1",
        "oracle://db:1521/FREEPDB1",
        "oracle://app@db:1521/FREEPDB1?password=s3cret",
        "oracle://app@db:notaport/s3cret",
    ] {
        let err = connector.open(url, &Value::Null).await.err().unwrap();
        assert_eq!(field_of(&err), "database_url", "{url}: {err}");
        let text = session_core::error_chain(&err);
        assert!(!text.contains("s3cret"), "{url}: {text}");
        assert!(text.contains("oracle://USER@HOST:PORT/SERVICE"), "{text}");
        let err = connector.migration_sql(url, &Value::Null).unwrap_err();
        assert_eq!(field_of(&err), "database_url", "{url}: {err}");
    }
    let err = connector
        .open("oracle://app@db:1521/FREEPDB1", &json!({"pool_size": 0}))
        .await
        .err()
        .unwrap();
    assert_eq!(field_of(&err), "pool_size");
}

#[test]
fn migration_sql_needs_no_connection() {
    let connector: &dyn Connector = &OracleConnector;
    assert_eq!(connector.schemes(), ["oracle"]);
    let sql = connector
        .migration_sql(
            "oracle://app@db.internal:1521/FREEPDB1",
            &json!({"litestar": {"session_table": "app_sessions", "in_memory": true}}),
        )
        .unwrap()
        .unwrap();
    assert!(sql.starts_with("-- migration tracking table\nCREATE TABLE app_sessions_migrations ("));
    assert!(sql.contains(") INMEMORY;\n"));
    assert!(sql.contains("'ext_litestar_0001'"));
}

/// The connector's store is an `Arc<dyn StoreAdmin>`, itself an
/// `Arc<dyn Store>`: a compile-time check of what `open` returns.
#[allow(dead_code)]
async fn opened_stores_serve_both_sides(url: &str) -> session_core::Result<()> {
    let admin: Arc<dyn StoreAdmin> = OracleConnector.open(url, &Value::Null).await?;
    let _store: Arc<dyn session_core::Store> = admin;
    Ok(())
}
