//! Every SQL statement of [`OracleStore`](crate::OracleStore), built once
//! from a validated [`TableName`] and the `in_memory` flag.
//!
//! Nothing but the validated table name (and the index name derived from
//! it) is ever spliced into this text; keys, values and durations are bound
//! parameters (`:sid`, `:val`, `:ttl`, `:exp`, `:len`, `:batch`, `:tbl`,
//! `:owner`). Text
//! binds are `VARCHAR2`, never the driver's default `NVARCHAR2` (see
//! [`bind`](crate::bind)). The functions here are pure, so the SQL is
//! tested without a database (the unit tests below).

use session_core::TableName;

use crate::INLINE_VALUE_MAX;

/// How a statement that writes a value carries it.
///
/// Oracle stores a zero-length `BLOB` bind as `NULL`, which the `NOT NULL`
/// `data` column refuses; the empty value is therefore written as
/// `EMPTY_BLOB()` in the SQL text instead of a bind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ValueSql {
    /// The value is the bind parameter `:val` (any non-empty value).
    Bound,
    /// The value is the empty `BLOB`, written as `EMPTY_BLOB()`.
    Empty,
}

impl ValueSql {
    /// The kind of SQL that writes `value`.
    pub(crate) fn for_value(value: &[u8]) -> Self {
        if value.is_empty() {
            ValueSql::Empty
        } else {
            ValueSql::Bound
        }
    }

    fn expr(self) -> &'static str {
        match self {
            ValueSql::Bound => ":val",
            ValueSql::Empty => "EMPTY_BLOB()",
        }
    }
}

/// How `compare_and_set` carries the value it expects the row to hold.
///
/// Oracle cannot compare a `BLOB` with `=` (ORA-00932), so the row's `data`
/// is compared with `DBMS_LOB.COMPARE`, whose `BLOB` form takes two `BLOB`s,
/// after a length check with `DBMS_LOB.GETLENGTH` (which makes the match
/// independent of how `COMPARE` treats LOBs of different lengths).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExpectedSql {
    /// The empty value: `DBMS_LOB.GETLENGTH(data) = 0`, no bind. The empty
    /// value is stored as `EMPTY_BLOB()` (length 0), and a zero-length bind
    /// would be `NULL`; `DBMS_LOB.COMPARE` of two empty LOBs is never asked.
    Empty,
    /// Up to [`INLINE_VALUE_MAX`] bytes: `:exp` is a `RAW` bind, made a
    /// `BLOB` explicitly by `TO_BLOB(:exp)` (`TO_BLOB (raw)`, a SQL function
    /// since Oracle Database 11.1), so `COMPARE`'s `BLOB` overload is the
    /// only candidate. One round trip.
    Raw,
    /// Above [`INLINE_VALUE_MAX`] bytes: `:exp` is a temporary `BLOB`, written
    /// before the statement runs and bound as a LOB locator (the statement is
    /// built with `lob_locator()`). A `RAW` bind cannot hold it, and the
    /// `LONG RAW` bytes that `set` sends for a long value are Oracle's data
    /// interface for writing a LOB column (`SET`, `VALUES`), not a `BLOB`
    /// argument of a function: Oracle refuses LONG binds elsewhere
    /// (ORA-01461 is its error for that; not observed here).
    Lob,
}

impl ExpectedSql {
    /// The kind of SQL that compares the row with `expected`.
    pub(crate) fn for_expected(expected: &[u8]) -> Self {
        match expected.len() {
            0 => ExpectedSql::Empty,
            n if n <= INLINE_VALUE_MAX => ExpectedSql::Raw,
            _ => ExpectedSql::Lob,
        }
    }

    /// Whether the statement must be built with `lob_locator()`: only then
    /// does the driver bind a `BLOB` as a LOB locator.
    pub(crate) fn needs_locators(self) -> bool {
        self == ExpectedSql::Lob
    }

    fn predicate(self) -> &'static str {
        match self {
            ExpectedSql::Empty => "DBMS_LOB.GETLENGTH(data) = 0",
            ExpectedSql::Raw => {
                "DBMS_LOB.GETLENGTH(data) = :len AND DBMS_LOB.COMPARE(data, TO_BLOB(:exp)) = 0"
            }
            ExpectedSql::Lob => {
                "DBMS_LOB.GETLENGTH(data) = :len AND DBMS_LOB.COMPARE(data, :exp) = 0"
            }
        }
    }

    const ALL: [ExpectedSql; 3] = [ExpectedSql::Empty, ExpectedSql::Raw, ExpectedSql::Lob];
}

/// A pair of statement texts, one per [`ValueSql`].
#[derive(Debug, Clone)]
struct ByValue {
    bound: String,
    empty: String,
}

impl ByValue {
    fn new(build: impl Fn(&str) -> String) -> Self {
        ByValue {
            bound: build(ValueSql::Bound.expr()),
            empty: build(ValueSql::Empty.expr()),
        }
    }

    fn get(&self, kind: ValueSql) -> &str {
        match kind {
            ValueSql::Bound => &self.bound,
            ValueSql::Empty => &self.empty,
        }
    }
}

/// The catalog condition on a table's name and schema, for `all_tables`
/// and `all_tab_columns`: bind `:tbl` (the table name) and `:owner` (its
/// schema, `NULL` for the current schema), in this order of appearance
/// (Oracle binds by position of appearance), both as `VARCHAR2`: an
/// `NVARCHAR2` `:owner` beside the `VARCHAR2` of `SYS_CONTEXT` is ORA-12704.
pub(crate) const CATALOG: &str = "table_name = UPPER(:tbl) \
     AND owner = COALESCE(UPPER(:owner), SYS_CONTEXT('USERENV', 'CURRENT_SCHEMA'))";

/// The expiry expression, on the database clock: `NULL` when `:ttl` is
/// bound to `NULL` (no expiry), else now + `:ttl` seconds.
const EXPIRY: &str = "SYSTIMESTAMP + NUMTODSINTERVAL(:ttl, 'SECOND')";

/// The statements of one session table, built once at construction.
#[derive(Debug, Clone)]
pub(crate) struct Statements {
    create_table: String,
    create_index: String,
    drop_table: String,
    in_memory_status: String,
    get: String,
    get_renew: String,
    get_permanent: String,
    set: ByValue,
    create_revive: ByValue,
    create_insert: ByValue,
    update: ByValue,
    compare_and_set: [ByValue; 3],
    delete: String,
    delete_live: String,
    delete_all: String,
    exists: String,
    expires_in: String,
    delete_expired: String,
}

impl Statements {
    /// Builds every statement for `table`; with `in_memory`, the table DDL
    /// ends in ` INMEMORY` (Oracle Database In-Memory column store).
    pub(crate) fn new(table: &TableName, in_memory: bool) -> Self {
        let t = table.qualified();
        // The index lives in the table's schema, not the connecting user's.
        let index = match table.schema() {
            Some(schema) => format!("{schema}.{}", table.index_name()),
            None => table.index_name(),
        };
        let live = "(expires_at IS NULL OR expires_at > SYSTIMESTAMP)";
        Statements {
            create_table: format!(
                "CREATE TABLE {t} (\n    \
                 session_id VARCHAR2(255) PRIMARY KEY,\n    \
                 data BLOB NOT NULL,\n    \
                 expires_at TIMESTAMP WITH TIME ZONE,\n    \
                 created_at TIMESTAMP WITH TIME ZONE DEFAULT SYSTIMESTAMP NOT NULL,\n    \
                 updated_at TIMESTAMP WITH TIME ZONE DEFAULT SYSTIMESTAMP NOT NULL\n\
                 ){}",
                if in_memory { " INMEMORY" } else { "" }
            ),
            create_index: format!("CREATE INDEX {index} ON {t}(expires_at)"),
            drop_table: format!("DROP TABLE {t} PURGE"),
            in_memory_status: format!("SELECT inmemory FROM all_tables WHERE {CATALOG}"),
            get: format!("SELECT data FROM {t} WHERE session_id = :sid AND {live}"),
            get_renew: format!(
                "UPDATE {t} SET expires_at = {EXPIRY} \
                 WHERE session_id = :sid AND expires_at > SYSTIMESTAMP \
                 RETURNING data INTO :val"
            ),
            get_permanent: format!(
                "SELECT data FROM {t} WHERE session_id = :sid AND expires_at IS NULL"
            ),
            set: ByValue::new(|val| {
                format!(
                    "MERGE INTO {t} t USING (SELECT :sid AS session_id FROM dual) s \
                     ON (t.session_id = s.session_id) \
                     WHEN MATCHED THEN UPDATE SET t.data = {val}, t.expires_at = {EXPIRY}, \
                     t.updated_at = SYSTIMESTAMP \
                     WHEN NOT MATCHED THEN INSERT (session_id, data, expires_at, created_at, updated_at) \
                     VALUES (s.session_id, {val}, {EXPIRY}, SYSTIMESTAMP, SYSTIMESTAMP)"
                )
            }),
            create_revive: ByValue::new(|val| {
                format!(
                    "UPDATE {t} SET data = {val}, expires_at = {EXPIRY}, \
                     created_at = SYSTIMESTAMP, updated_at = SYSTIMESTAMP \
                     WHERE session_id = :sid AND expires_at <= SYSTIMESTAMP"
                )
            }),
            create_insert: ByValue::new(|val| {
                format!(
                    "INSERT INTO {t} (session_id, data, expires_at, created_at, updated_at) \
                     VALUES (:sid, {val}, {EXPIRY}, SYSTIMESTAMP, SYSTIMESTAMP)"
                )
            }),
            update: ByValue::new(|val| {
                format!(
                    "UPDATE {t} SET data = {val}, expires_at = {EXPIRY}, updated_at = SYSTIMESTAMP \
                     WHERE session_id = :sid AND {live}"
                )
            }),
            compare_and_set: ExpectedSql::ALL.map(|expected| {
                ByValue::new(|val| {
                    format!(
                        "UPDATE {t} SET data = {val}, expires_at = {EXPIRY}, \
                         updated_at = SYSTIMESTAMP \
                         WHERE session_id = :sid AND {live} AND {}",
                        expected.predicate()
                    )
                })
            }),
            delete: format!("DELETE FROM {t} WHERE session_id = :sid"),
            delete_live: format!("DELETE FROM {t} WHERE session_id = :sid AND {live}"),
            delete_all: format!("DELETE FROM {t}"),
            exists: format!("SELECT COUNT(*) FROM {t} WHERE session_id = :sid AND {live}"),
            expires_in: format!(
                "SELECT EXTRACT(DAY FROM r) * 86400 + EXTRACT(HOUR FROM r) * 3600 \
                 + EXTRACT(MINUTE FROM r) * 60 + EXTRACT(SECOND FROM r) \
                 FROM (SELECT expires_at - SYSTIMESTAMP AS r FROM {t} \
                 WHERE session_id = :sid AND expires_at > SYSTIMESTAMP)"
            ),
            delete_expired: format!(
                "DELETE FROM {t} WHERE expires_at <= SYSTIMESTAMP AND ROWNUM <= :batch"
            ),
        }
    }

    /// `CREATE TABLE`: the seed's Oracle DDL, column for column, plus
    /// ` INMEMORY` when `in_memory` is set. Fails with ORA-00955 if the
    /// table exists (the store treats that as success).
    pub(crate) fn create_table(&self) -> &str {
        &self.create_table
    }

    /// `CREATE INDEX idx_<table>_expires_at ON <table>(expires_at)`; for a
    /// schema-qualified table, `<schema>.idx_...` so the index is created in
    /// the table's schema.
    pub(crate) fn create_index(&self) -> &str {
        &self.create_index
    }

    /// `DROP TABLE <table> PURGE`.
    pub(crate) fn drop_table(&self) -> &str {
        &self.drop_table
    }

    /// The seed's verification query on `all_tables` rather than
    /// `user_tables`, so a table in another schema is found: `inmemory` of
    /// the table named `:tbl` owned by `:owner` (`NULL`: the current
    /// schema); Oracle stores unquoted names upper case, hence `UPPER`. See
    /// [`CATALOG`].
    pub(crate) fn in_memory_status(&self) -> &str {
        &self.in_memory_status
    }

    /// The value of a live key (`:sid`), without renewal.
    pub(crate) fn get(&self) -> &str {
        &self.get
    }

    /// The renewing read: one `UPDATE ... RETURNING data INTO :val` that
    /// moves the expiry of a live, expiring key to now + `:ttl` seconds.
    pub(crate) fn get_renew(&self) -> &str {
        &self.get_renew
    }

    /// The value of a key without expiry (the renewing read's second step
    /// when its `UPDATE` matched no row).
    pub(crate) fn get_permanent(&self) -> &str {
        &self.get_permanent
    }

    /// The upsert: one `MERGE` that replaces the value and expiry of an
    /// existing row (keeping `created_at`) or inserts a new one.
    pub(crate) fn set(&self, value: ValueSql) -> &str {
        self.set.get(value)
    }

    /// Insert-if-absent, step 1: replace the row of `:sid` only if it has
    /// expired (a conditional `UPDATE`; one row affected means it wrote).
    /// An `UPDATE` that waited for another writer's lock re-checks its
    /// `WHERE` on the committed row, so a row another `create` just revived
    /// is not replaced again.
    pub(crate) fn create_revive(&self, value: ValueSql) -> &str {
        self.create_revive.get(value)
    }

    /// Insert-if-absent, step 2 (when step 1 changed nothing): a plain
    /// `INSERT`. ORA-00001 means the key exists and is live, or another
    /// writer inserted it first: not written.
    pub(crate) fn create_insert(&self, value: ValueSql) -> &str {
        self.create_insert.get(value)
    }

    /// Replace-if-live: one row affected means it wrote.
    pub(crate) fn update(&self, value: ValueSql) -> &str {
        self.update.get(value)
    }

    /// Compare-and-set: the write of [`update`](Self::update) (value,
    /// expiry, `updated_at`; `created_at` kept), on the live row of `:sid`
    /// only if its `data` is, byte for byte, the expected value (see
    /// [`ExpectedSql`]). One row affected means it wrote.
    ///
    /// Of concurrent ones from the same expected value, the first to lock
    /// the row writes; the others waited for its lock, and an `UPDATE` that
    /// waited re-checks its `WHERE` on the committed row (Oracle's write
    /// consistency, as `create_revive` relies on), whose `data` no longer
    /// matches: 0 rows. That the re-check sees a change of `data`, a LOB
    /// read through `DBMS_LOB` (and, without expiry, the only column of the
    /// `WHERE` that changed), is what the live race test proves; it has not
    /// run against a server.
    pub(crate) fn compare_and_set(&self, value: ValueSql, expected: ExpectedSql) -> &str {
        let index = match expected {
            ExpectedSql::Empty => 0,
            ExpectedSql::Raw => 1,
            ExpectedSql::Lob => 2,
        };
        self.compare_and_set[index].get(value)
    }

    /// Delete one key.
    pub(crate) fn delete(&self) -> &str {
        &self.delete
    }

    /// Delete the live row of `:sid`: one row affected means it was live.
    /// An expired row is left to cleanup. Of concurrent ones, the others
    /// waited for the winner's lock and find the row gone: 0 rows.
    pub(crate) fn delete_live(&self) -> &str {
        &self.delete_live
    }

    /// Delete every row of the table.
    pub(crate) fn delete_all(&self) -> &str {
        &self.delete_all
    }

    /// `COUNT(*)` of the live row of `:sid` (0 or 1).
    pub(crate) fn exists(&self) -> &str {
        &self.exists
    }

    /// Remaining seconds of a live, expiring key, computed on the database
    /// clock; no row when missing, expired or without expiry.
    pub(crate) fn expires_in(&self) -> &str {
        &self.expires_in
    }

    /// One batch of cleanup: at most `:batch` expired rows.
    pub(crate) fn delete_expired(&self) -> &str {
        &self.delete_expired
    }
}

/// What `all_tables.inmemory` says about the session table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InMemoryStatus {
    /// `ENABLED`: the table is in the In-Memory column store.
    Enabled,
    /// `DISABLED` (or `NULL`): a regular table.
    Disabled,
    /// No table of that name in its schema (the current schema when the
    /// name is unqualified) that the connecting user can see.
    TableNotFound,
}

impl InMemoryStatus {
    /// Interprets the query's result: `None` when no row came back, else
    /// the `inmemory` column (`ENABLED`, `DISABLED` or `NULL`).
    pub(crate) fn from_row(row: Option<Option<&str>>) -> Self {
        match row {
            None => InMemoryStatus::TableNotFound,
            Some(Some(v)) if v.trim().eq_ignore_ascii_case("ENABLED") => InMemoryStatus::Enabled,
            Some(_) => InMemoryStatus::Disabled,
        }
    }

    /// True only for [`InMemoryStatus::Enabled`].
    pub fn is_enabled(self) -> bool {
        self == InMemoryStatus::Enabled
    }
}

#[cfg(test)]
mod tests {
    //! The generated SQL, compared to the expected text: the seed's Oracle
    //! DDL, the upsert MERGE, the renewing UPDATE and the batched cleanup,
    //! with the table name substituted. No database needed (moved from
    //! tests/sql.rs).

    use super::*;
    use crate::MAX_IDENTIFIER_LEN;

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
            sql.create_revive(ValueSql::Empty),
            sql.update(ValueSql::Empty),
            sql.compare_and_set(ValueSql::Empty, ExpectedSql::Raw),
            sql.compare_and_set(ValueSql::Empty, ExpectedSql::Lob),
            sql.compare_and_set(ValueSql::Empty, ExpectedSql::Empty),
        ] {
            assert!(!text.contains(":val"), "{text}");
            assert!(text.contains("data = EMPTY_BLOB()"), "{text}");
        }
        assert!(
            sql.create_insert(ValueSql::Empty)
                .contains("VALUES (:sid, EMPTY_BLOB(),")
        );
        assert!(
            sql.set(ValueSql::Empty)
                .contains("VALUES (s.session_id, EMPTY_BLOB(),")
        );
        assert_eq!(ValueSql::for_value(b""), ValueSql::Empty);
        assert_eq!(ValueSql::for_value(b"\0"), ValueSql::Bound);
    }

    #[test]
    fn create_is_a_conditional_update_then_an_insert() {
        let sql = statements("app_sessions", false);
        assert_eq!(
            sql.create_revive(ValueSql::Bound),
            "UPDATE app_sessions SET data = :val, \
             expires_at = SYSTIMESTAMP + NUMTODSINTERVAL(:ttl, 'SECOND'), \
             created_at = SYSTIMESTAMP, updated_at = SYSTIMESTAMP \
             WHERE session_id = :sid AND expires_at <= SYSTIMESTAMP"
        );
        assert_eq!(
            sql.create_insert(ValueSql::Bound),
            "INSERT INTO app_sessions (session_id, data, expires_at, created_at, updated_at) \
             VALUES (:sid, :val, SYSTIMESTAMP + NUMTODSINTERVAL(:ttl, 'SECOND'), \
             SYSTIMESTAMP, SYSTIMESTAMP)"
        );
        // No MERGE: its restart on a concurrent change of `expires_at` is
        // not documented, a conditional UPDATE's re-check is.
        for kind in [ValueSql::Bound, ValueSql::Empty] {
            assert!(!sql.create_revive(kind).contains("MERGE"));
            assert!(!sql.create_insert(kind).contains("MERGE"));
        }
    }

    #[test]
    fn a_schema_qualified_table_keeps_its_index_and_catalog_in_its_schema() {
        let table = TableName::new_qualified("auth.sessions", MAX_IDENTIFIER_LEN).unwrap();
        let sql = Statements::new(&table, false);
        assert_eq!(
            sql.create_index(),
            "CREATE INDEX auth.idx_sessions_expires_at ON auth.sessions(expires_at)"
        );
        assert_eq!(
            sql.in_memory_status(),
            "SELECT inmemory FROM all_tables WHERE table_name = UPPER(:tbl) \
             AND owner = COALESCE(UPPER(:owner), SYS_CONTEXT('USERENV', 'CURRENT_SCHEMA'))"
        );
        assert!(
            sql.create_table()
                .starts_with("CREATE TABLE auth.sessions (")
        );
        assert!(sql.get().contains("FROM auth.sessions WHERE"));
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

    /// The `compare_and_set` texts: `update`'s write, guarded by the live
    /// predicate and the value, compared through `DBMS_LOB` (never `=` on a
    /// `BLOB`).
    #[test]
    fn compare_and_set_is_one_update_guarded_by_the_value() {
        let sql = statements("app_sessions", false);
        let write = "UPDATE app_sessions SET data = :val, \
             expires_at = SYSTIMESTAMP + NUMTODSINTERVAL(:ttl, 'SECOND'), updated_at = SYSTIMESTAMP \
             WHERE session_id = :sid AND (expires_at IS NULL OR expires_at > SYSTIMESTAMP) AND ";
        assert_eq!(
            sql.compare_and_set(ValueSql::Bound, ExpectedSql::Raw),
            format!(
                "{write}DBMS_LOB.GETLENGTH(data) = :len \
                 AND DBMS_LOB.COMPARE(data, TO_BLOB(:exp)) = 0"
            )
        );
        assert_eq!(
            sql.compare_and_set(ValueSql::Bound, ExpectedSql::Lob),
            format!("{write}DBMS_LOB.GETLENGTH(data) = :len AND DBMS_LOB.COMPARE(data, :exp) = 0")
        );
        assert_eq!(
            sql.compare_and_set(ValueSql::Bound, ExpectedSql::Empty),
            format!("{write}DBMS_LOB.GETLENGTH(data) = 0")
        );
        assert_eq!(
            sql.compare_and_set(ValueSql::Empty, ExpectedSql::Raw),
            format!(
                "{}DBMS_LOB.GETLENGTH(data) = :len \
                 AND DBMS_LOB.COMPARE(data, TO_BLOB(:exp)) = 0",
                write.replace("data = :val", "data = EMPTY_BLOB()")
            )
        );
        for value in [ValueSql::Bound, ValueSql::Empty] {
            for expected in ExpectedSql::ALL {
                let text = sql.compare_and_set(value, expected);
                // The same write as `update`, plus the value's predicate.
                assert_eq!(
                    text,
                    format!("{} AND {}", sql.update(value), expected.predicate())
                );
                // created_at is kept; no BLOB is compared with `=`.
                assert!(!text.contains("created_at"), "{text}");
                assert!(!text.contains("data = :exp"), "{text}");
                assert!(!text.contains("MERGE"), "{text}");
            }
        }
    }

    /// The bind names of each `compare_and_set` text: exactly those the
    /// store binds for it (a name bound but absent is ORA-01036).
    #[test]
    fn compare_and_set_placeholders_are_the_binds_the_store_sends() {
        fn placeholders(text: &str) -> Vec<&str> {
            let mut names: Vec<&str> = text
                .match_indices(':')
                .map(|(at, _)| {
                    let rest = &text[at + 1..];
                    let end = rest
                        .find(|c: char| !c.is_ascii_alphanumeric() && c != '_')
                        .unwrap_or(rest.len());
                    &rest[..end]
                })
                .collect();
            names.sort_unstable();
            names.dedup();
            names
        }
        let sql = statements("app_sessions", false);
        let cases = [
            (
                ValueSql::Bound,
                ExpectedSql::Raw,
                vec!["exp", "len", "sid", "ttl", "val"],
            ),
            (
                ValueSql::Bound,
                ExpectedSql::Lob,
                vec!["exp", "len", "sid", "ttl", "val"],
            ),
            (
                ValueSql::Bound,
                ExpectedSql::Empty,
                vec!["sid", "ttl", "val"],
            ),
            (
                ValueSql::Empty,
                ExpectedSql::Raw,
                vec!["exp", "len", "sid", "ttl"],
            ),
            (
                ValueSql::Empty,
                ExpectedSql::Lob,
                vec!["exp", "len", "sid", "ttl"],
            ),
            (ValueSql::Empty, ExpectedSql::Empty, vec!["sid", "ttl"]),
        ];
        for (value, expected, names) in cases {
            let text = sql.compare_and_set(value, expected);
            assert_eq!(placeholders(text), names, "{text}");
        }
        // The empty expected value binds what `update` binds.
        for value in [ValueSql::Bound, ValueSql::Empty] {
            assert_eq!(
                placeholders(sql.compare_and_set(value, ExpectedSql::Empty)),
                placeholders(sql.update(value))
            );
        }
        assert_eq!(placeholders(sql.delete_live()), ["sid"]);
    }

    #[test]
    fn the_expected_value_is_carried_by_its_length() {
        let sized = |n: usize| ExpectedSql::for_expected(&vec![7u8; n]);
        assert_eq!(sized(0), ExpectedSql::Empty);
        assert_eq!(sized(1), ExpectedSql::Raw);
        assert_eq!(sized(INLINE_VALUE_MAX), ExpectedSql::Raw);
        assert_eq!(sized(INLINE_VALUE_MAX + 1), ExpectedSql::Lob);
        assert_eq!(sized(1 << 20), ExpectedSql::Lob);
        // Only the LOB form needs a statement that binds LOB locators.
        assert!(ExpectedSql::Lob.needs_locators());
        assert!(!ExpectedSql::Raw.needs_locators());
        assert!(!ExpectedSql::Empty.needs_locators());
    }

    #[test]
    fn delete_live_removes_only_a_live_row() {
        assert_eq!(
            statements("app_sessions", false).delete_live(),
            "DELETE FROM app_sessions WHERE session_id = :sid \
             AND (expires_at IS NULL OR expires_at > SYSTIMESTAMP)"
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
            format!("SELECT inmemory FROM all_tables WHERE {CATALOG}")
        );
        assert!(sql.in_memory_status().contains("table_name = UPPER(:tbl)"));
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
            sql.create_revive(ValueSql::Bound),
            sql.create_insert(ValueSql::Bound),
            sql.update(ValueSql::Bound),
            sql.compare_and_set(ValueSql::Bound, ExpectedSql::Raw),
            sql.compare_and_set(ValueSql::Bound, ExpectedSql::Lob),
            sql.compare_and_set(ValueSql::Empty, ExpectedSql::Empty),
            sql.delete(),
            sql.delete_live(),
            sql.exists(),
            sql.expires_in(),
        ] {
            assert!(text.contains("t_x"), "{text}");
            assert!(text.contains(":sid"), "{text}");
            // The only quoted literal is the interval unit.
            assert!(!text.replace("'SECOND'", "").contains('\''), "{text}");
        }
    }
}
