//! Versioned migrations of the SQLite session table.
//!
//! * [`migrations`]: the ordered list. `ext_litestar_0001` creates the table
//!   and its partial index with exactly the statements of
//!   [`SqliteStore::create_table`] ([`schema::ddl`](crate::schema::ddl)).
//! * The tracking table `<session_table>_migrations` ([`tracking_ddl`])
//!   records each applied version with its description, checksum (see
//!   [`session_core::migrate::checksum`]) and `applied_at` (unix seconds).
//! * [`SqliteStore::migrate`] applies what is missing, each migration in
//!   its own `BEGIN IMMEDIATE` transaction (the write lock: concurrent
//!   callers, in this process or others, wait for each other), and adopts a
//!   session table that already exists with the seed's columns.
//! * [`migration_sql`] prints it all for a migration tool of your own.
//!
//! ```
//! use session_core::ExtensionConfig;
//! use session_sqlite::SqliteStore;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> session_core::Result<()> {
//! let store = SqliteStore::in_memory(ExtensionConfig::new())?;
//! let report = store.migrate().await?;
//! assert_eq!(report.applied, ["ext_litestar_0001"]);
//! assert!(store.migrate().await?.is_noop());
//! assert_eq!(store.applied_migrations().await?[0].version, "ext_litestar_0001");
//! # Ok(()) }
//! ```

use std::time::{Duration, UNIX_EPOCH};

use rusqlite::{Connection, ErrorCode, OptionalExtension, TransactionBehavior, params};
use session_core::migrate::{
    AppliedMigration, ColumnInfo, ColumnSpec, MigrateReport, Migration, ensure_adoptable, plan,
    script,
};
use session_core::{Error, Result, TableName};
use tracing::Instrument;

use crate::SqliteStore;
use crate::schema::ddl;

const BACKEND: &str = "sqlite";

pub use session_core::migrate::EXT_LITESTAR_0001;

/// The columns of the seed's SQLite session table, as `PRAGMA table_info`
/// reports them; an existing table is adopted only if it has exactly these.
pub const SESSION_COLUMNS: &[ColumnSpec] = &[
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
pub fn migrations(table: &TableName) -> Vec<Migration> {
    vec![Migration::initial(ddl(table))]
}

/// The DDL of the tracking table `<table>_migrations` (idempotent).
pub fn tracking_ddl(table: &TableName) -> String {
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
///
/// ```
/// use session_core::TableName;
/// let sql = session_sqlite::migrations::migration_sql(&TableName::new("app_sessions", 63).unwrap());
/// assert!(sql.contains("CREATE TABLE IF NOT EXISTS app_sessions_migrations"));
/// assert!(sql.contains("-- ext_litestar_0001:"));
/// ```
pub fn migration_sql(table: &TableName) -> String {
    script(
        &tracking_ddl(table),
        &table.migrations_table().qualified(),
        &migrations(table),
    )
}

impl SqliteStore {
    /// Applies every migration the tracking table does not record, in
    /// order, each in its own `BEGIN IMMEDIATE` transaction, and returns
    /// what it did. Idempotent; safe when many tasks or processes run it at
    /// once (they take turns on SQLite's write lock, within the busy
    /// timeout).
    ///
    /// A session table that exists without a tracking record (made by
    /// SQLSpec or [`create_table`](Self::create_table)) is adopted: its
    /// columns are checked against [`SESSION_COLUMNS`] and it is recorded
    /// as at `ext_litestar_0001`, its rows untouched.
    ///
    /// Errors: a recorded checksum that differs or an unknown recorded
    /// version, and an existing table of another shape (an
    /// [`Error::Backend`] whose source is a [`MigrationError`](session_core::migrate::MigrationError) naming the
    /// version or every difference); database errors.
    pub async fn migrate(&self) -> Result<MigrateReport> {
        let table = self.table().clone();
        self.blocking("migrate", move |conn| migrate_blocking(conn, &table))
            .await
    }

    /// The applied migrations, oldest version first; empty when the
    /// tracking table does not exist yet.
    pub async fn applied_migrations(&self) -> Result<Vec<AppliedMigration>> {
        let table = self.table().clone();
        self.blocking("applied_migrations", move |conn| {
            if !table_exists(conn, &table.migrations_table())? {
                return Ok(Vec::new());
            }
            read_applied(conn, &table)
        })
        .await
    }

    /// True if the session table exists.
    pub async fn session_table_exists(&self) -> Result<bool> {
        let table = self.table().clone();
        self.blocking("session_table_exists", move |conn| {
            table_exists(conn, &table)
        })
        .await
    }

    /// This store's migrations as SQL; see [`migration_sql`].
    pub fn migration_sql(&self) -> String {
        migration_sql(self.table())
    }

    async fn blocking<T, F>(&self, op: &'static str, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let span =
            tracing::debug_span!("session_migrate", backend = BACKEND, op, table = %self.table());
        let pool = self.pool().clone();
        let task_span = span.clone();
        let handle = tokio::runtime::Handle::try_current().map_err(|e| {
            Error::backend(
                BACKEND,
                format!("{op}: must be called within a tokio runtime"),
                e,
            )
        })?;
        handle
            .spawn_blocking(move || {
                let _entered = task_span.enter();
                let mut conn = pool.get().map_err(|e| {
                    Error::connection(BACKEND, "cannot get a connection from the pool", e)
                })?;
                work(&mut conn)
            })
            .instrument(span)
            .await
            .map_err(|e| Error::backend(BACKEND, format!("{op}: the blocking task failed"), e))?
    }
}

fn db(context: &str, table: &TableName) -> impl Fn(rusqlite::Error) -> Error {
    let context = format!("{context} (table `{table}`)");
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

fn migrate_blocking(conn: &mut Connection, table: &TableName) -> Result<MigrateReport> {
    let list = migrations(table);
    let tracking = table.migrations_table().qualified();
    let mut report = MigrateReport::default();
    loop {
        let err = db("migrate", table);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&err)?;
        tx.execute_batch(&tracking_ddl(table)).map_err(&err)?;
        let applied = read_applied(&tx, table)?;
        let pending = plan(BACKEND, &list, &applied)?;
        let Some(next) = pending.first() else {
            report.current = applied.last().map(|a| a.version.clone());
            tx.commit().map_err(&err)?;
            break;
        };
        let adopt = next.version == EXT_LITESTAR_0001 && table_exists(&tx, table)?;
        if adopt {
            ensure_adoptable(BACKEND, table, SESSION_COLUMNS, &columns(&tx, table)?)?;
        } else {
            for statement in &next.statements {
                tx.execute_batch(statement).map_err(&err)?;
            }
        }
        tx.execute(
            &format!("INSERT INTO {tracking} (version, description, checksum) VALUES (?1, ?2, ?3)"),
            params![next.version, next.description, next.checksum()],
        )
        .map_err(&err)?;
        tx.commit().map_err(&err)?;
        report.record(next.version, adopt);
    }
    Ok(report)
}

fn schema_of(table: &TableName) -> &str {
    table.schema().unwrap_or("main")
}

fn table_exists(conn: &Connection, table: &TableName) -> Result<bool> {
    let sql = format!(
        "SELECT 1 FROM {}.sqlite_master WHERE type = 'table' AND name = ?1 COLLATE NOCASE",
        schema_of(table)
    );
    conn.query_row(&sql, params![table.table()], |_| Ok(()))
        .optional()
        .map(|row| row.is_some())
        .map_err(db("look up the table", table))
}

fn columns(conn: &Connection, table: &TableName) -> Result<Vec<ColumnInfo>> {
    let err = db("read the table's columns", table);
    let mut st = conn
        .prepare("SELECT name, type, \"notnull\" FROM pragma_table_info(?1, ?2)")
        .map_err(&err)?;
    let rows = st
        .query_map(params![table.table(), schema_of(table)], |row| {
            Ok(ColumnInfo {
                name: row.get(0)?,
                data_type: row.get(1)?,
                not_null: row.get::<_, i64>(2)? != 0,
            })
        })
        .map_err(&err)?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(&err)
}

fn read_applied(conn: &Connection, table: &TableName) -> Result<Vec<AppliedMigration>> {
    let err = db("read the migration tracking table", table);
    let sql = format!(
        "SELECT version, description, checksum, applied_at FROM {} ORDER BY version",
        table.migrations_table().qualified()
    );
    let mut st = conn.prepare(&sql).map_err(&err)?;
    let rows = st
        .query_map([], |row| {
            let secs: i64 = row.get(3)?;
            Ok(AppliedMigration {
                version: row.get(0)?,
                description: row.get(1)?,
                checksum: row.get(2)?,
                applied_at: UNIX_EPOCH + Duration::from_secs(secs.max(0) as u64),
            })
        })
        .map_err(&err)?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(&err)
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
        assert_eq!(list[0].statements, SqliteStore::ddl(&table));
    }
}
