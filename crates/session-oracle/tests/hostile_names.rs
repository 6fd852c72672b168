//! Hostile table names are refused by the Oracle store's config, the only
//! way to the SQL builder or an `OracleStore`, before any SQL is built: set
//! in code, in the config's own fields or SQLSpec's extension config, JSON
//! and TOML alike. No database needed.

use session_core::{Error, StoreConfig};
use session_oracle::OracleConfig;

/// The shared list, plus a schema-qualified name: the Oracle config takes
/// unqualified names only (its SQL would put the index and the catalog
/// lookups in the table's schema, but a schema is not configurable).
fn hostile_table_names() -> Vec<String> {
    let mut names = session_conformance::hostile_table_names();
    names.push("owner.hostile".into());
    names
}

fn refused<T: std::fmt::Debug>(result: Result<T, Error>, name: &str) {
    match result {
        Err(Error::InvalidIdentifier { .. }) => {}
        other => panic!("{name:?}: expected InvalidIdentifier, got {other:?}"),
    }
}

#[test]
fn hostile_table_names_are_refused_before_any_sql_is_built() {
    let in_code = |name: &str| OracleConfig {
        table: name.into(),
        ..OracleConfig::default()
    };
    for name in hostile_table_names() {
        refused(in_code(&name).table_name(), &name);
        refused(in_code(&name).validate(), &name);
        refused(
            OracleConfig::from_value(serde_json::json!({"litestar": {"session_table": name}})),
            &name,
        );
        refused(
            OracleConfig::from_value(serde_json::json!({"table": name})),
            &name,
        );
        let json = serde_json::json!({"litestar": {"session_table": name}}).to_string();
        refused(OracleConfig::from_json_str(&json), &name);
        let toml = format!(
            "[litestar]\nsession_table = {}\n",
            serde_json::to_string(&name).unwrap()
        );
        refused(OracleConfig::from_toml_str(&toml), &name);
        let toml = format!("table = {}\n", serde_json::to_string(&name).unwrap());
        refused(OracleConfig::from_toml_str(&toml), &name);
    }
    // The same shape, valid, passes: the check is not refusing everything.
    assert!(in_code("hostile_ok").table_name().is_ok());
}
