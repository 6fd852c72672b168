//! The operations side of a store: [`StoreAdmin`] (migrations, cleanup
//! batches, a description for logs) and [`Connector`] (opening a store from
//! a URL), next to [`Store`], the request path.
//!
//! The `sessions` CLI, the demo and any operations tool of yours talk to
//! every backend through one `Arc<dyn StoreAdmin>`, opened by URL through
//! the scheme table of the `session-open` crate. An `Arc<dyn StoreAdmin>`
//! is also an `Arc<dyn Store>` (trait upcasting), so the same object
//! serves requests.
//!
//! Backends without a schema (Redis, Memcached, files) keep the defaults
//! of the migration methods: nothing to migrate, no SQL, the "table"
//! always exists, and a cleanup batch is one
//! [`delete_expired`](Store::delete_expired).
//!
//! ```
//! use std::sync::Arc;
//! use session_core::{MemoryStore, Store, StoreAdmin};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> session_core::Result<()> {
//! let admin: Arc<dyn StoreAdmin> = Arc::new(MemoryStore::new());
//! assert!(admin.migrate().await?.is_noop());
//! assert_eq!(admin.migration_sql(), None);
//! let store: Arc<dyn Store> = admin.clone();
//! assert!(!store.exists("k").await?);
//! # Ok(()) }
//! ```

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;

use crate::migrate::{AppliedMigration, MigrateReport, Migration};
use crate::{Result, Store};

/// The cleanup batch size of a backend that does not choose its own.
pub const DEFAULT_CLEANUP_BATCH_SIZE: u32 = 1_000;

/// The operations side of a store: what the `sessions` CLI and background
/// cleaners need, the same for every backend. Object safe.
///
/// Every method but [`describe`](Self::describe) has a default that fits a
/// backend without a schema; a SQL backend overrides all of them.
#[async_trait]
pub trait StoreAdmin: Store {
    /// A short description for logs and messages: the backend, the table
    /// (or key prefix) and the server address. Never a password.
    fn describe(&self) -> String;

    /// The backend's name (`sqlite`, `postgres`, ...).
    fn backend(&self) -> &'static str;

    /// The name of the session table (or the key prefix, or the
    /// directory) in messages, e.g. `litestar_session`.
    fn location(&self) -> String;

    /// The backend's ordered migrations for this store's table and
    /// settings. Default: none (no schema).
    fn migrations(&self) -> Vec<Migration> {
        Vec::new()
    }

    /// Every migration as one SQL script (tracking table included), for a
    /// migration tool of your own. Default: `None` (no schema).
    fn migration_sql(&self) -> Option<String> {
        None
    }

    /// Applies every missing migration; see
    /// [`migrate::run`](crate::migrate::run). Default: nothing to do.
    ///
    /// # Errors
    ///
    /// A refused migration (an [`Error::Backend`](crate::Error::Backend)
    /// with a [`MigrationError`](crate::migrate::MigrationError) source),
    /// connection and statement errors.
    async fn migrate(&self) -> Result<MigrateReport> {
        Ok(MigrateReport::default())
    }

    /// The applied migrations, oldest first; empty when none were applied
    /// (or the backend has no schema).
    ///
    /// # Errors
    ///
    /// Connection and statement errors.
    async fn applied_migrations(&self) -> Result<Vec<AppliedMigration>> {
        Ok(Vec::new())
    }

    /// True if the session table exists. Default: `true` (no schema).
    ///
    /// # Errors
    ///
    /// Connection and statement errors.
    async fn session_table_exists(&self) -> Result<bool> {
        Ok(true)
    }

    /// How many rows one [`delete_expired_batch`](Self::delete_expired_batch)
    /// removes at most, as configured.
    fn cleanup_batch_size(&self) -> u32 {
        DEFAULT_CLEANUP_BATCH_SIZE
    }

    /// Deletes at most `limit` expired rows in one short transaction and
    /// returns how many it deleted; fewer than `limit` means none are left.
    /// Default: one whole [`delete_expired`](Store::delete_expired).
    ///
    /// # Errors
    ///
    /// Connection and statement errors.
    async fn delete_expired_batch(&self, limit: u32) -> Result<u64> {
        let _ = limit;
        self.delete_expired().await
    }

    /// One run of a background cleaner: `Ok(Some(n))` rows removed, or
    /// `Ok(None)` when skipped because another instance is cleaning the
    /// same table (a backend with a cleanup lock). Default: one
    /// [`delete_expired`](Store::delete_expired).
    ///
    /// # Errors
    ///
    /// Connection and statement errors.
    async fn cleanup(&self) -> Result<Option<u64>> {
        self.delete_expired().await.map(Some)
    }
}

/// Opens a backend's store from a URL: one entry of the scheme table in
/// the `session-open` crate. A backend crate exports one (for example
/// `session_sqlite::SqliteConnector`).
///
/// `config` is the backend's configuration document: `Value::Null` for the
/// defaults, an object of the backend's config fields, or SQLSpec's
/// `{"litestar": {...}}` shape (see [`StoreConfig`](crate::StoreConfig)).
#[async_trait]
pub trait Connector: Send + Sync {
    /// The URL schemes this backend opens, lower case, without `:`.
    fn schemes(&self) -> &'static [&'static str];

    /// The URL forms, for help and error messages, e.g.
    /// `sqlite://PATH, sqlite::memory:`.
    fn url_forms(&self) -> &'static str;

    /// The migration SQL of the store `url` and `config` name, without
    /// connecting (or creating anything); `None` for a backend without a
    /// schema.
    ///
    /// # Errors
    ///
    /// A malformed URL or configuration.
    fn migration_sql(&self, url: &str, config: &Value) -> Result<Option<String>>;

    /// Opens the store. It may connect lazily: a reachable server is only
    /// proven by the first operation.
    ///
    /// # Errors
    ///
    /// A malformed URL or configuration; a backend that cannot be opened.
    async fn open(&self, url: &str, config: &Value) -> Result<Arc<dyn StoreAdmin>>;
}

/// Shows [`StoreAdmin::describe`], so results holding an
/// `Arc<dyn StoreAdmin>` can be `unwrap_err`ed and logged.
impl std::fmt::Debug for dyn StoreAdmin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}
