//! The axum extractor.

use axum_core::extract::FromRequestParts;
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
