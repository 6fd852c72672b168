//! What the throwaway servers share: finding their binaries and free
//! ports, a watchdog that kills them if the test process dies first, and
//! the "skip, or fail on CI" rule.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::report_skip;

/// True when `var` is set (to anything but empty, `0` or `false`), or `CI`
/// is, as CI services set it: a missing service must then fail the tests.
pub fn required(var: &str) -> bool {
    let set = |name: &str| {
        std::env::var(name).is_ok_and(|v| {
            let v = v.trim();
            !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false")
        })
    };
    set(var) || set("CI")
}

/// `None` after [`report_skip`]ping `no <service> (<why>)`, or a panic
/// saying why when [`required`]`(var)`.
pub fn skip_or_panic<T>(service: &str, var: &str, why: &str) -> Option<T> {
    if required(var) {
        panic!("no {service}, and {var}/CI is set: {why}");
    }
    report_skip(&format!("no {service} ({why})"));
    None
}

/// `name` from the variable `var`, the `PATH`, `/usr/bin` or
/// `/usr/local/bin`; the error names the Debian package `package`.
pub(crate) fn find_binary(var: &str, name: &str, package: &str) -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os(var) {
        return Ok(PathBuf::from(path));
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/local/bin")])
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
        .ok_or_else(|| format!("no {name} on the PATH (Debian: apt-get install {package})"))
}

/// A loopback port free right now.
pub(crate) fn free_port() -> Result<u16, String> {
    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(|e| format!("cannot find a free port: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("cannot find a free port: {e}"))
}

/// A shell that waits for this process to end, then kills `server` and
/// removes `dir`: cleanup even when `Drop` never runs (a server in a
/// static, an abort).
pub fn spawn_watchdog(server: u32, dir: Option<&Path>) {
    let remove = dir.map_or(String::new(), |dir| format!("; rm -rf '{}'", dir.display()));
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 1; done; kill -9 {server} 2>/dev/null{remove}",
        pid = std::process::id(),
    );
    // Best effort: without a watchdog, Drop still cleans up.
    let _ = Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
}
