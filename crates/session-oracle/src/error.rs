//! Oracle and ODPI-C error codes, and what the store makes of them.
//!
//! The mapping is a pure function of the code ([`classify`], [`map_error`]),
//! so it is tested without a database or a client library;
//! [`ErrorCode::of`] is the thin adapter from an [`oracle::Error`].

use std::fmt;

use session_core::{BoxError, Error};

use crate::BACKEND;

/// An error code of the Oracle stack: `ORA-nnnnn` from the database or the
/// client, `DPI-nnnn` from ODPI-C (the C layer under the `oracle` crate).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum ErrorCode {
    /// `ORA-nnnnn`, e.g. `Ora(1)` for ORA-00001.
    Ora(i32),
    /// `DPI-nnnn`, e.g. `Dpi(1047)` for DPI-1047.
    Dpi(i32),
}

impl ErrorCode {
    /// The code of a driver error, if it carries one.
    pub(crate) fn of(err: &oracle::Error) -> Option<Self> {
        if let Some(code) = err.oci_code() {
            return Some(ErrorCode::Ora(code));
        }
        if let Some(code) = err.dpi_code() {
            return Some(ErrorCode::Dpi(code));
        }
        // Errors the crate wraps differently still carry the code in their
        // message ("DPI-1047: Cannot locate ...").
        err.db_error()
            .and_then(|db| ErrorCode::parse(db.message()))
            .or_else(|| ErrorCode::parse(&err.to_string()))
    }

    /// Finds the first `ORA-nnnnn` or `DPI-nnnn` in a message, as Oracle
    /// prints them (`"ORA-00439: feature not enabled: ..."`).
    pub(crate) fn parse(message: &str) -> Option<Self> {
        let bytes = message.as_bytes();
        (0..bytes.len()).find_map(|i| {
            // A localized message may hold non-ASCII text: only char
            // boundaries are tried.
            let rest = message.get(i..)?;
            let (make, digits): (fn(i32) -> ErrorCode, &str) =
                if let Some(d) = rest.strip_prefix("ORA-") {
                    (ErrorCode::Ora, d)
                } else if let Some(d) = rest.strip_prefix("DPI-") {
                    (ErrorCode::Dpi, d)
                } else {
                    return None;
                };
            let end = digits
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(digits.len());
            if end == 0 || end > 9 {
                return None;
            }
            digits[..end].parse().ok().map(make)
        })
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorCode::Ora(n) => write!(f, "ORA-{n:05}"),
            ErrorCode::Dpi(n) => write!(f, "DPI-{n:04}"),
        }
    }
}

/// What an error code means to the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ErrorClass {
    /// DPI-1047: the Oracle client library (Instant Client) cannot be loaded.
    ClientLibraryMissing,
    /// ORA-00439 ("feature not enabled: %s"): with `in_memory`, the
    /// database does not have Database In-Memory enabled.
    InMemoryNotEnabled,
    /// ORA-62142: a code this crate has mapped to the In-Memory column store
    /// since its first version, but which could not be found in Oracle's
    /// error documentation; its help text says so.
    InMemoryNotAvailable,
    /// ORA-00001: a unique constraint was violated: two writers inserted
    /// one key at once.
    UniqueViolation,
    /// ORA-00972: an identifier is too long for the server (30 bytes before
    /// Oracle Database 12.2, or with `COMPATIBLE` below 12.2).
    IdentifierTooLong,
    /// ORA-00955 (name already used) or ORA-01408 (column list already
    /// indexed): the object `create_table` makes exists already.
    AlreadyExists,
    /// ORA-00942: the session table does not exist.
    TableMissing,
    /// The database cannot be reached, refused the login, or the
    /// connection was lost.
    Connection,
    /// Anything else: reported with its context and cause.
    Other,
}

/// Classifies an error code.
pub(crate) fn classify(code: Option<ErrorCode>) -> ErrorClass {
    match code {
        Some(ErrorCode::Dpi(1047)) => ErrorClass::ClientLibraryMissing,
        Some(ErrorCode::Ora(439)) => ErrorClass::InMemoryNotEnabled,
        Some(ErrorCode::Ora(62142)) => ErrorClass::InMemoryNotAvailable,
        Some(ErrorCode::Ora(1)) => ErrorClass::UniqueViolation,
        Some(ErrorCode::Ora(972)) => ErrorClass::IdentifierTooLong,
        Some(ErrorCode::Ora(955 | 1408)) => ErrorClass::AlreadyExists,
        Some(ErrorCode::Ora(942)) => ErrorClass::TableMissing,
        // Lost or refused connections: end-of-file on channel, not
        // connected, connection lost, TNS errors, bad login, locked account,
        // and ODPI-C's "not connected" / "closed by ORA-3113".
        Some(ErrorCode::Ora(
            1012
            | 1017
            | 1033
            | 1034
            | 1089
            | 1090
            | 3113
            | 3114
            | 3135
            | 12153..=12699
            | 28000
            | 28001,
        ))
        | Some(ErrorCode::Dpi(1010 | 1080)) => ErrorClass::Connection,
        _ => ErrorClass::Other,
    }
}

/// The guidance given when the Oracle client library is missing
/// (ODPI-C's "DPI-1047: Cannot locate a 64-bit Oracle Client library").
pub(crate) const CLIENT_LIBRARY_HELP: &str = "the Oracle client library could not be loaded (DPI-1047): \
     this store needs the Oracle client libraries (the Oracle Instant Client, Basic or Basic \
     Light package, 64-bit; release 19 or later is recommended, ODPI-C loads 11.2 and later) on \
     the machine that runs it. Install it and point the loader at it: \
     on Linux set LD_LIBRARY_PATH to the Instant Client directory (or register that \
     directory with ldconfig), or set ORACLE_HOME for a full client install; on macOS put it \
     in DYLD_LIBRARY_PATH or ~/lib; on Windows add it to PATH";

/// The guidance given for ORA-00439 ("feature not enabled: ...") while the
/// store has `in_memory` set.
pub(crate) const IN_MEMORY_NOT_ENABLED_HELP: &str = "a database feature is not enabled (ORA-00439; \
     the driver's message, kept as the cause, names the feature): with `in_memory` this is \
     Database In-Memory, which needs Oracle Database Enterprise Edition 12.1.0.2 or later with \
     the separately licensed In-Memory option. Check the edition and the license, and \
     `SELECT value FROM v$parameter WHERE name = 'inmemory_size'` (the column store needs a \
     non-zero INMEMORY_SIZE, e.g. `ALTER SYSTEM SET INMEMORY_SIZE=1G SCOPE=SPFILE` and a \
     restart), or set `in_memory` to false";

/// The guidance given for ORA-62142. This crate has always mapped it to the
/// In-Memory column store, but the code could not be found in Oracle's
/// error documentation, so the text says so instead of asserting a meaning.
pub(crate) const IN_MEMORY_NOT_AVAILABLE_HELP: &str = "the database refused the In-Memory table \
     with ORA-62142, a code this store could not confirm in Oracle's error documentation: read \
     the driver's message (kept as the cause). If it is about the In-Memory column store, check \
     `SELECT value FROM v$parameter WHERE name = 'inmemory_size'`; set it with \
     `ALTER SYSTEM SET INMEMORY_SIZE=1G SCOPE=SPFILE` and restart the database \
     (500 MB to 2 GB suits session stores), or set `in_memory` to false";

/// The guidance given for ORA-00972 ("identifier is too long").
pub(crate) const IDENTIFIER_TOO_LONG_HELP: &str = "an identifier is too long for this database \
     (ORA-00972): Oracle Database before 12.2, and 12.2 or later with the COMPATIBLE \
     parameter below 12.2, allow 30 bytes per identifier (128 otherwise). The store names the \
     index `idx_<table>_expires_at` and the tracking table `<table>_migrations`: the default \
     `idx_litestar_session_expires_at` is 31 bytes. On such a database use a table name of at \
     most 15 characters (e.g. `table = \"app_sessions\"`), or raise COMPATIBLE to 12.2 or \
     later";

/// The text of ORA-00001 when no retry happened: a unique constraint was
/// violated. The `set` path adds [`AFTER_ONE_RETRY`] itself, only when it
/// did retry.
pub(crate) const UNIQUE_VIOLATION: &str = "unique constraint violated (ORA-00001): another writer inserted the same key at the same moment";

/// What `set` adds to its context when its one retry of ORA-00001 failed
/// too.
pub(crate) const AFTER_ONE_RETRY: &str = "after one retry";

/// Turns a classified driver error into the store's [`Error`], keeping
/// `source` (the driver error) as its cause.
///
/// `context` says what was being done ("get session", "connect to ...").
/// The guidance for DPI-1047, ORA-00439, ORA-62142 and ORA-00972 replaces
/// nothing: the driver's own message stays available as the error's source.
pub(crate) fn map_error(code: Option<ErrorCode>, context: &str, source: BoxError) -> Error {
    match classify(code) {
        ErrorClass::ClientLibraryMissing => {
            Error::backend(BACKEND, format!("{context}: {CLIENT_LIBRARY_HELP}"), source)
        }
        ErrorClass::InMemoryNotEnabled => Error::backend(
            BACKEND,
            format!("{context}: {IN_MEMORY_NOT_ENABLED_HELP}"),
            source,
        ),
        ErrorClass::InMemoryNotAvailable => Error::backend(
            BACKEND,
            format!("{context}: {IN_MEMORY_NOT_AVAILABLE_HELP}"),
            source,
        ),
        ErrorClass::UniqueViolation => {
            Error::backend(BACKEND, format!("{context}: {UNIQUE_VIOLATION}"), source)
        }
        ErrorClass::IdentifierTooLong => Error::backend(
            BACKEND,
            format!("{context}: {IDENTIFIER_TOO_LONG_HELP}"),
            source,
        ),
        ErrorClass::TableMissing => Error::backend(
            BACKEND,
            format!(
                "{context}: the session table does not exist (ORA-00942); \
                 call OracleStore::create_table() or run the migration first"
            ),
            source,
        ),
        ErrorClass::Connection => Error::connection(BACKEND, context.to_owned(), source),
        ErrorClass::AlreadyExists | ErrorClass::Other => {
            let context = match code {
                Some(code) => format!("{context} ({code})"),
                None => context.to_owned(),
            };
            Error::backend(BACKEND, context, source)
        }
    }
}

/// [`map_error`] for a driver error: reads its code with [`ErrorCode::of`]
/// and keeps it as the source.
pub(crate) fn from_oracle(err: oracle::Error, context: &str) -> Error {
    let code = ErrorCode::of(&err);
    map_error(code, context, Box::new(err))
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn codes_are_found_in_messages() {
        assert_eq!(
            ErrorCode::parse("ORA-00439: feature not enabled: Database In-Memory"),
            Some(ErrorCode::Ora(439))
        );
        assert_eq!(
            ErrorCode::parse("DPI Error: DPI-1047: Cannot locate a 64-bit Oracle Client library"),
            Some(ErrorCode::Dpi(1047))
        );
        assert_eq!(ErrorCode::parse("ORA-: nothing"), None);
        assert_eq!(
            ErrorCode::parse("Tabelle oder View nicht vorhanden (é ü) ORA-00942"),
            Some(ErrorCode::Ora(942))
        );
        assert_eq!(ErrorCode::parse("ééé"), None);
        assert_eq!(ErrorCode::parse("no code here"), None);
        assert_eq!(ErrorCode::Ora(1).to_string(), "ORA-00001");
        assert_eq!(ErrorCode::Dpi(1047).to_string(), "DPI-1047");
    }

    #[test]
    fn other_codes_are_named_in_the_context() {
        let err = map_error(
            Some(ErrorCode::Ora(1722)),
            "set session",
            Box::new(std::io::Error::other("ORA-01722: invalid number")),
        );
        assert_eq!(err.to_string(), "oracle: set session (ORA-01722)");
    }

    // Error mapping by code: what a user reads when the client library is
    // missing, In-Memory is not licensed or sized, or a key is inserted twice
    // (moved from tests/errors.rs).

    fn source(message: &str) -> session_core::BoxError {
        Box::new(std::io::Error::other(message.to_owned()))
    }

    fn mapped(message: &str, context: &str) -> Error {
        map_error(ErrorCode::parse(message), context, source(message))
    }

    #[test]
    fn dpi_1047_says_the_instant_client_is_needed_and_how_to_load_it() {
        let msg = "DPI-1047: Cannot locate a 64-bit Oracle Client library: \
                   \"libclntsh.so: cannot open shared object file: No such file or directory\"";
        assert_eq!(
            classify(ErrorCode::parse(msg)),
            ErrorClass::ClientLibraryMissing
        );
        let err = mapped(msg, "connect to `db:1521/FREEPDB1` as `app`");
        let text = err.to_string();
        assert!(
            text.starts_with("oracle: connect to `db:1521/FREEPDB1` as `app`: "),
            "{text}"
        );
        assert!(text.contains("Oracle Instant Client"), "{text}");
        assert!(text.contains("LD_LIBRARY_PATH"), "{text}");
        assert!(text.contains("ORACLE_HOME"), "{text}");
        assert!(text.contains("DPI-1047"), "{text}");
        assert!(!text.contains("http"), "no hosts in the error text: {text}");
        // Not a transient error: retrying will not load a library.
        assert!(!err.is_transient());
        // The driver's message is kept as the cause.
        assert_eq!(err.source().unwrap().to_string(), msg);
    }

    #[test]
    fn ora_00439_says_in_memory_is_not_enabled_and_what_to_check() {
        let msg = "ORA-00439: feature not enabled: Database In-Memory";
        assert_eq!(
            classify(ErrorCode::parse(msg)),
            ErrorClass::InMemoryNotEnabled
        );
        let text = mapped(msg, "create_table on table app_sessions").to_string();
        assert!(text.contains("ORA-00439"), "{text}");
        assert!(text.contains("In-Memory"), "{text}");
        assert!(text.contains("licensed"), "{text}");
        assert!(text.contains("INMEMORY_SIZE"), "{text}");
        assert!(
            text.contains("ALTER SYSTEM SET INMEMORY_SIZE=1G SCOPE=SPFILE"),
            "{text}"
        );
        assert!(text.contains("restart"), "{text}");
    }

    #[test]
    fn ora_62142_is_reported_as_unconfirmed() {
        // A made-up message: the code's real text could not be found.
        let msg = "ORA-62142: INMEMORY column store not available";
        assert_eq!(
            classify(ErrorCode::parse(msg)),
            ErrorClass::InMemoryNotAvailable
        );
        let err = mapped(msg, "create_table on table app_sessions");
        let text = err.to_string();
        assert!(text.contains("ORA-62142"), "{text}");
        // The code is not in Oracle's error documentation: the text says so
        // instead of asserting what it means.
        assert!(
            text.contains("could not confirm in Oracle's error documentation"),
            "{text}"
        );
        assert!(!text.contains("INMEMORY_SIZE is not configured"), "{text}");
        assert!(text.contains("INMEMORY_SIZE"), "{text}");
        assert!(
            text.contains("ALTER SYSTEM SET INMEMORY_SIZE=1G SCOPE=SPFILE"),
            "{text}"
        );
        assert_eq!(err.source().unwrap().to_string(), msg);
    }

    #[test]
    fn ora_00001_is_a_unique_violation() {
        let msg = "ORA-00001: unique constraint (APP.SYS_C008123) violated";
        assert_eq!(classify(ErrorCode::parse(msg)), ErrorClass::UniqueViolation);
        let text = mapped(msg, "set on table s").to_string();
        assert!(text.contains("ORA-00001"), "{text}");
        // Only `set` retries, and it says so itself: the mapping of a bare
        // ORA-00001 (a migration record, an update) claims no retry.
        assert!(!text.contains("retry"), "{text}");
        assert!(!text.contains(AFTER_ONE_RETRY), "{text}");
    }

    #[test]
    fn ora_00972_explains_the_30_byte_limit() {
        let msg = "ORA-00972: identifier is too long";
        assert_eq!(
            classify(ErrorCode::parse(msg)),
            ErrorClass::IdentifierTooLong
        );
        let err = mapped(msg, "migrate on table litestar_session");
        let text = err.to_string();
        assert!(text.contains("ORA-00972"), "{text}");
        assert!(text.contains("30 bytes"), "{text}");
        assert!(text.contains("12.2"), "{text}");
        assert!(text.contains("COMPATIBLE"), "{text}");
        assert!(
            text.contains("`idx_litestar_session_expires_at` is 31 bytes"),
            "{text}"
        );
        assert!(text.contains("15 characters"), "{text}");
        assert_eq!("idx_litestar_session_expires_at".len(), 31);
        assert!(!err.is_transient());
        assert_eq!(err.source().unwrap().to_string(), msg);
    }

    #[test]
    fn help_texts_assert_only_what_was_checked() {
        // ODPI-C's own message: "DPI-1047: Cannot locate a %s-bit Oracle
        // Client library"; ODPI-C loads Oracle Client 11.2 and later, so 19
        // is a recommendation, not a requirement.
        assert!(CLIENT_LIBRARY_HELP.contains("19 or later is recommended"));
        assert!(CLIENT_LIBRARY_HELP.contains("11.2"));
        // ORA-00439 is "feature not enabled: %s"; its feature is in the
        // driver's message, which the text points to.
        assert!(IN_MEMORY_NOT_ENABLED_HELP.contains("names the feature"));
        assert!(IN_MEMORY_NOT_AVAILABLE_HELP.contains("could not confirm"));
    }

    #[test]
    fn existing_objects_and_missing_tables_are_recognised() {
        assert_eq!(
            classify(ErrorCode::parse(
                "ORA-00955: name is already used by an existing object"
            )),
            ErrorClass::AlreadyExists
        );
        assert_eq!(
            classify(ErrorCode::parse(
                "ORA-01408: such column list already indexed"
            )),
            ErrorClass::AlreadyExists
        );
        let text = mapped("ORA-00942: table or view does not exist", "get on table s").to_string();
        assert!(text.contains("create_table"), "{text}");
    }

    #[test]
    fn lost_or_refused_connections_are_connection_errors() {
        for msg in [
            "ORA-12541: TNS:no listener",
            "ORA-03113: end-of-file on communication channel",
            "ORA-01017: invalid username/password; logon denied",
            "DPI-1080: connection was closed by ORA-3113",
        ] {
            let err = mapped(msg, "connect");
            assert!(matches!(err, Error::Connection { .. }), "{msg}: {err:?}");
            assert!(err.is_transient(), "{msg}");
        }
    }

    #[test]
    fn unknown_codes_keep_the_code_and_the_cause() {
        let err = mapped("ORA-01722: invalid number", "set on table s");
        assert!(matches!(err, Error::Backend { .. }));
        assert_eq!(err.to_string(), "oracle: set on table s (ORA-01722)");
        let err = map_error(None, "get on table s", source("something odd"));
        assert_eq!(err.to_string(), "oracle: get on table s");
        assert_eq!(err.source().unwrap().to_string(), "something odd");
    }
}
