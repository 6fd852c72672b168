//! [`StoreConfig`]: the one configuration shape of every adapter.
//!
//! Each adapter's configuration is a plain struct with public fields,
//! `Default`, and serde, with the same field name for the same concept in
//! every adapter:
//!
//! | field | meaning |
//! | --- | --- |
//! | `table` | the session table (SQLSpec's `session_table` is an alias) |
//! | `pool_size` | connections in the pool at most |
//! | `wait_timeout` | how long a caller waits for a pooled connection |
//! | `connect_timeout` | how long opening one connection may take |
//! | `test_on_checkout` | check a pooled connection before handing it out |
//! | `cleanup_batch_size` | rows one cleanup transaction deletes at most |
//!
//! Durations are written as seconds (`5`, `0.25`) or as text (`"5s"`,
//! `"250ms"`). Unknown fields are refused by name. A document in SQLSpec's
//! shape, `{"litestar": {...}}`, is accepted too and mapped onto the
//! struct by [`StoreConfig::from_extension`].

use std::path::Path;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::{EXTENSION, Error, ExtensionConfig, Result};

/// The configuration struct of one adapter. Implement
/// [`from_extension`](Self::from_extension) and [`validate`](Self::validate);
/// the loaders are provided.
///
/// # Examples
///
/// ```
/// use serde::Deserialize;
/// use session_core::{ExtensionConfig, StoreConfig};
///
/// #[derive(Debug, Default, Deserialize, PartialEq)]
/// #[serde(default, deny_unknown_fields)]
/// struct MyConfig {
///     #[serde(alias = "session_table")]
///     table: Option<String>,
///     pool_size: u32,
/// }
///
/// impl StoreConfig for MyConfig {
///     const EXTENSION_KEYS: &'static [&'static str] = &["session_table"];
///     fn from_extension(ext: &ExtensionConfig) -> session_core::Result<Self> {
///         Ok(MyConfig { table: Some(ext.session_table(63)?.qualified()), ..Self::default() })
///     }
///     fn validate(&self) -> session_core::Result<()> {
///         Ok(())
///     }
/// }
///
/// let own = MyConfig::from_toml_str("table = \"app\"\npool_size = 4").unwrap();
/// let seed = MyConfig::from_json_str(r#"{"litestar": {"session_table": "app"}}"#).unwrap();
/// assert_eq!(own.table, seed.table);
/// let err = MyConfig::from_json_str(r#"{"pool_sise": 4}"#).unwrap_err();
/// assert!(err.to_string().contains("pool_sise"), "{err}");
/// ```
pub trait StoreConfig: DeserializeOwned + Default {
    /// The keys of SQLSpec's `litestar` section this adapter honours.
    const EXTENSION_KEYS: &'static [&'static str];

    /// Maps SQLSpec's `litestar` section (already checked against
    /// [`EXTENSION_KEYS`](Self::EXTENSION_KEYS)) onto this struct.
    ///
    /// # Errors
    ///
    /// A value of the wrong type or out of range, naming its key.
    fn from_extension(ext: &ExtensionConfig) -> Result<Self>;

    /// Checks every field (ranges, the table name), naming the bad one.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] or [`Error::InvalidIdentifier`].
    fn validate(&self) -> Result<()>;

    /// Reads a parsed document: `null` (defaults), the struct's own fields,
    /// or SQLSpec's `{"litestar": {...}}` shape (other top-level sections
    /// then belong to other extensions and are ignored).
    ///
    /// # Errors
    ///
    /// An unknown field or a bad value, naming it.
    fn from_value(value: Value) -> Result<Self> {
        let config = match value {
            Value::Null => Self::default(),
            Value::Object(ref map) if map.contains_key(EXTENSION) => {
                Self::from_extension(&ExtensionConfig::from_value(value, Self::EXTENSION_KEYS)?)?
            }
            value => serde_path_to_error::deserialize(value).map_err(|e| {
                let field = e.path().to_string();
                let field = if field == "." {
                    "config".to_owned()
                } else {
                    field
                };
                Error::invalid_config(field, e.into_inner().to_string())
            })?,
        };
        config.validate()?;
        Ok(config)
    }

    /// Parses a JSON document; see [`from_value`](Self::from_value).
    ///
    /// # Errors
    ///
    /// Invalid JSON, an unknown field or a bad value.
    fn from_json_str(json: &str) -> Result<Self> {
        Self::from_value(parse_json(json, "config")?)
    }

    /// Parses a TOML document; see [`from_value`](Self::from_value).
    ///
    /// # Errors
    ///
    /// Invalid TOML, an unknown field or a bad value.
    fn from_toml_str(text: &str) -> Result<Self> {
        Self::from_value(parse_toml(text, "config")?)
    }

    /// Reads a `.json` or `.toml` file; see [`from_value`](Self::from_value).
    ///
    /// # Errors
    ///
    /// An unreadable file, another extension, or a bad document.
    fn from_path(path: &Path) -> Result<Self> {
        Self::from_value(read_document(path)?)
    }
}

/// A JSON document; a syntax error is an [`Error::InvalidConfig`] of `field`.
pub(crate) fn parse_json(json: &str, field: &str) -> Result<Value> {
    serde_json::from_str(json)
        .map_err(|e| Error::invalid_config(field, format!("not valid JSON: {e}")))
}

/// A TOML document; a syntax error is an [`Error::InvalidConfig`] of `field`.
pub(crate) fn parse_toml(text: &str, field: &str) -> Result<Value> {
    toml::from_str(text).map_err(|e| {
        Error::invalid_config(
            field,
            format!("not valid TOML: {}", e.to_string().trim_end()),
        )
    })
}

/// Reads a `.json` or `.toml` configuration file (chosen by its
/// extension) into a document, for [`StoreConfig::from_value`] or a
/// [`Connector`](crate::Connector).
///
/// # Errors
///
/// An unreadable file, another extension, or invalid JSON or TOML, each
/// naming the file.
pub fn read_document(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::invalid_config(
            "config file",
            format!("cannot read {}: {e}", path.display()),
        )
    })?;
    match path.extension().and_then(|e| e.to_str()) {
        Some(ext) if ext.eq_ignore_ascii_case("toml") => parse_toml(&text, "config"),
        Some(ext) if ext.eq_ignore_ascii_case("json") => parse_json(&text, "config"),
        _ => Err(Error::invalid_config(
            "config file",
            format!("{} must end in .json or .toml", path.display()),
        )),
    }
}

/// Serde for a `Duration` field: seconds as a number (`5`, `0.25`) or text
/// (`"5s"`, `"250ms"`, `"1m 30s"`); written back as text. Use it as
/// `#[serde(with = "session_core::duration")]`.
///
/// ```
/// use std::time::Duration;
/// #[derive(serde::Deserialize)]
/// struct C { #[serde(with = "session_core::duration")] t: Duration }
/// let c: C = serde_json::from_str(r#"{"t": "250ms"}"#).unwrap();
/// assert_eq!(c.t, Duration::from_millis(250));
/// let c: C = serde_json::from_str(r#"{"t": 1.5}"#).unwrap();
/// assert_eq!(c.t, Duration::from_millis(1500));
/// ```
pub mod duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Seconds(f64),
        Text(String),
    }

    /// Deserializes seconds or text.
    ///
    /// # Errors
    ///
    /// A negative or non-finite number, or text that is not a duration.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        match Raw::deserialize(d)? {
            Raw::Seconds(secs) => Duration::try_from_secs_f64(secs).map_err(|_| {
                serde::de::Error::custom(format!("{secs} is not a duration in seconds (0 or more)"))
            }),
            Raw::Text(text) => humantime::parse_duration(&text).map_err(|e| {
                serde::de::Error::custom(format!(
                    "{text:?} is not a duration like \"5s\" or \"250ms\": {e}"
                ))
            }),
        }
    }

    /// Serializes as text, e.g. `"5s"`.
    ///
    /// # Errors
    ///
    /// Those of the serializer.
    pub fn serialize<S: Serializer>(duration: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*duration).to_string())
    }
}
