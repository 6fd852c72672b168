//! Per-request overhead of `SessionLayer` with `MemoryStore`, against the
//! same handler without the layer, in-process (no sockets: the figure is the
//! layer's own cost).
//!
//! Run: `cargo bench -p session-tower --bench layer_overhead`

use std::convert::Infallible;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{Request, Response, header::COOKIE};
use session_core::{MemoryStore, Store};
use session_tower::{Session, SessionConfig, SessionLayer, store_key};
use tower::{Layer, Service, ServiceExt, service_fn};

const REQUESTS: u32 = 200_000;

#[derive(Clone, Copy)]
enum Handler {
    /// Never touches the session.
    Untouched,
    /// Reads one key (one store `get`).
    Read,
    /// Increments a counter (a `get` and an `update`).
    Write,
}

async fn handle(handler: Handler, req: Request<String>) -> Result<Response<String>, Infallible> {
    if let Some(session) = req.extensions().get::<Session>() {
        match handler {
            Handler::Untouched => {}
            Handler::Read => {
                black_box(session.get::<u64>("n").await.ok());
            }
            Handler::Write => {
                let n: u64 = session.get("n").await.ok().flatten().unwrap_or(0);
                let _ = session.insert("n", n + 1).await;
            }
        }
    }
    Ok(Response::new(String::new()))
}

fn request(cookie: &str) -> Request<String> {
    Request::builder()
        .uri("/page")
        .header(COOKIE, cookie)
        .body(String::new())
        .expect("a valid request")
}

async fn time<S>(mut service: S, cookie: &str) -> Duration
where
    S: Service<Request<String>, Response = Response<String>, Error = Infallible>,
{
    // Warm up, then measure.
    for _ in 0..REQUESTS / 10 {
        let svc = service.ready().await.unwrap();
        black_box(svc.call(request(cookie)).await.unwrap());
    }
    let start = Instant::now();
    for _ in 0..REQUESTS {
        let svc = service.ready().await.unwrap();
        black_box(svc.call(request(cookie)).await.unwrap());
    }
    start.elapsed() / REQUESTS
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let config = SessionConfig::default();
    let store = Arc::new(MemoryStore::new());
    let id = config.generate_session_id().unwrap();
    store
        .set(
            &store_key(&id, true),
            bytes::Bytes::from_static(
                br#"{"n":0,"user_id":42,"username":"alice","roles":["user"]}"#,
            ),
            Some(Duration::from_secs(3600)),
        )
        .await
        .unwrap();
    let cookie = format!("theme=dark; session={id}; lang=en");
    let layer = SessionLayer::with_shared(store.clone(), config);

    println!("| handler | without layer | with layer | overhead per request |");
    println!("| --- | ---: | ---: | ---: |");
    for (name, handler) in [
        ("untouched", Handler::Untouched),
        ("reads one key", Handler::Read),
        ("writes one key", Handler::Write),
    ] {
        let bare = service_fn(move |req| handle(handler, req));
        let without = time(bare, &cookie).await;
        let with = time(layer.layer(bare), &cookie).await;
        println!(
            "| {name} | {:.2} µs | {:.2} µs | {:.2} µs |",
            without.as_secs_f64() * 1e6,
            with.as_secs_f64() * 1e6,
            with.saturating_sub(without).as_secs_f64() * 1e6
        );
    }
}
