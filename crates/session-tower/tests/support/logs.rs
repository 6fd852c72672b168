//! What `tracing` logs during a test.

use session_test_support::logs::LogBuffer;
use tracing::subscriber::DefaultGuard;

/// The events of `level` and above logged on this thread while it
/// lives, as plain text (no colours). The current-thread test runtime
/// runs the server's tasks on this thread too.
pub(crate) struct Capture {
    logs: LogBuffer,
    _guard: DefaultGuard,
}

impl Capture {
    /// What was logged so far.
    pub(crate) fn text(&self) -> String {
        self.logs.text()
    }
}

/// Starts capturing the events of `level` and above on this thread.
pub(crate) fn capture(level: tracing::Level) -> Capture {
    let logs = LogBuffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(logs.clone())
        .with_max_level(level)
        .with_ansi(false)
        .finish();
    // A process-wide subscriber that records nothing: with it, a
    // callsite first reached by another test's thread (which has no
    // subscriber of its own) is cached as interesting, not as "never"
    // (tracing's one-dispatcher short path asks only the registering
    // thread; tokio-rs/tracing#3611).
    let _ = tracing::subscriber::set_global_default(tracing_subscriber::registry());
    let guard = tracing::subscriber::set_default(subscriber);
    tracing::callsite::rebuild_interest_cache();
    Capture {
        logs,
        _guard: guard,
    }
}
