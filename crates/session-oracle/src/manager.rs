//! The bb8 connection manager: connects and pings off the async runtime.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use session_core::Error;

use crate::error::from_oracle;

/// Connection settings of an [`OracleStore`](crate::OracleStore)'s pool.
///
/// The password is never printed (`Debug` shows `"***"`).
///
/// ```
/// use std::time::Duration;
/// use session_oracle::ConnectOptions;
///
/// let options = ConnectOptions::new("app_user", "secret", "db.internal:1521/FREEPDB1")
///     .pool_min(2)
///     .pool_max(20)
///     .connection_timeout(Duration::from_secs(10));
/// assert!(!format!("{options:?}").contains("secret"));
/// ```
#[derive(Clone)]
pub struct ConnectOptions {
    pub(crate) user: String,
    pub(crate) password: String,
    pub(crate) connect_string: String,
    pub(crate) pool_min: u32,
    pub(crate) pool_max: u32,
    pub(crate) connection_timeout: Duration,
    pub(crate) test_on_check_out: bool,
}

impl ConnectOptions {
    /// Connects as `user`/`password` to `connect_string`: an Easy Connect
    /// string (`host:port/service_name`), a TNS alias from `tnsnames.ora`,
    /// or a full connect descriptor. Pool of 0 to 10 connections, 30 s
    /// connection timeout, connections pinged on checkout.
    pub fn new(
        user: impl Into<String>,
        password: impl Into<String>,
        connect_string: impl Into<String>,
    ) -> Self {
        ConnectOptions {
            user: user.into(),
            password: password.into(),
            connect_string: connect_string.into(),
            pool_min: 0,
            pool_max: 10,
            connection_timeout: Duration::from_secs(30),
            test_on_check_out: true,
        }
    }

    /// Idle connections the pool keeps open (default 0). Must not exceed
    /// [`pool_max`](Self::pool_max).
    pub fn pool_min(mut self, min: u32) -> Self {
        self.pool_min = min;
        self
    }

    /// Most connections the pool opens (default 10, at least 1).
    pub fn pool_max(mut self, max: u32) -> Self {
        self.pool_max = max;
        self
    }

    /// How long an operation waits for a connection, and how long the
    /// first connection at construction may take (default 30 s, non-zero).
    pub fn connection_timeout(mut self, timeout: Duration) -> Self {
        self.connection_timeout = timeout;
        self
    }

    /// Whether a connection is pinged (one round trip) before each use
    /// (default true). Turning it off saves the round trip; a connection
    /// the database dropped then fails one operation before it is
    /// discarded.
    pub fn test_on_check_out(mut self, test: bool) -> Self {
        self.test_on_check_out = test;
        self
    }

    /// The connect string.
    pub fn connect_string(&self) -> &str {
        &self.connect_string
    }

    /// The user name.
    pub fn user(&self) -> &str {
        &self.user
    }

    pub(crate) fn validate(&self) -> Result<(), Error> {
        if self.pool_max == 0 {
            return Err(Error::invalid_config("pool_max", "must be at least 1"));
        }
        if self.pool_min > self.pool_max {
            return Err(Error::invalid_config(
                "pool_min",
                format!(
                    "{} is more than pool_max ({})",
                    self.pool_min, self.pool_max
                ),
            ));
        }
        if self.connection_timeout.is_zero() {
            return Err(Error::invalid_config(
                "connection_timeout",
                "must be longer than zero",
            ));
        }
        if self.user.is_empty() {
            return Err(Error::invalid_config("user", "must not be empty"));
        }
        Ok(())
    }

    pub(crate) fn describe(&self) -> String {
        format!("connect to `{}` as `{}`", self.connect_string, self.user)
    }
}

impl fmt::Debug for ConnectOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectOptions")
            .field("user", &self.user)
            .field("password", &"***")
            .field("connect_string", &self.connect_string)
            .field("pool_min", &self.pool_min)
            .field("pool_max", &self.pool_max)
            .field("connection_timeout", &self.connection_timeout)
            .field("test_on_check_out", &self.test_on_check_out)
            .finish()
    }
}

/// A pooled Oracle connection.
///
/// The `oracle` driver's [`oracle::Connection`] is blocking; the store only
/// ever uses it inside `tokio::task::spawn_blocking`. It is held in an `Arc`
/// so the pool's health check can ping it on a blocking thread too.
pub struct OracleConnection {
    inner: Arc<oracle::Connection>,
}

impl OracleConnection {
    /// The driver connection. Its calls block: make them on a blocking
    /// thread, never on an async runtime's workers.
    pub fn connection(&self) -> &oracle::Connection {
        &self.inner
    }
}

impl fmt::Debug for OracleConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OracleConnection").finish_non_exhaustive()
    }
}

/// A handle on the last connection error of an [`OracleConnectionManager`],
/// so a store built [`from_pool`](crate::OracleStore::from_pool) can report why
/// the pool could not connect instead of a bare timeout.
#[derive(Clone, Default)]
pub struct ConnectErrors(Arc<Mutex<Option<Arc<oracle::Error>>>>);

impl ConnectErrors {
    /// The error of the most recent failed connection attempt, cleared by
    /// the next successful one.
    pub fn last(&self) -> Option<Arc<oracle::Error>> {
        match self.0.lock() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn record(&self, result: Option<Arc<oracle::Error>>) {
        match self.0.lock() {
            Ok(mut guard) => *guard = result,
            Err(poisoned) => *poisoned.into_inner() = result,
        }
    }
}

impl fmt::Debug for ConnectErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectErrors")
            .field("has_error", &self.last().is_some())
            .finish()
    }
}

/// A [`bb8::ManageConnection`] for the `oracle` driver.
///
/// `connect` and the `is_valid` ping run on `tokio::task::spawn_blocking`;
/// `has_broken` reads the connection's client-side status (no round trip).
/// Connections are opened with autocommit off: the store commits each
/// operation itself.
pub struct OracleConnectionManager {
    options: ConnectOptions,
    last_error: ConnectErrors,
}

impl OracleConnectionManager {
    /// A manager connecting with `options`.
    pub fn new(options: ConnectOptions) -> Self {
        OracleConnectionManager {
            options,
            last_error: ConnectErrors::default(),
        }
    }

    /// The connection settings.
    pub fn options(&self) -> &ConnectOptions {
        &self.options
    }

    /// A handle on the last connection error, for
    /// [`OracleStore::with_connect_errors`](crate::OracleStore::with_connect_errors).
    pub fn connect_errors(&self) -> ConnectErrors {
        self.last_error.clone()
    }

    /// Opens one connection on a blocking thread.
    pub(crate) async fn connect_blocking(&self) -> Result<OracleConnection, ConnectError> {
        let user = self.options.user.clone();
        let password = self.options.password.clone();
        let connect_string = self.options.connect_string.clone();
        let joined = tokio::task::spawn_blocking(move || {
            oracle::Connection::connect(user, password, connect_string)
        })
        .await;
        match joined {
            Ok(Ok(mut conn)) => {
                conn.set_autocommit(false);
                self.last_error.record(None);
                Ok(OracleConnection {
                    inner: Arc::new(conn),
                })
            }
            Ok(Err(err)) => {
                let err = Arc::new(err);
                self.last_error.record(Some(err.clone()));
                Err(ConnectError::Driver(err))
            }
            Err(join) => Err(ConnectError::Task(join.to_string())),
        }
    }
}

impl fmt::Debug for OracleConnectionManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OracleConnectionManager")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// Why the manager could not open or check a connection.
#[derive(Debug, Clone)]
pub enum ConnectError {
    /// The driver's error (shared: the manager also keeps it as the last
    /// connection error).
    Driver(Arc<oracle::Error>),
    /// The blocking task running the driver call did not complete.
    Task(String),
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectError::Driver(err) => write!(f, "{err}"),
            ConnectError::Task(why) => write!(f, "the blocking connection task failed: {why}"),
        }
    }
}

impl std::error::Error for ConnectError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConnectError::Driver(err) => Some(err.as_ref()),
            ConnectError::Task(_) => None,
        }
    }
}

impl ConnectError {
    /// The store's error for this failure while `context`.
    pub(crate) fn into_error(self, context: &str) -> Error {
        match self {
            ConnectError::Driver(err) => match Arc::try_unwrap(err) {
                Ok(err) => from_oracle(err, context),
                Err(shared) => {
                    let code = crate::error::ErrorCode::of(&shared);
                    crate::error::map_error(code, context, Box::new(shared))
                }
            },
            ConnectError::Task(why) => Error::connection(
                crate::BACKEND,
                context.to_owned(),
                std::io::Error::other(why),
            ),
        }
    }
}

impl bb8::ManageConnection for OracleConnectionManager {
    type Connection = OracleConnection;
    type Error = ConnectError;

    async fn connect(&self) -> Result<OracleConnection, ConnectError> {
        self.connect_blocking().await
    }

    async fn is_valid(&self, conn: &mut OracleConnection) -> Result<(), ConnectError> {
        let inner = conn.inner.clone();
        match tokio::task::spawn_blocking(move || inner.ping()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(err)) => Err(ConnectError::Driver(Arc::new(err))),
            Err(join) => Err(ConnectError::Task(join.to_string())),
        }
    }

    fn has_broken(&self, conn: &mut OracleConnection) -> bool {
        // OCI_ATTR_SERVER_STATUS is client-side state: no round trip.
        !matches!(conn.inner.status(), Ok(oracle::ConnStatus::Normal))
    }
}
