//! Session ids: random bytes from the OS, hex-encoded.

use crate::Error;

/// Generates a session id of `bytes` random bytes from the operating
/// system's CSPRNG, hex-encoded in lowercase (`2 * bytes` characters), as
/// Litestar's `secrets.token_hex` does.
///
/// ```
/// let id = session_core::generate_session_id(32).unwrap();
/// assert_eq!(id.len(), 64);
/// assert!(session_core::is_well_formed_session_id(&id, 32));
/// ```
pub fn generate_session_id(bytes: usize) -> Result<String, Error> {
    let mut raw = vec![0u8; bytes];
    getrandom::fill(&mut raw).map_err(|e| Error::Backend {
        backend: "os-rng",
        context: "reading random bytes for a session id".into(),
        source: Box::new(std::io::Error::other(e.to_string())),
    })?;
    Ok(hex::encode(&raw))
}

/// True if `id` has exactly the shape [`generate_session_id`] produces for
/// `bytes`: `2 * bytes` lowercase hexadecimal digits and nothing else.
///
/// The middleware calls this before any store lookup, so a malformed cookie
/// never causes a database query.
pub fn is_well_formed_session_id(id: &str, bytes: usize) -> bool {
    id.len() == bytes * 2 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_distinct_and_well_formed() {
        let a = generate_session_id(16).unwrap();
        let b = generate_session_id(16).unwrap();
        assert_ne!(a, b);
        assert!(is_well_formed_session_id(&a, 16));
        assert!(!is_well_formed_session_id(&a, 32));
    }

    #[test]
    fn malformed_ids_are_refused() {
        let ok = "0123456789abcdef0123456789abcdef";
        assert!(is_well_formed_session_id(ok, 16));
        for bad in [
            "",
            "0123456789ABCDEF0123456789abcdef",
            "0123456789abcdef0123456789abcde",
            "0123456789abcdef0123456789abcdefa",
            "0123456789abcdef0123456789abcdeg",
            "0123456789abcdef0123456789abcd'-",
            "０123456789abcdef0123456789abcde",
        ] {
            assert!(!is_well_formed_session_id(bad, 16), "{bad:?}");
        }
    }

    #[test]
    fn hex_is_lowercase_and_complete() {
        assert_eq!(hex::encode([0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
    }
}
