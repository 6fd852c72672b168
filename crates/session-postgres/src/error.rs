//! Mapping driver and pool errors to [`session_core::Error`].

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{PoolError, TimeoutType};
use session_core::{BoxError, Error};

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

/// The driver's error of a statement that served several coalesced calls,
/// shared by all of them: it reads as the driver's error, which is its
/// [`source`](std::error::Error::source).
#[derive(Debug, Clone)]
pub(crate) struct Shared(Arc<dyn std::error::Error + Send + Sync>);

impl std::fmt::Display for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for Shared {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}

/// `err` with its source made shareable (see [`share_again`]).
pub(crate) fn share(err: Error) -> Error {
    let shared = |source: BoxError| -> BoxError {
        if source.is::<Shared>() {
            source
        } else {
            Box::new(Shared(Arc::from(source)))
        }
    };
    match err {
        Error::Backend {
            backend,
            context,
            source,
        } => Error::Backend {
            backend,
            context,
            source: shared(source),
        },
        Error::Connection {
            backend,
            context,
            source,
        } => Error::Connection {
            backend,
            context,
            source: shared(source),
        },
        other => other,
    }
}

/// The same error for another caller served by the same statement: the
/// same kind and context, and the same (shared) source. `err` comes from
/// [`share`].
pub(crate) fn share_again(err: &Error) -> Error {
    let source = |source: &BoxError| -> BoxError {
        match source.downcast_ref::<Shared>() {
            Some(shared) => Box::new(shared.clone()),
            None => source.to_string().into(),
        }
    };
    match err {
        Error::Backend {
            backend,
            context,
            source: s,
        } => Error::Backend {
            backend,
            context: context.clone(),
            source: source(s),
        },
        Error::Connection {
            backend,
            context,
            source: s,
        } => Error::Connection {
            backend,
            context: context.clone(),
            source: source(s),
        },
        Error::PoolTimeout { backend, waited } => Error::PoolTimeout {
            backend,
            waited: *waited,
        },
        other => Error::backend(BACKEND, other.to_string(), "a coalesced statement failed"),
    }
}
