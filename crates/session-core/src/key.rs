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
