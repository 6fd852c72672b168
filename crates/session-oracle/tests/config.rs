//! `OracleConfig`: its own fields (JSON, TOML), and SQLSpec's extension
//! config with exactly `session_table` and `in_memory`.

use std::time::Duration;

use session_core::{Error, StoreConfig};
use session_oracle::OracleConfig;

fn field_of(err: &Error) -> &str {
    match err {
        Error::InvalidConfig { field, .. } => field,
        other => panic!("expected InvalidConfig, got {other:?}"),
    }
}

#[test]
fn defaults() {
    for doc in [
        "{}",
        "null",
        r#"{"litestar": {}}"#,
        r#"{"litestar": {}, "other": {"x": 1}}"#,
    ] {
        let s = OracleConfig::from_json_str(doc).unwrap();
        assert_eq!(s.table_name().unwrap().table(), "litestar_session");
        assert!(!s.in_memory);
        assert_eq!(s, OracleConfig::default());
    }
    let d = OracleConfig::default();
    assert_eq!(d.table, "litestar_session");
    assert_eq!(d.pool_size, 10);
    assert_eq!(d.pool_min, 0);
    assert_eq!(d.wait_timeout, Duration::from_secs(30));
    assert_eq!(d.connect_timeout, Duration::from_secs(30));
    assert!(d.test_on_checkout);
    assert_eq!(d.cleanup_batch_size, 1000);
    assert_eq!(
        OracleConfig::EXTENSION_KEYS,
        &["session_table", "in_memory"]
    );
}

#[test]
fn a_document_without_a_litestar_section_is_the_structs_own_fields() {
    // Other extensions' sections pass next to a `litestar` section (above);
    // without one, the document is read as OracleConfig's own fields, so an
    // unknown top-level key is refused by name.
    let err = OracleConfig::from_json_str(r#"{"other": {"x": 1}}"#).unwrap_err();
    assert!(err.to_string().contains("other"), "{err}");
}

#[test]
fn accepted_keys_are_read() {
    let s = OracleConfig::from_json_str(
        r#"{"litestar": {"session_table": "app_sessions", "in_memory": true}}"#,
    )
    .unwrap();
    assert_eq!(s.table_name().unwrap().table(), "app_sessions");
    assert!(s.in_memory);

    let s = OracleConfig::from_toml_str("[litestar]\nsession_table = \"t2\"\nin_memory = false\n")
        .unwrap();
    assert_eq!(s.table_name().unwrap().table(), "t2");
    assert!(!s.in_memory);
}

#[test]
fn own_fields_load_from_json_and_toml() {
    let expected = OracleConfig {
        table: "app_sessions".into(),
        in_memory: true,
        pool_size: 20,
        pool_min: 2,
        wait_timeout: Duration::from_millis(2500),
        connect_timeout: Duration::from_secs(10),
        test_on_checkout: false,
        cleanup_batch_size: 500,
    };
    let json = OracleConfig::from_json_str(
        r#"{"table": "app_sessions", "in_memory": true, "pool_size": 20, "pool_min": 2,
            "wait_timeout": 2.5, "connect_timeout": "10s", "test_on_checkout": false,
            "cleanup_batch_size": 500}"#,
    )
    .unwrap();
    assert_eq!(json, expected);
    let toml = OracleConfig::from_toml_str(
        "table = \"app_sessions\"\nin_memory = true\npool_size = 20\npool_min = 2\n\
         wait_timeout = \"2500ms\"\nconnect_timeout = 10\ntest_on_checkout = false\n\
         cleanup_batch_size = 500\n",
    )
    .unwrap();
    assert_eq!(toml, expected);
    // SQLSpec's name of the table field is an alias; unset fields keep
    // their defaults.
    let alias = OracleConfig::from_json_str(r#"{"session_table": "app_sessions"}"#).unwrap();
    assert_eq!(alias.table, "app_sessions");
    assert_eq!(alias.pool_size, 10);
    // What serializes loads back.
    let text = serde_json::to_string(&expected).unwrap();
    assert_eq!(OracleConfig::from_json_str(&text).unwrap(), expected);
}

#[test]
fn unknown_fields_are_refused_by_name() {
    // The old names of renamed fields are unknown now.
    for name in [
        "pool_max",
        "connection_timeout",
        "test_on_check_out",
        "user",
        "password",
    ] {
        let err = OracleConfig::from_json_str(&format!(r#"{{"{name}": 1}}"#)).unwrap_err();
        assert!(err.to_string().contains(name), "{name}: {err}");
    }
    let err = OracleConfig::from_toml_str("pool_sise = 4\n").unwrap_err();
    assert!(err.to_string().contains("pool_sise"), "{err}");
}

#[test]
fn a_bad_value_names_its_field() {
    for (doc, field) in [
        (r#"{"pool_size": "ten"}"#, "pool_size"),
        (r#"{"pool_size": -1}"#, "pool_size"),
        (r#"{"in_memory": "yes"}"#, "in_memory"),
        (r#"{"wait_timeout": "soon"}"#, "wait_timeout"),
        (r#"{"connect_timeout": -3}"#, "connect_timeout"),
        (r#"{"pool_size": 0}"#, "pool_size"),
        (r#"{"pool_size": 2, "pool_min": 5}"#, "pool_min"),
        (r#"{"wait_timeout": 0}"#, "wait_timeout"),
        (r#"{"connect_timeout": "0s"}"#, "connect_timeout"),
        (r#"{"cleanup_batch_size": 0}"#, "cleanup_batch_size"),
    ] {
        let err = OracleConfig::from_json_str(doc).unwrap_err();
        assert_eq!(field_of(&err), field, "{doc}: {err}");
    }
    let err = OracleConfig::from_json_str(r#"{"table": "x; DROP TABLE y"}"#).unwrap_err();
    assert!(matches!(err, Error::InvalidIdentifier { .. }), "{err:?}");
}

#[test]
fn other_keys_are_refused_by_name() {
    let err = OracleConfig::from_json_str(
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
        let err = OracleConfig::from_json_str(doc).unwrap_err();
        assert!(matches!(err, Error::InvalidConfig { .. }), "{doc}: {err:?}");
        assert_eq!(
            err.to_string(),
            format!(
                "invalid configuration `litestar.in_memory`: expected true or false, found {found}"
            )
        );
    }
    let err = OracleConfig::from_toml_str("[litestar]\nin_memory = \"yes\"\n").unwrap_err();
    assert!(err.to_string().contains("litestar.in_memory"), "{err}");
}

#[test]
fn session_table_must_be_a_string() {
    let err = OracleConfig::from_json_str(r#"{"litestar": {"session_table": 5}}"#).unwrap_err();
    assert!(err.to_string().contains("litestar.session_table"), "{err}");
}

#[test]
fn fields_are_set_directly() {
    let s = OracleConfig {
        table: "custom".into(),
        in_memory: true,
        ..OracleConfig::default()
    };
    assert_eq!(s.table_name().unwrap().table(), "custom");
    assert!(s.in_memory);
    s.validate().unwrap();
}

#[test]
fn a_table_name_with_sql_in_it_is_refused_before_any_sql_is_built() {
    // Moved from tests/sql.rs.
    let with_table = |name: &str| OracleConfig {
        table: name.into(),
        ..OracleConfig::default()
    };
    for name in [
        "sessions; DROP TABLE users",
        "sessions--",
        "x' OR '1'='1",
        "\"Quoted\"",
        "owner.sessions",
        "",
    ] {
        let err = with_table(name).table_name().unwrap_err();
        assert!(
            matches!(err, Error::InvalidIdentifier { .. }),
            "{name:?}: {err}"
        );
        let doc = serde_json::json!({"litestar": {"session_table": name}});
        let err = OracleConfig::from_value(doc).unwrap_err();
        assert!(
            matches!(err, Error::InvalidIdentifier { .. }),
            "{name:?}: {err}"
        );
    }
    // The index name derived from the table must fit the workspace's 63.
    assert!(with_table(&"s".repeat(48)).table_name().is_ok());
    let err = with_table(&"s".repeat(49)).table_name().unwrap_err();
    assert!(err.to_string().contains("idx_"), "{err}");
}

#[test]
fn oracle_reserved_words_are_refused_naming_the_word() {
    // Unquoted, Oracle refuses these as table names (ORA-00903) only when
    // the DDL runs: the config refuses them first, in every form.
    for (name, word) in [
        ("session", "SESSION"),
        ("user", "USER"),
        ("Level", "LEVEL"),
        ("size", "SIZE"),
        ("comment", "COMMENT"),
    ] {
        let in_code = OracleConfig {
            table: name.into(),
            ..OracleConfig::default()
        };
        for err in [
            in_code.validate().unwrap_err(),
            in_code.table_name().unwrap_err(),
            OracleConfig::from_json_str(&format!(r#"{{"table": "{name}"}}"#)).unwrap_err(),
            OracleConfig::from_json_str(&format!(
                r#"{{"litestar": {{"session_table": "{name}"}}}}"#
            ))
            .unwrap_err(),
        ] {
            assert!(matches!(err, Error::InvalidIdentifier { .. }), "{err:?}");
            let text = err.to_string();
            assert!(
                text.contains(&format!("`{word}` is an Oracle reserved word")),
                "{text}"
            );
        }
        assert!(session_oracle::ORACLE_RESERVED_WORDS.contains(&word));
    }
    // Names that merely contain one pass.
    for name in ["sessions", "user_sessions", "session_store"] {
        let config = OracleConfig {
            table: name.into(),
            ..OracleConfig::default()
        };
        config.validate().unwrap();
    }
}
