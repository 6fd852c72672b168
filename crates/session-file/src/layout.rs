//! Where a key's files live, and which names in the directory are this
//! store's.
//!
//! A key's name is the SHA-256 of its bytes, in lower-case hex (64
//! characters): any valid key gives a safe file name, and distinct keys
//! never share one. The files of a key live two shard levels down, named by
//! the hash's first two and next two hex digits, so no directory holds more
//! than 256 subdirectories and a store of ten million sessions puts about
//! 150 in each leaf directory:
//!
//! ```text
//! <dir>/3f/a2/3fa2…e1.session        the session: header, key, value
//! <dir>/3f/a2/3fa2…e1.lock           the key's lock file, while it is used
//! <dir>/3f/a2/3fa2…e1.<pid>-<n>.tmp  a write in progress (renamed over .session)
//! ```
//!
//! Nothing else is this store's: `delete_all` and `delete_expired` touch
//! only these names under two-hex-digit directories whose digits match the
//! file's hash.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

/// The extension of a session file.
pub(crate) const SESSION_EXT: &str = "session";
/// The extension of a key's lock file.
pub(crate) const LOCK_EXT: &str = "lock";
/// The extension of a temporary file.
pub(crate) const TEMP_EXT: &str = "tmp";

/// The files of one key.
#[derive(Debug, Clone)]
pub(crate) struct KeyPaths {
    /// The leaf shard directory.
    pub(crate) dir: PathBuf,
    /// The top shard directory (the leaf's parent).
    pub(crate) top: PathBuf,
    pub(crate) session: PathBuf,
    pub(crate) lock: PathBuf,
    /// The 64 hex digits of the key's SHA-256.
    pub(crate) hash: String,
}

impl KeyPaths {
    /// The files of `key` under `root`.
    pub(crate) fn of_key(root: &Path, key: &str) -> Self {
        Self::of_hash(root, hex::encode(Sha256::digest(key.as_bytes())))
    }

    /// The files of the key whose hash is `hash` (64 hex digits).
    pub(crate) fn of_hash(root: &Path, hash: String) -> Self {
        let top = root.join(&hash[..2]);
        let dir = top.join(&hash[2..4]);
        KeyPaths {
            session: dir.join(format!("{hash}.{SESSION_EXT}")),
            lock: dir.join(format!("{hash}.{LOCK_EXT}")),
            dir,
            top,
            hash,
        }
    }

    /// A fresh temporary file name in the key's directory: the hash, this
    /// process's id and a counter, so no two writers on the machine pick
    /// the same name at once.
    pub(crate) fn temp(&self) -> PathBuf {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        self.dir.join(format!(
            "{}.{}-{n}.{TEMP_EXT}",
            self.hash,
            std::process::id()
        ))
    }
}

/// True for a shard directory's name: two lower-case hex digits.
pub(crate) fn is_shard(name: &str) -> bool {
    name.len() == 2 && name.bytes().all(is_hex)
}

fn is_hex(b: u8) -> bool {
    b.is_ascii_digit() || (b'a'..=b'f').contains(&b)
}

/// What a file name in a leaf shard directory is.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Name<'a> {
    Session(&'a str),
    Lock(&'a str),
    Temp(&'a str),
    /// Not one of this store's names: left alone.
    Other,
}

/// Classifies `name`, found in the leaf directory `top/sub`: one of this
/// store's names only if its hash starts with the directory's digits.
pub(crate) fn classify<'a>(name: &'a str, top: &str, sub: &str) -> Name<'a> {
    let Some((hash, rest)) = name.split_once('.') else {
        return Name::Other;
    };
    if hash.len() != 64 || !hash.bytes().all(is_hex) || &hash[..2] != top || &hash[2..4] != sub {
        return Name::Other;
    }
    match rest {
        SESSION_EXT => Name::Session(hash),
        LOCK_EXT => Name::Lock(hash),
        _ => match rest.strip_suffix(".tmp") {
            Some(tag)
                if !tag.is_empty() && tag.bytes().all(|b| b.is_ascii_digit() || b == b'-') =>
            {
                Name::Temp(hash)
            }
            _ => Name::Other,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_map_to_their_hash_in_two_shard_levels() {
        let p = KeyPaths::of_key(Path::new("/s"), "abc");
        // SHA-256("abc")
        let hash = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(p.hash, hash);
        assert_eq!(p.session, Path::new(&format!("/s/ba/78/{hash}.session")));
        assert_eq!(p.lock, Path::new(&format!("/s/ba/78/{hash}.lock")));
        assert_eq!(p.dir, Path::new("/s/ba/78"));
        assert_eq!(p.top, Path::new("/s/ba"));
        let temp = p.temp();
        let name = temp.file_name().unwrap().to_str().unwrap();
        assert_eq!(classify(name, "ba", "78"), Name::Temp(hash));
        assert_ne!(p.temp(), temp);
    }

    #[test]
    fn only_our_names_are_ours() {
        let hash = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        fn ours(n: &str) -> Name<'_> {
            classify(n, "ba", "78")
        }
        assert_eq!(ours(&format!("{hash}.session")), Name::Session(hash));
        assert_eq!(ours(&format!("{hash}.lock")), Name::Lock(hash));
        assert_eq!(ours(&format!("{hash}.12-3.tmp")), Name::Temp(hash));
        // In the wrong shard directory, or not quite our names.
        assert_eq!(
            classify(&format!("{hash}.session"), "ba", "79"),
            Name::Other
        );
        for other in [
            "README".to_owned(),
            format!("{hash}.session.bak"),
            format!("{hash}.tmp"),
            format!("{hash}.x.tmp"),
            format!("{}.session", hash.to_uppercase()),
            format!("{}.session", &hash[..63]),
            ".session".to_owned(),
        ] {
            assert_eq!(ours(&other), Name::Other, "{other}");
        }
        assert!(is_shard("0f"));
        assert!(!is_shard("0F") && !is_shard("0") && !is_shard("0fa") && !is_shard("zz"));
    }
}
