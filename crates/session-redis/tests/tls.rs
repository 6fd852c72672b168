//! `rediss://`: the store over TLS, against a throwaway `redis-server`
//! speaking TLS only, with a certificate of a test authority made by
//! `openssl`. Compiled with the `tls` feature (on in a workspace build,
//! where `session-open` turns it on).
#![cfg(feature = "tls")]

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use session_conformance::{Skip, StoreFactory};
use session_core::{Bytes, Error, Store};
use session_redis::{RedisConfig, RedisStore};
use session_test_support::redis::{TestCertificates, ThrowawayRedis, redis_required};

/// The process's TLS server and its certificates.
fn server() -> Result<&'static (ThrowawayRedis, TestCertificates), String> {
    static SERVER: OnceLock<Result<(ThrowawayRedis, TestCertificates), String>> = OnceLock::new();
    SERVER
        .get_or_init(|| {
            let dir = session_test_support::scratch_dir("session-redis-tls").join("certs");
            let certificates = TestCertificates::make(&dir)?;
            let server = ThrowawayRedis::start_tls(&certificates)?;
            Ok((server, certificates))
        })
        .as_ref()
        .map_err(Clone::clone)
}

fn server_or_skip() -> Option<&'static (ThrowawayRedis, TestCertificates)> {
    match server() {
        Ok(found) => Some(found),
        Err(why) if redis_required() => panic!("no TLS Redis: {why}"),
        Err(why) => {
            session_test_support::report_skip(&format!("no TLS Redis ({why})"));
            None
        }
    }
}

fn tls_url(server: &ThrowawayRedis) -> String {
    format!("rediss://127.0.0.1:{}/0", server.port())
}

fn config(ca: Option<&TestCertificates>) -> RedisConfig {
    RedisConfig {
        prefix: session_test_support::redis::unique_prefix("tls"),
        tls_ca_file: ca.map(|c| c.ca.clone()),
        connect_timeout: Duration::from_secs(2),
        response_timeout: Duration::from_secs(2),
        ..RedisConfig::default()
    }
}

#[tokio::test]
async fn a_store_over_tls_round_trips_a_mebibyte() {
    let Some((server, certificates)) = server_or_skip() else {
        return;
    };
    let store = RedisStore::open(&tls_url(server), config(Some(certificates)))
        .await
        .unwrap();
    let value = Bytes::from((0..1 << 20).map(|i| (i % 251) as u8).collect::<Vec<u8>>());
    assert!(
        store
            .create("big", value.clone(), Some(Duration::from_secs(60)))
            .await
            .unwrap()
    );
    assert_eq!(store.get("big", None).await.unwrap(), Some(value));
    store.delete_all().await.unwrap();
    assert!(!store.exists("big").await.unwrap());
}

#[tokio::test]
async fn a_server_certificate_of_an_unknown_authority_is_refused() {
    let Some((server, _)) = server_or_skip() else {
        return;
    };
    // The system's roots do not know the test authority.
    let config = config(None);
    let deadline = config.call_deadline();
    let store = RedisStore::open(&tls_url(server), config).await.unwrap();
    let started = Instant::now();
    let err = store.get("k", None).await.unwrap_err();
    assert!(matches!(err, Error::Connection { .. }), "{err:?}");
    assert!(started.elapsed() <= deadline + Duration::from_millis(500));
    let chain = session_core::error_chain(&err);
    assert!(
        chain.contains(&format!("127.0.0.1:{}", server.port())),
        "{chain}"
    );
    assert!(
        chain.to_lowercase().contains("certificate"),
        "says why: {chain}"
    );
}

#[tokio::test]
async fn plain_text_to_a_tls_port_fails_within_the_deadline() {
    let Some((server, _)) = server_or_skip() else {
        return;
    };
    let config = config(None);
    let deadline = config.call_deadline();
    let url = format!("redis://127.0.0.1:{}/0", server.port());
    let store = RedisStore::open(&url, config).await.unwrap();
    let started = Instant::now();
    let err = store
        .set("k", Bytes::from_static(b"v"), None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Connection { .. }), "{err:?}");
    assert!(started.elapsed() <= deadline + Duration::from_millis(500));
}

#[tokio::test]
async fn an_unreadable_ca_file_is_named() {
    let mut config = config(None);
    config.tls_ca_file = Some("/nonexistent/ca.pem".into());
    let err = RedisStore::open("rediss://127.0.0.1:6380/0", config)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::InvalidConfig { field, reason } if field == "tls_ca_file" && reason.contains("/nonexistent/ca.pem")),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_ca_file_is_refused_for_a_plain_url_and_a_bad_one_is_named() {
    let Some((server, certificates)) = server_or_skip() else {
        return;
    };
    let plain = format!("redis://127.0.0.1:{}/0", server.port());
    let err = RedisStore::open(&plain, config(Some(certificates)))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::InvalidConfig { field, reason } if field == "tls_ca_file" && reason.contains("not rediss://")),
        "{err:?}"
    );
    // A file that is not PEM: named as the CA file, not as the URL.
    let mut config = config(None);
    config.tls_ca_file = Some(certificates.server_key.with_file_name("san.ext"));
    let err = RedisStore::open(&tls_url(server), config)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::InvalidConfig { field, .. } if field == "tls_ca_file"),
        "{err:?}"
    );
}

/// The whole conformance suite over TLS.
struct TlsFactory;

impl StoreFactory for TlsFactory {
    type Store = RedisStore;

    async fn new_store(&self) -> Result<RedisStore, Skip> {
        let (server, certificates) = match server() {
            Ok(found) => found,
            Err(why) if redis_required() => panic!("no TLS Redis: {why}"),
            Err(why) => return Err(Skip(format!("no TLS Redis: {why}"))),
        };
        // The server is this process's own and dies with it: no cleanup.
        Ok(
            RedisStore::open(&tls_url(server), config(Some(certificates)))
                .await
                .expect("the TLS server is up"),
        )
    }
}

session_conformance::store_conformance!(over_tls, TlsFactory);
