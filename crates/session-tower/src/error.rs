//! [`SessionError`]: what session access in a handler can fail with.

/// An error from a session operation in a handler, or from the middleware.
///
/// With the `axum` feature it is an `IntoResponse`: a store failure becomes
/// `500 Internal Server Error` (the cause is logged with `tracing`, never
/// sent to the client), an oversized session `413 Payload Too Large`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The store failed; the cause is kept.
    #[error("session store failed")]
    Store(#[from] session_core::Error),

    /// A value could not be turned into JSON.
    #[error("session value `{key}` could not be serialized")]
    Serialize {
        /// The session key being written.
        key: String,
        /// serde_json's error.
        #[source]
        source: serde_json::Error,
    },

    /// A stored value does not have the type asked for. The message names
    /// the key, the type asked for and the JSON kind of what is stored,
    /// never the stored value itself (it may be a secret, and a `500`
    /// logs this error at `ERROR`).
    #[error("session value `{key}` is not a `{expected}` (it is stored as a JSON {found})")]
    Deserialize {
        /// The session key being read.
        key: String,
        /// The Rust type asked for (`std::any::type_name`).
        expected: &'static str,
        /// The JSON kind of the stored value: `null`, `boolean`, `number`,
        /// `string`, `array` or `object`.
        found: &'static str,
    },

    /// [`METADATA_KEY`](crate::METADATA_KEY) is the middleware's own; a
    /// handler cannot insert it.
    #[error("session key `{key}` is reserved for the middleware's metadata")]
    ReservedKey {
        /// The refused key.
        key: String,
    },

    /// [`Session::set_expiry`](crate::Session::set_expiry) was given a
    /// mode this session cannot take: out of range, or, under
    /// `litestar_compatible`, any mode but `Expiry::Configured`.
    #[error("invalid session expiry: {0}")]
    InvalidExpiry(String),

    /// [`Session::save`](crate::Session::save) was called after the
    /// response left the middleware, for a change that needs a new cookie
    /// (a new session, `cycle_id`, another expiry, any client-side
    /// change): the browser can no longer receive it. Nothing was written.
    #[error(
        "the response has been sent: this change needs a new session cookie and cannot be saved now"
    )]
    ResponseSent,

    /// The change would make the serialized session larger than
    /// `max_session_bytes`; it was not applied.
    #[error("the session would be {size} bytes serialized, more than the limit of {max}")]
    TooLarge {
        /// The size the session would have had.
        size: usize,
        /// The configured `max_session_bytes`.
        max: usize,
    },

    /// The stored session is not a JSON object, and the config is
    /// `litestar_compatible`: another application (a Litestar app with a
    /// custom serializer) wrote data this middleware cannot represent. The
    /// row is left as it is; the request fails rather than replace it.
    #[error(
        "the stored session is not a JSON object (was it written with a serializer other than JSON?); it is left untouched"
    )]
    Unreadable,

    /// The request carries no session: the `SessionLayer` is not installed
    /// on this route, or the route skips sessions.
    #[error("no session on this request: the SessionLayer is missing or the route skips sessions")]
    Missing,
}

#[cfg(feature = "axum")]
impl axum_core::response::IntoResponse for SessionError {
    fn into_response(self) -> axum_core::response::Response {
        use http::StatusCode;
        let status = match &self {
            SessionError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status.is_server_error() {
            tracing::error!(error = %session_core::error_chain(&self), "session error");
        }
        let body = match &self {
            SessionError::TooLarge { max, .. } => {
                format!("session data too large (at most {max} bytes)")
            }
            _ => "internal server error".to_owned(),
        };
        (status, body).into_response()
    }
}
