//! Per-key lock files: one process (and one thread) at a time changes a
//! key.
//!
//! A key's lock is an exclusive `flock` (`std::fs::File::lock`) on its lock
//! file, `<hash>.lock` beside the session file. The lock is on the lock
//! file, never on the session file, because a write replaces the session
//! file by a rename. The kernel drops a lock when its holder exits, so a
//! crashed process never leaves a key locked.
//!
//! Lock files are removed when their key's session file is gone, so a store
//! does not collect one file per session ever created. Removing a lock file
//! that others may be waiting on is safe by the usual protocol: a holder
//! removes it only while it holds the lock, and whoever acquires a lock
//! then checks that the path still names the file it locked (same device
//! and inode); if not, the file was removed (or replaced) meanwhile and it
//! opens the path again.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::layout::KeyPaths;

/// A held key lock; released when dropped.
#[derive(Debug)]
pub(crate) struct KeyLock {
    file: File,
    path: PathBuf,
}

/// How many times a lock is retried when its file keeps being removed or
/// its directory keeps disappearing (by `delete_all`) before giving up.
const ATTEMPTS: usize = 1_000;

impl KeyLock {
    /// Waits (at most `timeout`) for and takes the lock of the key `paths`
    /// names, creating its shard directories and lock file as needed
    /// (`sync_dirs`: fsync a directory a new one was created in).
    pub(crate) fn acquire(
        paths: &KeyPaths,
        sync_dirs: bool,
        timeout: Duration,
    ) -> io::Result<KeyLock> {
        let deadline = Instant::now() + timeout;
        for _ in 0..ATTEMPTS {
            let file = match OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&paths.lock)
            {
                Ok(file) => file,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    match ensure_dirs(paths, sync_dirs) {
                        Ok(()) => {}
                        // The session directory itself is gone: said so,
                        // and not created again here (it may be an
                        // unmounted volume; `migrate` creates it).
                        Err(e) if e.kind() == io::ErrorKind::NotFound && !root_exists(paths) => {
                            return Err(io::Error::new(
                                io::ErrorKind::NotFound,
                                format!(
                                    "the session directory {} no longer exists \
                                     (`sessions migrate upgrade` creates it again)",
                                    paths.top.parent().unwrap_or(&paths.top).display()
                                ),
                            ));
                        }
                        // A shard directory pruned by `delete_all` between
                        // creating the top one and the leaf: again.
                        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                        Err(e) => return Err(e),
                    }
                    continue;
                }
                Err(e) => return Err(e),
            };
            lock_within(&file, &paths.lock, deadline, timeout)?;
            if still_named(&file, &paths.lock)? {
                return Ok(KeyLock {
                    file,
                    path: paths.lock.clone(),
                });
            }
        }
        Err(io::Error::other(format!(
            "the lock file {} kept being removed while waiting for it",
            paths.lock.display()
        )))
    }

    /// Takes the lock of an existing lock file without waiting: `None` if
    /// there is no such file or another holds it.
    pub(crate) fn try_existing(path: &Path) -> io::Result<Option<KeyLock>> {
        let file = match OpenOptions::new().read(true).write(true).open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Ok(None),
            Err(std::fs::TryLockError::Error(e)) => return Err(e),
        }
        Ok(still_named(&file, path)?.then(|| KeyLock {
            file,
            path: path.to_owned(),
        }))
    }

    /// Releases the lock, first removing the lock file when `remove` (the
    /// key has no session file any more). Where an open file cannot be
    /// removed (not on Unix), lock files stay.
    pub(crate) fn release(self, remove: bool) -> io::Result<()> {
        if remove && cfg!(unix) {
            match std::fs::remove_file(&self.path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        drop(self.file);
        Ok(())
    }
}

/// Takes the lock of `file` (at `path`), polling with a growing pause (up
/// to 5 ms) until `deadline`: a blocking `flock` could wait forever on a
/// hung holder, holding a thread of the blocking pool all along.
fn lock_within(file: &File, path: &Path, deadline: Instant, timeout: Duration) -> io::Result<()> {
    let mut pause = Duration::from_micros(50);
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(()),
            Err(std::fs::TryLockError::WouldBlock) => {}
            Err(std::fs::TryLockError::Error(e)) => return Err(e),
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "another request or process held the lock {} for longer than {timeout:?}",
                    path.display()
                ),
            ));
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(5));
    }
}

/// Creates the key's shard directories (each may be created, or removed by
/// `delete_all`, by another process at the same time).
fn ensure_dirs(paths: &KeyPaths, sync_dirs: bool) -> io::Result<()> {
    for dir in [&paths.top, &paths.dir] {
        match std::fs::create_dir(dir) {
            Ok(()) => {
                if sync_dirs && let Some(parent) = dir.parent() {
                    sync_dir(parent)?;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// True if the session directory (the parent of the key's top shard
/// directory) is still there.
fn root_exists(paths: &KeyPaths) -> bool {
    paths.top.parent().is_some_and(Path::is_dir)
}

/// Flushes a directory's entries (a rename or a new file in it) to disk.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// True if `path` still names the file `file` has open.
#[cfg(unix)]
fn still_named(file: &File, path: &Path) -> io::Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let held = file.metadata()?;
    match std::fs::metadata(path) {
        Ok(named) => Ok(named.dev() == held.dev() && named.ino() == held.ino()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Elsewhere an open file cannot be removed, so the path still names it.
#[cfg(not(unix))]
fn still_named(_file: &File, _path: &Path) -> io::Result<bool> {
    Ok(true)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    fn fresh_root(name: &str) -> PathBuf {
        let root =
            std::env::temp_dir().join(format!("session-file-lock-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        root
    }

    /// `delete_all` prunes empty shard directories while other writers
    /// create them again: a writer whose top directory vanishes between
    /// creating it and creating the leaf below it tries again instead of
    /// failing with "No such file or directory".
    #[test]
    fn shard_directories_pruned_meanwhile_are_created_again() {
        let root = fresh_root("prune");
        let paths = KeyPaths::of_key(&root, "k");
        let stop = Arc::new(AtomicBool::new(false));
        let pruner = {
            let (stop, paths) = (Arc::clone(&stop), paths.clone());
            std::thread::spawn(move || {
                // As often as a busy `delete_all` could, not in a tight
                // loop that could starve the writer of every attempt.
                while !stop.load(Ordering::Relaxed) {
                    let _ = std::fs::remove_dir(&paths.dir);
                    let _ = std::fs::remove_dir(&paths.top);
                    std::thread::sleep(Duration::from_micros(50));
                }
            })
        };
        let mut result = Ok(());
        for _ in 0..3_000 {
            result = KeyLock::acquire(&paths, false, Duration::from_secs(5))
                .and_then(|lock| lock.release(true));
            if result.is_err() {
                break;
            }
        }
        stop.store(true, Ordering::Relaxed);
        pruner.join().unwrap();
        std::fs::remove_dir_all(&root).unwrap();
        result.unwrap();
    }

    /// A session directory removed while the store runs is named as such,
    /// not as a missing lock file.
    #[test]
    fn a_removed_session_directory_is_named() {
        let root = fresh_root("gone");
        let paths = KeyPaths::of_key(&root, "k");
        std::fs::remove_dir_all(&root).unwrap();
        let err = KeyLock::acquire(&paths, false, Duration::from_secs(5)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        let text = err.to_string();
        assert!(text.contains("no longer exists"), "{text}");
        assert!(text.contains(&root.display().to_string()), "{text}");
        assert!(!root.exists(), "recreated a removed session directory");
    }
}
