//! `FileStore`: a session store of one file per session in a directory
//! you name, safe for several processes on one machine sharing it (two
//! application processes, or the application and the `sessions` CLI). No
//! server, no database: Starlite's file store, with the workspace's
//! contract.
//!
//! * [`FileStore`]: the store. [`FileStore::open`] takes a directory (and
//!   creates it if its parent exists); [`FileStore::open_with`] takes a
//!   [`FileConfig`].
//! * [`FileConfig`]: the one setting, `fsync` (flush every write to disk),
//!   loaded from JSON or TOML through
//!   [`StoreConfig`](session_core::StoreConfig).
//! * [`FileConnector`]: opens a store from a `file:///ABSOLUTE/DIR` URL, as
//!   the `sessions` CLI and the demo do.
//! * **Files**: each session is `<dir>/ab/cd/<sha256 of the key>.session`
//!   (two shard levels, so no directory grows huge) holding the expiry,
//!   the creation and update times, the key and the value. Writes go to a
//!   temporary file renamed into place: a reader sees a whole value, old or
//!   new, and a crash leaves one of them.
//! * **Concurrency**: `create`, `update`, `compare_and_set`, `delete_live`,
//!   `set`, `delete` and a renewing `get` hold the key's lock file (an
//!   exclusive `flock`) over their check and write, so they are atomic
//!   across processes; plain reads take no lock.
//! * **Expiry** is kept in unix nanoseconds: exact, never early. Expired
//!   files are deleted when an operation comes across them, or by
//!   [`delete_expired`](session_core::Store::delete_expired), which also
//!   removes temporary files a crash left behind once they are a minute
//!   old. Every blocking file operation runs on tokio's blocking pool.
//! * Unix only in practice (the lock-file protocol compares inodes); the
//!   directory must be on a local file system (not NFS).
//!
//! The guide page is `docs/file.md` in the workspace.
//!
//! ```
//! use std::time::Duration;
//! use session_core::{Bytes, Store, StoreAdmin, StoreConfig};
//! use session_file::{FileConfig, FileStore};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> session_core::Result<()> {
//! let dir = std::env::temp_dir().join(format!("session-file-doc-{}", std::process::id()));
//! let store = FileStore::open_with(&dir, FileConfig::from_toml_str("fsync = false")?)?;
//! assert_eq!(store.describe(), format!("file store at {}", dir.display()));
//!
//! let hour = Some(Duration::from_secs(3600));
//! assert!(store.create("session-1", Bytes::from_static(b"{}"), hour).await?);
//! assert!(!store.create("session-1", Bytes::from_static(b"{\"evil\":1}"), hour).await?);
//! assert!(store.compare_and_set("session-1", Bytes::from_static(b"{}"),
//!                               Bytes::from_static(b"{\"n\":1}"), hour).await?);
//! assert!(store.session_path("session-1")?.exists());
//!
//! // A file the user put in the directory is not the store's.
//! std::fs::write(dir.join("README"), "sessions of app X").unwrap();
//! store.delete_all().await?;
//! assert!(!store.exists("session-1").await?);
//! assert!(dir.join("README").exists());
//! # std::fs::remove_dir_all(&dir).unwrap();
//! # Ok(()) }
//! ```

mod clock;
mod config;
mod connector;
mod layout;
mod lock;
mod record;
mod store;

pub use config::FileConfig;
pub use connector::FileConnector;
pub use store::{FileStore, STALE_TEMP_AGE};
