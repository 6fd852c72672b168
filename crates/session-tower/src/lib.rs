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

mod config;
mod cookie;
mod error;
#[cfg(feature = "axum")]
mod extract;
mod layer;
mod session;
mod skip;
mod store_key;

pub use config::{SameSite, Scope, SessionConfig, SessionConfigBuilder, limits};
pub use error::SessionError;
pub use layer::{SessionLayer, SessionService};
pub use session::Session;
pub use skip::{SkipSession, SkipSessionLayer, SkipSessionService};
pub use store_key::store_key;
