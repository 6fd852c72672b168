//! [`ThrowawayCluster`]: a PostgreSQL cluster of the test's own.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::net::TcpSocket;

/// Where Debian-style installs keep the server binaries, one folder per
/// major version.
const PG_LIB: &str = "/usr/lib/postgresql";

/// A PostgreSQL cluster this process made: `initdb` into a temporary
/// folder, started with `pg_ctl` on a free port of 127.0.0.1, trust
/// authentication, user `postgres`, database `postgres`.
///
/// It can be stopped, started again (same port, same data) and killed
/// (`SIGKILL` of the server and its backends, a crash), which is what fault
/// tests need. While it is down it keeps its port reserved (a socket bound
/// to it, not listening: connections are refused as with no server, but
/// the kernel gives the port to no one else by chance), so the restart
/// finds the port free and clients holding the old URL reconnect; if the
/// port was taken all the same, [`restart`](Self::restart) fails saying so
/// instead of starting elsewhere. Dropping it stops the server and deletes
/// the folder; a watchdog process does the same if this process dies
/// without dropping it (a panic across threads, `abort`, or a static that
/// is never dropped).
///
/// As root, PostgreSQL refuses to run, so every binary runs as the
/// `postgres` user through `runuser -u postgres --`.
///
/// ```no_run
/// use session_test_support::ThrowawayCluster;
/// let mut cluster = ThrowawayCluster::start().expect("postgres binaries installed");
/// let url = cluster.url(); // postgresql://postgres@127.0.0.1:<port>/postgres
/// cluster.stop().unwrap(); // the database goes away ...
/// cluster.restart().unwrap(); // ... and comes back on the same port
/// drop(cluster); // stopped and deleted
/// # let _ = url;
/// ```
#[derive(Debug)]
pub struct ThrowawayCluster {
    bin: PathBuf,
    root: PathBuf,
    port: u16,
    as_postgres: bool,
    /// While the server is down: a socket bound to its port (never
    /// listening), so that nobody else takes the port before the restart.
    reserved: Mutex<Option<TcpSocket>>,
}

impl ThrowawayCluster {
    /// Makes and starts a cluster with the newest installed server
    /// binaries, or says why it could not.
    pub fn start() -> Result<Self, String> {
        Self::start_configured(|_| Ok(Vec::new()))
    }

    /// A cluster with TLS on (`ssl = on`), presenting `certificates`'
    /// server certificate: its certificate and key are copied into the
    /// cluster's folder (the key readable by the server's user alone, as
    /// PostgreSQL demands). Clients may still connect without TLS
    /// (`pg_hba.conf` has `host ... trust`); `SELECT ssl FROM pg_stat_ssl
    /// WHERE pid = pg_backend_pid()` tells which they did.
    ///
    /// ```no_run
    /// use session_test_support::ThrowawayCluster;
    /// use session_test_support::tls::TestCertificates;
    ///
    /// let dir = session_test_support::scratch_dir("my-pg-tls").join("certs");
    /// let certificates = TestCertificates::make(&dir).expect("openssl installed");
    /// let cluster = ThrowawayCluster::start_tls(&certificates).expect("postgres binaries installed");
    /// let url = format!("{}?sslmode=require", cluster.url());
    /// # let _ = url;
    /// ```
    ///
    /// # Errors
    ///
    /// As [`start`](Self::start), or when the files cannot be copied.
    pub fn start_tls(certificates: &crate::tls::TestCertificates) -> Result<Self, String> {
        let certificates = certificates.clone();
        Self::start_configured(move |cluster| {
            let cert = cluster.root.join("server.crt");
            let key = cluster.root.join("server.key");
            for (from, to) in [
                (&certificates.server_cert, &cert),
                (&certificates.server_key, &key),
            ] {
                std::fs::copy(from, to).map_err(|e| {
                    format!("cannot copy {} to {}: {e}", from.display(), to.display())
                })?;
            }
            if cluster.as_postgres {
                run(Command::new("chown").arg("postgres:").arg(&cert).arg(&key))?;
            }
            run(Command::new("chmod").arg("600").arg(&key))?;
            Ok(vec![
                ("ssl".to_owned(), "on".to_owned()),
                ("ssl_cert_file".to_owned(), quoted(&cert)),
                ("ssl_key_file".to_owned(), quoted(&key)),
            ])
        })
    }

    /// Makes and starts a cluster; `configure` (run once the data folder
    /// exists, before the first start) returns settings for its
    /// `postgresql.conf`.
    fn start_configured(
        configure: impl FnOnce(&ThrowawayCluster) -> Result<Vec<(String, String)>, String>,
    ) -> Result<Self, String> {
        let bin = find_bin_dir()?;
        let as_postgres = running_as_root();
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let root = std::env::temp_dir().join(format!(
            "session-test-pg-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        if root.exists() {
            std::fs::remove_dir_all(&root)
                .map_err(|e| format!("cannot clear {}: {e}", root.display()))?;
        }
        std::fs::create_dir_all(&root)
            .map_err(|e| format!("cannot create {}: {e}", root.display()))?;
        let mut cluster = ThrowawayCluster {
            bin,
            root,
            port: 0,
            as_postgres,
            reserved: Mutex::new(None),
        };
        // From here on, Drop cleans up whatever happens.
        if as_postgres {
            run(Command::new("chown").arg("postgres:").arg(&cluster.root))?;
        }
        cluster.spawn_watchdog();
        let data = cluster.data_dir();
        cluster.run_pg(
            "initdb",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-U".as_ref(),
                "postgres".as_ref(),
                "--auth=trust".as_ref(),
                "--no-sync".as_ref(),
                "-E".as_ref(),
                "UTF8".as_ref(),
            ],
        )?;
        let settings = configure(&cluster)?;
        if !settings.is_empty() {
            use std::io::Write;
            let conf = data.join("postgresql.conf");
            let lines: String = settings
                .iter()
                .map(|(name, value)| format!("{name} = {value}\n"))
                .collect();
            std::fs::OpenOptions::new()
                .append(true)
                .open(&conf)
                .and_then(|mut f| {
                    f.write_all(format!("\n# The test's own settings.\n{lines}").as_bytes())
                })
                .map_err(|e| format!("cannot write {}: {e}", conf.display()))?;
        }
        // A free port can be taken by someone else before the server binds
        // it: try a few.
        let mut last_error = String::new();
        for _ in 0..5 {
            cluster.port = crate::process::free_port()?;
            match cluster.restart() {
                Ok(()) => return Ok(cluster),
                Err(e) => last_error = e,
            }
        }
        Err(last_error)
    }

    /// The connection URL: `postgresql://postgres@127.0.0.1:<port>/postgres`.
    pub fn url(&self) -> String {
        format!("postgresql://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// The TCP port the server listens on (the same across restarts).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The folder holding the cluster (its data and logs).
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn data_dir(&self) -> PathBuf {
        self.root.join("data")
    }

    /// Starts the server (again) on its port and waits until it accepts
    /// connections.
    ///
    /// Fails, saying so, if another process took the port while the server
    /// was down (the cluster never moves: a client holding its URL would
    /// never find it again).
    pub fn restart(&self) -> Result<(), String> {
        // Give up the reservation; if there is none (the port could not be
        // reserved at the stop), check that the port is still free.
        let reservation = self.lock_reserved().take();
        if reservation.is_none() {
            if let Err(e) = reserve(self.port) {
                return Err(self.port_taken(&e.to_string()));
            }
        }
        drop(reservation);
        let data = self.data_dir();
        let log = self.root.join("server.log");
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
            self.port,
            self.root.display()
        );
        self.run_pg(
            "pg_ctl",
            &[
                "start".as_ref(),
                "-w".as_ref(),
                "-t".as_ref(),
                "60".as_ref(),
                "-D".as_ref(),
                data.as_os_str(),
                "-l".as_ref(),
                log.as_os_str(),
                "-o".as_ref(),
                options.as_ref(),
            ],
        )
        .map_err(|e| {
            let server_log = std::fs::read_to_string(&log).unwrap_or_default();
            if server_log.contains("could not bind") {
                self.port_taken(&format!("{e}\nserver log:\n{server_log}"))
            } else {
                format!("{e}\nserver log:\n{server_log}")
            }
        })
    }

    fn port_taken(&self, detail: &str) -> String {
        format!(
            "cannot start the throwaway cluster: its port 127.0.0.1:{} is taken by another \
             process (the cluster never moves to another port: clients hold URLs naming this \
             one): {detail}",
            self.port
        )
    }

    fn lock_reserved(&self) -> std::sync::MutexGuard<'_, Option<TcpSocket>> {
        self.reserved.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Binds the port while the server is down. Best effort: if someone
    /// took the port in the moment since the server released it, the
    /// restart says so.
    fn reserve_port(&self) {
        if let Ok(socket) = reserve(self.port) {
            *self.lock_reserved() = Some(socket);
        }
    }

    /// Stops the server cleanly (`pg_ctl stop -m fast`): connected clients
    /// see their connections closed.
    pub fn stop(&self) -> Result<(), String> {
        let data = self.data_dir();
        self.run_pg(
            "pg_ctl",
            &[
                "stop".as_ref(),
                "-w".as_ref(),
                "-m".as_ref(),
                "fast".as_ref(),
                "-D".as_ref(),
                data.as_os_str(),
            ],
        )?;
        self.reserve_port();
        Ok(())
    }

    /// Kills the server and all its processes with `SIGKILL`, as a crash
    /// would, and waits until they are gone. [`restart`](Self::restart)
    /// then runs crash recovery.
    pub fn kill(&self) -> Result<(), String> {
        let pid_file = self.data_dir().join("postmaster.pid");
        let text = std::fs::read_to_string(&pid_file)
            .map_err(|e| format!("the server is not running ({}: {e})", pid_file.display()))?;
        let pid: u32 = text
            .lines()
            .next()
            .and_then(|l| l.trim().parse().ok())
            .ok_or_else(|| format!("{} holds no pid", pid_file.display()))?;
        let mut pids = children_of(pid);
        pids.push(pid);
        for p in &pids {
            // A process that already exited is fine.
            let _ = Command::new("kill")
                .arg("-KILL")
                .arg(p.to_string())
                .stderr(Stdio::null())
                .status();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while pids
            .iter()
            .any(|p| Path::new(&format!("/proc/{p}")).exists())
        {
            if Instant::now() > deadline {
                return Err(format!("processes {pids:?} survived SIGKILL for 10 s"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.reserve_port();
        Ok(())
    }

    fn run_pg(&self, binary: &str, args: &[&std::ffi::OsStr]) -> Result<(), String> {
        let path = self.bin.join(binary);
        let mut command = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&path);
            c
        } else {
            Command::new(&path)
        };
        command.args(args).current_dir(&self.root);
        run(&mut command)
    }

    /// A shell that waits for this process to end, then stops the server
    /// and deletes the folder: cleanup even when `Drop` never runs.
    fn spawn_watchdog(&self) {
        let data = self.data_dir();
        let pg_ctl = self.bin.join("pg_ctl");
        let runas = if self.as_postgres {
            "runuser -u postgres -- "
        } else {
            ""
        };
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; \
             {runas}'{pg_ctl}' stop -m immediate -D '{data}' >/dev/null 2>&1; \
             rm -rf '{root}'",
            pid = std::process::id(),
            pg_ctl = pg_ctl.display(),
            data = data.display(),
            root = self.root.display(),
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
}

impl Drop for ThrowawayCluster {
    fn drop(&mut self) {
        if self.data_dir().join("postmaster.pid").exists() {
            let data = self.data_dir();
            let _ = self.run_pg(
                "pg_ctl",
                &[
                    "stop".as_ref(),
                    "-w".as_ref(),
                    "-m".as_ref(),
                    "immediate".as_ref(),
                    "-D".as_ref(),
                    data.as_os_str(),
                ],
            );
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// `path` as a quoted `postgresql.conf` string.
fn quoted(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', "''"))
}

/// Runs a command to completion; its output goes to the error on failure.
fn run(command: &mut Command) -> Result<(), String> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {command:?}: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{command:?} failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout).trim(),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

fn find_bin_dir() -> Result<PathBuf, String> {
    let entries = std::fs::read_dir(PG_LIB)
        .map_err(|e| format!("no PostgreSQL server binaries ({PG_LIB}: {e})"))?;
    let mut versions: Vec<(u32, PathBuf)> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let version: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            (bin.join("initdb").is_file() && bin.join("pg_ctl").is_file()).then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .ok_or_else(|| format!("no PostgreSQL server binaries under {PG_LIB}/*/bin"))
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// A socket bound to `127.0.0.1:port` and not listening: connections to
/// the port are refused as with no server, but the kernel hands the port
/// to no one else (neither as the source port of an outgoing connection nor
/// to a bind to port 0, the two ways a free port gets taken by chance). It
/// sets `SO_REUSEADDR`, as PostgreSQL does: the connections the server just
/// closed linger in `TIME_WAIT` on the port. Fails when a socket listens on
/// the port.
fn reserve(port: u16) -> std::io::Result<TcpSocket> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))?;
    Ok(socket)
}

/// The pids whose parent is `parent`, read from `/proc`.
fn children_of(parent: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| {
                    // pid (comm) state ppid ...: comm may hold spaces, so
                    // parse after the last ')'.
                    let rest = &stat[stat.rfind(')')? + 1..];
                    rest.split_whitespace().nth(1)?.parse::<u32>().ok()
                })
                == Some(parent)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    /// The port taken while the cluster was down (here: its reservation
    /// given up by hand, then the port bound by a listener standing in for
    /// another process): the restart fails, saying so, and succeeds once
    /// the port is free again.
    #[test]
    fn a_port_taken_while_down_fails_the_restart_clearly() {
        let Some(cluster) = crate::throwaway_cluster_or_skip() else {
            return;
        };
        cluster.kill().unwrap();
        assert!(
            cluster.lock_reserved().is_some(),
            "no reservation after a crash"
        );
        cluster.restart().unwrap();
        assert!(cluster.lock_reserved().is_none());
        cluster.stop().unwrap();
        assert!(
            cluster.lock_reserved().is_some(),
            "no reservation while down"
        );
        cluster.lock_reserved().take();
        let squatter = std::net::TcpListener::bind(("127.0.0.1", cluster.port()))
            .expect("the released port is free");
        let err = cluster.restart().unwrap_err();
        assert!(
            err.contains(&format!("port 127.0.0.1:{} is taken", cluster.port())),
            "{err}"
        );
        drop(squatter);
        cluster.restart().unwrap();
        assert!(cluster.lock_reserved().is_none());
    }
}
