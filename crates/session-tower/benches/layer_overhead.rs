//! Per-request overhead of `SessionLayer` with `MemoryStore`: each handler
//! through the layer, against the same handler without the layer doing the
//! same store work by hand (the same `get`, the same JSON parse, and for a
//! write the same serialization and `update`), in-process (no sockets). The
//! difference is what the layer adds: reading the cookie, checking and
//! hashing the id, the `Session` object and its bookkeeping, the size check
//! and the `Set-Cookie`.
//!
//! Before timing, each case runs once each way on a store that records
//! every call, and the two call lists (operation, key, value, expiry) must
//! be equal: the baseline does the store work the layer does, no more, no
//! less.
//!
//! A second table counts what `renew_on_access` costs a busy session: the
//! store writes per 1,000 reads, spread over three lifetimes, with
//! `renew_threshold` 1.0 (a renewal on every access, the behaviour before
//! the threshold) and the default 0.5; and the time per read of each.
//!
//! Run: `cargo bench -p session-tower --bench layer_overhead`. Without
//! `--bench` (`cargo test --benches`) only the checks run (the same store
//! work, and a short run of the renewal count).

mod support;

use std::convert::Infallible;
use std::hint::black_box;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use serde::Deserialize;
use serde_json::{Map, Value};
use session_core::{MemoryStore, Store, async_trait};
use session_test_support::bench::median;
use session_tower::{Session, SessionConfig, SessionLayer, store_key};
use support::request;
use tower::{Layer, Service, ServiceExt, service_fn};

const REQUESTS: u32 = 200_000;
const STORED: &[u8] = br#"{"n":0,"user_id":42,"username":"alice","roles":["user"]}"#;

#[derive(Clone, Copy, Debug)]
enum Handler {
    /// Never touches the session.
    Untouched,
    /// Reads one key (one store `get`).
    Read,
    /// Increments a counter (a `get` and an `update`).
    Write,
}

const CASES: [(&str, Handler); 3] = [
    ("untouched", Handler::Untouched),
    ("reads one key", Handler::Read),
    ("writes one key", Handler::Write),
];

/// The handler behind the layer: works through the request's [`Session`].
async fn with_session(
    handler: Handler,
    req: Request<String>,
) -> Result<Response<String>, Infallible> {
    match handler {
        Handler::Untouched => {}
        Handler::Read => {
            let session = session_of(&req);
            black_box(session.get::<u64>("n").await.expect("read"));
        }
        Handler::Write => {
            let session = session_of(&req);
            let n: u64 = session.get("n").await.expect("read").unwrap_or(0);
            session.insert("n", n + 1).await.expect("insert");
        }
    }
    Ok(Response::new(String::new()))
}

fn session_of(req: &Request<String>) -> &Session {
    req.extensions()
        .get::<Session>()
        .expect("the layer puts a Session in the request")
}

/// What the handler without the layer is given: the store, and the store
/// key and lifetime of the session it works on.
struct Direct {
    store: Arc<dyn Store>,
    key: String,
    max_age: Duration,
}

impl Direct {
    /// The stored session and the bytes it was read from.
    async fn load(&self) -> (Map<String, Value>, Bytes) {
        let bytes = self.store.get(&self.key, None).await.expect("get");
        let bytes = bytes.expect("the session is stored");
        (
            serde_json::from_slice(&bytes).expect("a JSON object"),
            bytes,
        )
    }
}

/// The same handler without the layer: the same store work, by hand.
async fn direct(
    handler: Handler,
    direct: Arc<Direct>,
    _req: Request<String>,
) -> Result<Response<String>, Infallible> {
    match handler {
        Handler::Untouched => {}
        Handler::Read => {
            let (data, _) = direct.load().await;
            let n = data
                .get("n")
                .map(|v| u64::deserialize(v).expect("a number"));
            black_box(n);
        }
        Handler::Write => {
            let (mut data, loaded) = direct.load().await;
            let n = data
                .get("n")
                .map_or(0, |v| u64::deserialize(v).expect("a number"));
            data.insert("n".to_owned(), Value::from(n + 1));
            let value = Bytes::from(serde_json::to_vec(&data).expect("serialize"));
            // The layer saves an existing session with a compare-and-set.
            let updated = direct
                .store
                .compare_and_set(&direct.key, loaded, value, Some(direct.max_age))
                .await
                .expect("compare_and_set");
            assert!(updated, "the session is stored");
        }
    }
    Ok(Response::new(String::new()))
}

async fn time<S>(service: S, cookie: &str) -> Duration
where
    S: Service<Request<String>, Response = Response<String>, Error = Infallible>,
{
    time_n(service, cookie, REQUESTS).await
}

async fn time_n<S>(mut service: S, cookie: &str, requests: u32) -> Duration
where
    S: Service<Request<String>, Response = Response<String>, Error = Infallible>,
{
    // Warm up, then measure.
    for _ in 0..requests / 10 {
        let svc = service.ready().await.unwrap();
        black_box(svc.call(request(cookie)).await.unwrap());
    }
    let start = Instant::now();
    for _ in 0..requests {
        let svc = service.ready().await.unwrap();
        black_box(svc.call(request(cookie)).await.unwrap());
    }
    start.elapsed() / requests
}

/// A fresh store holding the benchmark's one session, and its cookie.
async fn setup(store: &dyn Store, config: &SessionConfig) -> (String, String) {
    let id = config.generate_session_id().unwrap();
    let key = store_key(&id, config.hash_session_ids());
    store
        .set(
            &key,
            Bytes::from_static(STORED),
            Some(Duration::from_secs(3600)),
        )
        .await
        .unwrap();
    (key, format!("theme=dark; session={id}; lang=en"))
}

/// A `MemoryStore` that records every call (the value written, not how long
/// it took), for the same-work check.
#[derive(Default)]
struct Recording {
    inner: MemoryStore,
    calls: Mutex<Vec<String>>,
}

impl Recording {
    fn record(&self, call: String) {
        self.calls.lock().unwrap().push(call);
    }
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut self.calls.lock().unwrap())
    }
}

fn text(value: &Bytes) -> String {
    String::from_utf8_lossy(value).into_owned()
}

#[async_trait]
impl Store for Recording {
    async fn get(
        &self,
        key: &str,
        renew_for: Option<Duration>,
    ) -> session_core::Result<Option<Bytes>> {
        self.record(format!("get {key} renew {renew_for:?}"));
        self.inner.get(key, renew_for).await
    }
    async fn set(
        &self,
        key: &str,
        value: Bytes,
        expires_in: Option<Duration>,
    ) -> session_core::Result<()> {
        self.record(format!("set {key} {} {expires_in:?}", text(&value)));
        self.inner.set(key, value, expires_in).await
    }
    async fn delete(&self, key: &str) -> session_core::Result<()> {
        self.record(format!("delete {key}"));
        self.inner.delete(key).await
    }
    async fn delete_all(&self) -> session_core::Result<()> {
        self.record("delete_all".to_owned());
        self.inner.delete_all().await
    }
    async fn exists(&self, key: &str) -> session_core::Result<bool> {
        self.record(format!("exists {key}"));
        self.inner.exists(key).await
    }
    async fn expires_in(&self, key: &str) -> session_core::Result<Option<Duration>> {
        self.record(format!("expires_in {key}"));
        self.inner.expires_in(key).await
    }
    async fn delete_expired(&self) -> session_core::Result<u64> {
        self.record("delete_expired".to_owned());
        self.inner.delete_expired().await
    }
    async fn create(
        &self,
        key: &str,
        value: Bytes,
        expires_in: Option<Duration>,
    ) -> session_core::Result<bool> {
        self.record(format!("create {key} {} {expires_in:?}", text(&value)));
        self.inner.create(key, value, expires_in).await
    }
    async fn update(
        &self,
        key: &str,
        value: Bytes,
        expires_in: Option<Duration>,
    ) -> session_core::Result<bool> {
        self.record(format!("update {key} {} {expires_in:?}", text(&value)));
        self.inner.update(key, value, expires_in).await
    }
    async fn compare_and_set(
        &self,
        key: &str,
        expected: Bytes,
        value: Bytes,
        expires_in: Option<Duration>,
    ) -> session_core::Result<bool> {
        self.record(format!(
            "compare_and_set {key} {} {} {expires_in:?}",
            text(&expected),
            text(&value)
        ));
        self.inner
            .compare_and_set(key, expected, value, expires_in)
            .await
    }
    async fn delete_live(&self, key: &str) -> session_core::Result<bool> {
        self.record(format!("delete_live {key}"));
        self.inner.delete_live(key).await
    }
}

/// Runs each case once through the layer and once through the baseline,
/// each on a store of its own holding the same session, and fails unless
/// both made the same store calls (a write case calls `update` with the
/// same bytes).
async fn check_same_store_work(config: &SessionConfig) {
    for (name, handler) in CASES {
        let layered = Arc::new(Recording::default());
        let bare = Arc::new(Recording::default());
        // The same id on both sides, so the keys in the calls compare.
        let (key, cookie) = setup(layered.as_ref(), config).await;
        layered.take(); // the setup's own `set`
        bare.inner
            .set(
                &key,
                Bytes::from_static(STORED),
                Some(Duration::from_secs(3600)),
            )
            .await
            .unwrap();

        let layer = SessionLayer::with_shared(layered.clone(), config.clone());
        let mut service = layer.layer(service_fn(move |req| with_session(handler, req)));
        let res = service
            .ready()
            .await
            .unwrap()
            .call(request(&cookie))
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{name}: through the layer");
        let through_layer = layered.take();

        let direct_state = Arc::new(Direct {
            store: bare.clone(),
            key: key.clone(),
            max_age: config.max_age(),
        });
        let mut service = service_fn(move |req| direct(handler, direct_state.clone(), req));
        service
            .ready()
            .await
            .unwrap()
            .call(request(&cookie))
            .await
            .unwrap();
        let by_hand = bare.take();

        assert_eq!(
            through_layer, by_hand,
            "{name}: the baseline does not do the store work the layer does"
        );
        println!("same store work, {name}: {through_layer:?}");
    }
}

/// Whether a recorded call writes: every call but a plain read (`get`
/// without renewal, `exists`, `expires_in`).
fn is_write(call: &str) -> bool {
    if call.starts_with("get ") {
        return !call.ends_with("renew None");
    }
    !(call.starts_with("exists ") || call.starts_with("expires_in "))
}

/// A `renew_on_access` config with a lifetime of `max_age` and
/// `threshold`.
fn renewing(max_age: Duration, threshold: f64) -> SessionConfig {
    SessionConfig::builder()
        .max_age(max_age)
        .renew_on_access(true)
        .renew_threshold(threshold)
        .build()
        .expect("a valid config")
}

/// Store writes and calls made by `reads` reads of one session through
/// the layer, one every `every`, under `config`; the session must still
/// be live at the end.
async fn renewal_writes(config: &SessionConfig, reads: u32, every: Duration) -> (usize, usize) {
    let store = Arc::new(Recording::default());
    let id = config.generate_session_id().unwrap();
    let key = store_key(&id, true);
    store
        .set(&key, Bytes::from_static(STORED), Some(config.max_age()))
        .await
        .unwrap();
    store.take();
    let cookie = format!("session={id}");
    let layer = SessionLayer::with_shared(store.clone(), config.clone());
    let mut service = layer.layer(service_fn(|req| with_session(Handler::Read, req)));
    let start = tokio::time::Instant::now();
    let (mut writes, mut calls) = (0, 0);
    for i in 0..reads {
        tokio::time::sleep_until(start + every * i).await;
        let svc = service.ready().await.unwrap();
        black_box(svc.call(request(&cookie)).await.unwrap());
        let made = store.take();
        calls += made.len();
        writes += made.iter().filter(|c| is_write(c)).count();
    }
    assert!(
        store.exists(&key).await.unwrap(),
        "the session expired between renewals"
    );
    (writes, calls)
}

/// The renewal table: writes per 1,000 reads spread over three lifetimes
/// (`max_age` 1 s, a read every 3 ms), then the time per read when no
/// renewal is due (threshold 0.5: a `get` and an `expires_in`) against a
/// renewal on every read (1.0: one renewing `get`), alternating short
/// rounds.
async fn renewal_table(rounds: usize, timed_requests: u32) {
    let every = Duration::from_millis(3);
    let mut rows = Vec::new();
    for threshold in [1.0, 0.5] {
        let config = renewing(Duration::from_secs(1), threshold);
        let mut writes = Vec::new();
        let mut calls = Vec::new();
        for _ in 0..rounds {
            let (w, c) = renewal_writes(&config, 1000, every).await;
            writes.push(w as f64);
            calls.push(c as f64);
        }
        rows.push((threshold, writes, calls));
    }
    let mut times: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    if timed_requests > 0 {
        for _ in 0..rounds {
            for (i, threshold) in [1.0, 0.5].into_iter().enumerate() {
                let config = renewing(Duration::from_secs(3600), threshold);
                let store = Arc::new(MemoryStore::new());
                let (_, cookie) = setup(store.as_ref(), &config).await;
                let layer = SessionLayer::with_shared(store.clone(), config);
                let layered = layer.layer(service_fn(|req| with_session(Handler::Read, req)));
                times[i].push(time_n(layered, &cookie, timed_requests).await.as_secs_f64() * 1e6);
            }
        }
    }
    println!(
        "\n| renew_threshold | store writes per 1,000 reads (3 lifetimes) | store calls per read | time per read |"
    );
    println!("| --- | ---: | ---: | ---: |");
    for (i, (threshold, writes, calls)) in rows.iter().enumerate() {
        let time = if times[i].is_empty() {
            "-".to_owned()
        } else {
            format!("{:.2} µs", median(times[i].iter().copied()))
        };
        println!(
            "| {threshold:.1}{} | {:.0} | {:.2} | {time} |",
            if *threshold == 1.0 {
                " (renew on every access, as before)"
            } else {
                " (default)"
            },
            median(writes.iter().copied()),
            median(calls.iter().copied()) / 1000.0,
        );
    }
    if !times[0].is_empty() {
        let ratios = times[1]
            .iter()
            .zip(&times[0])
            .map(|(after, before)| after / before);
        println!(
            "\nmedian of the rounds' time ratios (0.5 / 1.0): {:.2} ({rounds} rounds of {timed_requests} reads each)",
            median(ratios)
        );
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let config = SessionConfig::default();
    check_same_store_work(&config).await;
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this
    // binary without it, and then only the checks run.
    if !std::env::args().any(|a| a == "--bench") {
        // One round of the renewal count, untimed.
        renewal_table(1, 0).await;
        println!(
            "layer_overhead: run with `cargo bench -p session-tower --bench layer_overhead` to measure"
        );
        return;
    }

    let store = Arc::new(MemoryStore::new());
    let (key, cookie) = setup(store.as_ref(), &config).await;
    let layer = SessionLayer::with_shared(store.clone(), config.clone());
    let state = Arc::new(Direct {
        store: store.clone(),
        key,
        max_age: config.max_age(),
    });

    println!("| handler | without layer | with layer | overhead per request |");
    println!("| --- | ---: | ---: | ---: |");
    for (name, handler) in CASES {
        let state = state.clone();
        let bare = service_fn(move |req| direct(handler, state.clone(), req));
        let without = time(bare, &cookie).await;
        let layered = layer.layer(service_fn(move |req| with_session(handler, req)));
        let with = time(layered, &cookie).await;
        println!(
            "| {name} | {:.2} µs | {:.2} µs | {:.2} µs |",
            without.as_secs_f64() * 1e6,
            with.as_secs_f64() * 1e6,
            with.saturating_sub(without).as_secs_f64() * 1e6
        );
    }

    renewal_table(5, REQUESTS / 4).await;

    // One part of the overhead on its own: the SHA-256 of the id.
    let id = config.generate_session_id().unwrap();
    let start = Instant::now();
    for _ in 0..REQUESTS {
        black_box(store_key(black_box(&id), true));
    }
    println!(
        "\nof which the SHA-256 of the id (store_key): {:.2} µs",
        (start.elapsed() / REQUESTS).as_secs_f64() * 1e6
    );
}
