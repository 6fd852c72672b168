//! [`OracleConfig`], the store's settings (serde), and [`Credentials`],
//! who connects where (never serialized, the password never printed).

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use session_core::{
    DEFAULT_SESSION_TABLE, Error, ExtensionConfig, Result, SESSION_TABLE_KEY, StoreConfig,
    TableName,
};

use crate::MAX_IDENTIFIER_LEN;
use crate::reserved::refuse_reserved;

/// The `litestar` extension key that turns on the In-Memory column store.
const IN_MEMORY_KEY: &str = "in_memory";

/// The configuration of an [`OracleStore`](crate::OracleStore): the table,
/// the In-Memory flag, the pool and the cleanup batch. Plain public
/// fields, `Default`, serde; unknown fields are refused by name, durations
/// are seconds (`30`) or text (`"30s"`).
///
/// SQLSpec's extension config, `{"litestar": {"session_table": ...,
/// "in_memory": ...}}`, loads too (any other key of that section is
/// refused by name). Credentials are not part of it: see [`Credentials`].
///
/// ```
/// use std::time::Duration;
/// use session_core::StoreConfig;
/// use session_oracle::OracleConfig;
///
/// let config = OracleConfig::from_toml_str(
///     "table = \"app_sessions\"\nin_memory = true\npool_size = 20\nwait_timeout = \"5s\"\n",
/// )
/// .unwrap();
/// assert_eq!(config.pool_size, 20);
/// assert_eq!(config.wait_timeout, Duration::from_secs(5));
///
/// // SQLSpec's shape still loads.
/// let seed = OracleConfig::from_json_str(
///     r#"{"litestar": {"session_table": "app_sessions", "in_memory": true}}"#,
/// )
/// .unwrap();
/// assert_eq!((seed.table.as_str(), seed.in_memory), ("app_sessions", true));
///
/// let err = OracleConfig::from_json_str(r#"{"pool_max": 20}"#).unwrap_err();
/// assert!(err.to_string().contains("pool_max"), "{err}");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OracleConfig {
    /// The session table, default `litestar_session` (SQLSpec's
    /// `session_table` is an alias). An unqualified identifier; see
    /// [`MAX_IDENTIFIER_LEN`](crate::MAX_IDENTIFIER_LEN).
    #[serde(alias = "session_table")]
    pub table: String,
    /// Create the table `INMEMORY` (Oracle Database In-Memory: Enterprise
    /// Edition and a separate license). Default false.
    pub in_memory: bool,
    /// Most connections the pool opens (default 10, at least 1).
    pub pool_size: u32,
    /// Idle connections the pool keeps open (default 0, at most
    /// `pool_size`).
    pub pool_min: u32,
    /// How long an operation waits for a pooled connection (default 30 s,
    /// non-zero).
    #[serde(with = "session_core::duration")]
    pub wait_timeout: Duration,
    /// How long opening the first connection, when the store is made, may
    /// take (default 30 s, non-zero).
    #[serde(with = "session_core::duration")]
    pub connect_timeout: Duration,
    /// Ping a pooled connection (one round trip) before each use (default
    /// true). Without it a connection the database dropped fails one
    /// operation before it is discarded.
    pub test_on_checkout: bool,
    /// Rows one cleanup transaction deletes at most (default 1000, at
    /// least 1).
    pub cleanup_batch_size: u32,
}

impl Default for OracleConfig {
    fn default() -> Self {
        OracleConfig {
            table: DEFAULT_SESSION_TABLE.to_owned(),
            in_memory: false,
            pool_size: 10,
            pool_min: 0,
            wait_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(30),
            test_on_checkout: true,
            cleanup_batch_size: session_core::admin::DEFAULT_CLEANUP_BATCH_SIZE,
        }
    }
}

impl OracleConfig {
    /// [`table`](Self::table) validated as an Oracle identifier, before any
    /// SQL is built from it: a plain identifier, within the length limits
    /// (see [`MAX_IDENTIFIER_LEN`](crate::MAX_IDENTIFIER_LEN)), and not one
    /// of Oracle's reserved words
    /// ([`ORACLE_RESERVED_WORDS`](crate::ORACLE_RESERVED_WORDS): `session`,
    /// `user`, `level`, `size`, `comment`, ...), which Oracle would refuse
    /// only later, in the DDL.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidIdentifier`] naming the table (and, for a reserved
    /// word, the word).
    ///
    /// ```
    /// use session_oracle::OracleConfig;
    ///
    /// let config = OracleConfig { table: "session".into(), ..OracleConfig::default() };
    /// let err = config.table_name().unwrap_err();
    /// assert!(err.to_string().contains("`SESSION` is an Oracle reserved word"), "{err}");
    /// ```
    pub fn table_name(&self) -> Result<TableName> {
        let table = TableName::new(&self.table, MAX_IDENTIFIER_LEN)?;
        refuse_reserved(table.table())?;
        if let Some(schema) = table.schema() {
            refuse_reserved(schema)?;
        }
        Ok(table)
    }
}

impl StoreConfig for OracleConfig {
    const EXTENSION_KEYS: &'static [&'static str] = &[SESSION_TABLE_KEY, IN_MEMORY_KEY];

    fn from_extension(ext: &ExtensionConfig) -> Result<Self> {
        ext.ensure_only(Self::EXTENSION_KEYS)?;
        Ok(OracleConfig {
            table: ext.session_table(MAX_IDENTIFIER_LEN)?.qualified(),
            in_memory: ext.bool(IN_MEMORY_KEY, false)?,
            ..Self::default()
        })
    }

    fn validate(&self) -> Result<()> {
        self.table_name()?;
        if self.pool_size == 0 {
            return Err(Error::invalid_config("pool_size", "must be at least 1"));
        }
        if self.pool_min > self.pool_size {
            return Err(Error::invalid_config(
                "pool_min",
                format!(
                    "{} is more than pool_size ({})",
                    self.pool_min, self.pool_size
                ),
            ));
        }
        for (field, value) in [
            ("wait_timeout", self.wait_timeout),
            ("connect_timeout", self.connect_timeout),
        ] {
            if value.is_zero() {
                return Err(Error::invalid_config(field, "must be longer than zero"));
            }
        }
        if self.cleanup_batch_size == 0 {
            return Err(Error::invalid_config(
                "cleanup_batch_size",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}

/// Who connects where: the user, the password and the connect string. Not
/// part of [`OracleConfig`] (a config file never holds the password);
/// `Debug` shows the password as `"***"`.
///
/// ```
/// use session_oracle::Credentials;
///
/// let credentials = Credentials::new("app_user", "secret", "db.internal:1521/FREEPDB1");
/// assert_eq!(credentials.connect_string(), "db.internal:1521/FREEPDB1");
/// assert!(!format!("{credentials:?}").contains("secret"));
/// ```
#[derive(Clone)]
pub struct Credentials {
    pub(crate) user: String,
    pub(crate) password: String,
    pub(crate) connect_string: String,
}

impl Credentials {
    /// Connects as `user`/`password` to `connect_string`: an Easy Connect
    /// string (`host:port/service_name`), a TNS alias from `tnsnames.ora`,
    /// or a full connect descriptor.
    pub fn new(
        user: impl Into<String>,
        password: impl Into<String>,
        connect_string: impl Into<String>,
    ) -> Self {
        Credentials {
            user: user.into(),
            password: password.into(),
            connect_string: connect_string.into(),
        }
    }

    /// The credentials of an `oracle://USER@HOST:PORT/SERVICE` URL (or
    /// `oracle://USER@TNS_ALIAS`), the password from the `ORACLE_PASSWORD`
    /// environment variable. A password in the URL is refused.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] for `database_url` (a malformed URL, a
    /// password in it; the message never repeats the password) or for
    /// `ORACLE_PASSWORD` (not set).
    pub fn from_url(url: &str) -> Result<Self> {
        crate::connector::credentials(url, || std::env::var("ORACLE_PASSWORD").ok())
    }

    /// The user name.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The connect string.
    pub fn connect_string(&self) -> &str {
        &self.connect_string
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.user.is_empty() {
            return Err(Error::invalid_config("user", "must not be empty"));
        }
        Ok(())
    }

    /// What is connected to, for errors and logs: never the password.
    pub(crate) fn describe(&self) -> String {
        format!("connect to `{}` as `{}`", self.connect_string, self.user)
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"***")
            .field("connect_string", &self.connect_string)
            .finish()
    }
}
