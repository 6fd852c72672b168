//! The axum extractors: `Session`, and `Option<Session>` for routes that
//! may run without the layer.

use std::convert::Infallible;

use axum_core::extract::{FromRequestParts, OptionalFromRequestParts};
use http::request::Parts;

use crate::{Session, SessionError};

/// Extracts the request's [`Session`]; fails with
/// [`SessionError::Missing`] (a `500`) when the `SessionLayer` is not
/// installed or the route skips sessions.
impl<S: Send + Sync> FromRequestParts<S> for Session {
    type Rejection = SessionError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Session>()
            .cloned()
            .ok_or(SessionError::Missing)
    }
}

/// `Option<Session>`: `None`, never a rejection, when the `SessionLayer`
/// is not installed on the route, the path is excluded, or the route skips
/// sessions; for handlers shared between routes with and without sessions.
///
/// ```
/// use axum::{Router, routing::get};
/// use session_core::MemoryStore;
/// use session_tower::{Session, SessionConfig, SessionError, SessionLayer};
///
/// async fn greeting(session: Option<Session>) -> Result<String, SessionError> {
///     Ok(match session {
///         Some(session) => match session.get::<String>("user").await? {
///             Some(user) => format!("hello {user}"),
///             None => "hello".into(),
///         },
///         None => "hello (no sessions here)".into(),
///     })
/// }
///
/// let with = Router::new()
///     .route("/", get(greeting))
///     .layer(SessionLayer::new(MemoryStore::new(), SessionConfig::default()));
/// let without: Router = Router::new().route("/health", get(greeting)).merge(with);
/// # let _ = without;
/// ```
impl<S: Send + Sync> OptionalFromRequestParts<S> for Session {
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<Session>().cloned())
    }
}
