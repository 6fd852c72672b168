//! [`StoreAdmin`] for [`MemcachedStore`]: no schema, no cleanup.

use session_core::{Result, StoreAdmin, async_trait};
use tracing::Instrument;

use crate::error::BACKEND;
use crate::store::MemcachedStore;

#[async_trait]
impl StoreAdmin for MemcachedStore {
    /// `memcached prefix <prefix> at <host:port>[,...]`.
    fn describe(&self) -> String {
        format!("{BACKEND} prefix {} at {}", self.prefix(), self.address())
    }

    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn location(&self) -> String {
        self.prefix().to_owned()
    }

    /// memcached has no table: true if the servers answer a read of the
    /// namespace generation, so that the CLI proves its URL.
    async fn session_table_exists(&self) -> Result<bool> {
        self.load_generation("session_table_exists")
            .instrument(self.span("session_table_exists"))
            .await?;
        Ok(true)
    }
}
