//! Oracle's reserved words, refused as table names when the config is
//! validated: unquoted, they fail only later, in the DDL (ORA-00903,
//! "invalid table name") or in a statement.

use session_core::Error;

/// The words of "Oracle SQL Reserved Words" (Oracle Database SQL Language
/// Reference, appendix D), upper case, sorted. These are the words that
/// cannot be used as unquoted identifiers; on a server the same list is
/// `SELECT keyword FROM v$reserved_words WHERE reserved = 'Y'` (not run
/// here: no server was available, see `docs/oracle.md`). `COLUMN_VALUE`
/// and `NESTED_TABLE_ID` are pseudocolumns the reference lists with them.
pub const ORACLE_RESERVED_WORDS: &[&str] = &[
    "ACCESS",
    "ADD",
    "ALL",
    "ALTER",
    "AND",
    "ANY",
    "AS",
    "ASC",
    "AUDIT",
    "BETWEEN",
    "BY",
    "CHAR",
    "CHECK",
    "CLUSTER",
    "COLUMN",
    "COLUMN_VALUE",
    "COMMENT",
    "COMPRESS",
    "CONNECT",
    "CREATE",
    "CURRENT",
    "DATE",
    "DECIMAL",
    "DEFAULT",
    "DELETE",
    "DESC",
    "DISTINCT",
    "DROP",
    "ELSE",
    "EXCLUSIVE",
    "EXISTS",
    "FILE",
    "FLOAT",
    "FOR",
    "FROM",
    "GRANT",
    "GROUP",
    "HAVING",
    "IDENTIFIED",
    "IMMEDIATE",
    "IN",
    "INCREMENT",
    "INDEX",
    "INITIAL",
    "INSERT",
    "INTEGER",
    "INTERSECT",
    "INTO",
    "IS",
    "LEVEL",
    "LIKE",
    "LOCK",
    "LONG",
    "MAXEXTENTS",
    "MINUS",
    "MLSLABEL",
    "MODE",
    "MODIFY",
    "NESTED_TABLE_ID",
    "NOAUDIT",
    "NOCOMPRESS",
    "NOT",
    "NOWAIT",
    "NULL",
    "NUMBER",
    "OF",
    "OFFLINE",
    "ON",
    "ONLINE",
    "OPTION",
    "OR",
    "ORDER",
    "PCTFREE",
    "PRIOR",
    "PUBLIC",
    "RAW",
    "RENAME",
    "RESOURCE",
    "REVOKE",
    "ROW",
    "ROWID",
    "ROWNUM",
    "ROWS",
    "SELECT",
    "SESSION",
    "SET",
    "SHARE",
    "SIZE",
    "SMALLINT",
    "START",
    "SUCCESSFUL",
    "SYNONYM",
    "SYSDATE",
    "TABLE",
    "THEN",
    "TO",
    "TRIGGER",
    "UID",
    "UNION",
    "UNIQUE",
    "UPDATE",
    "USER",
    "VALIDATE",
    "VALUES",
    "VARCHAR",
    "VARCHAR2",
    "VIEW",
    "WHENEVER",
    "WHERE",
    "WITH",
];

/// The reserved word `name` is, if it is one (compared case-insensitively,
/// as Oracle upper-cases unquoted names).
pub(crate) fn reserved_word(name: &str) -> Option<&'static str> {
    ORACLE_RESERVED_WORDS
        .iter()
        .copied()
        .find(|word| word.eq_ignore_ascii_case(name))
}

/// Refuses `name` (a table or schema name of the config) if it is an
/// Oracle reserved word, naming the word.
pub(crate) fn refuse_reserved(name: &str) -> Result<(), Error> {
    match reserved_word(name) {
        None => Ok(()),
        Some(word) => Err(Error::InvalidIdentifier {
            name: name.to_owned(),
            reason: format!(
                "`{word}` is an Oracle reserved word: unquoted, Oracle refuses it as a table \
                 name (ORA-00903, invalid table name); choose another name, e.g. `{}_sessions`",
                name.to_ascii_lowercase()
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_is_sorted_upper_case_and_unique() {
        assert!(ORACLE_RESERVED_WORDS.windows(2).all(|w| w[0] < w[1]));
        assert!(ORACLE_RESERVED_WORDS.iter().all(|w| {
            w.bytes()
                .all(|b| b.is_ascii_uppercase() || b == b'_' || b.is_ascii_digit())
        }));
    }

    #[test]
    fn reserved_words_are_found_in_any_case() {
        for (name, word) in [
            ("session", "SESSION"),
            ("User", "USER"),
            ("LEVEL", "LEVEL"),
            ("size", "SIZE"),
            ("comment", "COMMENT"),
        ] {
            assert_eq!(reserved_word(name), Some(word));
            let err = refuse_reserved(name).unwrap_err();
            assert!(matches!(err, Error::InvalidIdentifier { .. }), "{err:?}");
            assert!(err.to_string().contains(&format!("`{word}`")), "{err}");
        }
        for name in [
            "sessions",
            "litestar_session",
            "user_sessions",
            "app_sessions",
        ] {
            assert_eq!(reserved_word(name), None, "{name}");
            refuse_reserved(name).unwrap();
        }
    }
}
