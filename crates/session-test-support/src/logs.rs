//! A buffer for a test's `tracing` output.

use std::sync::{Arc, Mutex};

/// What a `tracing_subscriber::fmt` subscriber or layer writes, kept in
/// memory for a test to read back; clones share one buffer, so one clone
/// goes to the writer and another reads.
///
/// ```
/// use session_test_support::logs::LogBuffer;
/// let logs = LogBuffer::default();
/// let subscriber = tracing_subscriber::fmt()
///     .with_writer(logs.clone())
///     .with_ansi(false)
///     .finish();
/// tracing::subscriber::with_default(subscriber, || tracing::info!("hello"));
/// assert!(logs.text().contains("hello"));
/// ```
#[derive(Clone, Default)]
pub struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl LogBuffer {
    /// Everything written so far, as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.lock()).into_owned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<u8>> {
        // A test that panicked while writing leaves the bytes usable.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl std::io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.lock().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogBuffer {
    type Writer = LogBuffer;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}
