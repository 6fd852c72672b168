//! Versioned migrations of the PostgreSQL session table.
//!
//! * [`migrations`]: the ordered list. `ext_litestar_0001` creates the table
//!   and its partial index with exactly the statements of
//!   [`PostgresStore::create_table`] ([`PostgresStoreConfig::ddl`]), so its
//!   checksum covers the table name and the storage parameters
//!   (`fillfactor`, autovacuum scale factors).
//! * The tracking table `<session_table>_migrations` ([`tracking_ddl`])
//!   records each applied version with its description, checksum (see
//!   [`session_core::migrate::checksum`]) and `applied_at` (`TIMESTAMPTZ`,
//!   the server's clock).
//! * [`PostgresStore::migrate`] applies what is missing, each migration in
//!   its own transaction that first takes `pg_advisory_xact_lock` on the
//!   key [`PostgresStore::create_table`] uses, so any number of application
//!   instances can run it at once; it adopts a session table that already
//!   exists with the seed's columns.
//! * [`migration_sql`] prints it all for a migration tool of your own.
//!
//! ```no_run
//! use session_postgres::{PoolSettings, PostgresStore, PostgresStoreConfig};
//!
//! # async fn demo() -> session_core::Result<()> {
//! let store = PostgresStore::from_url("postgresql://app@db/app", PoolSettings::default(), PostgresStoreConfig::new())?;
//! println!("{}", store.migrate().await?);
//! for applied in store.applied_migrations().await? {
//!     println!("{} {}", applied.version, applied.applied_at_rfc3339());
//! }
//! # Ok(()) }
//! ```

use std::time::SystemTime;

use deadpool_postgres::GenericClient;
use session_core::migrate::{
    AppliedMigration, ColumnInfo, ColumnSpec, MigrateReport, Migration, ensure_adoptable, plan,
    script,
};
use session_core::{Result, TableName};
use tracing::Instrument;

use crate::config::PostgresStoreConfig;
use crate::error::{BACKEND, statement_error};
use crate::store::{PostgresStore, advisory_lock_key};

pub use session_core::migrate::EXT_LITESTAR_0001;

/// The columns of the seed's PostgreSQL session table, as `format_type`
/// names their types; an existing table is adopted only if it has exactly
/// these.
pub const SESSION_COLUMNS: &[ColumnSpec] = &[
    ColumnSpec {
        name: "session_id",
        data_type: "text",
        not_null: Some(true),
    },
    ColumnSpec {
        name: "data",
        data_type: "bytea",
        not_null: Some(true),
    },
    ColumnSpec {
        name: "expires_at",
        data_type: "timestamp with time zone",
        not_null: Some(false),
    },
    ColumnSpec {
        name: "created_at",
        data_type: "timestamp with time zone",
        not_null: Some(true),
    },
    ColumnSpec {
        name: "updated_at",
        data_type: "timestamp with time zone",
        not_null: Some(true),
    },
];

/// The ordered migrations of the session table of `config`.
pub fn migrations(config: &PostgresStoreConfig) -> Vec<Migration> {
    vec![Migration::initial(config.ddl())]
}

/// The DDL of the tracking table `<table>_migrations` (idempotent).
pub fn tracking_ddl(table: &TableName) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {} (\n    \
         version TEXT PRIMARY KEY,\n    \
         description TEXT NOT NULL,\n    \
         checksum TEXT NOT NULL,\n    \
         applied_at TIMESTAMPTZ NOT NULL DEFAULT now()\n)",
        table.migrations_table().qualified()
    )
}

/// Every migration of `config` as one SQL script: the tracking table, then
/// each migration's statements and the `INSERT` recording it.
///
/// ```
/// let sql = session_postgres::migrations::migration_sql(&session_postgres::PostgresStoreConfig::new());
/// assert!(sql.contains("CREATE TABLE IF NOT EXISTS litestar_session_migrations"));
/// assert!(sql.contains("WITH (fillfactor = 80"));
/// ```
pub fn migration_sql(config: &PostgresStoreConfig) -> String {
    script(
        &tracking_ddl(config.table()),
        &config.table().migrations_table().qualified(),
        &migrations(config),
    )
}

impl PostgresStore {
    /// Applies every migration the tracking table does not record, in
    /// order, each in its own transaction under `pg_advisory_xact_lock`
    /// (the lock [`create_table`](Self::create_table) takes), and returns
    /// what it did. Idempotent and safe when many instances run it at once:
    /// each transaction re-reads the tracking table under the lock.
    ///
    /// A session table that exists without a tracking record (made by
    /// SQLSpec or [`create_table`](Self::create_table)) is adopted: its
    /// columns are checked against [`SESSION_COLUMNS`] and it is recorded
    /// as at `ext_litestar_0001`, its rows untouched.
    ///
    /// Errors: a recorded checksum that differs or an unknown recorded
    /// version, and an existing table of another shape
    /// ([`Error::Backend`](session_core::Error::Backend) with a
    /// [`MigrationError`](session_core::migrate::MigrationError) source naming the version or every difference);
    /// connection and statement errors.
    pub async fn migrate(&self) -> Result<MigrateReport> {
        async {
            let table = self.config().table().clone();
            let list = migrations(self.config());
            let tracking = table.migrations_table().qualified();
            let insert = format!(
                "INSERT INTO {tracking} (version, description, checksum) VALUES ($1, $2, $3)"
            );
            let lock_key = advisory_lock_key(&table.qualified());
            let mut client = self.client().await?;
            let mut report = MigrateReport::default();
            loop {
                let fail = |e| statement_error(e, "migrate", &tracking, self.address());
                let tx = client.transaction().await.map_err(fail)?;
                // One step: the next migration, applied or adopted, or
                // `None` when the database is up to date.
                let step = async {
                    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&lock_key])
                        .await
                        .map_err(fail)?;
                    tx.batch_execute(&tracking_ddl(&table))
                        .await
                        .map_err(fail)?;
                    let applied = self.read_applied(&tx, &tracking).await?;
                    let pending = plan(BACKEND, &list, &applied)?;
                    let Some(next) = pending.first().copied() else {
                        report.current = applied.last().map(|a| a.version.clone());
                        return Ok(None);
                    };
                    let adopt = next.version == EXT_LITESTAR_0001
                        && self.relation_exists(&tx, &table.qualified()).await?;
                    if adopt {
                        let columns = self.columns(&tx, &table.qualified()).await?;
                        ensure_adoptable(BACKEND, &table, SESSION_COLUMNS, &columns)?;
                    } else {
                        for statement in &next.statements {
                            tx.batch_execute(statement).await.map_err(fail)?;
                        }
                    }
                    let checksum = next.checksum();
                    tx.execute(&insert, &[&next.version, &next.description, &checksum])
                        .await
                        .map_err(fail)?;
                    Ok(Some((next.version, adopt)))
                }
                .await;
                let step = match step {
                    Ok(step) => step,
                    Err(err) => {
                        // End the transaction (and its lock) now, not when
                        // the connection is next used.
                        if let Err(e) = tx.rollback().await {
                            tracing::debug!(error = %e, "rollback after a failed migration step failed");
                        }
                        return Err(err);
                    }
                };
                tx.commit().await.map_err(fail)?;
                match step {
                    None => break,
                    Some((version, adopted)) => report.record(version, adopted),
                }
            }
            Ok(report)
        }
        .instrument(self.span("migrate"))
        .await
    }

    /// The applied migrations, oldest version first; empty when the
    /// tracking table does not exist yet.
    pub async fn applied_migrations(&self) -> Result<Vec<AppliedMigration>> {
        async {
            let tracking = self.config().table().migrations_table().qualified();
            let client = self.client().await?;
            if !self.relation_exists(&client, &tracking).await? {
                return Ok(Vec::new());
            }
            self.read_applied(&client, &tracking).await
        }
        .instrument(self.span("applied_migrations"))
        .await
    }

    /// True if the session table exists (looked up like an unqualified
    /// name in a statement: through the `search_path`).
    pub async fn session_table_exists(&self) -> Result<bool> {
        async {
            let client = self.client().await?;
            self.relation_exists(&client, &self.config().table().qualified())
                .await
        }
        .instrument(self.span("session_table_exists"))
        .await
    }

    /// This store's migrations as SQL; see [`migration_sql`].
    pub fn migration_sql(&self) -> String {
        migration_sql(self.config())
    }

    async fn relation_exists(&self, client: &impl GenericClient, name: &str) -> Result<bool> {
        let row = client
            .query_one("SELECT to_regclass($1::text) IS NOT NULL", &[&name])
            .await
            .map_err(|e| statement_error(e, "look up table", name, self.address()))?;
        row.try_get(0)
            .map_err(|e| statement_error(e, "look up table", name, self.address()))
    }

    async fn columns(&self, client: &impl GenericClient, table: &str) -> Result<Vec<ColumnInfo>> {
        let fail = |e| statement_error(e, "read the columns of", table, self.address());
        let rows = client
            .query(
                "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), a.attnotnull \
                 FROM pg_attribute a \
                 WHERE a.attrelid = to_regclass($1::text) AND a.attnum > 0 AND NOT a.attisdropped \
                 ORDER BY a.attnum",
                &[&table],
            )
            .await
            .map_err(fail)?;
        rows.iter()
            .map(|row| {
                Ok(ColumnInfo {
                    name: row.try_get(0).map_err(fail)?,
                    data_type: row.try_get(1).map_err(fail)?,
                    not_null: row.try_get(2).map_err(fail)?,
                })
            })
            .collect()
    }

    async fn read_applied(
        &self,
        client: &impl GenericClient,
        tracking: &str,
    ) -> Result<Vec<AppliedMigration>> {
        let fail = |e| statement_error(e, "read migrations", tracking, self.address());
        let rows = client
            .query(
                &format!(
                    "SELECT version, description, checksum, applied_at FROM {tracking} ORDER BY version"
                ),
                &[],
            )
            .await
            .map_err(fail)?;
        rows.iter()
            .map(|row| {
                Ok(AppliedMigration {
                    version: row.try_get(0).map_err(fail)?,
                    description: row.try_get(1).map_err(fail)?,
                    checksum: row.try_get(2).map_err(fail)?,
                    applied_at: row.try_get::<_, SystemTime>(3).map_err(fail)?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_is_valid_and_starts_with_create_table() {
        let config = PostgresStoreConfig::new();
        let list = migrations(&config);
        session_core::migrate::validate_list(&list).unwrap();
        assert_eq!(list[0].version, EXT_LITESTAR_0001);
        assert_eq!(list[0].statements, config.ddl());
    }

    #[test]
    fn the_script_holds_the_tracking_table_and_the_ddl() {
        let config = PostgresStoreConfig::new()
            .with_table("app_sessions")
            .unwrap();
        let sql = migration_sql(&config);
        assert!(sql.contains("applied_at TIMESTAMPTZ NOT NULL DEFAULT now()"));
        for statement in config.ddl() {
            assert!(sql.contains(&format!("{statement};\n")), "{sql}");
        }
        assert!(sql.contains("INSERT INTO app_sessions_migrations"));
    }
}
