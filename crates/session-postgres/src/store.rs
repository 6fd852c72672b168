//! [`PostgresStore`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use deadpool_postgres::{
    Manager, ManagerConfig, Pool, PoolError, QueueMode, RecyclingMethod, Runtime, TimeoutType,
};
use session_core::cleanup::delete_in_batches_async;
use session_core::{Error, Result, Store, StoreConfig, TableName, non_zero, validate_key};
use tokio_postgres::Row;
use tokio_postgres::config::Host;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tracing::{Instrument, Span};

use crate::coalesce::{Coalescer, Joined, Waiter};
use crate::config::PostgresConfig;
use crate::connector::parse_url;
use crate::error::{BACKEND, is_connection_error, pool_error, sqlstate, statement_error};
use crate::tls::SslMode;

type Params<'a> = [&'a (dyn ToSql + Sync)];

/// `delete_expired` sweeps the table when the planner counts at least this
/// share of its rows expired (see [`PostgresStore::sweep_plan`]).
const SWEEP_SHARE: f64 = 1.0 / 3.0;
/// Tables smaller than this many pages are cleaned through the index.
const SWEEP_MIN_PAGES: i64 = 64;

/// How `delete_expired` sweeps a table: its pages, and the first chunk's.
#[derive(Debug, Clone, Copy)]
struct SweepPlan {
    pages: i64,
    chunk: i64,
}

/// The first server version (`server_version_num`) with TID range scans,
/// which a sweep's chunks need: on an older server each chunk would read
/// the whole table, so its cleanup walks the expiry index instead.
const SWEEP_MIN_SERVER_VERSION: i32 = 140_000;

/// Whether `delete_expired` may sweep on a server of `server_version_num`.
fn sweep_supported(server_version_num: i32) -> bool {
    server_version_num >= SWEEP_MIN_SERVER_VERSION
}

/// How many times a cleanup statement the server chose as a deadlock's
/// victim (40P01) runs in all before its error is returned.
const DEADLOCK_TRIES: u32 = 3;

/// A chunk of `pages` pages, rounded, at least 8 and at most 2^20.
fn chunk_pages(pages: f64) -> i64 {
    pages.round().clamp(8.0, f64::from(1 << 20)) as i64
}

/// Plain reads in flight at once; the calls arriving meanwhile are served
/// together by the next one. Two measured best across the round trips this
/// machine kind has shown (16 tasks, store/raw: 1.51-1.53 at a 0.10 ms
/// round trip, where one in flight gave 1.03-1.20 and four 1.29-1.33; at a
/// 0.02 ms round trip, one gave 2.8 and two 1.8): see docs/performance.md.
const READS_IN_FLIGHT: usize = 2;

/// Renewing reads in flight at once: one, as their batches lock rows
/// (two gave 1.02-1.14 against 1.14-1.16 for one, and four 0.83-0.93).
const RENEWALS_IN_FLIGHT: usize = 1;

/// What a coalesced call is sent by the statement that served it.
enum Served {
    /// Its answer.
    Found(Option<Bytes>),
    /// The statement failed: the call runs a statement of its own.
    RunAlone,
}

/// How long a `get` may wait for a connection and for other calls'
/// statements, in all.
struct Wait {
    started: Instant,
    /// `None`: the pool has no wait timeout.
    deadline: Option<Instant>,
}

impl Wait {
    /// What is left of the wait (zero once past), or `None` if unbounded.
    fn remaining(&self) -> Option<Duration> {
        self.deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
    }

    /// The call waited too long: how long it really waited.
    fn timed_out(&self) -> Error {
        Error::PoolTimeout {
            backend: BACKEND,
            waited: self.started.elapsed(),
        }
    }
}

/// Runs `attempt` again while it fails as a deadlock's victim (40P01), at
/// most [`DEADLOCK_TRIES`] times in all: the server rolled the victim's
/// statement back, and the other transaction has gone on.
async fn retry_deadlocks<T, F, Fut>(mut attempt: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let mut tries = 1;
    loop {
        match attempt().await {
            Err(err)
                if tries < DEADLOCK_TRIES
                    && sqlstate(&err) == Some(&SqlState::T_R_DEADLOCK_DETECTED) =>
            {
                tracing::info!(error = %err, "a cleanup statement was a deadlock's victim; running it again");
                tries += 1;
            }
            outcome => return outcome,
        }
    }
}

/// The statements of one store, with the table name formatted in once.
#[derive(Debug)]
struct Statements {
    get: String,
    get_renew: String,
    get_many: String,
    get_renew_many: String,
    set: String,
    create: String,
    update: String,
    compare_and_set: String,
    delete: String,
    delete_live: String,
    delete_all: String,
    exists: String,
    expires_in: String,
    delete_expired_batch: String,
    delete_expired_range: String,
    table_size: String,
    expired_estimate: String,
}

impl Statements {
    fn new(table: &str) -> Self {
        // `now() + $n * interval '1 second'` with $n a float8 of seconds:
        // the database's clock decides; NULL (no expiry) stays NULL.
        const LIVE: &str = "(expires_at IS NULL OR expires_at > now())";
        Statements {
            get: format!("SELECT data FROM {table} WHERE session_id = $1 AND {LIVE}"),
            // One round trip: the CTE renews a live row with an expiry and
            // returns it; the second branch returns a row without expiry
            // untouched. The branches are disjoint (expires_at > now() vs
            // IS NULL), and the SELECT reads the statement's snapshot, so
            // an expired row is neither revived nor returned.
            get_renew: format!(
                "WITH renewed AS (\
                     UPDATE {table} SET expires_at = now() + $2::float8 * interval '1 second' \
                     WHERE session_id = $1 AND expires_at > now() RETURNING data\
                 ) \
                 SELECT data FROM renewed \
                 UNION ALL \
                 SELECT data FROM {table} WHERE session_id = $1 AND expires_at IS NULL \
                 LIMIT 1"
            ),
            // The reads of many coalesced calls: $1 the distinct keys.
            get_many: format!(
                "SELECT session_id, data FROM {table} WHERE session_id = ANY($1) AND {LIVE}"
            ),
            // The renewing reads of many coalesced calls, as `get_renew`:
            // $1 the distinct keys, $2 each key's duration at the same
            // position. `locked` takes the rows' locks in key order (the
            // lock the UPDATE takes anyway, FOR NO KEY UPDATE, after the
            // sort), whatever order the plan finds them in (a bitmap scan
            // finds them in physical order), so two batches, of this store
            // or of another process, never lock two rows in opposite
            // orders: they cannot deadlock each other.
            get_renew_many: format!(
                "WITH locked AS (\
                     SELECT session_id FROM {table} \
                     WHERE session_id = ANY($1::text[]) AND expires_at > now() \
                     ORDER BY session_id FOR NO KEY UPDATE\
                 ), renewed AS (\
                     UPDATE {table} AS s SET expires_at = now() + \
                         ($2::float8[])[array_position($1::text[], s.session_id)] * interval '1 second' \
                     FROM locked \
                     WHERE s.session_id = locked.session_id AND s.expires_at > now() \
                     RETURNING s.session_id, s.data\
                 ) \
                 SELECT session_id, data FROM renewed \
                 UNION ALL \
                 SELECT session_id, data FROM {table} \
                 WHERE session_id = ANY($1::text[]) AND expires_at IS NULL"
            ),
            set: format!(
                "INSERT INTO {table} (session_id, data, expires_at) \
                 VALUES ($1, $2, now() + $3::float8 * interval '1 second') \
                 ON CONFLICT (session_id) DO UPDATE SET \
                     data = EXCLUDED.data, expires_at = EXCLUDED.expires_at, updated_at = now()"
            ),
            // Writes a missing key, or replaces an expired row (a new
            // session: created_at moves too); a live row is left alone and
            // the statement reports 0 rows.
            create: format!(
                "INSERT INTO {table} AS s (session_id, data, expires_at) \
                 VALUES ($1, $2, now() + $3::float8 * interval '1 second') \
                 ON CONFLICT (session_id) DO UPDATE SET \
                     data = EXCLUDED.data, expires_at = EXCLUDED.expires_at, \
                     created_at = now(), updated_at = now() \
                 WHERE s.expires_at IS NOT NULL AND s.expires_at <= now()"
            ),
            update: format!(
                "UPDATE {table} SET data = $2, \
                     expires_at = now() + $3::float8 * interval '1 second', updated_at = now() \
                 WHERE session_id = $1 AND {LIVE}"
            ),
            // The same write as `update` (data, expires_at, updated_at;
            // created_at kept), guarded by the value. Under READ COMMITTED
            // a concurrent writer of the row makes this statement wait and
            // then re-check the whole WHERE clause on the row it committed,
            // so of many compare-and-sets from one value exactly one
            // matches; a changed, expired or missing row matches none.
            // bytea equality compares lengths before any bytes.
            compare_and_set: format!(
                "UPDATE {table} SET data = $3, \
                     expires_at = now() + $4::float8 * interval '1 second', updated_at = now() \
                 WHERE session_id = $1 AND data = $2 AND {LIVE}"
            ),
            delete: format!("DELETE FROM {table} WHERE session_id = $1"),
            // Only a live row is removed (an expired one is left to
            // cleanup), so the row count is the answer; a concurrent
            // delete of the same row leaves the waiting ones 0 rows.
            delete_live: format!("DELETE FROM {table} WHERE session_id = $1 AND {LIVE}"),
            delete_all: format!("DELETE FROM {table}"),
            exists: format!(
                "SELECT EXISTS (SELECT 1 FROM {table} WHERE session_id = $1 AND {LIVE})"
            ),
            expires_in: format!(
                "SELECT EXTRACT(EPOCH FROM expires_at - now())::float8 FROM {table} \
                 WHERE session_id = $1 AND expires_at > now()"
            ),
            // One batch: the physical addresses of the oldest expired rows,
            // read in order from the partial index (ORDER BY makes the
            // planner walk the index instead of rescanning the heap from its
            // start on every batch, which grows quadratic), deleted in one
            // short statement. The predicate is repeated so a row revived by
            // a concurrent write between the two scans is re-checked and
            // spared.
            delete_expired_batch: format!(
                "DELETE FROM {table} WHERE ctid = ANY(ARRAY(\
                     SELECT ctid FROM {table} WHERE expires_at <= now() \
                     ORDER BY expires_at LIMIT $1\
                 )) AND expires_at <= now()"
            ),
            // One chunk of a sweep: the expired rows of the pages
            // [lo, hi), read in physical order by a TID range scan (the
            // page numbers are formatted in: integers). Committed
            // asynchronously: a crash may undo the last chunks, which
            // leaves expired rows, invisible to every read, for the next
            // run; no chunk waits for a WAL flush.
            delete_expired_range: format!(
                "SET LOCAL synchronous_commit = off; \
                 DELETE FROM {table} \
                 WHERE ctid >= '({{lo}},0)'::tid AND ctid < '({{hi}},0)'::tid \
                 AND expires_at <= now()"
            ),
            // The table's size in pages, the planner's count of its rows,
            // and the server's `server_version_num`.
            table_size: format!(
                "SELECT pg_relation_size(c.oid) / current_setting('block_size')::int8, \
                     c.reltuples::float8, \
                     current_setting('server_version_num')::int4 \
                 FROM pg_class c WHERE c.oid = '{table}'::regclass"
            ),
            // The planner's count of expired rows (planned, not run).
            expired_estimate: format!(
                "EXPLAIN (FORMAT JSON) SELECT 1 FROM {table} WHERE expires_at <= now()"
            ),
        }
    }
}

/// A session [`Store`] on PostgreSQL, through a `deadpool-postgres` pool;
/// its operations side is [`StoreAdmin`](session_core::StoreAdmin).
///
/// Rows live in SQLSpec's session table (see [`ddl`](Self::ddl)), so a
/// table created by SQLSpec and one created here are interchangeable.
/// Expiry is computed and compared on the database's clock (`now()`), so
/// application servers with skewed clocks agree. Every statement is
/// prepared once per connection and reused, and every operation is one
/// statement, one round trip (the renewing `get` included); only
/// [`delete_expired`](Store::delete_expired) runs one statement per batch.
///
/// Concurrent [`get`](Store::get)s are coalesced: a call that finds no
/// read in flight runs its own statement at once; calls arriving while one
/// is in flight queue and are served together by the next statement
/// (`session_id = ANY($1)`), each with its own answer. Renewing reads are
/// coalesced the same way, separately, each key renewed for its own
/// duration, their rows locked in key order. If a coalesced statement
/// fails (a deadlock victim, a lost connection, a dropped table), each
/// caller it served runs a statement of its own, so each gets exactly the
/// answer or error a call served alone gets. A call waits for a
/// connection and for other calls' statements at most the pool's wait
/// timeout in all, then fails with [`Error::PoolTimeout`] naming how long
/// it waited.
///
/// Cloning is cheap and shares the pool.
///
/// ```no_run
/// use std::time::Duration;
/// use session_core::{Bytes, Store, StoreAdmin};
/// use session_postgres::{PostgresConfig, PostgresStore};
///
/// # async fn demo() -> session_core::Result<()> {
/// let store = PostgresStore::from_url("postgresql://app@127.0.0.1:5432/app", PostgresConfig::default())?;
/// store.migrate().await?;
/// store.set("k", Bytes::from_static(b"v"), Some(Duration::from_secs(3600))).await?;
/// assert_eq!(store.get("k", None).await?, Some(Bytes::from_static(b"v")));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: Pool,
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Concurrent plain reads, coalesced (see [`crate::coalesce`]).
    reads: Coalescer<String, Served>,
    /// Concurrent renewing reads, coalesced: each key with its duration.
    renewals: Coalescer<(String, f64), Served>,
    config: PostgresConfig,
    table: TableName,
    sql: Statements,
    /// `schema.table`, for logs and error messages.
    qualified: String,
    /// `host:port` of the server (never the password), for error messages.
    address: String,
    /// The `sslmode` of a store made from a URL, for error messages.
    sslmode: Option<SslMode>,
}

impl PostgresStore {
    /// A store with a pool of its own on the server at `url`
    /// (`postgresql://user[:password]@host[:port]/database[?options]`, or
    /// libpq's `key=value` form), sized and timed by `config`'s
    /// `pool_size`, `wait_timeout`, `connect_timeout` and
    /// `test_on_checkout`.
    ///
    /// TLS follows libpq: the URL's `sslmode` (`disable`, `prefer` — the
    /// default —, `require`, `verify-ca`, `verify-full`) and `sslrootcert`
    /// (a PEM file, or `system`), or `config`'s
    /// [`ssl_root_cert`](PostgresConfig::ssl_root_cert), over rustls; see
    /// `docs/postgres.md` for what each mode checks.
    ///
    /// No connection is made until the first call. The URL and config are
    /// checked now, and the root certificates read.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`]: for `url` naming the problem (a bad
    /// `sslmode` by its value, never the password); for `sslrootcert` or
    /// `ssl_root_cert` naming the path of a root certificate file that
    /// cannot be read or holds no certificate; for a config field out of
    /// range. A TLS handshake that fails later is an
    /// [`Error::Connection`] of the call, naming the address, the mode and
    /// rustls's reason.
    ///
    /// # Examples
    ///
    /// ```
    /// use session_postgres::{PostgresConfig, PostgresStore};
    ///
    /// // Encrypted, the server's certificate chain and host name checked
    /// // against a root certificate of the application's (with
    /// // `sslrootcert=/etc/ssl/db-root.crt` in the URL, or in the config):
    /// // the file is read here.
    /// # if false {
    /// let config = PostgresConfig { ssl_root_cert: Some("/etc/ssl/db-root.crt".into()), ..PostgresConfig::default() };
    /// PostgresStore::from_url("postgresql://app@db.internal/app?sslmode=verify-full", config)?;
    /// # }
    /// // Encrypted, the server not authenticated (libpq's `require`).
    /// PostgresStore::from_url("postgresql://app@db.internal/app?sslmode=require", PostgresConfig::default())?;
    ///
    /// let err = PostgresStore::from_url("postgresql://app@db/app?sslmode=verify_full", PostgresConfig::default())
    ///     .unwrap_err();
    /// assert!(err.to_string().contains("invalid value for option `sslmode`: `verify_full`"), "{err}");
    /// # Ok::<(), session_core::Error>(())
    /// ```
    pub fn from_url(url: &str, config: PostgresConfig) -> Result<Self> {
        config.validate()?;
        let (mut pg_config, tls) = parse_url(url, &config)?;
        pg_config.connect_timeout(config.connect_timeout);
        let address = address_of(&pg_config);
        let recycling_method = if config.test_on_checkout {
            RecyclingMethod::Verified
        } else {
            RecyclingMethod::Fast
        };
        let manager = Manager::from_connect(
            pg_config,
            tls.connector()?,
            ManagerConfig { recycling_method },
        );
        let pool = Pool::builder(manager)
            .max_size(config.pool_size as usize)
            .wait_timeout(Some(config.wait_timeout))
            .create_timeout(Some(config.connect_timeout))
            .recycle_timeout(Some(config.connect_timeout))
            // The most recently used connection first: at low concurrency
            // one warm backend serves the calls instead of all in turn, and
            // surplus connections stay idle.
            .queue_mode(QueueMode::Lifo)
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| Error::invalid_config("pool", e.to_string()))?;
        Self::build(pool, config, address, Some(tls.mode))
    }

    /// A store on a pool the application already has; `config`'s pool
    /// fields are not used.
    ///
    /// The pool should have a wait and create timeout (and so a runtime) so
    /// that a database that is down gives an error in bounded time; a pool
    /// without timeouts waits as long as the driver does. Its recycling
    /// method is the application's choice; the default, `Fast`, discards
    /// connections the server closed.
    ///
    /// No connection is made until the first call; `config` is checked now.
    pub fn new(pool: Pool, config: PostgresConfig) -> Result<Self> {
        config.validate()?;
        Self::build(pool, config, "the application's pool".into(), None)
    }

    fn build(
        pool: Pool,
        config: PostgresConfig,
        address: String,
        sslmode: Option<SslMode>,
    ) -> Result<Self> {
        let table = config.table_name()?;
        let qualified = table.qualified();
        Ok(PostgresStore {
            pool,
            inner: Arc::new(Inner {
                reads: Coalescer::new(READS_IN_FLIGHT),
                renewals: Coalescer::new(RENEWALS_IN_FLIGHT),
                sql: Statements::new(&qualified),
                config,
                table,
                qualified,
                address,
                sslmode,
            }),
        })
    }

    /// The pool this store uses.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// The settings this store was made with.
    pub fn config(&self) -> &PostgresConfig {
        &self.inner.config
    }

    /// The session table.
    pub fn table(&self) -> &TableName {
        &self.inner.table
    }

    /// `host:port` of the server (never the user or password).
    pub(crate) fn address(&self) -> &str {
        &self.inner.address
    }

    /// The DDL that creates the session table and its expiry index, one
    /// statement per string, idempotent (`IF NOT EXISTS`): SQLSpec's schema
    /// with this store's storage parameters.
    ///
    /// ```
    /// use session_postgres::{PostgresConfig, PostgresStore};
    ///
    /// let store = PostgresStore::from_url("postgresql://app@localhost/app", PostgresConfig::default())?;
    /// let ddl = store.ddl();
    /// assert_eq!(
    ///     ddl[0],
    ///     "CREATE TABLE IF NOT EXISTS litestar_session (\n    \
    ///          session_id TEXT PRIMARY KEY,\n    \
    ///          data BYTEA NOT NULL,\n    \
    ///          expires_at TIMESTAMPTZ,\n    \
    ///          created_at TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP,\n    \
    ///          updated_at TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP\n\
    ///      ) WITH (fillfactor = 80, autovacuum_vacuum_scale_factor = 0.05, autovacuum_analyze_scale_factor = 0.02)"
    /// );
    /// assert_eq!(
    ///     ddl[1],
    ///     "CREATE INDEX IF NOT EXISTS idx_litestar_session_expires_at\n\
    ///      ON litestar_session(expires_at) WHERE expires_at IS NOT NULL"
    /// );
    /// # Ok::<(), session_core::Error>(())
    /// ```
    pub fn ddl(&self) -> Vec<String> {
        ddl(self.table(), self.config())
    }

    /// Creates the session table and its partial expiry index if they do not
    /// exist (see [`ddl`](Self::ddl)); an existing table is used as it is.
    ///
    /// Safe when many application instances start at once: the DDL runs in
    /// one transaction under a transaction-scoped advisory lock keyed on the
    /// qualified table name, so concurrent callers wait for each other and
    /// all succeed. The schema of a `schema.table` name must exist.
    pub async fn create_table(&self) -> Result<()> {
        let span = self.span("create_table");
        async {
            let mut client = self.client().await?;
            let fail = |e| statement_error(e, "create table", self.qualified(), self.address());
            let tx = client.transaction().await.map_err(fail)?;
            tx.execute(
                "SELECT pg_advisory_xact_lock($1)",
                &[&advisory_lock_key(self.qualified())],
            )
            .await
            .map_err(fail)?;
            for statement in self.ddl() {
                tx.batch_execute(&statement).await.map_err(fail)?;
            }
            tx.commit().await.map_err(fail)
        }
        .instrument(span)
        .await
    }

    /// Deletes at most `limit` (at least 1) expired rows in one statement:
    /// one batch of [`delete_expired`](Store::delete_expired).
    pub(crate) async fn delete_batch(&self, limit: u32) -> Result<u64> {
        session_core::cleanup::check_batch_limit(limit)?;
        let limit = i64::from(limit);
        retry_deadlocks(|| async move {
            self.execute(
                "delete_expired",
                &self.inner.sql.delete_expired_batch,
                &[&limit],
            )
            .await
        })
        .instrument(self.span("delete_expired_batch"))
        .await
    }

    fn qualified(&self) -> &str {
        &self.inner.qualified
    }

    fn sql(&self) -> &Statements {
        &self.inner.sql
    }

    pub(crate) fn span(&self, op: &'static str) -> Span {
        tracing::debug_span!(
            "session_store",
            backend = BACKEND,
            op,
            table = self.qualified()
        )
    }

    pub(crate) async fn client(&self) -> Result<deadpool_postgres::Object> {
        self.pool.get().await.map_err(|e| {
            let timeouts = self.pool.timeouts();
            pool_error(
                e,
                self.address(),
                self.inner.sslmode,
                timeouts.wait,
                timeouts.create,
            )
        })
    }

    async fn query_opt(&self, op: &str, sql: &str, params: &Params<'_>) -> Result<Option<Row>> {
        let client = self.client().await?;
        self.query_opt_on(client, op, sql, params).await
    }

    async fn query_opt_on(
        &self,
        client: deadpool_postgres::Object,
        op: &str,
        sql: &str,
        params: &Params<'_>,
    ) -> Result<Option<Row>> {
        let result = async {
            let statement = client.prepare_cached(sql).await?;
            client.query_opt(&statement, params).await
        }
        .await;
        result.map_err(|e| self.statement_failed(client, e, op))
    }

    async fn query_on(
        &self,
        client: deadpool_postgres::Object,
        op: &str,
        sql: &str,
        params: &Params<'_>,
    ) -> Result<Vec<Row>> {
        let result = async {
            let statement = client.prepare_cached(sql).await?;
            client.query(&statement, params).await
        }
        .await;
        result.map_err(|e| self.statement_failed(client, e, op))
    }

    async fn execute(&self, op: &str, sql: &str, params: &Params<'_>) -> Result<u64> {
        let client = self.client().await?;
        let result = async {
            let statement = client.prepare_cached(sql).await?;
            client.execute(&statement, params).await
        }
        .await;
        result.map_err(|e| self.statement_failed(client, e, op))
    }

    /// The wait of a call starting now: until the pool's wait timeout
    /// (none if the pool has none).
    fn wait(&self) -> Wait {
        let started = Instant::now();
        Wait {
            started,
            deadline: self.pool.timeouts().wait.map(|w| started + w),
        }
    }

    /// Joins `coalescer`, waiting at most until `wait`'s deadline.
    async fn join<'c, R>(
        &self,
        coalescer: &'c Coalescer<R, Served>,
        request: impl Fn() -> R,
        wait: &Wait,
    ) -> Result<Joined<'c, R, Served>> {
        let Some(deadline) = wait.deadline else {
            return Ok(coalescer.join(request).await);
        };
        // Dropping the join is safe (see `crate::coalesce`).
        tokio::time::timeout_at(deadline.into(), coalescer.join(request))
            .await
            .map_err(|_| {
                tracing::debug!(waited = ?wait.started.elapsed(), "gave up waiting for a coalesced statement");
                wait.timed_out()
            })
    }

    /// A pooled connection, waiting at most until `wait`'s deadline (not
    /// at all once it has passed, if none is idle).
    async fn client_within(&self, wait: &Wait) -> Result<deadpool_postgres::Object> {
        let mut timeouts = self.pool.timeouts();
        timeouts.wait = wait.remaining();
        self.pool.timeout_get(&timeouts).await.map_err(|e| match e {
            PoolError::Timeout(TimeoutType::Wait | TimeoutType::Recycle) => wait.timed_out(),
            e => pool_error(
                e,
                self.address(),
                self.inner.sslmode,
                timeouts.wait,
                timeouts.create,
            ),
        })
    }

    /// One plain read, by a statement of its own.
    async fn read_alone(&self, key: &str, wait: &Wait) -> Result<Option<Bytes>> {
        self.get_alone(wait, &self.sql().get, &[&key]).await
    }

    /// One renewing read, by a statement of its own.
    async fn renewal_alone(&self, key: &str, secs: f64, wait: &Wait) -> Result<Option<Bytes>> {
        self.get_alone(wait, &self.sql().get_renew, &[&key, &secs])
            .await
    }

    /// The value one `get` statement, `sql` with `params`, run alone reads.
    async fn get_alone(
        &self,
        wait: &Wait,
        sql: &str,
        params: &Params<'_>,
    ) -> Result<Option<Bytes>> {
        let client = self.client_within(wait).await?;
        let row = self.query_opt_on(client, "get", sql, params).await?;
        self.data(row)
    }

    /// The rows of a statement serving many calls, `sql` with `params`.
    async fn query_within(&self, wait: &Wait, sql: &str, params: &Params<'_>) -> Result<Vec<Row>> {
        let client = self.client_within(wait).await?;
        self.query_on(client, "get", sql, params).await
    }

    /// One plain read: alone when no other is in flight, else served with
    /// the reads queued meanwhile by one `get_many`.
    async fn coalesced_read(&self, key: &str) -> Result<Option<Bytes>> {
        let wait = self.wait();
        let (slot, others) = match self
            .join(&self.inner.reads, || key.to_owned(), &wait)
            .await?
        {
            Joined::Answered(Served::Found(answer)) => return Ok(answer),
            Joined::Answered(Served::RunAlone) => return self.read_alone(key, &wait).await,
            Joined::Lead { slot, others } => (slot, others),
        };
        if others.is_empty() {
            let answer = self.read_alone(key, &wait).await;
            slot.pass_on();
            return answer;
        }
        let mut keys: Vec<&str> = Vec::with_capacity(others.len() + 1);
        keys.push(key);
        keys.extend(others.iter().map(|w| w.request.as_str()));
        keys.sort_unstable();
        keys.dedup();
        let rows = self
            .query_within(&wait, &self.sql().get_many, &[&keys])
            .await;
        slot.pass_on();
        match self.answer_all(key, rows, others, |w| w.request.as_str()) {
            Some(answer) => Ok(answer),
            None => self.read_alone(key, &wait).await,
        }
    }

    /// One renewing read: alone when no other is in flight, else served
    /// with the renewing reads queued meanwhile by one `get_renew_many`,
    /// each key renewed for its own duration (of two calls for one key,
    /// the later one's).
    async fn coalesced_renewal(&self, key: &str, secs: f64) -> Result<Option<Bytes>> {
        let wait = self.wait();
        let joined = self
            .join(&self.inner.renewals, || (key.to_owned(), secs), &wait)
            .await?;
        let (slot, others) = match joined {
            Joined::Answered(Served::Found(answer)) => return Ok(answer),
            Joined::Answered(Served::RunAlone) => {
                return self.renewal_alone(key, secs, &wait).await;
            }
            Joined::Lead { slot, others } => (slot, others),
        };
        if others.is_empty() {
            let answer = self.renewal_alone(key, secs, &wait).await;
            slot.pass_on();
            return answer;
        }
        // Callers queue oldest first: the last duration given for a key wins.
        let mut pairs: Vec<(&str, f64)> = Vec::with_capacity(others.len() + 1);
        pairs.push((key, secs));
        pairs.extend(others.iter().map(|w| (w.request.0.as_str(), w.request.1)));
        pairs.reverse();
        // Stable: the first of equal keys is now the latest call's.
        pairs.sort_by(|a, b| a.0.cmp(b.0));
        pairs.dedup_by(|later, first| later.0 == first.0);
        let (keys, durations): (Vec<&str>, Vec<f64>) = pairs.into_iter().unzip();
        let rows = self
            .query_within(&wait, &self.sql().get_renew_many, &[&keys, &durations])
            .await;
        slot.pass_on();
        match self.answer_all(key, rows, others, |w| w.request.0.as_str()) {
            Some(answer) => Ok(answer),
            None => self.renewal_alone(key, secs, &wait).await,
        }
    }

    /// Answers the callers a coalesced statement served (rows of
    /// `session_id, data`), and returns the leader's own answer. If the
    /// statement failed, each caller, and the leader (`None`), runs a
    /// statement of its own instead: a deadlock victim's or a lost
    /// connection's calls are served, and every call that fails gets its
    /// own statement's error, as a call served alone does.
    fn answer_all<R>(
        &self,
        key: &str,
        rows: Result<Vec<Row>>,
        others: Vec<Waiter<R, Served>>,
        key_of: impl Fn(&Waiter<R, Served>) -> &str,
    ) -> Option<Option<Bytes>> {
        let rows = match rows {
            Ok(rows) => rows,
            Err(err) => return Self::each_alone(&err, others),
        };
        let found = rows
            .iter()
            .map(|row| {
                let session_id: &str = self.column_at("get", row, 0)?;
                let data: &[u8] = self.column_at("get", row, 1)?;
                Ok((session_id, Bytes::copy_from_slice(data)))
            })
            .collect::<Result<HashMap<&str, Bytes>>>();
        match found {
            Ok(found) => {
                for waiter in others {
                    let answer = found.get(key_of(&waiter)).cloned();
                    waiter.answer(Served::Found(answer));
                }
                Some(found.get(key).cloned())
            }
            Err(err) => Self::each_alone(&err, others),
        }
    }

    /// A coalesced statement failed with `err`: each caller it served, and
    /// the leader (`None`), runs a statement of its own.
    fn each_alone<R>(err: &Error, others: Vec<Waiter<R, Served>>) -> Option<Option<Bytes>> {
        let deadlock = sqlstate(err) == Some(&SqlState::T_R_DEADLOCK_DETECTED);
        if deadlock {
            tracing::info!(callers = others.len() + 1, error = %err, "a coalesced statement was a deadlock's victim; each caller runs its own");
        } else {
            tracing::debug!(callers = others.len() + 1, error = %err, "a coalesced statement failed; each caller runs its own");
        }
        for waiter in others {
            waiter.answer(Served::RunAlone);
        }
        None
    }

    /// The value of a `get`'s row, if any.
    fn data(&self, row: Option<Row>) -> Result<Option<Bytes>> {
        match row {
            None => Ok(None),
            Some(row) => {
                let data: &[u8] = self.column("get", &row)?;
                Ok(Some(Bytes::copy_from_slice(data)))
            }
        }
    }

    /// Whether `delete_expired` sweeps the table (and how), from the
    /// planner's statistics: when its estimate of expired rows is at least
    /// [`SWEEP_SHARE`] of the table's rows, a sweep of the pages reads less
    /// than the index walk, which visits each expired row twice.
    async fn sweep_plan(&self, batch: u32) -> Result<Option<SweepPlan>> {
        const OP: &str = "delete_expired";
        let Some(size) = self.query_opt(OP, &self.sql().table_size, &[]).await? else {
            return Ok(None);
        };
        let version: i32 = self.column_at(OP, &size, 2)?;
        if !sweep_supported(version) {
            tracing::debug!(
                server_version_num = version,
                "no TID range scans before PostgreSQL 14: cleanup walks the expiry index"
            );
            return Ok(None);
        }
        let pages: i64 = self.column_at(OP, &size, 0)?;
        let rows: f64 = self.column_at(OP, &size, 1)?;
        // reltuples is -1 before the first VACUUM or ANALYZE.
        if pages < SWEEP_MIN_PAGES || rows <= 0.0 {
            return Ok(None);
        }
        let expired = self.expired_estimate().await?;
        if expired < rows * SWEEP_SHARE {
            return Ok(None);
        }
        let per_page = (expired / pages as f64).max(f64::MIN_POSITIVE);
        Ok(Some(SweepPlan {
            pages,
            chunk: chunk_pages(f64::from(batch) / per_page),
        }))
    }

    /// Runs `sql` (one or more statements, one implicit transaction) as a
    /// simple query and returns the rows its statements affected.
    async fn simple_count(&self, op: &str, sql: &str) -> Result<u64> {
        let client = self.client().await?;
        match client.simple_query(sql).await {
            Ok(messages) => Ok(messages
                .iter()
                .map(|m| match m {
                    tokio_postgres::SimpleQueryMessage::CommandComplete(n) => *n,
                    _ => 0,
                })
                .sum()),
            Err(e) => Err(self.statement_failed(client, e, op)),
        }
    }

    /// The planner's estimate of the expired rows (`EXPLAIN`, not run).
    async fn expired_estimate(&self) -> Result<f64> {
        let client = self.client().await?;
        let messages = match client.simple_query(&self.sql().expired_estimate).await {
            Ok(messages) => messages,
            Err(e) => return Err(self.statement_failed(client, e, "delete_expired")),
        };
        let plan = messages.iter().find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0).map(str::to_owned),
            _ => None,
        });
        let rows = plan
            .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
            .and_then(|plan| plan[0]["Plan"]["Plan Rows"].as_f64());
        // No estimate: 0, so the index walk runs.
        Ok(rows.unwrap_or(0.0))
    }

    /// Deletes the expired rows of the pages `[0, plan.pages)` a chunk of
    /// pages at a time, each chunk one statement; the chunk's size follows
    /// the rows the last one removed, toward `batch` rows each. Rows in
    /// pages added meanwhile are left to the next run.
    async fn sweep(&self, plan: SweepPlan, batch: u32) -> Result<u64> {
        let mut total = 0;
        let mut start = 0_i64;
        let mut chunk = plan.chunk;
        while start < plan.pages {
            let end = (start + chunk).min(plan.pages);
            let sql = self
                .sql()
                .delete_expired_range
                .replace("{lo}", &start.to_string())
                .replace("{hi}", &end.to_string());
            let removed = retry_deadlocks(|| self.simple_count("delete_expired", &sql)).await?;
            total += removed;
            // Toward `batch` rows per chunk, at most doubling or halving.
            let per_page = removed as f64 / (end - start) as f64;
            let wanted = if removed == 0 {
                chunk as f64 * 2.0
            } else {
                f64::from(batch) / per_page
            };
            chunk = chunk_pages(wanted.clamp(chunk as f64 / 2.0, chunk as f64 * 2.0));
            start = end;
        }
        Ok(total)
    }

    /// Maps a failed statement's error. A client whose connection broke is
    /// taken out of the pool instead of going back to it: its connection
    /// task may not have seen the close yet, so the pool's `is_closed`
    /// check on recycling could hand the dead client to the next call.
    fn statement_failed(
        &self,
        client: deadpool_postgres::Object,
        err: tokio_postgres::Error,
        op: &str,
    ) -> Error {
        if is_connection_error(&err) {
            drop(deadpool_postgres::Object::take(client));
        }
        statement_error(err, op, self.qualified(), self.address())
    }

    fn column<'r, T: tokio_postgres::types::FromSql<'r>>(
        &self,
        op: &str,
        row: &'r Row,
    ) -> Result<T> {
        self.column_at(op, row, 0)
    }

    fn column_at<'r, T: tokio_postgres::types::FromSql<'r>>(
        &self,
        op: &str,
        row: &'r Row,
        index: usize,
    ) -> Result<T> {
        row.try_get(index)
            .map_err(|e| statement_error(e, op, self.qualified(), self.address()))
    }
}

/// SQLSpec's session table and its partial expiry index for `table`, with
/// `config`'s storage parameters: `create_table` and `ext_litestar_0001`.
pub(crate) fn ddl(table: &TableName, config: &PostgresConfig) -> Vec<String> {
    let qualified = table.qualified();
    vec![
        format!(
            "CREATE TABLE IF NOT EXISTS {qualified} (\n    \
                 session_id TEXT PRIMARY KEY,\n    \
                 data BYTEA NOT NULL,\n    \
                 expires_at TIMESTAMPTZ,\n    \
                 created_at TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP,\n    \
                 updated_at TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP\n\
             ) WITH (fillfactor = {}, autovacuum_vacuum_scale_factor = {}, \
             autovacuum_analyze_scale_factor = {})",
            config.fillfactor,
            config.autovacuum_vacuum_scale_factor,
            config.autovacuum_analyze_scale_factor,
        ),
        format!(
            "CREATE INDEX IF NOT EXISTS {}\nON {qualified}(expires_at) WHERE expires_at IS NOT NULL",
            table.index_name()
        ),
    ]
}

/// Seconds as the `float8` the statements take, in whole microseconds
/// (PostgreSQL's precision) rounded up, so no key expires early; `None`
/// (no expiry) binds NULL.
fn seconds(duration: Option<Duration>) -> Option<f64> {
    non_zero(duration).map(|d| d.as_nanos().div_ceil(1_000) as f64 / 1e6)
}

#[async_trait]
impl Store for PostgresStore {
    async fn get(&self, key: &str, renew_for: Option<Duration>) -> Result<Option<Bytes>> {
        validate_key(key)?;
        async {
            match seconds(renew_for) {
                None => self.coalesced_read(key).await,
                Some(secs) => self.coalesced_renewal(key, secs).await,
            }
        }
        .instrument(self.span("get"))
        .await
    }

    async fn set(&self, key: &str, value: Bytes, expires_in: Option<Duration>) -> Result<()> {
        validate_key(key)?;
        let secs = seconds(expires_in);
        let data: &[u8] = &value;
        self.execute("set", &self.sql().set, &[&key, &data, &secs])
            .instrument(self.span("set"))
            .await
            .map(drop)
    }

    async fn delete(&self, key: &str) -> Result<()> {
        validate_key(key)?;
        self.execute("delete", &self.sql().delete, &[&key])
            .instrument(self.span("delete"))
            .await
            .map(drop)
    }

    async fn delete_all(&self) -> Result<()> {
        self.execute("delete_all", &self.sql().delete_all, &[])
            .instrument(self.span("delete_all"))
            .await
            .map(drop)
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        validate_key(key)?;
        async {
            match self
                .query_opt("exists", &self.sql().exists, &[&key])
                .await?
            {
                Some(row) => self.column("exists", &row),
                None => Ok(false),
            }
        }
        .instrument(self.span("exists"))
        .await
    }

    async fn expires_in(&self, key: &str) -> Result<Option<Duration>> {
        validate_key(key)?;
        async {
            let Some(row) = self
                .query_opt("expires_in", &self.sql().expires_in, &[&key])
                .await?
            else {
                return Ok(None);
            };
            let secs: Option<f64> = self.column("expires_in", &row)?;
            // The row is live, so the remainder is positive; a NaN or
            // out-of-range value cannot come from a timestamp difference.
            Ok(secs.and_then(|s| Duration::try_from_secs_f64(s.max(0.0)).ok()))
        }
        .instrument(self.span("expires_in"))
        .await
    }

    async fn delete_expired(&self) -> Result<u64> {
        async {
            let batch = self.config().cleanup_batch_size;
            // Each batch is its own statement, so its own short transaction:
            // readers never wait behind one huge delete. Where expired rows
            // are a large share of the table, the batches are chunks of one
            // sweep through it in physical order (what one unbatched DELETE
            // reads); else each takes the oldest expired rows through the
            // expiry index.
            let total = match self.sweep_plan(batch).await? {
                Some(plan) => self.sweep(plan, batch).await?,
                None => {
                    delete_in_batches_async(u64::from(batch), || self.delete_batch(batch)).await?
                }
            };
            tracing::debug!(removed = total, "deleted expired sessions");
            Ok(total)
        }
        .instrument(self.span("delete_expired"))
        .await
    }

    async fn create(&self, key: &str, value: Bytes, expires_in: Option<Duration>) -> Result<bool> {
        validate_key(key)?;
        let secs = seconds(expires_in);
        let data: &[u8] = &value;
        self.execute("create", &self.sql().create, &[&key, &data, &secs])
            .instrument(self.span("create"))
            .await
            .map(|rows| rows == 1)
    }

    async fn update(&self, key: &str, value: Bytes, expires_in: Option<Duration>) -> Result<bool> {
        validate_key(key)?;
        let secs = seconds(expires_in);
        let data: &[u8] = &value;
        self.execute("update", &self.sql().update, &[&key, &data, &secs])
            .instrument(self.span("update"))
            .await
            .map(|rows| rows == 1)
    }

    async fn compare_and_set(
        &self,
        key: &str,
        expected: Bytes,
        value: Bytes,
        expires_in: Option<Duration>,
    ) -> Result<bool> {
        validate_key(key)?;
        let secs = seconds(expires_in);
        let expected: &[u8] = &expected;
        let data: &[u8] = &value;
        self.execute(
            "compare_and_set",
            &self.sql().compare_and_set,
            &[&key, &expected, &data, &secs],
        )
        .instrument(self.span("compare_and_set"))
        .await
        .map(|rows| rows == 1)
    }

    async fn delete_live(&self, key: &str) -> Result<bool> {
        validate_key(key)?;
        self.execute("delete_live", &self.sql().delete_live, &[&key])
            .instrument(self.span("delete_live"))
            .await
            .map(|rows| rows == 1)
    }
}

/// `host:port[,host:port...]` of a connection config: never the user or
/// password.
fn address_of(config: &tokio_postgres::Config) -> String {
    let ports = config.get_ports();
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let port = ports
                .get(i)
                .or_else(|| ports.first())
                .copied()
                .unwrap_or(5432);
            match host {
                Host::Tcp(name) => format!("{name}:{port}"),
                Host::Unix(path) => format!("{}/.s.PGSQL.{port}", path.display()),
            }
        })
        .collect();
    if hosts.is_empty() {
        // libpq's default when no host is given.
        let port = ports.first().copied().unwrap_or(5432);
        format!("localhost:{port}")
    } else {
        hosts.join(",")
    }
}

/// The advisory lock key of a table: FNV-1a (64 bit) of a fixed prefix and
/// the qualified name, the same in every process and every build.
pub(crate) fn advisory_lock_key(qualified_table: &str) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in b"session_postgres.create_table:"
        .iter()
        .chain(qualified_table.as_bytes())
    {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    i64::from_ne_bytes(hash.to_ne_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweeps_need_postgresql_14() {
        // server_version_num of 13.16, 14.0, 15.4 and 17.2.
        assert!(!sweep_supported(130_016));
        assert!(sweep_supported(140_000));
        assert!(sweep_supported(150_004));
        assert!(sweep_supported(170_002));
    }

    #[test]
    fn address_never_holds_the_password() {
        let config: tokio_postgres::Config = "postgresql://app:s3cret@db.internal:6543/sessions"
            .parse()
            .unwrap();
        assert_eq!(address_of(&config), "db.internal:6543");
        let config: tokio_postgres::Config = "host=a,b port=1,2 password=s3cret".parse().unwrap();
        assert_eq!(address_of(&config), "a:1,b:2");
    }

    #[test]
    fn lock_keys_are_stable_and_distinct() {
        // Pinned (FNV-1a 64 of `session_postgres.create_table:<table>`,
        // computed independently): every process and every release must
        // take the same lock, or a new and an old instance migrate at once.
        assert_eq!(
            advisory_lock_key("litestar_session"),
            -7_880_616_938_158_239_255
        );
        assert_eq!(
            advisory_lock_key("auth.litestar_session"),
            479_722_491_118_582_985
        );
        // The cleanup lock of the same table is another key (pinned in
        // tests/migrations.rs): a cleanup never blocks a migration.
        let store =
            PostgresStore::from_url("postgresql://app@host/db", PostgresConfig::default()).unwrap();
        assert_ne!(
            store.cleanup_lock_key(),
            advisory_lock_key("litestar_session")
        );
    }

    #[test]
    fn a_malformed_url_is_refused_without_repeating_it() {
        let err = PostgresStore::from_url(
            "postgresql://app:s3cret@host:notaport/db",
            PostgresConfig::default(),
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("`url`"), "{text}");
        assert!(!text.contains("s3cret"), "{text}");
    }

    #[test]
    fn an_empty_pool_is_refused() {
        let err = PostgresStore::from_url(
            "postgresql://app@host/db",
            PostgresConfig {
                pool_size: 0,
                ..PostgresConfig::default()
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("`pool_size`"), "{err}");
    }

    #[test]
    fn the_seed_migration_checksum_is_unchanged() {
        // Pinned: the checksum recorded by every existing database at
        // `ext_litestar_0001` for the default table and settings.
        let store =
            PostgresStore::from_url("postgresql://app@host/db", PostgresConfig::default()).unwrap();
        assert_eq!(
            session_core::migrate::checksum(&store.ddl()),
            "42953b03035ac032b53279b00dd6a18664cf28be18a83a86aee3a643b9cb2cef"
        );
    }
}
