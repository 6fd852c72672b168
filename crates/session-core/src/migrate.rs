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
//! * [`Dialect`] and [`SqlExecutor`]: the one migration loop. An adapter
//!   supplies only its SQL (how to lock, read what was applied, inspect a
//!   table's columns) and a connection that runs text statements.
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
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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

impl ColumnSpec {
    /// A column `name` of `data_type`; `not_null`: `None` accepts either.
    pub const fn new(name: &'static str, data_type: &'static str, not_null: Option<bool>) -> Self {
        ColumnSpec {
            name,
            data_type,
            not_null,
        }
    }
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

/// The SQL of one backend's migration machinery for one session table:
/// everything [`Dialect::run`] needs besides a connection. An adapter
/// fills it in (a few statements in its own SQL dialect) and hands it a
/// [`SqlExecutor`] over one connection; the loop, the plan, adoption and
/// the parsing of rows live here, once.
///
/// Every query's columns are read as text (or `NULL`), so cast in the SQL
/// where the driver would not convert (`::text` on PostgreSQL).
#[derive(Debug, Clone)]
pub struct Dialect {
    /// The backend's name in errors and logs (`sqlite`, `postgres`, ...).
    pub backend: &'static str,
    /// The session table being migrated.
    pub table: TableName,
    /// The backend's ordered migrations, rendered for this table and its
    /// settings (the first is [`Migration::initial`]).
    pub migrations: Vec<Migration>,
    /// The seed's columns, as this backend's catalog reports them; an
    /// existing table is adopted only if it has exactly these.
    pub session_columns: &'static [ColumnSpec],
    /// Creates the tracking table `<table>_migrations` (idempotent where
    /// the database allows).
    pub tracking_ddl: String,
    /// `true` where DDL commits on its own (Oracle): `tracking_ddl` then
    /// runs once, before the first step and outside any transaction, with
    /// an "already exists" error ignored. `false`: it runs inside each
    /// step, after `begin`.
    pub ddl_commits: bool,
    /// Starts one step: a transaction and the lock that keeps concurrent
    /// runs apart until its `COMMIT` or `ROLLBACK`.
    pub begin: Vec<String>,
    /// The tracking table's rows, oldest version first: `version`,
    /// `description`, `checksum`, and `applied_at` as whole unix seconds.
    pub select_applied: String,
    /// Records a migration; parameters 1 to 3: version, description,
    /// checksum.
    pub insert: String,
    /// One row if a table exists, none otherwise; parameters 1 and 2: the
    /// table name and its schema (`NULL` for the default).
    pub table_exists: String,
    /// The columns of a table: name, type, and whether it is `NOT NULL`
    /// (`1`/`0`, `t`/`f` or `true`/`false`); parameters as `table_exists`.
    pub columns: String,
}

/// One connection, as [`Dialect`] uses it: statements and queries with
/// text parameters, rows read as text. Implemented by each SQL adapter in a
/// few lines over its driver.
#[async_trait::async_trait]
pub trait SqlExecutor: Send {
    /// Runs one statement (`params` bind to its placeholders in order;
    /// none for DDL and transaction control).
    async fn execute(&mut self, sql: &str, params: &[Option<&str>]) -> Result<()>;

    /// Runs a query and returns its rows, every column as text or `NULL`.
    async fn query(
        &mut self,
        sql: &str,
        params: &[Option<&str>],
    ) -> Result<Vec<Vec<Option<String>>>>;

    /// True if `err`, returned by [`execute`](Self::execute), says the
    /// object being created already exists (ignored where DDL commits on
    /// its own: another instance created it). Default: never.
    fn already_exists(&self, err: &Error) -> bool {
        let _ = err;
        false
    }

    /// True if `err`, returned by [`execute`](Self::execute), is a unique
    /// violation: another instance recorded the migration first, and the
    /// runner re-plans. Default: never.
    fn unique_violation(&self, err: &Error) -> bool {
        let _ = err;
        false
    }
}

impl Dialect {
    /// Applies every migration the tracking table does not record, one
    /// transaction per migration, and returns what it did: the one
    /// migration loop of every SQL adapter.
    ///
    /// A session table that exists without a tracking record (made by
    /// SQLSpec or the adapter's `create_table()`) is adopted: its columns
    /// are checked against [`session_columns`](Self::session_columns) and
    /// it is recorded as at [`EXT_LITESTAR_0001`], its rows untouched.
    /// Idempotent, and safe when many instances run it at once: each step
    /// re-reads the tracking table under the dialect's lock.
    ///
    /// # Errors
    ///
    /// A recorded checksum that differs, an unknown recorded version, or an
    /// existing table of another shape: an [`Error::Backend`] whose source
    /// is a [`MigrationError`] naming the version or every difference. Any
    /// error of the executor, after the step's transaction is rolled back.
    pub async fn run(&self, ex: &mut dyn SqlExecutor) -> Result<MigrateReport> {
        let mut report = MigrateReport::default();
        if self.ddl_commits {
            self.ignoring_existing(ex, &self.tracking_ddl).await?;
        }
        loop {
            let step = self.step(ex).await;
            let end = match &step {
                Ok(Step::Recorded(..) | Step::UpToDate(_)) => ex.execute("COMMIT", &[]).await,
                Ok(Step::Lost) | Err(_) => ex.execute("ROLLBACK", &[]).await,
            };
            let step = match (step, end) {
                (Err(err), end) => {
                    if let Err(e) = end {
                        tracing::debug!(error = %e, "rollback after a failed migration step failed");
                    }
                    return Err(err);
                }
                (Ok(_), Err(err)) => {
                    // Leave no transaction open on a failed COMMIT.
                    let _ = ex.execute("ROLLBACK", &[]).await;
                    return Err(err);
                }
                (Ok(step), Ok(())) => step,
            };
            match step {
                Step::UpToDate(current) => {
                    report.current = current;
                    return Ok(report);
                }
                Step::Recorded(version, adopted) => report.record(version, adopted),
                Step::Lost => {
                    tracing::debug!("another instance recorded this migration first");
                }
            }
        }
    }

    /// One transaction: the next migration applied (or adopted) and
    /// recorded, or nothing left to do.
    async fn step(&self, ex: &mut dyn SqlExecutor) -> Result<Step> {
        for statement in &self.begin {
            ex.execute(statement, &[]).await?;
        }
        if !self.ddl_commits {
            ex.execute(&self.tracking_ddl, &[]).await?;
        }
        let applied = self.read_applied(ex).await?;
        let pending = plan(self.backend, &self.migrations, &applied)?;
        let Some(next) = pending.first().copied() else {
            return Ok(Step::UpToDate(applied.last().map(|a| a.version.clone())));
        };
        let adopt = next.version == EXT_LITESTAR_0001 && self.table_exists(ex, &self.table).await?;
        if adopt {
            let columns = self.columns(ex).await?;
            ensure_adoptable(self.backend, &self.table, self.session_columns, &columns)?;
        } else {
            for statement in &next.statements {
                if self.ddl_commits {
                    self.ignoring_existing(ex, statement).await?;
                } else {
                    ex.execute(statement, &[]).await?;
                }
            }
        }
        let checksum = next.checksum();
        let params = [
            Some(next.version),
            Some(next.description),
            Some(checksum.as_str()),
        ];
        match ex.execute(&self.insert, &params).await {
            Ok(()) => Ok(Step::Recorded(next.version, adopt)),
            Err(err) if ex.unique_violation(&err) => Ok(Step::Lost),
            Err(err) => Err(err),
        }
    }

    async fn ignoring_existing(&self, ex: &mut dyn SqlExecutor, sql: &str) -> Result<()> {
        match ex.execute(sql, &[]).await {
            Err(err) if ex.already_exists(&err) => Ok(()),
            other => other,
        }
    }

    /// The applied migrations, oldest version first; empty when the
    /// tracking table does not exist yet. Reads outside any transaction.
    ///
    /// # Errors
    ///
    /// Any error of the executor; a tracking row that cannot be read.
    pub async fn applied(&self, ex: &mut dyn SqlExecutor) -> Result<Vec<AppliedMigration>> {
        if !self
            .table_exists(ex, &self.table.migrations_table())
            .await?
        {
            return Ok(Vec::new());
        }
        self.read_applied(ex).await
    }

    /// True if `table` (the session table or its tracking table) exists.
    ///
    /// # Errors
    ///
    /// Any error of the executor.
    pub async fn table_exists(&self, ex: &mut dyn SqlExecutor, table: &TableName) -> Result<bool> {
        let rows = ex
            .query(&self.table_exists, &[Some(table.table()), table.schema()])
            .await?;
        Ok(!rows.is_empty())
    }

    /// Every migration as one SQL script, with the tracking table; see
    /// [`script`].
    pub fn script(&self) -> String {
        script(
            &self.tracking_ddl,
            &self.table.migrations_table().qualified(),
            &self.migrations,
        )
    }

    async fn columns(&self, ex: &mut dyn SqlExecutor) -> Result<Vec<ColumnInfo>> {
        let rows = ex
            .query(
                &self.columns,
                &[Some(self.table.table()), self.table.schema()],
            )
            .await?;
        rows.into_iter()
            .map(|row| {
                let [name, data_type, not_null] = self.cells::<3>(row, "column")?;
                Ok(ColumnInfo {
                    name,
                    data_type,
                    not_null: matches!(
                        not_null.to_ascii_lowercase().as_str(),
                        "1" | "t" | "true" | "y"
                    ),
                })
            })
            .collect()
    }

    async fn read_applied(&self, ex: &mut dyn SqlExecutor) -> Result<Vec<AppliedMigration>> {
        let rows = ex.query(&self.select_applied, &[]).await?;
        rows.into_iter()
            .map(|row| {
                let [version, description, checksum, secs] = self.cells::<4>(row, "tracking")?;
                let secs: f64 = secs.trim().parse().map_err(|_| {
                    self.unreadable(format!(
                        "applied_at of {version} is {secs:?}, not unix seconds"
                    ))
                })?;
                Ok(AppliedMigration {
                    version,
                    description,
                    checksum,
                    applied_at: UNIX_EPOCH + Duration::try_from_secs_f64(secs).unwrap_or_default(),
                })
            })
            .collect()
    }

    /// A row's first `N` cells, `NULL` read as empty text.
    fn cells<const N: usize>(&self, row: Vec<Option<String>>, what: &str) -> Result<[String; N]> {
        let found = row.len();
        <[Option<String>; N]>::try_from(row)
            .map(|cells| cells.map(Option::unwrap_or_default))
            .map_err(|_| self.unreadable(format!("a {what} row has {found} columns, expected {N}")))
    }

    fn unreadable(&self, reason: String) -> Error {
        Error::backend(
            self.backend,
            format!("migrate (table `{}`)", self.table),
            reason,
        )
    }
}

/// What one step of [`Dialect::run`] did.
enum Step {
    /// Nothing left to apply; the latest recorded version.
    UpToDate(Option<String>),
    /// This version was applied (or adopted: `true`) and recorded.
    Recorded(&'static str, bool),
    /// Another instance recorded the version first.
    Lost,
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
