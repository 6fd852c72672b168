//! `sessions`: delete expired sessions and manage the session table's
//! migrations, on any backend the `session-open` scheme table compiles in,
//! without writing code.
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
use serde_json::Value;
use session_core::{Error, StoreAdmin};

#[derive(Debug, Parser)]
#[command(
    name = "sessions",
    version,
    about = "Manage server-side session tables: delete expired sessions, run the table's migrations.",
    long_about = "Manage server-side session tables: delete expired sessions, run the table's \
                  migrations.\n\nThe database comes from --database-url or the DATABASE_URL \
                  variable; the URL forms this build opens are listed below.\n\n\
                  Exit status: 0 on success, 1 on a database error, 2 on a usage or \
                  configuration error; errors are one line on stderr."
)]
struct Cli {
    /// The database URL (forms below). Defaults to the DATABASE_URL
    /// environment variable.
    #[arg(long, global = true, value_name = "URL")]
    database_url: Option<String>,

    /// The backend's config file (.json or .toml): its own fields, e.g.
    /// table = "custom_sessions", or SQLSpec's shape,
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
        /// Rows deleted per transaction (default: the backend's
        /// `cleanup_batch_size`).
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
    use clap::{CommandFactory, FromArgMatches};
    let command =
        Cli::command().after_help(format!("Database URLs: {}", session_open::url_forms()));
    let cli = match Cli::from_arg_matches(&command.get_matches()) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("sessions: error: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}

/// The database URL: `--database-url`, else `DATABASE_URL`.
fn database_url(cli: &Cli) -> Result<String, Failure> {
    match &cli.database_url {
        Some(url) => Ok(url.clone()),
        None => std::env::var("DATABASE_URL").map_err(|_| {
            Failure::usage("no database given: pass --database-url or set DATABASE_URL")
        }),
    }
}

/// The backend's configuration document: the `--config` file, or the
/// defaults.
fn config_document(cli: &Cli) -> Result<Value, Failure> {
    Ok(match cli.config.as_deref() {
        Some(path) => session_core::read_document(path)?,
        None => Value::Null,
    })
}

fn run(cli: Cli) -> Result<(), Failure> {
    let url = database_url(&cli)?;
    let config = config_document(&cli)?;
    let connector = session_open::connector_for(&url)?;
    if let Command::Migrate {
        action: MigrateAction::Sql,
    } = cli.command
    {
        // No connection needed: the SQL is rendered from the config alone.
        match connector.migration_sql(&url, &config)? {
            Some(sql) => print!("{sql}"),
            None => println!(
                "-- {} has no schema: nothing to migrate",
                session_open::redact(&url)
            ),
        }
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
        let store = connector.open(&url, &config).await?;
        match cli.command {
            Command::DeleteExpired {
                verbose,
                batch_size,
            } => delete_expired(&*store, verbose, batch_size).await,
            Command::Migrate { action } => match action {
                MigrateAction::Upgrade => {
                    let report = store.migrate().await?;
                    if store.migrations().is_empty() {
                        // Nothing to migrate, but the store must be there.
                        store.session_table_exists().await?;
                        println!("{} has no schema: nothing to migrate", store.describe());
                    } else {
                        println!("{report}");
                    }
                    Ok(())
                }
                MigrateAction::Current { verbose } => current(&*store, verbose).await,
                MigrateAction::Sql => Ok(()),
            },
        }
    })
}

async fn delete_expired(
    backend: &dyn StoreAdmin,
    verbose: bool,
    batch_size: Option<u32>,
) -> Result<(), Failure> {
    let table = backend.location();
    if !backend.session_table_exists().await? {
        return Err(Failure {
            message: format!(
                "the session table `{table}` does not exist; create it with `sessions migrate upgrade`"
            ),
            code: 1,
        });
    }
    if let Some(why) = backend.expires_by_itself() {
        let removed = backend.delete_expired().await?;
        println!("deleted {removed} expired sessions: {why}");
        return Ok(());
    }
    let limit = batch_size.unwrap_or_else(|| backend.cleanup_batch_size());
    let started = Instant::now();
    let mut total = 0u64;
    let mut batch = 0u32;
    loop {
        let removed = backend.delete_expired_batch(limit).await?;
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

async fn current(backend: &dyn StoreAdmin, verbose: bool) -> Result<(), Failure> {
    if backend.migrations().is_empty() {
        // Nothing to migrate, but the store must be there.
        backend.session_table_exists().await?;
        println!("{} has no schema: nothing to migrate", backend.describe());
        return Ok(());
    }
    let applied = backend.applied_migrations().await?;
    let table = backend.location();
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
    fn unknown_schemes_are_usage_errors_without_the_password() {
        let err = Failure::from(
            session_open::connector_for("mysql://root:s3cret@db/app")
                .err()
                .unwrap(),
        );
        assert!(err.message.contains("`mysql://`"), "{}", err.message);
        assert!(!err.message.contains("s3cret"), "{}", err.message);
        assert_eq!(err.code, 2);
    }

    #[test]
    fn the_cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
