//! [`StoreAdmin`] for [`PostgresStore`]: migrations through the shared
//! runner, batched and lock-coordinated cleanup, a description for logs.

use session_core::migrate::{AppliedMigration, MigrateReport, Migration};
use session_core::{Result, StoreAdmin, async_trait};
use tracing::Instrument;

use crate::error::BACKEND;
use crate::migrations::{PgExecutor, dialect};
use crate::store::PostgresStore;

#[async_trait]
impl StoreAdmin for PostgresStore {
    /// `postgres table <table> at <host:port>`, never the user or password.
    fn describe(&self) -> String {
        format!("{BACKEND} table {} at {}", self.table(), self.address())
    }

    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn location(&self) -> String {
        self.table().qualified()
    }

    /// `ext_litestar_0001`: exactly [`PostgresStore::ddl`].
    fn migrations(&self) -> Vec<Migration> {
        dialect(self.table(), self.config()).migrations
    }

    fn migration_sql(&self) -> Option<String> {
        Some(dialect(self.table(), self.config()).script())
    }

    /// Each step in its own transaction under `pg_advisory_xact_lock` (the
    /// lock [`create_table`](PostgresStore::create_table) takes), re-reading
    /// the tracking table under it: safe when many instances run it at once.
    async fn migrate(&self) -> Result<MigrateReport> {
        async { self.dialect().run(&mut PgExecutor::new(self).await?).await }
            .instrument(self.span("migrate"))
            .await
    }

    async fn applied_migrations(&self) -> Result<Vec<AppliedMigration>> {
        async {
            self.dialect()
                .applied(&mut PgExecutor::new(self).await?)
                .await
        }
        .instrument(self.span("applied_migrations"))
        .await
    }

    /// Looked up like an unqualified name in a statement: through the
    /// `search_path`.
    async fn session_table_exists(&self) -> Result<bool> {
        async {
            let mut executor = PgExecutor::new(self).await?;
            self.dialect()
                .table_exists(&mut executor, self.table())
                .await
        }
        .instrument(self.span("session_table_exists"))
        .await
    }

    fn cleanup_batch_size(&self) -> u32 {
        self.config().cleanup_batch_size
    }

    async fn delete_expired_batch(&self, limit: u32) -> Result<u64> {
        self.delete_batch(limit).await
    }

    /// Under the table's cleanup lock (`pg_try_advisory_lock` on
    /// [`cleanup_lock_key`](PostgresStore::cleanup_lock_key)): `Ok(None)`
    /// while another instance cleans the same table.
    async fn cleanup(&self) -> Result<Option<u64>> {
        self.locked_cleanup().await
    }
}

impl PostgresStore {
    fn dialect(&self) -> session_core::migrate::Dialect {
        dialect(self.table(), self.config())
    }
}
