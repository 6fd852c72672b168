//! Redis for the tests: the machine's server, or throwaway servers and
//! clusters of the test's own, started from `redis-server`.
//!
//! [`redis_url`] finds a server to share (its data is touched only under
//! the test's own key prefixes, never flushed); [`ThrowawayRedis`] and
//! [`ThrowawayRedisCluster`] are for tests that stop servers or need a
//! cluster.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

pub use crate::tls::TestCertificates;

/// The variable holding a Redis URL to test against.
pub const REDIS_URL_VAR: &str = "SESSION_TEST_REDIS_URL";

/// The variable that, set to `1`, turns a missing Redis (or a missing
/// `redis-server` for throwaway servers) from a skip into a failure. `CI`
/// set does the same.
pub const REQUIRE_REDIS_VAR: &str = "SESSION_TEST_REQUIRE_REDIS";

/// The machine's server, if it answers.
const MACHINE_REDIS: &str = "127.0.0.1:6379";

/// How long a started server may take to answer `PING`.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// True when a missing Redis must fail the tests.
pub fn redis_required() -> bool {
    crate::required(REQUIRE_REDIS_VAR)
}

/// A Redis URL to share, found once per process: `SESSION_TEST_REDIS_URL`
/// if set, else the machine's server on 127.0.0.1:6379 if it answers
/// `PING`, else a [`ThrowawayRedis`] kept for the life of the process.
///
/// # Errors
///
/// Why none could be had.
pub fn redis_url() -> Result<String, String> {
    static FOUND: OnceLock<Result<String, String>> = OnceLock::new();
    static OWN: OnceLock<ThrowawayRedis> = OnceLock::new();
    FOUND
        .get_or_init(|| {
            if let Ok(url) = std::env::var(REDIS_URL_VAR) {
                return Ok(url);
            }
            if ping(MACHINE_REDIS.parse().expect("a socket address")) {
                return Ok(format!("redis://{MACHINE_REDIS}/0"));
            }
            let own = ThrowawayRedis::start().map_err(|e| {
                format!("nothing answers on {MACHINE_REDIS} and no throwaway server: {e}")
            })?;
            Ok(OWN.get_or_init(|| own).url())
        })
        .clone()
}

/// [`redis_url`], or `None` after [`report_skip`](crate::report_skip)ing why there is none.
///
/// # Panics
///
/// When none can be had and [`redis_required`].
pub fn redis_url_or_skip() -> Option<String> {
    match redis_url() {
        Ok(url) => Some(url),
        Err(why) => crate::skip_or_panic("Redis", REQUIRE_REDIS_VAR, &why),
    }
}

pub use crate::unique_prefix;

/// A `redis-server` of this process's own on a free loopback port, no
/// persistence. It can be stopped (`SIGKILL`: a crash) and started again
/// on the same port. Dropping it kills the server and deletes its folder;
/// a watchdog shell does the same if this process dies first.
///
/// ```no_run
/// let redis = session_test_support::redis::ThrowawayRedis::start().unwrap();
/// let url = redis.url(); // redis://127.0.0.1:<port>/0
/// redis.stop().unwrap();
/// redis.restart().unwrap();
/// # let _ = url;
/// ```
#[derive(Debug)]
pub struct ThrowawayRedis {
    port: u16,
    dir: PathBuf,
    extra: Vec<String>,
    tls: bool,
    child: Mutex<Option<Child>>,
}

impl ThrowawayRedis {
    /// Starts a server on a free port.
    ///
    /// # Errors
    ///
    /// Why it could not (no `redis-server`, no free port, no answer).
    pub fn start() -> Result<Self, String> {
        Self::start_with(free_port(false)?, &[])
    }

    /// Starts a server that speaks TLS only, with the certificate and key
    /// of `certificates` (clients need not show one): connect with
    /// `rediss://127.0.0.1:<port>/0` and trust `certificates.ca`.
    ///
    /// # Errors
    ///
    /// As [`start`](Self::start).
    pub fn start_tls(certificates: &TestCertificates) -> Result<Self, String> {
        let port = free_port(false)?;
        let (cert, key, ca) = (
            certificates.server_cert.display().to_string(),
            certificates.server_key.display().to_string(),
            certificates.ca.display().to_string(),
        );
        let port_text = port.to_string();
        Self::start_with(
            port,
            &[
                "--port",
                "0",
                "--tls-port",
                &port_text,
                "--tls-cert-file",
                &cert,
                "--tls-key-file",
                &key,
                "--tls-ca-cert-file",
                &ca,
                "--tls-auth-clients",
                "no",
            ],
        )
    }

    /// Starts a server on `port` with extra `redis-server` arguments.
    fn start_with(port: u16, extra: &[&str]) -> Result<Self, String> {
        let dir = crate::scratch_dir("session-redis").join(format!("redis-{port}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let server = ThrowawayRedis {
            port,
            dir,
            extra: extra.iter().map(|s| (*s).to_owned()).collect(),
            tls: extra.contains(&"--tls-port"),
            child: Mutex::new(None),
        };
        server.restart()?;
        Ok(server)
    }

    /// `redis://127.0.0.1:<port>/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its folder.
    pub fn dir(&self) -> &Path {
        &self.dir
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
                .map_err(|e| format!("cannot kill redis-server: {e}"))?;
            let _ = running.wait();
        }
        Ok(())
    }

    /// Starts the server (again) on its port and waits until it answers.
    ///
    /// # Errors
    ///
    /// When it does not answer within 10 s (its log is quoted).
    pub fn restart(&self) -> Result<(), String> {
        self.stop()?;
        let binary = redis_server()?;
        let log = self.dir.join("redis.log");
        let mut command = Command::new(&binary);
        if !self.tls {
            command.arg("--port").arg(self.port.to_string());
        }
        command
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .arg("--logfile")
            .arg(&log)
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = command
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        crate::process::spawn_watchdog(child.id(), Some(&self.dir));
        *self.child.lock().unwrap_or_else(|p| p.into_inner()) = Some(child);
        let address = SocketAddr::from(([127, 0, 0, 1], self.port));
        let started = Instant::now();
        while started.elapsed() < START_TIMEOUT {
            // A TLS port cannot be pinged in plain text: its log says when
            // it is ready.
            let ready = if self.tls {
                std::fs::read_to_string(&log)
                    .is_ok_and(|l| l.contains("Ready to accept connections"))
            } else {
                ping(address)
            };
            if ready {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let log = std::fs::read_to_string(&log).unwrap_or_default();
        Err(format!(
            "redis-server on port {} did not answer within {START_TIMEOUT:?}; its log:\n{log}",
            self.port
        ))
    }
}

impl Drop for ThrowawayRedis {
    fn drop(&mut self) {
        let _ = self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A Redis Cluster of this process's own: `primaries` servers with
/// `cluster-enabled yes` on free loopback ports (each with its bus port,
/// +10000, free too), joined by `redis-cli --cluster create` with no
/// replicas. Dropping it kills every server and deletes their folders.
#[derive(Debug)]
pub struct ThrowawayRedisCluster {
    nodes: Vec<ThrowawayRedis>,
}

impl ThrowawayRedisCluster {
    /// Starts the servers, creates the cluster and waits until
    /// `cluster_state:ok` on every node.
    ///
    /// # Errors
    ///
    /// Why it could not (no `redis-server`/`redis-cli`, a failed create).
    pub fn start(primaries: usize) -> Result<Self, String> {
        Self::start_with_replicas(primaries, 0)
    }

    /// As [`start`](Self::start), with `replicas` replicas of each primary
    /// (`--cluster-replicas`), for failover tests.
    ///
    /// # Errors
    ///
    /// As [`start`](Self::start).
    pub fn start_with_replicas(primaries: usize, replicas: usize) -> Result<Self, String> {
        let mut nodes = Vec::new();
        for _ in 0..primaries * (1 + replicas) {
            nodes.push(ThrowawayRedis::start_with(
                free_port(true)?,
                &[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    "5000",
                ],
            )?);
        }
        let cli = redis_server()?.with_file_name("redis-cli");
        let output = Command::new(&cli)
            .args(["--cluster", "create"])
            .args(nodes.iter().map(|n| format!("127.0.0.1:{}", n.port())))
            .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", cli.display()))?;
        if !output.status.success() {
            return Err(format!(
                "redis-cli --cluster create failed: {}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        let cluster = ThrowawayRedisCluster { nodes };
        let started = Instant::now();
        // Every node agrees the cluster is up, and every replica has
        // finished its first sync (`master_link_status:up`).
        while !cluster.nodes.iter().all(|n| {
            command(n.port(), &["CLUSTER", "INFO"])
                .is_some_and(|info| info.contains("cluster_state:ok"))
                && command(n.port(), &["INFO", "replication"]).is_some_and(|info| {
                    !info.contains("role:slave") || info.contains("master_link_status:up")
                })
        }) {
            if started.elapsed() > START_TIMEOUT {
                return Err("the cluster did not reach cluster_state:ok (with its replicas in sync) within 10 s".to_owned());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(cluster)
    }

    /// `redis+cluster://127.0.0.1:<port>,...` listing every node.
    pub fn url(&self) -> String {
        let nodes: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port()))
            .collect();
        format!("redis+cluster://{}", nodes.join(","))
    }

    /// The servers.
    pub fn nodes(&self) -> &[ThrowawayRedis] {
        &self.nodes
    }

    /// The ports of the nodes that are replicas now (`CLUSTER NODES`).
    pub fn replica_ports(&self) -> Vec<u16> {
        let Some(first) = self.nodes.first() else {
            return Vec::new();
        };
        command(first.port(), &["CLUSTER", "NODES"])
            .unwrap_or_default()
            .lines()
            .filter(|line| {
                line.split_whitespace()
                    .nth(2)
                    .is_some_and(|f| f.contains("slave"))
            })
            .filter_map(|line| {
                let address = line.split_whitespace().nth(1)?;
                let address = address.split(['@', ',']).next()?;
                address.rsplit_once(':')?.1.parse().ok()
            })
            .collect()
    }

    /// Makes the replica on `port` its primary's primary (`CLUSTER
    /// FAILOVER`, the primary agreeing; `CLUSTER FAILOVER FORCE` if that has
    /// not happened within 5 s) and waits until it is.
    ///
    /// # Errors
    ///
    /// When the command is refused or the role does not change in 10 s.
    pub fn failover(&self, port: u16) -> Result<(), String> {
        // The agreed failover waits for the replica to catch up with its
        // primary, which a loaded machine may not manage in time; then the
        // replica takes over without the primary's agreement (`FORCE`).
        for (args, wait) in [
            (&["CLUSTER", "FAILOVER"][..], Duration::from_secs(5)),
            (&["CLUSTER", "FAILOVER", "FORCE"], START_TIMEOUT),
        ] {
            let reply = command(port, args).unwrap_or_default();
            if !reply.starts_with("+OK") {
                return Err(format!("{} on {port}: {reply}", args.join(" ")));
            }
            let started = Instant::now();
            while started.elapsed() < wait {
                if command(port, &["ROLE"]).is_some_and(|role| role.contains("master")) {
                    return Ok(());
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Err(format!(
            "the replica on {port} did not become a primary within 15 s"
        ))
    }
}

/// A `redis-server` from `SESSION_TEST_REDIS_SERVER`, the `PATH`, or
/// `/usr/bin`.
fn redis_server() -> Result<PathBuf, String> {
    crate::process::find_binary("SESSION_TEST_REDIS_SERVER", "redis-server", "redis-server")
}

/// A free loopback port (with `bus`: one whose cluster bus port, +10000,
/// is free too).
fn free_port(bus: bool) -> Result<u16, String> {
    for _ in 0..100 {
        let port = crate::process::free_port()?;
        if !bus {
            return Ok(port);
        }
        if port < 55_000 && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return Ok(port);
        }
    }
    Err("no free port pair (port, port + 10000) found in 100 tries".to_owned())
}

/// True if a Redis at `address` answers `PING`.
fn ping(address: SocketAddr) -> bool {
    command_at(address, &["PING"]).is_some_and(|reply| reply.starts_with("+PONG"))
}

/// Sends one command to the server on 127.0.0.1:`port`; its raw reply.
fn command(port: u16, args: &[&str]) -> Option<String> {
    command_at(SocketAddr::from(([127, 0, 0, 1], port)), args)
}

fn command_at(address: SocketAddr, args: &[&str]) -> Option<String> {
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_millis(500)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    let mut request = format!("*{}\r\n", args.len());
    for arg in args {
        request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
    }
    stream.write_all(request.as_bytes()).ok()?;
    let mut reply = vec![0u8; 16 * 1024];
    let n = stream.read(&mut reply).ok()?;
    Some(String::from_utf8_lossy(&reply[..n]).into_owned())
}
