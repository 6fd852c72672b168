//! Oracle's migration dialect for [`session_core::migrate::run`].
//!
//! `ext_litestar_0001` is exactly [`OracleStore::create_table`]'s DDL, so
//! its checksum covers the table name and `in_memory`. The tracking table
//! `<session_table>_migrations` is created in [`prepare`](OracleDialect::prepare),
//! outside any transaction (Oracle's DDL commits on its own; ORA-00955,
//! "already exists", is fine). Each step takes `LOCK TABLE <tracking> IN
//! EXCLUSIVE MODE`. A migration's DDL commits too (releasing that lock), so
//! it cannot share a transaction with its record: the DDL is run
//! idempotently (ORA-00955 / ORA-01408 count as done) and a record another
//! instance wrote first (ORA-00001) is reported to the runner, which re-plans.
//!
//! [`OracleStore::create_table`]: crate::OracleStore::create_table

use std::time::{Duration, UNIX_EPOCH};

use session_core::migrate::{
    AppliedMigration, ColumnInfo, ColumnSpec, Migration, MigrationDialect, script,
};
use session_core::{Error, Result, TableName};

use crate::BACKEND;
use crate::error::{ErrorClass, ErrorCode, classify, from_oracle};
use crate::sql::Statements;

/// The columns of the seed's Oracle session table, as `all_tab_columns`
/// reports them (`TIMESTAMP(6) WITH TIME ZONE` matches, the precision is
/// ignored); an existing table is adopted only if it has exactly these.
const SESSION_COLUMNS: &[ColumnSpec] = &[
    column("SESSION_ID", "VARCHAR2", true),
    column("DATA", "BLOB", true),
    column("EXPIRES_AT", "TIMESTAMP WITH TIME ZONE", false),
    column("CREATED_AT", "TIMESTAMP WITH TIME ZONE", true),
    column("UPDATED_AT", "TIMESTAMP WITH TIME ZONE", true),
];

const fn column(name: &'static str, data_type: &'static str, not_null: bool) -> ColumnSpec {
    ColumnSpec {
        name,
        data_type,
        not_null: Some(not_null),
    }
}

/// The ordered migrations of the session table `table`.
pub(crate) fn migrations(table: &TableName, in_memory: bool) -> Vec<Migration> {
    let sql = Statements::new(table, in_memory);
    vec![Migration::initial(vec![
        sql.create_table().to_owned(),
        sql.create_index().to_owned(),
    ])]
}

/// Every migration as one SQL script: the tracking table, then each
/// migration's statements and the `INSERT` recording it.
pub(crate) fn migration_sql(table: &TableName, in_memory: bool) -> String {
    script(
        &MigrationSql::new(table).tracking_ddl,
        &table.migrations_table().qualified(),
        &migrations(table, in_memory),
    )
}

/// The statements of the migration machinery for one session table.
/// Binds: `:owner` (the schema, or `NULL` for the current one), `:tbl`
/// (a table name), `:version`, `:description`, `:checksum`.
#[derive(Debug, Clone)]
struct MigrationSql {
    /// `CREATE TABLE <table>_migrations (...)`; ORA-00955 when it exists.
    tracking_ddl: String,
    lock: String,
    select_applied: String,
    insert: String,
    table_exists: String,
    columns: String,
}

impl MigrationSql {
    fn new(table: &TableName) -> Self {
        let tracking = table.migrations_table().qualified();
        let owner = "COALESCE(UPPER(:owner), SYS_CONTEXT('USERENV', 'CURRENT_SCHEMA'))";
        MigrationSql {
            tracking_ddl: format!(
                "CREATE TABLE {tracking} (\n    \
                 version VARCHAR2(64) PRIMARY KEY,\n    \
                 description VARCHAR2(400) NOT NULL,\n    \
                 checksum VARCHAR2(64) NOT NULL,\n    \
                 applied_at TIMESTAMP WITH TIME ZONE DEFAULT SYSTIMESTAMP NOT NULL\n)"
            ),
            lock: format!("LOCK TABLE {tracking} IN EXCLUSIVE MODE"),
            select_applied: format!(
                "SELECT version, description, checksum, \
                 ROUND((CAST(SYS_EXTRACT_UTC(applied_at) AS DATE) - DATE '1970-01-01') * 86400) \
                 FROM {tracking} ORDER BY version"
            ),
            insert: format!(
                "INSERT INTO {tracking} (version, description, checksum) \
                 VALUES (:version, :description, :checksum)"
            ),
            table_exists: format!(
                "SELECT COUNT(*) FROM all_tables WHERE owner = {owner} AND table_name = UPPER(:tbl)"
            ),
            columns: format!(
                "SELECT column_name, data_type, nullable FROM all_tab_columns \
                 WHERE owner = {owner} AND table_name = UPPER(:tbl) ORDER BY column_id"
            ),
        }
    }
}

/// Oracle's [`MigrationDialect`] on one connection, run by the store inside
/// its blocking task.
pub(crate) struct OracleDialect<'c> {
    conn: &'c oracle::Connection,
    table: TableName,
    in_memory: bool,
    sql: MigrationSql,
}

impl<'c> OracleDialect<'c> {
    pub(crate) fn new(conn: &'c oracle::Connection, table: TableName, in_memory: bool) -> Self {
        let sql = MigrationSql::new(&table);
        OracleDialect {
            conn,
            table,
            in_memory,
            sql,
        }
    }

    /// Runs `ddl`; "already exists" (ORA-00955, ORA-01408) counts as done.
    fn execute_idempotent(&self, ddl: &str, what: &str) -> Result<()> {
        match self.conn.execute(ddl, &[]) {
            Ok(_) => Ok(()),
            Err(err) if classify(ErrorCode::of(&err)) == ErrorClass::AlreadyExists => Ok(()),
            Err(err) => Err(from_oracle(err, what)),
        }
    }
}

/// Maps a driver error of step `what` to the crate's error.
fn ora(what: &'static str) -> impl Fn(oracle::Error) -> Error {
    move |err| from_oracle(err, what)
}

fn owner(table: &TableName) -> Option<String> {
    table.schema().map(str::to_owned)
}

#[async_trait::async_trait]
impl MigrationDialect for OracleDialect<'_> {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn table(&self) -> &TableName {
        &self.table
    }

    fn migrations(&self) -> Vec<Migration> {
        migrations(&self.table, self.in_memory)
    }

    fn session_columns(&self) -> &'static [ColumnSpec] {
        SESSION_COLUMNS
    }

    async fn prepare(&mut self) -> Result<()> {
        self.execute_idempotent(
            &self.sql.tracking_ddl,
            "create the migration tracking table",
        )
    }

    async fn begin(&mut self) -> Result<()> {
        self.conn
            .execute(&self.sql.lock, &[])
            .map(drop)
            .map_err(ora("lock the migration tracking table"))
    }

    async fn commit(&mut self) -> Result<()> {
        self.conn.commit().map_err(ora("commit"))
    }

    async fn rollback(&mut self) -> Result<()> {
        self.conn.rollback().map_err(ora("rollback"))
    }

    async fn table_exists(&mut self, table: &TableName) -> Result<bool> {
        let count: i64 = self
            .conn
            .query_row_as_named(
                &self.sql.table_exists,
                &[("owner", &owner(table)), ("tbl", &table.table())],
            )
            .map_err(ora("look up a table"))?;
        Ok(count > 0)
    }

    async fn columns(&mut self) -> Result<Vec<ColumnInfo>> {
        self.conn
            .query_as_named::<(String, String, String)>(
                &self.sql.columns,
                &[("owner", &owner(&self.table)), ("tbl", &self.table.table())],
            )
            .and_then(|rows| {
                rows.map(|row| {
                    row.map(|(name, data_type, nullable)| ColumnInfo {
                        name,
                        data_type,
                        not_null: nullable == "N",
                    })
                })
                .collect()
            })
            .map_err(ora("read the session table's columns"))
    }

    async fn read_applied(&mut self) -> Result<Vec<AppliedMigration>> {
        self.conn
            .query_as::<(String, String, String, i64)>(&self.sql.select_applied, &[])
            .and_then(|rows| {
                rows.map(|row| {
                    row.map(|(version, description, checksum, secs)| AppliedMigration {
                        version,
                        description,
                        checksum,
                        applied_at: UNIX_EPOCH + Duration::from_secs(secs.max(0) as u64),
                    })
                })
                .collect()
            })
            .map_err(ora("read the migration tracking table"))
    }

    async fn execute(&mut self, statement: &str) -> Result<()> {
        self.execute_idempotent(statement, "apply a migration")
    }

    async fn record(&mut self, migration: &Migration) -> Result<bool> {
        let checksum = migration.checksum();
        match self.conn.execute_named(
            &self.sql.insert,
            &[
                ("version", &migration.version),
                ("description", &migration.description),
                ("checksum", &checksum),
            ],
        ) {
            Ok(_) => Ok(true),
            // Another instance recorded it first: it is applied.
            Err(err) if classify(ErrorCode::of(&err)) == ErrorClass::UniqueViolation => Ok(false),
            Err(err) => Err(from_oracle(err, "record a migration")),
        }
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
            let list = migrations(&table("app_sessions"), in_memory);
            session_core::migrate::validate_list(&list).unwrap();
            let sql = Statements::new(&table("app_sessions"), in_memory);
            assert_eq!(list[0].version, "ext_litestar_0001");
            assert_eq!(list[0].statements, [sql.create_table(), sql.create_index()]);
        }
        // in_memory changes the SQL, so the checksum.
        let plain = migrations(&table("litestar_session"), false)[0].checksum();
        let inmem = migrations(&table("litestar_session"), true)[0].checksum();
        assert_ne!(plain, inmem);
    }

    #[test]
    fn the_tracking_table_and_its_lock() {
        let sql = MigrationSql::new(&table("app_sessions"));
        assert_eq!(
            sql.tracking_ddl,
            "CREATE TABLE app_sessions_migrations (\n    \
             version VARCHAR2(64) PRIMARY KEY,\n    \
             description VARCHAR2(400) NOT NULL,\n    \
             checksum VARCHAR2(64) NOT NULL,\n    \
             applied_at TIMESTAMP WITH TIME ZONE DEFAULT SYSTIMESTAMP NOT NULL\n)"
        );
        assert_eq!(
            sql.lock,
            "LOCK TABLE app_sessions_migrations IN EXCLUSIVE MODE"
        );
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
        let sql = MigrationSql::new(&table("auth.sessions"));
        assert!(sql.lock.starts_with("LOCK TABLE auth.sessions_migrations "));
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

    #[test]
    fn the_script_creates_records_and_ends_each_statement() {
        let script = migration_sql(&table("litestar_session"), true);
        assert!(script.starts_with(
            "-- migration tracking table\nCREATE TABLE litestar_session_migrations ("
        ));
        assert!(script.contains(") INMEMORY;\n"));
        assert!(script.contains(
            "CREATE INDEX idx_litestar_session_expires_at ON litestar_session(expires_at);\n"
        ));
        let checksum = migrations(&table("litestar_session"), true)[0].checksum();
        assert!(script.contains(&format!(
            "INSERT INTO litestar_session_migrations (version, description, checksum) VALUES ('ext_litestar_0001', 'create the session table and its index on expires_at', '{checksum}');"
        )));
    }
}
