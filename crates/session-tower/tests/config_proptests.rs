//! Property tests of `SessionConfig` parsing (JSON and TOML, the Rust
//! names and Litestar's spellings): no input panics, and every rejection
//! is an [`Error::InvalidConfig`] naming a field.
//!
//! Each property runs 2,000 cases; `PROPTEST_CASES=200000` runs a long one:
//!
//! ```text
//! PROPTEST_CASES=200000 cargo test --release -p session-tower --test config_proptests
//! ```

use proptest::prelude::*;
use serde_json::{Map, Value};
use session_core::{Error, MAX_KEY_BYTES};
use session_test_support::documents::{config, edits, mutated, object_of, to_toml};
use session_tower::SessionConfig;

/// The fields, in both spellings, Litestar's ignored `exclude_opt_key`,
/// and one unknown.
const SESSION_FIELDS: &[&str] = &[
    "cookie_name",
    "key",
    "max_age",
    "path",
    "domain",
    "secure",
    "http_only",
    "httponly",
    "same_site",
    "samesite",
    "session_id_bytes",
    "renew_on_access",
    "exclude",
    "exclude_opt_key",
    "scopes",
    "store_label",
    "store",
    "hash_session_ids",
    "max_session_bytes",
    "litestar_compatible",
    "unknown_field",
];

/// Litestar's spelling of each renamed field.
const LITESTAR_SPELLINGS: &[(&str, &str)] = &[
    ("cookie_name", "key"),
    ("http_only", "httponly"),
    ("same_site", "samesite"),
    ("store_label", "store"),
];

/// The fields in the Rust spelling only (no field twice once renamed).
const RUST_FIELDS: &[&str] = &[
    "cookie_name",
    "max_age",
    "path",
    "domain",
    "secure",
    "http_only",
    "same_site",
    "session_id_bytes",
    "renew_on_access",
    "exclude",
    "scopes",
    "store_label",
    "hash_session_ids",
    "max_session_bytes",
    "litestar_compatible",
];

/// The document with every renamed field in Litestar's spelling.
fn in_litestar_spelling(fields: &Map<String, Value>) -> Map<String, Value> {
    fields
        .iter()
        .map(|(k, v)| {
            let k = LITESTAR_SPELLINGS
                .iter()
                .find(|(rust, _)| rust == k)
                .map_or(k.as_str(), |(_, old)| old);
            (k.to_owned(), v.clone())
        })
        .collect()
}

/// A `SessionConfig` rejection names a field; an accepted config holds
/// only valid values.
fn check_session(result: Result<SessionConfig, Error>) -> bool {
    match result {
        Ok(c) => {
            let name_chars = c.cookie_name().chars().count();
            assert!((1..=256).contains(&name_chars), "{:?}", c.cookie_name());
            assert!(c.max_age().as_secs() >= 1);
            let id = c
                .generate_session_id()
                .expect("an id from an accepted config");
            assert!(c.is_well_formed_session_id(&id));
            assert!(id.len() <= MAX_KEY_BYTES);
            for p in ["/", "/health", "/\u{0}"] {
                let _ = c.is_excluded(p);
            }
            true
        }
        Err(Error::InvalidConfig { field, reason }) => {
            assert!(!field.is_empty() && !reason.is_empty());
            false
        }
        Err(other) => panic!("not InvalidConfig: {other:?}"),
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn session_config_from_any_document(fields in object_of(SESSION_FIELDS)) {
        let doc = Value::Object(fields);
        let text = serde_json::to_string(&doc).unwrap();
        let from_json = check_session(SessionConfig::from_json_str(&text));
        if let Some(toml) = to_toml(&doc) {
            // TOML has no null, so only documents without one compare.
            let from_toml = check_session(SessionConfig::from_toml_str(&toml));
            if !text.contains("null") && !text.contains('.') {
                prop_assert_eq!(from_json, from_toml, "json {} / toml {}", text, toml);
            }
        }
    }

    #[test]
    fn both_spellings_give_the_same_config(fields in object_of(RUST_FIELDS)) {
        let rust = serde_json::to_string(&fields).unwrap();
        let litestar = serde_json::to_string(&in_litestar_spelling(&fields)).unwrap();
        match (SessionConfig::from_json_str(&rust), SessionConfig::from_json_str(&litestar)) {
            (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
            (Err(_), Err(_)) => {}
            (a, b) => prop_assert!(false, "{} -> {:?}\n{} -> {:?}", rust, a, litestar, b),
        }
    }

    #[test]
    fn session_config_from_near_miss_text(fields in object_of(SESSION_FIELDS), edits in edits()) {
        let doc = Value::Object(fields);
        let json = mutated(serde_json::to_string(&doc).unwrap(), edits.clone());
        check_session(SessionConfig::from_json_str(&json));
        if let Some(toml) = to_toml(&doc) {
            check_session(SessionConfig::from_toml_str(&mutated(toml, edits)));
        }
    }

    #[test]
    fn session_config_from_any_text(text in "\\PC{0,200}|[\\[\\]{}\"=:,.a-z_0-9 \\n]{0,80}") {
        check_session(SessionConfig::from_json_str(&text));
        check_session(SessionConfig::from_toml_str(&text));
    }
}
