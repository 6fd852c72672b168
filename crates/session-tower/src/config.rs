//! [`SessionConfig`]: the cookie and session settings of the middleware.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use regex::RegexSet;
use serde::{Deserialize, Deserializer};
use session_core::{Error, MAX_KEY_BYTES, generate_session_id, is_well_formed_session_id};

use crate::meta::ceil_secs;

/// The cookie's `SameSite` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
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

/// The message of an unknown `same_site` value, without the field name.
fn not_a_same_site(s: &str) -> String {
    format!("{s:?} is not one of \"lax\", \"strict\", \"none\"")
}

impl FromStr for SameSite {
    type Err = Error;
    /// Parses `lax`, `strict` or `none`, in any case.
    fn from_str(s: &str) -> Result<Self, Error> {
        match s.to_ascii_lowercase().as_str() {
            "lax" => Ok(SameSite::Lax),
            "strict" => Ok(SameSite::Strict),
            "none" => Ok(SameSite::None),
            _ => Err(Error::invalid_config("same_site", not_a_same_site(s))),
        }
    }
}

impl<'de> Deserialize<'de> for SameSite {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        // The field is named by the caller (the path of the error), in the
        // spelling the document used.
        s.parse()
            .map_err(|_| serde::de::Error::custom(not_a_same_site(&s)))
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
    use std::time::Duration;
    pub(super) const COOKIE_NAME: &str = "session";
    pub(super) const MAX_AGE: Duration = Duration::from_secs(1_209_600);
    pub(super) const PATH: &str = "/";
    pub(super) const SESSION_ID_BYTES: usize = 32;
    pub(super) const STORE_LABEL: &str = "sessions";
    pub(super) const MAX_SESSION_BYTES: usize = 64 * 1024;
    pub(super) const RENEW_THRESHOLD: f64 = 0.5;
}

/// Bounds enforced by [`SessionConfigBuilder::build`].
pub mod limits {
    use std::time::Duration;
    /// Longest cookie name, in characters.
    pub const MAX_COOKIE_NAME_CHARS: usize = 256;
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

/// The session and cookie settings: the fields of Litestar's
/// `ServerSideSessionConfig`, with its defaults (but `secure`, true here)
/// and Rust names, plus what this middleware adds (`hash_session_ids`,
/// `max_session_bytes`, `absolute_lifetime`, `renew_threshold`,
/// `skip_save_on_server_error`).
///
/// A `SessionConfig` is always valid: it is made by
/// [`SessionConfigBuilder::build`] or deserialised (JSON, TOML, any serde
/// format) through the same checks, and an invalid value is an
/// [`Error::InvalidConfig`] naming the field.
///
/// # Litestar spellings
///
/// A configuration file may use Litestar's field names; each is an alias of
/// the Rust name, so a Litestar user's file loads unchanged:
///
/// | Rust name (builder setter, getter, file field) | also accepted in files |
/// | --- | --- |
/// | `cookie_name` | `key` |
/// | `http_only` | `httponly` |
/// | `same_site` | `samesite` |
/// | `store_label` | `store` |
///
/// Litestar's `exclude_opt_key` is accepted in files (it must be a string)
/// and ignored: a tower route has no option map to look a key up in. The
/// per-route opt-out is [`SkipSessionLayer`](crate::SkipSessionLayer).
///
/// ```
/// use std::time::Duration;
/// use session_tower::{SameSite, SessionConfig};
///
/// let config = SessionConfig::builder()
///     .max_age(Duration::from_secs(24 * 3600))
///     .secure(true)
///     .exclude(["^/health", "^/static/"])
///     .build()
///     .unwrap();
/// assert_eq!(config.cookie_name(), "session");
/// assert_eq!(config.same_site(), SameSite::Lax);
/// assert!(config.is_excluded("/static/app.css"));
///
/// let from_json = SessionConfig::from_json_str(
///     r#"{"cookie_name": "sid", "max_age": 3600, "exclude": "^/health"}"#,
/// ).unwrap();
/// assert_eq!(from_json.max_age(), Duration::from_secs(3600));
///
/// // Litestar's spelling of the same file gives the same config.
/// let litestar = SessionConfig::from_json_str(
///     r#"{"key": "sid", "max_age": 3600, "exclude": "^/health"}"#,
/// ).unwrap();
/// assert_eq!(litestar, from_json);
///
/// let err = SessionConfig::builder().cookie_name("").build().unwrap_err();
/// assert!(err.to_string().contains("`cookie_name`"));
/// ```
#[derive(Clone, Debug)]
pub struct SessionConfig {
    cookie_name: String,
    max_age: Duration,
    path: String,
    domain: Option<String>,
    secure: bool,
    http_only: bool,
    same_site: SameSite,
    session_id_bytes: usize,
    renew_on_access: bool,
    exclude: Vec<String>,
    exclude_set: RegexSet,
    scopes: Vec<Scope>,
    store_label: String,
    hash_session_ids: bool,
    max_session_bytes: usize,
    litestar_compatible: bool,
    absolute_lifetime: Option<Duration>,
    renew_threshold: f64,
    skip_save_on_server_error: bool,
}

impl SessionConfig {
    /// A builder starting from the defaults.
    pub fn builder() -> SessionConfigBuilder {
        SessionConfigBuilder::default()
    }

    /// Parses a JSON document of the fields (all optional; Litestar's
    /// spellings accepted). An error names the field, as the document
    /// spelled it.
    pub fn from_json_str(json: &str) -> Result<Self, Error> {
        let mut de = serde_json::Deserializer::from_str(json);
        let builder: SessionConfigBuilder =
            serde_path_to_error::deserialize(&mut de).map_err(invalid)?;
        de.end()
            .map_err(|e| Error::invalid_config(WHOLE_DOCUMENT, e.to_string()))?;
        builder.build()
    }

    /// Parses a TOML document of the fields (all optional; Litestar's
    /// spellings accepted). An error names the field, as the document
    /// spelled it.
    pub fn from_toml_str(text: &str) -> Result<Self, Error> {
        let de = toml::Deserializer::parse(text).map_err(|e| {
            Error::invalid_config(WHOLE_DOCUMENT, e.to_string().trim_end().to_owned())
        })?;
        let builder: SessionConfigBuilder =
            serde_path_to_error::deserialize(de).map_err(invalid)?;
        builder.build()
    }

    /// The cookie name (default `session`; Litestar's `key`).
    pub fn cookie_name(&self) -> &str {
        &self.cookie_name
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
    /// Whether the cookie carries `Secure` (default true: the id travels
    /// over HTTPS only). `false` is a development setting, for plain
    /// `http://` on a developer's machine.
    pub fn secure(&self) -> bool {
        self.secure
    }
    /// Whether the cookie carries `HttpOnly` (default true; Litestar's
    /// `httponly`).
    pub fn http_only(&self) -> bool {
        self.http_only
    }
    /// The cookie's `SameSite` (default `Lax`; Litestar's `samesite`).
    pub fn same_site(&self) -> SameSite {
        self.same_site
    }
    /// Random bytes per session id (default 32, i.e. 64 hex characters).
    pub fn session_id_bytes(&self) -> usize {
        self.session_id_bytes
    }
    /// Whether an access renews the session's expiry (default false), when
    /// less than [`renew_threshold`](Self::renew_threshold) of its
    /// lifetime is left.
    pub fn renew_on_access(&self) -> bool {
        self.renew_on_access
    }
    /// The share of a session's lifetime below which an access renews it
    /// (default 0.5): with `renew_on_access`, a busy user's session is
    /// written once per half-lifetime, not on every request. `1.0` renews
    /// on every access.
    pub fn renew_threshold(&self) -> f64 {
        self.renew_threshold
    }
    /// The longest a session may live since its creation, however active
    /// (default none). Enforced on the server: the creation time is kept
    /// in the stored session.
    pub fn absolute_lifetime(&self) -> Option<Duration> {
        self.absolute_lifetime
    }
    /// Whether a response with a `5xx` status leaves the session unsaved
    /// (default true): a failed request never half-writes a session.
    pub fn skip_save_on_server_error(&self) -> bool {
        self.skip_save_on_server_error
    }
    /// The path patterns the middleware skips: regular expressions matched
    /// anywhere in the request's path (not its query); anchor one with `^`
    /// to match from the start.
    pub fn exclude(&self) -> &[String] {
        &self.exclude
    }
    /// True if `path` matches one of the [`exclude`](Self::exclude)
    /// patterns anywhere: `"/health"` excludes `/health` and
    /// `/api/health`, `"^/health"` only paths that start with it.
    pub fn is_excluded(&self, path: &str) -> bool {
        self.exclude_set.is_match(path)
    }
    /// The connection types handled (default HTTP and WebSocket).
    pub fn scopes(&self) -> &[Scope] {
        &self.scopes
    }
    /// A name for the store in logs (default `sessions`; Litestar's
    /// `store`, there the name of the app's store to use). It names no
    /// [`Store`](session_core::Store): the layer is given its store.
    pub fn store_label(&self) -> &str {
        &self.store_label
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
    /// Whether sessions are exactly what Litestar's
    /// `ServerSideSessionBackend` reads and writes (default false): see
    /// [`SessionConfigBuilder::litestar_compatible`].
    pub fn litestar_compatible(&self) -> bool {
        self.litestar_compatible
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
            cookie_name: self.cookie_name.clone(),
            max_age: self.max_age,
            path: self.path.clone(),
            domain: self.domain.clone(),
            secure: self.secure,
            http_only: self.http_only,
            same_site: self.same_site,
            session_id_bytes: self.session_id_bytes,
            renew_on_access: self.renew_on_access,
            exclude: self.exclude.clone(),
            scopes: self.scopes.clone(),
            store_label: self.store_label.clone(),
            // Only an explicit `false` is kept: a default config turned
            // `litestar_compatible` is not refused for hashing.
            hash_session_ids: (!self.hash_session_ids).then_some(false),
            max_session_bytes: self.max_session_bytes,
            litestar_compatible: self.litestar_compatible,
            absolute_lifetime: self.absolute_lifetime,
            renew_threshold: self.renew_threshold,
            skip_save_on_server_error: self.skip_save_on_server_error,
            litestar_exclude_opt_key: None,
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

/// Two configs are equal when every setting is (the compiled `exclude`
/// patterns follow from their text).
impl PartialEq for SessionConfig {
    fn eq(&self, other: &Self) -> bool {
        let SessionConfig {
            cookie_name,
            max_age,
            path,
            domain,
            secure,
            http_only,
            same_site,
            session_id_bytes,
            renew_on_access,
            exclude,
            exclude_set: _,
            scopes,
            store_label,
            hash_session_ids,
            max_session_bytes,
            litestar_compatible,
            absolute_lifetime,
            renew_threshold,
            skip_save_on_server_error,
        } = self;
        *cookie_name == other.cookie_name
            && *max_age == other.max_age
            && *path == other.path
            && *domain == other.domain
            && *secure == other.secure
            && *http_only == other.http_only
            && *same_site == other.same_site
            && *session_id_bytes == other.session_id_bytes
            && *renew_on_access == other.renew_on_access
            && *exclude == other.exclude
            && *scopes == other.scopes
            && *store_label == other.store_label
            && *hash_session_ids == other.hash_session_ids
            && *max_session_bytes == other.max_session_bytes
            && *litestar_compatible == other.litestar_compatible
            && *absolute_lifetime == other.absolute_lifetime
            && *renew_threshold == other.renew_threshold
            && *skip_save_on_server_error == other.skip_save_on_server_error
    }
}

impl Eq for SessionConfig {}

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
/// `exclude` a string or a list), accepting Litestar's spellings (`key`,
/// `httponly`, `samesite`, `store`) as aliases and its `exclude_opt_key`
/// as an ignored string, and refusing unknown fields by name.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionConfigBuilder {
    #[serde(alias = "key")]
    cookie_name: String,
    #[serde(deserialize_with = "seconds")]
    max_age: Duration,
    path: String,
    domain: Option<String>,
    secure: bool,
    #[serde(alias = "httponly")]
    http_only: bool,
    #[serde(alias = "samesite")]
    same_site: SameSite,
    session_id_bytes: usize,
    renew_on_access: bool,
    #[serde(deserialize_with = "one_or_many")]
    exclude: Vec<String>,
    scopes: Vec<Scope>,
    #[serde(alias = "store")]
    store_label: String,
    /// `None`: hashed, unless `litestar_compatible`.
    hash_session_ids: Option<bool>,
    max_session_bytes: usize,
    litestar_compatible: bool,
    #[serde(deserialize_with = "optional_seconds")]
    absolute_lifetime: Option<Duration>,
    renew_threshold: f64,
    skip_save_on_server_error: bool,
    /// Litestar's route-option name: read from files so they load, never
    /// used (see [`SessionConfig`]).
    #[serde(rename = "exclude_opt_key")]
    litestar_exclude_opt_key: Option<String>,
}

impl Default for SessionConfigBuilder {
    fn default() -> Self {
        SessionConfigBuilder {
            cookie_name: defaults::COOKIE_NAME.into(),
            max_age: defaults::MAX_AGE,
            path: defaults::PATH.into(),
            domain: None,
            secure: true,
            http_only: true,
            same_site: SameSite::Lax,
            session_id_bytes: defaults::SESSION_ID_BYTES,
            renew_on_access: false,
            exclude: Vec::new(),
            scopes: vec![Scope::Http, Scope::Websocket],
            store_label: defaults::STORE_LABEL.into(),
            hash_session_ids: None,
            max_session_bytes: defaults::MAX_SESSION_BYTES,
            litestar_compatible: false,
            absolute_lifetime: None,
            renew_threshold: defaults::RENEW_THRESHOLD,
            skip_save_on_server_error: true,
            litestar_exclude_opt_key: None,
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
        /// The cookie name (Litestar's `key`): 1 to 256 characters of an
        /// HTTP token.
        cookie_name: String,
        /// Session lifetime and cookie `Max-Age`: 1 s to 400 days; whole
        /// seconds are used, a fraction is rounded up.
        max_age: Duration,
        /// The cookie `Path`: starts with `/`.
        path: String,
        /// The cookie `Secure` flag (default true). Turn it off only to
        /// develop over plain `http://` (a browser does not send a
        /// `Secure` cookie back over it), never for a service reached over
        /// a network: the session id would travel in clear text.
        ///
        /// ```
        /// // Development over http://127.0.0.1 only.
        /// let dev = session_tower::SessionConfig::builder().secure(false).build().unwrap();
        /// assert!(!dev.secure());
        /// assert!(session_tower::SessionConfig::default().secure());
        /// ```
        secure: bool,
        /// The cookie `HttpOnly` flag (Litestar's `httponly`).
        http_only: bool,
        /// The cookie `SameSite` (Litestar's `samesite`); `None` requires
        /// `secure`.
        same_site: SameSite,
        /// Random bytes per session id: 16 to 127.
        session_id_bytes: usize,
        /// Renew the session's expiry on access, once less than
        /// [`renew_threshold`](Self::renew_threshold) of it is left.
        renew_on_access: bool,
        /// The share of the lifetime below which an access renews the
        /// session: more than 0, at most 1 (default 0.5; `1.0` renews on
        /// every access).
        renew_threshold: f64,
        /// Leave the session unsaved when the response is a `5xx`
        /// (default true).
        skip_save_on_server_error: bool,
        /// A name for the store in logs (Litestar's `store`): not empty.
        store_label: String,
        /// The largest serialised session, in bytes: 2 to 1 MiB.
        max_session_bytes: usize,
    }

    /// Store the SHA-256 of the session id instead of the id itself
    /// (default true; false under
    /// [`litestar_compatible`](Self::litestar_compatible), and `true` is
    /// then refused).
    pub fn hash_session_ids(mut self, hashed: bool) -> Self {
        self.hash_session_ids = Some(hashed);
        self
    }

    /// Makes sessions exactly what Litestar's `ServerSideSessionBackend`
    /// reads and writes, for a session table shared with a Litestar
    /// application (see `docs/litestar.md`):
    ///
    /// * the store key is the raw session id (no hashing): whoever can read
    ///   the table can use the sessions in it, as with Litestar itself;
    ///   setting `hash_session_ids(true)` as well is refused;
    /// * a stored session that is not a JSON object (a Litestar app with a
    ///   custom serializer) fails the request with
    ///   [`SessionError::Unreadable`](crate::SessionError::Unreadable)
    ///   instead of being passed over for a new session, so nothing the
    ///   other application wrote is lost or shadowed;
    /// * every request that loads a session renews its expiry to `max_age`
    ///   and re-sends the cookie, whatever `renew_on_access` and
    ///   `renew_threshold` say: a Litestar application rewrites the session
    ///   on every response that carries one, so both sides slide alike;
    /// * nothing is added to the stored object, so `absolute_lifetime` and
    ///   [`Session::set_expiry`](crate::Session::set_expiry) modes other
    ///   than the configured one are refused.
    ///
    /// Every other setting keeps Litestar's defaults (cookie `session`,
    /// 32-byte hex ids, `max_age` 14 days, `Path=/`, `HttpOnly`,
    /// `SameSite=Lax`), except `secure`, true here and false in Litestar:
    /// set the same values on both sides. The stored session stays a plain
    /// JSON object: `absolute_lifetime` is refused, and
    /// [`Session::set_expiry`](crate::Session::set_expiry) takes only
    /// [`Expiry::Configured`](crate::Expiry::Configured). In files the
    /// field is `litestar_compatible = true`.
    ///
    /// ```
    /// use session_tower::SessionConfig;
    ///
    /// let config = SessionConfig::builder().litestar_compatible(true).build().unwrap();
    /// assert!(!config.hash_session_ids());
    ///
    /// let err = SessionConfig::builder()
    ///     .litestar_compatible(true)
    ///     .hash_session_ids(true)
    ///     .build()
    ///     .unwrap_err();
    /// assert!(err.to_string().contains("`hash_session_ids`"));
    /// ```
    pub fn litestar_compatible(mut self, on: bool) -> Self {
        self.litestar_compatible = on;
        self
    }

    /// The longest a session may live since it was created, however
    /// active (OWASP's absolute timeout); `None` (the default) for no
    /// bound. 1 s to 400 days, whole seconds (rounded up). Refused with
    /// `litestar_compatible`, whose stored sessions cannot carry the
    /// creation time.
    ///
    /// The creation time is kept in the stored session (never in the
    /// cookie); every write caps the stored expiry and the cookie's
    /// `Max-Age` at it, and a session loaded past it is deleted.
    /// `cycle_id` keeps it; `clear` starts a new session. A session
    /// stored while no absolute lifetime was configured counts from the
    /// first request that loads it afterwards.
    ///
    /// ```
    /// use std::time::Duration;
    /// use session_tower::SessionConfig;
    ///
    /// let config = SessionConfig::builder()
    ///     .max_age(Duration::from_secs(30 * 60))            // 30 min idle
    ///     .renew_on_access(true)
    ///     .absolute_lifetime(Duration::from_secs(8 * 3600)) // 8 h in all
    ///     .build()?;
    /// assert_eq!(config.absolute_lifetime(), Some(Duration::from_secs(8 * 3600)));
    ///
    /// let err = SessionConfig::builder()
    ///     .litestar_compatible(true)
    ///     .absolute_lifetime(Duration::from_secs(3600))
    ///     .build()
    ///     .unwrap_err();
    /// assert!(err.to_string().contains("`absolute_lifetime`"));
    /// # Ok::<(), session_core::Error>(())
    /// ```
    pub fn absolute_lifetime(mut self, lifetime: impl Into<Option<Duration>>) -> Self {
        self.absolute_lifetime = lifetime.into();
        self
    }

    /// The cookie `Domain`; `None` for a host-only cookie.
    pub fn domain(mut self, domain: Option<impl Into<String>>) -> Self {
        self.domain = domain.map(Into::into);
        self
    }

    /// Path patterns (regular expressions, matched anywhere in the path
    /// unless anchored with `^`) to skip.
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
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] naming the field: out of its range, not
    /// allowed in a cookie, `same_site = "none"` without `secure`, a
    /// cookie name prefix whose rule the other fields break (`__Host-`:
    /// `secure`, `path = "/"` and no `domain`; `__Secure-`: `secure`),
    /// `hash_session_ids` or `absolute_lifetime` with `litestar_compatible`.
    ///
    /// ```
    /// use session_tower::SessionConfig;
    ///
    /// let host = SessionConfig::builder().cookie_name("__Host-session").build()?;
    /// assert!(host.secure());
    /// let err = SessionConfig::builder()
    ///     .cookie_name("__Host-session")
    ///     .path("/app")
    ///     .build()
    ///     .unwrap_err();
    /// assert!(err.to_string().contains("`path`"), "{err}");
    /// assert!(err.to_string().contains("__Host-"), "{err}");
    /// # Ok::<(), session_core::Error>(())
    /// ```
    pub fn build(self) -> Result<SessionConfig, Error> {
        let b = self;
        let name_chars = b.cookie_name.chars().count();
        if !(1..=limits::MAX_COOKIE_NAME_CHARS).contains(&name_chars) {
            return Err(Error::invalid_config(
                "cookie_name",
                format!(
                    "must be 1 to {} characters, got {name_chars}",
                    limits::MAX_COOKIE_NAME_CHARS
                ),
            ));
        }
        if let Some(bad) = b.cookie_name.chars().find(|c| !is_token_char(*c)) {
            return Err(Error::invalid_config(
                "cookie_name",
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
        if b.same_site == SameSite::None && !b.secure {
            return Err(Error::invalid_config(
                "same_site",
                "\"none\" requires `secure = true`; browsers drop such cookies otherwise",
            ));
        }
        check_prefix(&b)?;
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
        if b.store_label.is_empty() {
            return Err(Error::invalid_config("store_label", "must not be empty"));
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
        let hash_session_ids = match (b.hash_session_ids, b.litestar_compatible) {
            (Some(true), true) => {
                return Err(Error::invalid_config(
                    "hash_session_ids",
                    "must be false with `litestar_compatible`: Litestar stores the raw session id",
                ));
            }
            (_, true) => false,
            (hashed, false) => hashed.unwrap_or(true),
        };
        if !(b.renew_threshold > 0.0 && b.renew_threshold <= 1.0) {
            return Err(Error::invalid_config(
                "renew_threshold",
                format!(
                    "must be more than 0 and at most 1 (a share of the lifetime), got {}",
                    b.renew_threshold
                ),
            ));
        }
        let absolute_lifetime = match b.absolute_lifetime {
            None => None,
            Some(_) if b.litestar_compatible => {
                return Err(Error::invalid_config(
                    "absolute_lifetime",
                    "cannot be used with `litestar_compatible`: the creation time would have to \
                     be kept in the stored session, which a Litestar application reads as its own",
                ));
            }
            Some(d) if d < limits::MIN_MAX_AGE || d > limits::MAX_MAX_AGE => {
                return Err(Error::invalid_config(
                    "absolute_lifetime",
                    format!("must be 1 s to 400 days (34560000 s), got {d:?}"),
                ));
            }
            Some(d) => Some(Duration::from_secs(ceil_secs(d))),
        };
        // Whole seconds: the cookie's Max-Age cannot say more.
        let max_age = Duration::from_secs(ceil_secs(b.max_age));
        Ok(SessionConfig {
            cookie_name: b.cookie_name,
            max_age,
            path: b.path,
            domain: b.domain,
            secure: b.secure,
            http_only: b.http_only,
            same_site: b.same_site,
            session_id_bytes: b.session_id_bytes,
            renew_on_access: b.renew_on_access,
            exclude: b.exclude,
            exclude_set,
            scopes: b.scopes,
            store_label: b.store_label,
            hash_session_ids,
            max_session_bytes: b.max_session_bytes,
            litestar_compatible: b.litestar_compatible,
            absolute_lifetime,
            renew_threshold: b.renew_threshold,
            skip_save_on_server_error: b.skip_save_on_server_error,
        })
    }
}

/// The rules of the cookie name prefixes (RFC 6265bis; browsers match
/// them in any case): a `__Host-` cookie must be `Secure`, with `Path=/`
/// and no `Domain`; a `__Secure-` cookie must be `Secure`. A browser drops
/// a cookie that breaks them, so the config is refused instead.
fn check_prefix(b: &SessionConfigBuilder) -> Result<(), Error> {
    let name = b.cookie_name.to_ascii_lowercase();
    if name.starts_with("__host-") {
        let rule = "a cookie name starting with `__Host-` requires `secure = true`, \
                    `path = \"/\"` and no `domain` (the __Host- prefix rule)";
        if !b.secure {
            return Err(Error::invalid_config("secure", rule));
        }
        if b.path != "/" {
            return Err(Error::invalid_config(
                "path",
                format!("{rule}; got {:?}", b.path),
            ));
        }
        if b.domain.is_some() {
            return Err(Error::invalid_config("domain", rule));
        }
    } else if name.starts_with("__secure-") && !b.secure {
        return Err(Error::invalid_config(
            "secure",
            "a cookie name starting with `__Secure-` requires `secure = true` \
             (the __Secure- prefix rule)",
        ));
    }
    Ok(())
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

/// The field named by an error that concerns no one field: a syntax error,
/// or a document that is not a table of fields.
const WHOLE_DOCUMENT: &str = "session_config";

/// A deserialisation error as [`Error::InvalidConfig`], naming the field
/// at the error's path (`max_age`, `exclude[1]`, or an unknown field's
/// name) as the document spelled it.
fn invalid<E: fmt::Display>(err: serde_path_to_error::Error<E>) -> Error {
    use serde_path_to_error::Segment;
    let path = err.path();
    let field = match path.to_string() {
        // An empty key (`{"": 1}`) names nothing; the message quotes it.
        field if field.is_empty() => WHOLE_DOCUMENT.to_owned(),
        _ if path.iter().all(|s| matches!(s, Segment::Unknown)) => WHOLE_DOCUMENT.to_owned(),
        field => field,
    };
    Error::invalid_config(field, err.into_inner().to_string().trim_end().to_owned())
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

fn optional_seconds<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let Some(secs) = Option::<f64>::deserialize(d)? else {
        return Ok(None);
    };
    if !secs.is_finite() || secs < 0.0 || secs > limits::MAX_MAX_AGE.as_secs_f64() {
        return Err(serde::de::Error::custom(format!(
            "must be 1 to 34560000 seconds, got {secs}"
        )));
    }
    Ok(Some(Duration::from_secs_f64(secs)))
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
    use crate::field;

    #[test]
    fn defaults_match_litestar() {
        let c = SessionConfig::default();
        assert_eq!(c.cookie_name(), "session");
        assert_eq!(c.max_age(), Duration::from_secs(1_209_600));
        assert_eq!(c.path(), "/");
        assert_eq!(c.domain(), None);
        // Not Litestar's default: the id travels over HTTPS only.
        assert!(c.secure());
        assert_eq!(c.absolute_lifetime(), None);
        assert_eq!(c.renew_threshold(), 0.5);
        assert!(c.skip_save_on_server_error());
        assert!(c.http_only());
        assert_eq!(c.same_site(), SameSite::Lax);
        assert_eq!(c.session_id_bytes(), 32);
        assert!(!c.renew_on_access());
        assert!(c.exclude().is_empty());
        assert_eq!(c.scopes(), &[Scope::Http, Scope::Websocket]);
        assert_eq!(c.store_label(), "sessions");
        assert!(c.hash_session_ids());
    }

    #[test]
    fn every_invalid_value_names_its_field() {
        let b = SessionConfig::builder;
        assert_eq!(
            field(b().cookie_name("").build().unwrap_err()),
            "cookie_name"
        );
        assert_eq!(
            field(b().cookie_name("a".repeat(257)).build().unwrap_err()),
            "cookie_name"
        );
        assert!(b().cookie_name("a".repeat(256)).build().is_ok());
        assert_eq!(
            field(b().cookie_name("a b").build().unwrap_err()),
            "cookie_name"
        );
        assert_eq!(
            field(b().cookie_name("a;b").build().unwrap_err()),
            "cookie_name"
        );
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
            field(
                b().same_site(SameSite::None)
                    .secure(false)
                    .build()
                    .unwrap_err()
            ),
            "same_site"
        );
        assert_eq!(
            field(b().renew_threshold(0.0).build().unwrap_err()),
            "renew_threshold"
        );
        assert_eq!(
            field(b().renew_threshold(1.5).build().unwrap_err()),
            "renew_threshold"
        );
        assert_eq!(
            field(b().renew_threshold(f64::NAN).build().unwrap_err()),
            "renew_threshold"
        );
        assert!(b().renew_threshold(1.0).build().is_ok());
        assert_eq!(
            field(
                b().absolute_lifetime(Duration::from_millis(10))
                    .build()
                    .unwrap_err()
            ),
            "absolute_lifetime"
        );
        assert!(b().same_site(SameSite::None).secure(true).build().is_ok());
        assert_eq!(
            field(b().store_label("").build().unwrap_err()),
            "store_label"
        );
        assert_eq!(
            field(b().max_session_bytes(0usize).build().unwrap_err()),
            "max_session_bytes"
        );
    }

    #[test]
    fn deserialises_from_json_and_toml() {
        let json = SessionConfig::from_json_str(
            r#"{"cookie_name": "sid", "max_age": 3600, "same_site": "strict", "secure": true,
                "exclude": ["^/a", "^/b"], "renew_on_access": true, "domain": "example.com"}"#,
        )
        .unwrap();
        let toml = SessionConfig::from_toml_str(
            "cookie_name = \"sid\"\nmax_age = 3600\nsame_site = \"strict\"\nsecure = true\n\
             exclude = [\"^/a\", \"^/b\"]\nrenew_on_access = true\ndomain = \"example.com\"\n",
        )
        .unwrap();
        for c in [json, toml] {
            assert_eq!(c.cookie_name(), "sid");
            assert_eq!(c.max_age(), Duration::from_secs(3600));
            assert_eq!(c.same_site(), SameSite::Strict);
            assert!(c.is_excluded("/b/x"));
            assert!(!c.is_excluded("/c"));
            assert_eq!(c.domain(), Some("example.com"));
        }
    }

    #[test]
    fn litestar_spellings_are_aliases() {
        let old = SessionConfig::from_json_str(
            r#"{"key": "sid", "httponly": false, "samesite": "strict", "store": "web",
                "exclude_opt_key": "no_session"}"#,
        )
        .unwrap();
        let new = SessionConfig::builder()
            .cookie_name("sid")
            .http_only(false)
            .same_site(SameSite::Strict)
            .store_label("web")
            .build()
            .unwrap();
        assert_eq!(old, new);
        // One field given twice, once in each spelling, is refused; the
        // message names it (serde reports it once the object is read, at
        // no one field's path).
        let err = SessionConfig::from_json_str(r#"{"key": "a", "cookie_name": "b"}"#).unwrap_err();
        assert!(
            err.to_string().contains("duplicate field `cookie_name`"),
            "{err}"
        );
        // `exclude_opt_key` is read as Litestar types it: a string.
        let err = SessionConfig::from_json_str(r#"{"exclude_opt_key": 1}"#).unwrap_err();
        assert_eq!(field(err), "exclude_opt_key");
    }

    #[test]
    fn serde_errors_name_the_field() {
        let err = SessionConfig::from_json_str(r#"{"max_agee": 5}"#).unwrap_err();
        assert_eq!(field(err), "max_agee");
        let err = SessionConfig::from_json_str(r#"{"max_age": 0}"#).unwrap_err();
        assert_eq!(field(err), "max_age");
        let err = SessionConfig::from_json_str(r#"{"max_age": -1}"#).unwrap_err();
        assert_eq!(field(err), "max_age");
        let err = SessionConfig::from_json_str(r#"{"samesite": "loose"}"#).unwrap_err();
        assert!(err.to_string().contains("samesite"), "{err}");
        assert_eq!(field(err), "samesite");
        let err = SessionConfig::from_json_str(r#"{"same_site": "loose"}"#).unwrap_err();
        assert_eq!(field(err), "same_site");
        let err = SessionConfig::from_json_str(r#"{"exclude": ["^/a", 5]}"#).unwrap_err();
        assert_eq!(field(err), "exclude");
        let err = SessionConfig::from_json_str(r#"{"scopes": ["http", "smtp"]}"#).unwrap_err();
        assert_eq!(field(err), "scopes[1]");
        let err = SessionConfig::from_toml_str("key = 5").unwrap_err();
        assert!(err.to_string().contains("key"), "{err}");
        assert_eq!(field(err), "key");
        let err = SessionConfig::from_toml_str("max_agee = 5").unwrap_err();
        assert_eq!(field(err), "max_agee");
        let err = SessionConfig::from_toml_str("[secure]\nx = 1").unwrap_err();
        assert_eq!(field(err), "secure");
        // Not about one field: the whole document.
        let err = SessionConfig::from_json_str(r#""key""#).unwrap_err();
        assert_eq!(field(err), "session_config");
        let err = SessionConfig::from_json_str(r#"{"key": "a"} x"#).unwrap_err();
        assert_eq!(field(err), "session_config");
        let err = SessionConfig::from_json_str(r#"{"": 1}"#).unwrap_err();
        assert_eq!(field(err), "session_config");
        let err = SessionConfig::from_toml_str("key = ").unwrap_err();
        assert_eq!(field(err), "session_config");
    }

    #[test]
    fn exclude_patterns_match_anywhere_unless_anchored() {
        let c = SessionConfig::builder()
            .exclude(["/health", "^/static/", "\\.ico$"])
            .build()
            .unwrap();
        // Unanchored: anywhere in the path.
        assert!(c.is_excluded("/health"));
        assert!(c.is_excluded("/api/health"));
        assert!(c.is_excluded("/healthz"));
        // `^`: from the start only.
        assert!(c.is_excluded("/static/app.css"));
        assert!(!c.is_excluded("/app/static/app.css"));
        // `$`: at the end only.
        assert!(c.is_excluded("/favicon.ico"));
        assert!(!c.is_excluded("/favicon.ico/x"));
        assert!(!c.is_excluded("/"));
    }

    #[test]
    fn litestar_compatible_stores_raw_ids_and_refuses_hashing() {
        let c = SessionConfig::from_json_str(r#"{"litestar_compatible": true}"#).unwrap();
        assert!(c.litestar_compatible());
        assert!(!c.hash_session_ids());
        // Everything else stays at Litestar's defaults; turned off again,
        // it keeps this config's values, raw ids included.
        assert_eq!(
            c.to_builder().litestar_compatible(false).build().unwrap(),
            SessionConfig::builder()
                .hash_session_ids(false)
                .build()
                .unwrap()
        );
        // A default config (hashed ids) can be turned Litestar-compatible.
        let turned = SessionConfig::default()
            .to_builder()
            .litestar_compatible(true)
            .build()
            .unwrap();
        assert!(!turned.hash_session_ids());
        assert_eq!(c.to_builder().build().unwrap(), c);
        let err =
            SessionConfig::from_toml_str("litestar_compatible = true\nhash_session_ids = true")
                .unwrap_err();
        assert_eq!(field(err), "hash_session_ids");
        let c = SessionConfig::builder()
            .litestar_compatible(true)
            .hash_session_ids(false)
            .build()
            .unwrap();
        assert!(!c.hash_session_ids());
        let err = SessionConfig::from_json_str(r#"{"litestar_compatible": "yes"}"#).unwrap_err();
        assert_eq!(field(err), "litestar_compatible");
    }

    #[test]
    fn the_lifetime_fields_load_from_files() {
        let json = SessionConfig::from_json_str(
            r#"{"absolute_lifetime": 28800, "renew_threshold": 0.25,
                "skip_save_on_server_error": false}"#,
        )
        .unwrap();
        let toml = SessionConfig::from_toml_str(
            "absolute_lifetime = 28800\nrenew_threshold = 0.25\nskip_save_on_server_error = false\n",
        )
        .unwrap();
        for c in [json, toml] {
            assert_eq!(c.absolute_lifetime(), Some(Duration::from_secs(28800)));
            assert_eq!(c.renew_threshold(), 0.25);
            assert!(!c.skip_save_on_server_error());
            assert_eq!(c.to_builder().build().unwrap(), c);
        }
        let err = SessionConfig::from_json_str(r#"{"absolute_lifetime": -5}"#).unwrap_err();
        assert_eq!(field(err), "absolute_lifetime");
        let err = SessionConfig::from_json_str(r#"{"renew_threshold": 2}"#).unwrap_err();
        assert_eq!(field(err), "renew_threshold");
        let err =
            SessionConfig::from_toml_str("litestar_compatible = true\nabsolute_lifetime = 60")
                .unwrap_err();
        assert_eq!(field(err), "absolute_lifetime");
        let err =
            SessionConfig::from_json_str(r#"{"key": "__Secure-s", "secure": false}"#).unwrap_err();
        assert_eq!(field(err), "secure");
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
