//! Store keys: what every store accepts.

use crate::Error;

/// The longest key a store accepts, in bytes (Oracle's `VARCHAR2(255)`).
pub const MAX_KEY_BYTES: usize = 255;

/// Checks a store key: non-empty, at most [`MAX_KEY_BYTES`] bytes of UTF-8,
/// and no NUL character (PostgreSQL `TEXT` cannot hold one).
///
/// Every store calls this before touching its backend, so a bad key is an
/// [`Error::InvalidKey`] and never reaches SQL.
///
/// ```
/// use session_core::validate_key;
/// assert!(validate_key("abc").is_ok());
/// assert!(validate_key("").is_err());
/// assert!(validate_key(&"x".repeat(256)).is_err());
/// ```
pub fn validate_key(key: &str) -> Result<(), Error> {
    if key.is_empty() {
        return Err(Error::InvalidKey {
            reason: "the key is empty".into(),
        });
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(Error::InvalidKey {
            reason: format!(
                "the key is {} bytes long, at most {MAX_KEY_BYTES} allowed",
                key.len()
            ),
        });
    }
    if key.contains('\0') {
        return Err(Error::InvalidKey {
            reason: "the key contains a NUL character".into(),
        });
    }
    Ok(())
}

/// The key prefix of a store that keeps its keys under one (Redis,
/// memcached) unless configured otherwise.
pub const DEFAULT_KEY_PREFIX: &str = "session:";

/// The longest key prefix, in bytes.
pub const MAX_KEY_PREFIX_BYTES: usize = 128;

/// Checks the `prefix` config field of a store that keeps its keys under a
/// prefix: 1 to [`MAX_KEY_PREFIX_BYTES`] bytes of printable ASCII without
/// space, and none of the characters in `also_refused` (a backend's own
/// specials, such as Redis's glob characters). The error is an
/// [`Error::InvalidConfig`] for `prefix`.
///
/// ```
/// use session_core::validate_key_prefix;
/// assert!(validate_key_prefix("app:session:", "").is_ok());
/// assert!(validate_key_prefix("", "").is_err());
/// assert!(validate_key_prefix("a b:", "").is_err());
/// assert!(validate_key_prefix("sess*", "*?").is_err());
/// ```
pub fn validate_key_prefix(prefix: &str, also_refused: &str) -> Result<(), Error> {
    let invalid = |reason: String| Error::invalid_config("prefix", reason);
    if prefix.is_empty() {
        return Err(invalid(
            "empty; a prefix keeps this store's keys apart from every other key on the server"
                .to_owned(),
        ));
    }
    if prefix.len() > MAX_KEY_PREFIX_BYTES {
        return Err(invalid(format!(
            "{} bytes long; expected 1 to {MAX_KEY_PREFIX_BYTES}",
            prefix.len()
        )));
    }
    if let Some(bad) = prefix
        .chars()
        .find(|c| !c.is_ascii_graphic() || also_refused.contains(*c))
    {
        let others = if also_refused.is_empty() {
            String::new()
        } else {
            format!(" and without `{also_refused}`")
        };
        return Err(invalid(format!(
            "{prefix:?} contains {bad:?}; expected printable ASCII without space{others}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_in_bytes_not_chars() {
        // 85 three-byte characters: 255 bytes.
        assert!(validate_key(&"€".repeat(85)).is_ok());
        assert!(validate_key(&format!("{}a", "€".repeat(85))).is_err());
    }

    #[test]
    fn nul_is_refused() {
        let err = validate_key("a\0b").unwrap_err();
        assert!(err.to_string().contains("NUL"), "{err}");
    }
}
