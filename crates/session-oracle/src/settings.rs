//! Store settings: the table and the In-Memory flag, from code or from
//! SQLSpec's extension config.

use serde_json::Value;
use session_core::{DEFAULT_SESSION_TABLE, Error, ExtensionConfig, TableName};

use crate::MAX_IDENTIFIER_LEN;

/// The extension-config key that turns on the In-Memory column store.
pub const IN_MEMORY_KEY: &str = "in_memory";

/// The keys of the `litestar` extension section this store accepts; any
/// other key is refused by name.
pub const ACCEPTED_KEYS: &[&str] = &[session_core::SESSION_TABLE_KEY, IN_MEMORY_KEY];

/// What an [`OracleStore`](crate::OracleStore) stores where: the session
/// table (default `litestar_session`) and whether it is created `INMEMORY`
/// (default false).
///
/// ```
/// use session_oracle::StoreSettings;
///
/// let settings = StoreSettings::from_json_str(
///     r#"{"litestar": {"session_table": "app_sessions", "in_memory": true}}"#,
/// )
/// .unwrap();
/// assert_eq!(settings.table().table(), "app_sessions");
/// assert!(settings.is_in_memory());
///
/// let err = StoreSettings::from_json_str(r#"{"litestar": {"fillfactor": 80}}"#).unwrap_err();
/// assert!(err.to_string().contains("`fillfactor`"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreSettings {
    table: TableName,
    in_memory: bool,
}

impl Default for StoreSettings {
    fn default() -> Self {
        StoreSettings {
            table: default_table(),
            in_memory: false,
        }
    }
}

fn default_table() -> TableName {
    match TableName::new(DEFAULT_SESSION_TABLE, MAX_IDENTIFIER_LEN) {
        Ok(table) => table,
        // The default is a valid identifier; this arm is never taken, and
        // exists only so no `expect` is needed.
        Err(_) => unreachable!("`litestar_session` is a valid identifier"),
    }
}

impl StoreSettings {
    /// The defaults: table `litestar_session`, not In-Memory.
    pub fn new() -> Self {
        Self::default()
    }

    /// Uses the table `name`, validated as an Oracle identifier before any
    /// SQL is built from it (see [`MAX_IDENTIFIER_LEN`]).
    pub fn table_name(mut self, name: &str) -> Result<Self, Error> {
        self.table = TableName::new(name, MAX_IDENTIFIER_LEN)?;
        Ok(self)
    }

    /// Uses an already validated table name.
    pub fn with_table(mut self, table: TableName) -> Self {
        self.table = table;
        self
    }

    /// Creates the table with the `INMEMORY` clause (Oracle Database
    /// In-Memory: Enterprise Edition and a separate license).
    pub fn in_memory(mut self, in_memory: bool) -> Self {
        self.in_memory = in_memory;
        self
    }

    /// Reads `session_table` and `in_memory` from an extension config,
    /// refusing any other key by name (a config parsed for another adapter
    /// may hold keys this store does not honour).
    pub fn from_extension_config(config: &ExtensionConfig) -> Result<Self, Error> {
        config.ensure_only(ACCEPTED_KEYS)?;
        Ok(StoreSettings {
            table: config.session_table(MAX_IDENTIFIER_LEN)?,
            in_memory: config.bool(IN_MEMORY_KEY, false)?,
        })
    }

    /// Parses a JSON extension config (`{"litestar": {...}}`).
    pub fn from_json_str(json: &str) -> Result<Self, Error> {
        Self::from_extension_config(&ExtensionConfig::from_json_str(json, ACCEPTED_KEYS)?)
    }

    /// Parses a TOML extension config (`[litestar]` table).
    pub fn from_toml_str(toml: &str) -> Result<Self, Error> {
        Self::from_extension_config(&ExtensionConfig::from_toml_str(toml, ACCEPTED_KEYS)?)
    }

    /// Checks an already parsed extension config document.
    pub fn from_value(value: Value) -> Result<Self, Error> {
        Self::from_extension_config(&ExtensionConfig::from_value(value, ACCEPTED_KEYS)?)
    }

    /// The session table.
    pub fn table(&self) -> &TableName {
        &self.table
    }

    /// Whether the table is created `INMEMORY`.
    pub fn is_in_memory(&self) -> bool {
        self.in_memory
    }
}
