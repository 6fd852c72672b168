//! Property tests of every parser a configuration file or a request reaches:
//! the extension config (JSON and TOML), table names, store keys and
//! session ids (session-tower's `tests/config_proptests.rs` does the same
//! for `SessionConfig`). No input panics, and every
//! rejection is a typed [`Error`] naming what it refused.
//!
//! Each property runs 2,000 cases; `PROPTEST_CASES=200000` runs a long one:
//!
//! ```text
//! PROPTEST_CASES=200000 cargo test --release -p session-core --test proptests
//! ```

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestCaseError;
use serde_json::{Map, Value};
use session_core::{
    Error, ExtensionConfig, MAX_KEY_BYTES, TableName, is_well_formed_session_id,
    validate_identifier, validate_key,
};
use session_test_support::documents::{
    config, edits, json_value, mutated, object_of, to_toml, tricky_string,
};

/// Keys the adapters accept, keys they do not, and odd ones.
const EXTENSION_KEYS: &[&str] = &[
    "session_table",
    "fillfactor",
    "autovacuum_vacuum_scale_factor",
    "autovacuum_analyze_scale_factor",
    "in_memory",
    "fillfactr",
    "",
    "litestar",
    "session_table\0",
    "ѕession_table",
];

/// An extension-config document: mostly `{"litestar": {...}}`, sometimes
/// anything at all.
fn extension_doc() -> impl Strategy<Value = Value> {
    prop_oneof![
        6 => object_of(EXTENSION_KEYS).prop_map(|section| {
            let mut top = Map::new();
            top.insert("litestar".into(), Value::Object(section));
            Value::Object(top)
        }),
        1 => json_value(),
        1 => (json_value(), json_value()).prop_map(|(section, other)| {
            let mut top = Map::new();
            top.insert("litestar".into(), section);
            top.insert("other_ext".into(), other);
            Value::Object(top)
        }),
    ]
}

/// An extension-config rejection: one of the typed config errors.
fn assert_config_error(err: &Error) {
    match err {
        Error::InvalidConfig { field, reason } => {
            assert!(!field.is_empty() && !reason.is_empty(), "{err:?}")
        }
        Error::UnknownConfigKeys {
            unknown, accepted, ..
        } => assert!(!unknown.is_empty() && !accepted.is_empty(), "{err:?}"),
        Error::InvalidIdentifier { reason, .. } => assert!(!reason.is_empty(), "{err:?}"),
        other => panic!("not a configuration error: {other:?}"),
    }
}

/// Reads every setting an adapter reads, checking each answer.
fn exercise(cfg: &ExtensionConfig) {
    for result in [cfg.session_table(63), cfg.qualified_session_table(63)] {
        match result {
            Ok(table) => {
                let plain = |s: &str| validate_identifier(s).is_ok();
                assert!(plain(table.table()), "{table:?}");
                assert!(table.qualified().len() <= 127);
                assert!(validate_identifier(&table.index_name()).is_ok());
            }
            Err(e) => assert_config_error(&e),
        }
    }
    if let Err(e) = cfg.bool("in_memory", false) {
        assert_config_error(&e);
    }
    match cfg.int_in("fillfactor", 10..=100, 80) {
        Ok(n) => assert!((10..=100).contains(&n)),
        Err(e) => assert_config_error(&e),
    }
    match cfg.float_in("autovacuum_vacuum_scale_factor", 0.0..=1.0, 0.05) {
        Ok(f) => assert!((0.0..=1.0).contains(&f)),
        Err(e) => assert_config_error(&e),
    }
}

fn check_extension(result: Result<ExtensionConfig, Error>) -> bool {
    match result {
        Ok(cfg) => {
            exercise(&cfg);
            true
        }
        Err(e) => {
            assert_config_error(&e);
            false
        }
    }
}

const ACCEPTED: &[&str] = &["session_table", "fillfactor", "in_memory"];

/// Store keys: any text, short ASCII with NUL and controls, and keys of
/// 8 bytes either side of the limit (one- or three-byte characters, NUL or
/// not), so that both answers of the validator come up often.
fn key_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,300}",
        "[\\x00-\\x7f]{0,10}",
        (
            MAX_KEY_BYTES - 8..=MAX_KEY_BYTES + 8,
            any::<bool>(),
            any::<bool>()
        )
            .prop_map(|(len, wide, nul)| {
                // Exactly `len` bytes: a NUL first if `nul`, three-byte
                // characters if `wide`, then ASCII.
                let mut key = String::new();
                if nul {
                    key.push('\0');
                }
                while wide && key.len() + 3 <= len {
                    key.push('€');
                }
                while key.len() < len {
                    key.push('a');
                }
                key
            }),
    ]
}

/// The contract of `validate_key`, both ways: a key is accepted if and
/// only if it is non-empty, at most [`MAX_KEY_BYTES`] bytes and free of
/// NUL; a refusal is `InvalidKey` with a reason.
fn check_key(validate: fn(&str) -> Result<(), Error>, key: &str) -> Result<(), String> {
    let valid = !key.is_empty() && key.len() <= MAX_KEY_BYTES && !key.contains('\0');
    match (validate(key), valid) {
        (Ok(()), true) => Ok(()),
        (Ok(()), false) => Err(format!("{key:?} ({} bytes) accepted", key.len())),
        (Err(Error::InvalidKey { reason }), false) if !reason.is_empty() => Ok(()),
        (Err(Error::InvalidKey { reason }), true) => {
            Err(format!("{key:?} ({} bytes) refused: {reason}", key.len()))
        }
        (Err(other), _) => Err(format!("{key:?}: not InvalidKey with a reason: {other:?}")),
    }
}

/// The property fails on a validator that refuses everything, one that
/// accepts everything, one off by one at the limit and one that lets NUL
/// through: each is caught by some of 2,000 keys of the strategy (drawn
/// with a fixed seed).
#[test]
fn a_one_sided_or_off_by_one_validator_is_caught() {
    fn refuses_all(_: &str) -> Result<(), Error> {
        Err(Error::InvalidKey {
            reason: "no".into(),
        })
    }
    fn accepts_all(_: &str) -> Result<(), Error> {
        Ok(())
    }
    fn one_byte_short(key: &str) -> Result<(), Error> {
        if key.len() >= MAX_KEY_BYTES {
            return Err(Error::InvalidKey {
                reason: "too long".into(),
            });
        }
        validate_key(key)
    }
    fn lets_nul_through(key: &str) -> Result<(), Error> {
        validate_key(&key.replace('\0', "x"))
    }
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let keys: Vec<String> = (0..2000)
        .map(|_| key_strategy().new_tree(&mut runner).unwrap().current())
        .collect();
    for key in &keys {
        check_key(validate_key, key).unwrap();
    }
    for (name, broken) in [
        (
            "refuses everything",
            refuses_all as fn(&str) -> Result<(), Error>,
        ),
        ("accepts everything", accepts_all),
        ("refuses 255 bytes", one_byte_short),
        ("lets NUL through", lets_nul_through),
    ] {
        assert!(
            keys.iter().any(|key| check_key(broken, key).is_err()),
            "a validator that {name} passes the property"
        );
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn extension_config_from_any_document(doc in extension_doc()) {
        let direct = check_extension(ExtensionConfig::from_value(doc.clone(), ACCEPTED));
        // The same document as JSON text parses the same way.
        let text = serde_json::to_string(&doc).unwrap();
        prop_assert_eq!(direct, check_extension(ExtensionConfig::from_json_str(&text, ACCEPTED)));
        // And as TOML, where TOML can say it.
        if let Some(toml) = to_toml(&doc) {
            check_extension(ExtensionConfig::from_toml_str(&toml, ACCEPTED));
        }
    }

    #[test]
    fn extension_config_from_near_miss_text(doc in extension_doc(), edits in edits()) {
        let json = mutated(serde_json::to_string(&doc).unwrap(), edits.clone());
        check_extension(ExtensionConfig::from_json_str(&json, ACCEPTED));
        if let Some(toml) = to_toml(&doc) {
            check_extension(ExtensionConfig::from_toml_str(&mutated(toml, edits), ACCEPTED));
        }
    }

    #[test]
    fn extension_config_from_any_text(text in "\\PC{0,200}|[\\[\\]{}\"=:,.a-z_0-9 \\n]{0,80}") {
        check_extension(ExtensionConfig::from_json_str(&text, ACCEPTED));
        check_extension(ExtensionConfig::from_toml_str(&text, ACCEPTED));
    }

    #[test]
    fn identifiers_are_exactly_the_plain_ones(name in tricky_string()) {
        let plain = !name.is_empty()
            && name.len() <= 63
            && name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        match validate_identifier(&name) {
            Ok(()) => prop_assert!(plain, "{:?} accepted", name),
            Err(Error::InvalidIdentifier { name: refused, .. }) => {
                prop_assert!(!plain, "{:?} refused", name);
                prop_assert_eq!(refused, name.clone());
            }
            Err(other) => panic!("not InvalidIdentifier: {other:?}"),
        }
        // A table name never lets through what the identifier check refuses.
        if let Ok(table) = TableName::new_qualified(&name, 63) {
            for part in table.qualified().split('.') {
                prop_assert!(validate_identifier(part).is_ok());
            }
        }
    }

    #[test]
    fn store_keys_are_checked_not_trusted(key in key_strategy()) {
        if let Err(why) = check_key(validate_key, &key) {
            return Err(TestCaseError::fail(why));
        }
    }

    #[test]
    fn session_ids_are_exactly_lowercase_hex_of_the_length(
        id in "[0-9a-fA-F]{60,68}|\\PC{0,70}|[0-9a-f]{64}",
        bytes in prop_oneof![Just(32usize), 0usize..200],
    ) {
        let expected = id.len() == 2 * bytes && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        prop_assert_eq!(is_well_formed_session_id(&id, bytes), expected);
    }
}
