//! [`PostgresConfig`]: the table, its storage parameters, cleanup and the
//! store's own pool, in one plain struct.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use session_core::{DEFAULT_SESSION_TABLE, Error, ExtensionConfig, Result, StoreConfig, TableName};

/// The longest PostgreSQL identifier (`NAMEDATALEN - 1`).
pub(crate) const PG_IDENTIFIER_LIMIT: usize = 63;

const DEFAULT_FILLFACTOR: u8 = 80;
const DEFAULT_AUTOVACUUM_VACUUM_SCALE_FACTOR: f64 = 0.05;
const DEFAULT_AUTOVACUUM_ANALYZE_SCALE_FACTOR: f64 = 0.02;

/// Everything a [`PostgresStore`](crate::PostgresStore) is made with: the
/// session table (optionally `schema.table`), its storage parameters, the
/// cleanup batch size and the pool [`from_url`](crate::PostgresStore::from_url)
/// builds. Plain public fields with [`Default`]; checked by
/// [`validate`](StoreConfig::validate) when a store is made or the config
/// is loaded, every error naming its field.
///
/// Loaded with the [`StoreConfig`] loaders from its own fields (JSON, TOML,
/// a file, a `serde_json::Value`; durations as seconds or text such as
/// `"250ms"`; an unknown field is refused by name) or from SQLSpec's
/// extension config, `{"litestar": {...}}` with the keys `session_table`,
/// `fillfactor`, `autovacuum_vacuum_scale_factor` and
/// `autovacuum_analyze_scale_factor`, whose errors name `litestar.<key>`.
///
/// ```
/// use std::time::Duration;
/// use session_core::StoreConfig;
/// use session_postgres::PostgresConfig;
///
/// let config = PostgresConfig::from_toml_str(
///     "table = \"auth.sessions\"\nfillfactor = 90\npool_size = 32\nwait_timeout = \"2s\"\n",
/// )?;
/// assert_eq!(config.fillfactor, 90);
/// assert_eq!(config.wait_timeout, Duration::from_secs(2));
/// assert_eq!(config.cleanup_batch_size, 5_000); // the default
///
/// // SQLSpec's shape still loads.
/// let seed = PostgresConfig::from_json_str(
///     r#"{"litestar": {"session_table": "auth.sessions", "fillfactor": 90}}"#,
/// )?;
/// assert_eq!((seed.table.as_str(), seed.fillfactor), ("auth.sessions", 90));
///
/// // In code: struct update syntax.
/// let config = PostgresConfig { table: "app_sessions".into(), ..PostgresConfig::default() };
/// config.validate()?;
/// # Ok::<(), session_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PostgresConfig {
    /// The session table, `table` or `schema.table` (default
    /// `litestar_session`; SQLSpec's `session_table` is an alias). Each
    /// part a plain identifier; the derived index and tracking-table names
    /// must fit 63 characters, so the table part is at most 48.
    #[serde(alias = "session_table")]
    pub table: String,
    /// The table's fillfactor, 10..=100 (default 80, as SQLSpec).
    pub fillfactor: u8,
    /// The table's `autovacuum_vacuum_scale_factor`, 0..=1 (default 0.05).
    pub autovacuum_vacuum_scale_factor: f64,
    /// The table's `autovacuum_analyze_scale_factor`, 0..=1 (default 0.02).
    pub autovacuum_analyze_scale_factor: f64,
    /// Rows one cleanup statement of
    /// [`delete_expired`](session_core::Store::delete_expired) removes, at
    /// least 1 (default 5,000). Each batch is its own short transaction.
    pub cleanup_batch_size: u32,
    /// The most connections the store's own pool holds (default 16). Not
    /// used by [`PostgresStore::new`](crate::PostgresStore::new), which
    /// takes the application's pool.
    pub pool_size: u32,
    /// How long a call waits for a free pooled connection before
    /// [`Error::PoolTimeout`] (default 5 s).
    #[serde(with = "session_core::duration")]
    pub wait_timeout: Duration,
    /// How long opening one connection may take, TCP and authentication
    /// included (default 5 s).
    #[serde(with = "session_core::duration")]
    pub connect_timeout: Duration,
    /// Whether a pooled connection is checked with an empty query before
    /// each use (default false). Closed connections are always discarded;
    /// the check also catches half-open ones (a silently dropped network
    /// path) at the price of one extra round trip per call.
    pub test_on_checkout: bool,
    /// The root certificate(s) a TLS connection trusts (a PEM file), or
    /// `system` for the system's trusted roots: libpq's `sslrootcert`,
    /// for when the URL has none (the URL's `sslrootcert` wins). Default
    /// none. With a root certificate, `sslmode` `prefer` and `require`
    /// check the server's certificate chain as `verify-ca` does (as
    /// libpq); see `docs/postgres.md` for every mode. The file is read
    /// when the store is made: a missing or unreadable one is an
    /// [`Error::InvalidConfig`] for `ssl_root_cert` naming the path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ssl_root_cert: Option<PathBuf>,
}

impl Default for PostgresConfig {
    fn default() -> Self {
        PostgresConfig {
            table: DEFAULT_SESSION_TABLE.to_owned(),
            fillfactor: DEFAULT_FILLFACTOR,
            autovacuum_vacuum_scale_factor: DEFAULT_AUTOVACUUM_VACUUM_SCALE_FACTOR,
            autovacuum_analyze_scale_factor: DEFAULT_AUTOVACUUM_ANALYZE_SCALE_FACTOR,
            cleanup_batch_size: 5_000,
            pool_size: 16,
            wait_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            test_on_checkout: false,
            ssl_root_cert: None,
        }
    }
}

impl PostgresConfig {
    /// The session table as a validated [`TableName`].
    pub(crate) fn table_name(&self) -> Result<TableName> {
        TableName::new_qualified(&self.table, PG_IDENTIFIER_LIMIT)
    }
}

impl StoreConfig for PostgresConfig {
    const EXTENSION_KEYS: &'static [&'static str] = &[
        "session_table",
        "fillfactor",
        "autovacuum_vacuum_scale_factor",
        "autovacuum_analyze_scale_factor",
    ];

    fn from_extension(ext: &ExtensionConfig) -> Result<Self> {
        ext.ensure_only(Self::EXTENSION_KEYS)?;
        let fillfactor = ext.int_in("fillfactor", 10..=100, i64::from(DEFAULT_FILLFACTOR))?;
        Ok(PostgresConfig {
            table: ext
                .qualified_session_table(PG_IDENTIFIER_LIMIT)?
                .qualified(),
            // 10..=100 always fits a u8.
            fillfactor: u8::try_from(fillfactor).unwrap_or(DEFAULT_FILLFACTOR),
            autovacuum_vacuum_scale_factor: ext.float_in(
                "autovacuum_vacuum_scale_factor",
                0.0..=1.0,
                DEFAULT_AUTOVACUUM_VACUUM_SCALE_FACTOR,
            )?,
            autovacuum_analyze_scale_factor: ext.float_in(
                "autovacuum_analyze_scale_factor",
                0.0..=1.0,
                DEFAULT_AUTOVACUUM_ANALYZE_SCALE_FACTOR,
            )?,
            ..PostgresConfig::default()
        })
    }

    fn validate(&self) -> Result<()> {
        self.table_name()?;
        if !(10..=100).contains(&self.fillfactor) {
            return Err(Error::invalid_config(
                "fillfactor",
                format!("{} is out of range; expected 10..=100", self.fillfactor),
            ));
        }
        for (field, value) in [
            (
                "autovacuum_vacuum_scale_factor",
                self.autovacuum_vacuum_scale_factor,
            ),
            (
                "autovacuum_analyze_scale_factor",
                self.autovacuum_analyze_scale_factor,
            ),
        ] {
            if !(value.is_finite() && (0.0..=1.0).contains(&value)) {
                return Err(Error::invalid_config(
                    field,
                    format!("{value} is out of range; expected 0..=1"),
                ));
            }
        }
        if self.cleanup_batch_size == 0 {
            return Err(Error::invalid_config(
                "cleanup_batch_size",
                "0 rows per batch; expected at least 1",
            ));
        }
        if self.pool_size == 0 {
            return Err(Error::invalid_config(
                "pool_size",
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid_and_as_documented() {
        let config = PostgresConfig::default();
        config.validate().unwrap();
        assert_eq!(config.table_name().unwrap().qualified(), "litestar_session");
        assert_eq!(
            (
                config.fillfactor,
                config.cleanup_batch_size,
                config.pool_size
            ),
            (80, 5_000, 16)
        );
        assert_eq!(
            (
                config.autovacuum_vacuum_scale_factor,
                config.autovacuum_analyze_scale_factor
            ),
            (0.05, 0.02)
        );
        assert_eq!(
            (config.wait_timeout, config.connect_timeout),
            (Duration::from_secs(5), Duration::from_secs(5))
        );
        assert!(!config.test_on_checkout);
        assert_eq!(config.ssl_root_cert, None);
        assert_eq!(
            PostgresConfig::from_value(serde_json::Value::Null).unwrap(),
            config
        );
    }

    #[test]
    fn own_fields_load_from_json_and_toml() {
        let json = PostgresConfig::from_json_str(
            r#"{"table": "auth.sessions", "fillfactor": 70, "autovacuum_vacuum_scale_factor": 0.1,
                "autovacuum_analyze_scale_factor": 0.5, "cleanup_batch_size": 100, "pool_size": 4,
                "wait_timeout": 0.25, "connect_timeout": "3s", "test_on_checkout": true,
                "ssl_root_cert": "/etc/ssl/db-root.crt"}"#,
        )
        .unwrap();
        let toml = PostgresConfig::from_toml_str(
            "table = \"auth.sessions\"\nfillfactor = 70\nautovacuum_vacuum_scale_factor = 0.1\n\
             autovacuum_analyze_scale_factor = 0.5\ncleanup_batch_size = 100\npool_size = 4\n\
             wait_timeout = \"250ms\"\nconnect_timeout = 3\ntest_on_checkout = true\n\
             ssl_root_cert = \"/etc/ssl/db-root.crt\"\n",
        )
        .unwrap();
        let expected = PostgresConfig {
            table: "auth.sessions".into(),
            fillfactor: 70,
            autovacuum_vacuum_scale_factor: 0.1,
            autovacuum_analyze_scale_factor: 0.5,
            cleanup_batch_size: 100,
            pool_size: 4,
            wait_timeout: Duration::from_millis(250),
            connect_timeout: Duration::from_secs(3),
            test_on_checkout: true,
            ssl_root_cert: Some("/etc/ssl/db-root.crt".into()),
        };
        assert_eq!(json, expected);
        assert_eq!(toml, expected);
        // SQLSpec's name for the table is an alias.
        let aliased = PostgresConfig::from_json_str(r#"{"session_table": "s"}"#).unwrap();
        assert_eq!(aliased.table, "s");
        // And the struct writes back what it reads.
        let written = serde_json::to_value(&expected).unwrap();
        assert_eq!(PostgresConfig::from_value(written).unwrap(), expected);
    }

    #[test]
    fn the_extension_shape_still_loads() {
        let json = PostgresConfig::from_json_str(
            r#"{"litestar": {"session_table": "app.sessions", "fillfactor": 90,
                "autovacuum_vacuum_scale_factor": 0.1}, "other_extension": {"x": 1}}"#,
        )
        .unwrap();
        assert_eq!(json.table, "app.sessions");
        assert_eq!(json.fillfactor, 90);
        assert_eq!(json.autovacuum_vacuum_scale_factor, 0.1);
        assert_eq!(json.autovacuum_analyze_scale_factor, 0.02);
        let toml = PostgresConfig::from_toml_str("[litestar]\nsession_table = \"app.sessions\"\n")
            .unwrap();
        assert_eq!(toml.table, "app.sessions");
    }

    #[test]
    fn an_unknown_field_is_refused_by_name() {
        let err = PostgresConfig::from_json_str(r#"{"pool_sise": 4}"#).unwrap_err();
        assert!(err.to_string().contains("pool_sise"), "{err}");
        let err = PostgresConfig::from_toml_str("delete_batch_size = 10\n").unwrap_err();
        assert!(err.to_string().contains("delete_batch_size"), "{err}");
        // Keys of another adapter in the extension shape.
        let err =
            PostgresConfig::from_json_str(r#"{"litestar": {"in_memory": true}}"#).unwrap_err();
        assert!(matches!(err, Error::UnknownConfigKeys { .. }), "{err:?}");
    }

    #[test]
    fn a_bad_value_names_its_field() {
        for (doc, field) in [
            (r#"{"fillfactor": 5}"#, "fillfactor"),
            (r#"{"fillfactor": 300}"#, "fillfactor"),
            (r#"{"fillfactor": "80"}"#, "fillfactor"),
            (
                r#"{"autovacuum_vacuum_scale_factor": 1.5}"#,
                "autovacuum_vacuum_scale_factor",
            ),
            (
                r#"{"autovacuum_analyze_scale_factor": -0.1}"#,
                "autovacuum_analyze_scale_factor",
            ),
            (r#"{"cleanup_batch_size": 0}"#, "cleanup_batch_size"),
            (r#"{"pool_size": 0}"#, "pool_size"),
            (r#"{"wait_timeout": 0}"#, "wait_timeout"),
            (r#"{"connect_timeout": "soon"}"#, "connect_timeout"),
            (r#"{"test_on_checkout": "yes"}"#, "test_on_checkout"),
            (r#"{"litestar": {"fillfactor": 9}}"#, "litestar.fillfactor"),
        ] {
            match PostgresConfig::from_json_str(doc) {
                Err(Error::InvalidConfig { field: f, .. }) => assert_eq!(f, field, "{doc}"),
                other => panic!("{doc}: expected InvalidConfig, got {other:?}"),
            }
        }
        let err = PostgresConfig::from_json_str(r#"{"table": "a;b"}"#).unwrap_err();
        assert!(matches!(err, Error::InvalidIdentifier { .. }), "{err:?}");
    }
}
