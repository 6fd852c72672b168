//! Concurrent requests of one session over real HTTP on a loopback port:
//! none loses another's changes, and a logout is final against a request
//! that loaded the session before it.
//!
//! Races are ordered with barriers and `Notify`, never with sleeps.

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::extract::Path;
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use reqwest::header::{COOKIE, SET_COOKIE};
use session_core::{MemoryStore, Store};
use session_tower::{Session, SessionConfig, SessionError, SessionLayer, store_key};
use tokio::sync::{Barrier, Notify};

type Handled<T> = std::result::Result<T, SessionError>;

/// Every `/put` handler of a wave waits here after loading the session,
/// so all of them have loaded before any saves.
struct Wave(Barrier);

/// The `/cycle` handler says it has loaded the session, then waits.
#[derive(Default)]
struct Gate {
    loaded: Notify,
    release: Notify,
}

async fn login(session: Session) -> Handled<&'static str> {
    session.cycle_id().await?;
    session.insert("user", "alice").await?;
    Ok("in")
}

async fn put(
    session: Session,
    Path(key): Path<String>,
    Extension(wave): Extension<Arc<Wave>>,
) -> Handled<&'static str> {
    session.get_value("user").await?;
    wave.0.wait().await;
    session.insert(&key, true).await?;
    Ok("put")
}

async fn keys(session: Session) -> Handled<Json<Vec<String>>> {
    Ok(Json(session.data().await?.keys().cloned().collect()))
}

async fn cycle(session: Session, Extension(gate): Extension<Arc<Gate>>) -> Handled<&'static str> {
    session.get_value("user").await?;
    gate.loaded.notify_one();
    gate.release.notified().await;
    session.cycle_id().await?;
    session.insert("privileged", true).await?;
    Ok("cycled")
}

async fn logout(session: Session) -> Handled<&'static str> {
    session.clear().await?;
    Ok("out")
}

struct App {
    url: String,
    store: Arc<MemoryStore>,
    client: reqwest::Client,
}

async fn serve(wave_size: usize, gate: Arc<Gate>) -> App {
    let store = Arc::new(MemoryStore::new());
    let app = Router::new()
        .route("/login", post(login))
        .route("/put/{key}", post(put))
        .route("/keys", get(keys))
        .route("/cycle", post(cycle))
        .route("/logout", post(logout))
        .layer(Extension(Arc::new(Wave(Barrier::new(wave_size)))))
        .layer(Extension(gate))
        .layer(SessionLayer::with_shared(
            store.clone(),
            SessionConfig::default(),
        ));
    App {
        url: support::serve(app).await,
        store,
        client: reqwest::Client::new(),
    }
}

impl App {
    /// `POST path` with the session cookie `id` (if any); the id the
    /// response sets (`None` for none, `Some("")` for an expired cookie).
    async fn post(&self, path: &str, id: Option<&str>) -> (reqwest::StatusCode, Option<String>) {
        let mut request = self.client.post(format!("{}{path}", self.url));
        if let Some(id) = id {
            request = request.header(COOKIE, format!("session={id}"));
        }
        let response = request.send().await.unwrap();
        let set = response
            .headers()
            .get(SET_COOKIE)
            .map(|v| v.to_str().unwrap().to_owned())
            .map(|v| {
                let value = v.split(';').next().unwrap().trim_start_matches("session=");
                if v.contains("Max-Age=0") {
                    String::new()
                } else {
                    value.to_owned()
                }
            });
        (response.status(), set)
    }

    async fn login(&self) -> String {
        let (status, id) = self.post("/login", None).await;
        assert_eq!(status, 200);
        id.filter(|id| !id.is_empty())
            .expect("login sets a session cookie")
    }

    async fn live(&self, id: &str) -> bool {
        self.store.exists(&store_key(id, true)).await.unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_of_one_session_keep_every_change() {
    const WAVE: usize = 50;
    let app = Arc::new(serve(WAVE, Arc::default()).await);
    let id = app.login().await;
    let mut expected = BTreeSet::from(["user".to_owned()]);
    for wave in 0..2 {
        let tasks: Vec<_> = (0..WAVE)
            .map(|i| {
                let (app, id) = (app.clone(), id.clone());
                let key = format!("k{wave}_{i:02}");
                expected.insert(key.clone());
                tokio::spawn(async move { app.post(&format!("/put/{key}"), Some(&id)).await })
            })
            .collect();
        for task in tasks {
            let (status, set) = task.await.unwrap();
            assert_eq!(status, 200);
            assert_eq!(
                set.as_deref(),
                Some(id.as_str()),
                "the session keeps its id"
            );
        }
    }
    let response = app
        .client
        .get(format!("{}/keys", app.url))
        .header(COOKIE, format!("session={id}"))
        .send()
        .await
        .unwrap();
    let keys: BTreeSet<String> = response.json().await.unwrap();
    let lost: Vec<_> = expected.difference(&keys).collect();
    assert!(lost.is_empty(), "{} of 100 keys lost: {lost:?}", lost.len());
    assert_eq!(keys, expected);
}

/// A request that loaded the session before a logout, and changes its id
/// (a login, a privilege change) after the logout: the session stays
/// ended, under the old id and under any new one. 100 rounds in order, and
/// 100 in which the two race: then exactly one of them wins, and the old
/// id is never live again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_logout_racing_a_cycle_id_is_final() {
    let gate = Arc::new(Gate::default());
    let app = Arc::new(serve(1, gate.clone()).await);
    let (mut cycle_won, mut logout_won) = (0, 0);
    for round in 0..200 {
        let old = app.login().await;
        let cycling = {
            let (app, old) = (app.clone(), old.clone());
            tokio::spawn(async move { app.post("/cycle", Some(&old)).await })
        };
        gate.loaded.notified().await;
        let (status, new) = if round % 2 == 0 {
            // The logout ends before the cycling request saves.
            let (status, set) = app.post("/logout", Some(&old)).await;
            assert_eq!(
                (status, set.as_deref()),
                (reqwest::StatusCode::OK, Some(""))
            );
            gate.release.notify_one();
            let cycled = cycling.await.unwrap();
            assert_eq!(
                cycled.1.as_deref(),
                Some(""),
                "round {round}: the cycle must expire the cookie"
            );
            cycled
        } else {
            // The two race.
            let logout = {
                let (app, old) = (app.clone(), old.clone());
                tokio::spawn(async move { app.post("/logout", Some(&old)).await })
            };
            gate.release.notify_one();
            let (status, _) = logout.await.unwrap();
            assert_eq!(status, 200);
            cycling.await.unwrap()
        };
        assert_eq!(status, 200);
        assert!(
            !app.live(&old).await,
            "round {round}: the old id is live after a logout"
        );
        match new.as_deref() {
            Some("") | None => logout_won += 1,
            Some(new) => {
                // Only a race can let the id change win; the new session
                // then holds the request's change.
                assert!(
                    round % 2 == 1,
                    "round {round}: a cycle after the logout won"
                );
                assert!(app.live(new).await, "round {round}: the new id is not live");
                cycle_won += 1;
                app.store.delete(&store_key(new, true)).await.unwrap();
            }
        }
    }
    println!("200 rounds: the logout won {logout_won}, the id change {cycle_won}");
    assert!(logout_won >= 100);
}

/// A [`MemoryStore`] that, once armed, holds the next `compare_and_set`
/// or `delete_live` (the step with which a save takes the row) until the
/// test releases it.
#[derive(Default)]
struct HoldingStore {
    inner: MemoryStore,
    armed: std::sync::atomic::AtomicBool,
    held: Notify,
    release: Notify,
}

impl HoldingStore {
    async fn hold_if_armed(&self) {
        if self.armed.swap(false, std::sync::atomic::Ordering::SeqCst) {
            self.held.notify_one();
            self.release.notified().await;
        }
    }
}

#[session_core::async_trait]
impl Store for HoldingStore {
    async fn get(
        &self,
        key: &str,
        renew_for: Option<std::time::Duration>,
    ) -> session_core::Result<Option<bytes::Bytes>> {
        self.inner.get(key, renew_for).await
    }
    async fn set(
        &self,
        key: &str,
        value: bytes::Bytes,
        expires_in: Option<std::time::Duration>,
    ) -> session_core::Result<()> {
        self.inner.set(key, value, expires_in).await
    }
    async fn delete(&self, key: &str) -> session_core::Result<()> {
        self.inner.delete(key).await
    }
    async fn delete_all(&self) -> session_core::Result<()> {
        self.inner.delete_all().await
    }
    async fn exists(&self, key: &str) -> session_core::Result<bool> {
        self.inner.exists(key).await
    }
    async fn expires_in(&self, key: &str) -> session_core::Result<Option<std::time::Duration>> {
        self.inner.expires_in(key).await
    }
    async fn delete_expired(&self) -> session_core::Result<u64> {
        self.inner.delete_expired().await
    }
    async fn create(
        &self,
        key: &str,
        value: bytes::Bytes,
        expires_in: Option<std::time::Duration>,
    ) -> session_core::Result<bool> {
        self.inner.create(key, value, expires_in).await
    }
    async fn update(
        &self,
        key: &str,
        value: bytes::Bytes,
        expires_in: Option<std::time::Duration>,
    ) -> session_core::Result<bool> {
        self.inner.update(key, value, expires_in).await
    }
    async fn compare_and_set(
        &self,
        key: &str,
        expected: bytes::Bytes,
        value: bytes::Bytes,
        expires_in: Option<std::time::Duration>,
    ) -> session_core::Result<bool> {
        self.hold_if_armed().await;
        self.inner
            .compare_and_set(key, expected, value, expires_in)
            .await
    }
    async fn delete_live(&self, key: &str) -> session_core::Result<bool> {
        self.hold_if_armed().await;
        self.inner.delete_live(key).await
    }
}

/// A request that changes the session's id takes the old row only as it
/// last read it: a change another request saves just before (after the
/// id-changing request's handler, before it takes the row) is carried
/// over to the new id, never lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_change_saved_while_the_id_changes_is_carried_over() {
    async fn login(session: Session) -> Handled<&'static str> {
        session.insert("user", "alice").await?;
        Ok("in")
    }
    async fn put(session: Session, Path(key): Path<String>) -> Handled<&'static str> {
        session.get_value("user").await?;
        session.insert(&key, true).await?;
        Ok("put")
    }
    /// Changes the id, then arms the store: the save that follows is
    /// held when it takes the old row.
    async fn cycle(
        session: Session,
        Extension(store): Extension<Arc<HoldingStore>>,
    ) -> Handled<&'static str> {
        session.get_value("user").await?;
        session.cycle_id().await?;
        session.insert("privileged", true).await?;
        store.armed.store(true, std::sync::atomic::Ordering::SeqCst);
        Ok("cycled")
    }

    let store = Arc::new(HoldingStore::default());
    let router = Router::new()
        .route("/login", post(login))
        .route("/put/{key}", post(put))
        .route("/keys", get(keys))
        .route("/cycle", post(cycle))
        .layer(Extension(store.clone()))
        .layer(SessionLayer::with_shared(
            store.clone(),
            SessionConfig::default(),
        ));
    let app = Arc::new(App {
        url: support::serve(router).await,
        store: Arc::new(MemoryStore::new()), // unused: `live` reads `store`
        client: reqwest::Client::new(),
    });

    let old = app.login().await;
    let cycling = {
        let (app, old) = (app.clone(), old.clone());
        tokio::spawn(async move { app.post("/cycle", Some(&old)).await })
    };
    store.held.notified().await;
    // Another request of the session saves now, under the old id.
    let (status, set) = app.post("/put/cart", Some(&old)).await;
    assert_eq!(
        (status, set.as_deref()),
        (reqwest::StatusCode::OK, Some(old.as_str()))
    );
    store.release.notify_one();
    let (status, new) = cycling.await.unwrap();
    assert_eq!(status, 200);
    let new = new.filter(|id| !id.is_empty()).expect("a new id");
    assert_ne!(new, old);
    assert!(
        !store.exists(&store_key(&old, true)).await.unwrap(),
        "the old id is still live"
    );
    let response = app
        .client
        .get(format!("{}/keys", app.url))
        .header(COOKIE, format!("session={new}"))
        .send()
        .await
        .unwrap();
    let keys: BTreeSet<String> = response.json().await.unwrap();
    assert_eq!(
        keys,
        BTreeSet::from(["cart".into(), "privileged".into(), "user".into()]),
        "the change saved while the id changed was lost"
    );
}
