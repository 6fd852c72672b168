//! [`CookieKeys`]: the secret keys that seal client-side sessions and sign
//! session id cookies, with rotation.

use aes_gcm::{Aes256Gcm, KeyInit};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use session_core::Error;
use sha2::Sha256;

/// The shortest secret accepted, in bytes.
pub const MIN_SECRET_BYTES: usize = 32;

/// The field an error about the secrets names.
pub(crate) const SECRETS_FIELD: &str = "secret_keys";

/// HKDF `info` of the AES-256-GCM key derived from a secret longer than
/// 32 bytes.
const SEALING_INFO: &[u8] = b"session-tower v1: client-side session sealing key";
/// HKDF `info` of the HMAC-SHA256 key that signs session ids: never the
/// sealing key itself, even for a secret of exactly 32 bytes.
const SIGNING_INFO: &[u8] = b"session-tower v1: session id signing key";

/// The secret keys of client-side sessions and signed id cookies: a list
/// for rotation, in which the **first key seals and signs** and **every key
/// opens and verifies**.
///
/// Each secret is at least 32 bytes ([`MIN_SECRET_BYTES`]). A secret of
/// exactly 32 bytes is the AES-256-GCM key itself; a longer one (a
/// passphrase, a base64 text such as [`generate_secret`](Self::generate_secret)
/// makes) is turned into one with HKDF-SHA256. The HMAC key of signed ids is
/// always derived with HKDF, under another label, so no key serves two
/// purposes.
///
/// To rotate: put the new secret first and keep the old one after it for
/// at least `max_age`; cookies sealed with the old key still open, and each
/// is sealed again with the new key the next time its session is written.
/// Then remove the old secret: cookies only it opens are no session.
///
/// `Debug` prints how many keys there are, never a key.
///
/// # Examples
///
/// ```
/// use session_tower::CookieKeys;
///
/// let new = "a new secret of at least thirty-two bytes";
/// let old = "the old secret, kept for max_age after rotating";
/// let keys = CookieKeys::from_secrets([new, old]).unwrap();
/// assert_eq!(keys.len(), 2);
///
/// // A short key is refused, naming the field and the entry.
/// let err = CookieKeys::from_secrets([new, "short"]).unwrap_err();
/// assert!(err.to_string().contains("secret_keys[1]"), "{err}");
/// let err = CookieKeys::from_secrets(Vec::<String>::new()).unwrap_err();
/// assert!(err.to_string().contains("secret_keys"), "{err}");
/// ```
#[derive(Clone)]
pub struct CookieKeys {
    keys: Vec<Key>,
}

#[derive(Clone)]
struct Key {
    cipher: Aes256Gcm,
    /// HMAC-SHA256 keyed with the signing key, cloned for each use.
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for CookieKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CookieKeys")
            .field("keys", &self.keys.len())
            .finish_non_exhaustive()
    }
}

impl CookieKeys {
    /// One secret of at least 32 bytes.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] naming `secret_keys[0]` if the secret is
    /// shorter than 32 bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// let keys = session_tower::CookieKeys::new([7u8; 32]).unwrap();
    /// assert_eq!(keys.len(), 1);
    /// ```
    pub fn new(secret: impl AsRef<[u8]>) -> Result<Self, Error> {
        Self::from_secrets([secret])
    }

    /// Secrets for rotation: the first seals and signs, all open and
    /// verify.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] naming `secret_keys` if there is none, or
    /// `secret_keys[i]` for the first secret shorter than 32 bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// use session_tower::CookieKeys;
    /// let keys = CookieKeys::from_secrets(["n".repeat(40), "o".repeat(32)]).unwrap();
    /// assert_eq!(keys.len(), 2);
    /// ```
    pub fn from_secrets<I, S>(secrets: I) -> Result<Self, Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<[u8]>,
    {
        let mut keys = Vec::new();
        for (i, secret) in secrets.into_iter().enumerate() {
            keys.push(Key::derive(i, secret.as_ref())?);
        }
        if keys.is_empty() {
            return Err(Error::invalid_config(
                SECRETS_FIELD,
                format!("at least one secret key of {MIN_SECRET_BYTES} bytes or more is required"),
            ));
        }
        Ok(CookieKeys { keys })
    }

    /// A fresh secret for [`new`](Self::new): 32 bytes from the operating
    /// system's CSPRNG as URL-safe base64 (43 characters), to keep in an
    /// environment variable or a secret store.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`] if the OS random number generator fails.
    ///
    /// # Examples
    ///
    /// ```
    /// use session_tower::CookieKeys;
    /// let secret = CookieKeys::generate_secret().unwrap();
    /// assert_eq!(secret.len(), 43);
    /// assert!(CookieKeys::new(&secret).is_ok());
    /// ```
    pub fn generate_secret() -> Result<String, Error> {
        let mut raw = [0u8; 32];
        random(&mut raw, "a secret key")?;
        Ok(URL_SAFE_NO_PAD.encode(raw))
    }

    /// How many keys there are (at least one).
    #[allow(clippy::len_without_is_empty)] // never empty
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// The key that seals: the first.
    pub(crate) fn sealing(&self) -> &Aes256Gcm {
        &self.keys[0].cipher
    }

    /// Every key's cipher, the sealing one first.
    pub(crate) fn openers(&self) -> impl Iterator<Item = &Aes256Gcm> {
        self.keys.iter().map(|k| &k.cipher)
    }

    /// The HMAC-SHA256 of `message` under the first key.
    pub(crate) fn sign(&self, message: &[&[u8]]) -> [u8; 32] {
        self.keys[0].mac(message).finalize().into_bytes().into()
    }

    /// True if `tag` is the HMAC-SHA256 of `message` under any key,
    /// compared in constant time.
    pub(crate) fn verify(&self, message: &[&[u8]], tag: &[u8]) -> bool {
        self.keys
            .iter()
            .any(|key| key.mac(message).verify_slice(tag).is_ok())
    }
}

impl Key {
    fn derive(index: usize, secret: &[u8]) -> Result<Self, Error> {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(Error::invalid_config(
                format!("{SECRETS_FIELD}[{index}]"),
                format!(
                    "a secret key must be at least {MIN_SECRET_BYTES} bytes, got {}",
                    secret.len()
                ),
            ));
        }
        let hkdf = hkdf::Hkdf::<Sha256>::new(None, secret);
        let mut sealing = [0u8; 32];
        if secret.len() == 32 {
            sealing.copy_from_slice(secret);
        } else {
            expand(&hkdf, SEALING_INFO, &mut sealing);
        }
        let mut signing = [0u8; 32];
        expand(&hkdf, SIGNING_INFO, &mut signing);
        let cipher = Aes256Gcm::new(&sealing.into());
        // HMAC takes a key of any length.
        let mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&signing)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        Ok(Key { cipher, mac })
    }

    /// The HMAC-SHA256 state after `message`, its parts in order.
    fn mac(&self, message: &[&[u8]]) -> Hmac<Sha256> {
        let mut mac = self.mac.clone();
        for part in message {
            mac.update(part);
        }
        mac
    }
}

fn expand(hkdf: &hkdf::Hkdf<Sha256>, info: &[u8], out: &mut [u8; 32]) {
    // 32 bytes is far below HKDF-SHA256's limit of 255 * 32.
    hkdf.expand(info, out)
        .unwrap_or_else(|_| unreachable!("32 bytes is a valid HKDF-SHA256 output length"));
}

/// Fills `out` from the OS CSPRNG.
pub(crate) fn random(out: &mut [u8], what: &str) -> Result<(), Error> {
    getrandom::fill(out).map_err(|e| {
        Error::backend(
            "os-rng",
            format!("reading random bytes for {what}"),
            std::io::Error::other(e.to_string()),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field;

    #[test]
    fn short_or_missing_secrets_are_refused_by_field() {
        assert_eq!(
            field(CookieKeys::from_secrets(Vec::<Vec<u8>>::new()).unwrap_err()),
            "secret_keys"
        );
        assert_eq!(
            field(CookieKeys::new([1u8; 31]).unwrap_err()),
            "secret_keys[0]"
        );
        assert_eq!(
            field(CookieKeys::from_secrets([[1u8; 32].as_slice(), &[2u8; 5]]).unwrap_err()),
            "secret_keys[1]"
        );
        let err = CookieKeys::new("").unwrap_err();
        assert!(
            err.to_string().contains("at least 32 bytes, got 0"),
            "{err}"
        );
        assert!(CookieKeys::new([1u8; 32]).is_ok());
        assert!(CookieKeys::new([1u8; 33]).is_ok());
    }

    #[test]
    fn debug_shows_no_key() {
        let keys = CookieKeys::new([0xabu8; 32]).unwrap();
        let text = format!("{keys:?}");
        assert_eq!(text, "CookieKeys { keys: 1, .. }");
    }

    #[test]
    fn signatures_verify_under_any_key_and_only_for_their_message() {
        let old = CookieKeys::new([1u8; 32]).unwrap();
        let rotated = CookieKeys::from_secrets([[2u8; 32], [1u8; 32]]).unwrap();
        let tag = old.sign(&[b"session", b"abc"]);
        assert!(old.verify(&[b"session", b"abc"], &tag));
        assert!(rotated.verify(&[b"session", b"abc"], &tag));
        assert!(!rotated.verify(&[b"session", b"abd"], &tag));
        assert!(!rotated.verify(&[b"session", b"abc"], &tag[..31]));
        let new = CookieKeys::new([2u8; 32]).unwrap();
        assert!(!new.verify(&[b"session", b"abc"], &tag));
        // The first key signs.
        assert_eq!(rotated.sign(&[b"x"]), new.sign(&[b"x"]));
    }

    #[test]
    fn generated_secrets_differ() {
        let a = CookieKeys::generate_secret().unwrap();
        let b = CookieKeys::generate_secret().unwrap();
        assert_ne!(a, b);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
    }
}
