//! What `tracing` logs during a test.

use std::sync::{Arc, Mutex};

use tracing::subscriber::DefaultGuard;

/// Captures what `tracing` logs on this thread (the current-thread
/// test runtime runs the server's tasks here too).
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// The events of `level` and above logged on this thread while it
/// lives, as plain text (no colours).
pub(crate) struct Capture {
    logs: Captured,
    _guard: DefaultGuard,
}

impl Capture {
    /// What was logged so far.
    pub(crate) fn text(&self) -> String {
        String::from_utf8(self.logs.0.lock().unwrap().clone()).unwrap()
    }
}

/// Starts capturing the events of `level` and above on this thread.
pub(crate) fn capture(level: tracing::Level) -> Capture {
    let logs = Captured::default();
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
