//! libpq's `sslmode` against real servers: a throwaway PostgreSQL with
//! `ssl = on` presenting a certificate for `localhost` and `127.0.0.1`
//! signed by a test authority made with `openssl`, and a throwaway one
//! with TLS off. Each test checks what a user would: whether the session
//! is encrypted (`pg_stat_ssl`), that the store works over it, and what a
//! refusal says. Skipped (with a line on stderr) without the server
//! binaries or `openssl`; failing instead when `SESSION_TEST_REQUIRE_PG`
//! or `CI` is set.

use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use session_core::{Bytes, Error, Store};
use session_postgres::{PostgresConfig, PostgresStore};
use session_test_support::tls::TestCertificates;
use session_test_support::{REQUIRE_PG_VAR, ThrowawayCluster, skip_or_panic};

/// The process's TLS server and the certificates it presents.
fn tls_server() -> Option<&'static (ThrowawayCluster, TestCertificates)> {
    session_test_support::tls_cluster_or_skip()
}

/// The process's server without TLS.
fn plain_server() -> Option<&'static ThrowawayCluster> {
    static PLAIN: OnceLock<Result<ThrowawayCluster, String>> = OnceLock::new();
    match PLAIN.get_or_init(ThrowawayCluster::start) {
        Ok(cluster) => Some(cluster),
        Err(why) => skip_or_panic("PostgreSQL", REQUIRE_PG_VAR, why),
    }
}

/// An authority that signed nothing the servers present: a wrong root.
fn other_authority() -> Option<&'static TestCertificates> {
    static OTHER: OnceLock<Result<TestCertificates, String>> = OnceLock::new();
    let dir = session_test_support::scratch_dir("session-pg-tls-other").join("certs");
    match OTHER.get_or_init(|| TestCertificates::make(&dir)) {
        Ok(certificates) => Some(certificates),
        Err(why) => skip_or_panic("openssl", REQUIRE_PG_VAR, why),
    }
}

/// `postgresql://postgres:s3cret@HOST:PORT/postgres?QUERY` (trust
/// authentication: the password is never checked, only never shown).
fn url(host: &str, port: u16, query: &str) -> String {
    format!("postgresql://postgres:s3cret@{host}:{port}/postgres?{query}")
}

fn root(path: &Path) -> String {
    format!("sslrootcert={}", path.display())
}

fn config() -> PostgresConfig {
    PostgresConfig {
        table: session_test_support::unique_table_name("tls"),
        pool_size: 2,
        connect_timeout: Duration::from_secs(5),
        ..PostgresConfig::default()
    }
}

/// Makes the table (the first connection), writes and reads a session,
/// and tells whether the connection is encrypted.
async fn works_and_encrypted(store: &PostgresStore) -> Result<bool, Error> {
    store.create_table().await?;
    let value = Bytes::from_static(b"over the wire");
    store
        .set("tls-key", value.clone(), Some(Duration::from_secs(60)))
        .await?;
    assert_eq!(store.get("tls-key", None).await?, Some(value));
    let client = store.pool().get().await.expect("a pooled connection");
    let row = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .expect("pg_stat_ssl answers");
    Ok(row.get(0))
}

/// Opens a store on `url` and runs [`works_and_encrypted`].
async fn open(url: &str, config: PostgresConfig) -> Result<bool, Error> {
    let store = PostgresStore::from_url(url, config)?;
    works_and_encrypted(&store).await
}

/// The refusal of a connection: an [`Error::Connection`], its message.
fn refused(result: Result<bool, Error>, what: &str) -> String {
    match result {
        Err(err @ Error::Connection { .. }) => {
            let message = err.to_string();
            assert!(!message.contains("s3cret"), "{what}: {message}");
            assert!(
                !session_core::error_chain(&err).contains("s3cret"),
                "{what}: {err:?}"
            );
            message
        }
        other => panic!("{what}: expected a connection error, got {other:?}"),
    }
}

#[tokio::test]
async fn require_connects_encrypted_and_the_store_works() {
    let Some((server, _)) = tls_server() else {
        return;
    };
    let encrypted = open(
        &url("127.0.0.1", server.port(), "sslmode=require"),
        config(),
    )
    .await
    .unwrap();
    assert!(encrypted, "sslmode=require gave a plain-text session");
}

#[tokio::test]
async fn prefer_is_the_default_and_uses_tls_when_offered() {
    let Some((server, _)) = tls_server() else {
        return;
    };
    for query in ["", "sslmode=prefer"] {
        let encrypted = open(&url("127.0.0.1", server.port(), query), config())
            .await
            .unwrap();
        assert!(encrypted, "`{query}`: not encrypted");
    }
}

#[tokio::test]
async fn disable_connects_in_plain_text() {
    let Some((server, _)) = tls_server() else {
        return;
    };
    let encrypted = open(
        &url("127.0.0.1", server.port(), "sslmode=disable"),
        config(),
    )
    .await
    .unwrap();
    assert!(!encrypted, "sslmode=disable gave an encrypted session");
}

#[tokio::test]
async fn verify_full_with_the_right_root_and_name_works() {
    let Some((server, certificates)) = tls_server() else {
        return;
    };
    // Both names of the certificate, the root given in the URL ...
    for host in ["127.0.0.1", "localhost"] {
        let query = format!("sslmode=verify-full&{}", root(&certificates.ca));
        let encrypted = open(&url(host, server.port(), &query), config())
            .await
            .unwrap_or_else(|e| panic!("{host}: {e}"));
        assert!(encrypted, "{host}");
    }
    // ... or in the config.
    let with_root = PostgresConfig {
        ssl_root_cert: Some(certificates.ca.clone()),
        ..config()
    };
    let encrypted = open(
        &url("localhost", server.port(), "sslmode=verify-full"),
        with_root,
    )
    .await
    .unwrap();
    assert!(encrypted);
    // And libpq's key=value form.
    let keywords = format!(
        "host=localhost port={} user=postgres dbname=postgres sslmode=verify-full sslrootcert='{}'",
        server.port(),
        certificates.ca.display()
    );
    assert!(open(&keywords, config()).await.unwrap());
}

#[tokio::test]
async fn verify_full_refuses_a_host_name_the_certificate_lacks() {
    let Some((server, certificates)) = tls_server() else {
        return;
    };
    // The server at 127.0.0.1 reached under a name its certificate does
    // not carry (`hostaddr` connects, `host` is the name checked).
    let query = format!(
        "hostaddr=127.0.0.1&sslmode=verify-full&{}",
        root(&certificates.ca)
    );
    let wrong_name = url("db.invalid", server.port(), &query);
    let message = refused(open(&wrong_name, config()).await, "verify-full");
    assert!(
        message.contains(&format!("connecting to db.invalid:{}", server.port())),
        "{message}"
    );
    assert!(message.contains("sslmode=verify-full"), "{message}");
    assert!(
        message.contains("certificate not valid for name \"db.invalid\""),
        "{message}"
    );
    // verify-ca checks the chain only: the same name is accepted.
    let query = query.replace("verify-full", "verify-ca");
    let encrypted = open(&url("db.invalid", server.port(), &query), config())
        .await
        .unwrap();
    assert!(encrypted);
}

#[tokio::test]
async fn a_wrong_root_is_refused_by_verify_ca_verify_full_and_require_with_a_root() {
    let (Some((server, _)), Some(other)) = (tls_server(), other_authority()) else {
        return;
    };
    // `require` with a root certificate checks the chain, as libpq.
    for mode in ["verify-ca", "verify-full", "require"] {
        let query = format!("sslmode={mode}&{}", root(&other.ca));
        let message = refused(
            open(&url("127.0.0.1", server.port(), &query), config()).await,
            mode,
        );
        assert!(
            message.contains(&format!("connecting to 127.0.0.1:{}", server.port())),
            "{mode}: {message}"
        );
        // An authority the server's certificate does not come from.
        assert!(
            message.contains("TLS failed: invalid peer certificate: UnknownIssuer"),
            "{mode}: {message}"
        );
    }
}

#[tokio::test]
async fn require_with_the_right_root_connects() {
    let Some((server, certificates)) = tls_server() else {
        return;
    };
    let query = format!("sslmode=require&{}", root(&certificates.ca));
    assert!(
        open(&url("127.0.0.1", server.port(), &query), config())
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn require_never_falls_back_to_plain_text() {
    let Some(server) = plain_server() else {
        return;
    };
    let message = refused(
        open(
            &url("127.0.0.1", server.port(), "sslmode=require"),
            config(),
        )
        .await,
        "require",
    );
    assert!(
        message.contains(&format!(
            "connecting to 127.0.0.1:{} with sslmode=require: TLS failed: server does not support TLS",
            server.port()
        )),
        "{message}"
    );
}

#[tokio::test]
async fn prefer_falls_back_to_plain_text_without_tls() {
    let Some(server) = plain_server() else {
        return;
    };
    let encrypted = open(&url("127.0.0.1", server.port(), "sslmode=prefer"), config())
        .await
        .unwrap();
    assert!(!encrypted);
}

#[tokio::test]
async fn prefer_tries_again_in_plain_text_when_the_handshake_fails() {
    // As libpq: `prefer` with a root certificate checks the chain, and a
    // refused handshake is followed by a plain-text connection.
    let (Some((server, _)), Some(other)) = (tls_server(), other_authority()) else {
        return;
    };
    let query = format!("sslmode=prefer&{}", root(&other.ca));
    let encrypted = open(&url("127.0.0.1", server.port(), &query), config())
        .await
        .unwrap();
    assert!(!encrypted);
}

#[test]
fn a_missing_root_file_is_named_when_the_store_is_made() {
    let missing = std::env::temp_dir().join("no-such-dir-for-session-tls/root.crt");
    let err = PostgresStore::from_url(
        &url(
            "127.0.0.1",
            1,
            &format!("sslmode=verify-full&{}", root(&missing)),
        ),
        config(),
    )
    .unwrap_err();
    match &err {
        Error::InvalidConfig { field, reason } => {
            assert_eq!(field, "sslrootcert");
            assert!(reason.contains(&missing.display().to_string()), "{reason}");
        }
        other => panic!("expected InvalidConfig, got {other:?}"),
    }
    let err = PostgresStore::from_url(
        &url("127.0.0.1", 1, "sslmode=verify-ca"),
        PostgresConfig {
            ssl_root_cert: Some(missing.clone()),
            ..config()
        },
    )
    .unwrap_err();
    assert!(
        matches!(&err, Error::InvalidConfig { field, .. } if field == "ssl_root_cert"),
        "{err:?}"
    );
    assert!(
        err.to_string().contains(&missing.display().to_string()),
        "{err}"
    );
}
