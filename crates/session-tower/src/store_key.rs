//! The store key of a session id.

use sha2::{Digest, Sha256};

/// The key a session is stored under: the SHA-256 of the id in lowercase
/// hex when `hashed` (the default), else the id itself.
///
/// With hashing, a leaked table or backup holds no usable session id: the
/// cookie value cannot be derived from the stored key.
pub fn store_key(session_id: &str, hashed: bool) -> String {
    if !hashed {
        return session_id.to_owned();
    }
    hex::encode(Sha256::digest(session_id.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_with_sha256() {
        assert_eq!(
            store_key("abc", true),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(store_key("abc", false), "abc");
    }
}
