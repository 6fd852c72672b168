//! What only a file store has: its layout on disk, crash leftovers,
//! corrupt and foreign files, permission errors, and `delete_all` sparing
//! the user's own files.

use std::error::Error as _;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use session_core::{Bytes, Error, Store, StoreAdmin};
use session_file::{FileStore, STALE_TEMP_AGE};

fn fresh_dir(name: &str) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = session_test_support::scratch_dir("session-file").join(format!("adapter-{name}-{n}"));
    let _ = fs::remove_dir_all(&dir);
    dir
}

const HOUR: Option<Duration> = Some(Duration::from_secs(3600));

fn b(s: &'static str) -> Bytes {
    Bytes::from_static(s.as_bytes())
}

/// Every file under `dir`, relative, sorted.
fn files(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(base, &path, out);
            } else {
                out.push(path.strip_prefix(base).unwrap().display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// How many directories under `dir` are empty.
fn empty_dirs(dir: &Path) -> usize {
    let mut n = 0;
    let mut entries = 0;
    for entry in fs::read_dir(dir).unwrap().flatten() {
        entries += 1;
        if entry.path().is_dir() {
            n += empty_dirs(&entry.path());
        }
    }
    n + usize::from(entries == 0)
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap())
}

/// Sets a file's modification time `age` into the past.
fn age(path: &Path, age: Duration) {
    File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(SystemTime::now() - age)
        .unwrap();
}

#[tokio::test]
async fn a_session_is_one_file_named_by_the_hash_of_its_key() {
    let dir = fresh_dir("layout");
    let store = FileStore::open(&dir).unwrap();
    store.set("user:1", b("{}"), HOUR).await.unwrap();
    let path = store.session_path("user:1").unwrap();
    let rel = path
        .strip_prefix(store.dir())
        .unwrap()
        .display()
        .to_string();
    // <2 hex>/<2 hex>/<64 hex>.session, the shards the hash's first digits.
    let name = path.file_name().unwrap().to_str().unwrap();
    assert_eq!(name.len(), 64 + ".session".len(), "{rel}");
    assert_eq!(rel, format!("{}/{}/{name}", &name[..2], &name[2..4]));
    // The file holds the key itself (checked on every read) and the value.
    let bytes = fs::read(&path).unwrap();
    assert!(bytes.ends_with(b"user:1{}"), "{bytes:?}");
    // While the session lives its lock file stays; a delete removes both.
    assert_eq!(files(&dir).len(), 2, "{:?}", files(&dir));
    store.delete("user:1").await.unwrap();
    assert_eq!(files(&dir), Vec::<String>::new());
    // Reads, and refused conditional writes, of a missing key create nothing.
    assert_eq!(
        store
            .get("nobody", Some(Duration::from_secs(5)))
            .await
            .unwrap(),
        None
    );
    assert!(!store.update("nobody", b("x"), HOUR).await.unwrap());
    assert!(
        !store
            .compare_and_set("nobody", b("x"), b("y"), HOUR)
            .await
            .unwrap()
    );
    assert!(!store.delete_live("nobody").await.unwrap());
    store.delete("nobody").await.unwrap();
    assert_eq!(files(&dir), Vec::<String>::new());
    fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn the_creation_time_survives_set_and_the_update_time_moves() {
    let dir = fresh_dir("times");
    let store = FileStore::open(&dir).unwrap();
    store.set("k", b("one"), HOUR).await.unwrap();
    let path = store.session_path("k").unwrap();
    let first = fs::read(&path).unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    store.set("k", b("two"), None).await.unwrap();
    let second = fs::read(&path).unwrap();
    // Header: magic, expires_at, created_at, updated_at (unix ns).
    assert_eq!(u64_at(&second, 16), u64_at(&first, 16), "created_at moved");
    assert!(
        u64_at(&second, 24) > u64_at(&first, 24),
        "updated_at did not move"
    );
    assert_eq!(u64_at(&second, 8), 0, "set without expiry: 0 means never");
    // create over a missing key starts a new creation time.
    store.delete("k").await.unwrap();
    assert!(store.create("k", b("three"), HOUR).await.unwrap());
    assert!(u64_at(&fs::read(&path).unwrap(), 16) > u64_at(&first, 16));
    fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn an_expired_file_is_deleted_when_accessed() {
    let dir = fresh_dir("access");
    let store = FileStore::open(&dir).unwrap();
    for key in ["a", "b", "c"] {
        store
            .set(key, b("v"), Some(Duration::from_millis(30)))
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert!(
        store.session_path("a").unwrap().exists(),
        "nothing removes it unasked"
    );
    assert_eq!(store.get("a", None).await.unwrap(), None);
    assert!(!store.exists("b").await.unwrap());
    for key in ["a", "b"] {
        assert!(
            !store.session_path(key).unwrap().exists(),
            "{key} was accessed"
        );
    }
    // The one nobody accessed is left to delete_expired, which counts it.
    assert!(store.session_path("c").unwrap().exists());
    assert_eq!(store.delete_expired().await.unwrap(), 1);
    assert_eq!(files(&dir), Vec::<String>::new());
    fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn delete_all_removes_only_the_stores_files() {
    let dir = fresh_dir("delete-all");
    let store = FileStore::open(&dir).unwrap();
    for i in 0..50 {
        store.set(&format!("k{i}"), b("v"), HOUR).await.unwrap();
    }
    let path = store.session_path("k0").unwrap();
    let leaf = path.parent().unwrap().to_owned();
    let name = path.file_name().unwrap().to_str().unwrap().to_owned();
    // The user's files: at the top, in a shard directory, in a directory
    // that looks like a shard, and one of our names in the wrong shard.
    fs::write(dir.join("README"), "app X's sessions").unwrap();
    fs::write(leaf.join("notes.txt"), "mine").unwrap();
    fs::create_dir_all(dir.join("zz")).unwrap();
    fs::write(dir.join("zz").join(&name), "not a session").unwrap();
    let wrong = dir.join("00").join("00");
    fs::create_dir_all(&wrong).unwrap();
    fs::write(wrong.join(&name), "misplaced").unwrap();
    let mut theirs = vec![
        "README".to_owned(),
        format!("{}/notes.txt", leaf.strip_prefix(&dir).unwrap().display()),
        format!("zz/{name}"),
        format!("00/00/{name}"),
    ];
    theirs.sort();

    store.delete_all().await.unwrap();
    assert_eq!(files(&dir), theirs);
    for i in 0..50 {
        assert!(!store.exists(&format!("k{i}")).await.unwrap());
    }
    // Empty shard directories are gone too; the store still works.
    assert_eq!(empty_dirs(&dir), 0, "empty shard directories left");
    store.set("again", b("v"), HOUR).await.unwrap();
    assert_eq!(store.get("again", None).await.unwrap(), Some(b("v")));
    fs::remove_dir_all(&dir).unwrap();
}

/// A crash between writing the temporary file and renaming it leaves a
/// whole new file and maybe a half-written one: neither is ever read, and
/// cleanup removes both once they are a minute old.
#[tokio::test]
async fn a_crashed_write_is_never_read_and_is_cleaned_up() {
    let dir = fresh_dir("crash");
    let store = FileStore::open(&dir).unwrap();
    store.set("k", b("old value"), HOUR).await.unwrap();
    let path = store.session_path("k").unwrap();
    let leaf = path.parent().unwrap();
    let hash = path.file_stem().unwrap().to_str().unwrap();
    // What a write of "new value" puts in its temporary file, whole ...
    let donor = FileStore::open(fresh_dir("crash-donor")).unwrap();
    donor.set("k", b("new value"), HOUR).await.unwrap();
    let whole = fs::read(donor.session_path("k").unwrap()).unwrap();
    let whole_temp = leaf.join(format!("{hash}.4194304-7.tmp"));
    fs::write(&whole_temp, &whole).unwrap();
    // ... and cut short, as a crash mid-write leaves it.
    let half_temp = leaf.join(format!("{hash}.4194304-8.tmp"));
    fs::write(&half_temp, &whole[..whole.len() / 2]).unwrap();
    // A key whose first write crashed: only a temporary file.
    let first = store.session_path("first").unwrap();
    fs::create_dir_all(first.parent().unwrap()).unwrap();
    let first_temp = first.with_extension("4194304-9.tmp");
    fs::write(&first_temp, &whole).unwrap();

    // The store, and a store opened afresh (the restarted process), read
    // the old value; the crashed first write reads as missing.
    let restarted = FileStore::open(&dir).unwrap();
    for s in [&store, &restarted] {
        assert_eq!(s.get("k", None).await.unwrap(), Some(b("old value")));
        assert_eq!(s.get("first", None).await.unwrap(), None);
        assert!(!s.exists("first").await.unwrap());
    }
    // A fresh temporary file may be a write in progress: left alone.
    assert_eq!(store.delete_expired().await.unwrap(), 0);
    for temp in [&whole_temp, &half_temp, &first_temp] {
        assert!(temp.exists(), "{} removed while fresh", temp.display());
        age(temp, STALE_TEMP_AGE + Duration::from_secs(30));
    }
    // Older than a minute: removed, and not counted as expired sessions.
    assert_eq!(store.delete_expired().await.unwrap(), 0);
    for temp in [&whole_temp, &half_temp, &first_temp] {
        assert!(!temp.exists(), "{} left behind", temp.display());
    }
    assert_eq!(store.get("k", None).await.unwrap(), Some(b("old value")));
    assert!(store.create("first", b("now"), HOUR).await.unwrap());
    fs::remove_dir_all(&dir).unwrap();
    fs::remove_dir_all(donor.dir()).unwrap();
}

/// A session file cut short (a power loss without `fsync` on some file
/// systems) reads as missing and is replaced by the next write; a file
/// holding another key is an error naming it, never another's session.
#[tokio::test]
async fn corrupt_and_foreign_files() {
    let dir = fresh_dir("corrupt");
    let store = FileStore::open(&dir).unwrap();
    store.set("k", b("a whole value"), HOUR).await.unwrap();
    let path = store.session_path("k").unwrap();
    let whole = fs::read(&path).unwrap();
    fs::write(&path, &whole[..whole.len() - 3]).unwrap();
    assert_eq!(store.get("k", None).await.unwrap(), None);
    assert!(!store.update("k", b("x"), HOUR).await.unwrap());
    assert!(store.create("k", b("replaced"), HOUR).await.unwrap());
    assert_eq!(store.get("k", None).await.unwrap(), Some(b("replaced")));
    // An empty file, likewise; delete_expired removes it uncounted.
    fs::write(&path, b"").unwrap();
    assert!(!store.exists("k").await.unwrap());
    assert_eq!(store.delete_expired().await.unwrap(), 0);
    assert!(!path.exists());

    // Key `other`'s file put where `k`'s belongs.
    store.set("other", b("other's secret"), HOUR).await.unwrap();
    fs::copy(store.session_path("other").unwrap(), &path).unwrap();
    let err = store.get("k", None).await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::Backend { .. }), "{text}");
    assert!(text.contains(&path.display().to_string()), "{text}");
    assert!(text.contains("another key"), "{text}");
    let err = store.set("k", b("x"), HOUR).await.unwrap_err();
    assert!(err.to_string().contains("another key"), "{err}");
    assert!(
        store.delete("k").await.is_err(),
        "removed another key's file"
    );
    assert!(path.exists());
    fs::remove_dir_all(&dir).unwrap();
}

/// A lock file a crash left behind (no session, nobody holding it) is
/// removed by cleanup; one somebody holds is not.
#[tokio::test]
async fn unused_lock_files_are_cleaned_up() {
    let dir = fresh_dir("locks");
    let store = FileStore::open(&dir).unwrap();
    let lock_of = |key: &str| store.session_path(key).unwrap().with_extension("lock");
    for key in ["crashed", "held"] {
        let lock = lock_of(key);
        fs::create_dir_all(lock.parent().unwrap()).unwrap();
        fs::write(&lock, b"").unwrap();
    }
    let holder = File::options().write(true).open(lock_of("held")).unwrap();
    holder.lock().unwrap();
    assert_eq!(store.delete_expired().await.unwrap(), 0);
    assert!(!lock_of("crashed").exists());
    assert!(lock_of("held").exists());
    // The held key's writers wait for the holder, then go on.
    let writer = {
        let store = store.clone();
        tokio::spawn(async move { store.create("held", b("v"), HOUR).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !writer.is_finished(),
        "wrote while another held the key's lock"
    );
    drop(holder);
    assert!(writer.await.unwrap().unwrap());
    fs::remove_dir_all(&dir).unwrap();
}

fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    let probe = std::env::temp_dir().join(format!("session-file-uid-{}", std::process::id()));
    fs::write(&probe, b"").unwrap();
    let uid = fs::metadata(&probe).unwrap().uid();
    fs::remove_file(&probe).unwrap();
    uid == 0
}

fn assert_names(err: &Error, path: &Path, kind: &str) {
    let text = err.to_string();
    let shown = path.display().to_string();
    assert!(text.contains(&shown), "{text} does not name {shown}");
    let source = err.source().expect("the io::Error is kept as the source");
    assert!(
        source.downcast_ref::<std::io::Error>().is_some(),
        "{source:?}"
    );
    println!("{kind}: {}", session_core::error_chain(err));
}

/// A directory the store cannot write: an `Error::Connection` at open, an
/// `Error::Backend` at a write, each naming the path and keeping the
/// `io::Error`. As root, permission bits do not stop anything, so the test
/// then uses paths through a regular file (`ENOTDIR`) instead of mode 0500.
#[tokio::test]
async fn unusable_directories_are_clear_errors_naming_the_path() {
    use std::os::unix::fs::PermissionsExt;
    let base = fresh_dir("perm");
    fs::create_dir_all(&base).unwrap();
    let root = running_as_root();
    println!(
        "running as {}: {}",
        if root { "root" } else { "a user" },
        if root {
            "a regular file in the path (ENOTDIR) stands in for mode 0500"
        } else {
            "a directory of mode 0500"
        }
    );

    // At open.
    let blocked = if root {
        fs::write(base.join("plain-file"), b"").unwrap();
        base.join("plain-file").join("sessions")
    } else {
        let read_only = base.join("read-only");
        fs::create_dir(&read_only).unwrap();
        fs::set_permissions(&read_only, fs::Permissions::from_mode(0o500)).unwrap();
        read_only
    };
    let err = FileStore::open(&blocked).unwrap_err();
    assert!(matches!(err, Error::Connection { .. }), "{err}");
    assert_names(&err, &blocked, "open");
    let missing_parent = base.join("no").join("such").join("dir");
    let err = FileStore::open(&missing_parent).unwrap_err();
    assert!(matches!(err, Error::Connection { .. }), "{err}");
    assert_names(&err, &missing_parent, "open below a missing directory");

    // At a write, after the directory became unusable.
    let dir = base.join("sessions");
    let store = FileStore::open(&dir).unwrap();
    if root {
        fs::remove_dir_all(&dir).unwrap();
        fs::write(&dir, b"now a file").unwrap();
    } else {
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o500)).unwrap();
    }
    let err = store.set("k", b("v"), HOUR).await.unwrap_err();
    assert!(matches!(err, Error::Backend { .. }), "{err}");
    assert_names(&err, &dir, "set");
    if root {
        // The directory itself is gone: cleanup says so, and the CLI's
        // check for the "table" sees it missing.
        let err = store.delete_expired().await.unwrap_err();
        assert_names(&err, &dir, "delete_expired");
        assert!(!store.session_table_exists().await.unwrap());
    }

    if !root {
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
        fs::set_permissions(base.join("read-only"), fs::Permissions::from_mode(0o700)).unwrap();
    }
    fs::remove_dir_all(&base).unwrap();
}

/// Opening proves the directory writable with a probe file; a symlink
/// planted at a probe's name (by anyone who can write in the directory) is
/// never followed, so opening as root cannot truncate the file it names.
#[tokio::test]
async fn open_never_writes_through_a_symlink_at_the_probe_name() {
    let dir = fresh_dir("probe-symlink");
    fs::create_dir_all(&dir).unwrap();
    let victim = dir.with_extension("victim");
    fs::write(&victim, "precious").unwrap();
    let pid = std::process::id();
    let mut names = vec![format!(".session-file-probe-{pid}")];
    names.extend((0..1000).map(|n| format!(".session-file-probe-{pid}-{n}")));
    for name in &names {
        std::os::unix::fs::symlink(&victim, dir.join(name)).unwrap();
    }
    let store = FileStore::open(&dir).unwrap();
    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
    store.set("k", b("v"), HOUR).await.unwrap();
    fs::remove_dir_all(&dir).unwrap();
    fs::remove_file(&victim).unwrap();
}

/// A header whose value length is near `u64::MAX` (a corrupt or hostile
/// file) reads as missing and is cleaned up: no arithmetic overflow (a
/// panic in debug builds, turned into an error of every read and of every
/// `delete_expired` run).
#[tokio::test]
async fn a_huge_value_length_in_a_header_is_corrupt() {
    let dir = fresh_dir("huge-len");
    let store = FileStore::open(&dir).unwrap();
    store.set("k", b("v"), HOUR).await.unwrap();
    store
        .set("gone", b("v"), Some(Duration::from_millis(1)))
        .await
        .unwrap();
    let path = store.session_path("k").unwrap();
    let mut bytes = fs::read(&path).unwrap();
    bytes[34..42].copy_from_slice(&u64::MAX.to_le_bytes());
    fs::write(&path, &bytes).unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(store.get("k", None).await.unwrap(), None);
    assert!(!store.exists("k").await.unwrap());
    assert_eq!(store.expires_in("k").await.unwrap(), None);
    // Cleanup removes it (uncounted) and still counts the expired one.
    assert_eq!(store.delete_expired().await.unwrap(), 1);
    assert!(!path.exists());
    fs::remove_dir_all(&dir).unwrap();
}

/// The session directory removed while the store runs: reads find
/// nothing, a write is an error saying the directory no longer exists
/// (not a missing lock file), nothing recreates it behind the operator's
/// back, and `migrate` brings it back.
#[tokio::test]
async fn a_session_directory_removed_while_running_is_named() {
    let dir = fresh_dir("removed");
    let store = FileStore::open(&dir).unwrap();
    store.set("k", b("v"), HOUR).await.unwrap();
    fs::remove_dir_all(&dir).unwrap();
    assert_eq!(store.get("k", None).await.unwrap(), None);
    assert_eq!(store.get("k", HOUR).await.unwrap(), None);
    for err in [
        store.set("k", b("v"), HOUR).await.unwrap_err(),
        store.create("k", b("v"), HOUR).await.unwrap_err(),
    ] {
        let text = session_core::error_chain(&err);
        assert!(matches!(err, Error::Backend { .. }), "{text}");
        assert!(text.contains("no longer exists"), "{text}");
        assert!(text.contains(&dir.display().to_string()), "{text}");
    }
    assert!(!dir.exists(), "a write recreated the removed directory");
    assert!(store.migrate().await.unwrap().is_noop());
    store.set("k", b("v"), HOUR).await.unwrap();
    assert_eq!(store.get("k", None).await.unwrap(), Some(b("v")));
    fs::remove_dir_all(&dir).unwrap();
}

/// A lock held too long (a hung process, here another open file of this
/// one) fails the change with an error naming the lock file after
/// `lock_timeout`, instead of waiting forever on a blocking thread; reads
/// take no lock and go on; once released, changes work again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_held_too_long_fails_the_change_naming_the_lock_file() {
    use session_file::FileConfig;
    let dir = fresh_dir("lock-timeout");
    let config = FileConfig {
        lock_timeout: Duration::from_millis(300),
        ..FileConfig::default()
    };
    let store = FileStore::open_with(&dir, config).unwrap();
    store.set("k", b("v"), HOUR).await.unwrap();
    let lock_path = store.session_path("k").unwrap().with_extension("lock");
    let holder = File::options()
        .read(true)
        .write(true)
        .open(&lock_path)
        .unwrap();
    holder.lock().unwrap();

    let started = std::time::Instant::now();
    let err = store.set("k", b("w"), HOUR).await.unwrap_err();
    let waited = started.elapsed();
    assert!(matches!(err, Error::Backend { .. }), "{err:?}");
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_secs(3),
        "waited {waited:?}"
    );
    let chain = session_core::error_chain(&err);
    assert!(chain.contains(&lock_path.display().to_string()), "{chain}");
    assert!(chain.contains("longer than 300ms"), "{chain}");
    assert!(!store.delete_live("k").await.is_ok_and(|gone| gone));
    assert_eq!(store.get("k", None).await.unwrap(), Some(b("v")));

    drop(holder);
    store.set("k", b("w"), HOUR).await.unwrap();
    assert_eq!(store.get("k", None).await.unwrap(), Some(b("w")));
    let err = session_core::StoreConfig::from_json_str(r#"{"lock_timeout": 0}"#)
        .map(|c: FileConfig| c)
        .unwrap_err();
    assert!(
        matches!(&err, Error::InvalidConfig { field, .. } if field == "lock_timeout"),
        "{err}"
    );
    fs::remove_dir_all(&dir).unwrap();
}
