//! The generated SQL, compared to the expected text: the seed's Oracle DDL,
//! the upsert MERGE, the renewing UPDATE and the batched cleanup, with the
//! table name substituted. No database needed.

use session_core::{Error, TableName};
use session_oracle::sql::{InMemoryStatus, Statements, ValueSql};
use session_oracle::{MAX_IDENTIFIER_LEN, StoreSettings};

fn statements(table: &str, in_memory: bool) -> Statements {
    let table = TableName::new(table, MAX_IDENTIFIER_LEN).unwrap();
    Statements::new(&table, in_memory)
}

/// The seed's "Database Schema" Oracle DDL, verbatim but for the `;`.
const SEED_DDL: &str = "CREATE TABLE litestar_session (
    session_id VARCHAR2(255) PRIMARY KEY,
    data BLOB NOT NULL,
    expires_at TIMESTAMP WITH TIME ZONE,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT SYSTIMESTAMP NOT NULL,
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT SYSTIMESTAMP NOT NULL
)";

/// The seed's "Generated DDL" of the In-Memory section.
const SEED_IN_MEMORY_DDL: &str = "CREATE TABLE app_sessions (
    session_id VARCHAR2(255) PRIMARY KEY,
    data BLOB NOT NULL,
    expires_at TIMESTAMP WITH TIME ZONE,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT SYSTIMESTAMP NOT NULL,
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT SYSTIMESTAMP NOT NULL
) INMEMORY";

#[test]
fn ddl_is_the_seeds_oracle_schema() {
    assert_eq!(
        statements("litestar_session", false).create_table(),
        SEED_DDL
    );
}

#[test]
fn in_memory_ddl_is_the_seeds_generated_ddl() {
    assert_eq!(
        statements("app_sessions", true).create_table(),
        SEED_IN_MEMORY_DDL
    );
    // Without the flag, the same table has no INMEMORY clause.
    let plain = statements("app_sessions", false);
    assert!(!plain.create_table().contains("INMEMORY"));
    assert_eq!(
        plain.create_table(),
        SEED_IN_MEMORY_DDL.trim_end_matches(" INMEMORY")
    );
}

#[test]
fn index_is_on_expires_at() {
    assert_eq!(
        statements("litestar_session", false).create_index(),
        "CREATE INDEX idx_litestar_session_expires_at ON litestar_session(expires_at)"
    );
    assert_eq!(
        statements("app_sessions", true).create_index(),
        "CREATE INDEX idx_app_sessions_expires_at ON app_sessions(expires_at)"
    );
}

#[test]
fn set_is_one_merge_on_the_database_clock() {
    let sql = statements("app_sessions", false);
    assert_eq!(
        sql.set(ValueSql::Bound),
        "MERGE INTO app_sessions t USING (SELECT :sid AS session_id FROM dual) s \
         ON (t.session_id = s.session_id) \
         WHEN MATCHED THEN UPDATE SET t.data = :val, \
         t.expires_at = SYSTIMESTAMP + NUMTODSINTERVAL(:ttl, 'SECOND'), \
         t.updated_at = SYSTIMESTAMP \
         WHEN NOT MATCHED THEN INSERT (session_id, data, expires_at, created_at, updated_at) \
         VALUES (s.session_id, :val, SYSTIMESTAMP + NUMTODSINTERVAL(:ttl, 'SECOND'), \
         SYSTIMESTAMP, SYSTIMESTAMP)"
    );
    // created_at is never touched by the update branch.
    let update_branch = sql
        .set(ValueSql::Bound)
        .split("WHEN NOT MATCHED")
        .next()
        .unwrap();
    assert!(!update_branch.contains("created_at"), "{update_branch}");
}

#[test]
fn the_empty_value_is_written_as_empty_blob() {
    let sql = statements("app_sessions", false);
    for text in [
        sql.set(ValueSql::Empty),
        sql.create(ValueSql::Empty),
        sql.update(ValueSql::Empty),
    ] {
        assert!(!text.contains(":val"), "{text}");
        assert!(text.contains("data = EMPTY_BLOB()"), "{text}");
    }
    assert!(
        sql.set(ValueSql::Empty)
            .contains("VALUES (s.session_id, EMPTY_BLOB(),")
    );
    assert_eq!(ValueSql::for_value(b""), ValueSql::Empty);
    assert_eq!(ValueSql::for_value(b"\0"), ValueSql::Bound);
}

#[test]
fn create_replaces_only_an_expired_row() {
    assert_eq!(
        statements("app_sessions", false).create(ValueSql::Bound),
        "MERGE INTO app_sessions t USING (SELECT :sid AS session_id FROM dual) s \
         ON (t.session_id = s.session_id) \
         WHEN MATCHED THEN UPDATE SET t.data = :val, \
         t.expires_at = SYSTIMESTAMP + NUMTODSINTERVAL(:ttl, 'SECOND'), \
         t.created_at = SYSTIMESTAMP, t.updated_at = SYSTIMESTAMP \
         WHERE t.expires_at <= SYSTIMESTAMP \
         WHEN NOT MATCHED THEN INSERT (session_id, data, expires_at, created_at, updated_at) \
         VALUES (s.session_id, :val, SYSTIMESTAMP + NUMTODSINTERVAL(:ttl, 'SECOND'), \
         SYSTIMESTAMP, SYSTIMESTAMP)"
    );
}

#[test]
fn update_writes_only_a_live_row() {
    assert_eq!(
        statements("app_sessions", false).update(ValueSql::Bound),
        "UPDATE app_sessions SET data = :val, \
         expires_at = SYSTIMESTAMP + NUMTODSINTERVAL(:ttl, 'SECOND'), updated_at = SYSTIMESTAMP \
         WHERE session_id = :sid AND (expires_at IS NULL OR expires_at > SYSTIMESTAMP)"
    );
}

#[test]
fn renewing_get_is_one_update_returning() {
    let sql = statements("app_sessions", false);
    assert_eq!(
        sql.get_renew(),
        "UPDATE app_sessions SET expires_at = SYSTIMESTAMP + NUMTODSINTERVAL(:ttl, 'SECOND') \
         WHERE session_id = :sid AND expires_at > SYSTIMESTAMP RETURNING data INTO :val"
    );
    assert_eq!(
        sql.get_permanent(),
        "SELECT data FROM app_sessions WHERE session_id = :sid AND expires_at IS NULL"
    );
    assert_eq!(
        sql.get(),
        "SELECT data FROM app_sessions WHERE session_id = :sid \
         AND (expires_at IS NULL OR expires_at > SYSTIMESTAMP)"
    );
}

#[test]
fn cleanup_deletes_in_batches() {
    assert_eq!(
        statements("app_sessions", false).delete_expired(),
        "DELETE FROM app_sessions WHERE expires_at <= SYSTIMESTAMP AND ROWNUM <= :batch"
    );
}

#[test]
fn reads_hide_expired_rows() {
    let sql = statements("app_sessions", false);
    assert_eq!(
        sql.exists(),
        "SELECT COUNT(*) FROM app_sessions WHERE session_id = :sid \
         AND (expires_at IS NULL OR expires_at > SYSTIMESTAMP)"
    );
    assert!(sql.expires_in().ends_with(
        "FROM (SELECT expires_at - SYSTIMESTAMP AS r FROM app_sessions \
         WHERE session_id = :sid AND expires_at > SYSTIMESTAMP)"
    ));
    assert_eq!(
        sql.delete(),
        "DELETE FROM app_sessions WHERE session_id = :sid"
    );
    assert_eq!(sql.delete_all(), "DELETE FROM app_sessions");
}

#[test]
fn in_memory_check_compares_upper_case() {
    let sql = statements("app_sessions", true);
    assert_eq!(
        sql.in_memory_status(),
        "SELECT inmemory FROM user_tables WHERE table_name = UPPER(:tbl)"
    );
    assert_eq!(
        InMemoryStatus::from_row(Some(Some("ENABLED"))),
        InMemoryStatus::Enabled
    );
    assert_eq!(
        InMemoryStatus::from_row(Some(Some("DISABLED"))),
        InMemoryStatus::Disabled
    );
    assert_eq!(
        InMemoryStatus::from_row(Some(None)),
        InMemoryStatus::Disabled
    );
    assert_eq!(
        InMemoryStatus::from_row(None),
        InMemoryStatus::TableNotFound
    );
    assert!(InMemoryStatus::Enabled.is_enabled());
    assert!(!InMemoryStatus::Disabled.is_enabled());
}

#[test]
fn only_the_table_name_is_spliced() {
    // Every statement names the table and carries no other literal input:
    // keys, values and durations are binds.
    let sql = statements("t_x", false);
    for text in [
        sql.get(),
        sql.get_renew(),
        sql.set(ValueSql::Bound),
        sql.create(ValueSql::Bound),
        sql.update(ValueSql::Bound),
        sql.delete(),
        sql.exists(),
        sql.expires_in(),
    ] {
        assert!(text.contains("t_x"), "{text}");
        assert!(text.contains(":sid"), "{text}");
        // The only quoted literal is the interval unit.
        assert!(!text.replace("'SECOND'", "").contains('\''), "{text}");
    }
}

#[test]
fn a_table_name_with_sql_in_it_is_refused_before_any_sql_is_built() {
    for name in [
        "sessions; DROP TABLE users",
        "sessions--",
        "x' OR '1'='1",
        "\"Quoted\"",
        "owner.sessions",
        "",
    ] {
        let err = StoreSettings::new().table_name(name).unwrap_err();
        assert!(
            matches!(err, Error::InvalidIdentifier { .. }),
            "{name:?}: {err}"
        );
        let doc = serde_json::json!({"litestar": {"session_table": name}});
        let err = StoreSettings::from_value(doc).unwrap_err();
        assert!(
            matches!(err, Error::InvalidIdentifier { .. }),
            "{name:?}: {err}"
        );
    }
    // The index name derived from the table must fit the workspace's 63.
    assert!(StoreSettings::new().table_name(&"s".repeat(48)).is_ok());
    let err = StoreSettings::new()
        .table_name(&"s".repeat(49))
        .unwrap_err();
    assert!(err.to_string().contains("idx_"), "{err}");
}
