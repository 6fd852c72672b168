//! Error mapping by code: what a user reads when the client library is
//! missing, In-Memory is not licensed or sized, or a key is inserted twice.

use std::error::Error as _;

use session_core::Error;
use session_oracle::error::{ErrorClass, ErrorCode, classify, map_error};

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
fn ora_62142_says_the_column_store_is_not_sized() {
    let msg = "ORA-62142: INMEMORY column store not available";
    assert_eq!(
        classify(ErrorCode::parse(msg)),
        ErrorClass::InMemoryNotAvailable
    );
    let err = mapped(msg, "create_table on table app_sessions");
    let text = err.to_string();
    assert!(text.contains("ORA-62142"), "{text}");
    assert!(text.contains("INMEMORY_SIZE is not configured"), "{text}");
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
