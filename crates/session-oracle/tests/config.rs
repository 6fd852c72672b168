//! Extension config: exactly `session_table` and `in_memory`.

use session_core::Error;
use session_oracle::{ACCEPTED_KEYS, StoreSettings};

#[test]
fn defaults() {
    for doc in ["{}", r#"{"litestar": {}}"#, r#"{"other": {"x": 1}}"#] {
        let s = StoreSettings::from_json_str(doc).unwrap();
        assert_eq!(s.table().table(), "litestar_session");
        assert!(!s.is_in_memory());
    }
    assert_eq!(StoreSettings::new(), StoreSettings::default());
    assert_eq!(ACCEPTED_KEYS, &["session_table", "in_memory"]);
}

#[test]
fn accepted_keys_are_read() {
    let s = StoreSettings::from_json_str(
        r#"{"litestar": {"session_table": "app_sessions", "in_memory": true}}"#,
    )
    .unwrap();
    assert_eq!(s.table().table(), "app_sessions");
    assert!(s.is_in_memory());

    let s = StoreSettings::from_toml_str("[litestar]\nsession_table = \"t2\"\nin_memory = false\n")
        .unwrap();
    assert_eq!(s.table().table(), "t2");
    assert!(!s.is_in_memory());
}

#[test]
fn other_keys_are_refused_by_name() {
    let err = StoreSettings::from_json_str(
        r#"{"litestar": {"session_table": "s", "fillfactor": 80, "inmemory": true}}"#,
    )
    .unwrap_err();
    let Error::UnknownConfigKeys {
        unknown, accepted, ..
    } = &err
    else {
        panic!("expected UnknownConfigKeys, got {err:?}");
    };
    assert_eq!(unknown, &["fillfactor", "inmemory"]);
    assert_eq!(accepted, &["session_table", "in_memory"]);
    assert!(err.to_string().contains("`fillfactor`"), "{err}");
}

#[test]
fn in_memory_must_be_a_boolean() {
    for (doc, found) in [
        (
            r#"{"litestar": {"in_memory": "yes"}}"#,
            "the string \"yes\"",
        ),
        (r#"{"litestar": {"in_memory": 1}}"#, "the number 1"),
        (
            r#"{"litestar": {"in_memory": "true"}}"#,
            "the string \"true\"",
        ),
    ] {
        let err = StoreSettings::from_json_str(doc).unwrap_err();
        assert!(matches!(err, Error::InvalidConfig { .. }), "{doc}: {err:?}");
        assert_eq!(
            err.to_string(),
            format!(
                "invalid configuration `litestar.in_memory`: expected true or false, found {found}"
            )
        );
    }
    let err = StoreSettings::from_toml_str("[litestar]\nin_memory = \"yes\"\n").unwrap_err();
    assert!(err.to_string().contains("litestar.in_memory"), "{err}");
}

#[test]
fn session_table_must_be_a_string() {
    let err = StoreSettings::from_json_str(r#"{"litestar": {"session_table": 5}}"#).unwrap_err();
    assert!(err.to_string().contains("litestar.session_table"), "{err}");
}

#[test]
fn builder_methods() {
    let s = StoreSettings::new()
        .table_name("custom")
        .unwrap()
        .in_memory(true);
    assert_eq!(s.table().table(), "custom");
    assert!(s.is_in_memory());
}
