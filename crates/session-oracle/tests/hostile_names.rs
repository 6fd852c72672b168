//! Hostile table names are refused by the Oracle store's settings, the only
//! way to a `Statements` (the SQL builder) or an `OracleStore`, before any
//! SQL is built: from the builder, JSON and TOML alike. No database needed.

use session_core::Error;
use session_oracle::StoreSettings;

/// The shared list, plus a schema-qualified name: Oracle's store reads
/// `user_tables`, so it takes unqualified names only.
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
    for name in hostile_table_names() {
        refused(StoreSettings::new().table_name(&name), &name);
        refused(
            StoreSettings::from_value(serde_json::json!({"litestar": {"session_table": name}})),
            &name,
        );
        let json = serde_json::json!({"litestar": {"session_table": name}}).to_string();
        refused(StoreSettings::from_json_str(&json), &name);
        let toml = format!(
            "[litestar]\nsession_table = {}\n",
            serde_json::to_string(&name).unwrap()
        );
        refused(StoreSettings::from_toml_str(&toml), &name);
    }
    // The same shape, valid, passes: the check is not refusing everything.
    assert!(StoreSettings::new().table_name("hostile_ok").is_ok());
}
