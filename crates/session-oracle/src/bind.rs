//! Text binds with an explicit `VARCHAR2` type: the only way this crate
//! binds text.
//!
//! The `oracle` crate (0.6) binds a Rust `&str` or `String` as `NVARCHAR2`
//! (`impl ToSql for &str` returns `OracleType::NVarchar2`). Compared with
//! the `VARCHAR2` `session_id` column, Oracle converts the column
//! (`SYS_OP_C2C(session_id) = :sid`), which cannot use the primary-key
//! index; mixed with the `VARCHAR2` that `SYS_CONTEXT` returns in
//! `COALESCE`, it fails with ORA-12704 (character set mismatch). Every text
//! bind therefore goes through [`Varchar2`], which declares the
//! `VARCHAR2` type itself: what the crate's
//! `(&value, &OracleType::Varchar2(n))` form does (the declared type, the
//! value set as a string), plus a typed `NULL`. ODPI-C reads `n` as the
//! bind buffer's length in characters.
//!
//! The tests below check the declared types and scan the crate's sources:
//! a key, table or owner bound any other way fails them.

use oracle::sql_type::{OracleType, ToSql};
use oracle::{Connection, SqlValue};
use session_core::MAX_KEY_BYTES;

/// A text bind declared `VARCHAR2(size)`, `NULL` when `value` is `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Varchar2<'a> {
    value: Option<&'a str>,
    size: u32,
}

/// The declared size of a session key bind: the `session_id` column's
/// width, `VARCHAR2(255)` (keys are validated to at most
/// [`MAX_KEY_BYTES`] bytes before they get here).
pub(crate) const KEY_SIZE: u32 = MAX_KEY_BYTES as u32;

/// A session key, as `VARCHAR2(255)`: the type of `session_id`, so the
/// comparison uses the primary-key index.
pub(crate) fn key(key: &str) -> Varchar2<'_> {
    Varchar2 {
        value: Some(key),
        size: KEY_SIZE,
    }
}

/// A text value (a catalog name, a migration record field) as
/// `VARCHAR2(n)`, `n` its length in bytes (at least 1); `None` binds a
/// `VARCHAR2` `NULL`.
pub(crate) fn text(value: Option<&str>) -> Varchar2<'_> {
    let len = value.map_or(0, str::len);
    Varchar2 {
        value,
        size: u32::try_from(len.max(1)).unwrap_or(u32::MAX),
    }
}

/// The positional text binds of a statement (the migration runner's
/// `&[Option<&str>]`), each as [`text`].
pub(crate) fn texts<'a>(values: &[Option<&'a str>]) -> Vec<Varchar2<'a>> {
    values.iter().map(|value| text(*value)).collect()
}

/// `binds` as the driver's positional parameter list.
pub(crate) fn params<'b>(binds: &'b [Varchar2<'_>]) -> Vec<&'b dyn ToSql> {
    binds.iter().map(|bind| bind as &dyn ToSql).collect()
}

impl Varchar2<'_> {
    /// The type the driver is told: always `VARCHAR2`, never `NVARCHAR2`.
    pub(crate) fn oracle_type(&self) -> OracleType {
        OracleType::Varchar2(self.size)
    }

    /// The bound value (`None`: `NULL`).
    #[cfg(test)]
    pub(crate) fn value(&self) -> Option<&str> {
        self.value
    }
}

impl ToSql for Varchar2<'_> {
    fn oratype(&self, _conn: &Connection) -> oracle::Result<OracleType> {
        Ok(self.oracle_type())
    }

    fn to_sql(&self, val: &mut SqlValue) -> oracle::Result<()> {
        match self.value {
            Some(value) => value.to_sql(val),
            None => val.set_null(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_bind_as_varchar2_of_the_column_width() {
        let bind = key("user:1");
        assert_eq!(bind.oracle_type(), OracleType::Varchar2(255));
        assert_eq!(bind.value(), Some("user:1"));
        // Not the driver's default for text.
        assert_ne!(bind.oracle_type(), OracleType::NVarchar2(6));
    }

    #[test]
    fn texts_and_nulls_bind_as_varchar2() {
        let binds = texts(&[Some("LITESTAR_SESSION"), None, Some("")]);
        let types: Vec<OracleType> = binds.iter().map(Varchar2::oracle_type).collect();
        assert_eq!(
            types,
            [
                OracleType::Varchar2(16),
                OracleType::Varchar2(1),
                OracleType::Varchar2(1)
            ]
        );
        assert_eq!(binds[1].value(), None);
        assert_eq!(params(&binds).len(), 3);
    }

    /// The crate's sources, each with its name; every driver call is in
    /// one of them.
    const SOURCES: &[(&str, &str)] = &[
        ("config.rs", include_str!("config.rs")),
        ("connector.rs", include_str!("connector.rs")),
        ("error.rs", include_str!("error.rs")),
        ("lib.rs", include_str!("lib.rs")),
        ("manager.rs", include_str!("manager.rs")),
        ("migrations.rs", include_str!("migrations.rs")),
        ("reserved.rs", include_str!("reserved.rs")),
        ("sql.rs", include_str!("sql.rs")),
        ("store.rs", include_str!("store.rs")),
    ];

    /// Named binds that are not text, reviewed one by one: the expiry
    /// (`Option<f64>`, NUMBER), the value (RAW or BLOB), the returned
    /// `BLOB`, `compare_and_set`'s expected value (RAW or a temporary BLOB)
    /// and its length (`u64`, NUMBER), the cleanup batch (NUMBER).
    const NON_TEXT_BINDS: &[(&str, &str)] = &[
        ("ttl", "&ttl"),
        ("val", "val"),
        ("exp", "exp"),
        ("len", "&len"),
        ("val", "&OracleType::BLOB"),
        ("batch", "&batch"),
        ("batch", "&limit"),
    ];

    /// The text of the balanced `(...)` group that starts at `open` (the
    /// index just after the `(`), without the closing `)`.
    fn group(text: &str, open: usize) -> &str {
        let mut depth = 1;
        for (i, c) in text[open..].char_indices() {
            match c {
                '(' | '[' => depth += 1,
                ')' | ']' => {
                    depth -= 1;
                    if depth == 0 {
                        return &text[open..open + i];
                    }
                }
                _ => {}
            }
        }
        panic!("unbalanced group at byte {open}")
    }

    /// Splits `args` at the commas of its top level.
    fn top_level(args: &str) -> Vec<&str> {
        let (mut depth, mut start, mut parts) = (0, 0, Vec::new());
        for (i, c) in args.char_indices() {
            match c {
                '(' | '[' => depth += 1,
                ')' | ']' => depth -= 1,
                ',' if depth == 0 => {
                    parts.push(args[start..i].trim());
                    start = i + 1;
                }
                _ => {}
            }
        }
        parts.push(args[start..].trim());
        parts.retain(|p| !p.is_empty());
        parts
    }

    /// `(name, value expression)` of every `("name", value)` tuple in
    /// `args`.
    fn named_binds(args: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut rest = args;
        while let Some(at) = rest.find("(\"") {
            let open = at + 1;
            let inner = group(rest, open);
            let parts = top_level(inner);
            if let [name, value] = parts.as_slice() {
                out.push((name.trim_matches('"').to_owned(), (*value).to_owned()));
            }
            rest = &rest[open..];
        }
        out
    }

    /// The non-test code of a source file.
    fn code(source: &str) -> &str {
        source
            .split("#[cfg(test)]\nmod tests")
            .next()
            .unwrap_or(source)
    }

    /// The argument text of the call whose method name ends at `at`:
    /// skips a turbofish (`::<(String, String)>`), then takes the `(...)`
    /// group. `None` when no call follows (a mention in a comment).
    fn call_args(code: &str, at: usize) -> Option<&str> {
        let mut i = at;
        if code[i..].starts_with("::<") {
            let mut depth = 0;
            for (j, c) in code[i..].char_indices() {
                match c {
                    '<' => depth += 1,
                    '>' => {
                        depth -= 1;
                        if depth == 0 {
                            i += j + 1;
                            break;
                        }
                    }
                    _ => {}
                }
            }
        }
        code[i..].starts_with('(').then(|| group(code, i + 1))
    }

    /// Every call of a driver method that takes binds, in every source
    /// file: named binds must be a reviewed non-text bind or go through
    /// this module (`&bind::...`); positional bind lists must be empty or
    /// this module's `params`. A key, table name or owner bound as a raw
    /// `&str`/`String` (an `NVARCHAR2`) fails here.
    #[test]
    fn no_statement_binds_raw_text() {
        let named_calls = [
            "execute_named",
            "query_named",
            "query_row_named",
            "query_row_as_named",
            "query_as_named",
        ];
        let positional_calls = [
            ".execute",
            ".query",
            ".query_row",
            ".query_row_as",
            ".query_as",
        ];
        let (mut named, mut positional, mut bad) = (0, 0, Vec::new());
        for (file, source) in SOURCES {
            let code = code(source);
            for call in named_calls {
                for (at, _) in code.match_indices(call) {
                    let Some(args) = call_args(code, at + call.len()) else {
                        continue;
                    };
                    for (name, value) in named_binds(args) {
                        named += 1;
                        let typed = value.starts_with("&bind::");
                        let reviewed = NON_TEXT_BINDS.contains(&(name.as_str(), value.as_str()));
                        if !(typed || reviewed) {
                            bad.push(format!("{file}: (\"{name}\", {value}) in {call}"));
                        }
                    }
                }
            }
            for call in positional_calls {
                for (at, _) in code.match_indices(call) {
                    let Some(args) = call_args(code, at + call.len()) else {
                        continue;
                    };
                    let args = top_level(args);
                    let Some(params) = args.get(1) else { continue };
                    positional += 1;
                    if *params != "&[]" && !params.starts_with("&bind::params(") {
                        bad.push(format!("{file}: {call}(.., {params})"));
                    }
                }
            }
        }
        assert!(
            bad.is_empty(),
            "text bound without a VARCHAR2 type:\n{}",
            bad.join("\n")
        );
        // The scan found the statements (it is not vacuous): the key binds
        // of get, renew, set, create, update, delete, exists, expires_in,
        // the catalog binds, compare_and_set's two calls (key, value, expiry,
        // expected length and value) and delete_live's key, and the
        // executor's positional lists.
        assert!(named >= 27, "only {named} named binds found");
        assert!(
            positional >= 3,
            "only {positional} positional bind lists found"
        );
    }

    #[test]
    fn the_scanner_sees_raw_binds() {
        let raw = r#"conn.query_row_as_named::<(u64, String)>(sql.exists(), &[("sid", &key)])?"#;
        let at = raw.find("query_row_as_named").unwrap() + "query_row_as_named".len();
        let args = call_args(raw, at).unwrap();
        assert_eq!(args, r#"sql.exists(), &[("sid", &key)]"#);
        assert_eq!(named_binds(args), [("sid".to_owned(), "&key".to_owned())]);
        let raw = "self.conn.execute(sql, &binds(params))";
        let args = call_args(raw, raw.find('(').unwrap()).unwrap();
        assert_eq!(top_level(args), ["sql", "&binds(params)"]);
    }
}
