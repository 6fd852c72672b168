//! [`RedisConfig`]: the key prefix, the timeouts and the reconnect bound,
//! in one plain struct.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use session_core::{Error, ExtensionConfig, Result, StoreConfig};

/// The default key prefix (`session:`).
pub const DEFAULT_PREFIX: &str = session_core::DEFAULT_KEY_PREFIX;

/// The most keys one step of `delete_all` asks for.
const MAX_DELETE_ALL_BATCH: u32 = 100_000;

/// The longest key prefix accepted, in bytes.
pub const MAX_PREFIX_BYTES: usize = session_core::MAX_KEY_PREFIX_BYTES;

/// Everything a [`RedisStore`](crate::RedisStore) is made with besides its
/// URL. Plain public fields with [`Default`]; checked by
/// [`validate`](StoreConfig::validate) when a store is made or the config
/// is loaded, every error naming its field.
///
/// Loaded with the [`StoreConfig`] loaders (JSON, TOML, a file, a
/// `serde_json::Value`; durations as seconds or text such as `"250ms"`; an
/// unknown field is refused by name). SQLSpec's `{"litestar": {...}}`
/// document has no Redis keys: an empty one gives the defaults.
///
/// ```
/// use std::time::Duration;
/// use session_core::StoreConfig;
/// use session_redis::RedisConfig;
///
/// let config = RedisConfig::from_toml_str("prefix = \"app:sess:\"\nresponse_timeout = \"750ms\"")?;
/// assert_eq!(config.prefix, "app:sess:");
/// assert_eq!(config.response_timeout, Duration::from_millis(750));
/// assert_eq!(config.connect_timeout, Duration::from_secs(5)); // the default
///
/// let err = RedisConfig::from_json_str(r#"{"prefix": "sess ions:"}"#).unwrap_err();
/// assert!(err.to_string().contains("`prefix`"), "{err}");
/// # Ok::<(), session_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisConfig {
    /// Prepended to every key (default `session:`), so stores with
    /// different prefixes share one Redis without seeing each other's keys,
    /// and [`delete_all`](session_core::Store::delete_all) removes only
    /// this prefix's keys. 1 to 128 bytes of printable ASCII without space
    /// and without the glob characters `*?[]\`. Two prefixes are disjoint
    /// only if neither starts with the other: `session:` and
    /// `session:admin:` are not.
    pub prefix: String,
    /// How long opening one connection may take, TCP (and TLS) included
    /// (default 5 s).
    #[serde(with = "session_core::duration")]
    pub connect_timeout: Duration,
    /// How long a command may wait for its answer (default 5 s).
    #[serde(with = "session_core::duration")]
    pub response_timeout: Duration,
    /// One server: connection attempts of one reconnect after the
    /// connection was lost, at least 1 (default 6); when they are used up
    /// the calls waiting on them fail with `Error::Connection` and the next
    /// call starts a new reconnect. A cluster: how often the cluster client
    /// retries a request (following redirections, reconnecting to a node).
    /// Either way a call ends within [`call_deadline`](Self::call_deadline).
    pub reconnect_attempts: u32,
    /// The longest pause between two attempts of a reconnect (default
    /// 500 ms): a restarted server is found again at most this long after
    /// it accepts connections.
    #[serde(with = "session_core::duration")]
    pub reconnect_max_delay: Duration,
    /// Keys one `SCAN` step of [`delete_all`](session_core::Store::delete_all)
    /// asks for and one `UNLINK` removes, 1 to 100,000 (default 1,000).
    pub delete_all_batch_size: u32,
    /// For `rediss://`: a PEM file of the certificate authorities that
    /// sign the server's certificate, instead of the system's roots
    /// (default: none, the system's roots). Needs the `tls` feature; one
    /// server only (a cluster's nodes must chain to the system's roots).
    pub tls_ca_file: Option<PathBuf>,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            prefix: DEFAULT_PREFIX.to_owned(),
            connect_timeout: Duration::from_secs(5),
            response_timeout: Duration::from_secs(5),
            reconnect_attempts: 6,
            reconnect_max_delay: Duration::from_millis(500),
            delete_all_batch_size: 1_000,
            tls_ca_file: None,
        }
    }
}

impl RedisConfig {
    /// The longest a call waits before it fails with `Error::Connection`:
    /// one connection attempt plus one answer.
    pub fn call_deadline(&self) -> Duration {
        self.connect_timeout.saturating_add(self.response_timeout)
    }
}

impl StoreConfig for RedisConfig {
    const EXTENSION_KEYS: &'static [&'static str] = &[];

    fn from_extension(ext: &ExtensionConfig) -> Result<Self> {
        ext.ensure_only(Self::EXTENSION_KEYS)?;
        Ok(RedisConfig::default())
    }

    fn validate(&self) -> Result<()> {
        // Glob characters would change what delete_all's SCAN MATCH finds.
        session_core::validate_key_prefix(&self.prefix, "*?[]\\")?;
        for (field, value) in [
            ("connect_timeout", self.connect_timeout),
            ("response_timeout", self.response_timeout),
        ] {
            if value.is_zero() {
                return Err(Error::invalid_config(
                    field,
                    "zero; expected a positive duration",
                ));
            }
        }
        if self.reconnect_attempts == 0 {
            return Err(Error::invalid_config(
                "reconnect_attempts",
                "0 attempts; expected at least 1",
            ));
        }
        if self.tls_ca_file.is_some() && !cfg!(feature = "tls") {
            return Err(Error::invalid_config(
                "tls_ca_file",
                "TLS is not in this build of session-redis: enable its `tls` feature",
            ));
        }
        if !(1..=MAX_DELETE_ALL_BATCH).contains(&self.delete_all_batch_size) {
            return Err(Error::invalid_config(
                "delete_all_batch_size",
                format!(
                    "{} keys per batch; expected 1 to {MAX_DELETE_ALL_BATCH} (one SCAN step blocks Redis while it runs)",
                    self.delete_all_batch_size
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(json: &str) -> (String, String) {
        match RedisConfig::from_json_str(json) {
            Err(Error::InvalidConfig { field, reason }) => (field, reason),
            other => panic!("{json}: expected InvalidConfig, got {other:?}"),
        }
    }

    #[test]
    fn the_defaults_are_valid() {
        RedisConfig::default().validate().unwrap();
        assert_eq!(
            RedisConfig::from_value(serde_json::Value::Null).unwrap(),
            RedisConfig::default()
        );
        assert_eq!(
            RedisConfig::from_json_str(r#"{"litestar": {}}"#).unwrap(),
            RedisConfig::default()
        );
    }

    #[test]
    fn bad_values_name_their_field() {
        for (json, field, problem) in [
            (r#"{"prefix": ""}"#, "prefix", "empty"),
            (r#"{"prefix": "a b:"}"#, "prefix", "' '"),
            (r#"{"prefix": "sess*"}"#, "prefix", "'*'"),
            (r#"{"prefix": "séance:"}"#, "prefix", "'é'"),
            (r#"{"prefix": "a\nb"}"#, "prefix", "'\\n'"),
            (r#"{"connect_timeout": 0}"#, "connect_timeout", "zero"),
            (r#"{"response_timeout": "0s"}"#, "response_timeout", "zero"),
            (r#"{"reconnect_attempts": 0}"#, "reconnect_attempts", "0"),
            (
                r#"{"delete_all_batch_size": 0}"#,
                "delete_all_batch_size",
                "0",
            ),
            (
                r#"{"delete_all_batch_size": 4000000000}"#,
                "delete_all_batch_size",
                "expected 1 to 100000",
            ),
            (r#"{"prefixx": "a:"}"#, "prefixx", "unknown field"),
            (r#"{"connect_timeout": "soon"}"#, "connect_timeout", "soon"),
        ] {
            let (got_field, reason) = refused(json);
            assert_eq!(got_field, field, "{json}: {reason}");
            assert!(reason.contains(problem), "{json}: {reason}");
        }
        let (field, reason) = refused(&format!(r#"{{"prefix": "{}"}}"#, "p".repeat(129)));
        assert_eq!(
            (field.as_str(), reason.contains("129 bytes")),
            ("prefix", true)
        );
        let err = RedisConfig::from_json_str(r#"{"litestar": {"session_table": "t"}}"#);
        assert!(
            matches!(err, Err(Error::UnknownConfigKeys { ref unknown, .. }) if unknown == &["session_table"]),
            "{err:?}"
        );
    }

    #[test]
    fn the_call_deadline_is_one_connect_and_one_answer() {
        let config = RedisConfig {
            connect_timeout: Duration::from_millis(300),
            response_timeout: Duration::from_millis(200),
            ..RedisConfig::default()
        };
        assert_eq!(config.call_deadline(), Duration::from_millis(500));
    }
}
