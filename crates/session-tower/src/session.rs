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
use crate::meta::{
    InvalidMeta, METADATA_KEY, Meta, SEED_HEX_DIGITS, Stored, StoredExpiry, ceil_secs,
    fingerprint_of_key, fingerprint_of_seed, millis, now_ms,
};
use crate::{Expiry, SessionConfig, SessionError, cookie, limits, store_key};

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
/// Changes made after the response has left the middleware are lost,
/// unless [`save`](Self::save)d.
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
    /// Serialises saves, and the changes made around them: a change waits
    /// for a save in progress, so a save never loses one made meanwhile.
    /// Always taken after `load`, never before.
    save: tokio::sync::Mutex<()>,
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
    /// The id of the row this session was loaded from (or last saved
    /// under), if any.
    existing_id: Option<String>,
    /// The stored bytes the session was loaded from (or last saved as):
    /// what the save's compare-and-set expects to find.
    loaded_bytes: Option<Bytes>,
    data: Map<String, Value>,
    /// The middleware's metadata, kept out of `data`.
    meta: Meta,
    /// This request's own changes, key by key (`None`: removed), re-applied
    /// on top of a concurrent request's save.
    changes: Map<String, Value>,
    removed: std::collections::BTreeSet<String>,
    modified: bool,
    /// `set_expiry` changed the mode: it wins over a concurrent save's.
    expiry_changed: bool,
    /// `cycle_id` was called: save under a new id, delete the old row.
    cycle: bool,
    /// `clear` (or an expiry) ended a session the client knew.
    ended: bool,
    /// The route opted out: the middleware does nothing.
    skipped: bool,
    /// This request already wrote the session (`save`, or a renewal): its
    /// expiry is fresh.
    written: bool,
    /// The response has left the middleware.
    finished: bool,
    /// The `Set-Cookie`s the response must carry, from the latest save,
    /// renewal or `clear`.
    pending: Option<Outcome>,
    /// Client-side: the expiry sealed in the cookie it was opened from
    /// (Unix seconds).
    expires_at: Option<u64>,
}

impl State {
    /// Loaded, with no session: what `clear` and a session that ended
    /// while the request ran leave behind. `finished` is carried over.
    fn without_session(ended: bool, finished: bool, pending: Option<Outcome>) -> Self {
        State {
            loaded: true,
            ended,
            finished,
            pending,
            ..State::default()
        }
    }

    /// After a write: this request's changes are in what was written, so
    /// a later save starts from them.
    fn written_back(&mut self) {
        self.changes.clear();
        self.removed.clear();
        self.modified = false;
        self.expiry_changed = false;
        self.cycle = false;
    }
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

/// How long a session written now lives, by its expiry mode and the
/// absolute lifetime.
struct Lifetime {
    /// The stored expiry (and a client-side session's sealed one), from now.
    ttl: Duration,
    /// The cookie's `Max-Age`; `None` for a browser-session cookie.
    cookie: Option<u64>,
    /// The mode's whole lifetime, before the absolute cap: what the
    /// renewal threshold is a share of.
    full: Duration,
    /// Whether an access renews it.
    renewable: bool,
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
                save: tokio::sync::Mutex::new(()),
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
        let config = &self.inner.config;
        let mut existing = None;
        let mut ended = false;
        if let Some(id) = &self.inner.cookie_id {
            let key = self.key_of(id);
            // Never renewed here: the renewal, if due, is decided after the
            // handler (see `renew_store`).
            let stored = store.get(&key, None).await?;
            existing = match stored {
                None => None,
                // The old row of a session whose id a concurrent request is
                // changing: no session (as once it is deleted).
                Some(bytes) if is_moved(&bytes) => None,
                Some(bytes) => match parse(&bytes) {
                    Some(mut data) => match self.split_meta(&mut data) {
                        Ok(meta) => Some((data, meta, bytes, false)),
                        Err(why) => {
                            // Fail closed: never ignore metadata that may
                            // bound the session's life.
                            tracing::warn!(
                                reason = why.as_str(),
                                fingerprint = %fingerprint_of_key(&key),
                                "the session's stored metadata is not valid; session ended"
                            );
                            store.delete(&key).await?;
                            ended = true;
                            None
                        }
                    },
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
            if let Some((_, meta, _, stamped)) = &mut existing {
                let now = now_ms();
                if config.absolute_lifetime().is_some() && meta.created.is_none() {
                    // Stored while no absolute lifetime was configured: it
                    // counts from now (written with the next save).
                    meta.created = Some(now);
                    *stamped = true;
                }
                if self.lifetime(meta, now).is_none() {
                    tracing::info!(
                        fingerprint = %fingerprint_of_key(&key),
                        "session past its absolute lifetime or fixed expiry; ended"
                    );
                    store.delete(&key).await?;
                    existing = None;
                    ended = true;
                }
            }
        }
        let expired = if ended {
            Some(self.expired_cookie()?)
        } else {
            None
        };
        let mut state = self.state();
        match existing {
            Some((data, meta, bytes, stamped)) => {
                state.existing_id = self.inner.cookie_id.clone();
                // A creation time stamped just now must be stored.
                state.modified = stamped;
                state.loaded_bytes = Some(bytes);
                state.data = data;
                state.meta = meta;
            }
            None if ended => {
                state.ended = true;
                state.pending = expired.map(Outcome::SetCookie);
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
    ///
    /// # Errors
    ///
    /// [`SessionError::Deserialize`] if the stored value is not a `T`: it
    /// names the key, `T` and the JSON kind of the value, never the value.
    /// [`SessionError::Store`] if loading the session failed.
    ///
    /// # Examples
    ///
    /// ```
    /// use session_tower::{Session, SessionError};
    ///
    /// async fn user_id(session: Session) -> Result<Option<u64>, SessionError> {
    ///     session.get::<u64>("user_id").await
    /// }
    /// # let _ = user_id;
    /// ```
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, SessionError> {
        match self.get_value(key).await? {
            None => Ok(None),
            Some(value) => typed(key, value).map(Some),
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
    /// if the serialized session would exceed `max_session_bytes`: the
    /// session as its save will store it, with the metadata the save adds
    /// (a creation time under `absolute_lifetime`, a client-side session's
    /// fingerprint seed), so a change accepted here is never refused after
    /// the handler. Fails with [`SessionError::ReservedKey`] for
    /// [`METADATA_KEY`](crate::METADATA_KEY), except under
    /// `litestar_compatible`, where the middleware keeps no metadata and
    /// the key is ordinary data.
    pub async fn insert<T: Serialize>(&self, key: &str, value: T) -> Result<(), SessionError> {
        if key == METADATA_KEY && !self.inner.config.litestar_compatible() {
            return Err(SessionError::ReservedKey {
                key: key.to_owned(),
            });
        }
        let value = serde_json::to_value(value).map_err(|source| SessionError::Serialize {
            key: key.to_owned(),
            source,
        })?;
        self.ensure_loaded().await?;
        let _save = self.inner.save.lock().await;
        let max = self.max_session_bytes();
        let mut state = self.state();
        if state.data.get(key) == Some(&value) {
            return Ok(());
        }
        let meta = self.stamped(&state.meta)?;
        let previous = state.data.insert(key.to_owned(), value);
        let size = stored_len(&state.data, &meta);
        if size > max {
            match previous {
                Some(old) => state.data.insert(key.to_owned(), old),
                None => state.data.remove(key),
            };
            return Err(SessionError::TooLarge { size, max });
        }
        state.meta = meta;
        let value = state.data[key].clone();
        state.removed.remove(key);
        state.changes.insert(key.to_owned(), value);
        state.modified = true;
        Ok(())
    }

    /// Removes `key` and returns its value, deserialized as `T`.
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get) (the key is removed even if its value is not
    /// a `T`).
    pub async fn remove<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, SessionError> {
        self.ensure_loaded().await?;
        let removed = {
            let _save = self.inner.save.lock().await;
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
            Some(value) => typed(key, value).map(Some),
        }
    }

    /// A copy of the whole session object (without the middleware's
    /// metadata).
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
    /// a new session under a fresh id (with the configured expiry and a new
    /// creation time).
    ///
    /// A client-side session has nothing to delete: its cookies are
    /// expired, but a copy of them taken earlier still opens until its
    /// sealed expiry (see [client-side sessions](crate#client-side-sessions)).
    pub async fn clear(&self) -> Result<(), SessionError> {
        let _save = self.inner.save.lock().await;
        let store = match &self.inner.kind {
            Kind::Store { store, .. } => store,
            Kind::Cookie { offered, .. } => {
                let mut expired = Vec::new();
                for name in &offered.present {
                    expired
                        .push(cookie::expired_named(&self.inner.config, name).map_err(bad_cookie)?);
                }
                let mut state = self.state();
                let finished = state.finished;
                *state = State::without_session(
                    !offered.present.is_empty(),
                    finished,
                    (!expired.is_empty()).then_some(Outcome::SetCookies(expired)),
                );
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
        let ended = self.inner.cookie_id.is_some() || known.is_some();
        let expired = if ended {
            Some(self.expired_cookie()?)
        } else {
            None
        };
        let mut state = self.state();
        let finished = state.finished;
        *state = State::without_session(ended, finished, expired.map(Outcome::SetCookie));
        Ok(())
    }

    /// Gives the session a new id, keeping its data, expiry mode and
    /// creation time; the row under the old id is deleted when the session
    /// is saved. Call it on login, so an id planted before authentication
    /// is worthless after it.
    ///
    /// A client-side session has no id: it is sealed again (a fresh nonce
    /// and expiry) when the response is sent, with a new
    /// [`fingerprint`](Self::fingerprint).
    pub async fn cycle_id(&self) -> Result<(), SessionError> {
        self.ensure_loaded().await?;
        let _save = self.inner.save.lock().await;
        let mut state = self.state();
        state.cycle = true;
        state.modified = true;
        if matches!(self.inner.kind, Kind::Cookie { .. }) {
            state.meta.fp = None;
        }
        Ok(())
    }

    /// Chooses how long this session lives (see [`Expiry`]): kept in the
    /// stored session, so it holds for every later request until changed.
    /// It takes effect when the session is saved, with its data: a session
    /// with no data is not stored, nor is its expiry.
    ///
    /// # Errors
    ///
    /// [`SessionError::InvalidExpiry`] for a duration out of 1 s to 400
    /// days, a time in the past or more than 400 days away, or, under
    /// `litestar_compatible`, any mode but [`Expiry::Configured`] (it would
    /// have to be stored where the Litestar application reads its session).
    /// [`SessionError::TooLarge`], leaving the mode as it was, if the
    /// session with the mode stored beside its data would exceed
    /// `max_session_bytes`. [`SessionError::Store`] if loading the session
    /// failed.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// use session_tower::{Expiry, Session, SessionError};
    ///
    /// async fn login(session: Session, remember_me: bool) -> Result<(), SessionError> {
    ///     session.cycle_id().await?;
    ///     session.insert("user_id", 42).await?;
    ///     if remember_me {
    ///         // 30 days since the last request.
    ///         session.set_expiry(Expiry::OnInactivity(Duration::from_secs(30 * 86_400))).await?;
    ///     } else {
    ///         // Until the browser closes.
    ///         session.set_expiry(Expiry::OnSessionEnd).await?;
    ///     }
    ///     Ok(())
    /// }
    ///
    /// async fn exam(session: Session) -> Result<(), SessionError> {
    ///     // Ends in two hours, however active.
    ///     let end = SystemTime::now() + Duration::from_secs(2 * 3600);
    ///     session.set_expiry(Expiry::AtDateTime(end)).await
    /// }
    /// # let _ = (login, exam);
    /// ```
    pub async fn set_expiry(&self, expiry: Expiry) -> Result<(), SessionError> {
        let stored = expiry.to_stored(now_ms())?;
        if stored.is_some() && self.inner.config.litestar_compatible() {
            return Err(SessionError::InvalidExpiry(
                "only Expiry::Configured with `litestar_compatible`: another mode must be kept in \
                 the stored session, which the Litestar application reads as its own"
                    .into(),
            ));
        }
        self.ensure_loaded().await?;
        let _save = self.inner.save.lock().await;
        let max = self.max_session_bytes();
        let mut state = self.state();
        if state.meta.expiry != stored {
            let mut meta = self.stamped(&state.meta)?;
            meta.expiry = stored;
            // An empty session is not stored: nothing to measure.
            let size = stored_len(&state.data, &meta);
            if !state.data.is_empty() && size > max {
                return Err(SessionError::TooLarge { size, max });
            }
            state.meta = meta;
            state.expiry_changed = true;
            state.modified = true;
        }
        Ok(())
    }

    /// The session's expiry mode: [`Expiry::Configured`] unless a handler
    /// chose another with [`set_expiry`](Self::set_expiry).
    ///
    /// # Errors
    ///
    /// [`SessionError::Store`] if loading the session failed.
    ///
    /// # Examples
    ///
    /// ```
    /// use session_tower::{Expiry, Session, SessionError};
    ///
    /// async fn remembered(session: Session) -> Result<bool, SessionError> {
    ///     Ok(matches!(session.expiry().await?, Expiry::OnInactivity(_)))
    /// }
    /// # let _ = remembered;
    /// ```
    pub async fn expiry(&self) -> Result<Expiry, SessionError> {
        self.ensure_loaded().await?;
        // Stored modes are checked when loaded, so this always converts.
        Expiry::from_stored(self.state().meta.expiry).ok_or_else(|| {
            SessionError::InvalidExpiry("the stored fixed expiry is out of range".into())
        })
    }

    /// How long the session has left: `None` for a session with no data
    /// (nothing is stored). A session changed by this request (or renewed
    /// by it) lives the full lifetime of its expiry mode from its save,
    /// within its absolute lifetime.
    pub async fn expires_in(&self) -> Result<Option<Duration>, SessionError> {
        self.ensure_loaded().await?;
        let (existing, modified, empty, expires_at, meta) = {
            let s = self.state();
            (
                s.existing_id.clone(),
                s.modified,
                s.data.is_empty(),
                s.expires_at,
                s.meta.clone(),
            )
        };
        if empty {
            return Ok(None);
        }
        let now = now_ms();
        let Some(life) = self.lifetime(&meta, now) else {
            return Ok(Some(Duration::ZERO));
        };
        if modified {
            return Ok(Some(life.ttl));
        }
        let left = match &self.inner.kind {
            Kind::Cookie { .. } => match expires_at {
                Some(at) => Duration::from_millis(at.saturating_mul(1000).saturating_sub(now)),
                None => return Ok(Some(life.ttl)),
            },
            Kind::Store { store, .. } => match existing {
                Some(id) => match store.expires_in(&self.key_of(&id)).await? {
                    Some(left) => left,
                    None => return Ok(None),
                },
                None => return Ok(Some(life.ttl)),
            },
        };
        // A renewal due is made when the response is sent.
        Ok(Some(if self.should_renew(&life, left) {
            life.ttl
        } else {
            left
        }))
    }

    /// A short identifier of this session for logs (12 hex digits), so an
    /// operator can follow one user's requests without logging anything
    /// that opens the session. `None` for a session not stored yet (a new
    /// one before its first save) or with no data.
    ///
    /// With a store it is derived from the store key, never from the id
    /// ([`fingerprint_of_key`](crate::fingerprint_of_key) computes it from
    /// a row's key), so it changes with [`cycle_id`](Self::cycle_id). A
    /// client-side session has no key: its fingerprint is the hash of a
    /// random value sealed inside it, fixed for the session's life (new
    /// after `cycle_id` or `clear`).
    ///
    /// # Errors
    ///
    /// [`SessionError::Store`] if loading the session failed.
    ///
    /// # Examples
    ///
    /// ```
    /// use session_tower::{Session, SessionError};
    ///
    /// async fn handler(session: Session) -> Result<&'static str, SessionError> {
    ///     if let Some(fp) = session.fingerprint().await? {
    ///         tracing::info!(session = %fp, "order placed");
    ///     }
    ///     Ok("ok")
    /// }
    /// # let _ = handler;
    /// ```
    pub async fn fingerprint(&self) -> Result<Option<String>, SessionError> {
        self.ensure_loaded().await?;
        if let Kind::Store { .. } = &self.inner.kind {
            let state = self.state();
            return Ok(state
                .existing_id
                .as_ref()
                .map(|id| fingerprint_of_key(&self.key_of(id))));
        }
        let _save = self.inner.save.lock().await;
        let mut state = self.state();
        if state.data.is_empty() {
            return Ok(None);
        }
        let seed = match &state.meta.fp {
            Some(seed) => seed.clone(),
            None => {
                // A cookie sealed before fingerprints existed, or a session
                // not sealed yet: seal the new seed with the response.
                let seed = new_seed()?;
                state.meta.fp = Some(seed.clone());
                state.modified = true;
                seed
            }
        };
        Ok(Some(fingerprint_of_seed(&seed)))
    }

    /// Saves the session now, with the same rules as the save after the
    /// handler (written only if changed; a concurrent request's changes
    /// merged; a new session created under a fresh id); the save after the
    /// handler then writes only what changed since. For handlers that keep
    /// the session across a long response: call it before returning a
    /// streaming body or a WebSocket upgrade, and again from the stream or
    /// the socket's task after changing the session there.
    ///
    /// The response's `Set-Cookie` is still added by the middleware when
    /// the handler returns. After that, a change that needs a new cookie
    /// cannot reach the browser: see the errors.
    ///
    /// # Errors
    ///
    /// [`SessionError::ResponseSent`], writing nothing, when called after
    /// the response has left the middleware for a new session, a
    /// `cycle_id`, a new expiry mode, or any change of a client-side
    /// session. [`SessionError::TooLarge`] and [`SessionError::Store`] as
    /// for the save after the handler.
    ///
    /// # Examples
    ///
    /// ```
    /// use session_tower::{Session, SessionError};
    ///
    /// async fn start_job(session: Session) -> Result<&'static str, SessionError> {
    ///     session.insert("job", "running").await?;
    ///     // Stored now; its cookie goes with this response.
    ///     session.save().await?;
    ///     tokio::spawn(async move {
    ///         // ... long after the response has been sent ...
    ///         session.insert("job", "done").await?;
    ///         session.save().await // the session exists: written
    ///     });
    ///     Ok("started")
    /// }
    /// # let _ = start_job;
    /// ```
    pub async fn save(&self) -> Result<(), SessionError> {
        let _save = self.inner.save.lock().await;
        {
            let state = self.state();
            if !state.loaded || state.skipped || !state.modified {
                return Ok(());
            }
            if state.finished {
                let allowed = matches!(self.inner.kind, Kind::Store { .. })
                    && !state.cycle
                    && !state.expiry_changed
                    && (state.existing_id.is_some() || state.data.is_empty());
                if !allowed {
                    return Err(SessionError::ResponseSent);
                }
            }
        }
        self.persist().await
    }

    /// Marks the session as skipped: the middleware will neither load nor
    /// save it.
    pub(crate) fn skip(&self) {
        self.state().skipped = true;
    }

    /// After the handler: saves the session if it changed (unless `write`
    /// is false: a response the config says not to save after), renews
    /// it if due, and says which cookies to send.
    pub(crate) async fn finish(&self, write: bool) -> Result<Outcome, SessionError> {
        let _save = self.inner.save.lock().await;
        let result = if write {
            self.finish_locked().await
        } else {
            let modified = self.state().modified;
            if modified {
                tracing::debug!(
                    "the response is a server error; the session's changes are not saved"
                );
            }
            Ok(())
        };
        let mut state = self.state();
        state.finished = true;
        result?;
        if state.skipped {
            return Ok(Outcome::Untouched);
        }
        Ok(state.pending.take().unwrap_or(Outcome::Untouched))
    }

    async fn finish_locked(&self) -> Result<(), SessionError> {
        let modified = {
            let state = self.state();
            if state.skipped || !state.loaded {
                return Ok(());
            }
            state.modified
        };
        match &self.inner.kind {
            Kind::Store { store, .. } if modified => self.persist_store(store).await,
            Kind::Store { store, .. } => self.renew_store(store).await,
            Kind::Cookie { side, offered } => {
                if !modified {
                    if !self.cookie_renewal_due() {
                        return Ok(());
                    }
                    self.state().modified = true;
                }
                self.persist_cookie(side, offered)
            }
        }
    }

    /// Saves a modified session (the caller holds the save lock).
    async fn persist(&self) -> Result<(), SessionError> {
        match &self.inner.kind {
            Kind::Store { store, .. } => self.persist_store(store).await,
            Kind::Cookie { side, offered } => self.persist_cookie(side, offered),
        }
    }

    /// The store-backed save: create, compare-and-set with merging, or an
    /// id change; records the cookie to send.
    async fn persist_store(&self, store: &Arc<dyn Store>) -> Result<(), SessionError> {
        let (existing, data, mut meta, cycle, ended, loaded_bytes) = {
            let state = self.state();
            if !state.modified {
                return Ok(());
            }
            (
                state.existing_id.clone(),
                state.data.clone(),
                state.meta.clone(),
                state.cycle,
                state.ended,
                state.loaded_bytes.clone(),
            )
        };
        let config = &self.inner.config;

        if data.is_empty() {
            // An emptied session: remove the row and the cookie.
            if let Some(id) = &existing {
                store.delete(&self.key_of(id)).await?;
            }
            let expire = existing.is_some() || ended || self.inner.cookie_id.is_some();
            return self.saved_empty(expire);
        }

        let now = now_ms();
        if config.absolute_lifetime().is_some() && meta.created.is_none() {
            meta.created = Some(now);
        }
        let Some(mut life) = self.lifetime(&meta, now) else {
            // Past its absolute lifetime or fixed expiry while the request
            // ran: end it.
            if let Some(id) = &existing {
                store.delete(&self.key_of(id)).await?;
            }
            return self.ended_meanwhile();
        };
        // Refuse an oversized session before any store call.
        let mut value = self.serialize(&data, &meta)?;
        let mut data = data;
        // With `cycle_id`, the old row under its key, taken below.
        let mut moved_from = None;
        if let (Some(id), Some(mut expected)) = (&existing, loaded_bytes) {
            let key = self.key_of(id);
            // An existing session is written with a compare-and-set of the
            // bytes it was loaded from. An id change writes a tombstone
            // instead (`MOVED`, which every reader takes for no session)
            // and then creates the new row: so it carries over exactly the
            // stored session it replaces. A concurrent request's save
            // either lands first (this compare-and-set then fails, and its
            // change is merged and carried over) or fails against the
            // tombstone (and that request finds the session ended, as
            // after a logout). A logout first ends it for good: the
            // compare-and-set finds no live row.
            let mut taken = false;
            for attempt in 1..=MAX_MERGES {
                if attempt > 1 {
                    if data.is_empty() {
                        // Emptied after merging: like a logout.
                        store.delete(&key).await?;
                        return self.saved_empty(true);
                    }
                    match self.lifetime(&meta, now_ms()) {
                        Some(l) => life = l,
                        None => {
                            store.delete(&key).await?;
                            return self.ended_meanwhile();
                        }
                    }
                    value = self.serialize(&data, &meta)?;
                }
                let (new, ttl) = if cycle {
                    (Bytes::from_static(MOVED), MOVED_TTL)
                } else {
                    (value.clone(), life.ttl)
                };
                if store
                    .compare_and_set(&key, expected.clone(), new, Some(ttl))
                    .await?
                {
                    if attempt > 1 {
                        tracing::info!(
                            attempts = attempt,
                            "session saved after merging a concurrent request's changes"
                        );
                    }
                    if !cycle {
                        return self.saved(id.clone(), data, meta, value, &life);
                    }
                    taken = true;
                    break;
                }
                // Another request saved meanwhile, or the session ended.
                match self.reload(store, &key).await? {
                    Some((merged, merged_meta, bytes)) => {
                        tracing::debug!(
                            attempt,
                            "session changed by a concurrent request; re-applying this request's changes"
                        );
                        data = merged;
                        meta = merged_meta;
                        expected = bytes;
                    }
                    None => return self.ended_meanwhile(),
                }
            }
            if !taken {
                return Err(SessionError::Store(session_core::Error::backend(
                    "session",
                    format!(
                        "the session changed under {MAX_MERGES} saves in a row; this request's changes were not saved"
                    ),
                    std::io::Error::other("too many concurrent changes"),
                )));
            }
            moved_from = Some(key);
        }
        // A new session, or a cycled one: a fresh id that no live row holds.
        let mut attempts = 0;
        let new_id = loop {
            attempts += 1;
            let id = config.generate_session_id()?;
            if store
                .create(&self.key_of(&id), value.clone(), Some(life.ttl))
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
        if let Some(old) = moved_from {
            // The tombstone has done its work. The session lives under its
            // new id already: a failure here only leaves the tombstone to
            // expire by itself.
            if let Err(error) = store.delete(&old).await {
                tracing::warn!(
                    error = %session_core::error_chain(&error),
                    "the old row of a changed session id was not removed; it expires within {} s",
                    MOVED_TTL.as_secs()
                );
            }
        }
        self.saved(new_id, data, meta, value, &life)
    }

    /// After a successful write of `data` and `meta` as `value` under `id`:
    /// the state a later save starts from, and the cookie to send.
    fn saved(
        &self,
        id: String,
        data: Map<String, Value>,
        meta: Meta,
        value: Bytes,
        life: &Lifetime,
    ) -> Result<(), SessionError> {
        let cookie = self.cookie(&id, life.cookie)?;
        let mut state = self.state();
        state.existing_id = Some(id);
        state.loaded_bytes = Some(value);
        state.data = data;
        state.meta = meta;
        state.written_back();
        state.ended = false;
        state.written = true;
        state.pending = Some(Outcome::SetCookie(cookie));
        Ok(())
    }

    /// After an emptied session's row was deleted (if any): expire the
    /// cookie if the client may hold one.
    fn saved_empty(&self, expire: bool) -> Result<(), SessionError> {
        let expired = if expire {
            Some(self.expired_cookie()?)
        } else {
            None
        };
        let mut state = self.state();
        state.existing_id = None;
        state.loaded_bytes = None;
        state.meta = Meta::default();
        state.written_back();
        state.ended = expire;
        state.pending = expired.map(Outcome::SetCookie);
        Ok(())
    }

    /// The session ended while the request ran (a concurrent logout, or
    /// expiry): never bring it back; drop this request's changes.
    fn ended_meanwhile(&self) -> Result<(), SessionError> {
        tracing::info!("session ended while the request ran; its changes are dropped");
        let expired = self.expired_cookie()?;
        let mut state = self.state();
        let finished = state.finished;
        *state = State::without_session(true, finished, Some(Outcome::SetCookie(expired)));
        Ok(())
    }

    /// Renews an unchanged stored session when less than `renew_threshold`
    /// of its lifetime is left: one `expires_in` read, and a renewing
    /// `get` only when due.
    async fn renew_store(&self, store: &Arc<dyn Store>) -> Result<(), SessionError> {
        let (id, meta) = {
            let state = self.state();
            match &state.existing_id {
                Some(id) if !state.written && !state.data.is_empty() => {
                    (id.clone(), state.meta.clone())
                }
                _ => return Ok(()),
            }
        };
        let Some(life) = self.lifetime(&meta, now_ms()) else {
            return Ok(());
        };
        if !life.renewable {
            return Ok(());
        }
        let key = self.key_of(&id);
        let every_access = self.renews_every_access() && life.ttl >= life.full;
        if !every_access {
            // One read to learn whether a renewal is due.
            let Some(left) = store.expires_in(&key).await? else {
                return Ok(());
            };
            if !self.should_renew(&life, left) {
                return Ok(());
            }
        }
        match store.get(&key, Some(life.ttl)).await? {
            Some(bytes) if !is_moved(&bytes) => {}
            // Ended, or its id changed by a concurrent request.
            _ => return self.ended_meanwhile(),
        }
        tracing::debug!("session expiry renewed");
        // A browser-session cookie has no Max-Age to refresh.
        let cookie = match life.cookie {
            Some(secs) => Some(self.cookie(&id, Some(secs))?),
            None => None,
        };
        let mut state = self.state();
        state.written = true;
        if let Some(cookie) = cookie {
            state.pending = Some(Outcome::SetCookie(cookie));
        }
        Ok(())
    }

    /// The stored session under `key` now, with this request's own changes
    /// applied on top, its metadata merged, and the stored bytes; `None`
    /// if it is gone (a logout, or expiry) or no longer a JSON object.
    async fn reload(
        &self,
        store: &Arc<dyn Store>,
        key: &str,
    ) -> Result<Option<(Map<String, Value>, Meta, Bytes)>, SessionError> {
        let Some(bytes) = store.get(key, None).await? else {
            return Ok(None);
        };
        if is_moved(&bytes) {
            // A concurrent request changed the id: this one is over.
            return Ok(None);
        }
        let Some(mut data) = parse(&bytes) else {
            return Ok(None);
        };
        let theirs = match self.split_meta(&mut data) {
            Ok(meta) => meta,
            Err(why) => {
                tracing::warn!(
                    reason = why.as_str(),
                    fingerprint = %fingerprint_of_key(key),
                    "the session's stored metadata is not valid; session ended"
                );
                store.delete(key).await?;
                return Ok(None);
            }
        };
        let state = self.state();
        for key in &state.removed {
            data.remove(key);
        }
        for (key, value) in &state.changes {
            data.insert(key.clone(), value.clone());
        }
        let meta = Meta {
            created: theirs.created.or(state.meta.created),
            expiry: if state.expiry_changed {
                state.meta.expiry
            } else {
                theirs.expiry
            },
            fp: theirs.fp.or_else(|| state.meta.fp.clone()),
        };
        Ok(Some((data, meta, bytes)))
    }

    /// Takes the metadata out of a stored session's `data` and checks it;
    /// under `litestar_compatible` there is none: the whole object is the
    /// Litestar application's session, a `__session_tower` key included.
    fn split_meta(&self, data: &mut Map<String, Value>) -> Result<Meta, InvalidMeta> {
        if self.inner.config.litestar_compatible() {
            return Ok(Meta::default());
        }
        Meta::split(data, now_ms())
    }

    /// `meta` as the next save will store it: with a creation time (under
    /// `absolute_lifetime`) and, client-side, a fingerprint seed, stamped
    /// now if missing, so a size check counts them.
    fn stamped(&self, meta: &Meta) -> Result<Meta, SessionError> {
        let mut meta = meta.clone();
        if self.inner.config.absolute_lifetime().is_some() && meta.created.is_none() {
            meta.created = Some(now_ms());
        }
        if matches!(self.inner.kind, Kind::Cookie { .. }) && meta.fp.is_none() {
            meta.fp = Some(new_seed()?);
        }
        Ok(meta)
    }

    /// How long a session with `meta` written at `now` (Unix ms) lives;
    /// `None` if it is past its absolute lifetime or fixed expiry.
    fn lifetime(&self, meta: &Meta, now: u64) -> Option<Lifetime> {
        let config = &self.inner.config;
        let (full, renewable, browser) = match meta.expiry {
            None => (config.max_age(), self.renews_on_access(), false),
            Some(StoredExpiry::OnSessionEnd) => (config.max_age(), self.renews_on_access(), true),
            Some(StoredExpiry::OnInactivity { secs }) => (Duration::from_secs(secs), true, false),
            Some(StoredExpiry::At { unix_ms }) => {
                if unix_ms <= now {
                    return None;
                }
                (Duration::from_millis(unix_ms - now), false, false)
            }
        };
        let mut ttl = full;
        if let (Some(absolute), Some(created)) = (config.absolute_lifetime(), meta.created) {
            let end = created.saturating_add(millis(absolute));
            if end <= now {
                return None;
            }
            ttl = ttl.min(Duration::from_millis(end - now));
        }
        Some(Lifetime {
            ttl,
            cookie: (!browser).then(|| ceil_secs(ttl)),
            full,
            renewable,
        })
    }

    /// Whether an access with `left` of the session's expiry remaining
    /// renews it: when renewing gains more than `1 - renew_threshold` of
    /// the lifetime, i.e. (without an absolute cap) when less than
    /// `renew_threshold` of it is left. A renewal the absolute lifetime
    /// would cut short is made only if it still gains that much.
    fn should_renew(&self, life: &Lifetime, left: Duration) -> bool {
        if !life.renewable {
            return false;
        }
        let gain = life.ttl.saturating_sub(left);
        if gain.is_zero() {
            return false;
        }
        self.renews_every_access()
            || gain > life.full.mul_f64(1.0 - self.inner.config.renew_threshold())
    }

    /// Whether an access renews the configured expiry: with
    /// `renew_on_access`, and always under `litestar_compatible`, where a
    /// Litestar application rewrites the session with a fresh `max_age` on
    /// every response that carries one, whatever its `renew_on_access`.
    fn renews_on_access(&self) -> bool {
        let config = &self.inner.config;
        config.renew_on_access() || config.litestar_compatible()
    }

    /// Whether a renewal is made on every access rather than once less
    /// than `renew_threshold` of the lifetime is left: a threshold of 1.0,
    /// and always under `litestar_compatible` (as Litestar does).
    fn renews_every_access(&self) -> bool {
        let config = &self.inner.config;
        config.renew_threshold() >= 1.0 || config.litestar_compatible()
    }

    /// The session as stored (data and metadata), refused if over
    /// `max_session_bytes`.
    fn serialize(&self, data: &Map<String, Value>, meta: &Meta) -> Result<Bytes, SessionError> {
        let value = encode(data, meta)?;
        let max = self.inner.config.max_session_bytes();
        if value.len() > max {
            return Err(SessionError::TooLarge {
                size: value.len(),
                max,
            });
        }
        Ok(value)
    }

    fn cookie(&self, id: &str, max_age: Option<u64>) -> Result<HeaderValue, SessionError> {
        let config = &self.inner.config;
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
        let now = now_ms();
        let opened = match &offered.value {
            None => return,
            Some(Ok((value, count))) => side
                .open(config, value, *count, now / 1000)
                .map_err(|refused| refused.as_str()),
            Some(Err(refused)) => Err(refused.as_str()),
        };
        let opened = opened.and_then(|opened| {
            let mut data = opened.data;
            let mut meta = Meta::split(&mut data, now).map_err(InvalidMeta::as_str)?;
            // The age the sealed expiry may not exceed, by the session's
            // mode (a fixed time is bounded by the sealed expiry itself).
            let bound = match meta.expiry {
                None | Some(StoredExpiry::OnSessionEnd) => config.max_age().as_secs(),
                Some(StoredExpiry::OnInactivity { secs }) => secs,
                Some(StoredExpiry::At { .. }) => limits::MAX_MAX_AGE.as_secs(),
            };
            if now / 1000 >= opened.issued_at.saturating_add(bound) {
                return Err("expired");
            }
            let stamp = config.absolute_lifetime().is_some() && meta.created.is_none();
            if stamp {
                meta.created = Some(now);
            }
            if self.lifetime(&meta, now).is_none() {
                return Err("past its absolute lifetime or fixed expiry");
            }
            Ok((data, meta, opened.expires_at, opened.current_key, stamp))
        });
        match opened {
            Ok((data, meta, expires_at, current_key, stamp)) => {
                state.data = data;
                state.meta = meta;
                state.expires_at = Some(expires_at);
                state.modified = stamp;
                if !current_key {
                    tracing::debug!(
                        "session cookie opened with an older key; it is sealed with the first key on its next write"
                    );
                }
            }
            Err(reason) => {
                tracing::debug!(reason, "session cookie refused; the request has no session");
            }
        }
    }

    /// Client-side: whether an unchanged session is due a renewal (sealed
    /// again with a new expiry).
    fn cookie_renewal_due(&self) -> bool {
        let (meta, expires_at) = {
            let state = self.state();
            if state.data.is_empty() || state.written {
                return false;
            }
            (state.meta.clone(), state.expires_at)
        };
        let Some(at) = expires_at else {
            return false;
        };
        let now = now_ms();
        let Some(life) = self.lifetime(&meta, now) else {
            return false;
        };
        let left = Duration::from_millis(at.saturating_mul(1000).saturating_sub(now));
        self.should_renew(&life, left)
    }

    /// Client-side: the cookies to send. A changed (or renewed) session is
    /// sealed again with the first key and a new expiry; an emptied one
    /// expires its cookies. Either way, every cookie of the session's
    /// family that the request sent and the new layout does not use is
    /// expired in the same response.
    fn persist_cookie(&self, side: &ClientSide, offered: &Offered) -> Result<(), SessionError> {
        let (data, mut meta) = {
            let state = self.state();
            if !state.modified {
                return Ok(());
            }
            (state.data.clone(), state.meta.clone())
        };
        let config = &self.inner.config;
        let now = now_ms();
        let mut cookies = Vec::new();
        let mut set = Vec::new();
        let mut expires_at = None;
        if !data.is_empty() {
            if config.absolute_lifetime().is_some() && meta.created.is_none() {
                meta.created = Some(now);
            }
            if meta.fp.is_none() {
                meta.fp = Some(new_seed()?);
            }
            if let Some(life) = self.lifetime(&meta, now) {
                let json = encode(&data, &meta)?;
                let (pairs, at) = side.seal(config, &json, now / 1000, ceil_secs(life.ttl))?;
                for (name, value) in &pairs {
                    cookies.push(
                        cookie::set_named_cookie(config, name, value, life.cookie)
                            .map_err(bad_cookie)?,
                    );
                }
                set = pairs.into_iter().map(|(name, _)| name).collect();
                expires_at = Some(at);
            }
        }
        for name in &offered.present {
            if !set.contains(name) {
                cookies.push(cookie::expired_named(config, name).map_err(bad_cookie)?);
            }
        }
        let mut state = self.state();
        if expires_at.is_none() {
            state.data.clear();
            meta = Meta::default();
        }
        state.meta = meta;
        state.expires_at = expires_at;
        state.written_back();
        state.written = true;
        state.pending = (!cookies.is_empty()).then_some(Outcome::SetCookies(cookies));
        Ok(())
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

/// What `cycle_id`'s save leaves under the old key between taking the old
/// row and deleting it: a tombstone every reader of this crate takes for
/// "no session" (matched byte for byte, before parsing, in every mode).
/// Outside `litestar_compatible` its metadata is invalid on purpose, so a
/// reader that missed the check would still end the session, never adopt
/// it. It normally lives for the two store calls of the id change.
const MOVED: &[u8] = br#"{"__session_tower":"moved"}"#;

/// The expiry of the tombstone, in case the process stops before deleting
/// it.
const MOVED_TTL: Duration = Duration::from_secs(60);

/// Whether a stored value is [`MOVED`].
fn is_moved(bytes: &[u8]) -> bool {
    bytes == MOVED
}

/// A stored session: a JSON object, else `None`.
fn parse(bytes: &[u8]) -> Option<Map<String, Value>> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Some(map),
        _ => None,
    }
}

/// `value` as a `T`, or an error naming `key`, `T` and the JSON kind of the
/// value: serde's own message quotes the value, which may be a secret.
fn typed<T: DeserializeOwned>(key: &str, value: Value) -> Result<T, SessionError> {
    let found = match &value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    serde_json::from_value(value).map_err(|_| SessionError::Deserialize {
        key: key.to_owned(),
        expected: std::any::type_name::<T>(),
        found,
    })
}

/// The session as stored: its data, and the metadata under
/// [`METADATA_KEY`] when there is any.
fn encode(data: &Map<String, Value>, meta: &Meta) -> Result<Bytes, SessionError> {
    serde_json::to_vec(&Stored { data, meta })
        .map(Bytes::from)
        .map_err(|source| SessionError::Serialize {
            key: String::new(),
            source,
        })
}

/// A client-side session's fingerprint seed: 12 random bytes from the OS
/// CSPRNG, in lowercase hex.
fn new_seed() -> Result<String, SessionError> {
    session_core::generate_session_id(SEED_HEX_DIGITS / 2).map_err(SessionError::Store)
}

/// The serialized length of the session as stored.
fn stored_len(data: &Map<String, Value>, meta: &Meta) -> usize {
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
    let _ = serde_json::to_writer(&mut counter, &Stored { data, meta });
    counter.0
}
