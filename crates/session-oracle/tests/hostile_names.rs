//! Hostile table names are refused by the Oracle store's settings, the only
//! way to a `Statements` (the SQL builder) or an `OracleStore`, before any
//! SQL is built: from the builder, JSON and TOML alike. No database needed.

use session_core::Error;
use session_oracle::StoreSettings;

fn hostile_table_names() -> Vec<String> {
    vec![
        "hostile\"; DROP TABLE users; --".into(),
        "hostile'; DROP TABLE users; --".into(),
        "hostile;".into(),
        "hostile sessions".into(),
        " hostile".into(),
        "hostile\t".into(),
        "hostile\n".into(),
        "hostile--".into(),
        "hostile/**/".into(),
        "hostile\0".into(),
        "һostile".into(),         // Cyrillic shha
        "hostіle".into(),         // Ukrainian i
        "ｈｏｓｔｉｌｅ".into(),  // full width
        "host\u{200b}ile".into(), // zero-width space
        "hostile\u{301}".into(),  // combining accent
        "1hostile".into(),
        "hostile-table".into(),
        "\"hostile\"".into(),
        "hostile@dblink".into(),
        "owner.hostile".into(),
        format!("hostile{}", "x".repeat(57)), // 64 characters
        format!("hostile{}", "x".repeat(10_000)),
        String::new(),
    ]
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
