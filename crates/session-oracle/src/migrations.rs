//! Versioned migrations of the Oracle session table.
//!
//! * [`migrations`]: the ordered list. `ext_litestar_0001` creates the table
//!   and its index with exactly the statements of
//!   [`OracleStore::create_table`] ([`Statements::create_table`],
//!   [`Statements::create_index`]), so its checksum covers the table name
//!   and the `in_memory` setting.
//! * The tracking table `<session_table>_migrations`
//!   ([`MigrationSql::tracking_ddl`]) records each applied version.
//! * [`OracleStore::migrate`] applies what is missing. Each step first takes
//!   `LOCK TABLE <tracking> IN EXCLUSIVE MODE`, so concurrent instances read
//!   the tracking table one at a time. Oracle commits implicitly around
//!   every DDL statement (which also releases that lock), so a migration's
//!   DDL cannot share a transaction with its record: the DDL is run
//!   idempotently (ORA-00955 / ORA-01408, "already exists", count as done)
//!   and a record another instance wrote first (ORA-00001) counts as
//!   applied.
//! * [`migration_sql`] prints it all for a migration tool of your own.
//!
//! All SQL is built from the validated table name only and tested offline:
//!
//! ```
//! use session_core::TableName;
//! use session_oracle::migrations::MigrationSql;
//!
//! let table = TableName::new("app_sessions", session_oracle::MAX_IDENTIFIER_LEN).unwrap();
//! let sql = MigrationSql::new(&table);
//! assert_eq!(sql.lock(), "LOCK TABLE app_sessions_migrations IN EXCLUSIVE MODE");
//! ```

use std::time::{Duration, UNIX_EPOCH};

use session_core::migrate::{
    AppliedMigration, ColumnInfo, ColumnSpec, MigrateReport, Migration, ensure_adoptable, plan,
    script,
};
use session_core::{Error, Result, TableName};

use crate::BACKEND;
use crate::error::{ErrorClass, ErrorCode, classify, from_oracle};
use crate::settings::StoreSettings;
use crate::sql::Statements;
use crate::store::OracleStore;

pub use session_core::migrate::EXT_LITESTAR_0001;

/// The columns of the seed's Oracle session table, as `all_tab_columns`
/// reports them (`TIMESTAMP(6) WITH TIME ZONE` matches, the precision is
/// ignored); an existing table is adopted only if it has exactly these.
pub const SESSION_COLUMNS: &[ColumnSpec] = &[
    ColumnSpec {
        name: "SESSION_ID",
        data_type: "VARCHAR2",
        not_null: Some(true),
    },
    ColumnSpec {
        name: "DATA",
        data_type: "BLOB",
        not_null: Some(true),
    },
    ColumnSpec {
        name: "EXPIRES_AT",
        data_type: "TIMESTAMP WITH TIME ZONE",
        not_null: Some(false),
    },
    ColumnSpec {
        name: "CREATED_AT",
        data_type: "TIMESTAMP WITH TIME ZONE",
        not_null: Some(true),
    },
    ColumnSpec {
        name: "UPDATED_AT",
        data_type: "TIMESTAMP WITH TIME ZONE",
        not_null: Some(true),
    },
];

/// The ordered migrations of the session table of `settings`.
pub fn migrations(settings: &StoreSettings) -> Vec<Migration> {
    let sql = Statements::new(settings.table(), settings.is_in_memory());
    vec![Migration::initial(vec![
        sql.create_table().to_owned(),
        sql.create_index().to_owned(),
    ])]
}

/// Every migration of `settings` as one SQL script: the tracking table,
/// then each migration's statements and the `INSERT` recording it.
pub fn migration_sql(settings: &StoreSettings) -> String {
    let sql = MigrationSql::new(settings.table());
    script(
        sql.tracking_ddl(),
        &settings.table().migrations_table().qualified(),
        &migrations(settings),
    )
}

/// The statements of the migration machinery for one session table.
/// Binds: `:owner` (the schema, or `NULL` for the current one), `:tbl`
/// (a table name), `:version`, `:description`, `:checksum`.
#[derive(Debug, Clone)]
pub struct MigrationSql {
    tracking_ddl: String,
    lock: String,
    select_applied: String,
    insert: String,
    table_exists: String,
    columns: String,
}

impl MigrationSql {
    /// Builds the statements for the session table `table`.
    pub fn new(table: &TableName) -> Self {
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

    /// `CREATE TABLE <table>_migrations (...)`; ORA-00955 when it exists.
    pub fn tracking_ddl(&self) -> &str {
        &self.tracking_ddl
    }

    /// `LOCK TABLE <table>_migrations IN EXCLUSIVE MODE`: held until the
    /// next commit (or DDL).
    pub fn lock(&self) -> &str {
        &self.lock
    }

    /// The applied records, `applied_at` as unix seconds (UTC).
    pub fn select_applied(&self) -> &str {
        &self.select_applied
    }

    /// Records a version (`:version`, `:description`, `:checksum`).
    pub fn insert(&self) -> &str {
        &self.insert
    }

    /// `COUNT(*)` of tables named `:tbl` in schema `:owner`.
    pub fn table_exists(&self) -> &str {
        &self.table_exists
    }

    /// Name, type and `Y`/`N` nullability of the columns of `:tbl`.
    pub fn columns(&self) -> &str {
        &self.columns
    }
}

fn already_exists(err: &oracle::Error) -> bool {
    classify(ErrorCode::of(err)) == ErrorClass::AlreadyExists
}

impl OracleStore {
    /// Applies every migration the tracking table does not record, in
    /// order, and returns what it did; see the [module docs](self) for how
    /// concurrent instances are kept apart on Oracle. Adopts an existing
    /// session table with the seed's columns ([`SESSION_COLUMNS`]) as at
    /// `ext_litestar_0001`, its rows untouched.
    ///
    /// Errors: a recorded checksum that differs, an unknown recorded
    /// version or an existing table of another shape (an
    /// [`Error::Backend`] with a [`MigrationError`](session_core::migrate::MigrationError) source); database
    /// errors.
    pub async fn migrate(&self) -> Result<MigrateReport> {
        let settings = self.settings().clone();
        self.blocking("migrate", move |conn| migrate_blocking(conn, &settings))
            .await
    }

    /// The applied migrations, oldest version first; empty when the
    /// tracking table does not exist yet.
    pub async fn applied_migrations(&self) -> Result<Vec<AppliedMigration>> {
        let table = self.table().clone();
        self.blocking("applied_migrations", move |conn| {
            let sql = MigrationSql::new(&table);
            if !exists(conn, &sql, &table.migrations_table())? {
                return Ok(Vec::new());
            }
            read_applied(conn, &sql)
        })
        .await
    }

    /// True if the session table exists.
    pub async fn session_table_exists(&self) -> Result<bool> {
        let table = self.table().clone();
        self.blocking("session_table_exists", move |conn| {
            exists(conn, &MigrationSql::new(&table), &table)
        })
        .await
    }

    /// This store's migrations as SQL; see [`migration_sql`].
    pub fn migration_sql(&self) -> String {
        migration_sql(self.settings())
    }

    async fn blocking<T, F>(&self, op: &'static str, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&oracle::Connection) -> Result<T> + Send + 'static,
    {
        self.run_blocking(op, true, move |db, _| work(db)).await
    }
}

/// Maps a driver error of step `what` to the crate's error.
fn ora(what: &'static str) -> impl Fn(oracle::Error) -> Error {
    move |err| from_oracle(err, what)
}

fn migrate_blocking(conn: &oracle::Connection, settings: &StoreSettings) -> Result<MigrateReport> {
    let table = settings.table();
    let sql = MigrationSql::new(table);
    let list = migrations(settings);
    let mut report = MigrateReport::default();
    if let Err(err) = conn.execute(sql.tracking_ddl(), &[]) {
        if !already_exists(&err) {
            return Err(from_oracle(err, "create the migration tracking table"));
        }
    }
    loop {
        conn.execute(sql.lock(), &[])
            .map_err(ora("lock the migration tracking table"))?;
        let applied = read_applied(conn, &sql)?;
        let pending = plan(BACKEND, &list, &applied)?;
        let Some(next) = pending.first() else {
            report.current = applied.last().map(|a| a.version.clone());
            conn.commit().map_err(ora("commit"))?;
            break;
        };
        let adopt = next.version == EXT_LITESTAR_0001 && exists(conn, &sql, table)?;
        if adopt {
            ensure_adoptable(
                BACKEND,
                table,
                SESSION_COLUMNS,
                &columns(conn, &sql, table)?,
            )?;
        } else {
            for statement in &next.statements {
                if let Err(err) = conn.execute(statement, &[]) {
                    if !already_exists(&err) {
                        return Err(from_oracle(err, "apply a migration"));
                    }
                }
            }
        }
        let checksum = next.checksum();
        match conn.execute_named(
            sql.insert(),
            &[
                ("version", &next.version),
                ("description", &next.description),
                ("checksum", &checksum),
            ],
        ) {
            Ok(_) => {
                conn.commit().map_err(ora("commit"))?;
                report.record(next.version, adopt);
            }
            // Another instance recorded it first: it is applied.
            Err(err) if classify(ErrorCode::of(&err)) == ErrorClass::UniqueViolation => {
                conn.rollback().map_err(ora("rollback"))?;
            }
            Err(err) => return Err(from_oracle(err, "record a migration")),
        }
    }
    Ok(report)
}

fn owner(table: &TableName) -> Option<String> {
    table.schema().map(str::to_owned)
}

fn exists(conn: &oracle::Connection, sql: &MigrationSql, table: &TableName) -> Result<bool> {
    let count: i64 = conn
        .query_row_as_named(
            sql.table_exists(),
            &[("owner", &owner(table)), ("tbl", &table.table())],
        )
        .map_err(ora("look up a table"))?;
    Ok(count > 0)
}

fn columns(
    conn: &oracle::Connection,
    sql: &MigrationSql,
    table: &TableName,
) -> Result<Vec<ColumnInfo>> {
    conn.query_as_named::<(String, String, String)>(
        sql.columns(),
        &[("owner", &owner(table)), ("tbl", &table.table())],
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

fn read_applied(conn: &oracle::Connection, sql: &MigrationSql) -> Result<Vec<AppliedMigration>> {
    conn.query_as::<(String, String, String, i64)>(sql.select_applied(), &[])
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
