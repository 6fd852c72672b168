//! Versioned schema migrations: the backend-independent part.
//!
//! Each adapter crate owns an ordered list of [`Migration`]s (the first is
//! always `ext_litestar_0001`, creating the session table and its expiry
//! index exactly as the adapter's `create_table()` does) and a tracking
//! table, `<session_table>_migrations`
//! ([`TableName::migrations_table`](crate::TableName::migrations_table)),
//! with one row per applied version: `version`, `description`, `checksum`,
//! `applied_at`. This module holds what every adapter shares:
//!
//! * [`Migration`] and its [`checksum`]: the SHA-256 (lower-case hex) of
//!   the migration's statements as rendered for the table and settings at
//!   hand, each statement followed by a `;` and a newline. A recorded
//!   checksum that no longer matches means the migration, or the settings
//!   it is rendered with (table name, `fillfactor`, `in_memory`, ...),
//!   changed since it was applied.
//! * [`plan`]: the migrations still to apply, in order, or an error when a
//!   recorded checksum differs or a recorded version is unknown.
//! * [`compare_columns`]: whether an existing table has the seed's shape,
//!   before it is adopted (recorded as at `ext_litestar_0001` without
//!   running it).
//! * [`script`]: the SQL of every migration, with the tracking table, for
//!   teams that run their own migration tool.
//!
//! ```
//! use session_core::migrate::{AppliedMigration, Migration, plan};
//!
//! let list = vec![
//!     Migration::new("ext_litestar_0001", "create the session table", vec!["CREATE TABLE s (k TEXT)".into()]),
//!     Migration::new("ext_litestar_0002", "add a column", vec!["ALTER TABLE s ADD v TEXT".into()]),
//! ];
//! let applied = vec![AppliedMigration::now(&list[0])];
//! let todo = plan("sqlite", &list, &applied).unwrap();
//! assert_eq!(todo.iter().map(|m| m.version).collect::<Vec<_>>(), ["ext_litestar_0002"]);
//! ```

use std::fmt;
use std::time::SystemTime;

use sha2::{Digest, Sha256};

use crate::{Error, Result, TableName, validate_identifier};

/// The prefix of every migration version of this workspace: SQLSpec's
/// `ext_<extension>_` naming, so the versions never collide with an
/// application's own `0001`.
pub const VERSION_PREFIX: &str = "ext_litestar_";

/// The first version of every adapter: the session table and its expiry
/// index, exactly as the adapter's `create_table()` makes them.
pub const EXT_LITESTAR_0001: &str = "ext_litestar_0001";

/// One versioned schema change.
///
/// A released migration is never edited: a later change of the schema is a
/// new version. `statements` are complete SQL statements without a trailing
/// `;`, run in order in one transaction where the database allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    /// `ext_litestar_NNNN`, ordered by its number.
    pub version: &'static str,
    /// One line saying what the migration does.
    pub description: &'static str,
    /// The statements, rendered for one session table and its settings.
    pub statements: Vec<String>,
}

impl Migration {
    /// `ext_litestar_0001`: the session table and its index on
    /// `expires_at`, with `statements` the adapter's `create_table()` DDL.
    pub fn initial(statements: Vec<String>) -> Self {
        Self::new(
            EXT_LITESTAR_0001,
            "create the session table and its index on expires_at",
            statements,
        )
    }

    /// A migration of `statements`.
    pub fn new(version: &'static str, description: &'static str, statements: Vec<String>) -> Self {
        Migration {
            version,
            description,
            statements,
        }
    }

    /// The checksum of this migration's statements; see [`checksum`].
    pub fn checksum(&self) -> String {
        checksum(&self.statements)
    }
}

/// The checksum of a list of statements: SHA-256 over each statement's text
/// followed by `";\n"`, as 64 lower-case hex digits. Stable across
/// processes, builds and platforms.
///
/// ```
/// use session_core::migrate::checksum;
/// let sum = checksum(&["CREATE TABLE t (a INTEGER)".to_owned()]);
/// assert_eq!(sum.len(), 64);
/// assert_ne!(sum, checksum(&["CREATE TABLE t (a TEXT)".to_owned()]));
/// ```
pub fn checksum(statements: &[String]) -> String {
    let mut hasher = Sha256::new();
    for statement in statements {
        hasher.update(statement.as_bytes());
        hasher.update(b";\n");
    }
    hex::encode(hasher.finalize())
}

/// A row of the tracking table: a version that was applied (or adopted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedMigration {
    /// The version, e.g. `ext_litestar_0001`.
    pub version: String,
    /// The description recorded with it.
    pub description: String,
    /// The [`checksum`] of its statements when it was applied.
    pub checksum: String,
    /// When it was applied, on the database's clock.
    pub applied_at: SystemTime,
}

impl AppliedMigration {
    /// The record of `migration` applied now (for tests and examples; the
    /// adapters read their records from the tracking table).
    pub fn now(migration: &Migration) -> Self {
        AppliedMigration {
            version: migration.version.to_owned(),
            description: migration.description.to_owned(),
            checksum: migration.checksum(),
            applied_at: SystemTime::now(),
        }
    }

    /// `applied_at` as RFC 3339 UTC with whole seconds,
    /// e.g. `2024-05-01T12:00:00Z`.
    pub fn applied_at_rfc3339(&self) -> String {
        rfc3339(self.applied_at)
    }
}

/// What [`plan`] refuses, kept as the `source` of the returned
/// [`Error::Backend`]; downcast to match on it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MigrationError {
    /// A recorded migration's checksum differs from its statements' now.
    #[error(
        "migration {version} was applied with checksum {recorded}, but its SQL now has checksum \
         {expected}: the migration or the settings it is rendered with (table name, storage \
         options) changed since it was applied"
    )]
    ChecksumMismatch {
        /// The version.
        version: String,
        /// The checksum in the tracking table.
        recorded: String,
        /// The checksum of the statements now.
        expected: String,
    },
    /// The tracking table records a version this build does not know (a
    /// newer release applied it, or the table was edited by hand).
    #[error(
        "the tracking table records migration {version}, which this version does not know \
         (known: {known}); was the database migrated by a newer release?"
    )]
    UnknownVersion {
        /// The unknown version.
        version: String,
        /// The versions this build knows, comma-separated.
        known: String,
    },
    /// The session table exists with columns other than the seed's schema,
    /// so it cannot be adopted.
    #[error("the existing table `{table}` does not have the session schema: {difference}")]
    SchemaMismatch {
        /// The table.
        table: String,
        /// Every difference found, e.g. "column `data` is TEXT, expected BLOB".
        difference: String,
    },
}

impl MigrationError {
    /// The migration error an [`Error`] from `migrate()` carries, if it is
    /// one (a checksum mismatch, an unknown version, a table of another
    /// shape), so callers can tell these apart from database errors.
    pub fn of(err: &Error) -> Option<&MigrationError> {
        std::error::Error::source(err).and_then(|s| s.downcast_ref())
    }

    /// This error as an [`Error::Backend`] of `backend`, itself as source.
    pub fn into_error(self, backend: &'static str) -> Error {
        let context = match &self {
            MigrationError::ChecksumMismatch { version, .. } => {
                format!("migration checksum mismatch for {version}")
            }
            MigrationError::UnknownVersion { version, .. } => {
                format!("unknown migration {version} in the tracking table")
            }
            MigrationError::SchemaMismatch { table, .. } => {
                format!("cannot adopt the existing table `{table}`")
            }
        };
        Error::backend(backend, format!("{context}: {self}"), self)
    }
}

/// The migrations of `migrations` (ordered, as an adapter lists them) that
/// `applied` does not record, in order.
///
/// Errors ([`Error::Backend`] of `backend`, with a [`MigrationError`] as
/// source): a recorded version whose checksum differs from its statements'
/// ([`MigrationError::ChecksumMismatch`], naming the version), a recorded
/// version not in the list ([`MigrationError::UnknownVersion`]).
pub fn plan<'a>(
    backend: &'static str,
    migrations: &'a [Migration],
    applied: &[AppliedMigration],
) -> Result<Vec<&'a Migration>> {
    for record in applied {
        match migrations.iter().find(|m| m.version == record.version) {
            None => {
                return Err(MigrationError::UnknownVersion {
                    version: record.version.clone(),
                    known: migrations
                        .iter()
                        .map(|m| m.version)
                        .collect::<Vec<_>>()
                        .join(", "),
                }
                .into_error(backend));
            }
            Some(m) => {
                let expected = m.checksum();
                if expected != record.checksum {
                    return Err(MigrationError::ChecksumMismatch {
                        version: record.version.clone(),
                        recorded: record.checksum.clone(),
                        expected,
                    }
                    .into_error(backend));
                }
            }
        }
    }
    Ok(migrations
        .iter()
        .filter(|m| !applied.iter().any(|a| a.version == m.version))
        .collect())
}

/// Checks an adapter's list: versions are `ext_litestar_NNNN` identifiers,
/// strictly increasing, and descriptions hold no quote. The adapters call
/// it in their tests; a list that fails it is a bug, not bad input.
pub fn validate_list(migrations: &[Migration]) -> Result<()> {
    let mut last: Option<&str> = None;
    for m in migrations {
        validate_identifier(m.version)?;
        let number = m.version.strip_prefix(VERSION_PREFIX).unwrap_or_default();
        if number.len() != 4 || !number.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::invalid_config(
                "migrations",
                format!("{} is not named {VERSION_PREFIX}NNNN", m.version),
            ));
        }
        if last.is_some_and(|l| l >= m.version) {
            return Err(Error::invalid_config(
                "migrations",
                format!("{} is out of order", m.version),
            ));
        }
        if m.description.contains(['\'', '\n']) {
            return Err(Error::invalid_config(
                "migrations",
                format!("the description of {} holds a quote or newline", m.version),
            ));
        }
        last = Some(m.version);
    }
    Ok(())
}

/// The SQL of `migrations` for a migration tool of your own: the tracking
/// table's DDL (`tracking_ddl`), then per migration a comment naming it,
/// its statements and the `INSERT` that records it in `tracking_table`, so
/// that `migrate()` later sees it as applied. Each statement ends in `;`.
///
/// Only validated identifiers and this crate's constant versions,
/// descriptions (quote-free, see [`validate_list`]) and hex checksums are
/// written into the text.
pub fn script(tracking_ddl: &str, tracking_table: &str, migrations: &[Migration]) -> String {
    let mut out = String::new();
    out.push_str("-- migration tracking table\n");
    out.push_str(tracking_ddl);
    out.push_str(";\n");
    for m in migrations {
        out.push_str(&format!("\n-- {}: {}\n", m.version, m.description));
        for statement in &m.statements {
            out.push_str(statement);
            out.push_str(";\n");
        }
        out.push_str(&format!(
            "INSERT INTO {tracking_table} (version, description, checksum) VALUES ('{}', '{}', '{}');\n",
            m.version,
            m.description.replace('\'', "''"),
            m.checksum()
        ));
    }
    out
}

/// A column the session schema expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ColumnSpec {
    /// The column name (compared case-insensitively).
    pub name: &'static str,
    /// The type as the catalog reports it (compared case-insensitively,
    /// ignoring a precision such as `(6)`).
    pub data_type: &'static str,
    /// Whether the column must be `NOT NULL`; `None`: either is accepted
    /// (SQLite reports a `TEXT PRIMARY KEY` as nullable).
    pub not_null: Option<bool>,
}

/// A column of an existing table, as the catalog reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnInfo {
    /// The column name.
    pub name: String,
    /// The declared or catalog type.
    pub data_type: String,
    /// True if the column is `NOT NULL`.
    pub not_null: bool,
}

/// Every difference between the `expected` columns and the `actual` ones
/// of an existing table, joined with `; ` (`None` when they match): missing
/// columns, columns of another type or nullability, columns the schema
/// does not have.
///
/// ```
/// use session_core::migrate::{ColumnInfo, ColumnSpec, compare_columns};
/// let expected = [ColumnSpec { name: "data", data_type: "BLOB", not_null: Some(true) }];
/// let actual = vec![ColumnInfo { name: "data".into(), data_type: "TEXT".into(), not_null: true }];
/// assert_eq!(compare_columns(&expected, &actual).unwrap(), "column `data` is TEXT, expected BLOB");
/// ```
pub fn compare_columns(expected: &[ColumnSpec], actual: &[ColumnInfo]) -> Option<String> {
    let mut differences = Vec::new();
    for spec in expected {
        match actual
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(spec.name))
        {
            None => differences.push(format!("column `{}` is missing", spec.name)),
            Some(col) => {
                if normalize_type(&col.data_type) != normalize_type(spec.data_type) {
                    differences.push(format!(
                        "column `{}` is {}, expected {}",
                        spec.name,
                        if col.data_type.is_empty() {
                            "untyped"
                        } else {
                            &col.data_type
                        },
                        spec.data_type
                    ));
                }
                if let Some(not_null) = spec.not_null {
                    if col.not_null != not_null {
                        differences.push(format!(
                            "column `{}` is {}, expected {}",
                            spec.name,
                            if col.not_null { "NOT NULL" } else { "nullable" },
                            if not_null { "NOT NULL" } else { "nullable" },
                        ));
                    }
                }
            }
        }
    }
    for col in actual {
        if !expected
            .iter()
            .any(|spec| col.name.eq_ignore_ascii_case(spec.name))
        {
            differences.push(format!(
                "column `{}` is not part of the session schema",
                col.name
            ));
        }
    }
    (!differences.is_empty()).then(|| differences.join("; "))
}

fn normalize_type(t: &str) -> String {
    let mut out = String::new();
    let mut depth = 0usize;
    for c in t.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            _ if depth == 0 => out.push(c.to_ascii_uppercase()),
            _ => {}
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Checks that an existing session `table`, about to be adopted, has
/// exactly the `expected` columns; otherwise a
/// [`MigrationError::SchemaMismatch`] naming every difference, as an
/// [`Error`] of `backend`.
pub fn ensure_adoptable(
    backend: &'static str,
    table: &TableName,
    expected: &[ColumnSpec],
    actual: &[ColumnInfo],
) -> Result<()> {
    match compare_columns(expected, actual) {
        None => Ok(()),
        Some(difference) => Err(MigrationError::SchemaMismatch {
            table: table.qualified(),
            difference,
        }
        .into_error(backend)),
    }
}

/// The dialect of one SQL backend: everything [`run`] needs to migrate a
/// session table, and nothing else. An adapter implements it on a value
/// that holds one connection (and, for a blocking driver, runs [`run`] on
/// that connection inside its blocking task, with
/// `tokio::runtime::Handle::block_on`).
///
/// The runner calls, per step: [`begin`](Self::begin) (a transaction
/// holding the lock that serialises migration runs, with the tracking
/// table in place), [`read_applied`](Self::read_applied), then either
/// [`execute`](Self::execute) for each statement of the next migration or,
/// to adopt an existing session table, [`table_exists`](Self::table_exists)
/// and [`columns`](Self::columns); then [`record`](Self::record) and
/// [`commit`](Self::commit), or [`rollback`](Self::rollback) on any error.
#[async_trait::async_trait]
pub trait MigrationDialect: Send {
    /// The backend's name in errors and logs (`sqlite`, `postgres`, ...).
    fn backend(&self) -> &'static str;

    /// The session table being migrated.
    fn table(&self) -> &TableName;

    /// The backend's ordered migrations, rendered for this table and its
    /// settings (the first is [`Migration::initial`]).
    fn migrations(&self) -> Vec<Migration>;

    /// The seed's columns, as this backend's catalog reports them; an
    /// existing table is adopted only if it has exactly these.
    fn session_columns(&self) -> &'static [ColumnSpec];

    /// Once per run, before the first step, outside any transaction (for
    /// backends whose DDL commits on its own, such as Oracle's). Default:
    /// nothing.
    async fn prepare(&mut self) -> Result<()> {
        Ok(())
    }

    /// Starts one step: a transaction, the lock that keeps concurrent runs
    /// apart (released at commit or rollback), and the tracking table
    /// created if missing.
    async fn begin(&mut self) -> Result<()>;

    /// Commits the step's transaction.
    async fn commit(&mut self) -> Result<()>;

    /// Rolls the step's transaction back.
    async fn rollback(&mut self) -> Result<()>;

    /// True if the table `table` exists (the session table, or its
    /// tracking table).
    async fn table_exists(&mut self, table: &TableName) -> Result<bool>;

    /// The columns of the session table, as the catalog reports them.
    async fn columns(&mut self) -> Result<Vec<ColumnInfo>>;

    /// Every row of the tracking table, oldest version first.
    async fn read_applied(&mut self) -> Result<Vec<AppliedMigration>>;

    /// Runs one statement of a migration.
    async fn execute(&mut self, statement: &str) -> Result<()>;

    /// Inserts the tracking row of `migration`. `Ok(false)`: another
    /// instance recorded it first (a unique violation the backend could
    /// not prevent with its lock); the runner rolls back and re-plans.
    async fn record(&mut self, migration: &Migration) -> Result<bool>;
}

/// Applies every migration the tracking table of `dialect` does not record,
/// one transaction per migration, and returns what it did: the one
/// migration loop of every SQL adapter.
///
/// A session table that exists without a tracking record (made by SQLSpec
/// or the adapter's `create_table()`) is adopted: its columns are checked
/// against [`MigrationDialect::session_columns`] and it is recorded as at
/// [`EXT_LITESTAR_0001`], its rows untouched. Idempotent, and safe when
/// many instances run it at once: each step re-reads the tracking table
/// under the dialect's lock.
///
/// # Errors
///
/// A recorded checksum that differs, an unknown recorded version, or an
/// existing table of another shape: an [`Error::Backend`] whose source is
/// a [`MigrationError`] naming the version or every difference. Any error
/// of the dialect, after the step's transaction is rolled back.
pub async fn run<D: MigrationDialect + ?Sized>(dialect: &mut D) -> Result<MigrateReport> {
    let backend = dialect.backend();
    let table = dialect.table().clone();
    let list = dialect.migrations();
    let expected = dialect.session_columns();
    let mut report = MigrateReport::default();
    dialect.prepare().await?;
    loop {
        dialect.begin().await?;
        let step = async {
            let applied = dialect.read_applied().await?;
            let pending = plan(backend, &list, &applied)?;
            let Some(next) = pending.first().copied() else {
                return Ok(Err(applied.last().map(|a| a.version.clone())));
            };
            let adopt = next.version == EXT_LITESTAR_0001 && dialect.table_exists(&table).await?;
            if adopt {
                ensure_adoptable(backend, &table, expected, &dialect.columns().await?)?;
            } else {
                for statement in &next.statements {
                    dialect.execute(statement).await?;
                }
            }
            let recorded = dialect.record(next).await?;
            Ok::<_, Error>(Ok((next.version, adopt, recorded)))
        }
        .await;
        match step {
            Err(err) => {
                // End the transaction (and its lock) now.
                if let Err(e) = dialect.rollback().await {
                    tracing::debug!(error = %e, "rollback after a failed migration step failed");
                }
                return Err(err);
            }
            Ok(Err(current)) => {
                dialect.commit().await?;
                report.current = current;
                return Ok(report);
            }
            Ok(Ok((version, adopted, true))) => {
                dialect.commit().await?;
                report.record(version, adopted);
            }
            Ok(Ok((version, _, false))) => {
                tracing::debug!(version, "another instance recorded this migration first");
                dialect.rollback().await?;
            }
        }
    }
}

/// The applied migrations of `dialect`'s table, oldest version first;
/// empty when the tracking table does not exist yet. Reads outside any
/// transaction.
///
/// # Errors
///
/// Any error of the dialect.
pub async fn applied<D: MigrationDialect + ?Sized>(
    dialect: &mut D,
) -> Result<Vec<AppliedMigration>> {
    let tracking = dialect.table().migrations_table();
    if !dialect.table_exists(&tracking).await? {
        return Ok(Vec::new());
    }
    dialect.read_applied().await
}

/// What one [`migrate`](self) run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MigrateReport {
    /// The versions this run applied, in order.
    pub applied: Vec<&'static str>,
    /// The version an existing session table was adopted at (recorded
    /// without running its statements), if this run adopted one.
    pub adopted: Option<&'static str>,
    /// The latest version recorded after the run.
    pub current: Option<String>,
}

impl MigrateReport {
    /// Records one step of a run, and logs it: `version` adopted an
    /// existing session table (`adopted`), or was applied.
    pub fn record(&mut self, version: &'static str, adopted: bool) {
        if adopted {
            tracing::info!(version, "adopted the existing session table");
            self.adopted = Some(version);
        } else {
            tracing::info!(version, "migration applied");
            self.applied.push(version);
        }
    }

    /// True if the run changed nothing (the database was up to date).
    pub fn is_noop(&self) -> bool {
        self.applied.is_empty() && self.adopted.is_none()
    }
}

impl fmt::Display for MigrateReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let current = self.current.as_deref().unwrap_or("none");
        if self.is_noop() {
            return write!(f, "already up to date at {current}");
        }
        let mut parts = Vec::new();
        if let Some(v) = self.adopted {
            parts.push(format!("adopted the existing session table at {v}"));
        }
        if !self.applied.is_empty() {
            parts.push(format!("applied {}", self.applied.join(", ")));
        }
        write!(f, "{}; now at {current}", parts.join("; "))
    }
}

/// `time` (UTC) as RFC 3339 with whole seconds, `YYYY-MM-DDTHH:MM:SSZ`.
fn rfc3339(time: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(time).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list() -> Vec<Migration> {
        vec![
            Migration::new(
                "ext_litestar_0001",
                "one",
                vec!["CREATE TABLE a (x INTEGER)".into()],
            ),
            Migration::new(
                "ext_litestar_0002",
                "two",
                vec!["CREATE TABLE b (x INTEGER)".into()],
            ),
        ]
    }

    #[test]
    fn nothing_applied_plans_everything_in_order() {
        let list = list();
        let todo = plan("t", &list, &[]).unwrap();
        assert_eq!(
            todo.iter().map(|m| m.version).collect::<Vec<_>>(),
            ["ext_litestar_0001", "ext_litestar_0002"]
        );
        let all: Vec<_> = list.iter().map(AppliedMigration::now).collect();
        assert!(plan("t", &list, &all).unwrap().is_empty());
    }

    #[test]
    fn checksum_mismatch_names_the_version() {
        let list = list();
        let mut record = AppliedMigration::now(&list[0]);
        record.checksum = checksum(&["CREATE TABLE a (x TEXT)".into()]);
        let err = plan("sqlite", &list, &[record]).unwrap_err();
        assert!(err.to_string().contains("ext_litestar_0001"), "{err}");
        let source = MigrationError::of(&err);
        assert!(matches!(
            source,
            Some(MigrationError::ChecksumMismatch { .. })
        ));
    }

    #[test]
    fn unknown_version_is_refused() {
        let list = list();
        let mut record = AppliedMigration::now(&list[0]);
        record.version = "ext_litestar_0009".into();
        let err = plan("sqlite", &list, &[record]).unwrap_err();
        assert!(err.to_string().contains("ext_litestar_0009"), "{err}");
    }

    #[test]
    fn checksum_is_stable() {
        // Pinned: a change here would invalidate every recorded checksum.
        assert_eq!(
            checksum(&["SELECT 1".into()]),
            "b4e0497804e46e0a0b0b8c31975b062152d551bac49c3c2e80932567b4085dcd"
        );
    }

    #[test]
    fn lists_are_validated() {
        assert!(validate_list(&list()).is_ok());
        let mut reversed = list();
        reversed.reverse();
        assert!(validate_list(&reversed).is_err());
        let bad = vec![Migration::new("0001", "x", vec![])];
        assert!(validate_list(&bad).is_err());
    }

    #[test]
    fn columns_are_compared() {
        let expected = [
            ColumnSpec {
                name: "a",
                data_type: "TIMESTAMP WITH TIME ZONE",
                not_null: Some(true),
            },
            ColumnSpec {
                name: "b",
                data_type: "TEXT",
                not_null: None,
            },
        ];
        let ok = vec![
            ColumnInfo {
                name: "A".into(),
                data_type: "timestamp(6) with time zone".into(),
                not_null: true,
            },
            ColumnInfo {
                name: "b".into(),
                data_type: "text".into(),
                not_null: false,
            },
        ];
        assert_eq!(compare_columns(&expected, &ok), None);
        let bad = vec![
            ColumnInfo {
                name: "a".into(),
                data_type: "TEXT".into(),
                not_null: false,
            },
            ColumnInfo {
                name: "c".into(),
                data_type: "TEXT".into(),
                not_null: false,
            },
        ];
        let diff = compare_columns(&expected, &bad).unwrap();
        assert!(diff.contains("column `a` is TEXT"), "{diff}");
        assert!(
            diff.contains("column `a` is nullable, expected NOT NULL"),
            "{diff}"
        );
        assert!(diff.contains("column `b` is missing"), "{diff}");
        assert!(diff.contains("column `c` is not part"), "{diff}");
    }

    #[test]
    fn rfc3339_formats_utc() {
        use std::time::{Duration, UNIX_EPOCH};
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(1_714_564_800)),
            "2024-05-01T12:00:00Z"
        );
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00Z"
        );
    }

    #[test]
    fn script_records_each_version() {
        let sql = script(
            "CREATE TABLE t_migrations (v TEXT)",
            "t_migrations",
            &list(),
        );
        assert!(sql.contains("-- ext_litestar_0002: two\n"));
        assert!(sql.contains("INSERT INTO t_migrations (version, description, checksum) VALUES ('ext_litestar_0001', 'one', '"));
    }
}
