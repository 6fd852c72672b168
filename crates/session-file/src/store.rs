//! [`FileStore`]: the [`Store`] of one file per session in a directory.

use std::fs::{self, DirBuilder, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use session_core::{
    Error, Result, Store, StoreAdmin, StoreConfig, async_trait, non_zero, validate_key,
};
use tokio::runtime::Handle;
use tracing::Instrument;

use crate::clock::Now;
use crate::config::FileConfig;
use crate::layout::{KeyPaths, Name, classify, is_shard};
use crate::lock::{KeyLock, sync_dir};
use crate::record::{self, Head, Parsed, Record, encode_head};

pub(crate) const BACKEND: &str = "file";

/// How old a temporary file must be before cleanup removes it: a write in
/// progress renames its temporary file within far less.
pub const STALE_TEMP_AGE: Duration = Duration::from_secs(60);

/// A session [`Store`] of one file per session in a directory, safe for
/// several processes on one machine sharing that directory.
///
/// Each session is a file named by the SHA-256 of its key, two shard
/// directories down; it holds the expiry (unix nanoseconds), the creation
/// and update times, the key and the value. A write goes to a temporary
/// file in the same directory that is then renamed over the session file,
/// so a reader sees the old value or the new one, never half of either,
/// and a crash leaves one of them. `create`, `update`, `compare_and_set`,
/// `delete_live`, `set`, `delete` and a renewing `get` take the key's lock
/// file (an exclusive `flock`) for their check and write, so they are
/// atomic across processes; a plain read takes no lock. A conditional
/// write that a lock-free read shows cannot succeed (a live key for
/// `create`, a missing, expired or different one for `update`,
/// `compare_and_set` and `delete_live`) answers `false` without locking.
///
/// Expired files are deleted when an operation comes across them and by
/// [`delete_expired`](Store::delete_expired), which also removes stale
/// temporary files (older than [`STALE_TEMP_AGE`]) and unused lock files.
///
/// Every operation runs on tokio's blocking thread pool; the methods must
/// be called from within a tokio runtime (outside one they return an
/// error). Cloning is cheap and shares the settings.
///
/// ```
/// use std::time::Duration;
/// use session_core::{Bytes, Store};
/// use session_file::FileStore;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> session_core::Result<()> {
/// # let dir = std::env::temp_dir().join(format!("session-file-store-doc-{}", std::process::id()));
/// let store = FileStore::open(&dir)?;
/// store.set("k", Bytes::from_static(b"v"), Some(Duration::from_secs(60))).await?;
/// assert_eq!(store.get("k", None).await?, Some(Bytes::from_static(b"v")));
/// assert!(store.session_path("k")?.starts_with(&dir));
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct FileStore {
    inner: Arc<Inner>,
}

struct Inner {
    root: PathBuf,
    fsync: bool,
    lock_timeout: Duration,
}

impl std::fmt::Debug for FileStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileStore")
            .field("dir", &self.inner.root)
            .field("fsync", &self.inner.fsync)
            .finish()
    }
}

impl FileStore {
    /// Opens the session directory `dir` with the default [`FileConfig`];
    /// see [`open_with`](Self::open_with).
    ///
    /// # Errors
    ///
    /// As [`open_with`](Self::open_with).
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(dir, FileConfig::default())
    }

    /// Opens the session directory `dir` (made absolute against the
    /// working directory), creating it, with mode `0700`, if it does not
    /// exist (its parent must). Opening proves that the directory can be
    /// written by creating and removing a probe file in it, so a missing
    /// parent, a path through a regular file, or a directory without write
    /// permission is an error here, not at the first request. It blocks
    /// for that long; in async code it is short enough to call directly at
    /// startup.
    ///
    /// Every process sharing the directory must use this crate's layout
    /// (any version of it that reads this file format); nothing else in the
    /// directory is touched.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] for an empty path (naming `path`) or a bad
    /// setting; [`Error::Connection`] naming the directory, with the
    /// `io::Error` as its source, when it cannot be created or written.
    pub fn open_with(dir: impl AsRef<Path>, config: FileConfig) -> Result<Self> {
        config.validate()?;
        let dir = dir.as_ref();
        if dir.as_os_str().is_empty() {
            return Err(Error::invalid_config(
                "path",
                "the session directory path is empty",
            ));
        }
        let root = std::path::absolute(dir).map_err(|e| {
            Error::connection(
                BACKEND,
                format!("cannot resolve the session directory {}", dir.display()),
                e,
            )
        })?;
        prepare_dir(&root)?;
        Ok(FileStore {
            inner: Arc::new(Inner {
                root,
                fsync: config.fsync,
                lock_timeout: config.lock_timeout,
            }),
        })
    }

    /// The session directory (absolute).
    pub fn dir(&self) -> &Path {
        &self.inner.root
    }

    /// Whether every write is flushed to disk ([`FileConfig::fsync`]).
    pub fn fsync(&self) -> bool {
        self.inner.fsync
    }

    /// The file that holds (or would hold) `key`'s session: for debugging
    /// and operations, e.g. to find one user's session on disk.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidKey`] for a key no store accepts.
    pub fn session_path(&self, key: &str) -> Result<PathBuf> {
        validate_key(key)?;
        Ok(KeyPaths::of_key(&self.inner.root, key).session)
    }

    /// Runs `work` on tokio's blocking pool inside a span naming the
    /// operation and directory (never the key or value).
    async fn run<T, F>(&self, op: &'static str, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Inner) -> Result<T> + Send + 'static,
    {
        let span = tracing::debug_span!(
            "session_store",
            backend = BACKEND,
            op,
            dir = %self.inner.root.display()
        );
        let handle = Handle::try_current().map_err(|e| {
            Error::backend(
                BACKEND,
                format!("{op}: must be called within a tokio runtime"),
                e,
            )
        })?;
        let inner = Arc::clone(&self.inner);
        let task_span = span.clone();
        handle
            .spawn_blocking(move || {
                let _entered = task_span.enter();
                work(&inner)
            })
            .instrument(span)
            .await
            .map_err(|e| Error::backend(BACKEND, format!("{op}: the blocking task failed"), e))?
    }

    /// Validates `key`, then runs `work` with its paths.
    async fn keyed<T, F>(&self, op: &'static str, key: &str, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Inner, &str, &KeyPaths) -> Result<T> + Send + 'static,
    {
        validate_key(key)?;
        let key = key.to_owned();
        self.run(op, move |inner| {
            let paths = KeyPaths::of_key(&inner.root, &key);
            work(inner, &key, &paths)
        })
        .await
    }
}

/// Makes sure `root` is a directory this process can write in, creating it
/// if missing; every failure is an [`Error::Connection`] naming it.
fn prepare_dir(root: &Path) -> Result<()> {
    let shown = root.display();
    match fs::metadata(root) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => {
            return Err(Error::connection(
                BACKEND,
                format!("the session directory {shown} is not a directory"),
                io::Error::new(io::ErrorKind::NotADirectory, "a file is in its place"),
            ));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let mut builder = DirBuilder::new();
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
            match builder.create(root) {
                Ok(()) => tracing::info!(dir = %shown, "created the session directory"),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => {
                    return Err(Error::connection(
                        BACKEND,
                        format!("cannot create the session directory {shown}"),
                        e,
                    ));
                }
            }
        }
        Err(e) => {
            return Err(Error::connection(
                BACKEND,
                format!("cannot access the session directory {shown}"),
                e,
            ));
        }
    }
    // A probe file (not one of the store's names) proves the directory is
    // writable: permission bits alone do not tell (root, ACLs, read-only
    // mounts).
    // Created exclusively (`O_EXCL`: never through a symlink planted at
    // that name, which would truncate whatever it points at); a leftover
    // of a crashed process with this pid is removed (the link, not its
    // target) and the probe tried once more. The counter keeps concurrent
    // opens in one process apart.
    static PROBES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = PROBES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let probe = root.join(format!(".session-file-probe-{}-{n}", std::process::id()));
    let create = || {
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        options.open(&probe)
    };
    let written = match create() {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            fs::remove_file(&probe).and_then(|()| create())
        }
        other => other,
    }
    .and_then(|mut f| f.write_all(b"probe"));
    let _ = fs::remove_file(&probe);
    written.map_err(|e| {
        Error::connection(
            BACKEND,
            format!("cannot write in the session directory {shown}"),
            e,
        )
    })
}

/// The expiry to write for a time to live of `expires_in`.
fn expiry(now: Now, expires_in: Option<Duration>) -> Option<u64> {
    non_zero(expires_in).map(|d| now.after(d))
}

fn live(now: Now, head: &Head) -> bool {
    now.is_before(head.expires_at)
}

fn not_found(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound
}

impl Inner {
    /// An I/O error while `what` on `path`, naming the path.
    fn io_error(&self, what: &str, path: &Path, e: io::Error) -> Error {
        Error::backend(BACKEND, format!("cannot {what} {}", path.display()), e)
    }

    /// The header and key of `key`'s session file, if there is a valid
    /// one. A corrupt file reads as missing (logged); a file holding
    /// another key is an error (a hash collision, or a foreign file).
    fn head(&self, paths: &KeyPaths, key: &str) -> Result<Option<Head>> {
        let parsed = record::read_head(&paths.session)
            .map_err(|e| self.io_error("read the session file", &paths.session, e))?;
        self.checked(paths, key, parsed, |h| &h.key)
    }

    /// The whole session file of `key`; as [`head`](Self::head).
    fn record(&self, paths: &KeyPaths, key: &str) -> Result<Option<Record>> {
        let parsed = record::read_record(&paths.session)
            .map_err(|e| self.io_error("read the session file", &paths.session, e))?;
        self.checked(paths, key, parsed, |r| &r.head.key)
    }

    fn checked<T>(
        &self,
        paths: &KeyPaths,
        key: &str,
        parsed: Option<Parsed<T>>,
        key_of: impl Fn(&T) -> &Vec<u8>,
    ) -> Result<Option<T>> {
        match parsed {
            None => Ok(None),
            Some(Parsed::Corrupt(why)) => {
                tracing::warn!(file = %paths.session.display(), why, "corrupt session file read as missing");
                Ok(None)
            }
            Some(Parsed::Valid(found)) if key_of(&found) == key.as_bytes() => Ok(Some(found)),
            Some(Parsed::Valid(_)) => Err(Error::backend(
                BACKEND,
                format!(
                    "the session file {} holds another key (a foreign file?); it is left as it is",
                    paths.session.display()
                ),
                io::Error::new(io::ErrorKind::InvalidData, "key mismatch"),
            )),
        }
    }

    fn lock(&self, paths: &KeyPaths) -> Result<KeyLock> {
        KeyLock::acquire(paths, self.fsync, self.lock_timeout)
            .map_err(|e| self.io_error("lock the session file", &paths.lock, e))
    }

    fn release(&self, lock: KeyLock, paths: &KeyPaths, session_gone: bool) -> Result<()> {
        lock.release(session_gone)
            .map_err(|e| self.io_error("remove the lock file", &paths.lock, e))
    }

    /// Writes a whole session file: a temporary file in the key's
    /// directory, flushed when configured, renamed over the session file.
    /// The caller holds the key's lock (so the directory exists).
    fn write(
        &self,
        paths: &KeyPaths,
        key: &str,
        value: &[u8],
        expires_at: Option<u64>,
        created_at: u64,
        now: Now,
    ) -> Result<()> {
        let head = encode_head(key, value.len(), expires_at, created_at, now.nanos());
        let mut attempts = 0;
        let (temp, file) = loop {
            let temp = paths.temp();
            let mut options = OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            match options.open(&temp) {
                Ok(file) => break (temp, file),
                // A leftover of a crashed process that had this pid.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempts < 16 => {
                    attempts += 1;
                }
                Err(e) => return Err(self.io_error("create the temporary file", &temp, e)),
            }
        };
        let written = (|| {
            let mut file = file;
            file.write_all(&head)?;
            file.write_all(value)?;
            if self.fsync {
                file.sync_data()?;
            }
            drop(file);
            fs::rename(&temp, &paths.session)
        })();
        if let Err(e) = written {
            let _ = fs::remove_file(&temp);
            return Err(self.io_error("write the session file", &paths.session, e));
        }
        if self.fsync {
            sync_dir(&paths.dir)
                .map_err(|e| self.io_error("flush the directory", &paths.dir, e))?;
        }
        Ok(())
    }

    fn remove_session(&self, paths: &KeyPaths) -> Result<bool> {
        match fs::remove_file(&paths.session) {
            Ok(()) => Ok(true),
            Err(e) if not_found(&e) => Ok(false),
            Err(e) => Err(self.io_error("remove the session file", &paths.session, e)),
        }
    }

    /// Removes a live session on request (`delete`, `delete_live`): with
    /// `fsync`, the removal is flushed too, so a logout is not undone by a
    /// power loss. (Expired files need no flush: they read as missing.)
    fn remove_session_durably(&self, paths: &KeyPaths) -> Result<bool> {
        let removed = self.remove_session(paths)?;
        if removed && self.fsync {
            sync_dir(&paths.dir)
                .map_err(|e| self.io_error("flush the directory", &paths.dir, e))?;
        }
        Ok(removed)
    }

    /// Under the key's lock: removes its session file if it is (still)
    /// expired or corrupt. Returns whether an expired session was removed.
    /// `key`: check the file holds it (`None` in a directory walk, where
    /// the file is known only by its hash).
    fn remove_if_expired(&self, paths: &KeyPaths, key: Option<&str>) -> Result<bool> {
        let lock = self.lock(paths)?;
        let parsed = record::read_head(&paths.session)
            .map_err(|e| self.io_error("read the session file", &paths.session, e))?;
        let now = Now::read();
        let (remove, expired) = match parsed {
            None => (false, false),
            Some(Parsed::Corrupt(why)) => {
                tracing::warn!(file = %paths.session.display(), why, "corrupt session file removed");
                (true, false)
            }
            Some(Parsed::Valid(head)) => {
                let ours = key.is_none_or(|k| k.as_bytes() == head.key);
                let expired = ours && !live(now, &head);
                (expired, expired)
            }
        };
        // Counted only if this call removed it (exactly, even if something
        // else removed the file in between).
        let removed = remove && self.remove_session(paths)?;
        let gone = !paths.session.exists();
        self.release(lock, paths, gone)?;
        Ok(expired && removed)
    }

    /// Deletes an expired file an operation came across, as Starlite's
    /// file store does; best effort (a read-only process still reads).
    fn drop_expired(&self, paths: &KeyPaths, key: &str) {
        if let Err(e) = self.remove_if_expired(paths, Some(key)) {
            tracing::debug!(error = %session_core::error_chain(&e), "could not remove an expired session file");
        }
    }

    fn get(
        &self,
        key: &str,
        paths: &KeyPaths,
        renew_for: Option<Duration>,
    ) -> Result<Option<Bytes>> {
        let Some(found) = self.record(paths, key)? else {
            return Ok(None);
        };
        if !live(Now::read(), &found.head) {
            self.drop_expired(paths, key);
            return Ok(None);
        }
        let renew = match (non_zero(renew_for), found.head.expires_at) {
            (Some(renew), Some(_)) => renew,
            // No renewal asked, or a key without expiry: it keeps none.
            _ => return Ok(Some(found.value)),
        };
        let lock = self.lock(paths)?;
        let now = Now::read();
        match self.record(paths, key)? {
            Some(found) if live(now, &found.head) => {
                if found.head.expires_at.is_some() {
                    self.write(
                        paths,
                        key,
                        &found.value,
                        Some(now.after(renew)),
                        found.head.created_at,
                        now,
                    )?;
                }
                self.release(lock, paths, false)?;
                Ok(Some(found.value))
            }
            Some(_) => {
                self.remove_session(paths)?;
                self.release(lock, paths, true)?;
                Ok(None)
            }
            None => {
                let gone = !paths.session.exists();
                self.release(lock, paths, gone)?;
                Ok(None)
            }
        }
    }

    /// The live head of `key`, deleting an expired file on the way.
    fn live_head(&self, key: &str, paths: &KeyPaths) -> Result<Option<(Head, Now)>> {
        let Some(head) = self.head(paths, key)? else {
            return Ok(None);
        };
        let now = Now::read();
        if live(now, &head) {
            Ok(Some((head, now)))
        } else {
            self.drop_expired(paths, key);
            Ok(None)
        }
    }

    fn set(
        &self,
        key: &str,
        paths: &KeyPaths,
        value: &[u8],
        expires_in: Option<Duration>,
    ) -> Result<()> {
        let lock = self.lock(paths)?;
        let now = Now::read();
        // The creation time survives a replacement, as in the SQL stores.
        let created = self.head(paths, key)?.map_or(now.nanos(), |h| h.created_at);
        self.write(paths, key, value, expiry(now, expires_in), created, now)?;
        self.release(lock, paths, false)
    }

    fn create(
        &self,
        key: &str,
        paths: &KeyPaths,
        value: &[u8],
        expires_in: Option<Duration>,
    ) -> Result<bool> {
        // A live file now: refused without locking (as if it ran now).
        if self
            .head(paths, key)?
            .is_some_and(|h| live(Now::read(), &h))
        {
            return Ok(false);
        }
        let lock = self.lock(paths)?;
        let now = Now::read();
        if self.head(paths, key)?.is_some_and(|h| live(now, &h)) {
            self.release(lock, paths, false)?;
            return Ok(false);
        }
        // Missing, expired or corrupt: replaced, with a new creation time.
        self.write(paths, key, value, expiry(now, expires_in), now.nanos(), now)?;
        self.release(lock, paths, false)?;
        Ok(true)
    }

    /// `update` (no `expected`) or `compare_and_set` (`expected`): writes
    /// only over a live file (holding exactly `expected`).
    fn replace(
        &self,
        key: &str,
        paths: &KeyPaths,
        expected: Option<&[u8]>,
        value: &[u8],
        expires_in: Option<Duration>,
    ) -> Result<bool> {
        let holds = |found: &Record| expected.is_none_or(|e| found.value == e);
        // Lock-free first look: a missing, expired or changed file means
        // `false` now, without a lock file.
        match expected {
            None => {
                if self.live_head(key, paths)?.is_none() {
                    return Ok(false);
                }
            }
            Some(_) => match self.record(paths, key)? {
                Some(found) if live(Now::read(), &found.head) && holds(&found) => {}
                Some(found) if !live(Now::read(), &found.head) => {
                    self.drop_expired(paths, key);
                    return Ok(false);
                }
                _ => return Ok(false),
            },
        }
        let lock = self.lock(paths)?;
        let now = Now::read();
        let created = match expected {
            None => self
                .head(paths, key)?
                .filter(|h| live(now, h))
                .map(|h| h.created_at),
            Some(_) => self
                .record(paths, key)?
                .filter(|r| live(now, &r.head) && holds(r))
                .map(|r| r.head.created_at),
        };
        let wrote = match created {
            Some(created) => {
                self.write(paths, key, value, expiry(now, expires_in), created, now)?;
                true
            }
            None => false,
        };
        let gone = !wrote && !paths.session.exists();
        self.release(lock, paths, gone)?;
        Ok(wrote)
    }

    fn delete_live(&self, key: &str, paths: &KeyPaths) -> Result<bool> {
        if self.live_head(key, paths)?.is_none() {
            return Ok(false);
        }
        let lock = self.lock(paths)?;
        let now = Now::read();
        // Removed if live, and if expired too (reported as not live).
        let was_live = match self.head(paths, key)? {
            Some(head) => {
                self.remove_session_durably(paths)?;
                live(now, &head)
            }
            None => false,
        };
        let gone = !paths.session.exists();
        self.release(lock, paths, gone)?;
        Ok(was_live)
    }

    fn delete(&self, key: &str, paths: &KeyPaths) -> Result<()> {
        match fs::symlink_metadata(&paths.session) {
            Err(e) if not_found(&e) => return Ok(()),
            _ => {}
        }
        let lock = self.lock(paths)?;
        // Checks the file holds this key before removing it.
        if self.head(paths, key)?.is_some() || paths.session.exists() {
            self.remove_session_durably(paths)?;
        }
        self.release(lock, paths, true)
    }

    /// Walks every leaf shard directory, streaming (one directory listing
    /// open per level, never the whole tree in memory), calling `visit`
    /// with each of this store's files in it. Afterwards, with `prune`,
    /// removes shard directories left empty.
    fn walk(
        &self,
        prune: bool,
        mut visit: impl FnMut(&Path, Name<'_>, &fs::DirEntry) -> Result<()>,
    ) -> Result<()> {
        let list = |dir: &Path| match fs::read_dir(dir) {
            Ok(entries) => Ok(Some(entries)),
            Err(e) if not_found(&e) => Ok(None),
            Err(e) => Err(self.io_error("list the directory", dir, e)),
        };
        let Some(tops) = list(&self.root)? else {
            return Err(self.io_error(
                "list the session directory",
                &self.root,
                io::Error::new(io::ErrorKind::NotFound, "it no longer exists"),
            ));
        };
        for top in self.shard_dirs(tops, &self.root) {
            let (top_name, top_path) = top?;
            let Some(subs) = list(&top_path)? else {
                continue;
            };
            for sub in self.shard_dirs(subs, &top_path) {
                let (sub_name, leaf) = sub?;
                let Some(files) = list(&leaf)? else {
                    continue;
                };
                for file in files {
                    let file = file.map_err(|e| self.io_error("list the directory", &leaf, e))?;
                    let name = file.file_name();
                    let Some(name) = name.to_str() else {
                        continue;
                    };
                    match classify(name, &top_name, &sub_name) {
                        Name::Other => {}
                        ours => visit(&leaf, ours, &file)?,
                    }
                }
                if prune {
                    // Fails, harmlessly, if anything is (again) in it.
                    let _ = fs::remove_dir(&leaf);
                }
            }
            if prune {
                let _ = fs::remove_dir(&top_path);
            }
        }
        Ok(())
    }

    /// The shard directories among `entries` (the listing of `dir`), by
    /// name and path.
    fn shard_dirs<'a>(
        &'a self,
        entries: fs::ReadDir,
        dir: &'a Path,
    ) -> impl Iterator<Item = Result<(String, PathBuf)>> + 'a {
        entries.filter_map(move |entry| match entry {
            Err(e) => Some(Err(self.io_error("list the directory", dir, e))),
            Ok(entry) => {
                let name = entry.file_name().into_string().ok()?;
                let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
                (is_shard(&name) && is_dir).then(|| Ok((name, entry.path())))
            }
        })
    }

    /// Removes a temporary file older than [`STALE_TEMP_AGE`]: a crashed
    /// write's. Returns whether it did.
    fn remove_stale_temp(&self, file: &fs::DirEntry) -> Result<bool> {
        let old = file
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|at| SystemTime::now().duration_since(at).ok())
            .is_some_and(|age| age > STALE_TEMP_AGE);
        if !old {
            return Ok(false);
        }
        match fs::remove_file(file.path()) {
            Ok(()) => Ok(true),
            Err(e) if not_found(&e) => Ok(false),
            Err(e) => Err(self.io_error("remove the stale temporary file", &file.path(), e)),
        }
    }

    /// Removes a lock file whose key has no session file and that nobody
    /// holds (left by a crash or an error between lock and release).
    fn remove_unused_lock(&self, paths: &KeyPaths) -> Result<()> {
        if paths.session.exists() {
            return Ok(());
        }
        let lock = KeyLock::try_existing(&paths.lock)
            .map_err(|e| self.io_error("lock the session file", &paths.lock, e))?;
        if let Some(lock) = lock {
            let gone = !paths.session.exists();
            self.release(lock, paths, gone)?;
        }
        Ok(())
    }

    fn delete_expired(&self) -> Result<u64> {
        let mut removed = 0u64;
        let mut stale = 0u64;
        self.walk(false, |_, name, file| {
            match name {
                Name::Session(hash) => {
                    let paths = KeyPaths::of_hash(&self.root, hash.to_owned());
                    // A look without the lock first: most files are live.
                    let head = record::read_head(&paths.session)
                        .map_err(|e| self.io_error("read the session file", &paths.session, e))?;
                    let candidate = match head {
                        Some(Parsed::Valid(head)) => !live(Now::read(), &head),
                        Some(Parsed::Corrupt(_)) => true,
                        None => false,
                    };
                    if candidate && self.remove_if_expired(&paths, None)? {
                        removed += 1;
                    }
                }
                Name::Temp(_) => stale += u64::from(self.remove_stale_temp(file)?),
                Name::Lock(hash) => {
                    self.remove_unused_lock(&KeyPaths::of_hash(&self.root, hash.to_owned()))?
                }
                Name::Other => {}
            }
            Ok(())
        })?;
        tracing::debug!(
            removed,
            stale_temporary_files = stale,
            "expired sessions deleted"
        );
        Ok(removed)
    }

    fn delete_all(&self) -> Result<()> {
        let mut removed = 0u64;
        self.walk(true, |_, name, file| {
            match name {
                Name::Session(hash) => {
                    let paths = KeyPaths::of_hash(&self.root, hash.to_owned());
                    let lock = self.lock(&paths)?;
                    removed += u64::from(self.remove_session(&paths)?);
                    self.release(lock, &paths, true)?;
                }
                Name::Temp(_) => {
                    self.remove_stale_temp(file)?;
                }
                Name::Lock(hash) => {
                    self.remove_unused_lock(&KeyPaths::of_hash(&self.root, hash.to_owned()))?
                }
                Name::Other => {}
            }
            Ok(())
        })?;
        tracing::debug!(removed, "all sessions deleted");
        Ok(())
    }
}

#[async_trait]
impl Store for FileStore {
    /// A lock-free read of the session file; with a renewal of a key that
    /// has an expiry, the key's lock is taken and the file rewritten with
    /// the new expiry (the whole value is written again).
    async fn get(&self, key: &str, renew_for: Option<Duration>) -> Result<Option<Bytes>> {
        let op = if non_zero(renew_for).is_some() {
            "get_renew"
        } else {
            "get"
        };
        self.keyed(op, key, move |inner, key, paths| {
            inner.get(key, paths, renew_for)
        })
        .await
    }

    async fn set(&self, key: &str, value: Bytes, expires_in: Option<Duration>) -> Result<()> {
        self.keyed("set", key, move |inner, key, paths| {
            inner.set(key, paths, &value, expires_in)
        })
        .await
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.keyed("delete", key, |inner, key, paths| inner.delete(key, paths))
            .await
    }

    /// Removes every session file of this store, each under its key's
    /// lock, the stale temporary files and unused lock files, and the
    /// shard directories left empty; any other file in the directory is
    /// left alone.
    async fn delete_all(&self) -> Result<()> {
        self.run("delete_all", |inner| inner.delete_all()).await
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        self.keyed("exists", key, |inner, key, paths| {
            Ok(inner.live_head(key, paths)?.is_some())
        })
        .await
    }

    async fn expires_in(&self, key: &str) -> Result<Option<Duration>> {
        self.keyed("expires_in", key, |inner, key, paths| {
            Ok(inner
                .live_head(key, paths)?
                .and_then(|(head, now)| head.expires_at.map(|at| now.until(at))))
        })
        .await
    }

    /// Walks the shard directories (streaming), removes each expired
    /// session file under its key's lock and counts it; also removes
    /// temporary files older than [`STALE_TEMP_AGE`] (crashed writes) and
    /// lock files nobody holds whose session is gone (not counted).
    async fn delete_expired(&self) -> Result<u64> {
        self.run("delete_expired", |inner| inner.delete_expired())
            .await
    }

    async fn create(&self, key: &str, value: Bytes, expires_in: Option<Duration>) -> Result<bool> {
        self.keyed("create", key, move |inner, key, paths| {
            inner.create(key, paths, &value, expires_in)
        })
        .await
    }

    async fn update(&self, key: &str, value: Bytes, expires_in: Option<Duration>) -> Result<bool> {
        self.keyed("update", key, move |inner, key, paths| {
            inner.replace(key, paths, None, &value, expires_in)
        })
        .await
    }

    async fn compare_and_set(
        &self,
        key: &str,
        expected: Bytes,
        value: Bytes,
        expires_in: Option<Duration>,
    ) -> Result<bool> {
        self.keyed("compare_and_set", key, move |inner, key, paths| {
            inner.replace(key, paths, Some(&expected), &value, expires_in)
        })
        .await
    }

    async fn delete_live(&self, key: &str) -> Result<bool> {
        self.keyed("delete_live", key, |inner, key, paths| {
            inner.delete_live(key, paths)
        })
        .await
    }
}

#[async_trait]
impl StoreAdmin for FileStore {
    /// `file store at <dir>`.
    fn describe(&self) -> String {
        format!("file store at {}", self.inner.root.display())
    }

    fn backend(&self) -> &'static str {
        BACKEND
    }

    /// The session directory.
    fn location(&self) -> String {
        self.inner.root.display().to_string()
    }

    /// Nothing to migrate: a directory has no schema. Creates the session
    /// directory again if it was removed since the store was opened, and
    /// checks it can be written.
    async fn migrate(&self) -> Result<session_core::migrate::MigrateReport> {
        self.run("migrate", |inner| prepare_dir(&inner.root))
            .await?;
        Ok(session_core::migrate::MigrateReport::default())
    }

    /// Whether the session directory exists (it is the "table").
    async fn session_table_exists(&self) -> Result<bool> {
        self.run("session_table_exists", |inner| Ok(inner.root.is_dir()))
            .await
    }
}
