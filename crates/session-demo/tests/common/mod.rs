//! Helpers shared by the demo's HTTP tests.

#![allow(dead_code)]

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use reqwest::header::SET_COOKIE;
use session_core::Store;
use session_tower::SessionConfig;

/// The demo binary Cargo built for this test.
pub(crate) const DEMO: &str = env!("CARGO_BIN_EXE_session-demo");

/// How long a server may take to start answering.
pub(crate) const START_TIMEOUT: Duration = Duration::from_secs(60);

/// What the demo prints, with its address, when it serves.
pub(crate) const DEMO_READY: &str = "session-demo: serving on ";

/// Every variable the demo reads, removed from a [`demo_command`] so the
/// caller's environment does not leak into a test.
const DEMO_VARS: &[&str] = &[
    "BIND",
    "DATABASE_URL",
    "SESSION_BACKEND",
    "SESSION_SECRET",
    "SESSION_LITESTAR_COMPATIBLE",
    "SESSION_TABLE",
];

/// The demo binary with `args`, on a free loopback port, run in `dir` (so a
/// default SQLite file would land there), with none of the demo's
/// variables set but `env`, and `RUST_LOG=warn`.
pub(crate) fn demo_command(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(DEMO);
    cmd.args(["--bind", "127.0.0.1:0"])
        .args(args)
        .current_dir(dir)
        .env("RUST_LOG", "warn");
    for var in DEMO_VARS {
        cmd.env_remove(var);
    }
    for (var, value) in env {
        cmd.env(var, value);
    }
    cmd
}

/// Starts the demo ([`demo_command`]) and waits until it serves; its
/// stderr goes to `dir/<log>.log`.
pub(crate) fn start_demo(dir: &Path, log: &str, args: &[&str], env: &[(&str, &str)]) -> Server {
    Server::start(
        "session-demo",
        &mut demo_command(dir, args, env),
        DEMO_READY,
        dir.join(format!("{log}.log")),
    )
}

/// Runs the demo ([`demo_command`]) when it is expected to stop by itself
/// (a refused configuration): its exit code, stdout and stderr. Killed
/// after [`START_TIMEOUT`] if it serves instead.
pub(crate) fn run_demo(
    dir: &Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> (Option<i32>, String, String) {
    let mut child = demo_command(dir, args, env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the demo starts");
    let deadline = Instant::now() + START_TIMEOUT;
    while child.try_wait().expect("waiting for the demo").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("the demo's output");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Serves the demo over `store` on a free loopback port; returns its base
/// URL (`http://127.0.0.1:PORT`).
pub(crate) async fn serve(store: Arc<dyn Store>, config: SessionConfig) -> String {
    serve_app(session_demo::app(store, config)).await
}

/// Serves `app` on a free loopback port; returns its base URL.
pub(crate) async fn serve_app(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

/// The whole `Set-Cookie` header of the session cookie, if the response
/// sets one.
pub(crate) fn session_cookie_header(res: &reqwest::Response) -> Option<String> {
    res.headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("session="))
        .map(str::to_owned)
}

/// The value of the session cookie the response sets, if any.
pub(crate) fn session_cookie(res: &reqwest::Response) -> Option<String> {
    session_cookie_header(res).map(|c| id_of(&c))
}

/// The value of a `Set-Cookie: session=VALUE; ...` header.
pub(crate) fn id_of(cookie: &str) -> String {
    let pair = cookie.split(';').next().unwrap_or_default();
    pair.strip_prefix("session=").unwrap_or_default().to_owned()
}

/// `POST /login` with JSON credentials through `client`.
pub(crate) async fn login(
    client: &reqwest::Client,
    base: &str,
    username: &str,
    password: &str,
) -> reqwest::Response {
    client
        .post(format!("{base}/login"))
        .json(&serde_json::json!({"username": username, "password": password}))
        .send()
        .await
        .unwrap()
}

/// `POST /login` with `headers` and `cookie` (the session cookie's value),
/// by a client that keeps no cookies.
pub(crate) async fn login_with(
    base: &str,
    user: &str,
    password: &str,
    cookie: Option<&str>,
    headers: &[(&str, String)],
) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .post(format!("{base}/login"))
        .json(&serde_json::json!({"username": user, "password": password}));
    if let Some(cookie) = cookie {
        req = req.header(reqwest::header::COOKIE, format!("session={cookie}"));
    }
    for (name, value) in headers {
        req = req.header(*name, value);
    }
    req.send().await.unwrap()
}

/// `POST /login` as alice ([`login_with`]), which must succeed: the
/// session cookie it sets.
pub(crate) async fn login_alice(base: &str, cookie: Option<&str>) -> String {
    let res = login_with(base, "alice", "wonderland", cookie, &[]).await;
    assert_eq!(res.status(), reqwest::StatusCode::OK);
    session_cookie(&res).expect("login sets the session cookie")
}

/// What `/profile` shows for alice.
pub(crate) fn alice() -> serde_json::Value {
    serde_json::json!({"user_id": 1, "username": "alice", "roles": ["user", "admin"]})
}

/// A server process: killed, and waited for, when dropped (a panicking
/// test included).
pub(crate) struct Server {
    name: &'static str,
    pub(crate) child: Child,
    /// `http://127.0.0.1:PORT`.
    pub(crate) base: String,
    /// The whole line that said it serves.
    pub(crate) ready_line: String,
    log: PathBuf,
}

impl Server {
    /// Starts `cmd`, its stderr to `log`, and waits for the stdout line
    /// `<ready> http://ADDR/...`: the address it serves on.
    pub(crate) fn start(
        name: &'static str,
        cmd: &mut Command,
        ready: &str,
        log: PathBuf,
    ) -> Server {
        let err = File::create(&log).unwrap_or_else(|e| panic!("cannot create {log:?}: {e}"));
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        // Killed even if this test process dies before `Drop` runs.
        session_test_support::spawn_watchdog(child.id(), None);
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        let prefix = ready.to_owned();
        std::thread::spawn(move || {
            let mut sent = false;
            // Read to the end, so the server never blocks on a full pipe.
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if !sent && line.starts_with(&prefix) {
                    sent = tx.send(line).is_ok();
                }
            }
        });
        let mut server = Server {
            name,
            child,
            base: String::new(),
            ready_line: String::new(),
            log,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => {
                    let rest = line.strip_prefix(ready).unwrap_or_default();
                    server.base = rest.trim().split('/').take(3).collect::<Vec<_>>().join("/");
                    server.ready_line = line;
                    return server;
                }
                Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() < deadline => {
                    if let Ok(Some(status)) = server.child.try_wait() {
                        panic!(
                            "{name} exited ({status}) before serving:\n{}",
                            server.logs()
                        );
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => panic!(
                    "{name} did not say {ready:?} within {START_TIMEOUT:?}:\n{}",
                    server.logs()
                ),
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = server.child.wait();
                    panic!(
                        "{name} closed its output ({status:?}) without saying {ready:?}:\n{}",
                        server.logs()
                    );
                }
            }
        }
    }

    /// The tail of what the server wrote to stderr.
    pub(crate) fn logs(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(200)..].join("\n")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- {} stderr ---\n{}", self.name, self.logs());
        }
    }
}

/// `GET /profile` with `cookie` as the session cookie's value: the status
/// and the JSON body.
pub(crate) async fn profile(base: &str, cookie: &str) -> (reqwest::StatusCode, serde_json::Value) {
    let res = reqwest::Client::new()
        .get(format!("{base}/profile"))
        .header(reqwest::header::COOKIE, format!("session={cookie}"))
        .send()
        .await
        .unwrap();
    (res.status(), res.json().await.unwrap())
}
