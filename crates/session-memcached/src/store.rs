//! [`MemcachedStore`]: the [`Store`] contract on memcached's meta protocol.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use memcache::exp::{
    Arithmetic, AsyncMetaClient, Delete, Get, GetStatus, Meta, MutationStatus, Op, OpResult, Set,
    Ttl,
};
use session_core::{Error, Result, Store, StoreConfig, async_trait, non_zero, validate_key};
use tokio::sync::{Semaphore, SemaphorePermit};
use tracing::{Instrument, Span};

use crate::config::MemcachedConfig;
use crate::connector::parse_url;
use crate::error::{BACKEND, client_error};
use crate::keys::{Expiry, deadline_of, far_deadline, generation_key, item_key, unix_now};

/// Why [`delete_expired`](Store::delete_expired) returns 0.
const EXPIRES_BY_ITSELF: &str = "memcached drops expired sessions by itself \
    (and, when its memory is full, evicts the least recently used, live ones included)";

/// What a memcached item takes besides its key and value: the item header
/// (48 bytes on 64-bit builds), the CAS (8), the client flags (4), the
/// key's NUL and the value's CRLF (3), with a few bytes to spare.
const ITEM_OVERHEAD: u64 = 72;

/// How often a conditional write is tried again after a concurrent write
/// changed the item between its read and its write.
const ATTEMPTS: usize = 16;

/// A session store on one or more memcached servers.
///
/// Every operation validates the key, then runs in one round trip where
/// memcached can do it natively (`get`, `set`, `delete`, `exists`,
/// `expires_in`, `create` of a new key) and in two where the contract needs
/// a read before a CAS-guarded write (`update`, `compare_and_set`,
/// `delete_live`, a renewing `get`). The namespace generation is read in
/// the same round trip as each operation (a pipelined `mg`), so a
/// [`delete_all`](Store::delete_all) by any process is seen by the next
/// operation of every other. See the crate docs for the design.
///
/// Cheap to clone: clones share the connections and the cached generation.
#[derive(Clone)]
pub struct MemcachedStore {
    client: AsyncMetaClient,
    config: Arc<MemcachedConfig>,
    address: Arc<str>,
    generation_key: Arc<[u8]>,
    /// The last generation seen; 0 before the first.
    generation: Arc<AtomicU64>,
    permits: Arc<Semaphore>,
}

impl std::fmt::Debug for MemcachedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemcachedStore")
            .field("address", &self.address)
            .field("prefix", &self.config.prefix)
            .finish_non_exhaustive()
    }
}

/// What a read found under a key.
enum Lookup {
    Missing,
    /// Past its exact expiry, not yet dropped by memcached.
    Expired {
        cas: Option<u64>,
    },
    Live(Item),
}

struct Item {
    value: Option<Vec<u8>>,
    cas: Option<u64>,
    /// The exact expiry, as time since the unix epoch; `None`: never.
    deadline: Option<Duration>,
}

impl MemcachedStore {
    /// Opens a store on the servers of `url`
    /// (`memcache://HOST[:PORT][,HOST[:PORT]...]`, port 11211 by default;
    /// keys are spread over several servers by rendezvous hashing).
    ///
    /// Resolves the servers' names (within `connect_timeout`) but connects
    /// lazily: a server that is down is reported by the first operation,
    /// as [`Error::Connection`], within `connect_timeout`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] for a malformed URL (field `url`) or
    /// configuration; [`Error::Connection`] when a name cannot be resolved.
    pub async fn connect(url: &str, config: MemcachedConfig) -> Result<Self> {
        config.validate()?;
        let servers = parse_url(url)?;
        let address: Arc<str> = servers.join(",").into();
        let pool = usize::try_from(config.pool_size).unwrap_or(usize::MAX);
        let builder = AsyncMetaClient::builder()
            .connect_timeout(Some(config.connect_timeout))
            .io_timeout(Some(config.response_timeout))
            .max_idle(pool)
            .max_connections(Some(pool));
        let client = tokio::time::timeout(
            config.connect_timeout,
            builder.connect_multiple_async(servers),
        )
        .await
        .map_err(|_| {
            Error::connection(
                BACKEND,
                format!("resolving {address}"),
                std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no answer within {:?}", config.connect_timeout),
                ),
            )
        })?
        .map_err(|e| client_error(e, "connect", &address))?;
        Ok(MemcachedStore {
            client,
            generation_key: generation_key(&config.prefix).into(),
            permits: Arc::new(Semaphore::new(pool)),
            config: Arc::new(config),
            address,
            generation: Arc::new(AtomicU64::new(0)),
        })
    }

    /// The servers, `host:port` joined with `,`.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.config.prefix
    }

    /// The configuration the store was made with.
    pub fn config(&self) -> &MemcachedConfig {
        &self.config
    }

    /// The memcached key an operation on `key` uses now (the current
    /// generation, as last seen), for tools and tests that look at the
    /// server directly. `None` before the first operation.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidKey`].
    pub fn memcached_key(&self, key: &str) -> Result<Option<String>> {
        validate_key(key)?;
        let generation = self.generation.load(Ordering::Acquire);
        Ok((generation != 0).then(|| {
            String::from_utf8_lossy(&item_key(&self.config.prefix, generation, key)).into_owned()
        }))
    }

    /// Refuses a value memcached would refuse as larger than its item size
    /// limit, before anything is sent: memcached, when it refuses a value
    /// as too large (or for want of memory), also deletes the item stored
    /// under the key, so a `create` or `compare_and_set` that must write
    /// nothing would delete the session.
    fn check_fits(&self, op: &'static str, key: &str, value: &[u8]) -> Result<()> {
        // The longest memcached key of `key`, in any generation.
        let key_len = item_key(&self.config.prefix, u64::MAX, key).len();
        let overhead = u64::try_from(key_len)
            .unwrap_or(u64::MAX)
            .saturating_add(ITEM_OVERHEAD);
        let size = u64::try_from(value.len()).unwrap_or(u64::MAX);
        if size.saturating_add(overhead) <= self.config.item_size_max {
            return Ok(());
        }
        Err(Error::backend(
            BACKEND,
            format!(
                "{op}: a value of {size} bytes is larger than the item size limit of {} bytes \
                 (item_size_max, memcached -I) less {overhead} bytes of key and item header; \
                 nothing was sent",
                self.config.item_size_max,
            ),
            "value too large for memcached's items",
        ))
    }

    pub(crate) fn span(&self, op: &'static str) -> Span {
        tracing::debug_span!(
            "session_store",
            backend = BACKEND,
            op,
            prefix = %self.config.prefix
        )
    }

    async fn permit(&self) -> Result<SemaphorePermit<'_>> {
        let waited = self.config.wait_timeout;
        match tokio::time::timeout(waited, self.permits.acquire()).await {
            Ok(Ok(permit)) => Ok(permit),
            // The semaphore is never closed.
            Ok(Err(_)) | Err(_) => Err(Error::PoolTimeout {
                backend: BACKEND,
                waited,
            }),
        }
    }

    /// One operation on its server.
    async fn run(&self, op: &'static str, operation: Op) -> Result<OpResult> {
        let _permit = self.permit().await?;
        self.client
            .run(operation)
            .await
            .map_err(|e| client_error(e, op, &self.address))
    }

    /// `build(memcached key of key)` in the current generation: pipelined
    /// with a read of the generation, and run again when that read shows
    /// another process moved it (the first run then wrote, if anything, to
    /// the old generation, which nothing reads any more). Returns the
    /// result and the memcached key it ran on.
    async fn in_generation(
        &self,
        op: &'static str,
        key: &str,
        build: impl Fn(Vec<u8>) -> Op,
    ) -> Result<(OpResult, Vec<u8>)> {
        for _ in 0..ATTEMPTS {
            let mut generation = self.generation.load(Ordering::Acquire);
            if generation == 0 {
                generation = self.load_generation(op).await?;
            }
            let memcached_key = item_key(&self.config.prefix, generation, key);
            let mut results = {
                let _permit = self.permit().await?;
                self.client
                    .run_batch([
                        Get::new(&*self.generation_key).into(),
                        build(memcached_key.clone()),
                    ])
                    .await
                    .map_err(|e| client_error(e, op, &self.address))?
            };
            let result = results.pop().ok_or_else(|| missing_result(op))?;
            let current = results.pop().ok_or_else(|| missing_result(op))?;
            let current = current.map_err(|e| client_error(e, op, &self.address))?;
            match parse_generation(&current, op)? {
                Some(now) if now == generation => {
                    let result = result.map_err(|e| client_error(e, op, &self.address))?;
                    return Ok((result, memcached_key));
                }
                Some(now) => {
                    tracing::debug!(
                        old = generation,
                        new = now,
                        "the namespace generation moved"
                    );
                    self.generation.store(now, Ordering::Release);
                }
                // Evicted (or never made): make a new one, newer than any.
                None => self.generation.store(0, Ordering::Release),
            }
        }
        Err(conflict(op, "the namespace generation kept changing"))
    }

    /// Reads the generation, or makes it (`ms ... ME`, the current time in
    /// microseconds: newer than any generation made before) if there is
    /// none.
    pub(crate) async fn load_generation(&self, op: &'static str) -> Result<u64> {
        for _ in 0..ATTEMPTS {
            let read = self.run(op, Get::new(&*self.generation_key).into()).await?;
            if let Some(generation) = parse_generation(&read, op)? {
                self.generation.store(generation, Ordering::Release);
                return Ok(generation);
            }
            let fresh = fresh_generation();
            let made = self
                .run(
                    op,
                    Set::new(&*self.generation_key, fresh.to_string())
                        .add()
                        .into(),
                )
                .await?;
            if mutation(&made, op)? == MutationStatus::Applied {
                tracing::debug!(generation = fresh, "made the namespace generation");
                self.generation.store(fresh, Ordering::Release);
                return Ok(fresh);
            }
        }
        Err(conflict(op, "the namespace generation kept changing"))
    }

    /// A read of `memcached_key` (no value unless `value`), with its TTL
    /// and CAS.
    async fn lookup_key(&self, op: &'static str, memcached_key: Vec<u8>) -> Result<Lookup> {
        let read = self.run(op, read_op(memcached_key, false)).await?;
        lookup(read, op)
    }

    async fn get_inner(&self, key: &str, renew_for: Option<Duration>) -> Result<Option<Bytes>> {
        validate_key(key)?;
        let (read, memcached_key) = self.in_generation("get", key, |k| read_op(k, true)).await?;
        let Lookup::Live(item) = lookup(read, "get")? else {
            return Ok(None);
        };
        let value = item.value.unwrap_or_default();
        if let (Some(renew_for), Some(_)) = (non_zero(renew_for), item.deadline) {
            // Rewrite the value just read with the new expiry, only if it
            // is still that item: a write that came between is newer than
            // this read and keeps the expiry it set.
            let cas = need_cas(item.cas, "get")?;
            let renewed = self
                .run(
                    "get",
                    write_op(memcached_key, &value, Some(renew_for))
                        .compare_cas(cas)
                        .into(),
                )
                .await?;
            if mutation(&renewed, "get")? != MutationStatus::Applied {
                tracing::debug!("not renewed: the session changed since it was read");
            }
        }
        Ok(Some(Bytes::from(value)))
    }

    async fn exists_inner(&self, key: &str) -> Result<Option<Item>> {
        validate_key(key)?;
        let (read, _) = self
            .in_generation("exists", key, |k| read_op(k, false))
            .await?;
        Ok(match lookup(read, "exists")? {
            Lookup::Live(item) => Some(item),
            _ => None,
        })
    }

    async fn create_inner(
        &self,
        key: &str,
        value: Bytes,
        expires_in: Option<Duration>,
    ) -> Result<bool> {
        validate_key(key)?;
        self.check_fits("create", key, &value)?;
        for _ in 0..ATTEMPTS {
            let (added, memcached_key) = self
                .in_generation("create", key, |k| {
                    write_op(k, &value, expires_in).add().into()
                })
                .await?;
            match mutation(&added, "create")? {
                MutationStatus::Applied => return Ok(true),
                MutationStatus::AlreadyExists => {}
                other => return Err(unexpected("create", other)),
            }
            // There is an item: live, or expired but not yet dropped (the
            // contract lets create replace that one).
            match self.lookup_key("create", memcached_key.clone()).await? {
                Lookup::Missing => continue,
                Lookup::Live(_) => return Ok(false),
                Lookup::Expired { cas } => {
                    let cas = need_cas(cas, "create")?;
                    let replaced = self
                        .run(
                            "create",
                            write_op(memcached_key, &value, expires_in)
                                .compare_cas(cas)
                                .into(),
                        )
                        .await?;
                    if mutation(&replaced, "create")? == MutationStatus::Applied {
                        return Ok(true);
                    }
                }
            }
        }
        Err(conflict("create", "the key kept changing"))
    }

    /// `update` (`expected: None`) and `compare_and_set`: read the live
    /// item (and its CAS), then write only over that item.
    async fn replace_inner(
        &self,
        op: &'static str,
        key: &str,
        expected: Option<&Bytes>,
        value: &Bytes,
        expires_in: Option<Duration>,
    ) -> Result<bool> {
        validate_key(key)?;
        self.check_fits(op, key, value)?;
        for _ in 0..ATTEMPTS {
            let (read, memcached_key) = self
                .in_generation(op, key, |k| read_op(k, expected.is_some()))
                .await?;
            let Lookup::Live(item) = lookup(read, op)? else {
                return Ok(false);
            };
            if let Some(expected) = expected {
                if item.value.as_deref() != Some(&expected[..]) {
                    return Ok(false);
                }
            }
            let cas = need_cas(item.cas, op)?;
            let written = self
                .run(
                    op,
                    write_op(memcached_key, value, expires_in)
                        .compare_cas(cas)
                        .into(),
                )
                .await?;
            match mutation(&written, op)? {
                MutationStatus::Applied => return Ok(true),
                MutationStatus::NotFound => return Ok(false),
                // Written between the read and the write: read again (it
                // may still hold `expected`, e.g. after a renewal).
                MutationStatus::CasMismatch => {}
                other => return Err(unexpected(op, other)),
            }
        }
        Err(conflict(op, "the key kept changing"))
    }

    async fn delete_live_inner(&self, key: &str) -> Result<bool> {
        validate_key(key)?;
        for _ in 0..ATTEMPTS {
            let (read, memcached_key) = self
                .in_generation("delete_live", key, |k| read_op(k, false))
                .await?;
            let cas = match lookup(read, "delete_live")? {
                Lookup::Missing => return Ok(false),
                Lookup::Expired { cas } => {
                    // Drop the expired item too, if it is still that one.
                    if let Some(cas) = cas {
                        self.run(
                            "delete_live",
                            Delete::new(memcached_key).compare_cas(cas).into(),
                        )
                        .await?;
                    }
                    return Ok(false);
                }
                Lookup::Live(item) => need_cas(item.cas, "delete_live")?,
            };
            let deleted = self
                .run(
                    "delete_live",
                    Delete::new(memcached_key).compare_cas(cas).into(),
                )
                .await?;
            match mutation(&deleted, "delete_live")? {
                MutationStatus::Applied => return Ok(true),
                MutationStatus::NotFound => return Ok(false),
                MutationStatus::CasMismatch => {}
                other => return Err(unexpected("delete_live", other)),
            }
        }
        Err(conflict("delete_live", "the key kept changing"))
    }

    async fn delete_all_inner(&self) -> Result<()> {
        for _ in 0..ATTEMPTS {
            let bumped = self
                .run("delete_all", Arithmetic::new(&*self.generation_key).into())
                .await?;
            let OpResult::Arithmetic(bumped) = bumped else {
                return Err(protocol("delete_all", "not an arithmetic result"));
            };
            match (bumped.status, bumped.value) {
                (MutationStatus::Applied, Some(generation)) => {
                    self.generation.store(generation, Ordering::Release);
                    return Ok(());
                }
                (MutationStatus::NotFound, _) => {
                    // No generation (evicted): a new one is a new namespace.
                    let fresh = fresh_generation();
                    let made = self
                        .run(
                            "delete_all",
                            Set::new(&*self.generation_key, fresh.to_string())
                                .add()
                                .into(),
                        )
                        .await?;
                    if mutation(&made, "delete_all")? == MutationStatus::Applied {
                        self.generation.store(fresh, Ordering::Release);
                        return Ok(());
                    }
                    // Someone else made one meanwhile: bump that.
                }
                (status, _) => return Err(unexpected("delete_all", status)),
            }
        }
        Err(conflict(
            "delete_all",
            "the namespace generation kept changing",
        ))
    }
}

#[async_trait]
impl Store for MemcachedStore {
    async fn get(&self, key: &str, renew_for: Option<Duration>) -> Result<Option<Bytes>> {
        self.get_inner(key, renew_for)
            .instrument(self.span("get"))
            .await
    }

    async fn set(&self, key: &str, value: Bytes, expires_in: Option<Duration>) -> Result<()> {
        async {
            validate_key(key)?;
            self.check_fits("set", key, &value)?;
            let (written, _) = self
                .in_generation("set", key, |k| write_op(k, &value, expires_in).into())
                .await?;
            match mutation(&written, "set")? {
                MutationStatus::Applied => Ok(()),
                other => Err(unexpected("set", other)),
            }
        }
        .instrument(self.span("set"))
        .await
    }

    async fn delete(&self, key: &str) -> Result<()> {
        async {
            validate_key(key)?;
            let (deleted, _) = self
                .in_generation("delete", key, |k| Delete::new(k).into())
                .await?;
            match mutation(&deleted, "delete")? {
                MutationStatus::Applied | MutationStatus::NotFound => Ok(()),
                other => Err(unexpected("delete", other)),
            }
        }
        .instrument(self.span("delete"))
        .await
    }

    async fn delete_all(&self) -> Result<()> {
        self.delete_all_inner()
            .instrument(self.span("delete_all"))
            .await
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        Ok(self
            .exists_inner(key)
            .instrument(self.span("exists"))
            .await?
            .is_some())
    }

    async fn expires_in(&self, key: &str) -> Result<Option<Duration>> {
        let item = self
            .exists_inner(key)
            .instrument(self.span("expires_in"))
            .await?;
        Ok(item
            .and_then(|item| item.deadline)
            .and_then(|deadline| deadline.checked_sub(unix_now()))
            .filter(|left| !left.is_zero()))
    }

    /// Always 0: memcached drops expired items by itself (an expired item
    /// is invisible to every read from its exact expiry on, and freed by
    /// memcached at most 3 s later). There is nothing to walk: memcached
    /// cannot list keys. It still reads the namespace generation, so a
    /// cron job learns of a server it cannot reach ([`Error::Connection`]).
    async fn delete_expired(&self) -> Result<u64> {
        self.load_generation("delete_expired")
            .instrument(self.span("delete_expired"))
            .await?;
        Ok(0)
    }

    fn expires_by_itself(&self) -> Option<&'static str> {
        Some(EXPIRES_BY_ITSELF)
    }

    async fn create(&self, key: &str, value: Bytes, expires_in: Option<Duration>) -> Result<bool> {
        self.create_inner(key, value, expires_in)
            .instrument(self.span("create"))
            .await
    }

    async fn update(&self, key: &str, value: Bytes, expires_in: Option<Duration>) -> Result<bool> {
        self.replace_inner("update", key, None, &value, expires_in)
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
        self.replace_inner("compare_and_set", key, Some(&expected), &value, expires_in)
            .instrument(self.span("compare_and_set"))
            .await
    }

    async fn delete_live(&self, key: &str) -> Result<bool> {
        self.delete_live_inner(key)
            .instrument(self.span("delete_live"))
            .await
    }
}

/// `mg <key> [v] f t c`: the value if `value`, the client flags (the exact
/// expiry's low bits), the remaining TTL and the CAS.
fn read_op(memcached_key: Vec<u8>, value: bool) -> Op {
    let get = Get::new(memcached_key).meta(Meta::NONE.ttl().cas());
    if value { get } else { get.without_value() }.into()
}

/// `ms <key> <len> [T<ttl> F<deadline low bits>]`: mode set; without an
/// expiry no `T` (memcached's "never") and flags 0; for an expiry past
/// memcached's 2038 no `T` and `F<deadline in unix seconds>` ([`Expiry`]).
fn write_op(memcached_key: Vec<u8>, value: &[u8], expires_in: Option<Duration>) -> Set {
    let set = Set::new(memcached_key, value);
    match non_zero(expires_in) {
        Some(duration) => {
            let expiry = Expiry::after(duration);
            let set = set.client_flags(expiry.flags);
            match expiry.ttl_secs {
                Some(ttl) => set.ttl(Ttl::secs(ttl)),
                // Past what memcached's `T` can hold: the flags carry it.
                None => set,
            }
        }
        None => set,
    }
}

/// What a read found, against the exact expiry.
fn lookup(result: OpResult, op: &'static str) -> Result<Lookup> {
    let OpResult::Get(read) = result else {
        return Err(protocol(op, "not a get result"));
    };
    if read.status != GetStatus::Hit {
        return Ok(Lookup::Missing);
    }
    let now = unix_now();
    let flags = read.client_flags.unwrap_or(0);
    let deadline = match read.item.ttl {
        Some(remaining) if remaining >= 0 => Some(deadline_of(flags, remaining, now)),
        // No TTL on the server: never, or an expiry past memcached's range.
        _ => far_deadline(flags),
    };
    if deadline.is_some_and(|deadline| now >= deadline) {
        return Ok(Lookup::Expired { cas: read.item.cas });
    }
    Ok(Lookup::Live(Item {
        value: read.value,
        cas: read.item.cas,
        deadline,
    }))
}

fn mutation(result: &OpResult, op: &'static str) -> Result<MutationStatus> {
    match result {
        OpResult::Mutation(m) => Ok(m.status),
        _ => Err(protocol(op, "not a mutation result")),
    }
}

/// The generation held by a read of `<prefix>gen`; `None` if missing.
fn parse_generation(result: &OpResult, op: &'static str) -> Result<Option<u64>> {
    let OpResult::Get(read) = result else {
        return Err(protocol(op, "not a get result"));
    };
    if read.status != GetStatus::Hit {
        return Ok(None);
    }
    let text = read.value.as_deref().unwrap_or_default();
    std::str::from_utf8(text)
        .ok()
        .and_then(|t| t.trim().parse::<u64>().ok())
        .filter(|g| *g != 0)
        .map(Some)
        .ok_or_else(|| {
            protocol(
                op,
                "the namespace generation is not a positive number: another program wrote it",
            )
        })
}

/// A new generation: the current time in microseconds, so newer than any
/// generation made (and bumped less than once a microsecond) before.
fn fresh_generation() -> u64 {
    u64::try_from(unix_now().as_micros())
        .unwrap_or(u64::MAX)
        .max(1)
}

fn need_cas(cas: Option<u64>, op: &'static str) -> Result<u64> {
    cas.filter(|c| *c != 0).ok_or_else(|| {
        protocol(
            op,
            "memcached returned no CAS value: it must not run with -C (CAS disabled)",
        )
    })
}

fn missing_result(op: &'static str) -> Error {
    protocol(op, "a pipelined command got no result")
}

fn protocol(op: &'static str, what: &'static str) -> Error {
    Error::backend(BACKEND, format!("{op}: unexpected answer"), what)
}

fn unexpected(op: &'static str, status: MutationStatus) -> Error {
    Error::backend(
        BACKEND,
        format!("{op}: unexpected answer"),
        format!("status {status:?}"),
    )
}

fn conflict(op: &'static str, what: &'static str) -> Error {
    Error::backend(
        BACKEND,
        format!("{op}: gave up after {ATTEMPTS} attempts"),
        what,
    )
}
