//! [`FileConfig`]: the settings of a [`FileStore`](crate::FileStore).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use session_core::{Error, ExtensionConfig, Result, StoreConfig};

/// The configuration of a [`FileStore`](crate::FileStore): a plain struct
/// with public fields, `Default` and serde.
///
/// Load it from JSON or TOML with the [`StoreConfig`] loaders (unknown
/// fields are refused by name). Of SQLSpec's `{"litestar": {...}}` shape
/// no key applies (a directory has no table): an empty `litestar` section
/// gives the defaults, any key in it is refused by name.
///
/// There is no `table`, `pool_size`, `wait_timeout` or `connect_timeout`
/// (a directory is not a database), and no `cleanup_batch_size`:
/// `delete_expired` deletes file by file, each under its key's lock, with
/// no transaction to keep short.
///
/// ```
/// use session_core::StoreConfig;
/// use session_file::FileConfig;
///
/// let config = FileConfig::from_toml_str("fsync = true").unwrap();
/// assert_eq!(config, FileConfig { fsync: true, ..FileConfig::default() });
/// assert_eq!(FileConfig::from_json_str("{}").unwrap(), FileConfig::default());
/// let err = FileConfig::from_json_str(r#"{"fsynk": true}"#).unwrap_err();
/// assert!(err.to_string().contains("fsynk"), "{err}");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FileConfig {
    /// Flush every write to disk before it returns (default `false`): the
    /// new file's data before it is renamed into place, then its directory;
    /// after a `delete` or `delete_live`, the directory (so a logout is not
    /// undone by a power loss).
    /// Without it a write survives a crash of the application (the kernel
    /// has it) but the last writes before a power loss or kernel crash may
    /// be lost; a reader still never sees half a value. It costs one or two
    /// disk flushes per write, a renewing read included; see
    /// `docs/file.md` for the measured cost.
    pub fsync: bool,
    /// How long a change of a session waits for its lock while another
    /// request or process holds it, before it fails with
    /// `Error::Backend` naming the lock file (default 5 s). A hung
    /// process holding a lock then costs its session's requests this long,
    /// never a thread of the blocking pool each, forever.
    #[serde(with = "session_core::duration")]
    pub lock_timeout: Duration,
}

impl Default for FileConfig {
    fn default() -> Self {
        FileConfig {
            fsync: false,
            lock_timeout: Duration::from_secs(5),
        }
    }
}

impl StoreConfig for FileConfig {
    /// None of SQLSpec's `litestar` keys applies to a directory.
    const EXTENSION_KEYS: &'static [&'static str] = &[];

    fn from_extension(ext: &ExtensionConfig) -> Result<Self> {
        ext.ensure_only(Self::EXTENSION_KEYS)?;
        Ok(Self::default())
    }

    fn validate(&self) -> Result<()> {
        if self.lock_timeout.is_zero() {
            return Err(Error::invalid_config(
                "lock_timeout",
                "zero; expected a positive duration",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_fields_load_from_json_and_toml() {
        let expected = FileConfig {
            fsync: true,
            ..FileConfig::default()
        };
        assert_eq!(
            FileConfig::from_json_str(r#"{"fsync": true}"#).unwrap(),
            expected
        );
        assert_eq!(FileConfig::from_toml_str("fsync = true").unwrap(), expected);
        assert_eq!(
            FileConfig::from_value(serde_json::Value::Null).unwrap(),
            FileConfig::default()
        );
        assert!(!FileConfig::default().fsync);
    }

    #[test]
    fn unknown_and_bad_fields_are_refused_by_name() {
        for (doc, field) in [
            (r#"{"table": "x"}"#, "table"),
            (r#"{"cleanup_batch_size": 5}"#, "cleanup_batch_size"),
        ] {
            let err = FileConfig::from_json_str(doc).unwrap_err();
            assert!(err.to_string().contains(field), "{doc}: {err}");
        }
        let err = FileConfig::from_json_str(r#"{"fsync": "yes"}"#).unwrap_err();
        assert!(
            matches!(&err, Error::InvalidConfig { field, .. } if field == "fsync"),
            "{err}"
        );
    }

    #[test]
    fn sqlspec_documents_load_without_keys() {
        assert_eq!(
            FileConfig::from_json_str(r#"{"litestar": {}}"#).unwrap(),
            FileConfig::default()
        );
        let err = FileConfig::from_json_str(r#"{"litestar": {"session_table": "s"}}"#).unwrap_err();
        assert!(
            matches!(&err, Error::UnknownConfigKeys { unknown, .. } if unknown == &["session_table"]),
            "{err}"
        );
    }
}
