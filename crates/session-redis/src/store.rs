//! [`RedisStore`]: the store, its connection (one server or a cluster) and
//! the [`Store`] and [`StoreAdmin`] impls.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::{Cmd, RedisError, RedisFuture, Script, Value};
use session_core::{
    Error, Result, Store, StoreAdmin, StoreConfig, async_trait, non_zero, validate_key,
};
use tracing::{Instrument, Span};

use crate::config::RedisConfig;
use crate::connector::{Target, parse_url};

/// The backend's name in errors and logs.
pub(crate) const BACKEND: &str = "redis";

/// The longest expiry sent (2^62 ms, about 146 million years): Redis
/// refuses an expiry time past `i64::MAX` milliseconds.
const MAX_EXPIRY_MS: u128 = 1 << 62;

/// Why [`delete_expired`](Store::delete_expired) has nothing to do.
const EXPIRES_BY_ITSELF: &str = "Redis expires keys itself (every key is written with `SET ... PX`), so there is nothing to delete";

/// The Lua script of the renewing read (`KEYS[1]`: the key, `ARGV[1]`:
/// the new expiry in ms): the value, and a new expiry for a key that has
/// one, atomically. (`GETEX` would give a key without expiry one.)
pub const RENEWING_GET_SCRIPT: &str = r"
local value = redis.call('GET', KEYS[1])
if value and redis.call('PTTL', KEYS[1]) ~= -1 then
    redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return value
";

/// The Lua script of compare-and-set (`KEYS[1]`: the key): writes
/// `ARGV[2]` (with an expiry of `ARGV[3]` ms, `0` for none) only over
/// exactly `ARGV[1]`; returns 1 if it wrote, else 0.
pub const COMPARE_AND_SET_SCRIPT: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
    return 0
end
if ARGV[3] == '0' then
    redis.call('SET', KEYS[1], ARGV[2])
else
    redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
end
return 1
";

/// A session store on Redis: one server through the redis crate's
/// [`ConnectionManager`] (one multiplexed connection, reconnected when
/// lost), or a Redis Cluster through its [`ClusterConnection`].
///
/// Every key is the configured [`prefix`](RedisConfig::prefix) followed by
/// the session key. Each operation is one round trip:
///
/// | operation | command |
/// | --- | --- |
/// | `get` | `GET`; with renewal a script: `GET`, and `PEXPIRE` if the key has an expiry |
/// | `set` | `SET key value [PX ms]` |
/// | `create` / `update` | `SET ... NX` / `SET ... XX` |
/// | `compare_and_set` | a script: `GET`, compare, `SET` |
/// | `delete`, `delete_live` | `UNLINK` (1 removed: it was live) |
/// | `exists`, `expires_in` | `EXISTS`, `PTTL` |
/// | `delete_all` | `SCAN MATCH prefix*` + `UNLINK` in batches, on every primary of a cluster |
/// | `delete_expired` | nothing: Redis expires keys itself; returns 0 |
///
/// Expiries are milliseconds, rounded up. Scripts run as `EVALSHA` (loaded
/// again after a server restart).
///
/// ```no_run
/// use std::time::Duration;
/// use session_core::{Bytes, Store};
/// use session_redis::{RedisConfig, RedisStore};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> session_core::Result<()> {
/// let store = RedisStore::open("redis://127.0.0.1:6379/0", RedisConfig::default()).await?;
/// store.set("sid", Bytes::from_static(b"{}"), Some(Duration::from_secs(3600))).await?;
/// assert!(store.exists("sid").await?);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisStore {
    link: Link,
    config: RedisConfig,
    shown: String,
    renewing_get: Script,
    compare_and_set: Script,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("target", &self.describe())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The store's way to its server: a connection manager (which reconnects
/// by itself), or a cluster connection the store replaces when it stops
/// answering.
#[derive(Clone)]
enum Link {
    Single(ConnectionManager),
    Cluster(Arc<ClusterLink>),
}

/// A cluster connection and the client to make a new one with.
///
/// The redis crate's cluster connection can stay stuck after a failover:
/// a slot-map refresh started by a burst of requests never ends and every
/// later request times out (seen with redis 1.8.1; a new connection
/// works). So a request that times out starts, in the background, one
/// new connection at a time, which replaces the stuck one.
struct ClusterLink {
    client: ClusterClient,
    conn: RwLock<ClusterConnection>,
    rebuilding: AtomicBool,
}

impl ClusterLink {
    fn current(&self) -> ClusterConnection {
        self.conn.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Starts making a new connection, unless one is being made.
    fn rebuild(self: &Arc<Self>, deadline: Duration, shown: &str) {
        if self.rebuilding.swap(true, Ordering::AcqRel) {
            return;
        }
        let link = Arc::clone(self);
        let shown = shown.to_owned();
        tokio::spawn(async move {
            match tokio::time::timeout(deadline, link.client.get_async_connection()).await {
                Ok(Ok(fresh)) => {
                    *link.conn.write().unwrap_or_else(|p| p.into_inner()) = fresh;
                    tracing::info!(backend = BACKEND, target = %shown, "made a new connection to the cluster");
                }
                Ok(Err(e)) => {
                    tracing::warn!(backend = BACKEND, target = %shown, error = %e, "could not make a new connection to the cluster");
                }
                Err(_) => {
                    tracing::warn!(backend = BACKEND, target = %shown, ?deadline, "no new connection to the cluster in time");
                }
            }
            link.rebuilding.store(false, Ordering::Release);
        });
    }
}

/// A connection for one call: one server or a cluster, both cheap to
/// clone (a handle on shared connections).
#[derive(Clone)]
enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

impl RedisStore {
    /// Opens a store on the Redis `url` names (see
    /// [`RedisConnector`](crate::RedisConnector) for the URL forms). One
    /// server is connected lazily: the first call proves it is there. A
    /// cluster is asked for its slot map now.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] for a malformed URL (naming the problem,
    /// never the password) or a bad config field;
    /// [`Error::Connection`] when no seed node of a cluster answers within
    /// the config's [`call_deadline`](RedisConfig::call_deadline).
    pub async fn open(url: &str, config: RedisConfig) -> Result<Self> {
        config.validate()?;
        let parsed = parse_url(url)?;
        if config.tls_ca_file.is_some() && !parsed.tls {
            return Err(Error::invalid_config(
                "tls_ca_file",
                "given, but the URL is not rediss:// (TLS): the file would not be used",
            ));
        }
        let link = match parsed.target {
            Target::Single(info) => {
                let client = match tls_certificates(&config)? {
                    #[cfg(feature = "tls")]
                    Some(certificates) => redis::Client::build_with_tls(*info, certificates)
                        .map_err(|e| Error::invalid_config("tls_ca_file", e.to_string()))?,
                    _ => redis::Client::open(*info)
                        .map_err(|e| Error::invalid_config("url", e.to_string()))?,
                };
                let manager_config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(config.connect_timeout))
                    .set_response_timeout(Some(config.response_timeout))
                    .set_number_of_retries(config.reconnect_attempts.saturating_sub(1) as usize)
                    .set_max_delay(config.reconnect_max_delay);
                let manager = ConnectionManager::new_lazy_with_config(client, manager_config)
                    .map_err(|e| {
                        Error::connection(BACKEND, format!("connect to {}", parsed.shown), e)
                    })?;
                Link::Single(manager)
            }
            Target::Cluster(seeds) => {
                if config.tls_ca_file.is_some() {
                    // The redis crate takes a cluster's own CA only with
                    // rustls; this crate's TLS is native-tls.
                    return Err(Error::invalid_config(
                        "tls_ca_file",
                        "not supported for a cluster: its nodes' certificates must chain to the system's roots",
                    ));
                }
                let client = ClusterClient::builder(seeds)
                    .connection_timeout(config.connect_timeout)
                    .response_timeout(config.response_timeout)
                    .retries(config.reconnect_attempts)
                    .max_retry_wait(
                        u64::try_from(config.reconnect_max_delay.as_millis()).unwrap_or(u64::MAX),
                    )
                    .build()
                    .map_err(|e| Error::invalid_config("url", e.to_string()))?;
                let context = || format!("connect to the cluster at {}", parsed.shown);
                let connected =
                    tokio::time::timeout(config.call_deadline(), client.get_async_connection())
                        .await
                        .map_err(|e| Error::connection(BACKEND, context(), e))?
                        .map_err(|e| Error::connection(BACKEND, context(), e))?;
                Link::Cluster(Arc::new(ClusterLink {
                    client,
                    conn: RwLock::new(connected),
                    rebuilding: AtomicBool::new(false),
                }))
            }
        };
        tracing::debug!(backend = BACKEND, target = %parsed.shown, prefix = %config.prefix, "opened a redis store");
        Ok(RedisStore {
            link,
            config,
            shown: parsed.shown,
            renewing_get: Script::new(RENEWING_GET_SCRIPT),
            compare_and_set: Script::new(COMPARE_AND_SET_SCRIPT),
        })
    }

    /// The configuration the store was made with.
    pub fn config(&self) -> &RedisConfig {
        &self.config
    }

    /// True if the store is on a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self.link, Link::Cluster(_))
    }

    /// The Redis key of a session key: the prefix, then the key.
    pub fn redis_key(&self, key: &str) -> String {
        let mut full = String::with_capacity(self.config.prefix.len() + key.len());
        full.push_str(&self.config.prefix);
        full.push_str(key);
        full
    }

    /// A connection for one call.
    fn conn(&self) -> Conn {
        match &self.link {
            Link::Single(manager) => Conn::Single(manager.clone()),
            Link::Cluster(link) => Conn::Cluster(link.current()),
        }
    }

    /// After a call timed out or lost its connection: on a cluster, a new
    /// connection (see [`ClusterLink`]).
    fn connection_failed(&self) {
        if let Link::Cluster(link) = &self.link {
            link.rebuild(self.config.call_deadline(), &self.shown);
        }
    }

    fn span(&self, op: &'static str) -> Span {
        tracing::debug_span!(
            "session_store",
            backend = BACKEND,
            op,
            prefix = %self.config.prefix
        )
    }

    /// Runs one call under the store's deadline, mapping its error.
    async fn call<T>(
        &self,
        op: &'static str,
        call: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T> {
        let deadline = self.config.call_deadline();
        match tokio::time::timeout(deadline, call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => {
                if e.is_timeout()
                    || e.is_connection_dropped()
                    || e.kind() == redis::ErrorKind::ClusterConnectionNotFound
                {
                    self.connection_failed();
                }
                Err(self.error(op, e))
            }
            Err(elapsed) => {
                self.connection_failed();
                tracing::warn!(op, target = %self.shown, ?deadline, "redis did not answer in time");
                Err(Error::connection(
                    BACKEND,
                    format!("{op} on {}: no answer within {deadline:?}", self.shown),
                    elapsed,
                ))
            }
        }
    }

    /// Runs one command.
    async fn query<T: redis::FromRedisValue>(&self, op: &'static str, cmd: &Cmd) -> Result<T> {
        let mut conn = self.conn();
        self.call(op, cmd.query_async(&mut conn)).await
    }

    /// A redis error as a store error: lost, refused and timed-out
    /// connections and failed TLS handshakes are [`Error::Connection`];
    /// what the server answered (and a reply of an unexpected type) is
    /// [`Error::Backend`].
    fn error(&self, op: &'static str, e: RedisError) -> Error {
        let context = format!("{op} on {}", self.shown);
        if e.is_io_error()
            || e.is_timeout()
            || e.is_connection_dropped()
            || e.is_connection_refusal()
            || e.is_cluster_error()
            // The client's own failures: a TLS handshake, a certificate.
            || e.kind() == redis::ErrorKind::Client
            || e.kind() == redis::ErrorKind::ClusterConnectionNotFound
            // A server that cannot serve now: loading its data after a
            // restart, a demoted or cut-off primary, a cluster failing over.
            || matches!(
                e.code(),
                Some("LOADING" | "MASTERDOWN" | "READONLY" | "TRYAGAIN" | "CLUSTERDOWN")
            )
        {
            tracing::warn!(op, target = %self.shown, error = %e, "redis connection failed");
            Error::connection(BACKEND, context, e)
        } else {
            tracing::warn!(op, target = %self.shown, error = %e, "redis command failed");
            Error::backend(BACKEND, context, e)
        }
    }

    /// `SET key value [PX ms] [NX|XX]`; true if it wrote.
    async fn write(
        &self,
        op: &'static str,
        key: &str,
        value: &[u8],
        expires_in: Option<Duration>,
        condition: Option<&'static str>,
    ) -> Result<bool> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.redis_key(key)).arg(value);
        if let Some(ms) = millis(expires_in) {
            cmd.arg("PX").arg(ms);
        }
        if let Some(condition) = condition {
            cmd.arg(condition);
        }
        let reply: Value = self.query(op, &cmd).await?;
        Ok(!matches!(reply, Value::Nil))
    }

    /// One slot of each primary that owns slots, from `CLUSTER SLOTS`: a
    /// command routed by that slot reaches the primary through the
    /// client's own slot map (whatever endpoints the cluster announces).
    async fn primaries(&self, conn: &mut ClusterConnection) -> Result<Vec<u16>> {
        let reply = self
            .call(
                "delete_all",
                conn.route_command(
                    redis::cmd("CLUSTER").arg("SLOTS").clone(),
                    RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random),
                ),
            )
            .await?;
        parse_slots(&reply).ok_or_else(|| {
            Error::backend(
                BACKEND,
                "delete_all: read the reply of CLUSTER SLOTS",
                format!("unexpected reply {reply:?}"),
            )
        })
    }

    /// One `SCAN` step on `node` (a cluster primary) or the one server.
    async fn scan_step(
        &self,
        conn: &mut Conn,
        node: Option<u16>,
        cursor: u64,
    ) -> Result<(u64, Vec<Vec<u8>>)> {
        let mut cmd = redis::cmd("SCAN");
        cmd.arg(cursor)
            .arg("MATCH")
            .arg(format!("{}*", self.config.prefix))
            .arg("COUNT")
            .arg(self.config.delete_all_batch_size);
        match (conn, node) {
            (Conn::Cluster(cluster), Some(slot)) => {
                let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(
                    Route::new(slot, SlotAddr::Master),
                ));
                let reply = self
                    .call("delete_all", cluster.route_command(cmd, routing))
                    .await?;
                redis::from_redis_value(reply)
                    .map_err(|e| Error::backend(BACKEND, "delete_all: read a SCAN reply", e))
            }
            (conn, _) => self.call("delete_all", cmd.query_async(conn)).await,
        }
    }

    /// Scans one server (or one cluster primary) and unlinks every key of
    /// this store's prefix; returns how many it unlinked.
    async fn unlink_prefix(&self, node: Option<u16>) -> Result<u64> {
        let mut conn = self.conn();
        let mut cursor = 0;
        let mut removed = 0;
        loop {
            let (next, keys) = self.scan_step(&mut conn, node, cursor).await?;
            if !keys.is_empty() {
                let n: u64 = self
                    .call(
                        "delete_all",
                        redis::cmd("UNLINK").arg(&keys).query_async(&mut conn),
                    )
                    .await?;
                removed += n;
            }
            if next == 0 {
                return Ok(removed);
            }
            cursor = next;
        }
    }
}

/// The first slot of each primary's ranges in a `CLUSTER SLOTS` reply
/// (`[[start, end, [host, port, id, ...], replicas...], ...]`), one per
/// primary (told apart by node id, or address); `None` for another shape.
fn parse_slots(reply: &Value) -> Option<Vec<u16>> {
    let Value::Array(ranges) = reply else {
        return None;
    };
    let mut seen: Vec<Vec<u8>> = Vec::new();
    let mut slots = Vec::new();
    for range in ranges {
        let Value::Array(fields) = range else {
            return None;
        };
        let (Some(Value::Int(start)), Some(Value::Array(primary))) =
            (fields.first(), fields.get(2))
        else {
            return None;
        };
        // The node id where given, else host and port.
        let node: Vec<u8> = match primary.get(2) {
            Some(Value::BulkString(id)) => id.clone(),
            _ => format!("{:?}{:?}", primary.first(), primary.get(1)).into_bytes(),
        };
        if !seen.contains(&node) {
            seen.push(node);
            slots.push(u16::try_from(*start).ok()?);
        }
    }
    Some(slots)
}

/// A duration as milliseconds for `PX`/`PEXPIRE`, rounded up; `None` for
/// "never expires".
fn millis(duration: Option<Duration>) -> Option<u64> {
    non_zero(duration).map(|d| {
        let ms = d.as_nanos().div_ceil(1_000_000).min(MAX_EXPIRY_MS);
        u64::try_from(ms).unwrap_or(u64::MAX)
    })
}

/// The CA certificates of [`RedisConfig::tls_ca_file`], read now so that
/// a missing or unreadable file is an error naming it.
#[cfg(feature = "tls")]
fn tls_certificates(config: &RedisConfig) -> Result<Option<redis::TlsCertificates>> {
    let Some(path) = &config.tls_ca_file else {
        return Ok(None);
    };
    let pem = std::fs::read(path).map_err(|e| {
        Error::invalid_config(
            "tls_ca_file",
            format!("cannot read {}: {e}", path.display()),
        )
    })?;
    Ok(Some(redis::TlsCertificates {
        client_tls: None,
        root_cert: Some(pem),
    }))
}

/// Without the `tls` feature there are never certificates (the config
/// refuses `tls_ca_file`).
#[cfg(not(feature = "tls"))]
fn tls_certificates(_config: &RedisConfig) -> Result<Option<()>> {
    Ok(None)
}

#[async_trait]
impl Store for RedisStore {
    async fn get(&self, key: &str, renew_for: Option<Duration>) -> Result<Option<Bytes>> {
        validate_key(key)?;
        async {
            match millis(renew_for) {
                None => {
                    self.query("get", redis::cmd("GET").arg(self.redis_key(key)))
                        .await
                }
                Some(ms) => {
                    let mut conn = self.conn();
                    let mut invocation = self.renewing_get.key(self.redis_key(key));
                    invocation.arg(ms);
                    self.call("get", invocation.invoke_async(&mut conn)).await
                }
            }
        }
        .instrument(self.span("get"))
        .await
    }

    async fn set(&self, key: &str, value: Bytes, expires_in: Option<Duration>) -> Result<()> {
        validate_key(key)?;
        self.write("set", key, &value, expires_in, None)
            .instrument(self.span("set"))
            .await
            .map(drop)
    }

    async fn delete(&self, key: &str) -> Result<()> {
        validate_key(key)?;
        self.query::<u64>("delete", redis::cmd("UNLINK").arg(self.redis_key(key)))
            .instrument(self.span("delete"))
            .await
            .map(drop)
    }

    async fn delete_all(&self) -> Result<()> {
        async {
            let removed = match self.conn() {
                Conn::Single(_) => self.unlink_prefix(None).await?,
                Conn::Cluster(mut cluster) => {
                    let mut removed = 0;
                    for slot in self.primaries(&mut cluster).await? {
                        removed += self.unlink_prefix(Some(slot)).await?;
                    }
                    removed
                }
            };
            tracing::debug!(removed, "deleted every key of the prefix");
            Ok(())
        }
        .instrument(self.span("delete_all"))
        .await
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        validate_key(key)?;
        self.query::<u64>("exists", redis::cmd("EXISTS").arg(self.redis_key(key)))
            .instrument(self.span("exists"))
            .await
            .map(|n| n > 0)
    }

    async fn expires_in(&self, key: &str) -> Result<Option<Duration>> {
        validate_key(key)?;
        let ms: i64 = self
            .query("expires_in", redis::cmd("PTTL").arg(self.redis_key(key)))
            .instrument(self.span("expires_in"))
            .await?;
        // -2: no such key; -1: no expiry.
        Ok(u64::try_from(ms).ok().map(Duration::from_millis))
    }

    async fn delete_expired(&self) -> Result<u64> {
        tracing::debug!(backend = BACKEND, "{EXPIRES_BY_ITSELF}");
        Ok(0)
    }

    fn expires_by_itself(&self) -> Option<&'static str> {
        Some(EXPIRES_BY_ITSELF)
    }

    async fn create(&self, key: &str, value: Bytes, expires_in: Option<Duration>) -> Result<bool> {
        validate_key(key)?;
        self.write("create", key, &value, expires_in, Some("NX"))
            .instrument(self.span("create"))
            .await
    }

    async fn update(&self, key: &str, value: Bytes, expires_in: Option<Duration>) -> Result<bool> {
        validate_key(key)?;
        self.write("update", key, &value, expires_in, Some("XX"))
            .instrument(self.span("update"))
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
        async {
            let mut conn = self.conn();
            let mut invocation = self.compare_and_set.key(self.redis_key(key));
            invocation
                .arg(expected.as_ref())
                .arg(value.as_ref())
                .arg(millis(expires_in).unwrap_or(0));
            let wrote: i64 = self
                .call("compare_and_set", invocation.invoke_async(&mut conn))
                .await?;
            Ok(wrote == 1)
        }
        .instrument(self.span("compare_and_set"))
        .await
    }

    async fn delete_live(&self, key: &str) -> Result<bool> {
        validate_key(key)?;
        self.query::<u64>("delete_live", redis::cmd("UNLINK").arg(self.redis_key(key)))
            .instrument(self.span("delete_live"))
            .await
            .map(|n| n > 0)
    }
}

#[async_trait]
impl StoreAdmin for RedisStore {
    fn describe(&self) -> String {
        let kind = if self.is_cluster() {
            "redis cluster"
        } else {
            "redis"
        };
        format!("{kind} prefix `{}` at {}", self.config.prefix, self.shown)
    }

    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn location(&self) -> String {
        self.config.prefix.clone()
    }

    /// Redis has no table: true if the server answers `PING` (on a
    /// cluster, every primary), so that the CLI proves its URL.
    async fn session_table_exists(&self) -> Result<bool> {
        async {
            let mut conn = self.conn();
            match &mut conn {
                Conn::Single(single) => {
                    self.call("ping", redis::cmd("PING").query_async::<()>(single))
                        .await?
                }
                Conn::Cluster(cluster) => self
                    .call(
                        "ping",
                        cluster.route_command(
                            redis::cmd("PING"),
                            RoutingInfo::MultiNode((
                                redis::cluster_routing::MultipleNodeRoutingInfo::AllMasters,
                                Some(redis::cluster_routing::ResponsePolicy::AllSucceeded),
                            )),
                        ),
                    )
                    .await
                    .map(drop)?,
            }
            Ok(true)
        }
        .instrument(self.span("ping"))
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiries_are_milliseconds_rounded_up() {
        assert_eq!(millis(None), None);
        assert_eq!(millis(Some(Duration::ZERO)), None);
        assert_eq!(millis(Some(Duration::from_nanos(1))), Some(1));
        assert_eq!(millis(Some(Duration::from_micros(1_500))), Some(2));
        assert_eq!(millis(Some(Duration::from_millis(1_500))), Some(1_500));
        assert_eq!(millis(Some(Duration::MAX)), Some(1 << 62));
    }

    #[test]
    fn cluster_slots_give_one_slot_per_primary() {
        let node = |host: &str, port: i64, id: &str| {
            Value::Array(vec![
                Value::BulkString(host.as_bytes().to_vec()),
                Value::Int(port),
                Value::BulkString(id.as_bytes().to_vec()),
            ])
        };
        let range = |start: i64, end: i64, primary: Value| {
            Value::Array(vec![Value::Int(start), Value::Int(end), primary])
        };
        let reply = Value::Array(vec![
            range(0, 5460, node("localhost", 7001, "a")),
            range(5461, 10922, node("localhost", 7002, "b")),
            range(10923, 12000, node("localhost", 7003, "c")),
            // A second range of the same primary: scanned once.
            range(12001, 16383, node("localhost", 7003, "c")),
        ]);
        assert_eq!(parse_slots(&reply), Some(vec![0, 5461, 10923]));
        assert_eq!(parse_slots(&Value::Nil), None);
        assert_eq!(parse_slots(&Value::Array(vec![Value::Int(1)])), None);
    }
}
