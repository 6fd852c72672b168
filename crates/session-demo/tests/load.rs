//! Load through the middleware over HTTP: 64 concurrent tasks drive 1,000
//! simulated users (each with its own session cookie) through 20,000 mixed
//! requests (reads, renewing reads, writes, logins that create a new
//! session under a new id, logouts that delete it) on SQLite and on
//! PostgreSQL. No request may fail or answer wrongly, and at the end every
//! session holds exactly its last acknowledged write, while every id ended
//! by a login or logout is gone.
//!
//! ```text
//! cargo test --release -p session-demo --test load -- --nocapture
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::Path;
use axum::routing::{get, post};
use reqwest::StatusCode;
use reqwest::header::{COOKIE, SET_COOKIE};
use serde_json::{Value, json};
use session_core::Store;
use session_tower::{Session, SessionConfig, SessionError, SessionLayer, store_key};

const TASKS: usize = 64;
const USERS: usize = 1_000;
const OPS: usize = 20_000;

async fn read(session: Session) -> Result<String, SessionError> {
    Ok(match session.get::<u64>("v").await? {
        Some(v) => v.to_string(),
        None => "none".into(),
    })
}

async fn write(session: Session, Path(v): Path<u64>) -> Result<String, SessionError> {
    session.insert("v", v).await?;
    Ok(v.to_string())
}

async fn login(session: Session, Path(v): Path<u64>) -> Result<String, SessionError> {
    session.cycle_id().await?;
    session.insert("v", v).await?;
    Ok(v.to_string())
}

async fn logout(session: Session) -> Result<&'static str, SessionError> {
    session.clear().await?;
    Ok("out")
}

/// The routes on `store`; `/renew/get` behind a layer with
/// `renew_on_access`, the rest behind a plain one.
async fn serve(store: Arc<dyn Store>) -> String {
    let plain = SessionConfig::builder()
        .max_age(Duration::from_secs(3600))
        .build()
        .unwrap();
    let renewing = plain.to_builder().renew_on_access(true).build().unwrap();
    let app = Router::new()
        .route("/get", get(read))
        .route("/set/{v}", post(write))
        .route("/login/{v}", post(login))
        .route("/logout", post(logout))
        .layer(SessionLayer::with_shared(store.clone(), plain))
        .merge(
            Router::new()
                .route("/renew/get", get(read))
                .layer(SessionLayer::with_shared(store, renewing)),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

/// A simulated user: its cookie and the last value it wrote (the ledger).
#[derive(Default)]
struct User {
    id: Option<String>,
    value: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Op {
    Read,
    RenewingRead,
    Write,
    Login,
    Logout,
}

/// splitmix64: a reproducible mix of operations per task.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn pick(rng: &mut Rng) -> Op {
    match rng.below(100) {
        0..35 => Op::Read,
        35..50 => Op::RenewingRead,
        50..80 => Op::Write,
        80..90 => Op::Login,
        _ => Op::Logout,
    }
}

/// The session id a response sets: `Some(Some(id))`, `Some(None)` for the
/// expiring cookie of a logout, `None` without `Set-Cookie`.
fn set_cookie(res: &reqwest::Response) -> Result<Option<Option<String>>, String> {
    let cookies: Vec<&str> = res
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    match cookies.as_slice() {
        [] => Ok(None),
        [one] => {
            let value = one
                .split(';')
                .next()
                .and_then(|c| c.strip_prefix("session="))
                .ok_or_else(|| format!("unexpected Set-Cookie {one:?}"))?;
            Ok(Some((value != "null").then(|| value.to_owned())))
        }
        many => Err(format!("{} Set-Cookie headers: {many:?}", many.len())),
    }
}

/// One request of `user`, checked against the ledger and applied to it.
async fn step(
    client: &reqwest::Client,
    base: &str,
    user: &mut User,
    op: Op,
    next_value: u64,
    ended: &mut Vec<String>,
) -> Result<(), String> {
    let (method_post, path) = match op {
        Op::Read => (false, "/get".to_owned()),
        Op::RenewingRead => (false, "/renew/get".to_owned()),
        Op::Write => (true, format!("/set/{next_value}")),
        Op::Login => (true, format!("/login/{next_value}")),
        Op::Logout => (true, "/logout".to_owned()),
    };
    let url = format!("{base}{path}");
    let mut req = if method_post {
        client.post(url)
    } else {
        client.get(url)
    };
    if let Some(id) = &user.id {
        req = req.header(COOKIE, format!("session={id}"));
    }
    let res = req.send().await.map_err(|e| format!("{op:?}: {e}"))?;
    let status = res.status();
    let cookie = set_cookie(&res)?;
    let body = res.text().await.map_err(|e| format!("{op:?}: {e}"))?;
    if status != StatusCode::OK {
        return Err(format!("{op:?}: status {status}: {body}"));
    }
    let had = user.id.clone();
    match op {
        Op::Read | Op::RenewingRead => {
            let expected = user.value.map_or("none".to_owned(), |v| v.to_string());
            if body != expected {
                return Err(format!("{op:?}: read {body}, last write was {expected}"));
            }
            let expected_cookie = match (op, &had) {
                (Op::RenewingRead, Some(id)) => Some(Some(id.clone())),
                _ => None,
            };
            if cookie != expected_cookie {
                return Err(format!(
                    "{op:?}: Set-Cookie {cookie:?}, expected {expected_cookie:?}"
                ));
            }
        }
        Op::Write | Op::Login => {
            let Some(Some(id)) = cookie else {
                return Err(format!("{op:?}: no session cookie: {cookie:?}"));
            };
            match (&had, op) {
                (Some(old), Op::Write) if *old != id => {
                    return Err(format!("{op:?}: a write changed the id"));
                }
                (Some(old), Op::Login) => {
                    if *old == id {
                        return Err("Login: the id did not change".into());
                    }
                    ended.push(old.clone());
                }
                _ => {}
            }
            user.id = Some(id);
            user.value = Some(next_value);
        }
        Op::Logout => {
            let expected_cookie = had.as_ref().map(|_| None);
            if cookie != expected_cookie {
                return Err(format!(
                    "Logout: Set-Cookie {cookie:?}, expected {expected_cookie:?}"
                ));
            }
            if let Some(old) = had {
                ended.push(old);
            }
            user.id = None;
            user.value = None;
        }
    }
    Ok(())
}

async fn hammer(backend: &str, store: Arc<dyn Store>) {
    let base = serve(store.clone()).await;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(TASKS)
        .build()
        .unwrap();
    let users: Vec<User> = (0..USERS).map(|_| User::default()).collect();
    // Each task owns the users `u` with `u % TASKS == task`, so the ledger
    // of each session is written by one task, in order.
    let mut shards: Vec<Vec<User>> = (0..TASKS).map(|_| Vec::new()).collect();
    for (i, user) in users.into_iter().enumerate() {
        shards[i % TASKS].push(user);
    }

    // Every user logs in once: 1,000 sessions.
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (task, mut shard) in shards.into_iter().enumerate() {
        let client = client.clone();
        let base = base.clone();
        tasks.push(tokio::spawn(async move {
            let mut ended = Vec::new();
            let mut errors = Vec::new();
            for (i, user) in shard.iter_mut().enumerate() {
                let v = (task * 1_000_000 + i) as u64;
                if let Err(e) = step(&client, &base, user, Op::Login, v, &mut ended).await {
                    errors.push(e);
                }
            }
            (shard, errors)
        }));
    }
    let mut shards = Vec::new();
    for task in tasks {
        let (shard, errors) = task.await.expect("a task panicked");
        assert!(errors.is_empty(), "{backend}: logins failed: {errors:?}");
        shards.push(shard);
    }
    let setup = started.elapsed();

    // The mixed load.
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (task, mut shard) in shards.into_iter().enumerate() {
        let client = client.clone();
        let base = base.clone();
        let count = OPS / TASKS + usize::from(task < OPS % TASKS);
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng(task as u64 + 1);
            let mut ended = Vec::new();
            let mut errors = Vec::new();
            let mut per_op = std::collections::HashMap::<Op, usize>::new();
            for n in 0..count {
                let op = pick(&mut rng);
                let who = rng.below(shard.len());
                // Unique per write: task, sequence number.
                let v = ((task as u64) << 32) | (n as u64 + 1_000_000);
                *per_op.entry(op).or_default() += 1;
                if let Err(e) = step(&client, &base, &mut shard[who], op, v, &mut ended).await {
                    errors.push(e);
                }
            }
            (shard, ended, errors, per_op)
        }));
    }
    let mut shards = Vec::new();
    let mut ended = Vec::new();
    let mut errors = Vec::new();
    let mut per_op = std::collections::HashMap::<Op, usize>::new();
    for task in tasks {
        let (shard, e, errs, ops) = task.await.expect("a task panicked");
        shards.push(shard);
        ended.extend(e);
        errors.extend(errs);
        for (op, n) in ops {
            *per_op.entry(op).or_default() += n;
        }
    }
    let elapsed = started.elapsed();
    let total: usize = per_op.values().sum();
    println!(
        "{backend}: {USERS} logins in {setup:.2?}; {total} mixed requests from {TASKS} tasks in \
         {elapsed:.2?}: {:.0} requests/s ({per_op:?}); {} unexpected errors",
        total as f64 / elapsed.as_secs_f64(),
        errors.len(),
    );
    assert_eq!(total, OPS);
    assert!(
        errors.is_empty(),
        "{backend}: {} unexpected errors, first ones: {:?}",
        errors.len(),
        &errors[..errors.len().min(5)]
    );

    // Every live session holds its last acknowledged write, read from the
    // store under the hashed key; every ended id is gone.
    let mut live = 0;
    for user in shards.iter().flatten() {
        match (&user.id, user.value) {
            (Some(id), Some(v)) => {
                live += 1;
                let stored = store
                    .get(&store_key(id, true), None)
                    .await
                    .unwrap()
                    .unwrap_or_else(|| panic!("{backend}: a live session is missing"));
                let data: Value = serde_json::from_slice(&stored).unwrap();
                assert_eq!(data, json!({ "v": v }), "{backend}: lost write");
            }
            (None, None) => {}
            other => panic!("inconsistent ledger {other:?}"),
        }
    }
    for id in &ended {
        assert!(
            !store.exists(&store_key(id, true)).await.unwrap(),
            "{backend}: an ended session is still in the store"
        );
    }
    // And over HTTP, for a sample of users.
    let client = reqwest::Client::new();
    for user in shards.iter().flatten().step_by(10) {
        let mut req = client.get(format!("{base}/get"));
        if let Some(id) = &user.id {
            req = req.header(COOKIE, format!("session={id}"));
        }
        let body = req.send().await.unwrap().text().await.unwrap();
        assert_eq!(
            body,
            user.value.map_or("none".to_owned(), |v| v.to_string())
        );
    }
    println!(
        "{backend}: ledger verified: {live} live sessions hold their last write, {} ended ids are gone",
        ended.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_tasks_through_the_middleware_on_sqlite() {
    let dir = std::env::temp_dir().join(format!("session-demo-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("load.sqlite");
    let store = session_demo::open_store(&format!("sqlite://{}", path.display()), &Value::Null)
        .await
        .unwrap();
    hammer("sqlite", store).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_tasks_through_the_middleware_on_postgres() {
    let url = match session_test_support::pg_url() {
        Ok(url) => url,
        Err(skip) => {
            println!("skipped: {skip}");
            return;
        }
    };
    let table = session_test_support::unique_table_name("demo_load");
    let extension = json!({"litestar": {"session_table": table}});
    let store = session_demo::open_store(&url, &extension).await.unwrap();
    hammer("postgres", store).await;
    session_test_support::drop_tables_blocking(&url, &[format!("{table}_migrations"), table])
        .unwrap();
}
