//! Per-route opt-out: [`SkipSessionLayer`].

use std::task::{Context, Poll};

use http::Request;
use tower_layer::Layer;
use tower_service::Service;

use crate::Session;

/// A request extension that makes [`SessionLayer`](crate::SessionLayer)
/// pass the request through untouched. Insert it from a layer that runs
/// before the session layer, or use [`SkipSessionLayer`] on a route.
#[derive(Debug, Clone, Copy, Default)]
pub struct SkipSession;

/// Opts a route out of sessions (Litestar's `skip_session` route option):
/// the handler gets no [`Session`], and the middleware neither loads nor
/// saves one nor sets a cookie. With axum, add it with `route_layer`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SkipSessionLayer;

impl<S> Layer<S> for SkipSessionLayer {
    type Service = SkipSessionService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        SkipSessionService { inner }
    }
}

/// The service made by [`SkipSessionLayer`].
#[derive(Debug, Clone)]
pub struct SkipSessionService<S> {
    inner: S,
}

impl<S, B> Service<Request<B>> for SkipSessionService<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        if let Some(session) = req.extensions_mut().remove::<Session>() {
            session.skip();
        }
        req.extensions_mut().insert(SkipSession);
        self.inner.call(req)
    }
}
