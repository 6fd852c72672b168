//! [`ClientSideConfig`]: sessions kept in the browser, sealed with
//! AES-256-GCM, instead of in a store.

use http::HeaderMap;
use session_core::Error;

use crate::chunks::{self, Limits, Offered};
use crate::keys::CookieKeys;
use crate::sealed::{self, Opened, Refused};
use crate::{SessionConfig, SessionError, cookie};

/// Bounds enforced by [`ClientSideConfigBuilder::build`] and
/// [`SessionLayer::client_side`](crate::SessionLayer::client_side).
pub mod client_limits {
    /// What one cookie (`name=value` and its attributes) may take: the
    /// size every browser keeps (RFC 6265 asks for at least 4096 bytes).
    pub const COOKIE_BYTES: usize = 4096;
    /// The least room the attributes (`Path`, `Domain`, ...) must leave
    /// for the value in one cookie.
    pub const MIN_VALUE_BYTES: usize = 1024;
    /// The default `max_cookie_bytes`: 8 KiB, what a default nginx accepts
    /// in one request header line (`large_client_header_buffers`), other
    /// cookies of the site included.
    pub const DEFAULT_MAX_COOKIE_BYTES: usize = 8 * 1024;
    /// The smallest `max_cookie_bytes`.
    pub const MIN_MAX_COOKIE_BYTES: usize = 256;
    /// The largest `max_cookie_bytes`.
    pub const MAX_MAX_COOKIE_BYTES: usize = 64 * 1024;
}

use client_limits::*;

/// The settings of client-side sessions: the secret keys and the size the
/// session's cookies may take. The cookie itself (name, `Max-Age`, flags)
/// and the session's lifetime come from the [`SessionConfig`] it is used
/// with, in [`SessionLayer::client_side`](crate::SessionLayer::client_side).
///
/// The whole session is serialized to JSON and sealed with AES-256-GCM
/// under the first key, with a fresh random nonce, its expiry inside, and
/// the cookie name bound to it; a value too large for one cookie is split
/// over `<name>-0`, `<name>-1`, ... . `Debug` never prints a key.
///
/// # Examples
///
/// ```
/// use session_tower::ClientSideConfig;
///
/// let client = ClientSideConfig::builder()
///     .secret_keys(["this secret is at least thirty-two bytes long"])
///     .max_cookie_bytes(12 * 1024)
///     .build()
///     .unwrap();
/// assert_eq!(client.max_cookie_bytes(), 12 * 1024);
///
/// // No key, or a short one, is refused when the config is built.
/// let err = ClientSideConfig::builder().build().unwrap_err();
/// assert!(err.to_string().contains("`secret_keys`"), "{err}");
/// let err = ClientSideConfig::builder().secret_keys(["too short"]).build().unwrap_err();
/// assert!(err.to_string().contains("`secret_keys[0]`"), "{err}");
/// ```
#[derive(Clone, Debug)]
pub struct ClientSideConfig {
    keys: CookieKeys,
    max_cookie_bytes: usize,
}

impl ClientSideConfig {
    /// A builder: set the secret keys, then [`build`](ClientSideConfigBuilder::build).
    pub fn builder() -> ClientSideConfigBuilder {
        ClientSideConfigBuilder::default()
    }

    /// A config over `keys`, with the default `max_cookie_bytes` (8 KiB).
    ///
    /// # Examples
    ///
    /// ```
    /// use session_tower::{ClientSideConfig, CookieKeys};
    /// let client = ClientSideConfig::new(CookieKeys::new([9u8; 32]).unwrap());
    /// assert_eq!(client.max_cookie_bytes(), 8 * 1024);
    /// ```
    pub fn new(keys: CookieKeys) -> Self {
        ClientSideConfig {
            keys,
            max_cookie_bytes: DEFAULT_MAX_COOKIE_BYTES,
        }
    }

    /// The keys: the first seals, all open.
    pub fn keys(&self) -> &CookieKeys {
        &self.keys
    }

    /// The most bytes the session's cookies may take in the browser's
    /// `Cookie` header, all chunks together (`name=value` pairs and the
    /// `; ` between them). A change that would need more fails with
    /// [`SessionError::TooLarge`](crate::SessionError::TooLarge), a `413`.
    pub fn max_cookie_bytes(&self) -> usize {
        self.max_cookie_bytes
    }
}

/// Builds a [`ClientSideConfig`]. `Debug` never prints a secret.
#[derive(Clone, Default)]
pub struct ClientSideConfigBuilder {
    secret_keys: Vec<Vec<u8>>,
    keys: Option<CookieKeys>,
    max_cookie_bytes: Option<usize>,
}

impl std::fmt::Debug for ClientSideConfigBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSideConfigBuilder")
            .field("secret_keys", &self.secret_keys.len())
            .field("max_cookie_bytes", &self.max_cookie_bytes)
            .finish_non_exhaustive()
    }
}

impl ClientSideConfigBuilder {
    /// The secrets, each at least 32 bytes: the first seals, all open (see
    /// [`CookieKeys`] for rotation).
    pub fn secret_keys<I, S>(mut self, secrets: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<[u8]>,
    {
        self.secret_keys = secrets.into_iter().map(|s| s.as_ref().to_vec()).collect();
        self.keys = None;
        self
    }

    /// Keys already made, instead of [`secret_keys`](Self::secret_keys).
    pub fn keys(mut self, keys: CookieKeys) -> Self {
        self.keys = Some(keys);
        self.secret_keys.clear();
        self
    }

    /// See [`ClientSideConfig::max_cookie_bytes`]; 256 bytes to 64 KiB,
    /// default 8 KiB.
    pub fn max_cookie_bytes(mut self, bytes: usize) -> Self {
        self.max_cookie_bytes = Some(bytes);
        self
    }

    /// Checks every field and makes the config.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] naming the field: `secret_keys` if no key
    /// was given, `secret_keys[i]` for a secret shorter than 32 bytes,
    /// `max_cookie_bytes` out of its range.
    pub fn build(self) -> Result<ClientSideConfig, Error> {
        let keys = match self.keys {
            Some(keys) => keys,
            None => CookieKeys::from_secrets(&self.secret_keys)?,
        };
        let max_cookie_bytes = self.max_cookie_bytes.unwrap_or(DEFAULT_MAX_COOKIE_BYTES);
        if !(MIN_MAX_COOKIE_BYTES..=MAX_MAX_COOKIE_BYTES).contains(&max_cookie_bytes) {
            return Err(Error::invalid_config(
                "max_cookie_bytes",
                format!(
                    "must be {MIN_MAX_COOKIE_BYTES} to {MAX_MAX_COOKIE_BYTES} bytes, got {max_cookie_bytes}"
                ),
            ));
        }
        Ok(ClientSideConfig {
            keys,
            max_cookie_bytes,
        })
    }
}

/// A [`ClientSideConfig`] fitted to a [`SessionConfig`]: what the layer and
/// the sessions use.
#[derive(Debug)]
pub(crate) struct ClientSide {
    keys: CookieKeys,
    limits: Limits,
    /// The largest serialized session that fits: the smaller of
    /// `max_session_bytes` and what `max_cookie_bytes` holds.
    max_json_bytes: usize,
}

impl ClientSide {
    pub(crate) fn new(client: ClientSideConfig, config: &SessionConfig) -> Result<Self, Error> {
        // The attributes every chunk carries, under the longest chunk name.
        let probe = chunks::chunk_name(config.cookie_name(), chunks::MAX_CHUNKS - 1);
        // The longest `Max-Age` a session may get (a per-session expiry).
        let longest = Some(crate::limits::MAX_MAX_AGE.as_secs());
        let overhead = cookie::set_named_cookie(config, &probe, "", longest)
            .map(|v| v.len())
            .map_err(|e| Error::invalid_config("cookie_name", e.to_string()))?;
        let chunk_bytes = COOKIE_BYTES.saturating_sub(overhead);
        if chunk_bytes < MIN_VALUE_BYTES {
            // Name the longest of the fields that take the room.
            let field = [
                ("path", config.path().len()),
                ("domain", config.domain().map_or(0, str::len)),
                ("cookie_name", config.cookie_name().len()),
            ]
            .into_iter()
            .max_by_key(|(_, len)| *len)
            .map_or("cookie_name", |(field, _)| field);
            return Err(Error::invalid_config(
                field,
                format!(
                    "the cookie's attributes take {overhead} of the {COOKIE_BYTES} bytes of a cookie, \
                     leaving less than {MIN_VALUE_BYTES} for a client-side session"
                ),
            ));
        }
        let limits = Limits {
            chunk_bytes,
            max_total: client.max_cookie_bytes,
        };
        let empty = sealed::encoded_len(2);
        match limits.total_for(config.cookie_name(), empty) {
            Some((total, _)) if total <= limits.max_total => {}
            _ => {
                return Err(Error::invalid_config(
                    "max_cookie_bytes",
                    format!(
                        "{} bytes cannot hold even an empty session under the cookie name {:?}",
                        limits.max_total,
                        config.cookie_name()
                    ),
                ));
            }
        }
        let max_json_bytes = limits
            .max_json_bytes(config.cookie_name())
            .min(config.max_session_bytes());
        Ok(ClientSide {
            keys: client.keys,
            limits,
            max_json_bytes,
        })
    }

    /// The largest serialized session this backend can carry.
    pub(crate) fn max_json_bytes(&self) -> usize {
        self.max_json_bytes
    }

    /// The session cookies of a request, not yet opened.
    pub(crate) fn read(&self, headers: &HeaderMap, config: &SessionConfig) -> Offered {
        chunks::read(headers, config.cookie_name(), &self.limits)
    }

    /// Opens what [`read`](Self::read) found, at `now` (Unix seconds). The
    /// sealed expiry is checked here; the session's age against its expiry
    /// mode (kept in the sealed JSON) by the caller, so a value older than
    /// the longest lifetime any mode allows (400 days) is refused here.
    pub(crate) fn open(
        &self,
        config: &SessionConfig,
        value: &str,
        count: u32,
        now: u64,
    ) -> Result<Opened, Refused> {
        sealed::open(
            &self.keys,
            config.cookie_name(),
            count,
            value,
            now,
            crate::limits::MAX_MAX_AGE.as_secs(),
        )
    }

    /// Seals `json` (the session as stored: a JSON object) at `now` with
    /// the first key, to expire `ttl_secs` later: the `(name, value)` pairs
    /// of the cookies to set, and the expiry (Unix seconds).
    ///
    /// Fails with [`SessionError::TooLarge`] if the cookies would exceed
    /// the limits.
    pub(crate) fn seal(
        &self,
        config: &SessionConfig,
        json: &[u8],
        now: u64,
        ttl_secs: u64,
    ) -> Result<(Vec<(String, String)>, u64), SessionError> {
        let too_large = SessionError::TooLarge {
            size: json.len(),
            max: self.max_json_bytes,
        };
        if json.len() > self.max_json_bytes {
            return Err(too_large);
        }
        let name = config.cookie_name();
        let len = sealed::encoded_len(json.len());
        let Some((_, count)) = self
            .limits
            .total_for(name, len)
            .filter(|(total, _)| *total <= self.limits.max_total)
        else {
            return Err(too_large);
        };
        let expires_at = now.saturating_add(ttl_secs);
        let value = sealed::seal(&self.keys, name, count, json, now, expires_at)?;
        Ok((chunks::split(name, &value, count, &self.limits), expires_at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field;
    use http::HeaderValue;
    use http::header::COOKIE;
    use serde_json::{Map, Value};

    fn client(max: usize) -> ClientSideConfig {
        ClientSideConfig::builder()
            .secret_keys([[3u8; 32]])
            .max_cookie_bytes(max)
            .build()
            .unwrap()
    }

    #[test]
    fn every_invalid_setting_names_its_field() {
        let b = ClientSideConfig::builder;
        assert_eq!(field(b().build().unwrap_err()), "secret_keys");
        assert_eq!(
            field(
                b().secret_keys(["x".repeat(32), "y".repeat(31)])
                    .build()
                    .unwrap_err()
            ),
            "secret_keys[1]"
        );
        let ok = || b().secret_keys(["x".repeat(32)]);
        assert_eq!(
            field(ok().max_cookie_bytes(255).build().unwrap_err()),
            "max_cookie_bytes"
        );
        assert_eq!(
            field(ok().max_cookie_bytes(64 * 1024 + 1).build().unwrap_err()),
            "max_cookie_bytes"
        );
        assert!(ok().max_cookie_bytes(256).build().is_ok());
        // Attributes that leave no room for a session name their field.
        let long_path = SessionConfig::builder()
            .path(format!("/{}", "p".repeat(3500)))
            .build()
            .unwrap();
        assert_eq!(
            field(ClientSide::new(client(8192), &long_path).unwrap_err()),
            "path"
        );
        // A cap too small for an empty session under a long name.
        let long_name = SessionConfig::builder()
            .cookie_name("n".repeat(250))
            .build()
            .unwrap();
        assert_eq!(
            field(ClientSide::new(client(256), &long_name).unwrap_err()),
            "max_cookie_bytes"
        );
    }

    #[test]
    fn debug_prints_no_secret() {
        let builder = ClientSideConfig::builder().secret_keys(["s".repeat(40)]);
        assert!(!format!("{builder:?}").contains("sss"));
        let config = builder.build().unwrap();
        assert!(!format!("{config:?}").contains("sss"));
    }

    #[test]
    fn seal_respects_the_cap_and_reads_back() {
        let config = SessionConfig::default();
        let side = ClientSide::new(client(8192), &config).unwrap();
        let max = side.max_json_bytes();
        assert!((5000..8192).contains(&max), "{max}");
        let mut data = Map::new();
        // `{"k":"..."}` is 8 bytes plus the string.
        data.insert("k".into(), Value::from("x".repeat(max - 8)));
        let json = |data: &Map<String, Value>| serde_json::to_vec(data).unwrap();
        let (cookies, _) = side.seal(&config, &json(&data), 1000, 600).unwrap();
        // At the cap: three chunks of about 4 KB.
        assert_eq!(cookies.len(), 3);
        let header: Vec<String> = cookies.iter().map(|(n, v)| format!("{n}={v}")).collect();
        let header = header.join("; ");
        assert!(header.len() <= 8192, "{}", header.len());
        let mut headers = HeaderMap::new();
        headers.insert(COOKIE, HeaderValue::from_str(&header).unwrap());
        let offered = side.read(&headers, &config);
        let (value, count) = offered.value.unwrap().unwrap();
        assert_eq!(side.open(&config, &value, count, 1001).unwrap().data, data);

        data.insert("k".into(), Value::from("x".repeat(max - 7)));
        match side.seal(&config, &json(&data), 1000, 600) {
            Err(SessionError::TooLarge { size, max: m }) => assert_eq!((size, m), (max + 1, max)),
            other => panic!("expected TooLarge, got {other:?}"),
        }
    }
}
