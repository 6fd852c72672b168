//! [`MemcachedConfig`]: the key prefix and the store's connections, in one
//! plain struct.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use session_core::{Error, ExtensionConfig, Result, StoreConfig};

/// The longest key prefix, in bytes: with the generation (at most 20
/// digits and a `:`) and the longest encoded key (65 bytes) it leaves room
/// within memcached's 250-byte keys.
pub const MAX_PREFIX_BYTES: usize = session_core::MAX_KEY_PREFIX_BYTES;

/// memcached's default item size limit (`-I 1m`), in bytes.
pub const DEFAULT_ITEM_SIZE_MAX: u64 = 1024 * 1024;

/// The item size limits memcached accepts for `-I`: 1 KiB to 1 GiB.
const ITEM_SIZE_RANGE: std::ops::RangeInclusive<u64> = 1024..=1024 * 1024 * 1024;

/// Everything a [`MemcachedStore`](crate::MemcachedStore) is made with:
/// the key prefix and the connections to the servers. Plain public fields
/// with [`Default`]; checked by [`validate`](StoreConfig::validate) when a
/// store is made or the config is loaded, every error naming its field.
///
/// Loaded with the [`StoreConfig`] loaders from its own fields (JSON, TOML,
/// a file; durations as seconds or text such as `"250ms"`; an unknown field
/// is refused by name). SQLSpec's `{"litestar": {...}}` shape has no key a
/// key/value store honours: any key in it is refused by name.
///
/// ```
/// use std::time::Duration;
/// use session_core::StoreConfig;
/// use session_memcached::MemcachedConfig;
///
/// let config = MemcachedConfig::from_toml_str(
///     "prefix = \"app:sess:\"\npool_size = 8\nresponse_timeout = \"500ms\"\n",
/// )?;
/// assert_eq!(config.prefix, "app:sess:");
/// assert_eq!(config.response_timeout, Duration::from_millis(500));
/// assert_eq!(config.connect_timeout, Duration::from_secs(5)); // the default
///
/// // For servers started with `memcached -I 2m`:
/// let config = MemcachedConfig::from_toml_str("item_size_max = 2097152\n")?;
/// assert_eq!(config.item_size_max, 2 * 1024 * 1024);
///
/// let err = MemcachedConfig::from_json_str(r#"{"prefix": "has space"}"#).unwrap_err();
/// assert!(err.to_string().contains("prefix"), "{err}");
/// # Ok::<(), session_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MemcachedConfig {
    /// Every key of this store starts with it (default `session:`, as the
    /// Redis store): two stores with different prefixes on one memcached
    /// never see each other's keys, and [`delete_all`](session_core::Store::delete_all)
    /// bumps the generation kept under `<prefix>gen`. 1 to 128 bytes of
    /// printable ASCII without space. Two prefixes are disjoint only if
    /// neither starts with the other: `session:` and `session:admin:` are
    /// not.
    pub prefix: String,
    /// The most operations in flight at once, and so the most connections
    /// to each server (default 16).
    pub pool_size: u32,
    /// How long a call waits for a free connection before
    /// [`Error::PoolTimeout`] (default 5 s).
    #[serde(with = "session_core::duration")]
    pub wait_timeout: Duration,
    /// How long opening one connection (and resolving the server's name)
    /// may take (default 5 s).
    #[serde(with = "session_core::duration")]
    pub connect_timeout: Duration,
    /// How long one exchange with a server may wait for its answer
    /// (default 5 s); then the connection is dropped and the call fails with
    /// [`Error::Connection`].
    #[serde(with = "session_core::duration")]
    pub response_timeout: Duration,
    /// The servers' item size limit in bytes, memcached's `-I` (default
    /// 1 MiB, memcached's default; `2097152` for `-I 2m`). The store
    /// refuses a value that would not fit (value, encoded key and about 70
    /// bytes of item header) itself, before sending it, because memcached,
    /// when it refuses a value as too large, also deletes the item stored
    /// under that key: a `compare_and_set` or `create` that must write
    /// nothing would destroy the session. Set it no higher than the
    /// smallest `-I` of your servers.
    pub item_size_max: u64,
}

impl Default for MemcachedConfig {
    fn default() -> Self {
        MemcachedConfig {
            prefix: session_core::DEFAULT_KEY_PREFIX.to_owned(),
            pool_size: 16,
            wait_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            response_timeout: Duration::from_secs(5),
            item_size_max: DEFAULT_ITEM_SIZE_MAX,
        }
    }
}

impl StoreConfig for MemcachedConfig {
    const EXTENSION_KEYS: &'static [&'static str] = &[];

    fn from_extension(ext: &ExtensionConfig) -> Result<Self> {
        ext.ensure_only(Self::EXTENSION_KEYS)?;
        Ok(MemcachedConfig::default())
    }

    fn validate(&self) -> Result<()> {
        session_core::validate_key_prefix(&self.prefix, "")?;
        if self.pool_size == 0 {
            return Err(Error::invalid_config(
                "pool_size",
                "a pool of 0 connections; expected at least 1",
            ));
        }
        if !ITEM_SIZE_RANGE.contains(&self.item_size_max) {
            return Err(Error::invalid_config(
                "item_size_max",
                format!(
                    "{} bytes; expected memcached's -I in bytes, 1024 (1k) to 1073741824 (1024m)",
                    self.item_size_max
                ),
            ));
        }
        for (field, value) in [
            ("wait_timeout", self.wait_timeout),
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
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid_and_as_documented() {
        let config = MemcachedConfig::default();
        config.validate().unwrap();
        assert_eq!(config.prefix, "session:");
        assert_eq!(config.pool_size, 16);
        assert_eq!(config.item_size_max, 1024 * 1024);
        assert_eq!(
            MemcachedConfig::from_value(serde_json::Value::Null).unwrap(),
            config
        );
    }

    #[test]
    fn own_fields_load_and_write_back() {
        let config = MemcachedConfig::from_json_str(
            r#"{"prefix": "p:", "pool_size": 2, "wait_timeout": 0.5,
                "connect_timeout": "2s", "response_timeout": "250ms",
                "item_size_max": 2097152}"#,
        )
        .unwrap();
        let expected = MemcachedConfig {
            prefix: "p:".into(),
            pool_size: 2,
            wait_timeout: Duration::from_millis(500),
            connect_timeout: Duration::from_secs(2),
            response_timeout: Duration::from_millis(250),
            item_size_max: 2 * 1024 * 1024,
        };
        assert_eq!(config, expected);
        let written = serde_json::to_value(&expected).unwrap();
        assert_eq!(MemcachedConfig::from_value(written).unwrap(), expected);
    }

    #[test]
    fn bad_values_name_their_field() {
        for (doc, field) in [
            (r#"{"prefix": ""}"#, "prefix"),
            (r#"{"prefix": "a b"}"#, "prefix"),
            (r#"{"prefix": "tab\t"}"#, "prefix"),
            (r#"{"prefix": "café"}"#, "prefix"),
            (r#"{"pool_size": 0}"#, "pool_size"),
            (r#"{"wait_timeout": 0}"#, "wait_timeout"),
            (r#"{"connect_timeout": "0s"}"#, "connect_timeout"),
            (r#"{"response_timeout": 0}"#, "response_timeout"),
            (r#"{"pool_sise": 4}"#, "pool_sise"),
            (r#"{"item_size_max": 1023}"#, "item_size_max"),
            (r#"{"item_size_max": 1073741825}"#, "item_size_max"),
        ] {
            let err = MemcachedConfig::from_json_str(doc).unwrap_err();
            assert!(err.to_string().contains(field), "{doc}: {err}");
        }
        let long = format!(r#"{{"prefix": "{}"}}"#, "p".repeat(MAX_PREFIX_BYTES + 1));
        assert!(MemcachedConfig::from_json_str(&long).is_err());
        let longest = format!(r#"{{"prefix": "{}"}}"#, "p".repeat(MAX_PREFIX_BYTES));
        MemcachedConfig::from_json_str(&longest).unwrap();
    }

    #[test]
    fn the_extension_shape_has_no_keys_for_memcached() {
        let err =
            MemcachedConfig::from_json_str(r#"{"litestar": {"session_table": "t"}}"#).unwrap_err();
        assert!(matches!(err, Error::UnknownConfigKeys { .. }), "{err:?}");
        let config = MemcachedConfig::from_json_str(r#"{"litestar": {}}"#).unwrap();
        assert_eq!(config, MemcachedConfig::default());
    }
}
