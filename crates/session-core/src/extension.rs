//! Extension config: the SQLSpec `{"litestar": {...}}` document.
//!
//! One JSON or TOML document configures a SQLSpec application and a store of
//! this workspace alike:
//!
//! ```json
//! {"litestar": {"session_table": "custom_sessions", "fillfactor": 90}}
//! ```
//!
//! Each adapter declares the keys of the `litestar` section it honours; any
//! other key is refused, naming it and the accepted ones. Other top-level
//! sections belong to other extensions and are ignored.

use std::ops::RangeInclusive;
use std::path::Path;

use serde_json::{Map, Value};

use crate::{Error, TableName};

/// The extension section this workspace reads.
pub const EXTENSION: &str = "litestar";

/// The key naming the session table.
pub const SESSION_TABLE_KEY: &str = "session_table";

/// The session table used when the config names none.
pub const DEFAULT_SESSION_TABLE: &str = "litestar_session";

/// The `litestar` section of an extension config, checked against the keys
/// an adapter accepts.
///
/// Values are read with the typed accessors, which name the key
/// (`litestar.fillfactor`) in every error.
///
/// ```
/// use session_core::ExtensionConfig;
/// let accepted = ["session_table", "fillfactor"];
/// let cfg = ExtensionConfig::from_json_str(
///     r#"{"litestar": {"session_table": "custom_sessions", "fillfactor": 90}}"#,
///     &accepted,
/// )
/// .unwrap();
/// assert_eq!(cfg.session_table(63).unwrap().table(), "custom_sessions");
/// assert_eq!(cfg.int_in("fillfactor", 10..=100, 80).unwrap(), 90);
///
/// let err = ExtensionConfig::from_json_str(r#"{"litestar": {"fill": 1}}"#, &accepted).unwrap_err();
/// assert!(err.to_string().contains("`fill`"));
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExtensionConfig {
    section: Map<String, Value>,
}

impl ExtensionConfig {
    /// The empty config: every key at its default.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses a JSON document, accepting only the `accepted` keys in its
    /// `litestar` section.
    pub fn from_json_str(json: &str, accepted: &[&str]) -> Result<Self, Error> {
        Self::from_value(
            crate::store_config::parse_json(json, "extension_config")?,
            accepted,
        )
    }

    /// Parses a TOML document (`[litestar]` table), accepting only the
    /// `accepted` keys in its `litestar` section.
    ///
    /// ```
    /// use session_core::ExtensionConfig;
    /// let cfg = ExtensionConfig::from_toml_str(
    ///     "[litestar]\nsession_table = \"app_sessions\"\n",
    ///     &["session_table"],
    /// )
    /// .unwrap();
    /// assert_eq!(cfg.session_table(63).unwrap().table(), "app_sessions");
    /// ```
    pub fn from_toml_str(text: &str, accepted: &[&str]) -> Result<Self, Error> {
        Self::from_value(
            crate::store_config::parse_toml(text, "extension_config")?,
            accepted,
        )
    }

    /// Reads a `.json` or `.toml` file (chosen by its extension).
    pub fn from_path(path: &Path, accepted: &[&str]) -> Result<Self, Error> {
        Self::from_value(crate::read_document(path)?, accepted)
    }

    /// Checks an already-parsed document.
    pub fn from_value(value: Value, accepted: &[&str]) -> Result<Self, Error> {
        let Value::Object(mut top) = value else {
            return Err(Error::invalid_config(
                "extension_config",
                format!(
                    "expected an object with a `{EXTENSION}` section, found {}",
                    kind(&value)
                ),
            ));
        };
        let section = match top.remove(EXTENSION) {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(section)) => section,
            Some(other) => {
                return Err(Error::invalid_config(
                    EXTENSION,
                    format!("expected an object, found {}", kind(&other)),
                ));
            }
        };
        let config = ExtensionConfig { section };
        config.ensure_only(accepted)?;
        Ok(config)
    }

    /// Refuses this config if its `litestar` section holds a key outside
    /// `accepted`, naming the unknown keys and the accepted ones.
    ///
    /// An adapter given an `ExtensionConfig` parsed for another adapter
    /// calls this with its own keys, so a PostgreSQL-only key never passes
    /// silently into a SQLite store.
    pub fn ensure_only(&self, accepted: &[&str]) -> Result<(), Error> {
        let mut unknown: Vec<String> = self
            .keys()
            .filter(|k| !accepted.contains(k))
            .map(str::to_owned)
            .collect();
        if unknown.is_empty() {
            return Ok(());
        }
        unknown.sort();
        Err(Error::UnknownConfigKeys {
            section: EXTENSION.into(),
            unknown,
            accepted: accepted.iter().map(|s| s.to_string()).collect(),
        })
    }

    /// The keys set in the `litestar` section.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.section.keys().map(String::as_str)
    }

    /// The raw value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.section.get(key).filter(|v| !v.is_null())
    }

    /// The session table (default `litestar_session`), validated for a
    /// backend whose identifiers are at most `backend_limit` characters.
    pub fn session_table(&self, backend_limit: usize) -> Result<TableName, Error> {
        TableName::new(&self.session_table_str()?, backend_limit)
    }

    /// The session table, which may be schema-qualified (`schema.table`).
    pub fn qualified_session_table(&self, backend_limit: usize) -> Result<TableName, Error> {
        TableName::new_qualified(&self.session_table_str()?, backend_limit)
    }

    fn session_table_str(&self) -> Result<String, Error> {
        match self.get(SESSION_TABLE_KEY) {
            None => Ok(DEFAULT_SESSION_TABLE.into()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(other) => Err(self.type_error(SESSION_TABLE_KEY, "a string", other)),
        }
    }

    /// A boolean key, or `default` when unset.
    pub fn bool(&self, key: &str, default: bool) -> Result<bool, Error> {
        match self.get(key) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => Err(self.type_error(key, "true or false", other)),
        }
    }

    /// An integer key within `range`, or `default` when unset.
    pub fn int_in(
        &self,
        key: &str,
        range: RangeInclusive<i64>,
        default: i64,
    ) -> Result<i64, Error> {
        self.number_in(key, range, default, "an integer", Value::as_i64)
    }

    /// A number key within `range`, or `default` when unset.
    pub fn float_in(
        &self,
        key: &str,
        range: RangeInclusive<f64>,
        default: f64,
    ) -> Result<f64, Error> {
        self.number_in(key, range, default, "a number", Value::as_f64)
    }

    fn number_in<T: PartialOrd + std::fmt::Display>(
        &self,
        key: &str,
        range: RangeInclusive<T>,
        default: T,
        kind_of_number: &str,
        read: fn(&Value) -> Option<T>,
    ) -> Result<T, Error> {
        let Some(value) = self.get(key) else {
            return Ok(default);
        };
        let expected = format!("{}..={}", range.start(), range.end());
        match read(value) {
            Some(n) if range.contains(&n) => Ok(n),
            Some(n) => Err(Error::invalid_config(
                format!("{EXTENSION}.{key}"),
                format!("{n} is out of range; expected {expected}"),
            )),
            None => Err(self.type_error(key, &format!("{kind_of_number} in {expected}"), value)),
        }
    }

    fn type_error(&self, key: &str, expected: &str, found: &Value) -> Error {
        Error::invalid_config(
            format!("{EXTENSION}.{key}"),
            format!("expected {expected}, found {}", kind(found)),
        )
    }
}

fn kind(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) if s.chars().count() > 40 => "a string".into(),
        Value::String(s) => format!("the string {s:?}"),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ACCEPTED: &[&str] = &["session_table", "in_memory"];

    #[test]
    fn defaults_when_section_missing() {
        for doc in [
            json!({}),
            json!({"litestar": null}),
            json!({"other_ext": {"x": 1}}),
        ] {
            let cfg = ExtensionConfig::from_value(doc, ACCEPTED).unwrap();
            assert_eq!(cfg.session_table(63).unwrap().table(), "litestar_session");
            assert!(!cfg.bool("in_memory", false).unwrap());
        }
    }

    #[test]
    fn unknown_keys_are_named_with_the_accepted_ones() {
        let err = ExtensionConfig::from_value(
            json!({"litestar": {"session_table": "s", "zeta": 1, "alpha": 2}}),
            ACCEPTED,
        )
        .unwrap_err();
        let Error::UnknownConfigKeys {
            unknown, accepted, ..
        } = &err
        else {
            panic!("{err:?}")
        };
        assert_eq!(unknown, &["alpha", "zeta"]);
        assert_eq!(accepted, &["session_table", "in_memory"]);
    }

    #[test]
    fn wrong_types_name_the_key() {
        let cfg = ExtensionConfig::from_value(json!({"litestar": {"in_memory": "yes"}}), ACCEPTED)
            .unwrap();
        let err = cfg.bool("in_memory", false).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid configuration `litestar.in_memory`: expected true or false, found the string \"yes\""
        );
        let cfg = ExtensionConfig::from_value(json!({"litestar": {"session_table": 5}}), ACCEPTED)
            .unwrap();
        assert!(cfg.session_table(63).is_err());
    }

    #[test]
    fn ranges_are_enforced() {
        let cfg = ExtensionConfig::from_value(
            json!({"litestar": {"fillfactor": 5, "scale": 1.5}}),
            &["fillfactor", "scale"],
        )
        .unwrap();
        let err = cfg.int_in("fillfactor", 10..=100, 80).unwrap_err();
        assert!(err.to_string().contains("litestar.fillfactor"), "{err}");
        assert!(cfg.float_in("scale", 0.0..=1.0, 0.05).is_err());
    }

    #[test]
    fn non_object_documents_are_refused() {
        assert!(ExtensionConfig::from_value(json!([1]), ACCEPTED).is_err());
        assert!(ExtensionConfig::from_value(json!({"litestar": 3}), ACCEPTED).is_err());
        assert!(ExtensionConfig::from_json_str("{", ACCEPTED).is_err());
        assert!(ExtensionConfig::from_toml_str("[litestar", ACCEPTED).is_err());
    }

    #[test]
    fn toml_and_json_agree() {
        let a = ExtensionConfig::from_toml_str(
            "[litestar]\nsession_table = \"t\"\nin_memory = true\n",
            ACCEPTED,
        )
        .unwrap();
        let b = ExtensionConfig::from_json_str(
            r#"{"litestar": {"session_table": "t", "in_memory": true}}"#,
            ACCEPTED,
        )
        .unwrap();
        assert_eq!(a, b);
    }
}
