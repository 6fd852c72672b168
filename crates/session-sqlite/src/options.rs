//! [`SqliteOptions`]: pool size, busy timeout, cleanup batch size.

use std::path::Path;
use std::time::Duration;

use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::OpenFlags;
use session_core::Error;

/// Tuning of a [`SqliteStore`](crate::SqliteStore): built with chained
/// setters, checked when the store is opened (a bad value is an
/// [`Error::InvalidConfig`] naming the field).
///
/// ```
/// use std::time::Duration;
/// use session_sqlite::SqliteOptions;
///
/// let options = SqliteOptions::new()
///     .pool_size(4)
///     .busy_timeout(Duration::from_secs(2))
///     .cleanup_batch_size(500);
/// assert_eq!(options.get_pool_size(), 4);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteOptions {
    pool_size: u32,
    busy_timeout: Duration,
    pool_timeout: Duration,
    cleanup_batch_size: u32,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            pool_size: Self::DEFAULT_POOL_SIZE,
            busy_timeout: Self::DEFAULT_BUSY_TIMEOUT,
            pool_timeout: Self::DEFAULT_POOL_TIMEOUT,
            cleanup_batch_size: Self::DEFAULT_CLEANUP_BATCH_SIZE,
        }
    }
}

impl SqliteOptions {
    /// Connections in the pool of a file database (an in-memory database
    /// always uses one): 8.
    pub const DEFAULT_POOL_SIZE: u32 = 8;
    /// How long a statement waits for another connection's write lock
    /// before failing with "database is locked": 5 s.
    pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(5);
    /// How long an operation waits for a free pooled connection: 30 s.
    pub const DEFAULT_POOL_TIMEOUT: Duration = Duration::from_secs(30);
    /// Rows deleted per transaction by `delete_expired`: 1,000.
    pub const DEFAULT_CLEANUP_BATCH_SIZE: u32 = 1_000;

    /// The defaults: see the associated constants.
    pub fn new() -> Self {
        Self::default()
    }

    /// Maximum number of pooled connections to a file database (at least 1).
    /// WAL lets readers run in parallel with the one writer; writers take
    /// turns. Ignored for an in-memory database, which has one connection.
    pub fn pool_size(mut self, size: u32) -> Self {
        self.pool_size = size;
        self
    }

    /// SQLite's `busy_timeout` on every connection: how long a statement
    /// waits for the write lock held by another connection (or process)
    /// before it fails. Zero fails at once.
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// How long an operation waits for a free connection from the pool
    /// before it fails with [`Error::PoolTimeout`] (more than zero).
    pub fn pool_timeout(mut self, timeout: Duration) -> Self {
        self.pool_timeout = timeout;
        self
    }

    /// Rows `delete_expired` removes per transaction (at least 1). Smaller
    /// batches hold the write lock for less time each.
    pub fn cleanup_batch_size(mut self, rows: u32) -> Self {
        self.cleanup_batch_size = rows;
        self
    }

    /// The configured pool size.
    pub fn get_pool_size(&self) -> u32 {
        self.pool_size
    }

    /// The configured busy timeout.
    pub fn get_busy_timeout(&self) -> Duration {
        self.busy_timeout
    }

    /// The configured pool timeout.
    pub fn get_pool_timeout(&self) -> Duration {
        self.pool_timeout
    }

    /// The configured cleanup batch size.
    pub fn get_cleanup_batch_size(&self) -> u32 {
        self.cleanup_batch_size
    }

    /// Refuses values the pool or SQLite cannot honour.
    pub(crate) fn validate(&self) -> Result<(), Error> {
        if self.pool_size == 0 {
            return Err(Error::invalid_config(
                "pool_size",
                "0 connections; at least 1 is needed",
            ));
        }
        if self.pool_timeout.is_zero() {
            return Err(Error::invalid_config(
                "pool_timeout",
                "zero; it must be more than zero",
            ));
        }
        if self.cleanup_batch_size == 0 {
            return Err(Error::invalid_config(
                "cleanup_batch_size",
                "0 rows; at least 1 is needed",
            ));
        }
        if i32::try_from(self.busy_timeout.as_millis()).is_err() {
            return Err(Error::invalid_config(
                "busy_timeout",
                format!(
                    "{:?} is longer than SQLite accepts (about 24 days)",
                    self.busy_timeout
                ),
            ));
        }
        Ok(())
    }

    /// The open flags of every connection to a file database: read-write,
    /// create, no URI interpretation of the path, SQLite's own mutex off
    /// (a connection is used by one thread at a time through the pool).
    pub(crate) fn file_flags() -> OpenFlags {
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
    }

    /// A connection manager for the file database at `path` whose
    /// connections carry this store's settings (`synchronous=NORMAL`, the
    /// busy timeout). Use it to build an `r2d2::Pool` of your own for
    /// [`SqliteStore::from_pool`](crate::SqliteStore::from_pool); set the
    /// WAL journal once on the database (`PRAGMA journal_mode=WAL`), or let
    /// [`SqliteStore::open`](crate::SqliteStore::open) do it.
    ///
    /// ```
    /// use session_sqlite::SqliteOptions;
    ///
    /// let path = std::env::temp_dir().join(format!("manager-{}.db", std::process::id()));
    /// let manager = SqliteOptions::new().connection_manager(&path);
    /// let pool = r2d2::Pool::builder().max_size(4).build(manager).unwrap();
    /// let conn = pool.get().unwrap();
    /// let sync: i64 = conn.query_row("PRAGMA synchronous", [], |r| r.get(0)).unwrap();
    /// assert_eq!(sync, 1); // NORMAL
    /// # drop(conn); drop(pool); let _ = std::fs::remove_file(&path);
    /// ```
    pub fn connection_manager(&self, path: impl AsRef<Path>) -> SqliteConnectionManager {
        let busy = self.busy_timeout;
        SqliteConnectionManager::file(path)
            .with_flags(Self::file_flags())
            .with_init(move |conn| init_connection(conn, busy, true))
    }
}

/// Per-connection settings: busy timeout, and for a file database
/// `synchronous=NORMAL` (durable across application crashes; the last
/// transactions may roll back on power loss, never corrupt, in WAL mode).
pub(crate) fn init_connection(
    conn: &mut rusqlite::Connection,
    busy_timeout: Duration,
    file: bool,
) -> rusqlite::Result<()> {
    conn.busy_timeout(busy_timeout)?;
    if file {
        conn.pragma_update(None, "synchronous", "NORMAL")?;
    }
    Ok(())
}
