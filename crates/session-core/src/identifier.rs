//! SQL identifiers: table names validated before any SQL is built.

use std::fmt;

use crate::Error;

/// The longest identifier this workspace accepts for a table or schema, in
/// characters (PostgreSQL's limit; the SPEC applies it everywhere).
pub const MAX_IDENTIFIER_LEN: usize = 63;

/// Checks that `name` is a plain SQL identifier: an ASCII letter or
/// underscore, then ASCII letters, digits or underscores, at most
/// [`MAX_IDENTIFIER_LEN`] characters.
///
/// Such a name needs no quoting in PostgreSQL, SQLite or Oracle, so it can be
/// spliced into DDL and statements safely; anything else (quotes,
/// semicolons, spaces, non-ASCII lookalikes) is an
/// [`Error::InvalidIdentifier`].
///
/// ```
/// use session_core::validate_identifier;
/// assert!(validate_identifier("litestar_session").is_ok());
/// assert!(validate_identifier("sessions; DROP TABLE users").is_err());
/// ```
pub fn validate_identifier(name: &str) -> Result<(), Error> {
    let refuse = |reason: String| {
        Err(Error::InvalidIdentifier {
            name: name.to_owned(),
            reason,
        })
    };
    let Some(first) = name.chars().next() else {
        return refuse("it is empty".into());
    };
    if !(first.is_ascii_alphabetic() || first == '_') {
        return refuse(format!(
            "it starts with {first:?}; an identifier starts with an ASCII letter or underscore"
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_'))
    {
        return refuse(format!(
            "it contains {bad:?}; only ASCII letters, digits and underscores are allowed"
        ));
    }
    if name.len() > MAX_IDENTIFIER_LEN {
        return refuse(format!(
            "it is {} characters long, at most {MAX_IDENTIFIER_LEN} allowed",
            name.len()
        ));
    }
    Ok(())
}

/// A validated session table name, optionally schema-qualified
/// (`schema.table`, where the backend supports schemas).
///
/// Every name derived from it (the expiry index
/// [`index_name`](TableName::index_name)) is checked to fit the backend's
/// identifier limit when the `TableName` is made, so DDL never fails on a
/// truncated or over-long name.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct TableName {
    schema: Option<String>,
    table: String,
}

impl TableName {
    /// Validates an unqualified table name for a backend whose identifiers
    /// are at most `backend_limit` characters long.
    ///
    /// ```
    /// use session_core::TableName;
    /// let t = TableName::new("litestar_session", 63).unwrap();
    /// assert_eq!(t.index_name(), "idx_litestar_session_expires_at");
    /// assert!(TableName::new("public.sessions", 63).is_err());
    /// ```
    pub fn new(table: &str, backend_limit: usize) -> Result<Self, Error> {
        validate_identifier(table)?;
        let name = TableName {
            schema: None,
            table: table.to_owned(),
        };
        name.check_derived(backend_limit)?;
        Ok(name)
    }

    /// Validates a table name that may be schema-qualified (`schema.table`);
    /// each part is validated on its own.
    ///
    /// ```
    /// use session_core::TableName;
    /// let t = TableName::new_qualified("auth.sessions", 63).unwrap();
    /// assert_eq!(t.qualified(), "auth.sessions");
    /// assert_eq!(t.schema(), Some("auth"));
    /// assert_eq!(t.index_name(), "idx_sessions_expires_at");
    /// ```
    pub fn new_qualified(name: &str, backend_limit: usize) -> Result<Self, Error> {
        match name.split_once('.') {
            None => Self::new(name, backend_limit),
            Some((schema, table)) => {
                validate_identifier(schema)?;
                if table.contains('.') {
                    return Err(Error::InvalidIdentifier {
                        name: name.to_owned(),
                        reason: "at most one `.` (schema.table) is allowed".into(),
                    });
                }
                let mut parsed = Self::new(table, backend_limit)?;
                parsed.schema = Some(schema.to_owned());
                Ok(parsed)
            }
        }
    }

    fn check_derived(&self, backend_limit: usize) -> Result<(), Error> {
        let limit = backend_limit.min(MAX_IDENTIFIER_LEN);
        for derived in [self.index_name(), self.migrations_table_name()] {
            if derived.len() > limit {
                return Err(Error::InvalidIdentifier {
                    name: self.table.clone(),
                    reason: format!(
                        "the derived name `{derived}` is {} characters long, the backend allows {limit}; \
                         use a table name of at most {} characters",
                        derived.len(),
                        limit - (derived.len() - self.table.len())
                    ),
                });
            }
        }
        Ok(())
    }

    /// The table name without schema.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The schema, if the name was qualified.
    pub fn schema(&self) -> Option<&str> {
        self.schema.as_deref()
    }

    /// The name as it appears in SQL: `schema.table` or `table`.
    pub fn qualified(&self) -> String {
        match &self.schema {
            Some(schema) => format!("{schema}.{}", self.table),
            None => self.table.clone(),
        }
    }

    /// The name of the partial index on `expires_at`:
    /// `idx_<table>_expires_at` (unqualified; it lives in the table's schema).
    pub fn index_name(&self) -> String {
        format!("idx_{}_expires_at", self.table)
    }
}

impl TableName {
    /// The name of the migration tracking table of this session table:
    /// `<table>_migrations` (unqualified; it lives in the table's schema).
    /// Checked against the backend's identifier limit with the index name
    /// when the `TableName` is made.
    pub fn migrations_table_name(&self) -> String {
        format!("{}_migrations", self.table)
    }

    /// The migration tracking table as a `TableName` in the same schema:
    /// `schema.<table>_migrations` or `<table>_migrations`.
    ///
    /// ```
    /// use session_core::TableName;
    /// let t = TableName::new_qualified("auth.sessions", 63).unwrap();
    /// assert_eq!(t.migrations_table().qualified(), "auth.sessions_migrations");
    /// ```
    pub fn migrations_table(&self) -> TableName {
        TableName {
            schema: self.schema.clone(),
            table: self.migrations_table_name(),
        }
    }
}

impl fmt::Display for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.qualified())
    }
}

impl fmt::Debug for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TableName({})", self.qualified())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names_are_refused() {
        for name in [
            "",
            "1abc",
            "a b",
            "a;b",
            "a\"b",
            "a'b",
            "a-b",
            "sess\u{0456}ons", // Cyrillic i
            "table)",
            "x\0",
            &"a".repeat(64),
        ] {
            let err = validate_identifier(name).unwrap_err();
            assert!(matches!(err, Error::InvalidIdentifier { .. }), "{name:?}");
        }
    }

    #[test]
    fn derived_index_name_must_fit() {
        // idx_ + 48 + _expires_at = 63
        assert!(TableName::new(&"a".repeat(48), 63).is_ok());
        let err = TableName::new(&"a".repeat(49), 63).unwrap_err();
        assert!(err.to_string().contains("at most 48"), "{err}");
        // SQLite has no limit of its own: the SPEC's 63 still applies to the index.
        assert!(TableName::new(&"a".repeat(49), usize::MAX).is_err());
    }

    #[test]
    fn qualified_names_validate_each_part() {
        assert!(TableName::new_qualified("a.b.c", 63).is_err());
        assert!(TableName::new_qualified("bad schema.t", 63).is_err());
        assert!(TableName::new_qualified("s.", 63).is_err());
        assert!(TableName::new_qualified(".t", 63).is_err());
    }
}
