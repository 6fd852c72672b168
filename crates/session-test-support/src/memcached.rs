//! memcached for the tests: throwaway servers of the test process's own,
//! started from the `memcached` binary on free loopback ports. A shared
//! memcached (11211) is never touched.
//!
//! [`memcached_url`] starts one server per test process, shared by its
//! tests (each store under a prefix of its own, [`unique_prefix`]), with
//! items up to 2 MiB (`-I 2m`: the contract's 1 MiB values need more than
//! the default 1 MiB limit). [`ThrowawayMemcached`] is for tests that need
//! a server of their own: the default item size, or one to kill.
//!
//! Without the binary the tests skip ([`memcached_url_or_skip`]), unless
//! `SESSION_TEST_REQUIRE_MEMCACHED=1` or `CI` is set: then they fail.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The variable that, set to `1`, turns a missing `memcached` binary from
/// a skip into a failure. `CI` set does the same.
pub const REQUIRE_MEMCACHED_VAR: &str = "SESSION_TEST_REQUIRE_MEMCACHED";

/// How long a started server may take to answer.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// True when a missing memcached must fail the tests.
pub fn memcached_required() -> bool {
    crate::required(REQUIRE_MEMCACHED_VAR)
}

/// The URL of this process's shared throwaway server (`-I 2m`), started
/// on first use and killed when the process exits.
///
/// # Errors
///
/// Why it could not be started (no `memcached` binary, no answer).
pub fn memcached_url() -> Result<String, String> {
    static SHARED: OnceLock<Result<ThrowawayMemcached, String>> = OnceLock::new();
    SHARED
        .get_or_init(|| ThrowawayMemcached::start(&["-I", "2m"]))
        .as_ref()
        .map(ThrowawayMemcached::url)
        .map_err(Clone::clone)
}

/// [`memcached_url`], or `None` after [`report_skip`](crate::report_skip)ing why there is
/// none.
///
/// # Panics
///
/// When there is none and [`memcached_required`].
pub fn memcached_url_or_skip() -> Option<String> {
    match memcached_url() {
        Ok(url) => Some(url),
        Err(why) => skip_or_panic(why),
    }
}

/// [`ThrowawayMemcached::start`], or `None` after [`report_skip`](crate::report_skip)ing why
/// it could not be started.
///
/// # Panics
///
/// When it could not and [`memcached_required`].
pub fn throwaway_or_skip(extra: &[&str]) -> Option<ThrowawayMemcached> {
    match ThrowawayMemcached::start(extra) {
        Ok(server) => Some(server),
        Err(why) => skip_or_panic(why),
    }
}

fn skip_or_panic<T>(why: String) -> Option<T> {
    crate::skip_or_panic("memcached", REQUIRE_MEMCACHED_VAR, &why)
}

pub use crate::unique_prefix;

/// A `memcached` of this process's own on a free loopback port
/// (`-l 127.0.0.1 -p PORT -U 0 -m 64`, plus the extra arguments). It can be
/// killed (`SIGKILL`: a crash) and started again on the same port.
/// Dropping it kills the server; a watchdog shell does the same if this
/// process dies first.
///
/// ```no_run
/// use session_test_support::memcached::ThrowawayMemcached;
/// let server = ThrowawayMemcached::start(&["-I", "2m"]).unwrap();
/// let url = server.url(); // memcache://127.0.0.1:<port>
/// server.stop().unwrap();
/// server.restart().unwrap();
/// # let _ = url;
/// ```
#[derive(Debug)]
pub struct ThrowawayMemcached {
    port: u16,
    extra: Vec<String>,
    child: Mutex<Option<Child>>,
}

impl ThrowawayMemcached {
    /// Starts a server on a free port with extra `memcached` arguments
    /// (e.g. `["-I", "2m"]`) and waits until it answers.
    ///
    /// # Errors
    ///
    /// Why it could not (no binary, no free port, no answer).
    pub fn start(extra: &[&str]) -> Result<Self, String> {
        let server = ThrowawayMemcached {
            port: crate::process::free_port()?,
            extra: extra.iter().map(|s| (*s).to_owned()).collect(),
            child: Mutex::new(None),
        };
        server.restart()?;
        Ok(server)
    }

    /// `memcache://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("memcache://127.0.0.1:{}", self.port)
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server (`SIGKILL`) and waits for it to be gone.
    ///
    /// # Errors
    ///
    /// When it could not be killed.
    pub fn stop(&self) -> Result<(), String> {
        let mut child = self.child.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(mut running) = child.take() {
            running
                .kill()
                .map_err(|e| format!("cannot kill memcached: {e}"))?;
            let _ = running.wait();
        }
        Ok(())
    }

    /// Starts the server (again) on its port and waits until it answers
    /// the meta no-op (`mn`).
    ///
    /// # Errors
    ///
    /// When it does not answer within 10 s, or exits (its output is
    /// quoted).
    pub fn restart(&self) -> Result<(), String> {
        self.stop()?;
        let binary = memcached_binary()?;
        let mut command = Command::new(&binary);
        command
            .args(["-l", "127.0.0.1", "-U", "0", "-m", "64", "-p"])
            .arg(self.port.to_string())
            .args(&self.extra);
        if running_as_root() {
            // memcached refuses to run as root without naming the user.
            command.args(["-u", "root"]);
        }
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        crate::process::spawn_watchdog(child.id(), None);
        let address = SocketAddr::from(([127, 0, 0, 1], self.port));
        let started = Instant::now();
        while started.elapsed() < START_TIMEOUT {
            if let Ok(Some(status)) = child.try_wait() {
                let mut output = String::new();
                if let Some(mut stderr) = child.stderr.take() {
                    let _ = stderr.read_to_string(&mut output);
                }
                return Err(format!(
                    "memcached on port {} exited ({status}): {}",
                    self.port,
                    output.trim()
                ));
            }
            if answers(address) {
                *self.child.lock().unwrap_or_else(|p| p.into_inner()) = Some(child);
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        Err(format!(
            "memcached on port {} did not answer within {START_TIMEOUT:?}",
            self.port
        ))
    }
}

impl Drop for ThrowawayMemcached {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// `memcached` from `SESSION_TEST_MEMCACHED`, the `PATH`, or `/usr/bin`.
fn memcached_binary() -> Result<PathBuf, String> {
    crate::process::find_binary("SESSION_TEST_MEMCACHED", "memcached", "memcached")
}

fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// True if a memcached at `address` answers the meta no-op.
fn answers(address: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&address, Duration::from_millis(500)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream.write_all(b"mn\r\n").is_err() {
        return false;
    }
    let mut reply = [0u8; 4];
    stream.read_exact(&mut reply).is_ok() && &reply == b"MN\r\n"
}
