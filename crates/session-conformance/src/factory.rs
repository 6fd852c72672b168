//! [`StoreFactory`]: how the suite gets a fresh store for each case.

use std::fmt;
use std::future::Future;

use session_core::Store;

/// Makes a fresh, isolated store for each case: its own table or keyspace,
/// so cases run in parallel and `delete_all` in one case cannot reach
/// another's data.
///
/// Any `Fn() -> impl Future<Output = S>` closure is a factory. Implement the
/// trait yourself when a store may not be available (a database that is not
/// reachable on this machine): return [`Skip`] and the case reports itself
/// skipped, with the reason, instead of failing.
pub trait StoreFactory: Send + Sync {
    /// The store type made.
    type Store: Store + 'static;

    /// A new, empty store, isolated from every other store it made.
    fn new_store(&self) -> impl Future<Output = Result<Self::Store, Skip>> + Send;
}

impl<F, Fut, S> StoreFactory for F
where
    F: Fn() -> Fut + Send + Sync,
    Fut: Future<Output = S> + Send,
    S: Store + 'static,
{
    type Store = S;

    async fn new_store(&self) -> Result<S, Skip> {
        Ok(self().await)
    }
}

/// A store could not be made for a reason outside the store's control
/// (no database to test against); the case is skipped, not failed.
#[derive(Debug, Clone)]
pub struct Skip(pub String);

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
