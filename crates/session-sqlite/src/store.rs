//! [`SqliteStore`]: the [`Store`] on an r2d2 pool of rusqlite connections.

use std::ffi::c_int;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use r2d2::{Pool, PooledConnection};
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, ErrorCode, OptionalExtension, params};
use session_core::cleanup::delete_in_batches_async;
use session_core::migrate::{AppliedMigration, Dialect, MigrateReport, Migration, SqlExecutor};
use session_core::{
    Error, Result, Store, StoreAdmin, StoreConfig, TableName, async_trait, non_zero, validate_key,
};
use tokio::runtime::Handle;
use tracing::{Instrument, Span};

use crate::clock::Now;
use crate::config::{SqliteConfig, file_flags, init_connection};
use crate::connector::{Location, parse_location};
use crate::migrations::{self, SqliteExecutor};
use crate::schema::{Statements, ddl};
use crate::writer::{Reopen, Writer};

pub(crate) const BACKEND: &str = "sqlite";

/// A session [`Store`] on SQLite: the embedded default.
///
/// Rows live in SQLSpec's SQLite table (see [`ddl`](Self::ddl)),
/// so a table created by SQLSpec is used as is. Expiry is `INTEGER` unix
/// seconds computed in Rust and compared as integers, so the partial index
/// on `expires_at` serves cleanup; a key is never early and gone at most one
/// second after its expiry.
///
/// Reads take a connection from an r2d2 pool and run on tokio's blocking
/// thread pool (`spawn_blocking`), so a slow disk never stalls the async
/// workers. Writes (a renewing `get` included) of a file database go to the
/// store's single writer: one connection on a thread of its own that runs
/// them in arrival order, committing the writes that queued meanwhile
/// together, with checkpoints on one more thread; see `docs/sqlite.md`.
/// A write waits at most `wait_timeout` for the writer to take it, then
/// at most `busy_timeout` for SQLite's lock.
/// An in-memory store and one built [`from_pool`](Self::from_pool) write
/// through the pool. The methods must be called from within a tokio
/// runtime (outside one they return an error) with its timer enabled (as
/// `#[tokio::main]` and `Runtime::new` do): the writer's wait is timed. Statements are formatted
/// once, at construction, with the validated table name, prepared once per
/// connection and cached; every value is a bound parameter.
///
/// Cloning is cheap and shares the pool.
///
/// ```
/// use std::time::Duration;
/// use session_core::{Bytes, Store};
/// use session_sqlite::SqliteStore;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> session_core::Result<()> {
/// let store = SqliteStore::in_memory()?;
/// store.create_table().await?;
/// store.set("k", Bytes::from_static(b"v"), Some(Duration::from_secs(60))).await?;
/// assert_eq!(store.get("k", None).await?, Some(Bytes::from_static(b"v")));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    pool: Pool<SqliteConnectionManager>,
    wait_timeout: Duration,
    location: String,
    /// The single writer of a database this store opened itself; `None`
    /// for an in-memory database (one connection anyway) and a pool given
    /// to [`SqliteStore::from_pool`], whose writes use the pool.
    writer: Option<Writer>,
}

/// The single writer's connections to a file database: the writer's own
/// and its checkpoints', and the file, to reopen the writer's.
struct WriterParts {
    conn: Connection,
    checkpoints: Connection,
    path: std::path::PathBuf,
}

/// What a statement needs besides its connection: the table, the SQL, and
/// what error messages say. Shared with the writer thread.
pub(crate) struct Shared {
    pub(crate) table: TableName,
    pub(crate) sql: Statements,
    busy_timeout: Duration,
    batch_size: u32,
    /// The file, for a store that opened one: named when it is locked.
    database: Option<String>,
}

impl Shared {
    /// The database file, or what stands for it in messages.
    pub(crate) fn database(&self) -> &str {
        self.database.as_deref().unwrap_or_default()
    }
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("location", &self.inner.location)
            .field("table", &self.inner.shared.table)
            .field("batch_size", &self.inner.shared.batch_size)
            .field("single_writer", &self.inner.writer.is_some())
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `location` with the
    /// default [`SqliteConfig`]; see [`open_with`](Self::open_with).
    ///
    /// ```
    /// use session_sqlite::SqliteStore;
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> session_core::Result<()> {
    /// let store = SqliteStore::open("sqlite::memory:")?;
    /// store.create_table().await?;
    /// assert_eq!(store.table().table(), "litestar_session");
    /// # Ok(()) }
    /// ```
    pub fn open(location: &str) -> Result<Self> {
        Self::open_with(location, SqliteConfig::default())
    }

    /// Opens the database at `location`: a file path, a `sqlite://path` or
    /// `sqlite:path` URL (`sqlite:///var/lib/app/sessions.db` is an absolute
    /// path), or `:memory:` / `sqlite::memory:` for an in-memory database
    /// (see [`in_memory_with`](Self::in_memory_with)).
    ///
    /// The file database is switched to the WAL journal, and every
    /// connection gets `synchronous=NORMAL` and the busy timeout. Besides
    /// the pool (for reads), the store keeps two connections of its own:
    /// its single writer and the writer's checkpoints, each on a thread
    /// that ends when the last clone of the store is dropped. Opening
    /// checks, before returning, that the database can be opened and
    /// written: a missing directory, an unreadable file or a read-only
    /// database is an error here, not at the first request. It blocks for
    /// that long (at most the busy timeout); in async code it is short
    /// enough to call directly at startup. The table is not created: call
    /// [`create_table`](Self::create_table) (idempotent), or run the
    /// migrations ([`StoreAdmin::migrate`]).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] for a bad location or setting (naming
    /// `path` or the field), [`Error::InvalidIdentifier`] for a bad
    /// `table`, [`Error::Connection`] when the database cannot be opened or
    /// written. The configuration is checked before anything is opened.
    pub fn open_with(location: &str, config: SqliteConfig) -> Result<Self> {
        Self::at(parse_location(location, "path")?, config)
    }

    /// Opens the database at a parsed `location`.
    pub(crate) fn at(location: Location, config: SqliteConfig) -> Result<Self> {
        match location {
            Location::Memory => Self::in_memory_with(config),
            Location::File(path) => Self::open_file(&path, config),
        }
    }

    fn open_file(path: &Path, config: SqliteConfig) -> Result<Self> {
        config.validate()?;
        let table = config.table_name()?;
        let shown = path.display().to_string();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if let Err(e) = std::fs::metadata(dir) {
                return Err(Error::connection(
                    BACKEND,
                    format!(
                        "cannot open the database {shown}: its directory {} is not accessible",
                        dir.display()
                    ),
                    e,
                ));
            }
        }
        let cannot = |what: &str, e: rusqlite::Error| {
            Error::connection(BACKEND, format!("cannot {what} the database {shown}"), e)
        };
        // One connection of our own proves, before the pool exists, that the
        // file can be opened and written, and switches it to WAL.
        let mut probe =
            Connection::open_with_flags(path, file_flags()).map_err(|e| cannot("open", e))?;
        init_connection(&mut probe, config.busy_timeout, true)
            .map_err(|e| cannot("configure", e))?;
        if probe.is_readonly("main").map_err(|e| cannot("open", e))? {
            return Err(Error::connection(
                BACKEND,
                format!("cannot write the database {shown}"),
                "the file is read-only",
            ));
        }
        let mode =
            switch_to_wal(&probe, config.busy_timeout).map_err(|e| cannot("switch to WAL", e))?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(database = %shown, journal_mode = %mode, "SQLite refused the WAL journal");
        }
        // Taking the write lock creates the WAL file: fails now, not at the
        // first request, in a directory that is not writable.
        probe
            .execute_batch("BEGIN IMMEDIATE; ROLLBACK;")
            .map_err(|e| cannot("write", e))?;

        let pool = Pool::builder()
            .max_size(config.pool_size)
            .min_idle(Some(1))
            .connection_timeout(config.wait_timeout)
            .build(config.connection_manager(path))
            .map_err(|e| {
                Error::connection(BACKEND, format!("cannot open the database {shown}"), e)
            })?;
        // The probe stays open as the store's single writer; one more
        // connection runs its checkpoints.
        let mut checkpoints =
            Connection::open_with_flags(path, file_flags()).map_err(|e| cannot("open", e))?;
        init_connection(&mut checkpoints, config.busy_timeout, true)
            .map_err(|e| cannot("configure", e))?;
        let writer = WriterParts {
            conn: probe,
            checkpoints,
            path: path.to_path_buf(),
        };
        Self::assemble(pool, table, &config, shown, Some(writer))
    }

    /// A fresh in-memory database, private to this store and its clones,
    /// with the default [`SqliteConfig`]; see
    /// [`in_memory_with`](Self::in_memory_with).
    pub fn in_memory() -> Result<Self> {
        Self::in_memory_with(SqliteConfig::default())
    }

    /// A fresh in-memory database, private to this store and its clones.
    ///
    /// It lives as long as the store: a uniquely named shared-cache memory
    /// database held open by the connection manager, served by a pool of
    /// exactly one connection (SQLite's shared cache locks whole tables and
    /// does not wait for them, so more connections would only trade
    /// throughput for "table is locked" errors). `pool_size` is ignored.
    ///
    /// # Errors
    ///
    /// A bad setting or table name; a database SQLite cannot create.
    pub fn in_memory_with(config: SqliteConfig) -> Result<Self> {
        config.validate()?;
        let table = config.table_name()?;
        let busy = config.busy_timeout;
        let manager = SqliteConnectionManager::memory()
            .with_init(move |conn| init_connection(conn, busy, false));
        let pool = Pool::builder()
            .max_size(1)
            .min_idle(Some(1))
            .idle_timeout(None)
            .max_lifetime(None)
            .connection_timeout(config.wait_timeout)
            .build(manager)
            .map_err(|e| Error::connection(BACKEND, "cannot open an in-memory database", e))?;
        Self::assemble(pool, table, &config, ":memory:".into(), None)
    }

    /// A store on an existing pool. Its connections are used as they are:
    /// this store does not change their journal mode, `synchronous` or busy
    /// timeout (build the pool's manager with
    /// [`SqliteConfig::connection_manager`] to get this crate's settings).
    /// Of `config`, `table` and `cleanup_batch_size` apply; the pool's own
    /// size and connection timeout replace `pool_size` and `wait_timeout`.
    /// One connection is taken from the pool here, so an unusable pool is
    /// an error now.
    ///
    /// # Errors
    ///
    /// A bad setting or table name; a pool that gives no connection.
    pub fn from_pool(pool: Pool<SqliteConnectionManager>, config: SqliteConfig) -> Result<Self> {
        config.validate()?;
        let table = config.table_name()?;
        let waited = pool.connection_timeout();
        drop(pool.get().map_err(|e| pool_error(e, waited))?);
        let config = SqliteConfig {
            wait_timeout: waited,
            ..config
        };
        Self::assemble(pool, table, &config, "an existing pool".into(), None)
    }

    /// The store on `pool`; with `writer`, two connections to the same
    /// file: its single writer and the writer's checkpoints.
    fn assemble(
        pool: Pool<SqliteConnectionManager>,
        table: TableName,
        config: &SqliteConfig,
        location: String,
        writer: Option<WriterParts>,
    ) -> Result<Self> {
        let shared = Arc::new(Shared {
            sql: Statements::new(&table),
            table,
            busy_timeout: config.busy_timeout,
            batch_size: config.cleanup_batch_size,
            database: writer.is_some().then(|| location.clone()),
        });
        let writer = match writer {
            Some(parts) => Some(Writer::start(
                parts.conn,
                parts.checkpoints,
                Arc::clone(&shared),
                Reopen {
                    path: parts.path,
                    busy_timeout: config.busy_timeout,
                },
                config.wait_timeout,
            )?),
            None => None,
        };
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                shared,
                pool,
                wait_timeout: config.wait_timeout,
                location,
                writer,
            }),
        })
    }

    /// The DDL of the session table `table`, SQLSpec's SQLite schema: the
    /// `CREATE TABLE IF NOT EXISTS` statement, then the `CREATE INDEX IF NOT
    /// EXISTS` of the partial index on `expires_at`. Both are idempotent.
    ///
    /// The columns are those of SQLSpec's SQLite store: `session_id TEXT
    /// PRIMARY KEY`, `data BLOB NOT NULL`, `expires_at INTEGER` (unix
    /// seconds, `NULL` for a session that never expires), `created_at` and
    /// `updated_at` (`INTEGER NOT NULL`, unix seconds).
    ///
    /// ```
    /// use session_core::TableName;
    /// use session_sqlite::SqliteStore;
    ///
    /// let ddl = SqliteStore::ddl(&TableName::new("litestar_session", 63).unwrap());
    /// assert!(ddl[0].starts_with("CREATE TABLE IF NOT EXISTS litestar_session ("));
    /// assert!(ddl[1].contains("idx_litestar_session_expires_at"));
    /// ```
    pub fn ddl(table: &TableName) -> Vec<String> {
        ddl(table)
    }

    /// Creates the session table and its partial index on `expires_at` if
    /// they do not exist (idempotent; an existing table, e.g. one SQLSpec
    /// created, is left as it is).
    pub async fn create_table(&self) -> Result<()> {
        self.run("create_table", |inner, conn| {
            // IMMEDIATE: take the write lock up front (waiting out the busy
            // timeout), never upgrade a read snapshot another writer moved.
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(|e| inner.db_error("create the session table", e))?;
            for statement in ddl(&inner.table) {
                tx.execute_batch(&statement)
                    .map_err(|e| inner.db_error("create the session table", e))?;
            }
            tx.commit()
                .map_err(|e| inner.db_error("create the session table", e))
        })
        .await
    }

    /// The validated session table this store uses.
    pub fn table(&self) -> &TableName {
        &self.inner.shared.table
    }

    /// The connection pool, for statements of your own on the same database.
    pub fn pool(&self) -> &Pool<SqliteConnectionManager> {
        &self.inner.pool
    }

    /// Runs `work` with a pooled connection on tokio's blocking pool, inside
    /// a span naming the operation and table (never the key or value).
    async fn run<T, F>(&self, op: &'static str, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Shared, &mut Connection) -> Result<T> + Send + 'static,
    {
        let span = tracing::debug_span!("session_store", backend = BACKEND, op, table = %self.inner.shared.table);
        self.spawn(op, span, runtime(op)?, work).await
    }

    /// Runs `work`, a write of one statement, on the single writer (see
    /// [`writer`](crate::writer)), or like [`run`](Self::run) on the pool
    /// of a store without one. `what` names the write in its errors.
    async fn write<T, F>(&self, op: &'static str, what: &'static str, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnMut(&Shared, &mut Connection) -> Result<T> + Send + 'static,
    {
        let Some(writer) = &self.inner.writer else {
            return self.run(op, work).await;
        };
        // The same contract as every operation: within a tokio runtime.
        runtime(op)?;
        let span = tracing::debug_span!("session_store", backend = BACKEND, op, table = %self.inner.shared.table);
        writer.write(op, what, span, work).await
    }

    /// Runs `work` with the migration [`Dialect`] of this store's table
    /// and an executor over a pooled connection, on tokio's blocking pool,
    /// where `work` drives the async runner with `Handle::block_on`; in a
    /// `session_migrate` span.
    async fn migration<T, F>(&self, op: &'static str, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Dialect, &mut dyn SqlExecutor, &Handle) -> Result<T> + Send + 'static,
    {
        let span = tracing::debug_span!("session_migrate", backend = BACKEND, op, table = %self.inner.shared.table);
        let handle = runtime(op)?;
        let runner = handle.clone();
        self.spawn(op, span, handle, move |inner, conn| {
            let dialect = migrations::dialect(&inner.table);
            let error = |e| inner.db_error(op, e);
            let mut executor = SqliteExecutor { conn, error };
            work(&dialect, &mut executor, &runner)
        })
        .await
    }

    async fn spawn<T, F>(&self, op: &'static str, span: Span, handle: Handle, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Shared, &mut Connection) -> Result<T> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        let task_span = span.clone();
        let task = handle.spawn_blocking(move || {
            let _entered = task_span.enter();
            let mut conn: PooledConnection<SqliteConnectionManager> = inner
                .pool
                .get()
                .map_err(|e| pool_error(e, inner.wait_timeout))?;
            work(&inner.shared, &mut conn)
        });
        task.instrument(span)
            .await
            .map_err(|e| Error::backend(BACKEND, format!("{op}: the blocking task failed"), e))?
    }
}

/// The tokio runtime `op` runs on: an error, not a panic, outside one.
fn runtime(op: &str) -> Result<Handle> {
    Handle::try_current().map_err(|e| {
        Error::backend(
            BACKEND,
            format!("{op}: must be called within a tokio runtime"),
            e,
        )
    })
}

/// Puts the database in WAL mode and returns the journal mode it is in.
///
/// A database already in WAL (another process or store opened it first) is
/// left alone. Changing the mode needs a lock SQLite does not wait for with
/// its busy handler, so while other connections hold the database the
/// switch is retried until `busy_timeout` has passed.
fn switch_to_wal(conn: &Connection, busy_timeout: Duration) -> rusqlite::Result<String> {
    let deadline = std::time::Instant::now() + busy_timeout;
    loop {
        let attempt = conn
            .query_row("PRAGMA journal_mode", [], |row| row.get::<_, String>(0))
            .and_then(|mode| {
                if mode.eq_ignore_ascii_case("wal") {
                    Ok(mode)
                } else {
                    conn.query_row("PRAGMA journal_mode=WAL", [], |row| row.get(0))
                }
            });
        match attempt {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if matches!(
                    e.code,
                    rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                ) && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            other => return other,
        }
    }
}

fn pool_error(e: r2d2::Error, waited: Duration) -> Error {
    // r2d2 reports the last connection error, if any, as its message; with
    // none, every connection was busy for the whole wait.
    if e.to_string().contains("timed out waiting for connection") {
        Error::PoolTimeout {
            backend: BACKEND,
            waited,
        }
    } else {
        Error::connection(BACKEND, "cannot get a connection from the pool", e)
    }
}

impl Shared {
    /// Wraps a rusqlite error, saying plainly when it is a lock that
    /// outlasted the busy timeout or a missing table.
    pub(crate) fn db_error(&self, context: &str, e: rusqlite::Error) -> Error {
        let context = match e.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => format!(
                "{context}: the database is locked (another connection held the write lock{}{} \
                 past the busy timeout of {:?})",
                if self.database.is_some() { " of " } else { "" },
                self.database.as_deref().unwrap_or_default(),
                self.busy_timeout
            ),
            _ if e.to_string().contains("no such table") => format!(
                "{context}: the table `{}` does not exist; call SqliteStore::create_table() \
                 or run the migrations",
                self.table
            ),
            _ => format!("{context} in table `{}`", self.table),
        };
        Error::backend(BACKEND, context, e)
    }
}

/// The `data` column as bytes: `BLOB` as SQLSpec writes it, or `TEXT` as a
/// JSON-storing writer may have left it.
fn data(value: ValueRef<'_>) -> rusqlite::Result<Bytes> {
    match value {
        ValueRef::Blob(b) | ValueRef::Text(b) => Ok(Bytes::copy_from_slice(b)),
        other => Err(rusqlite::Error::InvalidColumnType(
            0,
            "data".into(),
            other.data_type(),
        )),
    }
}

/// A renewing read: one `UPDATE ... RETURNING data` of the live row `key`.
fn renew_row(
    inner: &Shared,
    conn: &mut Connection,
    key: &str,
    now: Now,
    renew: Duration,
) -> Result<Option<Bytes>> {
    let err = |e| inner.db_error("renew a session", e);
    let mut statement = conn.prepare_cached(&inner.sql.renew).map_err(err)?;
    let mut rows = statement
        .query(params![
            key,
            now.secs(),
            now.expiry_after(renew),
            now.secs()
        ])
        .map_err(err)?;
    let value = match rows.next().map_err(err)? {
        Some(row) => Some(data(row.get_ref(0).map_err(err)?).map_err(err)?),
        None => None,
    };
    // Stepped to the end: outside a transaction the statement commits on
    // its last step, whose error a reset (as `query_row` leaves it to)
    // would drop, reporting a renewal that was rolled back.
    while rows.next().map_err(err)?.is_some() {}
    Ok(value)
}

fn expiry(now: Now, expires_in: Option<Duration>) -> Option<i64> {
    non_zero(expires_in).map(|d| now.expiry_after(d))
}

#[async_trait]
impl Store for SqliteStore {
    async fn get(&self, key: &str, renew_for: Option<Duration>) -> Result<Option<Bytes>> {
        validate_key(key)?;
        let key = key.to_owned();
        match non_zero(renew_for) {
            None => {
                self.run("get", move |inner, conn| {
                    let now = Now::read();
                    let err = |e| inner.db_error("get a session", e);
                    let mut st = conn.prepare_cached(&inner.sql.get).map_err(err)?;
                    st.query_row(params![key, now.secs()], |row| data(row.get_ref(0)?))
                        .optional()
                        .map_err(err)
                })
                .await
            }
            // An `UPDATE ... RETURNING`: a write, on the writer.
            Some(renew) => {
                self.write("get_renew", "renew a session", move |inner, conn| {
                    renew_row(inner, conn, &key, Now::read(), renew)
                })
                .await
            }
        }
    }

    async fn set(&self, key: &str, value: Bytes, expires_in: Option<Duration>) -> Result<()> {
        self.write_row(
            "set",
            "set a session",
            |sql| &sql.set,
            key,
            value,
            expires_in,
        )
        .await
        .map(drop)
    }

    async fn delete(&self, key: &str) -> Result<()> {
        validate_key(key)?;
        let key = key.to_owned();
        self.write("delete", "delete a session", move |inner, conn| {
            let err = |e| inner.db_error("delete a session", e);
            conn.prepare_cached(&inner.sql.delete)
                .map_err(err)?
                .execute(params![key])
                .map_err(err)?;
            Ok(())
        })
        .await
    }

    async fn delete_all(&self) -> Result<()> {
        self.write("delete_all", "delete all sessions", move |inner, conn| {
            let err = |e| inner.db_error("delete all sessions", e);
            conn.prepare_cached(&inner.sql.delete_all)
                .map_err(err)?
                .execute([])
                .map_err(err)?;
            Ok(())
        })
        .await
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        validate_key(key)?;
        let key = key.to_owned();
        self.run("exists", move |inner, conn| {
            let now = Now::read();
            let err = |e| inner.db_error("check a session", e);
            conn.prepare_cached(&inner.sql.exists)
                .map_err(err)?
                .exists(params![key, now.secs()])
                .map_err(err)
        })
        .await
    }

    async fn expires_in(&self, key: &str) -> Result<Option<Duration>> {
        validate_key(key)?;
        let key = key.to_owned();
        self.run("expires_in", move |inner, conn| {
            let now = Now::read();
            let err = |e| inner.db_error("read a session's expiry", e);
            let expires_at: Option<Option<i64>> = conn
                .prepare_cached(&inner.sql.expires_at)
                .map_err(err)?
                .query_row(params![key, now.secs()], |row| row.get(0))
                .optional()
                .map_err(err)?;
            Ok(expires_at.flatten().map(|at| now.until(at)))
        })
        .await
    }

    /// Deletes the expired rows in batches of at most
    /// `cleanup_batch_size`, each one statement in its own transaction on
    /// the writer, so requests' writes take turns with the batches. On a
    /// file store's own writer each batch yields its thread every few
    /// hundred SQLite instructions, so threads waiting for its CPU (the
    /// requests', usually) go first: on an idle machine the cleanup runs at
    /// full speed, on a busy one it takes longer. The
    /// default `StoreAdmin::cleanup` runs it, never skipped: SQLite's
    /// write lock already keeps two cleaners from deleting at once.
    async fn delete_expired(&self) -> Result<u64> {
        let now = Now::read();
        let batch = self.inner.shared.batch_size;
        let total = delete_in_batches_async(u64::from(batch), || {
            self.expired_batch("delete_expired", now, batch)
        })
        .await?;
        tracing::debug!(removed = total, table = %self.inner.shared.table, "expired sessions deleted");
        Ok(total)
    }

    async fn create(&self, key: &str, value: Bytes, expires_in: Option<Duration>) -> Result<bool> {
        let written = self.write_row(
            "create",
            "create a session",
            |sql| &sql.create,
            key,
            value,
            expires_in,
        );
        Ok(written.await? == 1)
    }

    async fn update(&self, key: &str, value: Bytes, expires_in: Option<Duration>) -> Result<bool> {
        let written = self.write_row(
            "update",
            "update a session",
            |sql| &sql.update,
            key,
            value,
            expires_in,
        );
        Ok(written.await? == 1)
    }

    /// One `UPDATE ... WHERE session_id = ? AND <live> AND data = ?`: the
    /// statement of `update` with the expected bytes as one more condition.
    async fn compare_and_set(
        &self,
        key: &str,
        expected: Bytes,
        value: Bytes,
        expires_in: Option<Duration>,
    ) -> Result<bool> {
        validate_key(key)?;
        let key = key.to_owned();
        let what = "compare-and-set a session";
        self.write("compare_and_set", what, move |inner, conn| {
            let now = Now::read();
            let err = |e| inner.db_error(what, e);
            let written = conn
                .prepare_cached(&inner.sql.compare_and_set)
                .map_err(err)?
                .execute(params![
                    key,
                    &value[..],
                    expiry(now, expires_in),
                    now.secs(),
                    &expected[..]
                ])
                .map_err(err)?;
            Ok(written == 1)
        })
        .await
    }

    /// One `DELETE ... WHERE session_id = ? AND <live>`; an expired row is
    /// left to cleanup.
    async fn delete_live(&self, key: &str) -> Result<bool> {
        validate_key(key)?;
        let key = key.to_owned();
        let what = "delete a live session";
        self.write("delete_live", what, move |inner, conn| {
            let now = Now::read();
            let err = |e| inner.db_error(what, e);
            let removed = conn
                .prepare_cached(&inner.sql.delete_live)
                .map_err(err)?
                .execute(params![key, now.secs()])
                .map_err(err)?;
            Ok(removed == 1)
        })
        .await
    }
}

#[async_trait]
impl StoreAdmin for SqliteStore {
    /// `sqlite <file> (table <table>)`; the file is `:memory:` for an
    /// in-memory database.
    fn describe(&self) -> String {
        format!(
            "sqlite {} (table {})",
            self.inner.location, self.inner.shared.table
        )
    }

    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn location(&self) -> String {
        self.inner.shared.table.qualified()
    }

    fn migrations(&self) -> Vec<Migration> {
        migrations::dialect(&self.inner.shared.table).migrations
    }

    fn migration_sql(&self) -> Option<String> {
        Some(migrations::dialect(&self.inner.shared.table).script())
    }

    /// Applies every missing migration, each in its own `BEGIN IMMEDIATE`
    /// transaction (SQLite's write lock: concurrent runs, in this process
    /// or others, take turns within the busy timeout); see
    /// [`Dialect::run`].
    async fn migrate(&self) -> Result<MigrateReport> {
        self.migration("migrate", |d, ex, rt| rt.block_on(d.run(ex)))
            .await
    }

    async fn applied_migrations(&self) -> Result<Vec<AppliedMigration>> {
        self.migration("applied_migrations", |d, ex, rt| rt.block_on(d.applied(ex)))
            .await
    }

    async fn session_table_exists(&self) -> Result<bool> {
        self.migration("session_table_exists", |d, ex, rt| {
            rt.block_on(d.table_exists(ex, &d.table))
        })
        .await
    }

    fn cleanup_batch_size(&self) -> u32 {
        self.inner.shared.batch_size
    }

    async fn delete_expired_batch(&self, limit: u32) -> Result<u64> {
        session_core::cleanup::check_batch_limit(limit)?;
        self.expired_batch("delete_expired_batch", Now::read(), limit)
            .await
    }
}

/// SQLite virtual-machine instructions a cleanup batch runs between two
/// yields of its thread (see [`GivingWay`]). A batch of 50 rows runs about
/// 1,200 instructions (a one-off count with the unit test's 500 rows gave
/// 24 yields), so it yields about 2.4 times in its 0.3 ms. 100 and 200
/// gave the same read latencies in the benchmark, and took longer.
const CLEANUP_YIELD_EVERY: c_int = 500;

#[cfg(test)]
thread_local! {
    /// Yields of this thread's cleanup batches, for the tests.
    static CLEANUP_YIELDS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// A cleanup batch gives its CPU way: while it is installed, SQLite's
/// progress handler calls `std::thread::yield_now` every
/// [`CLEANUP_YIELD_EVERY`] instructions of the connection's statements, so
/// a thread queued for the batch's CPU (a reader, usually) gets it at the
/// next yield instead of when the scheduler takes the CPU from the batch
/// (on 2 cores full of readers, the slow reads during a cleanup took up to
/// 8.5 ms in a one-off trace, against a p99 of 0.4 ms without one).
/// On an idle machine a yield returns at once. Dropping it removes the
/// handler, also when the batch panics, so the writer's other writes never
/// yield (they do wait for a batch that yields, queued behind it).
struct GivingWay<'c>(&'c Connection);

impl<'c> GivingWay<'c> {
    fn install(conn: &'c Connection) -> rusqlite::Result<Self> {
        conn.progress_handler(
            CLEANUP_YIELD_EVERY,
            Some(|| {
                #[cfg(test)]
                CLEANUP_YIELDS.with(|n| n.set(n.get() + 1));
                std::thread::yield_now();
                false
            }),
        )?;
        Ok(GivingWay(conn))
    }
}

impl Drop for GivingWay<'_> {
    fn drop(&mut self) {
        // Fails only for a connection not owned by rusqlite, which the
        // install above would have refused.
        let _ = self.0.progress_handler(0, None::<fn() -> bool>);
    }
}

impl SqliteStore {
    /// One cleanup batch: deletes at most `limit` rows expired at `now`, in
    /// one statement on the writer (on the pool for a store without one).
    async fn expired_batch(&self, op: &'static str, now: Now, limit: u32) -> Result<u64> {
        let what = "delete expired sessions";
        // Only the writer's own connection gives way: a pooled connection
        // may be the application's (`from_pool`), and installing our
        // progress handler would replace one it set; an in-memory store's
        // readers wait for its one connection, not for a CPU.
        let give_way = self.inner.writer.is_some();
        self.write(op, what, move |inner, conn| {
            let err = |e| inner.db_error(what, e);
            let _giving_way = give_way
                .then(|| GivingWay::install(conn))
                .transpose()
                .map_err(err)?;
            let removed = conn
                .prepare_cached(&inner.sql.delete_expired)
                .map_err(err)?
                .execute(params![now.secs(), i64::from(limit)])
                .map_err(err)?;
            Ok(removed as u64)
        })
        .await
    }

    /// Runs one of the row-writing statements (`set`, `create`, `update`:
    /// all take the key, the value, the expiry and the time) on the writer
    /// and returns how many rows it wrote.
    async fn write_row(
        &self,
        op: &'static str,
        what: &'static str,
        statement: fn(&Statements) -> &String,
        key: &str,
        value: Bytes,
        expires_in: Option<Duration>,
    ) -> Result<usize> {
        validate_key(key)?;
        let key = key.to_owned();
        self.write(op, what, move |inner, conn| {
            let now = Now::read();
            let err = |e| inner.db_error(what, e);
            conn.prepare_cached(statement(&inner.sql))
                .map_err(err)?
                .execute(params![
                    key,
                    &value[..],
                    expiry(now, expires_in),
                    now.secs()
                ])
                .map_err(err)
        })
        .await
    }
}

#[cfg(test)]
impl Shared {
    /// The shared part of a store on `table` of the file `database`, for
    /// the unit tests of the writer.
    pub(crate) fn for_tests(table: &str, database: &str, busy_timeout: Duration) -> Shared {
        let table = TableName::new(table, crate::config::IDENTIFIER_LIMIT).expect("a table name");
        Shared {
            sql: Statements::new(&table),
            table,
            busy_timeout,
            batch_size: 50,
            database: Some(database.to_owned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Yields of `conn`'s statements while a statement of many
    /// instructions runs on it, on this thread.
    fn yields_of(conn: &Connection) -> u64 {
        let before = CLEANUP_YIELDS.with(std::cell::Cell::get);
        conn.query_row(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000) \
             SELECT count(*) FROM n",
            [],
            |r| r.get::<_, i64>(0),
        )
        .unwrap();
        CLEANUP_YIELDS.with(std::cell::Cell::get) - before
    }

    /// The guard yields while it lives and removes its handler when it is
    /// dropped, on a panic as well.
    #[test]
    fn giving_way_ends_with_its_guard_even_on_a_panic() {
        let conn = Connection::open_in_memory().unwrap();
        assert_eq!(yields_of(&conn), 0, "no guard, no yield");
        {
            let _guard = GivingWay::install(&conn).unwrap();
            assert!(yields_of(&conn) > 0, "the guard's statement never yielded");
        }
        assert_eq!(yields_of(&conn), 0, "the handler outlived its guard");

        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _guard = GivingWay::install(&conn).unwrap();
            panic!("a batch that panics");
        }));
        assert!(panicked.is_err());
        assert_eq!(yields_of(&conn), 0, "the handler outlived a panic");
    }

    /// The yields counted so far on the writer thread of `store`.
    async fn writer_yields(store: &SqliteStore) -> u64 {
        store
            .write("yields", "count yields", |_, _| {
                Ok(CLEANUP_YIELDS.with(std::cell::Cell::get))
            })
            .await
            .unwrap()
    }

    /// A cleanup batch gives way (its progress handler yields the writer
    /// thread) and leaves no handler behind: the writes after it never
    /// yield.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cleanup_batches_give_way_and_other_writes_do_not() {
        let path = crate::test_db_path("giving-way");
        let store = SqliteStore::open(path.to_str().unwrap()).unwrap();
        store.create_table().await.unwrap();
        let table = store.table().qualified();
        store
            .write("seed", "seed rows", move |_, conn| {
                let past = Now::read().secs() - 60;
                conn.execute(
                    &format!(
                        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500) \
                         INSERT INTO {table} (session_id, data, expires_at) \
                         SELECT 'old' || i, zeroblob(1000), ?1 FROM n"
                    ),
                    params![past],
                )
                .unwrap();
                Ok(())
            })
            .await
            .unwrap();
        assert_eq!(writer_yields(&store).await, 0, "no cleanup ran yet");

        assert_eq!(store.delete_expired().await.unwrap(), 500);
        let after_cleanup = writer_yields(&store).await;
        assert!(
            after_cleanup >= 10,
            "10 batches of 50 rows yielded {after_cleanup} times, not once each"
        );

        for i in 0..100 {
            let value = Bytes::from(vec![7u8; 4096]);
            store.set(&format!("k{i}"), value, None).await.unwrap();
        }
        assert_eq!(
            writer_yields(&store).await,
            after_cleanup,
            "a write after the cleanup yielded: its handler was left installed"
        );
    }

    /// A renewal whose autocommit is refused (a commit hook turns it into
    /// a rollback) reports the error instead of the value it never kept.
    #[test]
    fn a_renewal_whose_commit_fails_is_an_error() {
        let shared = Shared::for_tests("renew_commit", "a test database", Duration::ZERO);
        let mut conn = Connection::open_in_memory().unwrap();
        for statement in ddl(&shared.table) {
            conn.execute_batch(&statement).unwrap();
        }
        let now = Now::read();
        conn.execute(
            "INSERT INTO renew_commit (session_id, data, expires_at, created_at, updated_at) \
             VALUES ('k', x'01', ?1, ?2, ?2)",
            params![now.secs() + 60, now.secs()],
        )
        .unwrap();
        let renewed = renew_row(&shared, &mut conn, "k", now, Duration::from_secs(3600));
        assert_eq!(renewed.unwrap(), Some(Bytes::from_static(b"\x01")));

        conn.commit_hook(Some(|| true)).unwrap();
        let renewed = renew_row(&shared, &mut conn, "k", now, Duration::from_secs(7200));
        conn.commit_hook(None::<fn() -> bool>).unwrap();
        let err = renewed.expect_err("the renewal was rolled back, yet reported");
        assert!(err.to_string().contains("renew a session"), "{err}");
        let kept: i64 = conn
            .query_row("SELECT expires_at FROM renew_commit", [], |r| r.get(0))
            .unwrap();
        assert_eq!(kept, now.expiry_after(Duration::from_secs(3600)));
    }
}
