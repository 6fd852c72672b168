//! `sessions`: delete expired sessions and manage the session table's
//! migrations, on SQLite, PostgreSQL or Oracle, without writing code.
//!
//! ```text
//! sessions [--database-url URL] [--config FILE] delete-expired [--verbose] [--batch-size N]
//! sessions [--database-url URL] [--config FILE] migrate upgrade
//! sessions [--database-url URL] [--config FILE] migrate current [--verbose]
//! sessions [--database-url URL] [--config FILE] migrate sql
//! ```
//!
//! Exit status: 0 on success; 1 when the database fails (unreachable, a
//! missing table, a migration refused); 2 for a usage or configuration
//! error (bad flag, unknown URL scheme, bad config key). Every error is one
//! line on stderr; nothing else is written to stderr.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand};
use session_core::migrate::{AppliedMigration, MigrateReport, Migration};
use session_core::{Error, ExtensionConfig, TableName};
use session_oracle::{ConnectOptions, OracleStore, StoreSettings};
use session_postgres::{PoolSettings, PostgresStore, PostgresStoreConfig};
use session_sqlite::{SqliteOptions, SqliteStore};

/// The URL schemes `--database-url` accepts.
const KNOWN_SCHEMES: &str = "sqlite://, postgres://, postgresql://, oracle://";

#[derive(Debug, Parser)]
#[command(
    name = "sessions",
    version,
    about = "Manage server-side session tables: delete expired sessions, run the table's migrations.",
    long_about = "Manage server-side session tables: delete expired sessions, run the table's \
                  migrations.\n\nThe database comes from --database-url or the DATABASE_URL \
                  variable: sqlite://PATH, postgres://USER@HOST:PORT/DB (or postgresql://), \
                  oracle://USER@HOST:PORT/SERVICE with the password in ORACLE_PASSWORD.\n\n\
                  Exit status: 0 on success, 1 on a database error, 2 on a usage or \
                  configuration error; errors are one line on stderr."
)]
struct Cli {
    /// The database: sqlite://PATH, postgres://..., postgresql://... or
    /// oracle://USER@HOST:PORT/SERVICE (password from ORACLE_PASSWORD).
    /// Defaults to the DATABASE_URL environment variable.
    #[arg(long, global = true, value_name = "URL")]
    database_url: Option<String>,

    /// Extension config file (.json or .toml) in SQLSpec's shape, e.g.
    /// {"litestar": {"session_table": "custom_sessions"}}.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Delete expired sessions and print how many were deleted.
    DeleteExpired {
        /// Print every batch and the time taken.
        #[arg(long, short)]
        verbose: bool,
        /// Rows deleted per transaction (default: the backend's, 1000 on
        /// SQLite and Oracle, 5000 on PostgreSQL).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
        batch_size: Option<u32>,
    },
    /// Manage the session table's versioned migrations.
    Migrate {
        #[command(subcommand)]
        action: MigrateAction,
    },
}

#[derive(Debug, Subcommand)]
enum MigrateAction {
    /// Apply every missing migration (creating or adopting the session table).
    Upgrade,
    /// Show the applied migrations (and pending ones).
    Current {
        /// Also print when each was applied and its checksum.
        #[arg(long, short)]
        verbose: bool,
    },
    /// Print the SQL of every migration, for a migration tool of your own.
    Sql,
}

/// A failure: its one-line message and exit status.
struct Failure {
    message: String,
    code: u8,
}

impl Failure {
    fn usage(message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            code: 2,
        }
    }
}

impl From<Error> for Failure {
    fn from(err: Error) -> Self {
        let code = match err {
            Error::InvalidConfig { .. }
            | Error::UnknownConfigKeys { .. }
            | Error::InvalidIdentifier { .. } => 2,
            _ => 1,
        };
        Failure {
            message: one_line(&err),
            code,
        }
    }
}

/// The error and its causes on one line, each cause once.
fn one_line(err: &(dyn std::error::Error + 'static)) -> String {
    let mut line = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !text.is_empty() && !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        source = cause.source();
    }
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("sessions: error: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}

/// The database kind a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Sqlite,
    Postgres,
    Oracle,
}

fn kind_of(url: &str) -> Result<Kind, Failure> {
    let scheme = url.split_once(':').map(|(s, _)| s).unwrap_or("");
    match scheme.to_ascii_lowercase().as_str() {
        "sqlite" => Ok(Kind::Sqlite),
        "postgres" | "postgresql" => Ok(Kind::Postgres),
        "oracle" => Ok(Kind::Oracle),
        _ => {
            // Only the scheme is repeated: the rest may hold a password.
            let shown = if scheme.is_empty()
                || !scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
            {
                "(none)".to_owned()
            } else {
                format!("`{scheme}://`")
            };
            Err(Failure::usage(format!(
                "unknown database URL scheme {shown}; known schemes: {KNOWN_SCHEMES}"
            )))
        }
    }
}

/// An opened store of one of the three backends.
enum Backend {
    Sqlite(SqliteStore),
    Postgres(PostgresStore),
    Oracle(OracleStore),
}

/// The configuration of the store a URL and config file name, before any
/// connection.
enum Plan {
    Sqlite {
        url: String,
        config: ExtensionConfig,
    },
    Postgres {
        url: String,
        config: PostgresStoreConfig,
    },
    Oracle {
        options: Box<ConnectOptions>,
        settings: StoreSettings,
    },
}

fn plan(cli: &Cli) -> Result<Plan, Failure> {
    let url = match &cli.database_url {
        Some(url) => url.clone(),
        None => std::env::var("DATABASE_URL").map_err(|_| {
            Failure::usage("no database given: pass --database-url or set DATABASE_URL")
        })?,
    };
    let kind = kind_of(&url)?;
    let file = cli.config.as_deref();
    Ok(match kind {
        Kind::Sqlite => Plan::Sqlite {
            config: match file {
                Some(path) => ExtensionConfig::from_path(path, SqliteStore::ACCEPTED_KEYS)?,
                None => ExtensionConfig::new(),
            },
            url,
        },
        Kind::Postgres => Plan::Postgres {
            config: match file {
                Some(path) => PostgresStoreConfig::from_path(path)?,
                None => PostgresStoreConfig::new(),
            },
            url,
        },
        Kind::Oracle => Plan::Oracle {
            settings: match file {
                Some(path) => StoreSettings::from_extension_config(&ExtensionConfig::from_path(
                    path,
                    session_oracle::ACCEPTED_KEYS,
                )?)?,
                None => StoreSettings::new(),
            },
            options: Box::new(oracle_options(&url)?),
        },
    })
}

/// `oracle://user@host:port/service`, the password from `ORACLE_PASSWORD`.
fn oracle_options(url: &str) -> Result<ConnectOptions, Failure> {
    let rest = url
        .split_once("://")
        .map(|(_, rest)| rest)
        .unwrap_or_default();
    let Some((user, connect)) = rest.rsplit_once('@') else {
        return Err(Failure::usage(
            "an oracle:// URL needs a user: oracle://USER@HOST:PORT/SERVICE",
        ));
    };
    if user.contains(':') {
        return Err(Failure::usage(
            "the oracle:// URL holds a password; put it in ORACLE_PASSWORD instead",
        ));
    }
    if user.is_empty() || connect.is_empty() {
        return Err(Failure::usage(
            "an oracle:// URL needs a user and an address: oracle://USER@HOST:PORT/SERVICE",
        ));
    }
    let password = std::env::var("ORACLE_PASSWORD")
        .map_err(|_| Failure::usage("ORACLE_PASSWORD is not set; it holds the Oracle password"))?;
    Ok(ConnectOptions::new(user, password, connect))
}

fn table_of(plan: &Plan) -> Result<TableName, Failure> {
    Ok(match plan {
        Plan::Sqlite { config, .. } => config.session_table(63)?,
        Plan::Postgres { config, .. } => config.table().clone(),
        Plan::Oracle { settings, .. } => settings.table().clone(),
    })
}

async fn open(plan: Plan, batch_size: Option<u32>) -> Result<Backend, Failure> {
    Ok(match plan {
        Plan::Sqlite { url, config } => {
            let mut options = SqliteOptions::new();
            if let Some(n) = batch_size {
                options = options.cleanup_batch_size(n);
            }
            Backend::Sqlite(SqliteStore::open_with(&url, config, options)?)
        }
        Plan::Postgres { url, mut config } => {
            if let Some(n) = batch_size {
                config = config.with_delete_batch_size(n)?;
            }
            let pool = PoolSettings {
                max_size: 2,
                ..PoolSettings::default()
            };
            Backend::Postgres(PostgresStore::from_url(&url, pool, config)?)
        }
        Plan::Oracle { options, settings } => {
            Backend::Oracle(OracleStore::connect(*options, settings).await?)
        }
    })
}

impl Backend {
    fn default_batch(&self) -> u32 {
        match self {
            Backend::Sqlite(_) => SqliteOptions::DEFAULT_CLEANUP_BATCH_SIZE,
            Backend::Postgres(s) => s.config().delete_batch_size(),
            Backend::Oracle(_) => session_oracle::DELETE_EXPIRED_BATCH,
        }
    }

    fn table(&self) -> TableName {
        match self {
            Backend::Sqlite(s) => s.table().clone(),
            Backend::Postgres(s) => s.config().table().clone(),
            Backend::Oracle(s) => s.table().clone(),
        }
    }

    fn migrations(&self) -> Vec<Migration> {
        match self {
            Backend::Sqlite(s) => session_sqlite::migrations::migrations(s.table()),
            Backend::Postgres(s) => session_postgres::migrations::migrations(s.config()),
            Backend::Oracle(s) => session_oracle::migrations::migrations(s.settings()),
        }
    }

    async fn table_exists(&self) -> session_core::Result<bool> {
        match self {
            Backend::Sqlite(s) => s.session_table_exists().await,
            Backend::Postgres(s) => s.session_table_exists().await,
            Backend::Oracle(s) => s.session_table_exists().await,
        }
    }

    async fn delete_batch(&self, limit: u32) -> session_core::Result<u64> {
        match self {
            Backend::Sqlite(s) => s.delete_expired_batch(limit).await,
            Backend::Postgres(s) => s.delete_expired_batch(limit).await,
            Backend::Oracle(s) => s.delete_expired_batch(limit).await,
        }
    }

    async fn migrate(&self) -> session_core::Result<MigrateReport> {
        match self {
            Backend::Sqlite(s) => s.migrate().await,
            Backend::Postgres(s) => s.migrate().await,
            Backend::Oracle(s) => s.migrate().await,
        }
    }

    async fn applied(&self) -> session_core::Result<Vec<AppliedMigration>> {
        match self {
            Backend::Sqlite(s) => s.applied_migrations().await,
            Backend::Postgres(s) => s.applied_migrations().await,
            Backend::Oracle(s) => s.applied_migrations().await,
        }
    }
}

fn run(cli: Cli) -> Result<(), Failure> {
    let plan = plan(&cli)?;
    if let Command::Migrate {
        action: MigrateAction::Sql,
    } = cli.command
    {
        // No connection needed: the SQL is rendered from the config alone.
        let sql = match &plan {
            Plan::Sqlite { .. } => session_sqlite::migrations::migration_sql(&table_of(&plan)?),
            Plan::Postgres { config, .. } => session_postgres::migrations::migration_sql(config),
            Plan::Oracle { settings, .. } => session_oracle::migrations::migration_sql(settings),
        };
        print!("{sql}");
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure {
            message: format!("cannot start the async runtime: {e}"),
            code: 1,
        })?;
    runtime.block_on(async move {
        match cli.command {
            Command::DeleteExpired {
                verbose,
                batch_size,
            } => {
                let backend = open(plan, batch_size).await?;
                delete_expired(&backend, verbose, batch_size).await
            }
            Command::Migrate { action } => {
                let backend = open(plan, None).await?;
                match action {
                    MigrateAction::Upgrade => {
                        let report = backend.migrate().await?;
                        println!("{report}");
                        Ok(())
                    }
                    MigrateAction::Current { verbose } => current(&backend, verbose).await,
                    MigrateAction::Sql => Ok(()),
                }
            }
        }
    })
}

async fn delete_expired(
    backend: &Backend,
    verbose: bool,
    batch_size: Option<u32>,
) -> Result<(), Failure> {
    let table = backend.table();
    if !backend.table_exists().await? {
        return Err(Failure {
            message: format!(
                "the session table `{table}` does not exist; create it with `sessions migrate upgrade`"
            ),
            code: 1,
        });
    }
    let limit = batch_size.unwrap_or_else(|| backend.default_batch());
    let started = Instant::now();
    let mut total = 0u64;
    let mut batch = 0u32;
    loop {
        let removed = backend.delete_batch(limit).await?;
        batch += 1;
        total += removed;
        if verbose {
            println!("batch {batch}: deleted {removed} expired sessions");
        }
        if removed < u64::from(limit) {
            break;
        }
    }
    if verbose {
        println!(
            "deleted {total} expired sessions from `{table}` in {:.1} ms",
            started.elapsed().as_secs_f64() * 1000.0
        );
    } else {
        println!("deleted {total} expired sessions");
    }
    Ok(())
}

async fn current(backend: &Backend, verbose: bool) -> Result<(), Failure> {
    let applied = backend.applied().await?;
    let table = backend.table();
    if applied.is_empty() {
        println!("no migrations applied to `{table}`; run `sessions migrate upgrade`");
    }
    for record in &applied {
        if verbose {
            println!(
                "{}  applied {}  checksum {}  {}",
                record.version,
                record.applied_at_rfc3339(),
                record.checksum,
                record.description
            );
        } else {
            println!("{}", record.version);
        }
    }
    for pending in backend
        .migrations()
        .iter()
        .filter(|m| !applied.iter().any(|a| a.version == m.version))
    {
        println!("{}  pending  {}", pending.version, pending.description);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_are_recognised() {
        assert_eq!(kind_of("sqlite://x.db").ok(), Some(Kind::Sqlite));
        assert_eq!(kind_of("postgresql://a@b/c").ok(), Some(Kind::Postgres));
        assert_eq!(kind_of("postgres://a@b/c").ok(), Some(Kind::Postgres));
        assert_eq!(kind_of("oracle://a@b:1521/s").ok(), Some(Kind::Oracle));
        let err = kind_of("mysql://root:s3cret@db/app").err().unwrap();
        assert!(err.message.contains("`mysql://`"), "{}", err.message);
        assert!(!err.message.contains("s3cret"), "{}", err.message);
        assert_eq!(err.code, 2);
    }

    #[test]
    fn oracle_urls_keep_the_password_out() {
        let err = oracle_options("oracle://app:pw@db:1521/FREEPDB1")
            .err()
            .unwrap();
        assert!(err.message.contains("ORACLE_PASSWORD"), "{}", err.message);
        assert!(!err.message.contains("pw@"), "{}", err.message);
    }

    #[test]
    fn the_cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
