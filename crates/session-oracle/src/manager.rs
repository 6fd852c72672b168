//! The bb8 connection manager: connects, pings and closes connections off
//! the async runtime.

use std::fmt;
use std::sync::{Arc, Mutex};

use session_core::Error;

use crate::config::Credentials;
use crate::error::{ErrorCode, from_oracle, map_error};

/// A pooled Oracle connection.
///
/// The `oracle` driver's [`oracle::Connection`] is blocking; the store only
/// ever uses it inside `tokio::task::spawn_blocking`. It is held in an `Arc`
/// so the pool's health check can ping it on a blocking thread too.
///
/// Dropping it closes the session (ODPI-C's `dpiConn_release` logs off: a
/// network round trip). bb8 drops connections wherever it notices them
/// (its reaper for `idle_timeout` and `max_lifetime`, a failed ping, a full
/// pool), usually on a runtime worker and under the pool's lock, so the
/// `Drop` of this type moves the close to `spawn_blocking` when a tokio
/// runtime is present, and closes in place otherwise.
pub struct OracleConnection {
    /// Always `Some` until `drop` takes it.
    inner: Option<Arc<oracle::Connection>>,
}

impl OracleConnection {
    fn new(conn: oracle::Connection) -> Self {
        OracleConnection {
            inner: Some(Arc::new(conn)),
        }
    }

    fn shared(&self) -> &Arc<oracle::Connection> {
        match &self.inner {
            Some(inner) => inner,
            None => unreachable!("the connection is only taken by drop"),
        }
    }

    /// The driver connection. Its calls block: make them on a blocking
    /// thread, never on an async runtime's workers.
    pub fn connection(&self) -> &oracle::Connection {
        self.shared()
    }
}

impl Drop for OracleConnection {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.take() {
            release_off_runtime(inner);
        }
    }
}

/// Drops `value` (here: the last handle on a driver connection, whose drop
/// logs off) on a blocking thread when called on a tokio runtime, so no
/// runtime worker waits for the network; in place otherwise (no runtime,
/// or one that is shutting down and runs no more tasks).
pub(crate) fn release_off_runtime<T: Send + 'static>(value: T) {
    match tokio::runtime::Handle::try_current() {
        // A runtime that is shutting down drops the closure, and with it
        // `value`, instead of running it: the close then happens here.
        Ok(handle) => drop(handle.spawn_blocking(move || drop(value))),
        Err(_) => drop(value),
    }
}

impl fmt::Debug for OracleConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OracleConnection").finish_non_exhaustive()
    }
}

/// A handle on the last connection error of an [`OracleConnectionManager`],
/// so a store built [`from_pool`](crate::OracleStore::from_pool) can report why
/// the pool could not connect instead of a bare timeout (and name where it
/// connects in [`describe`](session_core::StoreAdmin::describe)).
#[derive(Clone, Default)]
pub struct ConnectErrors {
    last: Arc<Mutex<Option<Arc<oracle::Error>>>>,
    /// `` `connect string` as `user` ``; empty for a default handle.
    target: Arc<str>,
}

impl ConnectErrors {
    /// The error of the most recent failed connection attempt, cleared by
    /// the next successful one.
    pub fn last(&self) -> Option<Arc<oracle::Error>> {
        match self.last.lock() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Where the manager connects, `` `db:1521/FREEPDB1` as `app` ``; never
    /// the password. `None` for a handle not made by a manager.
    pub(crate) fn target(&self) -> Option<&str> {
        (!self.target.is_empty()).then_some(&*self.target)
    }

    fn record(&self, result: Option<Arc<oracle::Error>>) {
        match self.last.lock() {
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
    credentials: Credentials,
    last_error: ConnectErrors,
}

impl OracleConnectionManager {
    /// A manager connecting with `credentials`.
    pub fn new(credentials: Credentials) -> Self {
        let target = format!("`{}` as `{}`", credentials.connect_string, credentials.user);
        OracleConnectionManager {
            credentials,
            last_error: ConnectErrors {
                last: Arc::default(),
                target: target.into(),
            },
        }
    }

    /// Who connects where.
    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    /// A handle on the last connection error, for
    /// [`OracleStore::with_connect_errors`](crate::OracleStore::with_connect_errors).
    pub fn connect_errors(&self) -> ConnectErrors {
        self.last_error.clone()
    }

    /// Opens one connection on a blocking thread.
    pub(crate) async fn connect_blocking(&self) -> Result<OracleConnection, ConnectError> {
        let Credentials {
            user,
            password,
            connect_string,
        } = self.credentials.clone();
        let joined = tokio::task::spawn_blocking(move || {
            oracle::Connection::connect(user, password, connect_string)
        })
        .await;
        match joined {
            Ok(Ok(mut conn)) => {
                conn.set_autocommit(false);
                self.last_error.record(None);
                Ok(OracleConnection::new(conn))
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
            .field("credentials", &self.credentials)
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
                    let code = ErrorCode::of(&shared);
                    map_error(code, context, Box::new(shared))
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
        let inner = conn.shared().clone();
        match tokio::task::spawn_blocking(move || inner.ping()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(err)) => Err(ConnectError::Driver(Arc::new(err))),
            Err(join) => Err(ConnectError::Task(join.to_string())),
        }
    }

    fn has_broken(&self, conn: &mut OracleConnection) -> bool {
        // OCI_ATTR_SERVER_STATUS is client-side state: no round trip.
        !matches!(conn.connection().status(), Ok(oracle::ConnStatus::Normal))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::thread::{self, ThreadId};
    use std::time::Duration;

    use super::*;

    /// Reports the thread it is dropped on.
    struct Probe(mpsc::Sender<ThreadId>);

    impl Drop for Probe {
        fn drop(&mut self) {
            let _ = self.0.send(thread::current().id());
        }
    }

    /// Only a type with a `Drop` impl of its own satisfies `T: Drop`.
    #[allow(drop_bounds)]
    fn has_its_own_drop<T: Drop>() {}

    #[test]
    fn a_connection_has_a_drop_that_closes_it_off_the_runtime() {
        // Fails to compile without `impl Drop for OracleConnection`.
        has_its_own_drop::<OracleConnection>();
    }

    /// On a runtime (here the current-thread flavour, whose only worker is
    /// the test's own thread), the close runs on another thread: the
    /// worker never waits for the logoff.
    #[tokio::test(flavor = "current_thread")]
    async fn on_a_runtime_the_close_runs_on_a_blocking_thread() {
        let (tx, rx) = mpsc::channel();
        release_off_runtime(Probe(tx));
        let dropped_on = tokio::task::spawn_blocking(move || {
            rx.recv_timeout(Duration::from_secs(10))
                .expect("the value was dropped")
        })
        .await
        .unwrap();
        assert_ne!(dropped_on, thread::current().id());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn on_a_worker_of_a_multi_thread_runtime_too() {
        let (tx, rx) = mpsc::channel();
        let worker = tokio::spawn(async move {
            release_off_runtime(Probe(tx));
            thread::current().id()
        })
        .await
        .unwrap();
        let dropped_on = rx.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_ne!(dropped_on, worker);
    }

    #[test]
    fn without_a_runtime_it_closes_in_place() {
        let (tx, rx) = mpsc::channel();
        release_off_runtime(Probe(tx));
        assert_eq!(rx.try_recv().unwrap(), thread::current().id());
    }
}
