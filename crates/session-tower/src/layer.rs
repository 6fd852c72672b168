//! [`SessionLayer`] and the service it wraps handlers in.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::{CACHE_CONTROL, SET_COOKIE, UPGRADE, VARY};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use session_core::Store;
use tower_layer::Layer;
use tower_service::Service;
use tracing::Instrument;

use crate::client_side::ClientSide;
use crate::session::{Backend, Outcome};
use crate::{
    ClientSideConfig, CookieKeys, Scope, Session, SessionConfig, SessionError, SkipSession,
};

/// Adds server-side sessions to every request of the wrapped service.
///
/// For each request not excluded (by `exclude` patterns, `scopes`, or a
/// [`SkipSessionLayer`](crate::SkipSessionLayer) on the route), it puts a
/// [`Session`] in the request's extensions. The session loads itself from
/// the store when a handler first touches it, and after the handler the
/// layer writes it back only if it changed, then sets the cookie:
///
/// * a cookie whose value is not a well-formed id is ignored without any
///   store call; a well-formed id the store does not hold is never adopted;
/// * a new session is written with [`Store::create`] under a fresh id, an
///   existing one with [`Store::compare_and_set`] of the bytes it was
///   loaded from (a concurrent request's save is merged, a concurrent
///   logout is never undone);
/// * the store key is the SHA-256 of the id unless `hash_session_ids` is off.
///
/// A store failure while saving becomes a `500` response and a `tracing`
/// error event carrying the cause; a session too large to save, a `413`.
/// A handler's own `5xx` response is not saved after (unless
/// `skip_save_on_server_error` is off): a failed request never
/// half-writes a session.
///
/// A response that carries the session's `Set-Cookie` is made uncacheable
/// by shared caches: `Cache-Control: no-store` (or, if the handler set its
/// own `Cache-Control`, `private` put in front of it, `public` removed,
/// unless it already says `private` or `no-store`), and `Cookie` appended
/// to `Vary`.
///
/// The backend is chosen when the layer is built: a store
/// ([`new`](Self::new), [`with_shared`](Self::with_shared), optionally with
/// [signed id cookies](Self::with_signed_ids)), or the browser
/// ([`client_side`](Self::client_side): the session sealed in its cookies,
/// no store at all). Handlers use the same [`Session`] either way.
#[derive(Clone)]
pub struct SessionLayer {
    backend: Backend,
    config: Arc<SessionConfig>,
}

impl SessionLayer {
    /// A layer over `store` with `config`.
    pub fn new(store: impl Store + 'static, config: SessionConfig) -> Self {
        Self::with_shared(Arc::new(store), config)
    }

    /// A layer over a store already shared as `Arc<dyn Store>`.
    pub fn with_shared(store: Arc<dyn Store>, config: SessionConfig) -> Self {
        SessionLayer {
            backend: Backend::Store {
                store,
                signer: None,
            },
            config: Arc::new(config),
        }
    }

    /// Client-side sessions: no store; the whole session, serialized to
    /// JSON, is sealed with AES-256-GCM under the first of `client`'s keys
    /// and sent as the cookie `config.cookie_name()` (split over
    /// `<name>-0`, `<name>-1`, ... when larger than one cookie holds). The
    /// session's expiry (`max_age`) is sealed inside: an older cookie is
    /// no session even if the browser sends it. A cookie that does not open
    /// (tampered, truncated, chunks missing or mixed, from a removed key,
    /// expired) is no session, never an error.
    ///
    /// What the browser holds cannot be revoked: after a logout, a copy of
    /// the cookie taken earlier still opens until it expires. Keep
    /// `max_age` short where that matters, or use a store.
    ///
    /// # Errors
    ///
    /// [`session_core::Error::InvalidConfig`] naming the field: the cookie's
    /// attributes (`path`, `domain`, `cookie_name`) leave less than 1 KiB
    /// of a 4 KiB cookie for the value, `max_cookie_bytes` cannot hold even
    /// an empty session, or `litestar_compatible` is set (Litestar's own
    /// cookie backend uses another format).
    ///
    /// # Examples
    ///
    /// ```
    /// use axum::{Router, routing::get};
    /// use session_tower::{ClientSideConfig, Session, SessionConfig, SessionError, SessionLayer};
    ///
    /// async fn visits(session: Session) -> Result<String, SessionError> {
    ///     let n: u64 = session.get("visits").await?.unwrap_or(0) + 1;
    ///     session.insert("visits", n).await?;
    ///     Ok(format!("visit number {n}"))
    /// }
    ///
    /// let client = ClientSideConfig::builder()
    ///     .secret_keys(["read this from a secret store, 32 bytes or more"])
    ///     .build()?;
    /// let config = SessionConfig::builder()
    ///     .secure(true)
    ///     .max_age(std::time::Duration::from_secs(3600))
    ///     .build()?;
    /// let app: Router = Router::new()
    ///     .route("/", get(visits))
    ///     .layer(SessionLayer::client_side(client, config)?);
    /// # let _ = app;
    /// # Ok::<(), session_core::Error>(())
    /// ```
    pub fn client_side(
        client: ClientSideConfig,
        config: SessionConfig,
    ) -> Result<Self, session_core::Error> {
        if config.litestar_compatible() {
            return Err(session_core::Error::invalid_config(
                "litestar_compatible",
                "applies to sessions in a store shared with Litestar; client-side sessions \
                 use their own cookie format",
            ));
        }
        let side = ClientSide::new(client, &config)?;
        Ok(SessionLayer {
            backend: Backend::Cookie(Arc::new(side)),
            config: Arc::new(config),
        })
    }

    /// Signed id cookies for a store-backed layer: the cookie carries the
    /// session id and its HMAC-SHA256 (`<id>.<signature>`, the signature
    /// under the first of `keys`, verified under any of them). A cookie
    /// whose signature does not verify (an unsigned id, a forged or
    /// altered one) is ignored before any store call.
    ///
    /// Ids are already random and unguessable; signing adds a check that
    /// costs no store round trip, so a flood of made-up ids never reaches
    /// the database. Turning it on logs everyone out once (their unsigned
    /// cookies no longer verify).
    ///
    /// A client-side layer ignores this: its cookie is sealed already.
    ///
    /// # Errors
    ///
    /// [`session_core::Error::InvalidConfig`] naming `litestar_compatible`
    /// when the layer's config sets it: a Litestar application reads the
    /// raw id from the cookie, and would take `<id>.<signature>` for an
    /// unknown id (each side would log the other's users out).
    ///
    /// # Examples
    ///
    /// ```
    /// use session_core::MemoryStore;
    /// use session_tower::{CookieKeys, SessionConfig, SessionLayer};
    ///
    /// let keys = CookieKeys::new("read this from a secret store, 32 bytes or more")?;
    /// let layer = SessionLayer::new(MemoryStore::new(), SessionConfig::default())
    ///     .with_signed_ids(keys)?;
    /// # let _ = layer;
    ///
    /// // Refused beside a Litestar application, which reads raw ids.
    /// let litestar = SessionConfig::builder().litestar_compatible(true).build()?;
    /// let keys = CookieKeys::new("read this from a secret store, 32 bytes or more")?;
    /// let err = SessionLayer::new(MemoryStore::new(), litestar)
    ///     .with_signed_ids(keys)
    ///     .unwrap_err();
    /// assert!(err.to_string().contains("litestar_compatible"));
    /// # Ok::<(), session_core::Error>(())
    /// ```
    pub fn with_signed_ids(mut self, keys: CookieKeys) -> Result<Self, session_core::Error> {
        match &mut self.backend {
            Backend::Store { .. } if self.config.litestar_compatible() => {
                return Err(session_core::Error::invalid_config(
                    "litestar_compatible",
                    "cannot be used with signed id cookies (`with_signed_ids`): a Litestar \
                     application reads the raw session id from the cookie and would not \
                     recognise `<id>.<signature>`",
                ));
            }
            Backend::Store { signer, .. } => *signer = Some(Arc::new(keys)),
            Backend::Cookie(_) => {
                tracing::debug!("signed ids ignored: a client-side session's cookie is sealed");
            }
        }
        Ok(self)
    }

    /// True if the layer keeps sessions in the browser
    /// ([`client_side`](Self::client_side)).
    pub fn is_client_side(&self) -> bool {
        matches!(self.backend, Backend::Cookie(_))
    }

    /// The configuration in use.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }
}

impl std::fmt::Debug for SessionLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let backend = match &self.backend {
            Backend::Store { signer: None, .. } => "store",
            Backend::Store {
                signer: Some(_), ..
            } => "store, signed ids",
            Backend::Cookie(_) => "client-side cookie",
        };
        f.debug_struct("SessionLayer")
            .field("backend", &backend)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<S> Layer<S> for SessionLayer {
    type Service = SessionService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SessionService {
            inner,
            backend: self.backend.clone(),
            config: self.config.clone(),
        }
    }
}

/// The service made by [`SessionLayer`].
#[derive(Clone)]
pub struct SessionService<S> {
    inner: S,
    backend: Backend,
    config: Arc<SessionConfig>,
}

impl<S> std::fmt::Debug for SessionService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionService").finish_non_exhaustive()
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S> SessionService<S> {
    fn handles<B>(&self, req: &Request<B>) -> bool {
        if req.extensions().get::<SkipSession>().is_some() {
            return false;
        }
        let websocket = req
            .headers()
            .get(UPGRADE)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"));
        let scope = if websocket {
            Scope::Websocket
        } else {
            Scope::Http
        };
        self.config.scopes().contains(&scope) && !self.config.is_excluded(req.uri().path())
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for SessionService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Response<ResBody>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        // The clone is ready-less; the ready one serves this request.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        if !self.handles(&req) {
            return Box::pin(inner.call(req));
        }
        let session = Session::from_request(&self.backend, self.config.clone(), req.headers());
        req.extensions_mut().insert(session.clone());
        let span = tracing::debug_span!("session", store = self.config.store_label());
        let skip_on_error = self.config.skip_save_on_server_error();
        Box::pin(
            async move {
                let mut response = inner.call(req).await?;
                let write =
                    !(skip_on_error && response.status().is_server_error());
                match session.finish(write).await {
                    Ok(Outcome::Untouched) => {}
                    Ok(Outcome::SetCookie(cookie)) => {
                        response.headers_mut().append(SET_COOKIE, cookie);
                        not_for_shared_caches(response.headers_mut());
                    }
                    Ok(Outcome::SetCookies(cookies)) => {
                        for cookie in cookies {
                            response.headers_mut().append(SET_COOKIE, cookie);
                        }
                        not_for_shared_caches(response.headers_mut());
                    }
                    Err(SessionError::TooLarge { size, max }) => {
                        tracing::info!(size, max, "session too large to save; answering 413");
                        let mut failed = Response::new(ResBody::default());
                        *failed.status_mut() = StatusCode::PAYLOAD_TOO_LARGE;
                        return Ok(failed);
                    }
                    Err(err) => {
                        tracing::error!(error = %session_core::error_chain(&err), "saving the session failed");
                        let mut failed = Response::new(ResBody::default());
                        *failed.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                        return Ok(failed);
                    }
                }
                Ok(response)
            }
            .instrument(span),
        )
    }
}

/// Keeps a response that sets the session cookie out of shared caches: a
/// cache that stored it would hand one user's session to the next.
///
/// * no `Cache-Control`: `no-store`;
/// * a `Cache-Control` that says neither `private` nor `no-store`:
///   `private` in front of it (and `public`, which contradicts it,
///   removed), its other directives (`max-age`, ...) kept for the
///   browser's own cache;
/// * `Vary: Cookie` appended, unless `Vary` already names `Cookie` or is
///   `*`.
fn not_for_shared_caches(headers: &mut HeaderMap) {
    let directives: Vec<String> = headers
        .get_all(CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|d| d.trim().to_owned())
        .filter(|d| !d.is_empty())
        .collect();
    let named = |list: &[String], name: &str| {
        list.iter().any(|d| {
            let key = d.split('=').next().unwrap_or("").trim();
            key.eq_ignore_ascii_case(name)
        })
    };
    if headers.get(CACHE_CONTROL).is_none() {
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    } else if !named(&directives, "private") && !named(&directives, "no-store") {
        let mut value = vec!["private".to_owned()];
        value.extend(
            directives
                .into_iter()
                .filter(|d| !d.eq_ignore_ascii_case("public")),
        );
        match HeaderValue::from_str(&value.join(", ")) {
            Ok(value) => {
                headers.insert(CACHE_CONTROL, value);
            }
            // Not visible ASCII: replaced by what is safe.
            Err(_) => {
                headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            }
        }
    }
    let varies = headers
        .get_all(VARY)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|f| {
            let f = f.trim();
            f == "*" || f.eq_ignore_ascii_case("cookie")
        });
    if !varies {
        headers.append(VARY, HeaderValue::from_static("Cookie"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn after(cache_control: &[&str], vary: &[&str]) -> (Vec<String>, Vec<String>) {
        let mut headers = HeaderMap::new();
        for v in cache_control {
            headers.append(CACHE_CONTROL, HeaderValue::from_str(v).unwrap());
        }
        for v in vary {
            headers.append(VARY, HeaderValue::from_str(v).unwrap());
        }
        not_for_shared_caches(&mut headers);
        let all = |name| {
            headers
                .get_all(name)
                .iter()
                .map(|v| v.to_str().unwrap().to_owned())
                .collect()
        };
        (all(CACHE_CONTROL), all(VARY))
    }

    #[test]
    fn cache_headers_keep_the_session_out_of_shared_caches() {
        assert_eq!(
            after(&[], &[]),
            (vec!["no-store".into()], vec!["Cookie".into()])
        );
        assert_eq!(
            after(&["public, max-age=60"], &["Accept-Encoding"]),
            (
                vec!["private, max-age=60".into()],
                vec!["Accept-Encoding".into(), "Cookie".into()]
            )
        );
        assert_eq!(
            after(&["max-age=60", "must-revalidate"], &[]).0,
            vec!["private, max-age=60, must-revalidate".to_owned()]
        );
        assert_eq!(
            after(&["Private, max-age=5"], &["cookie"]).0,
            vec!["Private, max-age=5".to_owned()]
        );
        assert_eq!(
            after(&["private"], &["cookie"]).1,
            vec!["cookie".to_owned()]
        );
        assert_eq!(
            after(&["no-store"], &["*"]),
            (vec!["no-store".into()], vec!["*".into()])
        );
        assert_eq!(
            after(&["private=\"set-cookie\""], &[]).0,
            vec!["private=\"set-cookie\"".to_owned()]
        );
    }
}
