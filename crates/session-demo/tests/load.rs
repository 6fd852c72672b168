//! Load through the middleware over HTTP: 64 concurrent tasks drive 1,000
//! simulated users (each with its own session cookie) through 20,000 mixed
//! requests (reads, renewing reads, writes, logins that create a new
//! session under a new id, logouts that delete it) on SQLite and on
//! PostgreSQL. No request may fail or answer wrongly, and at the end every
//! session holds exactly its last acknowledged write, while every id ended
//! by a login or logout is gone.
//!
//! Then a phase where sessions are shared: 32 tasks, in 100 rounds started
//! together (a barrier), each round four tasks on each of 8 sessions at
//! once. With the middleware's last-writer-wins semantics the exact value
//! of a session is not the ledger's any more; what still holds is checked
//! (see [`check_shared`]): every answer is 200 and one some request could
//! have produced, no id ended by a logout or login ever answers with data
//! again or is written again, and each surviving session holds a write
//! that no acknowledged write started after it finished.
//!
//! ```text
//! cargo test --release -p session-demo --test load -- --nocapture
//! ```

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
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
/// `renew_on_access` renewing on every read (`renew_threshold` 1.0, so each
/// renewing read writes, racing the other requests), the rest behind a
/// plain one.
async fn serve(store: Arc<dyn Store>) -> String {
    let plain = SessionConfig::builder()
        .max_age(Duration::from_secs(3600))
        .build()
        .unwrap();
    let renewing = plain
        .to_builder()
        .renew_on_access(true)
        .renew_threshold(1.0)
        .build()
        .unwrap();
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

    shared_sessions(backend, &store, &base, &client).await;
}

const SHARED_TASKS: usize = 32;
const SHARED_SESSIONS: usize = 8;
const SHARED_ROUNDS: usize = 100;

fn pick_shared(rng: &mut Rng) -> Op {
    match rng.below(100) {
        0..35 => Op::Read,
        35..50 => Op::RenewingRead,
        50..85 => Op::Write,
        85..93 => Op::Login,
        _ => Op::Logout,
    }
}

/// One request of the shared phase: what was sent, when, and the answer.
/// `sent` and `recv` are ticks of one logical clock taken before the
/// request is sent (before the round's barrier) and after its answer is
/// read: `a.recv < b.sent` means `a` was over before `b` began.
#[derive(Debug)]
struct Record {
    round: usize,
    op: Op,
    /// The session id sent in the cookie.
    id: Option<String>,
    /// The value a write or login stores.
    value: u64,
    sent: u64,
    recv: u64,
    status: StatusCode,
    body: String,
    /// The id the answer sets: see [`set_cookie`].
    cookie: Option<Option<String>>,
}

/// The shared phase: each round, every task takes the current id of the
/// session `(task + round) % SHARED_SESSIONS` (so four tasks take each
/// session), all wait at a barrier, then all send at once. A task that
/// gets a new id back (a login, or a write that found its session ended
/// and started another) makes it the session's current id; one that gets
/// the expiring cookie clears it.
async fn shared_sessions(
    backend: &str,
    store: &Arc<dyn Store>,
    base: &str,
    client: &reqwest::Client,
) {
    let clock = Arc::new(AtomicU64::new(0));
    let barrier = Arc::new(tokio::sync::Barrier::new(SHARED_TASKS));
    let current: Arc<Vec<Mutex<Option<String>>>> =
        Arc::new((0..SHARED_SESSIONS).map(|_| Mutex::new(None)).collect());
    let started = Instant::now();
    let mut tasks = Vec::new();
    for task in 0..SHARED_TASKS {
        let (client, base) = (client.clone(), base.to_owned());
        let (clock, barrier, current) = (clock.clone(), barrier.clone(), current.clone());
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng(0x5eed_0000 + task as u64);
            let mut records = Vec::new();
            let mut errors = Vec::new();
            for round in 0..SHARED_ROUNDS {
                let session = (task + round) % SHARED_SESSIONS;
                let op = pick_shared(&mut rng);
                let value = (1 << 62) | ((task as u64) << 32) | round as u64;
                let id = current[session].lock().unwrap().clone();
                let sent = clock.fetch_add(1, Ordering::SeqCst);
                barrier.wait().await;
                let path = match op {
                    Op::Read => "/get".to_owned(),
                    Op::RenewingRead => "/renew/get".to_owned(),
                    Op::Write => format!("/set/{value}"),
                    Op::Login => format!("/login/{value}"),
                    Op::Logout => "/logout".to_owned(),
                };
                let url = format!("{base}{path}");
                let mut req = match op {
                    Op::Read | Op::RenewingRead => client.get(url),
                    _ => client.post(url),
                };
                if let Some(id) = &id {
                    req = req.header(COOKIE, format!("session={id}"));
                }
                let answer = async {
                    let res = req.send().await.map_err(|e| e.to_string())?;
                    let status = res.status();
                    let cookie = set_cookie(&res)?;
                    let body = res.text().await.map_err(|e| e.to_string())?;
                    Ok::<_, String>((status, cookie, body))
                };
                let (status, cookie, body) = match answer.await {
                    Ok(answer) => answer,
                    Err(e) => {
                        errors.push(format!("{op:?} in round {round}: {e}"));
                        continue;
                    }
                };
                let recv = clock.fetch_add(1, Ordering::SeqCst);
                {
                    let mut slot = current[session].lock().unwrap();
                    match &cookie {
                        Some(Some(new)) if Some(new) != id.as_ref() => *slot = Some(new.clone()),
                        Some(None) if *slot == id => *slot = None,
                        _ => {}
                    }
                }
                records.push(Record {
                    round,
                    op,
                    id,
                    value,
                    sent,
                    recv,
                    status,
                    body,
                    cookie,
                });
            }
            (records, errors)
        }));
    }
    let mut records = Vec::new();
    let mut errors = Vec::new();
    for task in tasks {
        let (r, e) = task.await.expect("a task panicked");
        records.extend(r);
        errors.extend(e);
    }
    let elapsed = started.elapsed();
    assert!(
        errors.is_empty(),
        "{backend}: shared sessions: {} requests failed, first ones: {:?}",
        errors.len(),
        &errors[..errors.len().min(5)]
    );
    assert_eq!(records.len(), SHARED_TASKS * SHARED_ROUNDS);
    let summary = check_shared(backend, store, &records).await;
    println!(
        "{backend}: shared sessions: {} requests from {SHARED_TASKS} tasks on {SHARED_SESSIONS} \
         sessions in {elapsed:.2?}; {summary}",
        records.len()
    );
}

/// Checks the records of the shared phase, and the store after it, for
/// what last-writer-wins still promises; panics with the first violations.
/// Returns a summary of what happened.
async fn check_shared(backend: &str, store: &Arc<dyn Store>, records: &[Record]) -> String {
    // Where each value was stored: the writes and logins whose answer
    // carried the id they wrote under.
    let mut stored_under: HashMap<u64, (&str, &Record)> = HashMap::new();
    let mut writes_on: HashMap<&str, Vec<&Record>> = HashMap::new();
    // The logouts and logins sent with each id: each removes it.
    let mut ends: HashMap<&str, Vec<&Record>> = HashMap::new();
    let mut created: HashSet<&str> = HashSet::new();
    let mut violations: Vec<String> = Vec::new();
    for r in records {
        if let (Op::Write | Op::Login, Some(Some(id))) = (r.op, &r.cookie) {
            stored_under.insert(r.value, (id.as_str(), r));
            writes_on.entry(id.as_str()).or_default().push(r);
            if r.id.as_ref() != Some(id) && !created.insert(id.as_str()) {
                violations.push(format!("the id {id} was handed out twice"));
            }
        }
        if let (Op::Logout | Op::Login, Some(id)) = (r.op, &r.id) {
            ends.entry(id.as_str()).or_default().push(r);
        }
    }
    // The first moment each ended id was known to be gone: the answer to
    // the first logout or login that removed it.
    let gone_at: HashMap<&str, u64> = ends
        .iter()
        .map(|(id, e)| (*id, e.iter().map(|r| r.recv).min().unwrap()))
        .collect();
    // An end of `id` begun before `r` was answered.
    let ended_during = |id: &str, r: &Record| {
        ends.get(id)
            .is_some_and(|e| e.iter().any(|end| end.sent < r.recv))
    };
    let after_end = |id: &str, r: &Record| gone_at.get(id).is_some_and(|&at| r.sent > at);

    let mut shared_rounds = 0;
    let mut by_round: HashMap<(&str, usize), usize> = HashMap::new();
    let (mut dropped_writes, mut restarted, mut lost_logins) = (0, 0, 0);
    let mut renewals_ended = 0;
    for r in records {
        let what = format!(
            "{:?} with {:?}: {} {:?}, Set-Cookie {:?}",
            r.op, r.id, r.status, r.body, r.cookie
        );
        if r.status != StatusCode::OK {
            violations.push(format!("not 200: {what}"));
            continue;
        }
        if let Some(id) = &r.id {
            // Several requests of one round on one session: sent at once.
            let n = by_round.entry((id.as_str(), r.round)).or_default();
            *n += 1;
            if *n == 2 {
                shared_rounds += 1;
            }
        }
        match r.op {
            Op::Read | Op::RenewingRead => {
                let expected_cookie = match (r.op, &r.id, r.body.as_str()) {
                    (Op::RenewingRead, Some(id), body) if body != "none" => Some(Some(id.clone())),
                    _ => None,
                };
                // A renewal finds the session ended by a logout or login
                // that ran after the read: the session is gone, and the
                // answer (the data read before) expires its cookie.
                let renewal_ended = matches!(
                    (r.op, &r.cookie, r.id.as_deref()),
                    (Op::RenewingRead, Some(None), Some(id)) if r.body != "none" && ended_during(id, r)
                );
                if renewal_ended {
                    renewals_ended += 1;
                } else if r.cookie != expected_cookie {
                    violations.push(format!("unexpected cookie: {what}"));
                }
                let Some(id) = r.id.as_deref() else {
                    if r.body != "none" {
                        violations.push(format!("data without a session: {what}"));
                    }
                    continue;
                };
                if r.body == "none" {
                    if !ended_during(id, r) {
                        violations.push(format!("a session no one ended read as empty: {what}"));
                    }
                    continue;
                }
                if after_end(id, r) {
                    violations.push(format!("a session read after its logout answered: {what}"));
                }
                let source = r
                    .body
                    .parse::<u64>()
                    .ok()
                    .and_then(|v| stored_under.get(&v));
                match source {
                    Some((under, w)) if *under == id && w.sent < r.recv => {
                        // Not stale: no write acknowledged on this id
                        // before the read began started after `w` ended.
                        if let Some(newer) = writes_on[id]
                            .iter()
                            .find(|n| n.recv < r.sent && n.sent > w.recv)
                        {
                            violations.push(format!(
                                "a stale read (overwritten by {:?} before it began): {what}",
                                newer.value
                            ));
                        }
                    }
                    _ => violations.push(format!("a value no write stored under this id: {what}")),
                }
            }
            Op::Write => {
                if r.body != r.value.to_string() {
                    violations.push(format!("wrong answer: {what}"));
                }
                match (&r.cookie, r.id.as_deref()) {
                    (Some(Some(new)), Some(id)) if new == id => {
                        if after_end(id, r) {
                            violations.push(format!("a session written after its logout: {what}"));
                        }
                    }
                    // Ended while the write ran: the write is dropped.
                    (Some(None), Some(id)) if ended_during(id, r) => dropped_writes += 1,
                    // Without a session, or one already ended: a new one.
                    (Some(Some(_)), None) => {}
                    (Some(Some(_)), Some(id)) if ended_during(id, r) => restarted += 1,
                    _ => violations.push(format!("unexpected cookie: {what}")),
                }
            }
            Op::Login => {
                if r.body != r.value.to_string() {
                    violations.push(format!("wrong answer: {what}"));
                }
                // A login gives the session a new id; or, when another
                // logout or login of the same id took the old row first
                // (`delete_live`: exactly one of them wins), it ends the
                // session and expires the cookie.
                let lost_the_race = r.id.as_deref().is_some_and(|id| {
                    ends.get(id).is_some_and(|e| {
                        e.iter()
                            .any(|other| !std::ptr::eq(*other, r) && other.sent < r.recv)
                    })
                });
                match &r.cookie {
                    Some(Some(new)) if Some(new) != r.id.as_ref() => {}
                    Some(None) if lost_the_race => lost_logins += 1,
                    _ => violations.push(format!("a login without a new id: {what}")),
                }
            }
            Op::Logout => {
                let expected = r.id.as_ref().map(|_| None);
                if r.body != "out" || r.cookie != expected {
                    violations.push(format!("unexpected logout answer: {what}"));
                }
            }
        }
    }

    // The store afterwards: every ended id is gone; every other id holds a
    // value stored under it, by a write that no acknowledged write on the
    // id began after the end of.
    let (mut gone, mut live) = (0, 0);
    for id in ends.keys() {
        gone += 1;
        if store.exists(&store_key(id, true)).await.unwrap() {
            violations.push(format!("the ended id {id} is back in the store"));
        }
    }
    for (id, writes) in &writes_on {
        if ends.contains_key(id) {
            continue;
        }
        live += 1;
        let Some(stored) = store.get(&store_key(id, true), None).await.unwrap() else {
            violations.push(format!("the session {id}, never ended, is missing"));
            continue;
        };
        let data: Value = serde_json::from_slice(&stored).unwrap();
        let last = data["v"].as_u64().and_then(|v| stored_under.get(&v));
        match last {
            Some((under, w)) if under == id => {
                if let Some(later) = writes.iter().find(|n| n.sent > w.recv) {
                    violations.push(format!(
                        "the session {id} holds {} though {} was written after it",
                        w.value, later.value
                    ));
                }
            }
            _ => violations.push(format!(
                "the session {id} holds {data}, stored by no write on it"
            )),
        }
    }
    assert!(
        violations.is_empty(),
        "{backend}: shared sessions: {} violations, first ones: {:#?}",
        violations.len(),
        &violations[..violations.len().min(10)]
    );
    assert!(
        shared_rounds > 0,
        "{backend}: no two requests ever shared a session"
    );
    format!(
        "{shared_rounds} times several requests on one session at once; {dropped_writes} writes \
         dropped by a concurrent end, {renewals_ended} renewals found their session ended, \
         {restarted} started a new session, {lost_logins} logins lost the old id to a concurrent \
         end; {gone} ended ids gone, {live} live sessions hold a last write"
    )
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
    let Some(url) = session_test_support::pg_url_or_skip() else {
        return;
    };
    let table = session_test_support::unique_table_name("demo_load");
    let extension = json!({"litestar": {"session_table": table}});
    let store = session_demo::open_store(&url, &extension).await.unwrap();
    hammer("postgres", store).await;
    session_test_support::drop_tables_blocking(&url, &[format!("{table}_migrations"), table])
        .unwrap();
}
