//! [`OracleStore`]: the [`Store`] and [`StoreAdmin`] on Oracle Database.

use std::fmt;
use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use oracle::sql_type::{Blob, Lob, OracleType, ToSql};
use session_core::cleanup::delete_in_batches;
use session_core::migrate::{AppliedMigration, Dialect, MigrateReport, Migration, SqlExecutor};
use session_core::{
    Error, Result, Store, StoreAdmin, StoreConfig, TableName, non_zero, validate_key,
};
use tracing::Instrument;

use crate::config::{Credentials, OracleConfig};
use crate::error::{AFTER_ONE_RETRY, ErrorClass, ErrorCode, classify, from_oracle, map_error};
use crate::manager::{ConnectErrors, OracleConnectionManager};
use crate::migrations::{OracleExecutor, dialect};
use crate::sql::{ExpectedSql, InMemoryStatus, Statements, ValueSql};
use crate::{BACKEND, bind};

/// Values up to this many bytes are bound as `RAW`; longer ones are bound
/// with the type `BLOB`, which the `oracle` crate (by default) sends as
/// `LONG RAW` bytes, Oracle's data interface for LOB columns. 2000 bytes is
/// the longest `RAW` every Oracle SQL context accepts
/// (`MAX_STRING_SIZE = STANDARD`), so the large-object path covers
/// everything above 32 KB and more.
pub const INLINE_VALUE_MAX: usize = 2000;

/// Expiries longer than this (about 1000 years) are shortened to it: the
/// database's `TIMESTAMP` ends at year 9999.
pub const MAX_EXPIRY: Duration = Duration::from_secs(1000 * 365 * 24 * 3600);

/// The pool type of an [`OracleStore`].
pub type OraclePool = bb8::Pool<OracleConnectionManager>;

/// A session [`Store`] on Oracle Database, through the `oracle` crate (ODPI-C,
/// which loads the Oracle Instant Client at run time) and a bb8 pool; its
/// operations side (migrations, cleanup batches) is [`StoreAdmin`].
///
/// * **Schema**: the seed's Oracle table (`VARCHAR2(255)` key, `BLOB` data,
///   `TIMESTAMP WITH TIME ZONE` expiry and audit columns with `SYSTIMESTAMP`
///   defaults, an index on `expires_at`), `INMEMORY` when
///   [`OracleConfig::in_memory`] asks for it. [`migrate`](StoreAdmin::migrate)
///   (or [`create_table`](Self::create_table)) makes it idempotently.
/// * **Blocking driver**: every driver call runs on
///   `tokio::task::spawn_blocking`, never on the runtime's workers. The
///   store needs a tokio runtime.
/// * **Statements**: `set` is one `MERGE`; `create` is a conditional
///   `UPDATE` of an expired row, then an `INSERT`; a renewing `get` is one
///   `UPDATE ... RETURNING data INTO`; expiry is computed and compared on the
///   database clock (`SYSTIMESTAMP`). `compare_and_set` is one `UPDATE`
///   guarded by the live predicate and `DBMS_LOB.GETLENGTH` /
///   `DBMS_LOB.COMPARE` of `data` with the expected value; `delete_live` is
///   one `DELETE` of the live row. Keys are bound as `VARCHAR2(255)`, the
///   column's type, so every keyed statement can use the primary key. Each
///   write commits on its own.
/// * **Values**: any bytes up to at least 1 MiB; above
///   [`INLINE_VALUE_MAX`] bytes bound as a `BLOB` (the driver sends the bytes
///   through its LOB data interface); the empty value as `EMPTY_BLOB()`.
///   The value `compare_and_set` expects is bound as `RAW` up to
///   [`INLINE_VALUE_MAX`] bytes (one round trip), and above as a temporary
///   `BLOB` written first (extra round trips to create, write and free it).
///
/// ```no_run
/// use std::time::Duration;
/// use bytes::Bytes;
/// use session_core::{Store, StoreAdmin};
/// use session_oracle::{Credentials, OracleConfig, OracleStore};
///
/// # #[tokio::main] async fn main() -> session_core::Result<()> {
/// let credentials = Credentials::new("app_user", "secret", "db.internal:1521/FREEPDB1");
/// let store = OracleStore::connect(credentials, OracleConfig::default()).await?;
/// store.migrate().await?;
/// store.set("user:1", Bytes::from_static(b"{}"), Some(Duration::from_secs(3600))).await?;
/// # Ok(()) }
/// ```
pub struct OracleStore {
    pool: OraclePool,
    config: OracleConfig,
    table: TableName,
    sql: Arc<Statements>,
    connect_errors: Option<ConnectErrors>,
}

impl fmt::Debug for OracleStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OracleStore")
            .field("table", &self.table)
            .field("in_memory", &self.config.in_memory)
            .field("pool", &self.pool.state())
            .finish()
    }
}

impl OracleStore {
    /// Opens a pool of `config`'s size with `credentials` and makes a store
    /// on it.
    ///
    /// One connection is opened before this returns (bounded by
    /// [`connect_timeout`](OracleConfig::connect_timeout)), so a missing
    /// Oracle client library (DPI-1047), bad credentials or an unreachable
    /// database are reported here, with the driver's error as the cause.
    /// The table is not created: run [`migrate`](StoreAdmin::migrate) (or
    /// [`create_table`](Self::create_table)).
    ///
    /// # Errors
    ///
    /// A bad config or an empty user ([`Error::InvalidConfig`] naming the
    /// field), a bad table name, or the first connection failing.
    pub async fn connect(credentials: Credentials, config: OracleConfig) -> Result<Self> {
        config.validate()?;
        credentials.validate()?;
        let context = credentials.describe();
        let manager = OracleConnectionManager::new(credentials);
        let errors = manager.connect_errors();
        let first =
            match tokio::time::timeout(config.connect_timeout, manager.connect_blocking()).await {
                Ok(Ok(conn)) => conn,
                Ok(Err(err)) => return Err(err.into_error(&context)),
                Err(_) => {
                    return Err(Error::connection(
                        BACKEND,
                        context,
                        std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            format!(
                                "no connection within the connect timeout of {:?}",
                                config.connect_timeout
                            ),
                        ),
                    ));
                }
            };
        let pool = bb8::Pool::builder()
            .max_size(config.pool_size)
            .min_idle(Some(config.pool_min))
            .connection_timeout(config.wait_timeout)
            .test_on_check_out(config.test_on_checkout)
            .build_unchecked(manager);
        // The first connection joins the pool; if the pool has no room for
        // it (it filled up meanwhile), it is simply closed.
        let _ = pool.add(first);
        Self::from_parts(pool, config, Some(errors))
    }

    /// Makes a store on an existing pool, checking out one connection first
    /// so that a pool that cannot connect is reported here. The pool
    /// fields of `config` are not used (the pool is built); its table,
    /// `in_memory` and `cleanup_batch_size` are.
    ///
    /// To have later pool timeouts report the last connection error too
    /// (and [`describe`](StoreAdmin::describe) name the address), pass the
    /// manager's [`connect_errors`](OracleConnectionManager::connect_errors)
    /// to [`with_connect_errors`](Self::with_connect_errors).
    ///
    /// # Errors
    ///
    /// A bad config or table name, or a pool that cannot connect.
    pub async fn from_pool(pool: OraclePool, config: OracleConfig) -> Result<Self> {
        config.validate()?;
        let store = Self::from_parts(pool, config, None)?;
        match store.pool.get().await {
            Ok(conn) => drop(conn),
            Err(bb8::RunError::User(err)) => {
                return Err(err.into_error("check out a first connection from the pool"));
            }
            Err(bb8::RunError::TimedOut) => {
                // Ask the manager directly, to report why it cannot connect.
                return match store.pool.dedicated_connection().await {
                    Err(err) => Err(err.into_error("connect a first pool connection")),
                    Ok(_) => Err(Error::PoolTimeout {
                        backend: BACKEND,
                        waited: store.pool_timeout(),
                    }),
                };
            }
        }
        Ok(store)
    }

    /// Reports `errors` (from the pool's manager) when a checkout times out.
    pub fn with_connect_errors(mut self, errors: ConnectErrors) -> Self {
        self.connect_errors = Some(errors);
        self
    }

    fn from_parts(
        pool: OraclePool,
        config: OracleConfig,
        connect_errors: Option<ConnectErrors>,
    ) -> Result<Self> {
        let table = config.table_name()?;
        let sql = Arc::new(Statements::new(&table, config.in_memory));
        Ok(OracleStore {
            pool,
            config,
            table,
            sql,
            connect_errors,
        })
    }

    /// The pool.
    pub fn pool(&self) -> &OraclePool {
        &self.pool
    }

    /// The session table.
    pub fn table(&self) -> &TableName {
        &self.table
    }

    /// The configuration the store was made with.
    pub fn config(&self) -> &OracleConfig {
        &self.config
    }

    fn pool_timeout(&self) -> Duration {
        self.pool.config().connection_timeout
    }

    /// Creates the session table and its `expires_at` index if they do not
    /// exist. Idempotent: an existing table or index (ORA-00955, or
    /// ORA-01408 for an index on the column under another name) is not an
    /// error. An existing table is not altered (not made `INMEMORY`); check
    /// with [`in_memory_status`](Self::in_memory_status).
    ///
    /// With `in_memory`, a database without the In-Memory option fails with
    /// an error saying what to check (ORA-00439; ORA-62142, a code this
    /// crate maps but could not confirm in Oracle's documentation, gets the
    /// same advice). An identifier too long for the server (ORA-00972: 30
    /// bytes before 12.2 or with `COMPATIBLE` below 12.2) is explained too.
    pub async fn create_table(&self) -> Result<()> {
        self.write("create_table", |conn, sql| {
            for ddl in [sql.create_table(), sql.create_index()] {
                if let Err(err) = conn.execute(ddl, &[]) {
                    if classify(ErrorCode::of(&err)) != ErrorClass::AlreadyExists {
                        return Err(err);
                    }
                }
            }
            Ok(())
        })
        .await
    }

    /// Drops the session table and every session in it (`DROP TABLE ...
    /// PURGE`); a missing table is not an error. For tests and teardown.
    pub async fn drop_table(&self) -> Result<()> {
        self.write("drop_table", |conn, sql| {
            match conn.execute(sql.drop_table(), &[]) {
                Ok(_) => Ok(()),
                Err(err) if classify(ErrorCode::of(&err)) == ErrorClass::TableMissing => Ok(()),
                Err(err) => Err(err),
            }
        })
        .await
    }

    /// Whether the table is in the In-Memory column store, per
    /// `all_tables.inmemory` of the table in its schema (the current schema
    /// when the name is unqualified): the seed's verification query,
    /// comparing with the upper-cased table name as Oracle stores unquoted
    /// names.
    pub async fn in_memory_status(&self) -> Result<InMemoryStatus> {
        let name = self.table.table().to_owned();
        let owner = self.table.schema().map(str::to_owned);
        self.read("in_memory_status", move |conn, sql| {
            match conn.query_row_as_named::<Option<String>>(
                sql.in_memory_status(),
                &[
                    ("tbl", &bind::text(Some(&name))),
                    ("owner", &bind::text(owner.as_deref())),
                ],
            ) {
                Ok(value) => Ok(InMemoryStatus::from_row(Some(value.as_deref()))),
                Err(err) if err.kind() == oracle::ErrorKind::NoDataFound => {
                    Ok(InMemoryStatus::from_row(None))
                }
                Err(err) => Err(err),
            }
        })
        .await
    }

    /// Runs a reading `op` (no transaction to end); see [`run`](Self::run).
    async fn read<T, F>(&self, op: &'static str, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&oracle::Connection, &Statements) -> oracle::Result<T> + Send + 'static,
    {
        self.run(op, false, f).await
    }

    /// Runs a writing `op`: commits when it succeeds, rolls back when it
    /// fails; see [`run`](Self::run).
    async fn write<T, F>(&self, op: &'static str, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&oracle::Connection, &Statements) -> oracle::Result<T> + Send + 'static,
    {
        self.run(op, true, f).await
    }

    /// Runs `op` on a pooled connection on a blocking thread, inside a
    /// tracing span (operation and table; never keys or values); driver
    /// errors are mapped with the operation and table as context. See
    /// [`run_blocking`](Self::run_blocking).
    async fn run<T, F>(&self, op: &'static str, commit: bool, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&oracle::Connection, &Statements) -> oracle::Result<T> + Send + 'static,
    {
        let context = op_context(op, self.table());
        self.run_blocking(op, commit, move |db, sql| {
            f(db, sql).map_err(|err| {
                let err = from_oracle(err, &context);
                tracing::debug!(error = %err, "operation failed");
                err
            })
        })
        .await
    }

    /// Runs `f` on a pooled connection on a blocking thread, inside a
    /// tracing span. When `commit`, a success is committed; any failure is
    /// rolled back, so the connection goes back to the pool with no open
    /// transaction. The runner of every driver call, migrations included.
    async fn run_blocking<T, F>(&self, op: &'static str, commit: bool, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&oracle::Connection, &Statements) -> Result<T> + Send + 'static,
    {
        let span = tracing::debug_span!("session_oracle", op, table = %self.table);
        async move {
            let conn = self.checkout().await?;
            let sql = self.sql.clone();
            let span = tracing::Span::current();
            let joined = tokio::task::spawn_blocking(move || {
                let _entered = span.enter();
                let db = conn.connection();
                let result = f(db, &sql).and_then(|value| {
                    if commit {
                        db.commit()
                            .map_err(|e| from_oracle(e, &format!("commit after {op}")))?;
                    }
                    Ok(value)
                });
                if result.is_err() {
                    if let Err(rollback) = db.rollback() {
                        tracing::debug!(error = %rollback, "rollback after a failed operation failed");
                    }
                }
                result
            })
            .await;
            match joined {
                Ok(result) => result,
                Err(join) => Err(Error::backend(
                    BACKEND,
                    format!("{op}: the blocking task running the driver call failed"),
                    join,
                )),
            }
        }
        .instrument(span)
        .await
    }

    /// Checks out a pooled connection; a pool that cannot connect reports
    /// the last connection error, not a bare timeout.
    async fn checkout(&self) -> Result<bb8::PooledConnection<'static, OracleConnectionManager>> {
        match self.pool.get_owned().await {
            Ok(conn) => Ok(conn),
            Err(bb8::RunError::User(err)) => Err(err.into_error("check out a pool connection")),
            Err(bb8::RunError::TimedOut) => {
                let waited = self.pool_timeout();
                match self.connect_errors.as_ref().and_then(ConnectErrors::last) {
                    Some(last) => {
                        let code = ErrorCode::of(&last);
                        Err(map_error(
                            code,
                            &format!(
                                "no pool connection within {waited:?}; the last connection attempt failed"
                            ),
                            Box::new(last),
                        ))
                    }
                    None => Err(Error::PoolTimeout {
                        backend: BACKEND,
                        waited,
                    }),
                }
            }
        }
    }
}

/// Seconds to bind as `:ttl`: `None` (SQL `NULL`, no expiry) for `None` or
/// zero, else the duration in seconds, at most [`MAX_EXPIRY`].
fn ttl_seconds(duration: Option<Duration>) -> Option<f64> {
    non_zero(duration).map(|d| d.min(MAX_EXPIRY).as_secs_f64())
}

/// What an operation's errors say it was doing: the operation and the
/// table, never a key or a value.
fn op_context(op: &str, table: &TableName) -> String {
    format!("{op} on table {table}")
}

/// How a byte string is bound: a value written, or the value
/// `compare_and_set` expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BytesBind {
    /// `RAW`: up to [`INLINE_VALUE_MAX`] bytes.
    Raw,
    /// The type `BLOB` on a statement built without LOB locators (the
    /// driver's default): the `oracle` crate sends the bytes as `LONG RAW`,
    /// Oracle's data interface for LOB columns, which Oracle takes where a
    /// statement writes a column (`SET data = :val`, `VALUES (..)`).
    LongRaw,
    /// A temporary `BLOB`, written before the statement runs and bound as a
    /// LOB locator (a statement built with `lob_locator()`): a `BLOB`
    /// wherever SQL takes one, a `DBMS_LOB` argument included.
    TempBlob,
}

impl BytesBind {
    /// The bind of `len` bytes on a statement with (`locators`) or without
    /// LOB locators.
    fn of(len: usize, locators: bool) -> Self {
        if len <= INLINE_VALUE_MAX {
            BytesBind::Raw
        } else if locators {
            BytesBind::TempBlob
        } else {
            BytesBind::LongRaw
        }
    }
}

/// Binds a value on a statement without LOB locators: `RAW` up to
/// [`INLINE_VALUE_MAX`] bytes, the type `BLOB` above ([`BytesBind::LongRaw`]).
fn with_value_bind<R>(value: &[u8], f: impl FnOnce(&dyn ToSql) -> R) -> R {
    match BytesBind::of(value.len(), false) {
        BytesBind::Raw => f(&value),
        BytesBind::LongRaw | BytesBind::TempBlob => f(&(&value, &OracleType::BLOB)),
    }
}

/// Binds `bytes` as [`BytesBind::of`] says: on a statement with LOB
/// locators, a long one as a temporary `BLOB` (created, written, and freed
/// when `f` returns); otherwise as [`with_value_bind`].
fn with_bytes_bind<R>(
    conn: &oracle::Connection,
    bytes: &[u8],
    locators: bool,
    f: impl FnOnce(&dyn ToSql) -> oracle::Result<R>,
) -> oracle::Result<R> {
    match BytesBind::of(bytes.len(), locators) {
        BytesBind::TempBlob => {
            let blob = temp_blob(conn, bytes)?;
            f(&blob)
        }
        BytesBind::Raw | BytesBind::LongRaw => with_value_bind(bytes, f),
    }
}

/// A temporary `BLOB` holding `bytes`, to bind as a LOB locator.
fn temp_blob(conn: &oracle::Connection, bytes: &[u8]) -> oracle::Result<Blob> {
    let mut blob = Blob::new(conn)?;
    blob.write_all(bytes).map_err(from_io)?;
    Ok(blob)
}

/// Executes a `compare_and_set` of `key` from `expected` to `value` and
/// returns the rows it changed (0 or 1).
///
/// The empty expected value binds what `update` binds. Otherwise `:len`
/// (the expected length, a `NUMBER`) and `:exp` are bound too: `RAW` on
/// the driver's default statement, or, for an expected value above
/// [`INLINE_VALUE_MAX`] bytes, a temporary `BLOB` on a statement built with
/// LOB locators, where a long `value` is a temporary `BLOB` as well.
fn execute_compare_and_set(
    conn: &oracle::Connection,
    sql: &Statements,
    key: &str,
    expected: &[u8],
    value: &[u8],
    ttl: Option<f64>,
) -> oracle::Result<u64> {
    let kind = ExpectedSql::for_expected(expected);
    let text = sql.compare_and_set(ValueSql::for_value(value), kind);
    if kind == ExpectedSql::Empty {
        return execute_write(conn, text, key, value, ttl);
    }
    let len = u64::try_from(expected.len()).unwrap_or(u64::MAX);
    let locators = kind.needs_locators();
    let mut stmt = if locators {
        conn.statement(text).lob_locator().build()?
    } else {
        conn.statement(text).build()?
    };
    with_bytes_bind(conn, expected, locators, |exp| {
        match ValueSql::for_value(value) {
            ValueSql::Empty => stmt.execute_named(&[
                ("sid", &bind::key(key)),
                ("ttl", &ttl),
                ("len", &len),
                ("exp", exp),
            ]),
            ValueSql::Bound => with_bytes_bind(conn, value, locators, |val| {
                stmt.execute_named(&[
                    ("sid", &bind::key(key)),
                    ("val", val),
                    ("ttl", &ttl),
                    ("len", &len),
                    ("exp", exp),
                ])
            }),
        }
    })?;
    stmt.row_count()
}

/// Executes a write of `value` (`set`, `create` or `update` SQL) and
/// returns the rows it affected.
fn execute_write(
    conn: &oracle::Connection,
    sql: &str,
    key: &str,
    value: &[u8],
    ttl: Option<f64>,
) -> oracle::Result<u64> {
    let stmt = match ValueSql::for_value(value) {
        ValueSql::Empty => conn.execute_named(sql, &[("sid", &bind::key(key)), ("ttl", &ttl)])?,
        ValueSql::Bound => with_value_bind(value, |val| {
            conn.execute_named(
                sql,
                &[("sid", &bind::key(key)), ("val", val), ("ttl", &ttl)],
            )
        })?,
    };
    stmt.row_count()
}

/// Reads a `BLOB` the renewing read returned: its size first, so the
/// zero-length LOB that `EMPTY_BLOB()` leaves is never read (the driver's
/// own `Vec<u8>` conversion of a LOB would ask ODPI-C to read 0 bytes into
/// an empty buffer), then exactly that many bytes.
fn read_lob<L: Lob + Read>(lob: &mut L) -> oracle::Result<Bytes> {
    let size = lob.size()?;
    if size == 0 {
        return Ok(Bytes::new());
    }
    let len = usize::try_from(size).map_err(|_| {
        oracle::Error::new(
            oracle::ErrorKind::OutOfRange,
            format!("a BLOB of {size} bytes does not fit in memory"),
        )
    })?;
    let mut buf = vec![0; len];
    lob.read_exact(&mut buf).map_err(from_io)?;
    Ok(Bytes::from(buf))
}

/// The driver error inside an I/O error from reading a LOB (the `oracle`
/// crate wraps its errors so), or the I/O error itself.
fn from_io(err: std::io::Error) -> oracle::Error {
    if err
        .get_ref()
        .is_some_and(|inner| inner.is::<oracle::Error>())
    {
        if let Some(Ok(driver)) = err.into_inner().map(|e| e.downcast::<oracle::Error>()) {
            return *driver;
        }
        return oracle::Error::new(oracle::ErrorKind::Other, "reading a BLOB failed");
    }
    oracle::Error::with_source(oracle::ErrorKind::Other, err)
}

/// The context of `set`'s error when its one retry after ORA-00001 failed
/// too; only this path says "after one retry".
fn retried_context(context: &str) -> String {
    format!("{context}, {AFTER_ONE_RETRY}")
}

fn is_unique_violation(err: &oracle::Error) -> bool {
    classify(ErrorCode::of(err)) == ErrorClass::UniqueViolation
}

/// A `BLOB` read back: `NULL` (Oracle's zero-length value) is empty.
fn into_bytes(value: Option<Vec<u8>>) -> Bytes {
    value.map(Bytes::from).unwrap_or_default()
}

fn optional<T>(result: oracle::Result<T>) -> oracle::Result<Option<T>> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(err) if err.kind() == oracle::ErrorKind::NoDataFound => Ok(None),
        Err(err) => Err(err),
    }
}

#[async_trait]
impl Store for OracleStore {
    async fn get(&self, key: &str, renew_for: Option<Duration>) -> Result<Option<Bytes>> {
        validate_key(key)?;
        let key = key.to_owned();
        match ttl_seconds(renew_for) {
            None => {
                self.read("get", move |conn, sql| {
                    let row = optional(conn.query_row_as_named::<Option<Vec<u8>>>(
                        sql.get(),
                        &[("sid", &bind::key(&key))],
                    ))?;
                    Ok(row.map(into_bytes))
                })
                .await
            }
            Some(ttl) => {
                self.write("get_renew", move |conn, sql| {
                    // The returned `data` is a LOB locator (read below, before
                    // the commit), not bytes copied by the driver.
                    let mut stmt = conn.statement(sql.get_renew()).lob_locator().build()?;
                    stmt.execute_named(&[
                        ("ttl", &ttl),
                        ("sid", &bind::key(&key)),
                        ("val", &OracleType::BLOB),
                    ])?;
                    if stmt.row_count()? > 0 {
                        let returned: Vec<Option<Blob>> = stmt.returned_values("val")?;
                        return match returned.into_iter().next().flatten() {
                            Some(mut blob) => read_lob(&mut blob).map(Some),
                            None => Ok(Some(Bytes::new())),
                        };
                    }
                    // Nothing live with an expiry: a key without one is
                    // returned as it is, never given an expiry.
                    let row = optional(conn.query_row_as_named::<Option<Vec<u8>>>(
                        sql.get_permanent(),
                        &[("sid", &bind::key(&key))],
                    ))?;
                    Ok(row.map(into_bytes))
                })
                .await
            }
        }
    }

    async fn set(&self, key: &str, value: Bytes, expires_in: Option<Duration>) -> Result<()> {
        validate_key(key)?;
        let key = key.to_owned();
        let ttl = ttl_seconds(expires_in);
        let context = op_context("set", &self.table);
        self.run_blocking("set", true, move |conn, sql| {
            let text = sql.set(ValueSql::for_value(&value));
            let failed = |err, context: &str| {
                let err = from_oracle(err, context);
                tracing::debug!(error = %err, "operation failed");
                err
            };
            match execute_write(conn, text, &key, &value, ttl) {
                Ok(_) => Ok(()),
                // Two MERGEs inserting one new key at once: the loser's
                // INSERT branch hits the primary key. The row now exists, so
                // the retry takes the UPDATE branch.
                Err(err) if is_unique_violation(&err) => {
                    tracing::debug!("ORA-00001 from a concurrent MERGE; retrying once");
                    execute_write(conn, text, &key, &value, ttl)
                        .map(drop)
                        .map_err(|err| failed(err, &retried_context(&context)))
                }
                Err(err) => Err(failed(err, &context)),
            }
        })
        .await
    }

    async fn delete(&self, key: &str) -> Result<()> {
        validate_key(key)?;
        let key = key.to_owned();
        self.write("delete", move |conn, sql| {
            conn.execute_named(sql.delete(), &[("sid", &bind::key(&key))])?;
            Ok(())
        })
        .await
    }

    async fn delete_all(&self) -> Result<()> {
        self.write("delete_all", |conn, sql| {
            conn.execute(sql.delete_all(), &[])?;
            Ok(())
        })
        .await
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        validate_key(key)?;
        let key = key.to_owned();
        self.read("exists", move |conn, sql| {
            let count =
                conn.query_row_as_named::<u64>(sql.exists(), &[("sid", &bind::key(&key))])?;
            Ok(count > 0)
        })
        .await
    }

    async fn expires_in(&self, key: &str) -> Result<Option<Duration>> {
        validate_key(key)?;
        let key = key.to_owned();
        self.read("expires_in", move |conn, sql| {
            let seconds = optional(conn.query_row_as_named::<Option<f64>>(
                sql.expires_in(),
                &[("sid", &bind::key(&key))],
            ))?
            .flatten();
            Ok(seconds
                .filter(|s| *s > 0.0)
                .and_then(|s| Duration::try_from_secs_f64(s).ok()))
        })
        .await
    }

    async fn delete_expired(&self) -> Result<u64> {
        let batch = self.config.cleanup_batch_size;
        self.write("delete_expired", move |conn, sql| {
            let total = delete_in_batches(u64::from(batch), || {
                let stmt = conn.execute_named(sql.delete_expired(), &[("batch", &batch)])?;
                let removed = stmt.row_count()?;
                conn.commit()?;
                Ok::<_, oracle::Error>(removed)
            })?;
            tracing::debug!(removed = total, "expired sessions deleted");
            Ok(total)
        })
        .await
    }

    async fn create(&self, key: &str, value: Bytes, expires_in: Option<Duration>) -> Result<bool> {
        validate_key(key)?;
        let key = key.to_owned();
        let ttl = ttl_seconds(expires_in);
        self.write("create", move |conn, sql| {
            let kind = ValueSql::for_value(&value);
            // An expired row is replaced in place. A concurrent create that
            // revived it first holds its lock; once that commits, this
            // UPDATE re-checks `expires_at` and changes nothing.
            if execute_write(conn, sql.create_revive(kind), &key, &value, ttl)? > 0 {
                return Ok(true);
            }
            match execute_write(conn, sql.create_insert(kind), &key, &value, ttl) {
                Ok(rows) => Ok(rows > 0),
                // The key is live, or another writer inserted it first:
                // not written.
                Err(err) if is_unique_violation(&err) => Ok(false),
                Err(err) => Err(err),
            }
        })
        .await
    }

    async fn update(&self, key: &str, value: Bytes, expires_in: Option<Duration>) -> Result<bool> {
        validate_key(key)?;
        let key = key.to_owned();
        let ttl = ttl_seconds(expires_in);
        self.write("update", move |conn, sql| {
            let text = sql.update(ValueSql::for_value(&value));
            Ok(execute_write(conn, text, &key, &value, ttl)? > 0)
        })
        .await
    }

    async fn compare_and_set(
        &self,
        key: &str,
        expected: Bytes,
        value: Bytes,
        expires_in: Option<Duration>,
    ) -> Result<bool> {
        validate_key(key)?;
        let key = key.to_owned();
        let ttl = ttl_seconds(expires_in);
        self.write("compare_and_set", move |conn, sql| {
            Ok(execute_compare_and_set(conn, sql, &key, &expected, &value, ttl)? > 0)
        })
        .await
    }

    async fn delete_live(&self, key: &str) -> Result<bool> {
        validate_key(key)?;
        let key = key.to_owned();
        self.write("delete_live", move |conn, sql| {
            let stmt = conn.execute_named(sql.delete_live(), &[("sid", &bind::key(&key))])?;
            Ok(stmt.row_count()? > 0)
        })
        .await
    }
}

#[async_trait]
impl StoreAdmin for OracleStore {
    fn describe(&self) -> String {
        match self.connect_errors.as_ref().and_then(ConnectErrors::target) {
            Some(target) => format!("oracle table `{}` at {target}", self.table),
            None => format!("oracle table `{}` on a pool of the caller's", self.table),
        }
    }

    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn location(&self) -> String {
        self.table.qualified()
    }

    fn migrations(&self) -> Vec<Migration> {
        dialect(&self.table, self.config.in_memory).migrations
    }

    fn migration_sql(&self) -> Option<String> {
        Some(dialect(&self.table, self.config.in_memory).script())
    }

    /// Applies every missing migration through
    /// [`Dialect::run`](session_core::migrate::Dialect::run); on Oracle each step
    /// takes `LOCK TABLE <table>_migrations IN EXCLUSIVE MODE`, and the DDL
    /// (which commits on its own) is run idempotently.
    async fn migrate(&self) -> Result<MigrateReport> {
        let handle = tokio::runtime::Handle::current();
        self.with_dialect("migrate", move |d, ex| handle.block_on(d.run(ex)))
            .await
    }

    async fn applied_migrations(&self) -> Result<Vec<AppliedMigration>> {
        let handle = tokio::runtime::Handle::current();
        self.with_dialect("applied_migrations", move |d, ex| {
            handle.block_on(d.applied(ex))
        })
        .await
    }

    async fn session_table_exists(&self) -> Result<bool> {
        let handle = tokio::runtime::Handle::current();
        self.with_dialect("session_table_exists", move |d, ex| {
            handle.block_on(d.table_exists(ex, &d.table))
        })
        .await
    }

    fn cleanup_batch_size(&self) -> u32 {
        self.config.cleanup_batch_size
    }

    async fn delete_expired_batch(&self, limit: u32) -> Result<u64> {
        session_core::cleanup::check_batch_limit(limit)?;
        self.write("delete_expired_batch", move |conn, sql| {
            conn.execute_named(sql.delete_expired(), &[("batch", &limit)])?
                .row_count()
        })
        .await
    }
}

impl OracleStore {
    /// Runs `f` with the migration dialect and an executor on a pooled
    /// connection, inside the blocking task of
    /// [`run_blocking`](Self::run_blocking).
    async fn with_dialect<T, F>(&self, op: &'static str, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Dialect, &mut dyn SqlExecutor) -> Result<T> + Send + 'static,
    {
        let dialect = dialect(&self.table, self.config.in_memory);
        self.run_blocking(op, true, move |conn, _| {
            f(&dialect, &mut OracleExecutor::new(conn))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_is_null_for_none_and_zero_and_capped() {
        assert_eq!(ttl_seconds(None), None);
        assert_eq!(ttl_seconds(Some(Duration::ZERO)), None);
        assert_eq!(ttl_seconds(Some(Duration::from_millis(1500))), Some(1.5));
        assert_eq!(
            ttl_seconds(Some(Duration::MAX)),
            Some(MAX_EXPIRY.as_secs_f64())
        );
    }

    /// The migration methods run the async runner with `Handle::block_on`
    /// inside the blocking task: allowed there, on either runtime flavour
    /// (the CLI uses a current-thread runtime).
    #[tokio::test(flavor = "current_thread")]
    async fn the_blocking_task_may_block_on_the_runner() {
        let handle = tokio::runtime::Handle::current();
        let value = tokio::task::spawn_blocking(move || handle.block_on(async { 7 }))
            .await
            .unwrap();
        assert_eq!(value, 7);
    }

    /// A LOB of `data` that counts the driver calls made on it.
    struct FakeLob {
        data: Vec<u8>,
        pos: usize,
        size_calls: std::cell::Cell<usize>,
        reads: Vec<usize>,
    }

    impl FakeLob {
        fn new(data: &[u8]) -> Self {
            FakeLob {
                data: data.to_vec(),
                pos: 0,
                size_calls: std::cell::Cell::new(0),
                reads: Vec::new(),
            }
        }
    }

    impl Read for FakeLob {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            // Every read asks for at least one byte: a zero-byte read of a
            // LOB is what must never happen.
            assert!(!buf.is_empty(), "a read of 0 bytes was asked for");
            self.reads.push(buf.len());
            // At most 3 bytes per call, as a LOB read may return less.
            let n = buf.len().min(3).min(self.data.len() - self.pos);
            buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
            self.pos += n;
            Ok(n)
        }
    }

    impl Lob for FakeLob {
        fn size(&self) -> oracle::Result<u64> {
            self.size_calls.set(self.size_calls.get() + 1);
            Ok(self.data.len() as u64)
        }
        fn truncate(&mut self, _new_size: u64) -> oracle::Result<()> {
            unreachable!("read_lob only reads")
        }
        fn chunk_size(&self) -> oracle::Result<usize> {
            Ok(8132)
        }
        fn open_resource(&mut self) -> oracle::Result<()> {
            unreachable!("read_lob only reads")
        }
        fn close_resource(&mut self) -> oracle::Result<()> {
            unreachable!("read_lob only reads")
        }
        fn is_resource_open(&self) -> oracle::Result<bool> {
            Ok(false)
        }
    }

    /// The renewing read of the empty value: `EMPTY_BLOB()` left a
    /// zero-length LOB, whose size is checked and which is never read.
    #[test]
    fn an_empty_lob_is_sized_and_never_read() {
        let mut lob = FakeLob::new(b"");
        assert_eq!(read_lob(&mut lob).unwrap(), Bytes::new());
        assert_eq!(lob.size_calls.get(), 1, "the size is checked first");
        assert!(lob.reads.is_empty(), "{:?}", lob.reads);
    }

    #[test]
    fn a_lob_is_read_to_its_size() {
        let data: Vec<u8> = (0..=255).cycle().take(INLINE_VALUE_MAX + 7).collect();
        let mut lob = FakeLob::new(&data);
        assert_eq!(read_lob(&mut lob).unwrap(), Bytes::from(data));
        assert_eq!(lob.size_calls.get(), 1);
        assert!(lob.reads.iter().all(|&n| n > 0));
    }

    /// Only `set` retries ORA-00001, and only its retried failure says so.
    #[test]
    fn only_a_retried_set_says_after_one_retry() {
        let context = retried_context("set on table s");
        assert_eq!(context, "set on table s, after one retry");
        let msg = "ORA-00001: unique constraint (APP.SYS_C008123) violated";
        let source = || -> session_core::BoxError { Box::new(std::io::Error::other(msg)) };
        let retried = map_error(ErrorCode::parse(msg), &context, source()).to_string();
        assert!(retried.contains("after one retry"), "{retried}");
        assert!(retried.contains("ORA-00001"), "{retried}");
        let first = map_error(ErrorCode::parse(msg), "create on table s", source()).to_string();
        assert!(!first.contains("retry"), "{first}");
    }

    #[test]
    fn bytes_are_bound_raw_up_to_the_inline_limit() {
        for locators in [false, true] {
            assert_eq!(BytesBind::of(1, locators), BytesBind::Raw);
            assert_eq!(BytesBind::of(INLINE_VALUE_MAX, locators), BytesBind::Raw);
        }
        // Above it: LONG RAW bytes as `set` and `update` send them, or a
        // temporary BLOB where the statement binds LOB locators.
        assert_eq!(
            BytesBind::of(INLINE_VALUE_MAX + 1, false),
            BytesBind::LongRaw
        );
        assert_eq!(
            BytesBind::of(INLINE_VALUE_MAX + 1, true),
            BytesBind::TempBlob
        );
        assert_eq!(BytesBind::of(1 << 20, true), BytesBind::TempBlob);
    }

    /// `compare_and_set`'s binds for every size of expected value and
    /// value: the expected value is a `RAW` (the SQL's `TO_BLOB(:exp)`) or
    /// a temporary `BLOB` (the SQL's bare `:exp`), never `LONG RAW`, the
    /// data interface for writing a LOB column, not a `DBMS_LOB.COMPARE`
    /// argument; a long value is `LONG RAW` as in `update`, or a temporary
    /// `BLOB` on the statement with LOB locators.
    #[test]
    fn compare_and_set_binds_match_its_sql() {
        let sql = Statements::new(
            &TableName::new("s", crate::MAX_IDENTIFIER_LEN).unwrap(),
            false,
        );
        let sizes = [1, INLINE_VALUE_MAX, INLINE_VALUE_MAX + 1, 1 << 20];
        for expected_len in sizes {
            let expected = vec![1u8; expected_len];
            let kind = ExpectedSql::for_expected(&expected);
            let locators = kind.needs_locators();
            let text = sql.compare_and_set(ValueSql::Bound, kind);
            match BytesBind::of(expected_len, locators) {
                BytesBind::Raw => {
                    assert!(text.contains("DBMS_LOB.COMPARE(data, TO_BLOB(:exp)) = 0"));
                }
                BytesBind::TempBlob => {
                    assert!(text.contains("DBMS_LOB.COMPARE(data, :exp) = 0"));
                }
                BytesBind::LongRaw => panic!("{expected_len} bytes expected bound as LONG RAW"),
            }
            for value_len in sizes {
                let bind = BytesBind::of(value_len, locators);
                if locators {
                    assert_ne!(bind, BytesBind::LongRaw, "{expected_len}/{value_len}");
                } else {
                    // The same bind as `update`'s.
                    assert_eq!(bind, BytesBind::of(value_len, false));
                }
            }
        }
        assert_eq!(ExpectedSql::for_expected(b""), ExpectedSql::Empty);
    }

    /// The errors of `compare_and_set` and `delete_live` go through the
    /// crate's mapping with their operation and table as context (and
    /// nothing of the key or value): a missing table says how to make it, a
    /// lost connection is a connection error, anything else (such as a
    /// datatype error from the `DBMS_LOB` comparison) keeps its code and its
    /// cause.
    #[test]
    fn compare_and_set_and_delete_live_errors_are_mapped() {
        let table = TableName::new("s", crate::MAX_IDENTIFIER_LEN).unwrap();
        let source = |msg: &str| -> session_core::BoxError {
            Box::new(std::io::Error::other(msg.to_owned()))
        };
        let mapped =
            |msg: &str, context: &str| map_error(ErrorCode::parse(msg), context, source(msg));
        for op in ["compare_and_set", "delete_live"] {
            let context = op_context(op, &table);
            assert_eq!(context, format!("{op} on table s"));

            let missing = mapped("ORA-00942: table or view does not exist", &context);
            let text = missing.to_string();
            assert!(
                text.starts_with(&format!("oracle: {op} on table s: ")),
                "{text}"
            );
            assert!(text.contains("create_table"), "{text}");

            let lost = mapped("ORA-03113: end-of-file on communication channel", &context);
            assert!(matches!(lost, Error::Connection { .. }), "{lost:?}");
            assert!(lost.is_transient());

            for msg in [
                "ORA-00932: inconsistent datatypes: expected - got BLOB",
                "ORA-22275: invalid LOB locator specified",
                "ORA-01461: can bind a LONG value only for insert into a LONG column",
            ] {
                let err = mapped(msg, &context);
                let code = &msg[..9];
                assert_eq!(err.to_string(), format!("oracle: {op} on table s ({code})"));
                assert!(matches!(err, Error::Backend { .. }));
                assert!(!err.is_transient());
                assert_eq!(std::error::Error::source(&err).unwrap().to_string(), msg);
            }
        }
        // `set`'s context is built the same way.
        assert_eq!(op_context("set", &table), "set on table s");
    }

    #[test]
    fn null_blob_reads_as_empty() {
        assert_eq!(into_bytes(None), Bytes::new());
        assert_eq!(into_bytes(Some(vec![0, 1])), Bytes::from_static(&[0, 1]));
    }
}
