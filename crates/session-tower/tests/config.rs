//! `SessionConfig` from files: Litestar's spelling and the Rust one load to
//! the same config, and what `exclude` patterns match, through the layer.

use std::path::Path;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::routing::get;
use http::StatusCode;
use session_core::{Error, MemoryStore};
use session_tower::{SameSite, Scope, Session, SessionConfig, SessionLayer};
use tower::ServiceExt;

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// What every fixture says, built in code.
fn expected() -> SessionConfig {
    SessionConfig::builder()
        .cookie_name("app_session")
        .max_age(Duration::from_secs(7200))
        .path("/app")
        .domain(Some("example.com"))
        .secure(true)
        .http_only(false)
        .same_site(SameSite::Strict)
        .session_id_bytes(24usize)
        .renew_on_access(true)
        .exclude(["^/app/health", "/static/"])
        .scopes([Scope::Http])
        .store_label("web_sessions")
        .build()
        .unwrap()
}

#[test]
fn a_litestar_file_loads_as_json_and_as_toml() {
    let json = SessionConfig::from_json_str(&fixture("litestar.json")).unwrap();
    let toml = SessionConfig::from_toml_str(&fixture("litestar.toml")).unwrap();
    assert_eq!(json, expected());
    assert_eq!(toml, expected());
    assert_eq!(json.cookie_name(), "app_session");
    assert!(!json.http_only());
    assert_eq!(json.same_site(), SameSite::Strict);
    assert_eq!(json.store_label(), "web_sessions");
}

#[test]
fn the_rust_spelling_gives_the_same_config() {
    let json = SessionConfig::from_json_str(&fixture("rust.json")).unwrap();
    let toml = SessionConfig::from_toml_str(&fixture("rust.toml")).unwrap();
    assert_eq!(json, expected());
    assert_eq!(toml, expected());
    let litestar = SessionConfig::from_toml_str(&fixture("litestar.toml")).unwrap();
    assert_eq!(json, litestar);
}

#[test]
fn a_config_embedded_in_an_app_config_takes_both_spellings() {
    #[derive(serde::Deserialize)]
    struct AppConfig {
        session: SessionConfig,
    }
    let old: AppConfig =
        serde_json::from_str(r#"{"session": {"key": "sid", "samesite": "strict"}}"#).unwrap();
    let new: AppConfig =
        serde_json::from_str(r#"{"session": {"cookie_name": "sid", "same_site": "strict"}}"#)
            .unwrap();
    assert_eq!(old.session, new.session);
    assert_eq!(new.session.cookie_name(), "sid");
}

#[test]
fn unknown_fields_are_still_refused_by_name() {
    for text in [r#"{"cookie_nam": "sid"}"#, r#"{"http_olny": true}"#] {
        match SessionConfig::from_json_str(text).unwrap_err() {
            Error::InvalidConfig { field, reason } => {
                assert!(text.contains(&format!("\"{field}\"")), "{field}: {reason}");
                assert!(reason.contains("unknown field"), "{reason}");
            }
            other => panic!("not InvalidConfig: {other:?}"),
        }
    }
    let err = SessionConfig::from_toml_str("samesite = \"loose\"").unwrap_err();
    assert!(
        matches!(&err, Error::InvalidConfig { field, .. } if field == "samesite"),
        "{err:?}"
    );
}

/// Answers whether the request reached the handler with a session.
async fn probe(req: Request) -> &'static str {
    if req.extensions().get::<Session>().is_some() {
        "session"
    } else {
        "none"
    }
}

async fn has_session(app: &Router, uri: &str) -> bool {
    let res = app
        .clone()
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body = axum::body::to_bytes(res.into_body(), 64).await.unwrap();
    match &body[..] {
        b"session" => true,
        b"none" => false,
        other => panic!("{other:?}"),
    }
}

/// As docs/middleware.md says: a pattern matches anywhere in the path,
/// unless anchored with `^` (or `$`); the query string is not matched.
#[tokio::test]
async fn exclude_patterns_match_anywhere_in_the_path_unless_anchored() {
    let config = SessionConfig::builder()
        .exclude(["/health", "^/static/"])
        .build()
        .unwrap();
    let app = Router::new()
        .route("/{*path}", get(probe))
        .layer(SessionLayer::new(MemoryStore::new(), config));
    // Unanchored: anywhere.
    assert!(!has_session(&app, "/health").await);
    assert!(!has_session(&app, "/api/v1/health").await);
    assert!(!has_session(&app, "/healthz").await);
    // Anchored: from the start only.
    assert!(!has_session(&app, "/static/app.css").await);
    assert!(has_session(&app, "/assets/static/app.css").await);
    // Only the path is matched, not the query.
    assert!(has_session(&app, "/login?next=/health").await);
    assert!(has_session(&app, "/profile").await);
}
