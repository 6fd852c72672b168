//! The core of the session-store workspace: the async [`Store`] trait every
//! backend implements (the request path), [`StoreAdmin`] and [`Connector`]
//! (the operations side: migrations, cleanup, opening by URL), the
//! [`Error`] they share, the one migration runner ([`migrate::run`]), the
//! configuration conventions ([`StoreConfig`], [`ExtensionConfig`] for
//! SQLSpec's `{"litestar": {...}}` shape), table-name and key validation,
//! session-id generation, and [`MemoryStore`], the reference
//! implementation. It knows no backend and no HTTP.
//!
//! Depend on this crate plus the one adapter you need
//! (`session-postgres`, `session-sqlite`, `session-oracle`), or implement
//! [`Store`] yourself and prove it with `session-conformance`.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use bytes::Bytes;
//! use session_core::{MemoryStore, Store};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> session_core::Result<()> {
//! let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
//! store.set("user:1", Bytes::from_static(b"{}"), Some(Duration::from_secs(3600))).await?;
//! assert!(store.exists("user:1").await?);
//! # Ok(()) }
//! ```

pub mod admin;
pub mod cleanup;
mod error;
mod extension;
mod identifier;
mod key;
mod memory;
pub mod migrate;
mod session_id;
mod store;
mod store_config;

pub use admin::{Connector, StoreAdmin};
pub use error::{BoxError, Error, Result, error_chain};
pub use extension::{DEFAULT_SESSION_TABLE, EXTENSION, ExtensionConfig, SESSION_TABLE_KEY};
pub use identifier::{MAX_IDENTIFIER_LEN, TableName, validate_identifier};
pub use key::{
    DEFAULT_KEY_PREFIX, MAX_KEY_BYTES, MAX_KEY_PREFIX_BYTES, validate_key, validate_key_prefix,
};
pub use memory::MemoryStore;
pub use session_id::{generate_session_id, is_well_formed_session_id};
pub use store::{Store, non_zero};
pub use store_config::{StoreConfig, duration, read_document};

/// Re-exported so store authors implement [`Store`] with the same
/// `async-trait` version.
pub use async_trait::async_trait;
/// Re-exported: the value type of every store.
pub use bytes::Bytes;
