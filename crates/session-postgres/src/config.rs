//! [`PostgresStoreConfig`] (table and storage settings) and [`PoolSettings`].

use std::path::Path;
use std::time::Duration;

use session_core::{Error, ExtensionConfig, Result, TableName};

/// The longest PostgreSQL identifier (`NAMEDATALEN - 1`).
pub(crate) const PG_IDENTIFIER_LIMIT: usize = 63;

/// The keys of the `litestar` extension config this store honours; any other
/// key is refused by name.
pub const ACCEPTED_KEYS: &[&str] = &[
    "session_table",
    "fillfactor",
    "autovacuum_vacuum_scale_factor",
    "autovacuum_analyze_scale_factor",
];

/// Default table fillfactor, as SQLSpec sets it.
pub const DEFAULT_FILLFACTOR: u8 = 80;
/// Default `autovacuum_vacuum_scale_factor` of the session table.
pub const DEFAULT_AUTOVACUUM_VACUUM_SCALE_FACTOR: f64 = 0.05;
/// Default `autovacuum_analyze_scale_factor` of the session table.
pub const DEFAULT_AUTOVACUUM_ANALYZE_SCALE_FACTOR: f64 = 0.02;
/// Default number of rows one cleanup statement deletes.
pub const DEFAULT_DELETE_BATCH_SIZE: u32 = 5_000;

/// What a [`PostgresStore`](crate::PostgresStore) is made with: the session
/// table (optionally `schema.table`), its storage parameters and the
/// cleanup batch size.
///
/// Built from SQLSpec's extension config (`{"litestar": {...}}`, keys
/// [`ACCEPTED_KEYS`]) or with the `with_*` methods; every value is checked
/// when set, and an error names the bad key.
///
/// ```
/// use session_postgres::PostgresStoreConfig;
///
/// let config = PostgresStoreConfig::from_json_str(
///     r#"{"litestar": {"session_table": "auth.sessions", "fillfactor": 90}}"#,
/// )?;
/// assert_eq!(config.table().qualified(), "auth.sessions");
/// assert_eq!(config.fillfactor(), 90);
/// assert_eq!(config.autovacuum_vacuum_scale_factor(), 0.05);
///
/// let err = PostgresStoreConfig::from_json_str(r#"{"litestar": {"fillfactor": 5}}"#).unwrap_err();
/// assert!(err.to_string().contains("litestar.fillfactor"));
/// # Ok::<(), session_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct PostgresStoreConfig {
    table: TableName,
    fillfactor: u8,
    autovacuum_vacuum_scale_factor: f64,
    autovacuum_analyze_scale_factor: f64,
    delete_batch_size: u32,
}

impl Default for PostgresStoreConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl PostgresStoreConfig {
    /// Every setting at its default: table `litestar_session`, fillfactor
    /// 80, autovacuum scale factors 0.05 and 0.02, cleanup batches of 5,000.
    pub fn new() -> Self {
        PostgresStoreConfig {
            table: default_table(),
            fillfactor: DEFAULT_FILLFACTOR,
            autovacuum_vacuum_scale_factor: DEFAULT_AUTOVACUUM_VACUUM_SCALE_FACTOR,
            autovacuum_analyze_scale_factor: DEFAULT_AUTOVACUUM_ANALYZE_SCALE_FACTOR,
            delete_batch_size: DEFAULT_DELETE_BATCH_SIZE,
        }
    }

    /// Reads the settings from an extension config, refusing any key this
    /// store does not honour by name (a config parsed for another adapter
    /// may hold such keys).
    pub fn from_extension(config: &ExtensionConfig) -> Result<Self> {
        config.ensure_only(ACCEPTED_KEYS)?;
        let fillfactor = config.int_in("fillfactor", 10..=100, i64::from(DEFAULT_FILLFACTOR))?;
        Ok(PostgresStoreConfig {
            table: config.qualified_session_table(PG_IDENTIFIER_LIMIT)?,
            // 10..=100 always fits a u8.
            fillfactor: u8::try_from(fillfactor).unwrap_or(DEFAULT_FILLFACTOR),
            autovacuum_vacuum_scale_factor: config.float_in(
                "autovacuum_vacuum_scale_factor",
                0.0..=1.0,
                DEFAULT_AUTOVACUUM_VACUUM_SCALE_FACTOR,
            )?,
            autovacuum_analyze_scale_factor: config.float_in(
                "autovacuum_analyze_scale_factor",
                0.0..=1.0,
                DEFAULT_AUTOVACUUM_ANALYZE_SCALE_FACTOR,
            )?,
            delete_batch_size: DEFAULT_DELETE_BATCH_SIZE,
        })
    }

    /// Parses a JSON extension config (`{"litestar": {...}}`).
    pub fn from_json_str(json: &str) -> Result<Self> {
        Self::from_extension(&ExtensionConfig::from_json_str(json, ACCEPTED_KEYS)?)
    }

    /// Parses a TOML extension config (a `[litestar]` table).
    pub fn from_toml_str(toml: &str) -> Result<Self> {
        Self::from_extension(&ExtensionConfig::from_toml_str(toml, ACCEPTED_KEYS)?)
    }

    /// Reads a `.json` or `.toml` extension config file.
    pub fn from_path(path: &Path) -> Result<Self> {
        Self::from_extension(&ExtensionConfig::from_path(path, ACCEPTED_KEYS)?)
    }

    /// Checks an already-parsed JSON value.
    pub fn from_value(value: serde_json::Value) -> Result<Self> {
        Self::from_extension(&ExtensionConfig::from_value(value, ACCEPTED_KEYS)?)
    }

    /// Sets the session table: `table` or `schema.table`, each part a plain
    /// identifier; the index name derived from it must fit 63 characters.
    pub fn with_table(mut self, name: &str) -> Result<Self> {
        self.table = TableName::new_qualified(name, PG_IDENTIFIER_LIMIT)?;
        Ok(self)
    }

    /// Sets the table's fillfactor, 10..=100.
    pub fn with_fillfactor(mut self, fillfactor: u8) -> Result<Self> {
        if !(10..=100).contains(&fillfactor) {
            return Err(Error::invalid_config(
                "litestar.fillfactor",
                format!("{fillfactor} is out of range; expected 10..=100"),
            ));
        }
        self.fillfactor = fillfactor;
        Ok(self)
    }

    /// Sets the table's `autovacuum_vacuum_scale_factor`, 0..=1.
    pub fn with_autovacuum_vacuum_scale_factor(mut self, factor: f64) -> Result<Self> {
        self.autovacuum_vacuum_scale_factor =
            unit_interval("litestar.autovacuum_vacuum_scale_factor", factor)?;
        Ok(self)
    }

    /// Sets the table's `autovacuum_analyze_scale_factor`, 0..=1.
    pub fn with_autovacuum_analyze_scale_factor(mut self, factor: f64) -> Result<Self> {
        self.autovacuum_analyze_scale_factor =
            unit_interval("litestar.autovacuum_analyze_scale_factor", factor)?;
        Ok(self)
    }

    /// Sets how many rows one cleanup statement of
    /// [`delete_expired`](session_core::Store::delete_expired) removes, at
    /// least 1 (default 5,000). Each batch is its own short transaction.
    pub fn with_delete_batch_size(mut self, rows: u32) -> Result<Self> {
        if rows == 0 {
            return Err(Error::invalid_config(
                "delete_batch_size",
                "0 rows per batch; expected at least 1",
            ));
        }
        self.delete_batch_size = rows;
        Ok(self)
    }

    /// The session table.
    pub fn table(&self) -> &TableName {
        &self.table
    }

    /// The table's fillfactor.
    pub fn fillfactor(&self) -> u8 {
        self.fillfactor
    }

    /// The table's `autovacuum_vacuum_scale_factor`.
    pub fn autovacuum_vacuum_scale_factor(&self) -> f64 {
        self.autovacuum_vacuum_scale_factor
    }

    /// The table's `autovacuum_analyze_scale_factor`.
    pub fn autovacuum_analyze_scale_factor(&self) -> f64 {
        self.autovacuum_analyze_scale_factor
    }

    /// Rows per cleanup statement.
    pub fn delete_batch_size(&self) -> u32 {
        self.delete_batch_size
    }

    /// The DDL that creates the session table and its expiry index, one
    /// statement per string, idempotent (`IF NOT EXISTS`): SQLSpec's schema
    /// with this config's storage parameters.
    ///
    /// ```
    /// let ddl = session_postgres::PostgresStoreConfig::new().ddl();
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
    /// ```
    pub fn ddl(&self) -> Vec<String> {
        let table = self.table.qualified();
        vec![
            format!(
                "CREATE TABLE IF NOT EXISTS {table} (\n    \
                     session_id TEXT PRIMARY KEY,\n    \
                     data BYTEA NOT NULL,\n    \
                     expires_at TIMESTAMPTZ,\n    \
                     created_at TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP,\n    \
                     updated_at TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP\n\
                 ) WITH (fillfactor = {}, autovacuum_vacuum_scale_factor = {}, \
                 autovacuum_analyze_scale_factor = {})",
                self.fillfactor,
                self.autovacuum_vacuum_scale_factor,
                self.autovacuum_analyze_scale_factor,
            ),
            format!(
                "CREATE INDEX IF NOT EXISTS {}\nON {table}(expires_at) WHERE expires_at IS NOT NULL",
                self.table.index_name()
            ),
        ]
    }
}

fn default_table() -> TableName {
    match TableName::new(session_core::DEFAULT_SESSION_TABLE, PG_IDENTIFIER_LIMIT) {
        Ok(table) => table,
        // A constant, checked by the tests: not reachable from any input.
        Err(e) => unreachable!("the default session table name is valid: {e}"),
    }
}

fn unit_interval(field: &str, value: f64) -> Result<f64> {
    if value.is_finite() && (0.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        Err(Error::invalid_config(
            field,
            format!("{value} is out of range; expected 0..=1"),
        ))
    }
}

/// How the store's own connection pool behaves when made from a URL
/// ([`PostgresStore::from_url`](crate::PostgresStore::from_url)).
///
/// The timeouts bound every wait, so a database that is down gives an error
/// ([`Error::PoolTimeout`] or [`Error::Connection`]) in bounded time, not a
/// hang. Connections the server closed are dropped when they come back to
/// the pool and replaced on demand, so after the database returns the next
/// calls succeed.
///
/// ```
/// use std::time::Duration;
/// use session_postgres::PoolSettings;
///
/// let settings = PoolSettings {
///     max_size: 32,
///     wait_timeout: Duration::from_secs(2),
///     ..PoolSettings::default()
/// };
/// assert_eq!(settings.connect_timeout, Duration::from_secs(5));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolSettings {
    /// The most connections the pool holds (default 16).
    pub max_size: usize,
    /// How long a call waits for a free connection before
    /// [`Error::PoolTimeout`] (default 5 s).
    pub wait_timeout: Duration,
    /// How long opening one connection may take, TCP and authentication
    /// included (default 5 s).
    pub connect_timeout: Duration,
    /// Whether a pooled connection is checked with an empty query before
    /// each use (default false). Closed connections are always discarded;
    /// the check also catches half-open ones (a silently dropped network
    /// path) at the price of one extra round trip per call.
    pub verify_on_checkout: bool,
}

impl Default for PoolSettings {
    fn default() -> Self {
        PoolSettings {
            max_size: 16,
            wait_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            verify_on_checkout: false,
        }
    }
}

impl PoolSettings {
    pub(crate) fn validate(&self) -> Result<()> {
        if self.max_size == 0 {
            return Err(Error::invalid_config(
                "max_size",
                "a pool of 0 connections; expected at least 1",
            ));
        }
        for (field, value) in [
            ("wait_timeout", self.wait_timeout),
            ("connect_timeout", self.connect_timeout),
        ] {
            if value.is_zero() {
                return Err(Error::invalid_config(
                    field,
                    "zero; expected a positive duration",
                ));
            }
        }
        Ok(())
    }
}
