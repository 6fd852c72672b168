//! Construction on a machine without the Oracle client library (this
//! workspace's CI machines have none): the store reports DPI-1047 with how
//! to install and load the Instant Client, instead of a bare failure or a
//! pool timeout.
//!
//! On a machine that has the client, the same calls must fail as connection
//! errors instead (nothing listens on the address used), so the test checks
//! something either way.

use std::error::Error as _;
use std::time::{Duration, Instant};

use session_core::Error;
use session_oracle::{Credentials, OracleConfig, OracleConnectionManager, OracleStore};

/// Nothing listens on port 1 of the loopback address.
const NOWHERE: &str = "127.0.0.1:1/nothing";

fn client_library_present() -> bool {
    // The driver's own answer: initialising it loads the library.
    match oracle::InitParams::new().init() {
        Ok(_) => true,
        Err(err) => err.dpi_code() != Some(1047),
    }
}

fn check_connect_failure(err: &Error) {
    println!("{}", session_core::error_chain(err));
    let text = session_core::error_chain(err);
    if client_library_present() {
        assert!(
            matches!(err, Error::Connection { .. }),
            "with a client: {text}"
        );
    } else {
        assert!(matches!(err, Error::Backend { .. }), "{text}");
        assert!(err.to_string().contains("Oracle Instant Client"), "{text}");
        assert!(err.to_string().contains("LD_LIBRARY_PATH"), "{text}");
        // The driver's own DPI-1047 is kept as the cause.
        let cause = err
            .source()
            .expect("the driver error is the source")
            .to_string();
        assert!(cause.contains("DPI-1047"), "{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_without_the_client_library_says_how_to_install_it() {
    let config = OracleConfig {
        connect_timeout: Duration::from_secs(20),
        ..OracleConfig::default()
    };
    let err = OracleStore::connect(Credentials::new("app", "secret", NOWHERE), config)
        .await
        .expect_err("no database listens there");
    check_connect_failure(&err);
    assert!(
        err.to_string().contains(NOWHERE),
        "names what it connected to: {err}"
    );
    assert!(
        !session_core::error_chain(&err).contains("secret"),
        "never prints the password"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_pool_that_cannot_connect_reports_why_not_a_timeout() {
    let manager = OracleConnectionManager::new(Credentials::new("app", "secret", NOWHERE));
    let errors = manager.connect_errors();
    let pool = bb8::Pool::builder()
        .max_size(2)
        .connection_timeout(Duration::from_millis(500))
        .build_unchecked(manager);
    let started = Instant::now();
    let err = OracleStore::from_pool(pool, OracleConfig::default())
        .await
        .expect_err("no database listens there");
    assert!(
        !matches!(err, Error::PoolTimeout { .. }),
        "{}",
        session_core::error_chain(&err)
    );
    check_connect_failure(&err);
    // The manager kept the last connection error for later checkouts.
    assert!(errors.last().is_some());
    assert!(started.elapsed() < Duration::from_secs(60));
}

#[tokio::test(flavor = "current_thread")]
async fn invalid_pool_settings_are_refused_by_name() {
    let good = || Credentials::new("u", "p", "db");
    let config = OracleConfig::default;
    for (credentials, config, field) in [
        (
            good(),
            OracleConfig {
                pool_size: 0,
                ..config()
            },
            "pool_size",
        ),
        (
            good(),
            OracleConfig {
                pool_min: 5,
                pool_size: 2,
                ..config()
            },
            "pool_min",
        ),
        (
            good(),
            OracleConfig {
                connect_timeout: Duration::ZERO,
                ..config()
            },
            "connect_timeout",
        ),
        (
            good(),
            OracleConfig {
                wait_timeout: Duration::ZERO,
                ..config()
            },
            "wait_timeout",
        ),
        (
            good(),
            OracleConfig {
                cleanup_batch_size: 0,
                ..config()
            },
            "cleanup_batch_size",
        ),
        (Credentials::new("", "p", "db"), config(), "user"),
    ] {
        let err = OracleStore::connect(credentials, config).await.unwrap_err();
        let Error::InvalidConfig { field: got, .. } = &err else {
            panic!("expected InvalidConfig, got {err:?}");
        };
        assert_eq!(got, field);
    }
}
