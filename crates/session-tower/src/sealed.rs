//! Sealing a session map into a cookie value with AES-256-GCM, and opening
//! it again.
//!
//! A sealed value is URL-safe base64 (no padding) of
//!
//! ```text
//! version (1 byte, 1) | nonce (12 random bytes) | ciphertext | tag (16 bytes)
//! ```
//!
//! where the plaintext is `issued_at (u64 BE, Unix seconds) | expires_at
//! (u64 BE) | the session as a JSON object`, and the associated data binds
//! the format version, the number of cookies the value is split over and
//! the cookie name: a value opens only under the name, and in the layout,
//! it was sealed for.

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

use crate::keys::{CookieKeys, random};

/// The format version, the first byte of every sealed value.
const VERSION: u8 = 1;
const NONCE_BYTES: usize = 12;
const TAG_BYTES: usize = 16;
const TIMES_BYTES: usize = 16;
/// Bytes a sealed value adds to the JSON: version, nonce, times, tag.
pub(crate) const OVERHEAD_BYTES: usize = 1 + NONCE_BYTES + TIMES_BYTES + TAG_BYTES;
/// A clock difference between servers tolerated for `issued_at`.
const CLOCK_SKEW_SECS: u64 = 60;

/// The length of the base64 text of a sealed session whose JSON is
/// `json_len` bytes.
pub(crate) fn encoded_len(json_len: usize) -> usize {
    // `None` only past `usize::MAX`, far beyond any cookie: saturate.
    base64::encoded_len(json_len + OVERHEAD_BYTES, false).unwrap_or(usize::MAX)
}

/// Why a cookie value did not open. Logged (at debug level) by name only,
/// never with the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// Not URL-safe base64 without padding.
    Encoding,
    /// Too short to hold a sealed value.
    Truncated,
    /// A format version this code does not know.
    Version,
    /// No key opens it: tampered, truncated, another cookie name or
    /// layout, or sealed with a key no longer configured.
    Authentication,
    /// Its expiry has passed, or it is older than `max_age`.
    Expired,
    /// Issued in the future (beyond the tolerated clock skew).
    FromTheFuture,
    /// The plaintext is not a JSON object.
    NotAnObject,
    /// The cookies do not form a valid layout (chunks missing, counts).
    Layout,
    /// Larger than the configured cookie size.
    Oversized,
}

impl Refused {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Refused::Encoding => "not base64",
            Refused::Truncated => "truncated",
            Refused::Version => "unknown format version",
            Refused::Authentication => "no key opens it",
            Refused::Expired => "expired",
            Refused::FromTheFuture => "issued in the future",
            Refused::NotAnObject => "not a JSON object",
            Refused::Layout => "chunks missing or malformed",
            Refused::Oversized => "larger than the configured size",
        }
    }
}

/// An opened session.
#[derive(Debug)]
pub(crate) struct Opened {
    pub(crate) data: Map<String, Value>,
    pub(crate) issued_at: u64,
    pub(crate) expires_at: u64,
    /// Opened with the first key (else an older one: re-seal on write).
    pub(crate) current_key: bool,
}

fn aad(cookie_name: &str, chunks: u32) -> Vec<u8> {
    let mut aad = Vec::with_capacity(32 + cookie_name.len());
    aad.extend_from_slice(b"session-tower sealed cookie");
    aad.push(VERSION);
    aad.extend_from_slice(&chunks.to_be_bytes());
    aad.extend_from_slice(cookie_name.as_bytes());
    aad
}

/// Seals `json` (a serialized JSON object) for the cookie `cookie_name`
/// split over `chunks` cookies, valid from `issued_at` until `expires_at`
/// (Unix seconds), with the first key and a fresh random nonce.
pub(crate) fn seal(
    keys: &CookieKeys,
    cookie_name: &str,
    chunks: u32,
    json: &[u8],
    issued_at: u64,
    expires_at: u64,
) -> Result<String, session_core::Error> {
    let mut nonce = [0u8; NONCE_BYTES];
    random(&mut nonce, "a cookie nonce")?;
    let mut plaintext = Vec::with_capacity(TIMES_BYTES + json.len());
    plaintext.extend_from_slice(&issued_at.to_be_bytes());
    plaintext.extend_from_slice(&expires_at.to_be_bytes());
    plaintext.extend_from_slice(json);
    let aad = aad(cookie_name, chunks);
    let ciphertext = keys
        .sealing()
        .encrypt(
            &Nonce::from(nonce),
            Payload {
                msg: &plaintext,
                aad: &aad,
            },
        )
        .map_err(|_| {
            session_core::Error::backend(
                "session cookie",
                "sealing the session",
                std::io::Error::other("AES-GCM refused the message length"),
            )
        })?;
    let mut raw = Vec::with_capacity(1 + NONCE_BYTES + ciphertext.len());
    raw.push(VERSION);
    raw.extend_from_slice(&nonce);
    raw.extend_from_slice(&ciphertext);
    Ok(URL_SAFE_NO_PAD.encode(raw))
}

/// Opens a value [`seal`] made for `cookie_name` and `chunks` cookies, at
/// `now` (Unix seconds), refusing one older than `max_age_secs`.
pub(crate) fn open(
    keys: &CookieKeys,
    cookie_name: &str,
    chunks: u32,
    encoded: &str,
    now: u64,
    max_age_secs: u64,
) -> Result<Opened, Refused> {
    let raw = URL_SAFE_NO_PAD
        .decode(encoded)
        .map_err(|_| Refused::Encoding)?;
    open_raw(keys, cookie_name, chunks, &raw, now, max_age_secs)
}

fn open_raw(
    keys: &CookieKeys,
    cookie_name: &str,
    chunks: u32,
    raw: &[u8],
    now: u64,
    max_age_secs: u64,
) -> Result<Opened, Refused> {
    if raw.len() < OVERHEAD_BYTES {
        return Err(Refused::Truncated);
    }
    if raw[0] != VERSION {
        return Err(Refused::Version);
    }
    let nonce = Nonce::from(
        <[u8; NONCE_BYTES]>::try_from(&raw[1..1 + NONCE_BYTES]).map_err(|_| Refused::Truncated)?,
    );
    let aad = aad(cookie_name, chunks);
    let payload = || Payload {
        msg: &raw[1 + NONCE_BYTES..],
        aad: &aad,
    };
    let mut opened = None;
    for (i, cipher) in keys.openers().enumerate() {
        if let Ok(plaintext) = Aes256Gcm::decrypt(cipher, &nonce, payload()) {
            opened = Some((plaintext, i == 0));
            break;
        }
    }
    let (plaintext, current_key) = opened.ok_or(Refused::Authentication)?;
    let time = |at: usize| {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&plaintext[at..at + 8]);
        u64::from_be_bytes(bytes)
    };
    let (issued_at, expires_at) = (time(0), time(8));
    if issued_at > now.saturating_add(CLOCK_SKEW_SECS) {
        return Err(Refused::FromTheFuture);
    }
    if now >= expires_at || now >= issued_at.saturating_add(max_age_secs) {
        return Err(Refused::Expired);
    }
    match serde_json::from_slice::<Value>(&plaintext[TIMES_BYTES..]) {
        Ok(Value::Object(data)) => Ok(Opened {
            data,
            issued_at,
            expires_at,
            current_key,
        }),
        _ => Err(Refused::NotAnObject),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_700_000_000;
    const DAY: u64 = 86_400;

    fn keys() -> CookieKeys {
        CookieKeys::new([7u8; 32]).unwrap()
    }

    fn map(json: &str) -> Map<String, Value> {
        serde_json::from_str(json).unwrap()
    }

    fn sealed(keys: &CookieKeys, json: &str) -> String {
        seal(keys, "session", 1, json.as_bytes(), NOW, NOW + DAY).unwrap()
    }

    #[test]
    fn seals_and_opens() {
        let keys = keys();
        let value = sealed(&keys, r#"{"user":"alice","n":1}"#);
        assert_eq!(value.len(), encoded_len(r#"{"user":"alice","n":1}"#.len()));
        let opened = open(&keys, "session", 1, &value, NOW + 10, DAY).unwrap();
        assert_eq!(opened.data, map(r#"{"n":1,"user":"alice"}"#));
        assert_eq!(opened.expires_at, NOW + DAY);
        assert!(opened.current_key);
        // A fresh nonce each time: two seals of the same data differ.
        assert_ne!(value, sealed(&keys, r#"{"user":"alice","n":1}"#));
    }

    #[test]
    fn encoded_len_matches_for_every_remainder() {
        let keys = keys();
        for n in 0..6 {
            let json = format!(r#"{{"k":"{}"}}"#, "x".repeat(n));
            assert_eq!(sealed(&keys, &json).len(), encoded_len(json.len()), "{n}");
        }
    }

    #[test]
    fn the_name_and_the_layout_are_bound() {
        let keys = keys();
        let value = sealed(&keys, "{}");
        assert_eq!(
            open(&keys, "other", 1, &value, NOW, DAY).unwrap_err(),
            Refused::Authentication
        );
        assert_eq!(
            open(&keys, "session", 2, &value, NOW, DAY).unwrap_err(),
            Refused::Authentication
        );
    }

    #[test]
    fn expiry_and_age_are_enforced() {
        let keys = keys();
        let value = sealed(&keys, "{}");
        assert!(open(&keys, "session", 1, &value, NOW + DAY - 1, DAY).is_ok());
        assert_eq!(
            open(&keys, "session", 1, &value, NOW + DAY, DAY).unwrap_err(),
            Refused::Expired
        );
        // A max_age shortened since the seal: older than it is refused.
        assert_eq!(
            open(&keys, "session", 1, &value, NOW + 3600, 3600).unwrap_err(),
            Refused::Expired
        );
        assert_eq!(
            open(&keys, "session", 1, &value, NOW - 3600, DAY).unwrap_err(),
            Refused::FromTheFuture
        );
    }

    #[test]
    fn rotation_opens_old_values_and_says_so() {
        let old = CookieKeys::new([1u8; 32]).unwrap();
        let rotated = CookieKeys::from_secrets([[2u8; 32], [1u8; 32]]).unwrap();
        let value = sealed(&old, r#"{"a":1}"#);
        let opened = open(&rotated, "session", 1, &value, NOW, DAY).unwrap();
        assert!(!opened.current_key);
        assert_eq!(opened.data, map(r#"{"a":1}"#));
        let removed = CookieKeys::new([2u8; 32]).unwrap();
        assert_eq!(
            open(&removed, "session", 1, &value, NOW, DAY).unwrap_err(),
            Refused::Authentication
        );
    }

    #[test]
    fn malformed_values_are_refused_by_kind() {
        let keys = keys();
        let r = |v: &str| open(&keys, "session", 1, v, NOW, DAY).unwrap_err();
        assert_eq!(r("!!!"), Refused::Encoding);
        assert_eq!(r("AAAA="), Refused::Encoding);
        assert_eq!(r(""), Refused::Truncated);
        assert_eq!(r(&URL_SAFE_NO_PAD.encode([1u8; 44])), Refused::Truncated);
        let mut raw = URL_SAFE_NO_PAD.decode(sealed(&keys, "{}")).unwrap();
        raw[0] = 2;
        assert_eq!(r(&URL_SAFE_NO_PAD.encode(&raw)), Refused::Version);
        // Sealed JSON that is not an object (never made by the middleware).
        let list = seal(&keys, "session", 1, b"[1]", NOW, NOW + DAY).unwrap();
        assert_eq!(r(&list), Refused::NotAnObject);
    }
}

/// Property tests of sealing: any session map opens to itself, and any
/// change of one byte of the sealed value, or one character of its text,
/// makes it fail to open. 256 cases; `PROPTEST_CASES` for a long run.
#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    const NOW: u64 = 1_700_000_000;

    fn config() -> ProptestConfig {
        let cases = std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(256);
        ProptestConfig {
            cases,
            failure_persistence: None,
            ..ProptestConfig::default()
        }
    }

    /// Any JSON value, a few levels deep.
    fn json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            // Floats JSON carries exactly (serde_json without its
            // `float_roundtrip` feature may parse some others one ULP off,
            // with or without sealing).
            any::<f64>()
                .prop_filter("round-trips through JSON", |f| {
                    f.is_finite()
                        && serde_json::to_string(f)
                            .ok()
                            .and_then(|t| serde_json::from_str::<f64>(&t).ok())
                            == Some(*f)
                })
                .prop_map(Value::from),
            ".{0,40}".prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
                prop::collection::btree_map(".{0,10}", inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn session_map() -> impl Strategy<Value = Map<String, Value>> {
        prop::collection::btree_map(".{0,20}", json(), 0..10).prop_map(|m| m.into_iter().collect())
    }

    fn keys() -> CookieKeys {
        CookieKeys::from_secrets([
            "a secret of thirty-two bytes or more",
            "an older secret, still opening as well",
        ])
        .unwrap()
    }

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn seal_then_open_is_the_same_map(
            data in session_map(),
            chunks in 1u32..5,
            name in "[a-z_-]{1,12}",
        ) {
            let keys = keys();
            let json = serde_json::to_vec(&data).unwrap();
            let value = seal(&keys, &name, chunks, &json, NOW, NOW + 60).unwrap();
            prop_assert_eq!(value.len(), encoded_len(json.len()));
            let opened = open(&keys, &name, chunks, &value, NOW, 60).unwrap();
            prop_assert_eq!(opened.data, data);
        }

        #[test]
        fn any_single_byte_change_fails_to_open(
            data in session_map(),
            at in any::<prop::sample::Index>(),
            delta in 1u8..=255,
        ) {
            let keys = keys();
            let json = serde_json::to_vec(&data).unwrap();
            let value = seal(&keys, "session", 1, &json, NOW, NOW + 60).unwrap();
            let mut raw = URL_SAFE_NO_PAD.decode(&value).unwrap();
            let i = at.index(raw.len());
            raw[i] = raw[i].wrapping_add(delta);
            prop_assert!(open_raw(&keys, "session", 1, &raw, NOW, 60).is_err());
            // One character of the cookie text changed, to any other
            // character a cookie value may hold.
            let mut text = value.into_bytes();
            let i = at.index(text.len());
            let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.!~";
            let j = alphabet.iter().position(|c| *c == text[i]).unwrap();
            text[i] = alphabet[(j + usize::from(delta)) % alphabet.len()];
            if text[i] != alphabet[j] {
                let text = String::from_utf8(text).unwrap();
                prop_assert!(open(&keys, "session", 1, &text, NOW, 60).is_err());
            }
        }

        #[test]
        fn any_text_is_refused_without_panic(text in ".{0,200}") {
            let keys = keys();
            prop_assert!(open(&keys, "session", 1, &text, NOW, 60).is_err());
        }
    }
}
