//! [`SqliteConfig`]: the session table, the pool, the busy timeout, the
//! cleanup batch size.

use std::path::Path;
use std::time::Duration;

use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::OpenFlags;
use serde::{Deserialize, Serialize};
use session_core::{
    DEFAULT_SESSION_TABLE, Error, ExtensionConfig, Result, SESSION_TABLE_KEY, StoreConfig,
    TableName,
};

/// SQLite's identifiers have no length limit of their own; the SPEC's 63
/// characters apply.
pub(crate) const IDENTIFIER_LIMIT: usize = 63;

/// The configuration of a [`SqliteStore`](crate::SqliteStore): a plain
/// struct with public fields, `Default` and serde, checked when the store is
/// opened (a bad value is an [`Error::InvalidConfig`] naming the field, a
/// bad table name an [`Error::InvalidIdentifier`]).
///
/// Load it from JSON or TOML with the [`StoreConfig`] loaders: its own
/// fields (unknown ones are refused by name; durations are seconds or text
/// such as `"250ms"`), or SQLSpec's `{"litestar": {"session_table": ...}}`
/// document, which sets `table` and leaves the rest at their defaults.
///
/// There is no `connect_timeout` (opening a file is not a network
/// connection) and no `test_on_checkout` (a pooled SQLite connection does
/// not go stale).
///
/// ```
/// use std::time::Duration;
/// use session_core::StoreConfig;
/// use session_sqlite::SqliteConfig;
///
/// let config = SqliteConfig {
///     pool_size: 4,
///     busy_timeout: Duration::from_secs(2),
///     ..SqliteConfig::default()
/// };
/// let same = SqliteConfig::from_toml_str("pool_size = 4\nbusy_timeout = \"2s\"").unwrap();
/// assert_eq!(config, same);
/// let seed = SqliteConfig::from_json_str(r#"{"litestar": {"session_table": "app_sessions"}}"#).unwrap();
/// assert_eq!(seed.table, "app_sessions");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SqliteConfig {
    /// The session table (default `litestar_session`; SQLSpec's
    /// `session_table` is accepted as an alias): letters, digits and
    /// underscores, at most 48 characters so that its index and tracking
    /// table names fit.
    #[serde(alias = "session_table")]
    pub table: String,
    /// Connections in the pool of a file database (at least 1; default 8),
    /// for reads: WAL lets them run in parallel with the writes, which go
    /// through the store's single writer connection (not counted here).
    /// An in-memory database always has exactly one connection.
    pub pool_size: u32,
    /// How long an operation waits for its turn before it fails with
    /// [`Error::PoolTimeout`] (more than zero; default 30 s): a read for a
    /// free pooled connection, a write of a file database for the single
    /// writer to take it (for room in its queue, then for the writes
    /// ahead). A write that timed out was not run. Once taken, a write
    /// waits at most `busy_timeout` more for SQLite's lock.
    #[serde(with = "session_core::duration")]
    pub wait_timeout: Duration,
    /// SQLite's `busy_timeout` on every connection: how long a statement
    /// waits for the write lock held by another connection (or process)
    /// before it fails with "database is locked" (default 5 s; zero fails
    /// at once).
    #[serde(with = "session_core::duration")]
    pub busy_timeout: Duration,
    /// Rows `delete_expired` removes per transaction (at least 1; default
    /// 50). Smaller batches hold the writer, and a CPU, for less time
    /// each: writes queued behind a batch wait for it, and reads running
    /// meanwhile lose less; each batch also yields its CPU every few
    /// hundred SQLite instructions (at 50, 50,000 expired rows take 0.76
    /// to 0.88x the time of one unbatched `DELETE` on an idle machine; see
    /// `docs/sqlite.md`).
    pub cleanup_batch_size: u32,
}

impl Default for SqliteConfig {
    fn default() -> Self {
        SqliteConfig {
            table: DEFAULT_SESSION_TABLE.to_owned(),
            pool_size: 8,
            wait_timeout: Duration::from_secs(30),
            busy_timeout: Duration::from_secs(5),
            cleanup_batch_size: 50,
        }
    }
}

impl StoreConfig for SqliteConfig {
    /// Of SQLSpec's `litestar` section, exactly `session_table`.
    const EXTENSION_KEYS: &'static [&'static str] = &[SESSION_TABLE_KEY];

    fn from_extension(ext: &ExtensionConfig) -> Result<Self> {
        // Checked again here: a document parsed for another adapter (a
        // PostgreSQL `fillfactor`, say) is refused, naming the key.
        ext.ensure_only(Self::EXTENSION_KEYS)?;
        Ok(SqliteConfig {
            table: ext.session_table(IDENTIFIER_LIMIT)?.qualified(),
            ..Self::default()
        })
    }

    fn validate(&self) -> Result<()> {
        self.table_name()?;
        if self.pool_size == 0 {
            return Err(Error::invalid_config(
                "pool_size",
                "0 connections; at least 1 is needed",
            ));
        }
        if self.wait_timeout.is_zero() {
            return Err(Error::invalid_config(
                "wait_timeout",
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
}

impl SqliteConfig {
    /// The validated session table.
    pub(crate) fn table_name(&self) -> Result<TableName> {
        TableName::new(&self.table, IDENTIFIER_LIMIT)
    }

    /// A connection manager for the file database at `path` whose
    /// connections carry this store's settings (`synchronous=NORMAL`, the
    /// busy timeout). Use it to build an `r2d2::Pool` of your own for
    /// [`SqliteStore::from_pool`](crate::SqliteStore::from_pool); set the
    /// WAL journal once on the database (`PRAGMA journal_mode=WAL`), or let
    /// [`SqliteStore::open`](crate::SqliteStore::open) do it.
    ///
    /// ```
    /// use session_sqlite::SqliteConfig;
    ///
    /// let path = std::env::temp_dir().join(format!("manager-{}.db", std::process::id()));
    /// let manager = SqliteConfig::default().connection_manager(&path);
    /// let pool = r2d2::Pool::builder().max_size(4).build(manager).unwrap();
    /// let conn = pool.get().unwrap();
    /// let sync: i64 = conn.query_row("PRAGMA synchronous", [], |r| r.get(0)).unwrap();
    /// assert_eq!(sync, 1); // NORMAL
    /// # drop(conn); drop(pool); let _ = std::fs::remove_file(&path);
    /// ```
    pub fn connection_manager(&self, path: impl AsRef<Path>) -> SqliteConnectionManager {
        let busy = self.busy_timeout;
        SqliteConnectionManager::file(path)
            .with_flags(file_flags())
            .with_init(move |conn| init_connection(conn, busy, true))
    }
}

/// The open flags of every connection to a file database: read-write,
/// create, no URI interpretation of the path, SQLite's own mutex off (a
/// connection is used by one thread at a time through the pool).
pub(crate) fn file_flags() -> OpenFlags {
    OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_fields_load_from_json_and_toml() {
        let json = SqliteConfig::from_json_str(
            r#"{"table": "app_sessions", "pool_size": 4, "wait_timeout": 2.5,
                "busy_timeout": "250ms", "cleanup_batch_size": 500}"#,
        )
        .unwrap();
        let toml = SqliteConfig::from_toml_str(
            "table = \"app_sessions\"\npool_size = 4\nwait_timeout = \"2s 500ms\"\n\
             busy_timeout = 0.25\ncleanup_batch_size = 500\n",
        )
        .unwrap();
        let expected = SqliteConfig {
            table: "app_sessions".into(),
            pool_size: 4,
            wait_timeout: Duration::from_millis(2_500),
            busy_timeout: Duration::from_millis(250),
            cleanup_batch_size: 500,
        };
        assert_eq!(json, expected);
        assert_eq!(toml, expected);
        // The alias, and the defaults for everything left out.
        let alias = SqliteConfig::from_json_str(r#"{"session_table": "s"}"#).unwrap();
        assert_eq!(alias.table, "s");
        assert_eq!(alias.pool_size, SqliteConfig::default().pool_size);
        assert_eq!(
            SqliteConfig::from_value(serde_json::Value::Null).unwrap(),
            SqliteConfig::default()
        );
    }

    #[test]
    fn defaults_are_todays() {
        let d = SqliteConfig::default();
        assert_eq!(d.table, "litestar_session");
        assert_eq!(d.pool_size, 8);
        assert_eq!(d.wait_timeout, Duration::from_secs(30));
        assert_eq!(d.busy_timeout, Duration::from_secs(5));
        assert_eq!(d.cleanup_batch_size, 50);
    }

    #[test]
    fn sqlspec_documents_still_load() {
        let json =
            SqliteConfig::from_json_str(r#"{"litestar": {"session_table": "custom"}}"#).unwrap();
        let toml = SqliteConfig::from_toml_str("[litestar]\nsession_table = \"custom\"\n").unwrap();
        let expected = SqliteConfig {
            table: "custom".into(),
            ..SqliteConfig::default()
        };
        assert_eq!(json, expected);
        assert_eq!(toml, expected);
        // Another extension's section beside it is not ours to check.
        let other =
            SqliteConfig::from_json_str(r#"{"litestar": {}, "other_ext": {"x": 1}}"#).unwrap();
        assert_eq!(other, SqliteConfig::default());
        // A key another adapter honours is refused by name.
        let err = SqliteConfig::from_json_str(
            r#"{"litestar": {"session_table": "s", "fillfactor": 80}}"#,
        )
        .unwrap_err();
        assert!(
            matches!(&err, Error::UnknownConfigKeys { unknown, .. } if unknown == &["fillfactor"]),
            "{err}"
        );
        let err = SqliteConfig::from_json_str(r#"{"litestar": {"session_table": 7}}"#).unwrap_err();
        assert!(err.to_string().contains("session_table"), "{err}");
    }

    #[test]
    fn an_unknown_field_is_refused_by_name() {
        let err = SqliteConfig::from_json_str(r#"{"pool_sise": 4}"#).unwrap_err();
        assert!(err.to_string().contains("pool_sise"), "{err}");
        // Another adapter's spelling of a field is unknown here too.
        let err = SqliteConfig::from_toml_str("pool_timeout = 5").unwrap_err();
        assert!(err.to_string().contains("pool_timeout"), "{err}");
    }

    #[test]
    fn a_bad_value_names_its_field() {
        for (doc, field) in [
            (r#"{"pool_size": -1}"#, "pool_size"),
            (r#"{"pool_size": 0}"#, "pool_size"),
            (r#"{"wait_timeout": "soon"}"#, "wait_timeout"),
            (r#"{"wait_timeout": 0}"#, "wait_timeout"),
            (r#"{"busy_timeout": -2}"#, "busy_timeout"),
            (r#"{"busy_timeout": 3000000}"#, "busy_timeout"),
            (r#"{"cleanup_batch_size": 0}"#, "cleanup_batch_size"),
        ] {
            let err = SqliteConfig::from_json_str(doc).unwrap_err();
            assert!(
                matches!(&err, Error::InvalidConfig { field: f, .. } if f == field),
                "{doc}: {err}"
            );
        }
        let err = SqliteConfig::from_json_str(r#"{"table": "s; DROP TABLE users"}"#).unwrap_err();
        assert!(
            matches!(&err, Error::InvalidIdentifier { name, .. } if name == "s; DROP TABLE users"),
            "{err}"
        );
    }
}
