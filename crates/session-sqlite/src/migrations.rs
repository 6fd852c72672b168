//! The SQLite migrations of the session table and their dialect for
//! [`session_core::migrate::run`].
//!
//! `ext_litestar_0001` creates the table and its partial index with exactly
//! the statements of [`SqliteStore::create_table`](crate::SqliteStore::create_table).
//! The tracking table `<session_table>_migrations` ([`tracking_ddl`])
//! records each applied version with its description, checksum and
//! `applied_at` (unix seconds). Each step is its own `BEGIN IMMEDIATE`
//! transaction: SQLite's write lock, so concurrent runs, in this process or
//! others, take turns.

use std::time::{Duration, UNIX_EPOCH};

use rusqlite::{Connection, ErrorCode, OptionalExtension, params};
use session_core::migrate::{
    AppliedMigration, ColumnInfo, ColumnSpec, Migration, MigrationDialect, script,
};
use session_core::{Error, Result, TableName, async_trait};

use crate::schema::ddl;

const BACKEND: &str = "sqlite";

/// The columns of the seed's SQLite session table, as `PRAGMA table_info`
/// reports them; an existing table is adopted only if it has exactly these.
const SESSION_COLUMNS: &[ColumnSpec] = &[
    ColumnSpec {
        name: "session_id",
        data_type: "TEXT",
        not_null: None,
    },
    ColumnSpec {
        name: "data",
        data_type: "BLOB",
        not_null: Some(true),
    },
    ColumnSpec {
        name: "expires_at",
        data_type: "INTEGER",
        not_null: Some(false),
    },
    ColumnSpec {
        name: "created_at",
        data_type: "INTEGER",
        not_null: Some(true),
    },
    ColumnSpec {
        name: "updated_at",
        data_type: "INTEGER",
        not_null: Some(true),
    },
];

/// The ordered migrations of the session table `table`.
pub(crate) fn migrations(table: &TableName) -> Vec<Migration> {
    vec![Migration::initial(ddl(table))]
}

/// The DDL of the tracking table `<table>_migrations` (idempotent).
fn tracking_ddl(table: &TableName) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {} (\n    \
         version TEXT PRIMARY KEY,\n    \
         description TEXT NOT NULL,\n    \
         checksum TEXT NOT NULL,\n    \
         applied_at INTEGER NOT NULL DEFAULT (strftime('%s', 'now'))\n)",
        table.migrations_table().qualified()
    )
}

/// Every migration of `table` as one SQL script: the tracking table, then
/// each migration's statements and the `INSERT` recording it.
pub(crate) fn migration_sql(table: &TableName) -> String {
    script(
        &tracking_ddl(table),
        &table.migrations_table().qualified(),
        &migrations(table),
    )
}

/// The migration dialect of one pooled connection.
pub(crate) struct SqliteDialect<'c> {
    pub(crate) conn: &'c mut Connection,
    pub(crate) table: TableName,
}

impl SqliteDialect<'_> {
    fn db(&self, context: &str) -> impl Fn(rusqlite::Error) -> Error {
        let context = format!("{context} (table `{}`)", self.table);
        move |e| {
            let context = match e.sqlite_error_code() {
                Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => format!(
                    "{context}: the database is locked (another connection held the write lock \
                     past the busy timeout)"
                ),
                _ => context.clone(),
            };
            Error::backend(BACKEND, context, e)
        }
    }

    fn batch(&self, sql: &str) -> Result<()> {
        self.conn.execute_batch(sql).map_err(self.db("migrate"))
    }

    /// Ends a transaction a failed `COMMIT` left open, so the connection
    /// goes back to the pool clean.
    pub(crate) fn finish(&mut self) {
        if !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }
}

#[async_trait]
impl MigrationDialect for SqliteDialect<'_> {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn table(&self) -> &TableName {
        &self.table
    }

    fn migrations(&self) -> Vec<Migration> {
        migrations(&self.table)
    }

    fn session_columns(&self) -> &'static [ColumnSpec] {
        SESSION_COLUMNS
    }

    async fn begin(&mut self) -> Result<()> {
        self.batch("BEGIN IMMEDIATE")?;
        self.batch(&tracking_ddl(&self.table))
    }

    async fn commit(&mut self) -> Result<()> {
        self.batch("COMMIT")
    }

    async fn rollback(&mut self) -> Result<()> {
        self.batch("ROLLBACK")
    }

    async fn table_exists(&mut self, table: &TableName) -> Result<bool> {
        let sql = format!(
            "SELECT 1 FROM {}.sqlite_master WHERE type = 'table' AND name = ?1 COLLATE NOCASE",
            table.schema().unwrap_or("main")
        );
        self.conn
            .query_row(&sql, params![table.table()], |_| Ok(()))
            .optional()
            .map(|row| row.is_some())
            .map_err(self.db("look up the table"))
    }

    async fn columns(&mut self) -> Result<Vec<ColumnInfo>> {
        let err = self.db("read the table's columns");
        let mut st = self
            .conn
            .prepare("SELECT name, type, \"notnull\" FROM pragma_table_info(?1, ?2)")
            .map_err(&err)?;
        st.query_map(
            params![self.table.table(), self.table.schema().unwrap_or("main")],
            |row| {
                Ok(ColumnInfo {
                    name: row.get(0)?,
                    data_type: row.get(1)?,
                    not_null: row.get::<_, i64>(2)? != 0,
                })
            },
        )
        .and_then(Iterator::collect)
        .map_err(&err)
    }

    async fn read_applied(&mut self) -> Result<Vec<AppliedMigration>> {
        let err = self.db("read the migration tracking table");
        let sql = format!(
            "SELECT version, description, checksum, applied_at FROM {} ORDER BY version",
            self.table.migrations_table().qualified()
        );
        let mut st = self.conn.prepare(&sql).map_err(&err)?;
        st.query_map([], |row| {
            let secs: i64 = row.get(3)?;
            Ok(AppliedMigration {
                version: row.get(0)?,
                description: row.get(1)?,
                checksum: row.get(2)?,
                applied_at: UNIX_EPOCH + Duration::from_secs(secs.max(0) as u64),
            })
        })
        .and_then(Iterator::collect)
        .map_err(&err)
    }

    async fn execute(&mut self, statement: &str) -> Result<()> {
        self.batch(statement)
    }

    async fn record(&mut self, migration: &Migration) -> Result<bool> {
        // Under the write lock taken by `begin`, no other run can record
        // the same version first.
        let sql = format!(
            "INSERT INTO {} (version, description, checksum) VALUES (?1, ?2, ?3)",
            self.table.migrations_table().qualified()
        );
        self.conn
            .execute(
                &sql,
                params![
                    migration.version,
                    migration.description,
                    migration.checksum()
                ],
            )
            .map(|_| true)
            .map_err(self.db("migrate"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_is_valid_and_starts_with_create_table() {
        let table = TableName::new("litestar_session", 63).unwrap();
        let list = migrations(&table);
        session_core::migrate::validate_list(&list).unwrap();
        assert_eq!(list[0].version, "ext_litestar_0001");
        assert_eq!(list[0].statements, crate::SqliteStore::ddl(&table));
    }

    #[test]
    fn the_script_holds_the_tracking_table_and_each_version() {
        let sql = migration_sql(&TableName::new("app_sessions", 63).unwrap());
        assert!(sql.contains("CREATE TABLE IF NOT EXISTS app_sessions_migrations"));
        assert!(sql.contains("-- ext_litestar_0001:"));
    }
}
