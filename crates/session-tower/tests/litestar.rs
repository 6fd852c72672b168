//! `litestar_compatible`: raw ids as store keys, and a stored session that
//! is not a JSON object refused rather than replaced, over real HTTP.

mod support;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use session_core::{MemoryStore, Store};
use session_tower::{METADATA_KEY, Session, SessionConfig, SessionError, SessionLayer};
use support::app::incr;

async fn whoami(session: Session) -> Result<String, SessionError> {
    Ok(match session.get::<String>("user").await? {
        Some(user) => user,
        None => "anonymous".into(),
    })
}

async fn data(session: Session) -> Result<String, SessionError> {
    Ok(serde_json::to_string(&session.data().await?).unwrap())
}

/// Writes `METADATA_KEY` as a handler's own key.
async fn tag(session: Session) -> Result<String, SessionError> {
    session.insert(METADATA_KEY, "written by rust").await?;
    Ok("tagged".into())
}

async fn serve(store: Arc<MemoryStore>, config: SessionConfig) -> String {
    let app = Router::new()
        .route("/whoami", get(whoami))
        .route("/incr", post(incr))
        .route("/data", get(data))
        .route("/tag", post(tag))
        .layer(SessionLayer::new(store, config));
    support::serve(app).await
}

async fn get_with_cookie(base: &str, cookie: &str) -> (u16, String) {
    send(base, "GET", "/whoami", cookie).await
}

async fn send(base: &str, method: &str, path: &str, cookie: &str) -> (u16, String) {
    let client = reqwest::Client::new();
    let url = format!("{base}{path}");
    let request = match method {
        "GET" => client.get(url),
        _ => client.post(url),
    };
    let res = request.header("cookie", cookie).send().await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

/// The stored row under `id`, parsed.
async fn row(store: &MemoryStore, id: &str) -> serde_json::Value {
    serde_json::from_slice(&store.get(id, None).await.unwrap().expect("a row")).unwrap()
}

#[tokio::test]
async fn a_litestar_row_is_read_under_the_raw_id() {
    let store = Arc::new(MemoryStore::new());
    let id = "ab".repeat(32);
    let ttl = Some(Duration::from_secs(60));
    store
        .set(&id, br#"{"user":"alice"}"#.to_vec().into(), ttl)
        .await
        .unwrap();
    let config = SessionConfig::builder()
        .litestar_compatible(true)
        .build()
        .unwrap();
    let base = serve(store.clone(), config).await;
    let (status, body) = get_with_cookie(&base, &format!("session={id}")).await;
    assert_eq!((status, body.as_str()), (200, "alice"));
}

#[tokio::test]
async fn data_that_is_not_a_json_object_is_refused_and_left_alone() {
    let store = Arc::new(MemoryStore::new());
    let id = "cd".repeat(32);
    // What a Litestar app with a pickle serializer would store.
    let pickled: &[u8] = b"\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00}\x94\x8c\x04user\x94.";
    store
        .set(&id, pickled.to_vec().into(), Some(Duration::from_secs(60)))
        .await
        .unwrap();
    let config = SessionConfig::builder()
        .litestar_compatible(true)
        .build()
        .unwrap();
    let base = serve(store.clone(), config.clone()).await;
    let (status, body) = get_with_cookie(&base, &format!("session={id}")).await;
    assert_eq!(status, 500, "{body}");
    assert!(
        !body.contains("user"),
        "the data must not reach the client: {body}"
    );
    let kept = store.get(&id, None).await.unwrap().unwrap();
    assert_eq!(&kept[..], pickled, "the row must be left as it was");
    assert_eq!(store.len(), 1, "no second session was created");

    // Without the setting, the same row is passed over for a new session
    // (and still left alone).
    let base = serve(
        store.clone(),
        config
            .to_builder()
            .litestar_compatible(false)
            .hash_session_ids(false)
            .build()
            .unwrap(),
    )
    .await;
    let (status, body) = get_with_cookie(&base, &format!("session={id}")).await;
    assert_eq!((status, body.as_str()), (200, "anonymous"));
    assert_eq!(&store.get(&id, None).await.unwrap().unwrap()[..], pickled);
}

/// Under `litestar_compatible` the row is the Litestar application's
/// session: a `__session_tower` key in it is ordinary data, shown to the
/// handler, kept by a Rust write, and writable by a handler; the
/// middleware reads no metadata from it and adds none.
#[tokio::test]
async fn a_metadata_key_in_a_litestar_row_is_ordinary_data() {
    let store = Arc::new(MemoryStore::new());
    let id = "ef".repeat(32);
    let written = r#"{"__session_tower":"written by python","user":"alice"}"#;
    store
        .set(&id, written.into(), Some(Duration::from_secs(60)))
        .await
        .unwrap();
    let config = SessionConfig::builder()
        .secure(false)
        .litestar_compatible(true)
        .build()
        .unwrap();
    let base = serve(store.clone(), config).await;
    let cookie = format!("session={id}");
    assert_eq!(
        send(&base, "GET", "/data", &cookie).await,
        (200, written.to_owned()),
        "the handler sees the Litestar session whole"
    );
    assert_eq!(
        send(&base, "POST", "/incr", &cookie).await,
        (200, "1".into())
    );
    assert_eq!(
        row(&store, &id).await,
        serde_json::json!({"user": "alice", "__session_tower": "written by python", "n": 1}),
        "a Rust write dropped the Litestar application's key"
    );
    assert_eq!(
        send(&base, "POST", "/tag", &cookie).await,
        (200, "tagged".into())
    );
    assert_eq!(
        row(&store, &id).await,
        serde_json::json!({"user": "alice", "__session_tower": "written by rust", "n": 1})
    );
    assert_eq!(store.len(), 1, "no second session was created");
}
