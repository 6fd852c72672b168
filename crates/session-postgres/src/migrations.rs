//! The PostgreSQL migrations of the session table: its SQL for the one
//! migration runner, [`session_core::migrate::Dialect`].
//!
//! `ext_litestar_0001` is exactly [`PostgresStore::ddl`], so its checksum
//! covers the table name and the storage parameters. The tracking table
//! `<session_table>_migrations` records each applied version
//! (`applied_at TIMESTAMPTZ`, the server's clock). Each step is one
//! transaction that first takes `pg_advisory_xact_lock` on the key
//! [`PostgresStore::create_table`] takes, so any number of instances can
//! migrate at once.

use deadpool_postgres::Object;
use session_core::migrate::{ColumnSpec, Dialect, Migration, SqlExecutor};
use session_core::{Error, Result, TableName, async_trait};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;

use crate::config::PostgresConfig;
use crate::error::{BACKEND, sqlstate, statement_error};
use crate::store::{PostgresStore, advisory_lock_key};

/// The seed's columns as `format_type` names their types.
const SESSION_COLUMNS: &[ColumnSpec] = &[
    ColumnSpec::new("session_id", "text", Some(true)),
    ColumnSpec::new("data", "bytea", Some(true)),
    ColumnSpec::new("expires_at", "timestamp with time zone", Some(false)),
    ColumnSpec::new("created_at", "timestamp with time zone", Some(true)),
    ColumnSpec::new("updated_at", "timestamp with time zone", Some(true)),
];

/// A table's OID from parameters 1 (name) and 2 (schema or `NULL`), looked
/// up like a name in a statement: through the `search_path`.
const REGCLASS: &str = "to_regclass(concat_ws('.', $2::text, $1::text))";

/// The migrations of `table` with the storage parameters of `config`, and
/// the SQL that runs them.
pub(crate) fn dialect(table: &TableName, config: &PostgresConfig) -> Dialect {
    let tracking = table.migrations_table().qualified();
    Dialect {
        backend: BACKEND,
        table: table.clone(),
        migrations: vec![Migration::initial(crate::store::ddl(table, config))],
        session_columns: SESSION_COLUMNS,
        tracking_ddl: format!(
            "CREATE TABLE IF NOT EXISTS {tracking} (\n    \
             version TEXT PRIMARY KEY,\n    \
             description TEXT NOT NULL,\n    \
             checksum TEXT NOT NULL,\n    \
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now()\n)"
        ),
        ddl_commits: false,
        begin: vec![
            "BEGIN".into(),
            format!(
                "SELECT pg_advisory_xact_lock({})",
                advisory_lock_key(&table.qualified())
            ),
        ],
        select_applied: format!(
            "SELECT version, description, checksum, \
             extract(epoch FROM date_trunc('second', applied_at))::bigint::text \
             FROM {tracking} ORDER BY version"
        ),
        insert: format!(
            "INSERT INTO {tracking} (version, description, checksum) VALUES ($1, $2, $3)"
        ),
        table_exists: format!("SELECT '1'::text WHERE {REGCLASS} IS NOT NULL"),
        columns: format!(
            "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), a.attnotnull::text \
             FROM pg_attribute a \
             WHERE a.attrelid = {REGCLASS} AND a.attnum > 0 AND NOT a.attisdropped \
             ORDER BY a.attnum"
        ),
    }
}

/// One pooled connection of `store` running the dialect's SQL. Dropped
/// inside a transaction (a failed `COMMIT` or `ROLLBACK`, or a cancelled
/// run), it closes the connection instead of returning it to the pool, so
/// the server rolls back and releases the lock.
pub(crate) struct PgExecutor<'a> {
    store: &'a PostgresStore,
    client: Option<Object>,
    in_transaction: bool,
}

impl<'a> PgExecutor<'a> {
    pub(crate) async fn new(store: &'a PostgresStore) -> Result<Self> {
        Ok(PgExecutor {
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

    fn fail(&self) -> impl Fn(tokio_postgres::Error) -> Error + use<> {
        let table = self.store.table().qualified();
        let address = self.store.address().to_owned();
        move |e| statement_error(e, "migrate", &table, &address)
    }
}

impl Drop for PgExecutor<'_> {
    fn drop(&mut self) {
        if let Some(client) = self.client.take().filter(|_| self.in_transaction) {
            tracing::warn!("a migration transaction did not end; closing its connection");
            drop(Object::take(client));
        }
    }
}

#[async_trait]
impl SqlExecutor for PgExecutor<'_> {
    async fn execute(&mut self, sql: &str, params: &[Option<&str>]) -> Result<()> {
        let fail = self.fail();
        if params.is_empty() {
            // Counts as inside a transaction until COMMIT or ROLLBACK succeed.
            self.in_transaction |= sql == "BEGIN";
            self.client()?.batch_execute(sql).await.map_err(fail)?;
            if sql == "COMMIT" || sql == "ROLLBACK" {
                self.in_transaction = false;
            }
            return Ok(());
        }
        let params: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p as _).collect();
        self.client()?
            .execute(sql, &params)
            .await
            .map(drop)
            .map_err(fail)
    }

    async fn query(
        &mut self,
        sql: &str,
        params: &[Option<&str>],
    ) -> Result<Vec<Vec<Option<String>>>> {
        let fail = self.fail();
        let params: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p as _).collect();
        let rows = self.client()?.query(sql, &params).await.map_err(&fail)?;
        rows.iter()
            .map(|row| (0..row.len()).map(|i| row.try_get(i)).collect())
            .collect::<Result<_, _>>()
            .map_err(fail)
    }

    /// Recorded by a run that did not take the lock (a script of
    /// `migration_sql` run by hand); the runner re-plans.
    fn unique_violation(&self, err: &Error) -> bool {
        sqlstate(err) == Some(&SqlState::UNIQUE_VIOLATION)
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
        let list = dialect(&table("litestar_session"), &config).migrations;
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
        let sql = dialect(&app, &config).script();
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

        let Some(url) = session_test_support::pg_url_or_skip() else {
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
