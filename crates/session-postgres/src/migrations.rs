//! The PostgreSQL dialect of the migration runner
//! ([`session_core::migrate::run`]).
//!
//! `ext_litestar_0001` is exactly [`PostgresStore::ddl`], so its checksum
//! covers the table name and the storage parameters. The tracking table
//! `<session_table>_migrations` records each applied version
//! (`applied_at TIMESTAMPTZ`, the server's clock). Each step is one
//! transaction that first takes `pg_advisory_xact_lock` on the key
//! [`PostgresStore::create_table`] takes, so any number of instances can
//! migrate at once.

use std::time::SystemTime;

use deadpool_postgres::Object;
use session_core::migrate::{
    AppliedMigration, ColumnInfo, ColumnSpec, Migration, MigrationDialect, script,
};
use session_core::{Error, Result, TableName, async_trait};
use tokio_postgres::error::SqlState;

use crate::config::PostgresConfig;
use crate::error::{BACKEND, statement_error};
use crate::store::{PostgresStore, advisory_lock_key};

/// The seed's columns as `format_type` names their types.
const SESSION_COLUMNS: &[ColumnSpec] = &[
    column("session_id", "text", true),
    column("data", "bytea", true),
    column("expires_at", "timestamp with time zone", false),
    column("created_at", "timestamp with time zone", true),
    column("updated_at", "timestamp with time zone", true),
];

const fn column(name: &'static str, data_type: &'static str, not_null: bool) -> ColumnSpec {
    ColumnSpec {
        name,
        data_type,
        not_null: Some(not_null),
    }
}

/// The ordered migrations of `table` with the storage parameters of `config`.
pub(crate) fn migrations(table: &TableName, config: &PostgresConfig) -> Vec<Migration> {
    vec![Migration::initial(crate::store::ddl(table, config))]
}

/// The DDL of the tracking table `<table>_migrations` (idempotent).
fn tracking_ddl(table: &TableName) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {} (\n    \
         version TEXT PRIMARY KEY,\n    \
         description TEXT NOT NULL,\n    \
         checksum TEXT NOT NULL,\n    \
         applied_at TIMESTAMPTZ NOT NULL DEFAULT now()\n)",
        table.migrations_table().qualified()
    )
}

/// Every migration as one SQL script, the tracking table first.
pub(crate) fn migration_sql(table: &TableName, config: &PostgresConfig) -> String {
    script(
        &tracking_ddl(table),
        &table.migrations_table().qualified(),
        &migrations(table, config),
    )
}

/// One pooled connection of `store`, migrating with plain `BEGIN`/`COMMIT`.
/// Dropped inside a transaction (a failed `COMMIT` or `ROLLBACK`, or a
/// cancelled run), it closes the connection instead of returning it to the
/// pool, so the server rolls back and releases the lock.
pub(crate) struct PgDialect<'a> {
    store: &'a PostgresStore,
    client: Option<Object>,
    in_transaction: bool,
}

impl<'a> PgDialect<'a> {
    pub(crate) async fn new(store: &'a PostgresStore) -> Result<Self> {
        Ok(PgDialect {
            client: Some(store.client().await?),
            store,
            in_transaction: false,
        })
    }

    fn client(&self) -> Result<&Object> {
        // `None` only once `drop` has begun.
        self.client
            .as_ref()
            .ok_or_else(|| Error::backend(BACKEND, "migrate: no connection", "already closed"))
    }

    /// Maps a statement error of `op` on `on`; borrows nothing of `self`.
    fn fail(&self, op: &'static str, on: &str) -> impl Fn(tokio_postgres::Error) -> Error + use<> {
        let (on, address) = (on.to_owned(), self.store.address().to_owned());
        move |e| statement_error(e, op, &on, &address)
    }

    fn tracking(&self) -> String {
        self.store.table().migrations_table().qualified()
    }

    /// `BEGIN`, `COMMIT` or `ROLLBACK`; the connection counts as inside a
    /// transaction until one of the latter two succeeds.
    async fn control(&mut self, statement: &str) -> Result<()> {
        self.in_transaction = true;
        let fail = self.fail("migrate", &self.tracking());
        self.client()?
            .batch_execute(statement)
            .await
            .map_err(fail)?;
        self.in_transaction = statement == "BEGIN";
        Ok(())
    }
}

impl Drop for PgDialect<'_> {
    fn drop(&mut self) {
        if let Some(client) = self.client.take().filter(|_| self.in_transaction) {
            tracing::warn!("a migration transaction did not end; closing its connection");
            drop(Object::take(client));
        }
    }
}

#[async_trait]
impl MigrationDialect for PgDialect<'_> {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn table(&self) -> &TableName {
        self.store.table()
    }

    fn migrations(&self) -> Vec<Migration> {
        migrations(self.store.table(), self.store.config())
    }

    fn session_columns(&self) -> &'static [ColumnSpec] {
        SESSION_COLUMNS
    }

    async fn begin(&mut self) -> Result<()> {
        self.control("BEGIN").await?;
        let fail = self.fail("migrate", &self.tracking());
        let lock_key = advisory_lock_key(&self.store.table().qualified());
        let client = self.client()?;
        client
            .execute("SELECT pg_advisory_xact_lock($1)", &[&lock_key])
            .await
            .map_err(&fail)?;
        client
            .batch_execute(&tracking_ddl(self.store.table()))
            .await
            .map_err(&fail)
    }

    async fn commit(&mut self) -> Result<()> {
        self.control("COMMIT").await
    }

    async fn rollback(&mut self) -> Result<()> {
        self.control("ROLLBACK").await
    }

    /// Looked up like a name in a statement: through the `search_path`.
    async fn table_exists(&mut self, table: &TableName) -> Result<bool> {
        let name = table.qualified();
        let fail = self.fail("look up table", &name);
        self.client()?
            .query_one("SELECT to_regclass($1::text) IS NOT NULL", &[&name])
            .await
            .and_then(|row| row.try_get(0))
            .map_err(fail)
    }

    async fn columns(&mut self) -> Result<Vec<ColumnInfo>> {
        let table = self.store.table().qualified();
        let fail = self.fail("read the columns of", &table);
        let rows = self
            .client()?
            .query(
                "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), a.attnotnull \
                 FROM pg_attribute a \
                 WHERE a.attrelid = to_regclass($1::text) AND a.attnum > 0 AND NOT a.attisdropped \
                 ORDER BY a.attnum",
                &[&table],
            )
            .await
            .map_err(&fail)?;
        rows.iter()
            .map(|row| {
                Ok(ColumnInfo {
                    name: row.try_get(0)?,
                    data_type: row.try_get(1)?,
                    not_null: row.try_get(2)?,
                })
            })
            .collect::<Result<_, tokio_postgres::Error>>()
            .map_err(fail)
    }

    async fn read_applied(&mut self) -> Result<Vec<AppliedMigration>> {
        let tracking = self.tracking();
        let fail = self.fail("read migrations", &tracking);
        let sql = format!(
            "SELECT version, description, checksum, applied_at FROM {tracking} ORDER BY version"
        );
        let rows = self.client()?.query(&sql, &[]).await.map_err(&fail)?;
        rows.iter()
            .map(|row| {
                Ok(AppliedMigration {
                    version: row.try_get(0)?,
                    description: row.try_get(1)?,
                    checksum: row.try_get(2)?,
                    applied_at: row.try_get::<_, SystemTime>(3)?,
                })
            })
            .collect::<Result<_, tokio_postgres::Error>>()
            .map_err(fail)
    }

    async fn execute(&mut self, statement: &str) -> Result<()> {
        let fail = self.fail("migrate", &self.tracking());
        self.client()?.batch_execute(statement).await.map_err(fail)
    }

    async fn record(&mut self, migration: &Migration) -> Result<bool> {
        let tracking = self.tracking();
        let fail = self.fail("migrate", &tracking);
        let insert =
            format!("INSERT INTO {tracking} (version, description, checksum) VALUES ($1, $2, $3)");
        let checksum = migration.checksum();
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 3] =
            [&migration.version, &migration.description, &checksum];
        match self.client()?.execute(&insert, &params).await {
            Ok(_) => Ok(true),
            // Recorded by a run that did not take the lock (a script of
            // `migration_sql` run by hand); the runner re-plans.
            Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => Ok(false),
            Err(e) => Err(fail(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(name: &str) -> TableName {
        TableName::new_qualified(name, 63).unwrap()
    }

    #[test]
    fn the_list_is_valid_and_starts_with_create_table() {
        let config = PostgresConfig::default();
        let list = migrations(&table("litestar_session"), &config);
        session_core::migrate::validate_list(&list).unwrap();
        assert_eq!(list[0].version, session_core::migrate::EXT_LITESTAR_0001);
        assert_eq!(
            list[0].statements,
            crate::store::ddl(&table("litestar_session"), &config)
        );
    }

    #[test]
    fn the_script_holds_the_tracking_table_and_the_ddl() {
        let config = PostgresConfig::default();
        let app = table("app_sessions");
        let sql = migration_sql(&app, &config);
        assert!(sql.contains("applied_at TIMESTAMPTZ NOT NULL DEFAULT now()"));
        for statement in crate::store::ddl(&app, &config) {
            assert!(sql.contains(&format!("{statement};\n")), "{sql}");
        }
        assert!(sql.contains("INSERT INTO app_sessions_migrations"));
    }

    /// A migration cancelled inside its transaction (here: waiting for the
    /// lock another instance holds) must not hand that transaction to the
    /// next caller of the pool, whose writes would then never commit.
    #[tokio::test]
    async fn a_cancelled_migration_leaves_no_transaction_in_the_pool() {
        use std::time::Duration;

        use session_core::{Bytes, Store, StoreAdmin};

        let Ok(url) = session_test_support::pg_url() else {
            eprintln!("skipped: no PostgreSQL");
            return;
        };
        let name = session_test_support::unique_table_name("mig_cancel");
        let config = PostgresConfig {
            table: name.clone(),
            pool_size: 1,
            ..PostgresConfig::default()
        };
        let store = PostgresStore::from_url(&url, config).unwrap();
        store.create_table().await.unwrap();
        let other = session_test_support::connect(&url).await.unwrap();
        other.batch_execute("BEGIN").await.unwrap();
        let key = advisory_lock_key(&name);
        other
            .execute("SELECT pg_advisory_xact_lock($1)", &[&key])
            .await
            .unwrap();
        let cancelled = tokio::time::timeout(Duration::from_millis(300), store.migrate()).await;
        other.batch_execute("COMMIT").await.unwrap();

        store
            .set("k", Bytes::from_static(b"v"), None)
            .await
            .unwrap();
        let count = format!("SELECT count(*) FROM {name} WHERE session_id = 'k'");
        let seen: i64 = other.query_one(&count, &[]).await.unwrap().get(0);
        let report = store.migrate().await;
        // Clean up before asserting: a leaked transaction would block the
        // DROP until its connection is closed.
        drop(store);
        let drop_tables = format!("DROP TABLE IF EXISTS {name}_migrations, {name}");
        tokio::time::timeout(Duration::from_secs(10), other.batch_execute(&drop_tables))
            .await
            .expect("drop the test tables")
            .unwrap();
        assert!(cancelled.is_err(), "the migration should wait for the lock");
        assert_eq!(seen, 1, "the write after the cancelled migration committed");
        assert_eq!(report.unwrap().adopted, Some("ext_litestar_0001"));
    }
}
