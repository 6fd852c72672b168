//! [`Session`]: the handler's view of the current session.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use session_core::Store;

use crate::chunks::Offered;
use crate::client_side::ClientSide;
use crate::keys::CookieKeys;
use crate::sealed::unix_now;
use crate::{SessionConfig, SessionError, cookie, store_key};

/// The session of the current request: a JSON object, loaded from the store
/// on first use and written back by the middleware after the handler, only
/// if it changed. With [client-side sessions](crate#client-side-sessions)
/// it is opened from the request's cookies instead, and sealed into the
/// response's; the methods are the same.
///
/// Cloning is cheap; every clone is the same session. Methods are async
/// because the first one to run loads the session; a request that never
/// calls any costs no store call.
///
/// Changes made after the response has left the middleware are lost.
#[derive(Clone)]
pub struct Session {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the id or the data: both may be secrets.
        f.debug_struct("Session").finish_non_exhaustive()
    }
}

struct Inner {
    kind: Kind,
    config: Arc<SessionConfig>,
    /// A well-formed id from the cookie, not yet known to the store.
    cookie_id: Option<String>,
    /// Serialises the first load.
    load: tokio::sync::Mutex<()>,
    state: Mutex<State>,
}

/// Where the session lives, as the layer was built.
#[derive(Clone)]
pub(crate) enum Backend {
    /// Server-side: the data in the store, the id in the cookie (signed
    /// with `signer` if set).
    Store {
        store: Arc<dyn Store>,
        signer: Option<Arc<CookieKeys>>,
    },
    /// Client-side: the data sealed in the cookie.
    Cookie(Arc<ClientSide>),
}

/// A request's [`Backend`], with what its cookies hold.
enum Kind {
    Store {
        store: Arc<dyn Store>,
        signer: Option<Arc<CookieKeys>>,
    },
    Cookie {
        side: Arc<ClientSide>,
        /// The request's session cookies, opened on first use.
        offered: Offered,
    },
}

#[derive(Default)]
struct State {
    loaded: bool,
    /// The id of the row this session was loaded from, if any.
    existing_id: Option<String>,
    /// The stored bytes the session was loaded from: what the save's
    /// compare-and-set expects to find.
    loaded_bytes: Option<Bytes>,
    data: Map<String, Value>,
    /// This request's own changes, key by key (`None`: removed), re-applied
    /// on top of a concurrent request's save.
    changes: Map<String, Value>,
    removed: std::collections::BTreeSet<String>,
    modified: bool,
    /// `cycle_id` was called: save under a new id, delete the old row.
    cycle: bool,
    /// `clear` ended a session the client knew: expire its cookie.
    ended: bool,
    /// The load renewed the row's expiry: refresh the cookie's Max-Age.
    renewed: bool,
    /// The route opted out: the middleware does nothing.
    skipped: bool,
    /// Client-side: the expiry sealed in the cookie it was opened from
    /// (Unix seconds).
    expires_at: Option<u64>,
}

/// What the middleware must do to the response once the handler is done.
pub(crate) enum Outcome {
    /// Nothing: no `Set-Cookie`.
    Untouched,
    /// Append this `Set-Cookie`.
    SetCookie(HeaderValue),
    /// Append these `Set-Cookie`s (a client-side session's cookies).
    SetCookies(Vec<HeaderValue>),
}

impl Session {
    /// The session of a request with `headers`: for a store, the id its
    /// cookie offers (verified if ids are signed); for client-side
    /// sessions, its session cookies, opened on first use.
    pub(crate) fn from_request(
        backend: &Backend,
        config: Arc<SessionConfig>,
        headers: &HeaderMap,
    ) -> Self {
        match backend {
            Backend::Store { store, signer } => {
                let cookie_id = match signer {
                    Some(keys) => cookie::offered_signed_id(headers, &config, keys),
                    None => cookie::offered_id(headers, &config),
                };
                Session::new(
                    Kind::Store {
                        store: store.clone(),
                        signer: signer.clone(),
                    },
                    config,
                    cookie_id,
                )
            }
            Backend::Cookie(side) => {
                let offered = side.read(headers, &config);
                Session::new(
                    Kind::Cookie {
                        side: side.clone(),
                        offered,
                    },
                    config,
                    None,
                )
            }
        }
    }

    fn new(kind: Kind, config: Arc<SessionConfig>, cookie_id: Option<String>) -> Self {
        Session {
            inner: Arc::new(Inner {
                kind,
                config,
                cookie_id,
                load: tokio::sync::Mutex::new(()),
                state: Mutex::new(State::default()),
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Every update of State is a few field writes that cannot panic
        // half-way, so a poisoned lock still holds a consistent state.
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn key_of(&self, id: &str) -> String {
        store_key(id, self.inner.config.hash_session_ids())
    }

    async fn ensure_loaded(&self) -> Result<(), SessionError> {
        if self.state().loaded {
            return Ok(());
        }
        let store = match &self.inner.kind {
            Kind::Store { store, .. } => store,
            Kind::Cookie { side, offered } => {
                self.open_cookie(side, offered);
                return Ok(());
            }
        };
        let _guard = self.inner.load.lock().await;
        if self.state().loaded {
            return Ok(());
        }
        let mut existing = None;
        if let Some(id) = &self.inner.cookie_id {
            let config = &self.inner.config;
            let renew_for = config.renew_on_access().then(|| config.max_age());
            let stored = store.get(&self.key_of(id), renew_for).await?;
            existing = match stored {
                None => None,
                Some(bytes) => match parse(&bytes) {
                    Some(map) => Some((map, bytes)),
                    None if config.litestar_compatible() => {
                        // Another application's data: never shadow it.
                        return Err(SessionError::Unreadable);
                    }
                    None => {
                        tracing::warn!(
                            "stored session is not a JSON object; starting a new session"
                        );
                        None
                    }
                },
            };
        }
        let mut state = self.state();
        match existing {
            Some((data, bytes)) => {
                state.existing_id = self.inner.cookie_id.clone();
                state.loaded_bytes = Some(bytes);
                state.data = data;
                state.renewed = self.inner.config.renew_on_access();
            }
            None if self.inner.cookie_id.is_some() => {
                tracing::debug!("session id from the cookie is unknown to the store; not adopted");
            }
            None => {}
        }
        state.loaded = true;
        Ok(())
    }

    /// The value under `key`, deserialized as `T`; `None` if absent.
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, SessionError> {
        match self.get_value(key).await? {
            None => Ok(None),
            Some(value) => serde_json::from_value(value).map(Some).map_err(|source| {
                SessionError::Deserialize {
                    key: key.to_owned(),
                    source,
                }
            }),
        }
    }

    /// The raw JSON value under `key`; `None` if absent.
    pub async fn get_value(&self, key: &str) -> Result<Option<Value>, SessionError> {
        self.ensure_loaded().await?;
        Ok(self.state().data.get(key).cloned())
    }

    /// Stores `value` under `key`.
    ///
    /// Fails with [`SessionError::TooLarge`], leaving the session as it was,
    /// if the serialized session would exceed `max_session_bytes`.
    pub async fn insert<T: Serialize>(&self, key: &str, value: T) -> Result<(), SessionError> {
        let value = serde_json::to_value(value).map_err(|source| SessionError::Serialize {
            key: key.to_owned(),
            source,
        })?;
        self.ensure_loaded().await?;
        let max = self.max_session_bytes();
        let mut state = self.state();
        if state.data.get(key) == Some(&value) {
            return Ok(());
        }
        let previous = state.data.insert(key.to_owned(), value);
        let size = serialized_len(&state.data);
        if size > max {
            match previous {
                Some(old) => state.data.insert(key.to_owned(), old),
                None => state.data.remove(key),
            };
            return Err(SessionError::TooLarge { size, max });
        }
        let value = state.data[key].clone();
        state.removed.remove(key);
        state.changes.insert(key.to_owned(), value);
        state.modified = true;
        Ok(())
    }

    /// Removes `key` and returns its value, deserialized as `T`.
    pub async fn remove<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, SessionError> {
        self.ensure_loaded().await?;
        let removed = {
            let mut state = self.state();
            let removed = state.data.remove(key);
            if removed.is_some() {
                state.modified = true;
                state.changes.remove(key);
                state.removed.insert(key.to_owned());
            }
            removed
        };
        match removed {
            None => Ok(None),
            Some(value) => serde_json::from_value(value).map(Some).map_err(|source| {
                SessionError::Deserialize {
                    key: key.to_owned(),
                    source,
                }
            }),
        }
    }

    /// A copy of the whole session object.
    pub async fn data(&self) -> Result<Map<String, Value>, SessionError> {
        self.ensure_loaded().await?;
        Ok(self.state().data.clone())
    }

    /// True if the session holds no data.
    pub async fn is_empty(&self) -> Result<bool, SessionError> {
        self.ensure_loaded().await?;
        Ok(self.state().data.is_empty())
    }

    /// Ends the session (logout): deletes its row from the store now and
    /// sends the client an expiring cookie. Data inserted afterwards starts
    /// a new session under a fresh id.
    ///
    /// A client-side session has nothing to delete: its cookies are
    /// expired, but a copy of them taken earlier still opens until its
    /// sealed expiry (see [client-side sessions](crate#client-side-sessions)).
    pub async fn clear(&self) -> Result<(), SessionError> {
        let store = match &self.inner.kind {
            Kind::Store { store, .. } => store,
            Kind::Cookie { offered, .. } => {
                let mut state = self.state();
                *state = State {
                    loaded: true,
                    ended: offered.value.is_some() || !offered.present.is_empty(),
                    ..State::default()
                };
                return Ok(());
            }
        };
        let known = {
            let state = self.state();
            state.existing_id.clone().or_else(|| {
                (!state.loaded)
                    .then(|| self.inner.cookie_id.clone())
                    .flatten()
            })
        };
        if let Some(id) = &known {
            store.delete(&self.key_of(id)).await?;
        }
        let mut state = self.state();
        let had_cookie = self.inner.cookie_id.is_some();
        *state = State {
            loaded: true,
            ended: had_cookie || known.is_some(),
            ..State::default()
        };
        Ok(())
    }

    /// Gives the session a new id, keeping its data; the row under the old
    /// id is deleted when the response is saved. Call it on login, so an id
    /// planted before authentication is worthless after it.
    ///
    /// A client-side session has no id: it is sealed again (a fresh nonce
    /// and expiry) when the response is sent.
    pub async fn cycle_id(&self) -> Result<(), SessionError> {
        self.ensure_loaded().await?;
        let mut state = self.state();
        state.cycle = true;
        state.modified = true;
        Ok(())
    }

    /// How long the session has left: `None` for a session with no data
    /// (nothing is stored). A session changed by this request will live
    /// `max_age` from its save.
    pub async fn expires_in(&self) -> Result<Option<Duration>, SessionError> {
        self.ensure_loaded().await?;
        let (existing, modified, empty, renewed, expires_at) = {
            let s = self.state();
            (
                s.existing_id.clone(),
                s.modified,
                s.data.is_empty(),
                s.renewed,
                s.expires_at,
            )
        };
        if empty {
            return Ok(None);
        }
        let store = match &self.inner.kind {
            Kind::Store { store, .. } => store,
            Kind::Cookie { .. } => {
                return Ok(Some(match expires_at {
                    Some(at) if !modified && !renewed => {
                        Duration::from_secs(at.saturating_sub(unix_now()))
                    }
                    _ => self.inner.config.max_age(),
                }));
            }
        };
        match existing {
            Some(id) if !modified => Ok(store.expires_in(&self.key_of(&id)).await?),
            _ => Ok(Some(self.inner.config.max_age())),
        }
    }

    /// Marks the session as skipped: the middleware will neither load nor
    /// save it.
    pub(crate) fn skip(&self) {
        self.state().skipped = true;
    }

    /// Saves the session if it changed and says which cookie to send.
    pub(crate) async fn finish(&self) -> Result<Outcome, SessionError> {
        let store = match &self.inner.kind {
            Kind::Store { store, .. } => store,
            Kind::Cookie { side, offered } => return self.finish_cookie(side, offered),
        };
        let (existing, data, cycle, ended, loaded_bytes) = {
            let state = self.state();
            if state.skipped || !state.loaded {
                return Ok(Outcome::Untouched);
            }
            if !state.modified {
                return match (&state.existing_id, state.renewed, state.ended) {
                    (Some(id), true, _) => Ok(Outcome::SetCookie(self.cookie(id)?)),
                    (None, _, true) => Ok(Outcome::SetCookie(self.expired_cookie()?)),
                    _ => Ok(Outcome::Untouched),
                };
            }
            (
                state.existing_id.clone(),
                state.data.clone(),
                state.cycle,
                state.ended,
                state.loaded_bytes.clone(),
            )
        };
        let config = &self.inner.config;
        let max_age = Some(config.max_age());

        if data.is_empty() {
            // An emptied session: remove the row and the cookie.
            if let Some(id) = &existing {
                store.delete(&self.key_of(id)).await?;
            }
            return if existing.is_some() || ended || self.inner.cookie_id.is_some() {
                Ok(Outcome::SetCookie(self.expired_cookie()?))
            } else {
                Ok(Outcome::Untouched)
            };
        }

        // Refuse an oversized session before any store call.
        let mut value = self.serialize(&data)?;
        let mut data = data;
        if let (Some(id), Some(mut expected)) = (&existing, loaded_bytes) {
            let key = self.key_of(id);
            if cycle {
                // Carry concurrent requests' changes over, then take the
                // old row: only if it was still live (a logout ends it for
                // good, whichever request came first).
                match self.reload(store, &key).await? {
                    Some((merged, _)) => value = self.serialize(&merged)?,
                    None => return self.ended_meanwhile(),
                }
                if !store.delete_live(&key).await? {
                    return self.ended_meanwhile();
                }
            } else {
                for attempt in 1..=MAX_MERGES {
                    if attempt > 1 {
                        if data.is_empty() {
                            // Emptied after merging: like a logout.
                            store.delete(&key).await?;
                            return Ok(Outcome::SetCookie(self.expired_cookie()?));
                        }
                        value = self.serialize(&data)?;
                    }
                    if store
                        .compare_and_set(&key, expected, value.clone(), max_age)
                        .await?
                    {
                        if attempt > 1 {
                            tracing::info!(
                                attempts = attempt,
                                "session saved after merging a concurrent request's changes"
                            );
                        }
                        return Ok(Outcome::SetCookie(self.cookie(id)?));
                    }
                    // Another request saved meanwhile, or the session ended.
                    match self.reload(store, &key).await? {
                        Some((merged, bytes)) => {
                            tracing::debug!(
                                attempt,
                                "session changed by a concurrent request; re-applying this request's changes"
                            );
                            data = merged;
                            expected = bytes;
                        }
                        None => return self.ended_meanwhile(),
                    }
                }
                return Err(SessionError::Store(session_core::Error::backend(
                    "session",
                    format!(
                        "the session changed under {MAX_MERGES} saves in a row; this request's changes were not saved"
                    ),
                    std::io::Error::other("too many concurrent changes"),
                )));
            }
        }
        // A new session, or a cycled one: a fresh id that no live row holds.
        let mut attempts = 0;
        let new_id = loop {
            attempts += 1;
            let id = config.generate_session_id()?;
            if store
                .create(&self.key_of(&id), value.clone(), max_age)
                .await?
            {
                break id;
            }
            tracing::warn!(attempts, "session id collision; generating another");
            if attempts >= 3 {
                return Err(SessionError::Store(session_core::Error::backend(
                    "session",
                    "three freshly generated session ids were all taken; is the store's create() atomic?",
                    std::io::Error::other("session id collision"),
                )));
            }
        };
        Ok(Outcome::SetCookie(self.cookie(&new_id)?))
    }

    /// The stored session under `key` now, with this request's own changes
    /// applied on top, and the stored bytes; `None` if it is gone (a
    /// logout, or expiry) or no longer a JSON object.
    async fn reload(
        &self,
        store: &Arc<dyn Store>,
        key: &str,
    ) -> Result<Option<(Map<String, Value>, Bytes)>, SessionError> {
        let Some(bytes) = store.get(key, None).await? else {
            return Ok(None);
        };
        let Some(mut data) = parse(&bytes) else {
            return Ok(None);
        };
        let state = self.state();
        for key in &state.removed {
            data.remove(key);
        }
        for (key, value) in &state.changes {
            data.insert(key.clone(), value.clone());
        }
        Ok(Some((data, bytes)))
    }

    /// The session ended while the request ran (a concurrent logout, or
    /// expiry): never bring it back; drop this request's changes.
    fn ended_meanwhile(&self) -> Result<Outcome, SessionError> {
        tracing::info!("session ended while the request ran; its changes are dropped");
        Ok(Outcome::SetCookie(self.expired_cookie()?))
    }

    /// The session as stored, refused if over `max_session_bytes`.
    fn serialize(&self, data: &Map<String, Value>) -> Result<Bytes, SessionError> {
        let value =
            Bytes::from(
                serde_json::to_vec(data).map_err(|source| SessionError::Serialize {
                    key: String::new(),
                    source,
                })?,
            );
        let max = self.inner.config.max_session_bytes();
        if value.len() > max {
            return Err(SessionError::TooLarge {
                size: value.len(),
                max,
            });
        }
        Ok(value)
    }

    fn cookie(&self, id: &str) -> Result<HeaderValue, SessionError> {
        let config = &self.inner.config;
        let max_age = config.max_age().as_secs();
        match &self.inner.kind {
            Kind::Store {
                signer: Some(keys), ..
            } => cookie::set_cookie(config, &cookie::signed_id(config, keys, id), max_age),
            _ => cookie::set_cookie(config, id, max_age),
        }
        .map_err(bad_cookie)
    }

    /// The largest serialized session this session may hold.
    fn max_session_bytes(&self) -> usize {
        match &self.inner.kind {
            Kind::Store { .. } => self.inner.config.max_session_bytes(),
            Kind::Cookie { side, .. } => side.max_json_bytes(),
        }
    }

    /// Client-side: opens the request's session cookies, once. Anything
    /// that does not open is no session, with a debug event naming why
    /// (never the cookie's content).
    fn open_cookie(&self, side: &ClientSide, offered: &Offered) {
        let mut state = self.state();
        if state.loaded {
            return;
        }
        state.loaded = true;
        let config = &self.inner.config;
        let opened = match &offered.value {
            None => return,
            Some(Ok((value, count))) => side.open(config, value, *count, unix_now()),
            Some(Err(refused)) => Err(*refused),
        };
        match opened {
            Ok(opened) => {
                state.data = opened.data;
                state.expires_at = Some(opened.expires_at);
                state.renewed = config.renew_on_access();
                if !opened.current_key {
                    tracing::debug!(
                        "session cookie opened with an older key; it is sealed with the first key on its next write"
                    );
                }
            }
            Err(refused) => {
                tracing::debug!(
                    reason = refused.as_str(),
                    "session cookie refused; the request has no session"
                );
            }
        }
    }

    /// Client-side: the cookies to send. A changed (or, under
    /// `renew_on_access`, a read) session is sealed again with the first
    /// key and a new expiry; an emptied or cleared one expires its cookies.
    /// Either way, every cookie of the session's family that the request
    /// sent and the new layout does not use is expired in the same
    /// response.
    fn finish_cookie(&self, side: &ClientSide, offered: &Offered) -> Result<Outcome, SessionError> {
        let data = {
            let state = self.state();
            if state.skipped || !state.loaded {
                return Ok(Outcome::Untouched);
            }
            let reseal = state.modified || (state.renewed && !state.ended);
            if !reseal && !state.ended {
                return Ok(Outcome::Untouched);
            }
            if reseal {
                state.data.clone()
            } else {
                Map::new()
            }
        };
        let config = &self.inner.config;
        let mut cookies = Vec::new();
        let mut set = Vec::new();
        if !data.is_empty() {
            let (pairs, _) = side.seal(config, &data, unix_now())?;
            for (name, value) in &pairs {
                cookies.push(
                    cookie::set_named_cookie(config, name, value, config.max_age().as_secs())
                        .map_err(bad_cookie)?,
                );
            }
            set = pairs.into_iter().map(|(name, _)| name).collect();
        }
        for name in &offered.present {
            if !set.contains(name) {
                cookies.push(cookie::expired_named(config, name).map_err(bad_cookie)?);
            }
        }
        if cookies.is_empty() {
            return Ok(Outcome::Untouched);
        }
        Ok(Outcome::SetCookies(cookies))
    }

    fn expired_cookie(&self) -> Result<HeaderValue, SessionError> {
        cookie::expired(&self.inner.config).map_err(bad_cookie)
    }
}

fn bad_cookie(err: http::header::InvalidHeaderValue) -> SessionError {
    SessionError::Store(session_core::Error::invalid_config(
        "session cookie",
        format!("the configured cookie attributes do not form a valid header: {err}"),
    ))
}

/// How many concurrent saves one save merges before it gives up.
const MAX_MERGES: u32 = 64;

/// A stored session: a JSON object, else `None`.
fn parse(bytes: &[u8]) -> Option<Map<String, Value>> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Some(map),
        _ => None,
    }
}

fn serialized_len(data: &Map<String, Value>) -> usize {
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    // Writing a Map of Values into a counter cannot fail.
    let _ = serde_json::to_writer(&mut counter, data);
    counter.0
}
