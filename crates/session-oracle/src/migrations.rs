//! The Oracle migrations of the session table: its SQL for the one
//! migration runner, [`session_core::migrate::Dialect`].
//!
//! `ext_litestar_0001` is exactly [`OracleStore::create_table`]'s DDL, so
//! its checksum covers the table name and `in_memory`. Oracle's DDL commits
//! on its own, so the tracking table `<session_table>_migrations` is
//! created once per run outside any transaction (ORA-00955, "already
//! exists", is fine), each step takes `LOCK TABLE <tracking> IN EXCLUSIVE
//! MODE`, a migration's DDL is run idempotently (ORA-00955 / ORA-01408
//! count as done), and a record another instance wrote first (ORA-00001)
//! makes the runner re-plan.
//!
//! [`OracleStore::create_table`]: crate::OracleStore::create_table

use session_core::migrate::{ColumnSpec, Dialect, Migration, SqlExecutor};
use session_core::{Error, Result, TableName};

use crate::error::{ErrorClass, ErrorCode, classify, from_oracle};
use crate::sql::{CATALOG, Statements};
use crate::{BACKEND, bind};

/// The seed's columns as `all_tab_columns` reports them (the precision of
/// `TIMESTAMP(6) WITH TIME ZONE` is ignored).
const SESSION_COLUMNS: &[ColumnSpec] = &[
    ColumnSpec::new("SESSION_ID", "VARCHAR2", Some(true)),
    ColumnSpec::new("DATA", "BLOB", Some(true)),
    ColumnSpec::new("EXPIRES_AT", "TIMESTAMP WITH TIME ZONE", Some(false)),
    ColumnSpec::new("CREATED_AT", "TIMESTAMP WITH TIME ZONE", Some(true)),
    ColumnSpec::new("UPDATED_AT", "TIMESTAMP WITH TIME ZONE", Some(true)),
];

/// The migrations of `table` and the SQL that runs them.
pub(crate) fn dialect(table: &TableName, in_memory: bool) -> Dialect {
    let tracking = table.migrations_table().qualified();
    let sql = Statements::new(table, in_memory);
    Dialect {
        backend: BACKEND,
        table: table.clone(),
        migrations: vec![Migration::initial(vec![
            sql.create_table().to_owned(),
            sql.create_index().to_owned(),
        ])],
        session_columns: SESSION_COLUMNS,
        tracking_ddl: format!(
            "CREATE TABLE {tracking} (\n    \
             version VARCHAR2(64) PRIMARY KEY,\n    \
             description VARCHAR2(400) NOT NULL,\n    \
             checksum VARCHAR2(64) NOT NULL,\n    \
             applied_at TIMESTAMP WITH TIME ZONE DEFAULT SYSTIMESTAMP NOT NULL\n)"
        ),
        ddl_commits: true,
        begin: vec![format!("LOCK TABLE {tracking} IN EXCLUSIVE MODE")],
        select_applied: format!(
            "SELECT version, description, checksum, \
             ROUND((CAST(SYS_EXTRACT_UTC(applied_at) AS DATE) - DATE '1970-01-01') * 86400) \
             FROM {tracking} ORDER BY version"
        ),
        insert: format!(
            "INSERT INTO {tracking} (version, description, checksum) \
             VALUES (:version, :description, :checksum)"
        ),
        table_exists: format!("SELECT 1 FROM all_tables WHERE {CATALOG}"),
        columns: format!(
            "SELECT column_name, data_type, CASE nullable WHEN 'N' THEN 1 ELSE 0 END \
             FROM all_tab_columns WHERE {CATALOG} ORDER BY column_id"
        ),
    }
}

/// One connection running the dialect's SQL, inside the store's blocking
/// task. `COMMIT` and `ROLLBACK` go through the driver's own calls. Every
/// parameter (a catalog name, a migration record field) is bound as
/// `VARCHAR2` ([`bind::texts`]), never as the driver's default `NVARCHAR2`.
pub(crate) struct OracleExecutor<'c> {
    pub(crate) conn: &'c oracle::Connection,
    /// The class of the last failed statement's error.
    last_error: ErrorClass,
}

impl<'c> OracleExecutor<'c> {
    pub(crate) fn new(conn: &'c oracle::Connection) -> Self {
        OracleExecutor {
            conn,
            last_error: ErrorClass::Other,
        }
    }

    fn failed(&mut self, err: oracle::Error, what: &str) -> Error {
        self.last_error = classify(ErrorCode::of(&err));
        from_oracle(err, what)
    }
}

#[async_trait::async_trait]
impl SqlExecutor for OracleExecutor<'_> {
    async fn execute(&mut self, sql: &str, params: &[Option<&str>]) -> Result<()> {
        let done = match sql {
            "COMMIT" => self.conn.commit(),
            "ROLLBACK" => self.conn.rollback(),
            _ => {
                let binds = bind::texts(params);
                self.conn.execute(sql, &bind::params(&binds)).map(drop)
            }
        };
        done.map_err(|e| self.failed(e, "migrate"))
    }

    async fn query(
        &mut self,
        sql: &str,
        params: &[Option<&str>],
    ) -> Result<Vec<Vec<Option<String>>>> {
        let binds = bind::texts(params);
        let rows = self.conn.query(sql, &bind::params(&binds));
        let rows = rows.and_then(|rows| {
            rows.map(|row| {
                let row = row?;
                (0..row.sql_values().len())
                    .map(|i| row.get::<usize, Option<String>>(i))
                    .collect()
            })
            .collect()
        });
        rows.map_err(|e| self.failed(e, "read the migration catalog"))
    }

    /// ORA-00955 / ORA-01408: another instance created it.
    fn already_exists(&self, _err: &Error) -> bool {
        self.last_error == ErrorClass::AlreadyExists
    }

    /// ORA-00001: another instance recorded the migration first.
    fn unique_violation(&self, _err: &Error) -> bool {
        self.last_error == ErrorClass::UniqueViolation
    }
}

#[cfg(test)]
mod tests {
    //! The Oracle migration SQL, offline (no server here; live runs are in
    //! `tests/live.rs`, gated on ORACLE_TEST_*).

    use super::*;
    use crate::MAX_IDENTIFIER_LEN;

    fn table(name: &str) -> TableName {
        TableName::new_qualified(name, MAX_IDENTIFIER_LEN).unwrap()
    }

    #[test]
    fn the_first_migration_is_create_table_exactly() {
        for in_memory in [false, true] {
            let list = dialect(&table("app_sessions"), in_memory).migrations;
            session_core::migrate::validate_list(&list).unwrap();
            let sql = Statements::new(&table("app_sessions"), in_memory);
            assert_eq!(list[0].version, "ext_litestar_0001");
            assert_eq!(list[0].statements, [sql.create_table(), sql.create_index()]);
        }
        // in_memory changes the SQL, so the checksum.
        let plain = dialect(&table("litestar_session"), false).migrations[0].checksum();
        let inmem = dialect(&table("litestar_session"), true).migrations[0].checksum();
        assert_ne!(plain, inmem);
    }

    #[test]
    fn the_tracking_table_and_its_lock() {
        let sql = dialect(&table("app_sessions"), false);
        assert_eq!(
            sql.tracking_ddl,
            "CREATE TABLE app_sessions_migrations (\n    \
             version VARCHAR2(64) PRIMARY KEY,\n    \
             description VARCHAR2(400) NOT NULL,\n    \
             checksum VARCHAR2(64) NOT NULL,\n    \
             applied_at TIMESTAMP WITH TIME ZONE DEFAULT SYSTIMESTAMP NOT NULL\n)"
        );
        assert_eq!(
            sql.begin,
            ["LOCK TABLE app_sessions_migrations IN EXCLUSIVE MODE"]
        );
        assert!(sql.ddl_commits, "Oracle's DDL commits on its own");
        assert_eq!(
            sql.insert,
            "INSERT INTO app_sessions_migrations (version, description, checksum) \
             VALUES (:version, :description, :checksum)"
        );
        assert!(
            sql.select_applied
                .starts_with("SELECT version, description, checksum, ")
        );
        assert!(
            sql.select_applied
                .ends_with("FROM app_sessions_migrations ORDER BY version")
        );
    }

    #[test]
    fn catalog_queries_bind_names_and_honour_a_schema() {
        let sql = dialect(&table("auth.sessions"), false);
        assert!(sql.begin[0].starts_with("LOCK TABLE auth.sessions_migrations "));
        for text in [&sql.table_exists, &sql.columns] {
            assert!(text.contains("table_name = UPPER(:tbl)"), "{text}");
            assert!(
                text.contains("COALESCE(UPPER(:owner), SYS_CONTEXT('USERENV', 'CURRENT_SCHEMA'))"),
                "{text}"
            );
            assert!(
                !text.contains("sessions'"),
                "names are bound, not spliced: {text}"
            );
        }
    }

    /// A connection that records what the runner sends: no table exists,
    /// and the tracking table holds what was inserted into it.
    #[derive(Default)]
    struct Recorder {
        sent: Vec<(String, Vec<Option<String>>)>,
        recorded: Vec<Vec<Option<String>>>,
    }

    impl Recorder {
        fn record(&mut self, sql: &str, params: &[Option<&str>]) {
            let params = params.iter().map(|p| p.map(str::to_owned)).collect();
            self.sent.push((sql.to_owned(), params));
        }
    }

    #[async_trait::async_trait]
    impl SqlExecutor for Recorder {
        async fn execute(&mut self, sql: &str, params: &[Option<&str>]) -> Result<()> {
            self.record(sql, params);
            if sql.starts_with("INSERT INTO") {
                let mut row: Vec<Option<String>> =
                    params.iter().map(|p| p.map(str::to_owned)).collect();
                row.push(Some("0".to_owned()));
                self.recorded.push(row);
            }
            Ok(())
        }

        async fn query(
            &mut self,
            sql: &str,
            params: &[Option<&str>],
        ) -> Result<Vec<Vec<Option<String>>>> {
            self.record(sql, params);
            if sql.starts_with("SELECT version") {
                return Ok(self.recorded.clone());
            }
            Ok(Vec::new())
        }

        fn already_exists(&self, _err: &Error) -> bool {
            false
        }

        fn unique_violation(&self, _err: &Error) -> bool {
            false
        }
    }

    /// The bind placeholders of `sql` (`:name`), outside quoted literals.
    fn placeholders(sql: &str) -> Vec<String> {
        let (mut out, mut quoted, mut chars) = (Vec::new(), false, sql.chars().peekable());
        while let Some(c) = chars.next() {
            match c {
                '\'' => quoted = !quoted,
                ':' if !quoted && chars.peek().is_some_and(char::is_ascii_alphabetic) => {
                    let mut name = String::new();
                    while let Some(&n) = chars.peek() {
                        if !(n.is_ascii_alphanumeric() || n == '_') {
                            break;
                        }
                        name.push(n);
                        chars.next();
                    }
                    out.push(name);
                }
                _ => {}
            }
        }
        out
    }

    /// Every statement the runner sends through [`OracleExecutor`] (a
    /// migration, `session_table_exists`, `applied_migrations`) gets as
    /// many binds as it has placeholders, and the executor binds each as
    /// `VARCHAR2`: the catalog's `:owner` beside `SYS_CONTEXT` is no
    /// ORA-12704, the `:tbl` comparison no `NVARCHAR2` conversion.
    #[tokio::test(flavor = "current_thread")]
    async fn the_runner_binds_every_parameter_as_varchar2() {
        for name in ["litestar_session", "auth.sessions"] {
            let table = table(name);
            let sql = dialect(&table, false);
            let mut ex = Recorder::default();
            sql.run(&mut ex).await.unwrap();
            sql.applied(&mut ex).await.unwrap();
            assert!(!sql.table_exists(&mut ex, &table).await.unwrap());

            let mut catalog = 0;
            for (text, params) in &ex.sent {
                assert_eq!(placeholders(text).len(), params.len(), "{text}");
                let values: Vec<Option<&str>> = params.iter().map(Option::as_deref).collect();
                for bind in bind::texts(&values) {
                    assert!(
                        matches!(
                            bind.oracle_type(),
                            oracle::sql_type::OracleType::Varchar2(_)
                        ),
                        "{text}: {:?}",
                        bind.oracle_type()
                    );
                }
                if text.contains(CATALOG) {
                    catalog += 1;
                    assert_eq!(placeholders(text), ["tbl", "owner"], "{text}");
                    let named = params[0].as_deref();
                    let tracking = table.migrations_table_name();
                    assert!(
                        named == Some(table.table()) || named == Some(&tracking),
                        "{named:?}"
                    );
                    assert_eq!(params[1].as_deref(), table.schema());
                }
            }
            // `run` asks whether the table exists, then `table_exists`.
            assert!(catalog >= 2, "{:?}", ex.sent);
            assert!(
                ex.sent
                    .iter()
                    .any(|(text, params)| text == &sql.insert && params.len() == 3),
                "the migration was recorded with three binds"
            );
        }
    }

    #[test]
    fn the_script_creates_records_and_ends_each_statement() {
        let script = dialect(&table("litestar_session"), true).script();
        assert!(script.starts_with(
            "-- migration tracking table\nCREATE TABLE litestar_session_migrations ("
        ));
        assert!(script.contains(") INMEMORY;\n"));
        assert!(script.contains(
            "CREATE INDEX idx_litestar_session_expires_at ON litestar_session(expires_at);\n"
        ));
        let checksum = dialect(&table("litestar_session"), true).migrations[0].checksum();
        assert!(script.contains(&format!(
            "INSERT INTO litestar_session_migrations (version, description, checksum) VALUES ('ext_litestar_0001', 'create the session table and its index on expires_at', '{checksum}');"
        )));
    }
}
