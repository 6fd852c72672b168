//! Generators of hostile configuration documents for the property tests
//! of every config parser (`session-core`'s extension config,
//! `session-tower`'s `SessionConfig`).

use proptest::prelude::*;
use serde_json::{Map, Value};

/// 2,000 cases, or `PROPTEST_CASES` for a long run.
pub fn config() -> ProptestConfig {
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

/// Strings that hit the edges: identifiers, lookalikes, SQL, controls,
/// regexes, huge ones.
pub fn tricky_string() -> impl Strategy<Value = String> {
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

/// Numbers of every kind JSON holds: integers, floats, huge and tiny ones.
pub fn number() -> impl Strategy<Value = Value> {
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
pub fn json_value() -> impl Strategy<Value = Value> {
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
pub fn object_of(keys: &'static [&'static str]) -> impl Strategy<Value = Map<String, Value>> {
    let key = prop_oneof![
        4 => prop::sample::select(keys).prop_map(str::to_owned),
        1 => tricky_string(),
    ];
    prop::collection::btree_map(key, json_value(), 0..8).prop_map(|m| m.into_iter().collect())
}

/// A TOML rendering of a JSON value, as far as TOML can express it
/// (`None` for nulls and non-object top levels).
pub fn to_toml(doc: &Value) -> Option<String> {
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
pub fn mutated(text: String, edits: Vec<(usize, u8, char)>) -> String {
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

/// Up to a few edits for [`mutated`]: (position, action, character).
pub fn edits() -> impl Strategy<Value = Vec<(usize, u8, char)>> {
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
