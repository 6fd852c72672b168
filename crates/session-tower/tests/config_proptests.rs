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
use session_tower::SessionConfig;

/// 2,000 cases, or `PROPTEST_CASES` for a long run.
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000);
    ProptestConfig {
        cases,
        // No regression files in the source tree; failures print their input.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

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

/// Strings that hit the edges: identifiers, lookalikes, SQL, controls,
/// regexes, huge ones.
fn tricky_string() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[a-z_][a-z0-9_]{0,70}",
        "[a-z_]{1,10}\\.[a-z_]{1,10}",
        Just("sessions; DROP TABLE users; --".to_owned()),
        Just("ѕessions".to_owned()),
        Just("a\"b".to_owned()),
        Just("(a+)+$".to_owned()),
        Just("[".to_owned()),
        Just("lax".to_owned()),
        Just("strict".to_owned()),
        Just("none".to_owned()),
        Just("http".to_owned()),
        Just("websocket".to_owned()),
        "\\PC{0,300}",
        "[\\x00-\\x1f;= ]{0,10}",
    ]
}

fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1000i64..1000).prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(Value::Number)),
        (-2.0f64..2.0).prop_map(Value::from),
    ]
}

/// Any JSON value, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number(),
        tricky_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(tricky_string(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// An object whose keys come mostly from `keys`, with arbitrary values.
fn object_of(keys: &'static [&'static str]) -> impl Strategy<Value = Map<String, Value>> {
    let key = prop_oneof![
        4 => prop::sample::select(keys).prop_map(str::to_owned),
        1 => tricky_string(),
    ];
    prop::collection::btree_map(key, json_value(), 0..8).prop_map(|m| m.into_iter().collect())
}

/// A TOML rendering of a JSON value, as far as TOML can express it
/// (`None` for nulls and non-object top levels).
fn to_toml(doc: &Value) -> Option<String> {
    fn inline(v: &Value) -> Option<String> {
        Some(match v {
            Value::Null => return None,
            Value::Bool(b) => b.to_string(),
            Value::Number(n) if n.is_f64() => format!("{:?}", n.as_f64()?),
            Value::Number(n) => n.to_string(),
            // A JSON string literal is a TOML basic string, escapes included.
            Value::String(s) => serde_json::to_string(s).ok()?,
            Value::Array(items) => format!(
                "[{}]",
                items
                    .iter()
                    .map(inline)
                    .collect::<Option<Vec<_>>>()?
                    .join(", ")
            ),
            Value::Object(map) => format!(
                "{{{}}}",
                map.iter()
                    .map(|(k, v)| Some(format!(
                        "{} = {}",
                        serde_json::to_string(k).ok()?,
                        inline(v)?
                    )))
                    .collect::<Option<Vec<_>>>()?
                    .join(", ")
            ),
        })
    }
    let Value::Object(top) = doc else { return None };
    let mut out = String::new();
    for (key, value) in top {
        match value {
            Value::Object(section) => {
                out.push_str(&format!("[{}]\n", serde_json::to_string(key).ok()?));
                for (k, v) in section {
                    out.push_str(&format!(
                        "{} = {}\n",
                        serde_json::to_string(k).ok()?,
                        inline(v)?
                    ));
                }
            }
            other => out.insert_str(
                0,
                &format!(
                    "{} = {}\n",
                    serde_json::to_string(key).ok()?,
                    inline(other)?
                ),
            ),
        }
    }
    Some(out)
}

/// Edits a text at a few places: the near-miss documents a hand-edited
/// config file holds.
fn mutated(text: String, edits: Vec<(usize, u8, char)>) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for (at, op, c) in edits {
        let at = if chars.is_empty() {
            0
        } else {
            at % (chars.len() + 1)
        };
        match op % 3 {
            0 => chars.insert(at, c),
            1 if at < chars.len() => {
                chars.remove(at);
            }
            _ if at < chars.len() => chars[at] = c,
            _ => chars.push(c),
        }
    }
    chars.into_iter().collect()
}

fn edits() -> impl Strategy<Value = Vec<(usize, u8, char)>> {
    prop::collection::vec(
        (
            any::<usize>(),
            any::<u8>(),
            prop_oneof![
                prop::sample::select(vec![
                    '"', '{', '}', '[', ']', ',', ':', '=', '\n', '\\', '.'
                ]),
                any::<char>()
            ],
        ),
        1..4,
    )
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
