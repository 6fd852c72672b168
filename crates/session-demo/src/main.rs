//! `cargo run -p session-demo`: serves the demo on 127.0.0.1:8000.
//!
//! `--bind ADDR` or `BIND` changes the address; `DATABASE_URL` picks the
//! store (`sqlite://session-demo.sqlite` by default, `postgres://...` for
//! PostgreSQL, any scheme of `session-open`'s table). `--backend cookie`
//! (or `SESSION_BACKEND=cookie`) keeps the sessions in the browser instead,
//! sealed in the cookie under the secrets of `SESSION_SECRET` (a random one
//! for this run when unset). `--litestar-compatible` (or
//! `SESSION_LITESTAR_COMPATIBLE=1`) shares sessions with a Litestar
//! application on SQLSpec's session table (`docs/litestar.md`);
//! `--session-table NAME` (or `SESSION_TABLE`) names the table of a SQL
//! store. `RUST_LOG` sets the log filter (default `info`).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use session_core::cleanup::{CleanupOptions, spawn_cleanup};
use session_tower::{CookieKeys, MIN_SECRET_BYTES};

use tracing_subscriber::EnvFilter;

fn usage() -> String {
    format!(
        "usage: session-demo [--bind ADDR] [--backend store|cookie] [--litestar-compatible]
                    [--session-table NAME]

Serves the session demo (login, profile, logout).

  --bind ADDR            address to listen on (env BIND; default 127.0.0.1:8000)
  --backend BACKEND      where sessions live (env SESSION_BACKEND):
                           store   the store of DATABASE_URL (the default)
                           cookie  the browser: each session sealed (AES-256-GCM)
                                   in its cookie, no database, no cleaner
  --litestar-compatible  share sessions with a Litestar application on SQLSpec's
                         session table (env SESSION_LITESTAR_COMPATIBLE=1): raw
                         session ids as keys (not hashed), renew_on_access on,
                         the table {table} unless --session-table
                         (see docs/litestar.md); store backend only
  --session-table NAME   the session table of a SQL store (env SESSION_TABLE;
                         default {table})
  DATABASE_URL           the session store of --backend store (default {url});
                         one of:
                         {forms}
  SESSION_SECRET         the secrets of --backend cookie, each {min} bytes or more
                         (`openssl rand -base64 32`); several separated by commas
                         rotate keys: the first seals, all open (SESSION_SECRET=new,old).
                         Unset: a random secret for this run, and every session
                         ends when the demo stops
  RUST_LOG               log filter (default info)",
        table = session_demo::LITESTAR_SESSION_TABLE,
        url = session_demo::DEFAULT_DATABASE_URL,
        forms = session_open::url_forms(),
        min = MIN_SECRET_BYTES,
    )
}

/// Where the sessions live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    /// The store `DATABASE_URL` names, through `session-open`'s scheme table.
    Store,
    /// The browser: sealed cookies, no store.
    Cookie,
}

impl Backend {
    /// `store` or `cookie` (any case, spaces trimmed); `from` names where
    /// the value came from in the error (`--backend ` or `SESSION_BACKEND=`).
    fn parse(value: &str, from: &str) -> Result<Backend, String> {
        match value.trim().to_ascii_lowercase().as_str() {
            "store" => Ok(Backend::Store),
            "cookie" => Ok(Backend::Cookie),
            _ => Err(format!(
                "{from}{value:?} is not a backend: use store (the store of DATABASE_URL, \
                 the default) or cookie (sessions sealed in the cookie)"
            )),
        }
    }
}

/// What the command line and the environment ask for.
#[derive(Debug, PartialEq)]
struct Options {
    bind: SocketAddr,
    backend: Backend,
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
/// `SESSION_BACKEND`, `SESSION_LITESTAR_COMPATIBLE` and `SESSION_TABLE`
/// through `env`; a flag wins over its variable.
fn parse_options(
    args: impl IntoIterator<Item = String>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Parsed, String> {
    let mut bind = env("BIND");
    let mut backend = match env("SESSION_BACKEND").filter(|b| !b.trim().is_empty()) {
        Some(value) => Backend::parse(&value, "SESSION_BACKEND=")?,
        None => Backend::Store,
    };
    let mut litestar = env_switch(
        "SESSION_LITESTAR_COMPATIBLE",
        env("SESSION_LITESTAR_COMPATIBLE"),
    )?;
    let mut table = env("SESSION_TABLE").filter(|t| !t.trim().is_empty());
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--bind" => bind = Some(args.next().ok_or("--bind needs an address")?),
            "--backend" => {
                let value = args.next().ok_or("--backend needs store or cookie")?;
                backend = Backend::parse(&value, "--backend ")?;
            }
            "--session-table" => {
                table = Some(args.next().ok_or("--session-table needs a table name")?);
            }
            "--litestar-compatible" => litestar = true,
            "-h" | "--help" => return Ok(Parsed::Help),
            other => {
                if let Some(addr) = other.strip_prefix("--bind=") {
                    bind = Some(addr.to_owned());
                } else if let Some(value) = other.strip_prefix("--backend=") {
                    backend = Backend::parse(value, "--backend ")?;
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
    if litestar && backend == Backend::Cookie {
        return Err(
            "--backend cookie cannot be used with --litestar-compatible: \
             Litestar-compatible mode shares a session table in a store with a Litestar \
             application, and client-side sessions have no store (Litestar's own cookie \
             backend uses another format); drop one of the two"
                .into(),
        );
    }
    if litestar && table.is_none() {
        table = Some(session_demo::LITESTAR_SESSION_TABLE.to_owned());
    }
    Ok(Parsed::Run(Options {
        bind,
        backend,
        litestar_compatible: litestar,
        table,
    }))
}

/// The secrets of the cookie backend from `SESSION_SECRET` (`value`), or a
/// random one when it is unset, with a warning; also says, for the startup
/// line, what keys seal.
fn cookie_secrets(value: Option<std::ffi::OsString>) -> Result<(Vec<String>, String), String> {
    let Some(value) = value else {
        eprintln!(
            "session-demo: warning: {var} is not set: sealing sessions with a random secret \
             made for this run, so every session ends when the demo stops. Set {var} to a \
             secret of {MIN_SECRET_BYTES} bytes or more (e.g. `openssl rand -base64 32`) to \
             keep sessions across restarts.",
            var = session_demo::SESSION_SECRET_VAR,
        );
        let secret = CookieKeys::generate_secret()
            .map_err(|e| format!("cannot make a random session secret: {e}"))?;
        return Ok((vec![secret], "a random secret for this run".into()));
    };
    let value = value.into_string().map_err(|_| {
        format!(
            "invalid configuration `{}`: is not UTF-8 text",
            session_demo::SESSION_SECRET_VAR
        )
    })?;
    let secrets = session_demo::parse_session_secrets(&value).map_err(|e| e.to_string())?;
    let keys = match secrets.len() {
        1 => "1 secret".to_owned(),
        n => format!("{n} secrets, the first sealing"),
    };
    Ok((secrets, keys))
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
    let database_url = std::env::var("DATABASE_URL").ok();
    let secret = std::env::var_os(session_demo::SESSION_SECRET_VAR);
    let (app, where_sessions_live, cleaner) = match options.backend {
        Backend::Cookie => {
            if let Some(url) = &database_url {
                eprintln!(
                    "session-demo: warning: DATABASE_URL ({}) is unused: --backend cookie keeps \
                     sessions in sealed cookies, with no store",
                    session_open::redact(url)
                );
            }
            if let Some(table) = &options.table {
                eprintln!(
                    "session-demo: warning: the session table {table:?} is unused: \
                     --backend cookie has no store"
                );
            }
            let (secrets, keys) = match cookie_secrets(secret) {
                Ok(secrets) => secrets,
                Err(e) => {
                    eprintln!("session-demo: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let layer = match session_demo::client_side_layer(&secrets) {
                Ok(layer) => layer,
                Err(e) => {
                    eprintln!(
                        "session-demo: {} is refused: {e}",
                        session_demo::SESSION_SECRET_VAR
                    );
                    return ExitCode::FAILURE;
                }
            };
            (
                session_demo::app_with_layer(layer),
                format!("sealed cookies, {keys}"),
                None,
            )
        }
        Backend::Store => {
            if secret.is_some() {
                eprintln!(
                    "session-demo: warning: {} is unused: sessions are in the store of \
                     DATABASE_URL (--backend cookie seals them in the cookie)",
                    session_demo::SESSION_SECRET_VAR
                );
            }
            let url = database_url.unwrap_or_else(|| session_demo::DEFAULT_DATABASE_URL.into());
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
            // Expired sessions are deleted in the background, every 10
            // minutes, unless the store's server expires them by itself
            // (Redis, memcached).
            let cleaner = match store.expires_by_itself() {
                Some(why) => {
                    tracing::info!("no session cleaner: {why}");
                    None
                }
                None => match spawn_cleanup(
                    store.clone(),
                    CleanupOptions::new(Duration::from_secs(600)),
                ) {
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
            let described = format!("{}: {}{mode}", session_open::redact(&url), store.describe());
            (session_demo::app(store, config), described, cleaner)
        }
    };
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("session-demo: cannot listen on {addr}: {e}");
            if let Some(cleaner) = cleaner {
                cleaner.stop().await;
            }
            return ExitCode::FAILURE;
        }
    };
    // The address bound (a port 0 becomes the one the system chose).
    let addr = listener.local_addr().unwrap_or(addr);
    println!("session-demo: serving on http://{addr}/ (sessions in {where_sessions_live})");
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
    if let Some(cleaner) = cleaner {
        cleaner.stop().await;
    }
    if let Err(e) = served {
        eprintln!("session-demo: server error: {e}");
        return ExitCode::FAILURE;
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
        let err = parse(&["--backend"], &[]).unwrap_err();
        assert!(err.contains("--backend needs store or cookie"), "{err}");
        let err = parse(&["--backend=redis"], &[]).unwrap_err();
        assert!(
            err.contains("--backend \"redis\" is not a backend"),
            "{err}"
        );
        let err = parse(&[], &[("SESSION_BACKEND", "cookies")]).unwrap_err();
        assert!(
            err.contains("SESSION_BACKEND=\"cookies\" is not a backend"),
            "{err}"
        );
        assert_eq!(parse(&["--help", "--nonsense"], &[]), Ok(Parsed::Help));
        assert!(usage().contains("--litestar-compatible"));
        assert!(usage().contains("SESSION_LITESTAR_COMPATIBLE=1"));
        assert!(usage().contains("--backend BACKEND"));
        assert!(usage().contains("SESSION_SECRET"));
    }

    #[test]
    fn the_backend_from_the_flag_or_the_environment() {
        assert_eq!(run(&[], &[]).backend, Backend::Store);
        assert_eq!(run(&[], &[("SESSION_BACKEND", "")]).backend, Backend::Store);
        for (args, env) in [
            (&["--backend", "cookie"][..], &[][..]),
            (&["--backend=COOKIE"], &[]),
            (&[], &[("SESSION_BACKEND", " cookie ")]),
            (&["--backend", "cookie"], &[("SESSION_BACKEND", "store")]),
        ] {
            assert_eq!(run(args, env).backend, Backend::Cookie, "{args:?} {env:?}");
        }
        assert_eq!(
            run(&["--backend", "store"], &[("SESSION_BACKEND", "cookie")]).backend,
            Backend::Store
        );
    }

    #[test]
    fn the_cookie_backend_is_not_litestar_compatible() {
        for (args, env) in [
            (
                &["--backend", "cookie", "--litestar-compatible"][..],
                &[][..],
            ),
            (&["--litestar-compatible"], &[("SESSION_BACKEND", "cookie")]),
            (
                &["--backend=cookie"],
                &[("SESSION_LITESTAR_COMPATIBLE", "1")],
            ),
        ] {
            let err = parse(args, env).unwrap_err();
            assert!(
                err.contains("--backend cookie cannot be used with --litestar-compatible"),
                "{args:?} {env:?}: {err}"
            );
        }
    }
}
