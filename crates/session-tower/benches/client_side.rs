//! What client-side sessions cost per request: a 1 KiB session sealed in
//! its cookie, through `SessionLayer::client_side`, in-process (no
//! sockets), against the same layer on a request that never touches the
//! session (it still reads the cookies, but opens nothing).
//!
//! * `read` opens the cookie: base64, AES-256-GCM decryption, the JSON
//!   parse;
//! * `write` opens it and seals it again: the same, then the JSON, a fresh
//!   nonce from the OS, AES-256-GCM encryption, base64 and the
//!   `Set-Cookie`.
//!
//! `write` minus `untouched` is the figure quoted as "seal + open of a
//! 1 KiB session". The same handlers over `MemoryStore` (server-side) are
//! timed alongside for comparison. Each round times every case once, in
//! turn; the table gives the medians over the rounds, and each difference
//! is the median of the rounds' own differences (the machine is noisy).
//!
//! Run: `cargo bench -p session-tower --bench client_side`. Without
//! `--bench` (`cargo test --benches`) it only checks that a sealed session
//! written by one request opens in the next.

mod support;

use std::convert::Infallible;
use std::hint::black_box;
use std::time::{Duration, Instant};

use http::{Request, Response, header::SET_COOKIE};
use serde_json::{Map, Value, json};
use session_core::MemoryStore;
use session_test_support::bench::median;
use session_tower::{ClientSideConfig, Session, SessionConfig, SessionLayer};
use support::request;
use tower::{Layer, Service, ServiceExt, service_fn};

const ROUNDS: usize = 31;
const REQUESTS: u32 = 2_000;
const SECRET: &str = "a benchmark secret of thirty-two bytes or more";

#[derive(Clone, Copy, Debug, PartialEq)]
enum Handler {
    Untouched,
    Read,
    Write,
}

async fn handle(handler: Handler, req: Request<String>) -> Result<Response<String>, Infallible> {
    let session = req.extensions().get::<Session>().expect("a session");
    let body = match handler {
        Handler::Untouched => String::new(),
        Handler::Read => {
            let n: Option<u64> = session.get("n").await.expect("read");
            format!("{n:?}")
        }
        Handler::Write => {
            let n: u64 = session.get("n").await.expect("read").unwrap_or(0);
            session.insert("n", n + 1).await.expect("insert");
            (n + 1).to_string()
        }
    };
    Ok(Response::new(body))
}

/// A session of 1 KiB serialized, like a logged-in user's with some
/// preferences.
fn one_kib_session() -> Map<String, Value> {
    let mut data = json!({
        "n": 0,
        "user_id": 42,
        "username": "alice",
        "roles": ["user", "admin"],
    })
    .as_object()
    .cloned()
    .expect("an object");
    let size = serde_json::to_vec(&data).expect("json").len();
    // `,"prefs":""` is 11 bytes.
    data.insert("prefs".into(), Value::from("p".repeat(1024 - size - 11)));
    assert_eq!(serde_json::to_vec(&data).expect("json").len(), 1024);
    data
}

/// Sends one request through `layer` to a handler that stores `data`, and
/// returns the `Cookie` header a browser would send back.
async fn cookie_holding(layer: &SessionLayer, data: Map<String, Value>) -> String {
    let mut service = layer.layer(service_fn(move |req: Request<String>| {
        let data = data.clone();
        async move {
            let session = req.extensions().get::<Session>().expect("a session");
            for (k, v) in data {
                session.insert(&k, v).await.expect("insert");
            }
            Ok::<_, Infallible>(Response::new(String::new()))
        }
    }));
    let res = service
        .ready()
        .await
        .unwrap()
        .call(request(""))
        .await
        .unwrap();
    res.headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| {
            let text = v.to_str().expect("ASCII");
            text.split(';').next().expect("a pair").to_owned()
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The mean time of one request of `handler` through `layer`.
async fn time(layer: &SessionLayer, handler: Handler, cookie: &str) -> Duration {
    let mut service = layer.layer(service_fn(move |req| handle(handler, req)));
    let start = Instant::now();
    for _ in 0..REQUESTS {
        let svc = service.ready().await.unwrap();
        black_box(svc.call(request(cookie)).await.unwrap());
    }
    start.elapsed() / REQUESTS
}

/// A sealed session written by one request opens in the next, and the
/// write re-seals it.
async fn check(layer: &SessionLayer, cookie: &str) {
    let mut service = layer.layer(service_fn(move |req| handle(Handler::Write, req)));
    let res = service
        .ready()
        .await
        .unwrap()
        .call(request(cookie))
        .await
        .unwrap();
    assert_eq!(res.body(), "1", "the sealed session did not open");
    assert_eq!(res.headers().get_all(SET_COOKIE).iter().count(), 1);
    println!(
        "client_side: a 1 KiB session ({} bytes of cookie) opens and is sealed again",
        cookie.len()
    );
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let config = SessionConfig::default();
    let client = ClientSideConfig::builder()
        .secret_keys([SECRET])
        .build()
        .expect("a valid config");
    let cookie_layer = SessionLayer::client_side(client, config.clone()).expect("a valid layer");
    let data = one_kib_session();
    let sealed = cookie_holding(&cookie_layer, data.clone()).await;
    check(&cookie_layer, &sealed).await;
    if !std::env::args().any(|a| a == "--bench") {
        println!(
            "client_side: run with `cargo bench -p session-tower --bench client_side` to measure"
        );
        return;
    }

    let store_layer = SessionLayer::new(MemoryStore::new(), config);
    let stored = cookie_holding(&store_layer, data).await;

    let cases = [
        ("client-side", Handler::Untouched),
        ("client-side", Handler::Read),
        ("client-side", Handler::Write),
        ("MemoryStore", Handler::Untouched),
        ("MemoryStore", Handler::Read),
        ("MemoryStore", Handler::Write),
    ];
    // Warm up every case, then the rounds.
    for (backend, handler) in cases {
        let (layer, cookie) = match backend {
            "client-side" => (&cookie_layer, &sealed),
            _ => (&store_layer, &stored),
        };
        time(layer, handler, cookie).await;
    }
    let mut rounds: Vec<[f64; 6]> = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let mut round = [0.0; 6];
        for (i, (backend, handler)) in cases.into_iter().enumerate() {
            let (layer, cookie) = match backend {
                "client-side" => (&cookie_layer, &sealed),
                _ => (&store_layer, &stored),
            };
            round[i] = micros(time(layer, handler, cookie).await);
        }
        rounds.push(round);
    }
    let med = |i: usize| median(rounds.iter().map(|r| r[i]));
    let diff = |i: usize, j: usize| median(rounds.iter().map(|r| r[i] - r[j]));

    println!(
        "1 KiB session, {ROUNDS} rounds of {REQUESTS} requests per case, medians (µs per request):"
    );
    println!("| backend | untouched | read (open) | write (open + seal) |");
    println!("| --- | ---: | ---: | ---: |");
    for (name, base) in [("client-side", 0), ("MemoryStore", 3)] {
        println!(
            "| {name} | {:.2} | {:.2} | {:.2} |",
            med(base),
            med(base + 1),
            med(base + 2)
        );
    }
    println!(
        "\nopen of a 1 KiB session (read - untouched): {:.2} µs",
        diff(1, 0)
    );
    println!(
        "seal + open of a 1 KiB session (write - untouched): {:.2} µs",
        diff(2, 0)
    );
    println!(
        "client-side write against MemoryStore write: {:+.2} µs",
        diff(2, 5)
    );
}
