//! Server-side sessions for tower and axum services, over any
//! [`session_core::Store`], configured by [`SessionConfig`] (the cookie and
//! session settings, with Rust names; Litestar's spellings still load from
//! files).
//!
//! Add [`SessionLayer`] around your routes and take [`Session`] in handlers.
//! The browser holds only a random session id (by default 32 bytes from the
//! OS CSPRNG); the data, a JSON object, lives in the store under the
//! SHA-256 of that id.
//!
//! ```
//! use axum::{Router, routing::{get, post}};
//! use session_core::MemoryStore;
//! use session_tower::{Session, SessionConfig, SessionError, SessionLayer};
//!
//! async fn login(session: Session) -> Result<&'static str, SessionError> {
//!     session.cycle_id().await?; // a new id on every login
//!     session.insert("user_id", 42).await?;
//!     Ok("logged in")
//! }
//!
//! async fn whoami(session: Session) -> Result<String, SessionError> {
//!     Ok(match session.get::<u64>("user_id").await? {
//!         Some(id) => format!("user {id}"),
//!         None => "anonymous".into(),
//!     })
//! }
//!
//! async fn logout(session: Session) -> Result<&'static str, SessionError> {
//!     session.clear().await?;
//!     Ok("bye")
//! }
//!
//! let config = SessionConfig::builder().secure(true).build().unwrap();
//! let app: Router = Router::new()
//!     .route("/login", post(login))
//!     .route("/whoami", get(whoami))
//!     .route("/logout", post(logout))
//!     .layer(SessionLayer::new(MemoryStore::new(), config));
//! # let _ = app;
//! ```
//!
//! # Client-side sessions
//!
//! [`SessionLayer::client_side`] keeps the session in the browser instead:
//! no store at all. The whole session is sealed with AES-256-GCM
//! ([`CookieKeys`]: the first key seals, every key opens, for rotation),
//! its expiry inside, and split over `<name>-0`, `<name>-1`, ... when it
//! outgrows one cookie ([`ClientSideConfig::max_cookie_bytes`] caps the
//! total; beyond it, a `413`). Handlers use the same [`Session`].
//!
//! What it cannot do: a logout expires the browser's cookie, but a copy of
//! it taken earlier still opens until its sealed expiry, so keep `max_age`
//! short where that matters; and the session is as small as cookies are.
//!
//! ```
//! use axum::{Router, routing::get};
//! use session_tower::{ClientSideConfig, Session, SessionConfig, SessionError, SessionLayer};
//!
//! async fn whoami(session: Session) -> Result<String, SessionError> {
//!     Ok(session.get::<String>("user").await?.unwrap_or_else(|| "anonymous".into()))
//! }
//!
//! let client = ClientSideConfig::builder()
//!     .secret_keys(["a secret of 32 bytes or more, from a secret store"])
//!     .build()?;
//! let config = SessionConfig::builder()
//!     .secure(true)
//!     .max_age(std::time::Duration::from_secs(3600))
//!     .build()?;
//! let app: Router = Router::new()
//!     .route("/whoami", get(whoami))
//!     .layer(SessionLayer::client_side(client, config)?);
//! # let _ = app;
//! # Ok::<(), session_core::Error>(())
//! ```
//!
//! With a store, [`SessionLayer::with_signed_ids`] signs the id cookie with
//! HMAC-SHA256: a forged or altered id reaches no store.

mod chunks;
mod client_side;
mod config;
mod cookie;
mod error;
#[cfg(feature = "axum")]
mod extract;
mod keys;
mod layer;
mod meta;
mod sealed;
mod session;
mod skip;
mod store_key;

pub use client_side::{ClientSideConfig, ClientSideConfigBuilder, client_limits};
pub use config::{SameSite, Scope, SessionConfig, SessionConfigBuilder, limits};
pub use error::SessionError;
pub use keys::{CookieKeys, MIN_SECRET_BYTES};
pub use layer::{SessionLayer, SessionService};
pub use meta::{Expiry, METADATA_KEY, fingerprint_of_key};
pub use session::Session;
pub use skip::{SkipSession, SkipSessionLayer, SkipSessionService};
pub use store_key::store_key;

/// The field an [`InvalidConfig`](session_core::Error::InvalidConfig) error
/// names; panics on any other error.
#[cfg(test)]
pub(crate) fn field(err: session_core::Error) -> String {
    match err {
        session_core::Error::InvalidConfig { field, .. } => field,
        other => panic!("expected InvalidConfig, got {other:?}"),
    }
}
