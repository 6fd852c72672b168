//! The one error type every store, the middleware and the CLI share.

use std::time::Duration;

/// A boxed error from a driver, pool or other lower layer, kept as an
/// [`Error`]'s `source()`.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Shorthand for `Result<T, session_core::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in a session store or its configuration.
///
/// Errors are values: no operation of this workspace panics on bad input.
/// A database error keeps its cause as [`std::error::Error::source`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A store key is empty, longer than [`MAX_KEY_BYTES`](crate::MAX_KEY_BYTES)
    /// or holds a NUL character. The key itself is not repeated: it may be
    /// a secret.
    #[error("invalid store key: {reason}")]
    InvalidKey {
        /// Why the key was refused, e.g. "256 bytes long, at most 255 allowed".
        reason: String,
    },

    /// A configuration value was refused; `field` names it
    /// (`max_age`, `litestar.fillfactor`, ...).
    #[error("invalid configuration `{field}`: {reason}")]
    InvalidConfig {
        /// The field or key that holds the bad value.
        field: String,
        /// What is wrong with it and what is accepted.
        reason: String,
    },

    /// An extension config held keys the adapter does not honour.
    #[error(
        "unknown key(s) {} in the `{section}` extension config; accepted: {}",
        list(unknown),
        list(accepted)
    )]
    UnknownConfigKeys {
        /// The extension section, e.g. `litestar`.
        section: String,
        /// The keys that were refused.
        unknown: Vec<String>,
        /// The keys this adapter accepts.
        accepted: Vec<String>,
    },

    /// A table, schema or other SQL identifier was refused before any SQL
    /// was built from it.
    #[error("invalid SQL identifier {name:?}: {reason}")]
    InvalidIdentifier {
        /// The refused name, as given.
        name: String,
        /// Why it was refused.
        reason: String,
    },

    /// No connection could be had from the pool within its wait time.
    #[error("{backend}: no connection available from the pool within {waited:?}")]
    PoolTimeout {
        /// The store backend, e.g. `postgres`.
        backend: &'static str,
        /// How long the caller waited.
        waited: Duration,
    },

    /// The database could not be reached or the connection was lost.
    #[error("{backend}: connection failed: {context}")]
    Connection {
        /// The store backend, e.g. `postgres`.
        backend: &'static str,
        /// What was being done, e.g. the address being connected to.
        context: String,
        /// The driver's error.
        #[source]
        source: BoxError,
    },

    /// The database reported an error while running a statement.
    #[error("{backend}: {context}")]
    Backend {
        /// The store backend, e.g. `sqlite`.
        backend: &'static str,
        /// What was being done, in words a reader of a log understands.
        context: String,
        /// The driver's error.
        #[source]
        source: BoxError,
    },

    /// A value could not be encoded or decoded (e.g. session JSON).
    #[error("serialization failed: {0}")]
    Serialization(#[source] BoxError),
}

impl Error {
    /// A database error while `context` ("get session", "create table", ...).
    pub fn backend(
        backend: &'static str,
        context: impl Into<String>,
        source: impl Into<BoxError>,
    ) -> Self {
        Error::Backend {
            backend,
            context: context.into(),
            source: source.into(),
        }
    }

    /// A connection error while `context` (typically naming the address).
    pub fn connection(
        backend: &'static str,
        context: impl Into<String>,
        source: impl Into<BoxError>,
    ) -> Self {
        Error::Connection {
            backend,
            context: context.into(),
            source: source.into(),
        }
    }

    /// An invalid configuration value in `field`.
    pub fn invalid_config(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidConfig {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// True for errors a later retry may not see (connection loss, pool
    /// timeout); false for bad input and configuration.
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::PoolTimeout { .. } | Error::Connection { .. })
    }
}

/// `err` followed by each of its sources, joined with ": ": the whole cause
/// of an error on one line, for log events and command-line messages. A
/// cause whose text its error already ends with (a driver error that prints
/// its own source) is not repeated.
///
/// ```
/// let err = session_core::Error::backend("sqlite", "get session", std::io::Error::other("disk full"));
/// assert_eq!(session_core::error_chain(&err), "sqlite: get session: disk full");
/// ```
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

fn list<S: AsRef<str>>(items: &[S]) -> String {
    items
        .iter()
        .map(|s| format!("`{}`", s.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn backend_error_keeps_its_source() {
        let io = std::io::Error::other("disk on fire");
        let err = Error::backend("sqlite", "get session", io);
        assert_eq!(err.to_string(), "sqlite: get session");
        assert_eq!(err.source().unwrap().to_string(), "disk on fire");
    }

    /// A driver error that prints its own source (as the redis crate's
    /// does): the cause is said once.
    #[test]
    fn a_cause_already_printed_is_not_repeated() {
        #[derive(Debug)]
        struct Driver(std::io::Error);
        impl std::fmt::Display for Driver {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}", self.0)
            }
        }
        impl std::error::Error for Driver {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let err = Error::connection("redis", "ping on h:1", Driver(refused));
        assert_eq!(
            error_chain(&err),
            "redis: connection failed: ping on h:1: refused"
        );
        // A cause that differs is still shown.
        let err = Error::backend("sqlite", "get session", std::io::Error::other("disk full"));
        assert_eq!(error_chain(&err), "sqlite: get session: disk full");
    }

    #[test]
    fn unknown_keys_lists_both_sides() {
        let err = Error::UnknownConfigKeys {
            section: "litestar".into(),
            unknown: vec!["fillfactr".into()],
            accepted: vec!["session_table".into(), "fillfactor".into()],
        };
        assert_eq!(
            err.to_string(),
            "unknown key(s) `fillfactr` in the `litestar` extension config; accepted: `session_table`, `fillfactor`"
        );
    }
}
