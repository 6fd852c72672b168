//! The config and handlers of the test apps.

use std::time::Duration;

use session_tower::{Session, SessionConfig, SessionError};

/// A ten-minute session over plain http on a loopback port: reqwest's
/// cookie store, like a browser, sends no `Secure` cookie over it
/// (`secure` defaults to true since issue 16).
pub(crate) fn config() -> SessionConfig {
    SessionConfig::builder()
        .max_age(Duration::from_secs(600))
        .secure(false)
        .build()
        .unwrap()
}

/// Adds one to the session's `n` (0 when absent); answers the new value.
pub(crate) async fn incr(session: Session) -> Result<String, SessionError> {
    let n: u64 = session.get("n").await?.unwrap_or(0) + 1;
    session.insert("n", n).await?;
    Ok(n.to_string())
}
