//! `cargo run -p session-demo`: serves the demo on 127.0.0.1:8000.
//!
//! `--bind ADDR` or `BIND` changes the address; `DATABASE_URL` picks the
//! store (`sqlite://session-demo.sqlite` by default, `postgres://...` for
//! PostgreSQL). `--litestar-compatible` (or `SESSION_LITESTAR_COMPATIBLE=1`)
//! shares sessions with a Litestar application on SQLSpec's session table
//! (`docs/litestar.md`); `--session-table NAME` (or `SESSION_TABLE`) names
//! the table of a SQL store. `RUST_LOG` sets the log filter (default
//! `info`).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use session_core::cleanup::{CleanupOptions, spawn_cleanup};

use tracing_subscriber::EnvFilter;

fn usage() -> String {
    format!(
        "usage: session-demo [--bind ADDR] [--litestar-compatible] [--session-table NAME]

Serves the session demo (login, profile, logout).

  --bind ADDR            address to listen on (env BIND; default 127.0.0.1:8000)
  --litestar-compatible  share sessions with a Litestar application on SQLSpec's
                         session table (env SESSION_LITESTAR_COMPATIBLE=1): raw
                         session ids as keys (not hashed), renew_on_access on,
                         the table {table} unless --session-table
                         (see docs/litestar.md)
  --session-table NAME   the session table of a SQL store (env SESSION_TABLE;
                         default {table})
  DATABASE_URL           the session store (default {url}); one of:
                         {forms}
  RUST_LOG               log filter (default info)",
        table = session_demo::LITESTAR_SESSION_TABLE,
        url = session_demo::DEFAULT_DATABASE_URL,
        forms = session_open::url_forms()
    )
}

/// What the command line and the environment ask for.
#[derive(Debug, PartialEq)]
struct Options {
    bind: SocketAddr,
    litestar_compatible: bool,
    /// The session table, when one is named (or implied by
    /// `--litestar-compatible`).
    table: Option<String>,
}

/// `--help`, or the options to run with.
#[derive(Debug, PartialEq)]
enum Parsed {
    Help,
    Run(Options),
}

/// A switch from the environment: `1`/`true`/`yes`/`on` or
/// `0`/`false`/`no`/`off`/empty (any case); anything else is refused, by
/// name.
fn env_switch(var: &str, value: Option<String>) -> Result<bool, String> {
    let Some(value) = value else {
        return Ok(false);
    };
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "" | "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(format!(
            "{var}={value:?} is not a switch; use 1 or 0 (true/false, yes/no, on/off)"
        )),
    }
}

/// Parses `args` (without the program name), reading the variables `BIND`,
/// `SESSION_LITESTAR_COMPATIBLE` and `SESSION_TABLE` through `env`; a flag
/// wins over its variable.
fn parse_options(
    args: impl IntoIterator<Item = String>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Parsed, String> {
    let mut bind = env("BIND");
    let mut litestar = env_switch(
        "SESSION_LITESTAR_COMPATIBLE",
        env("SESSION_LITESTAR_COMPATIBLE"),
    )?;
    let mut table = env("SESSION_TABLE").filter(|t| !t.trim().is_empty());
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--bind" => bind = Some(args.next().ok_or("--bind needs an address")?),
            "--session-table" => {
                table = Some(args.next().ok_or("--session-table needs a table name")?);
            }
            "--litestar-compatible" => litestar = true,
            "-h" | "--help" => return Ok(Parsed::Help),
            other => {
                if let Some(addr) = other.strip_prefix("--bind=") {
                    bind = Some(addr.to_owned());
                } else if let Some(name) = other.strip_prefix("--session-table=") {
                    table = Some(name.to_owned());
                } else {
                    return Err(format!("unknown argument {other:?}\n\n{}", usage()));
                }
            }
        }
    }
    let bind = bind.unwrap_or_else(|| "127.0.0.1:8000".into());
    let bind = bind
        .parse()
        .map_err(|e| format!("--bind {bind:?} is not an address like 127.0.0.1:8000: {e}"))?;
    if litestar && table.is_none() {
        table = Some(session_demo::LITESTAR_SESSION_TABLE.to_owned());
    }
    Ok(Parsed::Run(Options {
        bind,
        litestar_compatible: litestar,
        table,
    }))
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let options = match parse_options(std::env::args().skip(1), |var| std::env::var(var).ok()) {
        Ok(Parsed::Run(options)) => options,
        Ok(Parsed::Help) => {
            println!("{}", usage());
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("session-demo: {e}");
            return ExitCode::from(2);
        }
    };
    let addr = options.bind;
    let url =
        std::env::var("DATABASE_URL").unwrap_or_else(|_| session_demo::DEFAULT_DATABASE_URL.into());
    let store_config = session_demo::store_config(options.table.as_deref());
    let store = match session_demo::open_store(&url, &store_config).await {
        Ok(store) => store,
        Err(e) => {
            let hint = match (&e, options.litestar_compatible) {
                (session_core::Error::UnknownConfigKeys { .. }, true) => {
                    " (--litestar-compatible shares SQLSpec's session table: use a SQL database such as postgres://...)"
                }
                _ => "",
            };
            eprintln!(
                "session-demo: cannot open the session store {}: {}{hint}",
                session_open::redact(&url),
                session_core::error_chain(&e)
            );
            return ExitCode::FAILURE;
        }
    };
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("session-demo: cannot listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Expired sessions are deleted in the background, every 10 minutes,
    // unless the store's server expires them by itself (Redis, memcached).
    let cleaner = match store.expires_by_itself() {
        Some(why) => {
            tracing::info!("no session cleaner: {why}");
            None
        }
        None => match spawn_cleanup(store.clone(), CleanupOptions::new(Duration::from_secs(600))) {
            Ok(cleaner) => Some(cleaner),
            Err(e) => {
                eprintln!("session-demo: cannot start the session cleaner: {e}");
                return ExitCode::FAILURE;
            }
        },
    };
    let config = if options.litestar_compatible {
        session_demo::litestar_session_config()
    } else {
        session_demo::session_config()
    };
    let mode = if options.litestar_compatible {
        ", Litestar-compatible: raw session ids"
    } else {
        ""
    };
    let described = store.describe();
    let app = session_demo::app(store, config);
    // The address bound (a port 0 becomes the one the system chose).
    let addr = listener.local_addr().unwrap_or(addr);
    println!(
        "session-demo: serving on http://{addr}/ (sessions in {}: {described}{mode})",
        session_open::redact(&url)
    );
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
    {
        eprintln!("session-demo: server error: {e}");
        return ExitCode::FAILURE;
    }
    if let Some(cleaner) = cleaner {
        cleaner.stop().await;
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str], env: &[(&str, &str)]) -> Result<Parsed, String> {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        parse_options(args.iter().map(|a| (*a).to_owned()), |var| {
            env.iter().find(|(k, _)| k == var).map(|(_, v)| v.clone())
        })
    }

    fn run(args: &[&str], env: &[(&str, &str)]) -> Options {
        match parse(args, env) {
            Ok(Parsed::Run(options)) => options,
            other => panic!("{args:?} {env:?}: {other:?}"),
        }
    }

    #[test]
    fn without_the_switch_nothing_changes() {
        let o = run(&[], &[]);
        assert_eq!(o.bind, "127.0.0.1:8000".parse().unwrap());
        assert!(!o.litestar_compatible);
        assert_eq!(o.table, None);
        assert_eq!(
            session_demo::store_config(o.table.as_deref()),
            serde_json::Value::Null
        );
        let o = run(
            &["--bind=127.0.0.1:0"],
            &[("SESSION_LITESTAR_COMPATIBLE", "0")],
        );
        assert_eq!((o.bind.port(), o.litestar_compatible), (0, false));
    }

    #[test]
    fn the_switch_from_the_flag_or_the_environment_implies_sqlspecs_table() {
        for (args, env) in [
            (&["--litestar-compatible"][..], &[][..]),
            (&[], &[("SESSION_LITESTAR_COMPATIBLE", "1")]),
            (&[], &[("SESSION_LITESTAR_COMPATIBLE", " TRUE ")]),
        ] {
            let o = run(args, env);
            assert!(o.litestar_compatible, "{args:?} {env:?}");
            assert_eq!(o.table.as_deref(), Some("litestar_session"));
        }
        let o = run(
            &["--litestar-compatible", "--session-table", "auth.sessions"],
            &[("SESSION_TABLE", "ignored")],
        );
        assert_eq!(o.table.as_deref(), Some("auth.sessions"));
        let o = run(&["--session-table=t1"], &[]);
        assert_eq!(
            (o.litestar_compatible, o.table.as_deref()),
            (false, Some("t1"))
        );
        let o = run(
            &[],
            &[
                ("SESSION_TABLE", "t2"),
                ("SESSION_LITESTAR_COMPATIBLE", "yes"),
            ],
        );
        assert_eq!(o.table.as_deref(), Some("t2"));
    }

    #[test]
    fn bad_input_is_named() {
        let err = parse(&[], &[("SESSION_LITESTAR_COMPATIBLE", "maybe")]).unwrap_err();
        assert!(
            err.contains("SESSION_LITESTAR_COMPATIBLE=\"maybe\""),
            "{err}"
        );
        let err = parse(&["--session-table"], &[]).unwrap_err();
        assert!(err.contains("--session-table needs"), "{err}");
        let err = parse(&["--litestar"], &[]).unwrap_err();
        assert!(err.contains("unknown argument \"--litestar\""), "{err}");
        assert_eq!(parse(&["--help", "--nonsense"], &[]), Ok(Parsed::Help));
        assert!(usage().contains("--litestar-compatible"));
        assert!(usage().contains("SESSION_LITESTAR_COMPATIBLE=1"));
    }
}
