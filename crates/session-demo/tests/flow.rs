//! The demo's login → profile → logout flow over real HTTP, with a client
//! that keeps cookies, on SQLite and on PostgreSQL.

mod common;

use std::sync::Arc;

use common::{serve, session_cookie};
use reqwest::StatusCode;
use serde_json::{Value, json};
use session_core::Store;
use session_tower::store_key;

/// The quick start, as a person would click through it.
async fn login_profile_logout(store: Arc<dyn Store>) {
    let base = serve(store.clone(), session_demo::session_config()).await;
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();

    let res = client.get(format!("{base}/profile")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"error": "Not authenticated"})
    );

    let res = common::login(&client, &base, "alice", "not-wonderland").await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(
        session_cookie(&res).is_none(),
        "a failed login created a session"
    );

    let res = common::login(&client, &base, "alice", "wonderland").await;
    assert_eq!(res.status(), StatusCode::OK);
    let id = session_cookie(&res).expect("login sets the session cookie");
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"status": "logged in"})
    );
    assert!(store.exists(&store_key(&id, true)).await.unwrap());

    let res = client.get(format!("{base}/profile")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"user_id": 1, "username": "alice", "roles": ["user", "admin"]})
    );

    let page = client.get(format!("{base}/")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("&quot;username&quot;: &quot;alice&quot;"),
        "{html}"
    );

    let res = client.post(format!("{base}/logout")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(session_cookie(&res).as_deref(), Some("null"));
    assert!(
        !store.exists(&store_key(&id, true)).await.unwrap(),
        "logout left the row"
    );

    let res = client.get(format!("{base}/profile")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn login_profile_logout_on_sqlite() {
    let dir = std::env::temp_dir().join(format!("session-demo-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("flow.sqlite");
    let store = session_demo::open_store(&format!("sqlite://{}", path.display()), &Value::Null)
        .await
        .unwrap();
    login_profile_logout(store).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn login_profile_logout_on_postgres() {
    let Some(url) = session_test_support::pg_url_or_skip() else {
        return;
    };
    let table = session_test_support::unique_table_name("demo_flow");
    let extension = json!({"litestar": {"session_table": table}});
    let store = session_demo::open_store(&url, &extension).await.unwrap();
    login_profile_logout(store).await;
    session_test_support::drop_tables_blocking(&url, &[format!("{table}_migrations"), table])
        .unwrap();
}

#[tokio::test]
async fn an_unknown_database_scheme_is_refused_by_name() {
    let err = session_demo::open_store("mysql://root:pw@localhost/db", &Value::Null)
        .await
        .expect_err("mysql is not supported");
    let text = err.to_string();
    assert!(
        text.contains("DATABASE_URL") && text.contains("mysql://root:***@localhost/db"),
        "{text}"
    );
    assert!(!text.contains("pw"), "{text}");
}
