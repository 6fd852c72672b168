//! The SQLite migrations of the session table: its SQL for the one
//! migration runner, [`session_core::migrate::Dialect`].
//!
//! `ext_litestar_0001` creates the table and its partial index with exactly
//! the statements of [`SqliteStore::create_table`](crate::SqliteStore::create_table).
//! The tracking table `<session_table>_migrations` records each applied
//! version with its description, checksum and `applied_at` (unix seconds).
//! Each step is its own `BEGIN IMMEDIATE` transaction: SQLite's write lock,
//! so concurrent runs, in this process or others, take turns.

use rusqlite::types::ValueRef;
use rusqlite::{Connection, params_from_iter};
use session_core::migrate::{ColumnSpec, Dialect, Migration, SqlExecutor};
use session_core::{Error, Result, TableName, async_trait};

use crate::schema::ddl;

/// The seed's columns as `PRAGMA table_info` reports them.
const SESSION_COLUMNS: &[ColumnSpec] = &[
    ColumnSpec::new("session_id", "TEXT", None),
    ColumnSpec::new("data", "BLOB", Some(true)),
    ColumnSpec::new("expires_at", "INTEGER", Some(false)),
    ColumnSpec::new("created_at", "INTEGER", Some(true)),
    ColumnSpec::new("updated_at", "INTEGER", Some(true)),
];

/// The migrations of `table` and the SQL that runs them.
pub(crate) fn dialect(table: &TableName) -> Dialect {
    let tracking = table.migrations_table().qualified();
    Dialect {
        backend: crate::store::BACKEND,
        table: table.clone(),
        migrations: vec![Migration::initial(ddl(table))],
        session_columns: SESSION_COLUMNS,
        tracking_ddl: format!(
            "CREATE TABLE IF NOT EXISTS {tracking} (\n    \
             version TEXT PRIMARY KEY,\n    \
             description TEXT NOT NULL,\n    \
             checksum TEXT NOT NULL,\n    \
             applied_at INTEGER NOT NULL DEFAULT (strftime('%s', 'now'))\n)"
        ),
        ddl_commits: false,
        begin: vec!["BEGIN IMMEDIATE".into()],
        select_applied: format!(
            "SELECT version, description, checksum, applied_at FROM {tracking} ORDER BY version"
        ),
        insert: format!(
            "INSERT INTO {tracking} (version, description, checksum) VALUES (?1, ?2, ?3)"
        ),
        // Every table has at least one column.
        table_exists: "SELECT 1 FROM pragma_table_info(?1, coalesce(?2, 'main')) LIMIT 1".into(),
        columns: "SELECT name, type, \"notnull\" FROM pragma_table_info(?1, coalesce(?2, 'main'))"
            .into(),
    }
}

/// One pooled connection running the dialect's SQL, inside the store's
/// blocking task; `error` maps driver errors as the store does.
pub(crate) struct SqliteExecutor<'c, F> {
    pub(crate) conn: &'c mut Connection,
    pub(crate) error: F,
}

#[async_trait]
impl<F> SqlExecutor for SqliteExecutor<'_, F>
where
    F: Fn(rusqlite::Error) -> Error + Send,
{
    async fn execute(&mut self, sql: &str, params: &[Option<&str>]) -> Result<()> {
        let done = if params.is_empty() {
            self.conn.execute_batch(sql)
        } else {
            self.conn.execute(sql, params_from_iter(params)).map(drop)
        };
        done.map_err(&self.error)
    }

    async fn query(
        &mut self,
        sql: &str,
        params: &[Option<&str>],
    ) -> Result<Vec<Vec<Option<String>>>> {
        let mut statement = self.conn.prepare(sql).map_err(&self.error)?;
        let width = statement.column_count();
        let rows = statement.query_map(params_from_iter(params), |row| {
            (0..width)
                .map(|i| {
                    Ok(match row.get_ref(i)? {
                        ValueRef::Null => None,
                        ValueRef::Integer(n) => Some(n.to_string()),
                        ValueRef::Real(x) => Some(x.to_string()),
                        ValueRef::Text(t) | ValueRef::Blob(t) => {
                            Some(String::from_utf8_lossy(t).into_owned())
                        }
                    })
                })
                .collect()
        });
        rows.and_then(Iterator::collect).map_err(&self.error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_is_valid_and_starts_with_create_table() {
        let table = TableName::new("litestar_session", 63).unwrap();
        let list = dialect(&table).migrations;
        session_core::migrate::validate_list(&list).unwrap();
        assert_eq!(list[0].version, "ext_litestar_0001");
        assert_eq!(list[0].statements, crate::SqliteStore::ddl(&table));
    }

    #[test]
    fn the_script_holds_the_tracking_table_and_each_version() {
        let sql = dialect(&TableName::new("app_sessions", 63).unwrap()).script();
        assert!(sql.contains("CREATE TABLE IF NOT EXISTS app_sessions_migrations"));
        assert!(sql.contains("-- ext_litestar_0001:"));
    }
}
