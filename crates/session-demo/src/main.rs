//! `cargo run -p session-demo`: serves the demo on 127.0.0.1:8000.
//!
//! `--bind ADDR` or `BIND` changes the address; `DATABASE_URL` picks the
//! store (`sqlite://session-demo.sqlite` by default, `postgres://...` for
//! PostgreSQL). `RUST_LOG` sets the log filter (default `info`).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use session_core::cleanup::{CleanupOptions, spawn_cleanup};

use tracing_subscriber::EnvFilter;

fn usage() -> String {
    format!(
        "usage: session-demo [--bind ADDR]

Serves the session demo (login, profile, logout).

  --bind ADDR     address to listen on (env BIND; default 127.0.0.1:8000)
  DATABASE_URL    the session store (default {}); one of:
                  {}
  RUST_LOG        log filter (default info)",
        session_demo::DEFAULT_DATABASE_URL,
        session_open::url_forms()
    )
}

fn parse_bind() -> Result<SocketAddr, String> {
    let mut bind = std::env::var("BIND").ok();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--bind" => bind = Some(args.next().ok_or("--bind needs an address")?),
            "-h" | "--help" => {
                println!("{}", usage());
                std::process::exit(0);
            }
            other => {
                if let Some(addr) = other.strip_prefix("--bind=") {
                    bind = Some(addr.to_owned());
                } else {
                    return Err(format!("unknown argument {other:?}\n\n{}", usage()));
                }
            }
        }
    }
    let bind = bind.unwrap_or_else(|| "127.0.0.1:8000".into());
    bind.parse()
        .map_err(|e| format!("--bind {bind:?} is not an address like 127.0.0.1:8000: {e}"))
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let addr = match parse_bind() {
        Ok(addr) => addr,
        Err(e) => {
            eprintln!("session-demo: {e}");
            return ExitCode::from(2);
        }
    };
    let url =
        std::env::var("DATABASE_URL").unwrap_or_else(|_| session_demo::DEFAULT_DATABASE_URL.into());
    let store = match session_demo::open_store(&url, &serde_json::Value::Null).await {
        Ok(store) => store,
        Err(e) => {
            eprintln!(
                "session-demo: cannot open the session store {}: {}",
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
    let app = session_demo::app(store, session_demo::session_config());
    // The address bound (a port 0 becomes the one the system chose).
    let addr = listener.local_addr().unwrap_or(addr);
    println!(
        "session-demo: serving on http://{addr}/ (sessions in {})",
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
