//! Mapping driver and pool errors to [`session_core::Error`].

use std::time::Duration;

use deadpool_postgres::{PoolError, TimeoutType};
use session_core::Error;
use tokio_postgres::error::SqlState;

use crate::tls::{SslMode, tls_cause};

pub(crate) const BACKEND: &str = "postgres";

/// True if `err` means the connection is unusable (refused, reset, closed,
/// server shutting down) rather than that a statement failed.
pub(crate) fn is_connection_error(err: &tokio_postgres::Error) -> bool {
    if err.is_closed() {
        return true;
    }
    if let Some(db) = err.as_db_error() {
        let code = db.code().code();
        // Class 08: connection exception; 57P01..57P03: admin shutdown,
        // crash shutdown, cannot connect now.
        return code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03");
    }
    std::error::Error::source(err).is_some_and(|s| s.is::<std::io::Error>())
}

/// The SQLSTATE of the driver's error that `err` has as its source.
pub(crate) fn sqlstate(err: &Error) -> Option<&SqlState> {
    std::error::Error::source(err)
        .and_then(|s| s.downcast_ref::<tokio_postgres::Error>())
        .and_then(tokio_postgres::Error::code)
}

/// A statement of operation `op` on `table` failed.
pub(crate) fn statement_error(
    err: tokio_postgres::Error,
    op: &str,
    table: &str,
    address: &str,
) -> Error {
    if is_connection_error(&err) {
        return Error::connection(
            BACKEND,
            format!("{op} on {table}: lost the connection to {address}"),
            err,
        );
    }
    let context = match err.code() {
        Some(code) => format!("{op} on {table} failed (SQLSTATE {})", code.code()),
        None => format!("{op} on {table} failed"),
    };
    Error::backend(BACKEND, context, err)
}

/// No connection could be had from the pool (of a store made with
/// `sslmode`, if from a URL). A failed TLS negotiation names the mode and
/// rustls's reason (or that the server has no TLS) in the context.
pub(crate) fn pool_error(
    err: PoolError,
    address: &str,
    sslmode: Option<SslMode>,
    wait: Option<Duration>,
    create: Option<Duration>,
) -> Error {
    match err {
        PoolError::Timeout(TimeoutType::Wait) => Error::PoolTimeout {
            backend: BACKEND,
            waited: wait.unwrap_or_default(),
        },
        PoolError::Timeout(TimeoutType::Recycle) => Error::PoolTimeout {
            backend: BACKEND,
            waited: wait.unwrap_or_default(),
        },
        PoolError::Timeout(TimeoutType::Create) => {
            let within = create.map_or_else(String::new, |c| format!(" within {c:?}"));
            Error::connection(
                BACKEND,
                format!("connecting to {address}: no connection{within}"),
                err,
            )
        }
        PoolError::Backend(e) => match tls_cause(&e) {
            Some(cause) => {
                let mode = sslmode.map_or_else(String::new, |m| format!(" with sslmode={m}"));
                Error::connection(
                    BACKEND,
                    format!("connecting to {address}{mode}: TLS failed: {cause}"),
                    e,
                )
            }
            None => Error::connection(BACKEND, format!("connecting to {address}"), e),
        },
        PoolError::NoRuntimeSpecified => Error::invalid_config(
            "pool",
            "the pool has timeouts but no runtime; build it with `.runtime(Runtime::Tokio1)`",
        ),
        other => Error::connection(
            BACKEND,
            format!("getting a connection to {address} from the pool"),
            other,
        ),
    }
}
