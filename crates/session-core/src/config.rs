//! [`SessionConfig`]: the cookie and session settings of the middleware.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use regex::RegexSet;
use serde::{Deserialize, Deserializer};

use crate::{Error, MAX_KEY_BYTES, generate_session_id, is_well_formed_session_id};

/// The cookie's `SameSite` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SameSite {
    /// `SameSite=Lax` (the default): sent on top-level navigations.
    #[default]
    Lax,
    /// `SameSite=Strict`: never sent cross-site.
    Strict,
    /// `SameSite=None`: always sent; browsers require `Secure` with it.
    None,
}

impl SameSite {
    /// The attribute value as it appears in a `Set-Cookie` header.
    pub fn as_str(self) -> &'static str {
        match self {
            SameSite::Lax => "Lax",
            SameSite::Strict => "Strict",
            SameSite::None => "None",
        }
    }
}

impl fmt::Display for SameSite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SameSite {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s.to_ascii_lowercase().as_str() {
            "lax" => Ok(SameSite::Lax),
            "strict" => Ok(SameSite::Strict),
            "none" => Ok(SameSite::None),
            _ => Err(Error::invalid_config(
                "samesite",
                format!("{s:?} is not one of \"lax\", \"strict\", \"none\""),
            )),
        }
    }
}

impl<'de> Deserialize<'de> for SameSite {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A connection type the middleware handles (Litestar's `scopes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Plain HTTP requests.
    Http,
    /// WebSocket upgrade requests.
    Websocket,
}

/// Defaults, as Litestar's `ServerSideSessionConfig` has them.
mod defaults {
    use super::*;
    pub const KEY: &str = "session";
    pub const MAX_AGE: Duration = Duration::from_secs(1_209_600);
    pub const PATH: &str = "/";
    pub const SESSION_ID_BYTES: usize = 32;
    pub const EXCLUDE_OPT_KEY: &str = "skip_session";
    pub const STORE: &str = "sessions";
    pub const MAX_SESSION_BYTES: usize = 64 * 1024;
}

/// Bounds enforced by [`SessionConfigBuilder::build`].
pub mod limits {
    use std::time::Duration;
    /// Longest cookie name, in characters.
    pub const MAX_KEY_CHARS: usize = 256;
    /// Shortest `max_age`.
    pub const MIN_MAX_AGE: Duration = Duration::from_secs(1);
    /// Longest `max_age`: 400 days, the cap browsers put on a cookie's
    /// `Max-Age` (RFC 6265bis).
    pub const MAX_MAX_AGE: Duration = Duration::from_secs(400 * 24 * 3600);
    /// Fewest random bytes in a session id.
    pub const MIN_SESSION_ID_BYTES: usize = 16;
    /// Most random bytes in a session id: its hex form must fit a store key.
    pub const MAX_SESSION_ID_BYTES: usize = super::MAX_KEY_BYTES / 2;
    /// Largest `max_session_bytes`: the value size every store guarantees.
    pub const MAX_SESSION_BYTES: usize = 1024 * 1024;
}

/// The session and cookie settings: every field of Litestar's
/// `ServerSideSessionConfig`, with its defaults, plus what the middleware
/// of this workspace adds (`hash_session_ids`, `max_session_bytes`).
///
/// A `SessionConfig` is always valid: it is made by
/// [`SessionConfigBuilder::build`] or deserialised (JSON, TOML, any serde
/// format) through the same checks, and an invalid value is an
/// [`Error::InvalidConfig`] naming the field.
///
/// ```
/// use std::time::Duration;
/// use session_core::{SameSite, SessionConfig};
///
/// let config = SessionConfig::builder()
///     .max_age(Duration::from_secs(24 * 3600))
///     .secure(true)
///     .exclude(["^/health", "^/static/"])
///     .build()
///     .unwrap();
/// assert_eq!(config.key(), "session");
/// assert_eq!(config.samesite(), SameSite::Lax);
/// assert!(config.is_excluded("/static/app.css"));
///
/// let from_json: SessionConfig =
///     serde_json::from_str(r#"{"key": "sid", "max_age": 3600, "exclude": "^/health"}"#).unwrap();
/// assert_eq!(from_json.max_age(), Duration::from_secs(3600));
///
/// let err = SessionConfig::builder().key("").build().unwrap_err();
/// assert!(err.to_string().contains("`key`"));
/// ```
#[derive(Clone, Debug)]
pub struct SessionConfig {
    key: String,
    max_age: Duration,
    path: String,
    domain: Option<String>,
    secure: bool,
    httponly: bool,
    samesite: SameSite,
    session_id_bytes: usize,
    renew_on_access: bool,
    exclude: Vec<String>,
    exclude_set: RegexSet,
    exclude_opt_key: String,
    scopes: Vec<Scope>,
    store: String,
    hash_session_ids: bool,
    max_session_bytes: usize,
}

impl SessionConfig {
    /// A builder starting from the defaults.
    pub fn builder() -> SessionConfigBuilder {
        SessionConfigBuilder::default()
    }

    /// Parses a JSON document of the fields (all optional).
    pub fn from_json_str(json: &str) -> Result<Self, Error> {
        let builder: SessionConfigBuilder = serde_json::from_str(json)
            .map_err(|e| Error::invalid_config(field_of(&e.to_string()), e.to_string()))?;
        builder.build()
    }

    /// Parses a TOML document of the fields (all optional).
    pub fn from_toml_str(text: &str) -> Result<Self, Error> {
        let builder: SessionConfigBuilder = toml::from_str(text).map_err(|e| {
            let msg = e.to_string().trim_end().to_owned();
            Error::invalid_config(field_of(&msg), msg)
        })?;
        builder.build()
    }

    /// The cookie name (default `session`).
    pub fn key(&self) -> &str {
        &self.key
    }
    /// Lifetime of the session and the cookie's `Max-Age` (default 14 days).
    pub fn max_age(&self) -> Duration {
        self.max_age
    }
    /// The cookie's `Path` (default `/`).
    pub fn path(&self) -> &str {
        &self.path
    }
    /// The cookie's `Domain`, if any (default none: host-only).
    pub fn domain(&self) -> Option<&str> {
        self.domain.as_deref()
    }
    /// Whether the cookie carries `Secure` (default false; set it in
    /// production).
    pub fn secure(&self) -> bool {
        self.secure
    }
    /// Whether the cookie carries `HttpOnly` (default true).
    pub fn httponly(&self) -> bool {
        self.httponly
    }
    /// The cookie's `SameSite` (default `Lax`).
    pub fn samesite(&self) -> SameSite {
        self.samesite
    }
    /// Random bytes per session id (default 32, i.e. 64 hex characters).
    pub fn session_id_bytes(&self) -> usize {
        self.session_id_bytes
    }
    /// Whether each access renews the session's expiry (default false).
    pub fn renew_on_access(&self) -> bool {
        self.renew_on_access
    }
    /// The path patterns (regular expressions, matched anywhere in the
    /// path) the middleware skips.
    pub fn exclude(&self) -> &[String] {
        &self.exclude
    }
    /// True if `path` matches one of the [`exclude`](Self::exclude) patterns.
    pub fn is_excluded(&self, path: &str) -> bool {
        self.exclude_set.is_match(path)
    }
    /// The name of the per-route opt-out marker (default `skip_session`).
    pub fn exclude_opt_key(&self) -> &str {
        &self.exclude_opt_key
    }
    /// The connection types handled (default HTTP and WebSocket).
    pub fn scopes(&self) -> &[Scope] {
        &self.scopes
    }
    /// The store's name, for logs and registries (default `sessions`).
    pub fn store(&self) -> &str {
        &self.store
    }
    /// Whether the store key is the SHA-256 of the session id (default
    /// true). Turn off only for tables shared with Litestar applications.
    pub fn hash_session_ids(&self) -> bool {
        self.hash_session_ids
    }
    /// The largest serialised session the middleware writes, in bytes
    /// (default 64 KiB).
    pub fn max_session_bytes(&self) -> usize {
        self.max_session_bytes
    }
    /// A fresh session id of [`session_id_bytes`](Self::session_id_bytes).
    pub fn generate_session_id(&self) -> Result<String, Error> {
        generate_session_id(self.session_id_bytes)
    }
    /// True if `id` has the shape of this config's session ids.
    pub fn is_well_formed_session_id(&self, id: &str) -> bool {
        is_well_formed_session_id(id, self.session_id_bytes)
    }
    /// A builder holding this config's values, to change some of them.
    pub fn to_builder(&self) -> SessionConfigBuilder {
        SessionConfigBuilder {
            key: self.key.clone(),
            max_age: self.max_age,
            path: self.path.clone(),
            domain: self.domain.clone(),
            secure: self.secure,
            httponly: self.httponly,
            samesite: self.samesite,
            session_id_bytes: self.session_id_bytes,
            renew_on_access: self.renew_on_access,
            exclude: self.exclude.clone(),
            exclude_opt_key: self.exclude_opt_key.clone(),
            scopes: self.scopes.clone(),
            store: self.store.clone(),
            hash_session_ids: self.hash_session_ids,
            max_session_bytes: self.max_session_bytes,
        }
    }
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfigBuilder::default()
            .build()
            .expect("the defaults are valid")
    }
}

impl<'de> Deserialize<'de> for SessionConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        SessionConfigBuilder::deserialize(d)?
            .build()
            .map_err(serde::de::Error::custom)
    }
}

/// Builds a [`SessionConfig`]; every setter is optional and
/// [`build`](Self::build) validates the whole.
///
/// It also deserialises from the same field names (`max_age` in seconds,
/// `exclude` a string or a list), refusing unknown fields by name.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionConfigBuilder {
    key: String,
    #[serde(deserialize_with = "seconds")]
    max_age: Duration,
    path: String,
    domain: Option<String>,
    secure: bool,
    httponly: bool,
    samesite: SameSite,
    session_id_bytes: usize,
    renew_on_access: bool,
    #[serde(deserialize_with = "one_or_many")]
    exclude: Vec<String>,
    exclude_opt_key: String,
    scopes: Vec<Scope>,
    store: String,
    hash_session_ids: bool,
    max_session_bytes: usize,
}

impl Default for SessionConfigBuilder {
    fn default() -> Self {
        SessionConfigBuilder {
            key: defaults::KEY.into(),
            max_age: defaults::MAX_AGE,
            path: defaults::PATH.into(),
            domain: None,
            secure: false,
            httponly: true,
            samesite: SameSite::Lax,
            session_id_bytes: defaults::SESSION_ID_BYTES,
            renew_on_access: false,
            exclude: Vec::new(),
            exclude_opt_key: defaults::EXCLUDE_OPT_KEY.into(),
            scopes: vec![Scope::Http, Scope::Websocket],
            store: defaults::STORE.into(),
            hash_session_ids: true,
            max_session_bytes: defaults::MAX_SESSION_BYTES,
        }
    }
}

macro_rules! setters {
    ($($(#[$doc:meta])* $name:ident: $ty:ty),* $(,)?) => {$(
        $(#[$doc])*
        pub fn $name(mut self, value: impl Into<$ty>) -> Self {
            self.$name = value.into();
            self
        }
    )*};
}

impl SessionConfigBuilder {
    setters! {
        /// The cookie name: 1 to 256 characters of an HTTP token.
        key: String,
        /// Session lifetime and cookie `Max-Age`: 1 s to 400 days; whole
        /// seconds are used, a fraction is rounded up.
        max_age: Duration,
        /// The cookie `Path`: starts with `/`.
        path: String,
        /// The cookie `Secure` flag.
        secure: bool,
        /// The cookie `HttpOnly` flag.
        httponly: bool,
        /// The cookie `SameSite`; `None` requires `secure`.
        samesite: SameSite,
        /// Random bytes per session id: 16 to 127.
        session_id_bytes: usize,
        /// Renew the session's expiry on every access.
        renew_on_access: bool,
        /// The per-route opt-out marker name.
        exclude_opt_key: String,
        /// The store's name, for logs and registries.
        store: String,
        /// Store the SHA-256 of the session id instead of the id itself.
        hash_session_ids: bool,
        /// The largest serialised session, in bytes: 2 to 1 MiB.
        max_session_bytes: usize,
    }

    /// The cookie `Domain`; `None` for a host-only cookie.
    pub fn domain(mut self, domain: Option<impl Into<String>>) -> Self {
        self.domain = domain.map(Into::into);
        self
    }

    /// Path patterns (regular expressions) to skip.
    pub fn exclude<I, S>(mut self, patterns: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.exclude = patterns.into_iter().map(Into::into).collect();
        self
    }

    /// The connection types to handle.
    pub fn scopes(mut self, scopes: impl IntoIterator<Item = Scope>) -> Self {
        self.scopes = scopes.into_iter().collect();
        self
    }

    /// Validates every field and makes the config.
    pub fn build(self) -> Result<SessionConfig, Error> {
        let b = self;
        let key_chars = b.key.chars().count();
        if !(1..=limits::MAX_KEY_CHARS).contains(&key_chars) {
            return Err(Error::invalid_config(
                "key",
                format!(
                    "must be 1 to {} characters, got {key_chars}",
                    limits::MAX_KEY_CHARS
                ),
            ));
        }
        if let Some(bad) = b.key.chars().find(|c| !is_token_char(*c)) {
            return Err(Error::invalid_config(
                "key",
                format!("{bad:?} is not allowed in a cookie name"),
            ));
        }
        if b.max_age < limits::MIN_MAX_AGE || b.max_age > limits::MAX_MAX_AGE {
            return Err(Error::invalid_config(
                "max_age",
                format!("must be 1 s to 400 days (34560000 s), got {:?}", b.max_age),
            ));
        }
        if !b.path.starts_with('/') {
            return Err(Error::invalid_config(
                "path",
                format!("must start with `/`, got {:?}", b.path),
            ));
        }
        check_attribute("path", &b.path)?;
        if let Some(domain) = &b.domain {
            if domain.is_empty() {
                return Err(Error::invalid_config(
                    "domain",
                    "must not be empty; leave it unset for a host-only cookie",
                ));
            }
            check_attribute("domain", domain)?;
            if domain.contains(char::is_whitespace) {
                return Err(Error::invalid_config("domain", "must not contain spaces"));
            }
        }
        if b.samesite == SameSite::None && !b.secure {
            return Err(Error::invalid_config(
                "samesite",
                "\"none\" requires `secure = true`; browsers drop such cookies otherwise",
            ));
        }
        let id_range = limits::MIN_SESSION_ID_BYTES..=limits::MAX_SESSION_ID_BYTES;
        if !id_range.contains(&b.session_id_bytes) {
            return Err(Error::invalid_config(
                "session_id_bytes",
                format!(
                    "must be {} to {}, got {}",
                    id_range.start(),
                    id_range.end(),
                    b.session_id_bytes
                ),
            ));
        }
        for (i, pattern) in b.exclude.iter().enumerate() {
            if let Err(e) = regex::Regex::new(pattern) {
                return Err(Error::invalid_config(
                    format!("exclude[{i}]"),
                    format!("{pattern:?} is not a valid regular expression: {e}"),
                ));
            }
        }
        let exclude_set = RegexSet::new(&b.exclude)
            .map_err(|e| Error::invalid_config("exclude", e.to_string()))?;
        if b.exclude_opt_key.is_empty() {
            return Err(Error::invalid_config(
                "exclude_opt_key",
                "must not be empty",
            ));
        }
        if b.store.is_empty() {
            return Err(Error::invalid_config("store", "must not be empty"));
        }
        if !(2..=limits::MAX_SESSION_BYTES).contains(&b.max_session_bytes) {
            return Err(Error::invalid_config(
                "max_session_bytes",
                format!(
                    "must be 2 to {} bytes, got {}",
                    limits::MAX_SESSION_BYTES,
                    b.max_session_bytes
                ),
            ));
        }
        // Whole seconds: the cookie's Max-Age cannot say more.
        let max_age =
            Duration::from_secs(b.max_age.as_secs() + u64::from(b.max_age.subsec_nanos() > 0));
        Ok(SessionConfig {
            key: b.key,
            max_age,
            path: b.path,
            domain: b.domain,
            secure: b.secure,
            httponly: b.httponly,
            samesite: b.samesite,
            session_id_bytes: b.session_id_bytes,
            renew_on_access: b.renew_on_access,
            exclude: b.exclude,
            exclude_set,
            exclude_opt_key: b.exclude_opt_key,
            scopes: b.scopes,
            store: b.store,
            hash_session_ids: b.hash_session_ids,
            max_session_bytes: b.max_session_bytes,
        })
    }
}

/// RFC 7230 `tchar`: the characters of a cookie name.
fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

/// A cookie attribute value must not end the attribute or the header.
fn check_attribute(field: &str, value: &str) -> Result<(), Error> {
    if let Some(bad) = value.chars().find(|c| *c == ';' || c.is_control()) {
        return Err(Error::invalid_config(
            field,
            format!("{bad:?} is not allowed in a cookie attribute"),
        ));
    }
    Ok(())
}

/// Extracts the field name from a serde message like "unknown field `x`"
/// or "invalid type ... for key `x`"; falls back to "session_config".
fn field_of(message: &str) -> String {
    message
        .split('`')
        .nth(1)
        .filter(|s| !s.is_empty())
        .unwrap_or("session_config")
        .to_owned()
}

fn seconds<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let secs = f64::deserialize(d)?;
    if !secs.is_finite() || secs < 0.0 || secs > limits::MAX_MAX_AGE.as_secs_f64() {
        return Err(serde::de::Error::custom(format!(
            "max_age must be 1 to 34560000 seconds, got {secs}"
        )));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
        None,
    }
    Ok(match Option::<OneOrMany>::deserialize(d)? {
        Some(OneOrMany::One(s)) => vec![s],
        Some(OneOrMany::Many(v)) => v,
        Some(OneOrMany::None) | None => Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_litestar() {
        let c = SessionConfig::default();
        assert_eq!(c.key(), "session");
        assert_eq!(c.max_age(), Duration::from_secs(1_209_600));
        assert_eq!(c.path(), "/");
        assert_eq!(c.domain(), None);
        assert!(!c.secure());
        assert!(c.httponly());
        assert_eq!(c.samesite(), SameSite::Lax);
        assert_eq!(c.session_id_bytes(), 32);
        assert!(!c.renew_on_access());
        assert!(c.exclude().is_empty());
        assert_eq!(c.exclude_opt_key(), "skip_session");
        assert_eq!(c.scopes(), &[Scope::Http, Scope::Websocket]);
        assert_eq!(c.store(), "sessions");
        assert!(c.hash_session_ids());
    }

    fn field(err: Error) -> String {
        match err {
            Error::InvalidConfig { field, .. } => field,
            other => panic!("expected InvalidConfig, got {other:?}"),
        }
    }

    #[test]
    fn every_invalid_value_names_its_field() {
        let b = SessionConfig::builder;
        assert_eq!(field(b().key("").build().unwrap_err()), "key");
        assert_eq!(field(b().key("a".repeat(257)).build().unwrap_err()), "key");
        assert!(b().key("a".repeat(256)).build().is_ok());
        assert_eq!(field(b().key("a b").build().unwrap_err()), "key");
        assert_eq!(field(b().key("a;b").build().unwrap_err()), "key");
        assert_eq!(
            field(b().max_age(Duration::from_millis(999)).build().unwrap_err()),
            "max_age"
        );
        assert!(b().max_age(Duration::from_secs(1)).build().is_ok());
        assert_eq!(
            field(b().session_id_bytes(15usize).build().unwrap_err()),
            "session_id_bytes"
        );
        assert!(b().session_id_bytes(16usize).build().is_ok());
        assert_eq!(
            field(b().exclude(["^/ok", "(unclosed"]).build().unwrap_err()),
            "exclude[1]"
        );
        assert_eq!(field(b().path("api").build().unwrap_err()), "path");
        assert_eq!(field(b().path("/;x").build().unwrap_err()), "path");
        assert_eq!(
            field(b().domain(Some("a.com; x")).build().unwrap_err()),
            "domain"
        );
        assert_eq!(
            field(b().samesite(SameSite::None).build().unwrap_err()),
            "samesite"
        );
        assert!(b().samesite(SameSite::None).secure(true).build().is_ok());
        assert_eq!(
            field(b().max_session_bytes(0usize).build().unwrap_err()),
            "max_session_bytes"
        );
    }

    #[test]
    fn deserialises_from_json_and_toml() {
        let json = SessionConfig::from_json_str(
            r#"{"key": "sid", "max_age": 3600, "samesite": "strict", "secure": true,
                "exclude": ["^/a", "^/b"], "renew_on_access": true, "domain": "example.com"}"#,
        )
        .unwrap();
        let toml = SessionConfig::from_toml_str(
            "key = \"sid\"\nmax_age = 3600\nsamesite = \"strict\"\nsecure = true\n\
             exclude = [\"^/a\", \"^/b\"]\nrenew_on_access = true\ndomain = \"example.com\"\n",
        )
        .unwrap();
        for c in [json, toml] {
            assert_eq!(c.key(), "sid");
            assert_eq!(c.max_age(), Duration::from_secs(3600));
            assert_eq!(c.samesite(), SameSite::Strict);
            assert!(c.is_excluded("/b/x"));
            assert!(!c.is_excluded("/c"));
            assert_eq!(c.domain(), Some("example.com"));
        }
    }

    #[test]
    fn serde_errors_name_the_field() {
        let err = SessionConfig::from_json_str(r#"{"max_agee": 5}"#).unwrap_err();
        assert_eq!(field(err), "max_agee");
        let err = SessionConfig::from_json_str(r#"{"max_age": 0}"#).unwrap_err();
        assert_eq!(field(err), "max_age");
        let err = SessionConfig::from_json_str(r#"{"samesite": "loose"}"#).unwrap_err();
        assert!(err.to_string().contains("samesite"), "{err}");
        let err = SessionConfig::from_toml_str("key = 5").unwrap_err();
        assert!(err.to_string().contains("key"), "{err}");
    }

    #[test]
    fn fractional_max_age_rounds_up() {
        let c = SessionConfig::builder()
            .max_age(Duration::from_millis(1500))
            .build()
            .unwrap();
        assert_eq!(c.max_age(), Duration::from_secs(2));
    }
}
