//! Mapping the client's errors to [`session_core::Error`].

use memcache::exp::Error as ClientError;
use session_core::Error;

pub(crate) const BACKEND: &str = "memcached";

/// An exchange for operation `op` with the servers at `address` failed.
/// The client's error is kept as the source.
pub(crate) fn client_error(err: ClientError, op: &str, address: &str) -> Error {
    // A refused value inside a pipeline surfaces as an ambiguous exchange
    // whose cause is the server's answer.
    let cause = match &err {
        ClientError::Ambiguous { source, .. } => source.as_ref(),
        other => other,
    };
    if let ClientError::Server(message) = cause {
        if message.contains("too large") {
            return Error::backend(
                BACKEND,
                format!(
                    "{op}: {address} refused the value as larger than its item size limit \
                     (memcached -I, default 1m; see the crate docs)"
                ),
                err,
            );
        }
    }
    match &err {
        ClientError::Io(_) => {
            Error::connection(BACKEND, format!("{op}: talking to {address}"), err)
        }
        ClientError::Timeout { .. } => Error::connection(
            BACKEND,
            format!("{op}: no answer from {address} within the response timeout"),
            err,
        ),
        ClientError::Ambiguous { source, .. }
            if matches!(**source, ClientError::Timeout { .. }) =>
        {
            Error::connection(
                BACKEND,
                format!(
                    "{op}: no answer from {address} within the response timeout \
                     (the command was sent and may have been applied)"
                ),
                err,
            )
        }
        ClientError::Ambiguous { .. } => Error::connection(
            BACKEND,
            format!("{op}: lost the connection to {address} after sending the command"),
            err,
        ),
        _ => Error::backend(BACKEND, format!("{op} on {address} failed"), err),
    }
}
