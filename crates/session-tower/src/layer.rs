//! [`SessionLayer`] and the service it wraps handlers in.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::{SET_COOKIE, UPGRADE};
use http::{Request, Response, StatusCode};
use session_core::Store;
use tower_layer::Layer;
use tower_service::Service;
use tracing::Instrument;

use crate::session::Outcome;
use crate::{Scope, Session, SessionConfig, SkipSession, cookie};

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
///   existing one with [`Store::update`], so a concurrent logout is never
///   undone;
/// * the store key is the SHA-256 of the id unless `hash_session_ids` is off.
///
/// A store failure while saving becomes a `500` response and a `tracing`
/// error event carrying the cause.
#[derive(Clone)]
pub struct SessionLayer {
    store: Arc<dyn Store>,
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
            store,
            config: Arc::new(config),
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }
}

impl std::fmt::Debug for SessionLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionLayer")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<S> Layer<S> for SessionLayer {
    type Service = SessionService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SessionService {
            inner,
            store: self.store.clone(),
            config: self.config.clone(),
        }
    }
}

/// The service made by [`SessionLayer`].
#[derive(Clone)]
pub struct SessionService<S> {
    inner: S,
    store: Arc<dyn Store>,
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
        let cookie_id = cookie::offered_id(req.headers(), &self.config);
        let session = Session::new(self.store.clone(), self.config.clone(), cookie_id);
        req.extensions_mut().insert(session.clone());
        let span = tracing::debug_span!("session", store = self.config.store_label());
        Box::pin(
            async move {
                let mut response = inner.call(req).await?;
                match session.finish().await {
                    Ok(Outcome::Untouched) => {}
                    Ok(Outcome::SetCookie(cookie)) => {
                        response.headers_mut().append(SET_COOKIE, cookie);
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
