//! The demo's login hardening, over real HTTP on a free loopback port:
//!
//! * passwords are kept as Argon2id hashes only; the README's users log
//!   in with the README's passwords; a wrong password and an unknown user
//!   get the same 401, after the same work (the dummy hash an unknown
//!   user is checked against has the users' parameters);
//! * `POST /login` and `POST /logout` refuse a cross-site request (an
//!   `Origin` that is not the service's, or `Sec-Fetch-Site: cross-site`)
//!   with a 403 and leave the session as it was; requests without
//!   `Origin` (curl) and same-origin ones pass.
//!
//! Each runs on the client-side layer (no database) and, where a store
//! shows more (a row left alive), on SQLite.

mod common;

use std::sync::Arc;

use argon2::PasswordHash;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, COOKIE};
use serde_json::{Value, json};
use session_core::StoreAdmin;
use session_demo::{DEMO_USERS, DUMMY_PASSWORD_HASH};
use session_tower::store_key;

const SECRET: &str = "the hardening tests' secret: 32 bytes or more";

/// The demo's users as the README's table lists them: (username, password).
fn readme_users() -> Vec<(String, String)> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let section = readme
        .split("\n## The demo\n")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("the README has a demo section");
    let users: Vec<(String, String)> = section
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            match cells.as_slice() {
                ["", user, password, _roles, ""] if user.starts_with('`') => Some((
                    user.trim_matches('`').to_owned(),
                    password.trim_matches('`').to_owned(),
                )),
                _ => None,
            }
        })
        .collect();
    assert_eq!(users.len(), DEMO_USERS.len(), "the README's user table");
    users
}

/// The demo on client-side sessions.
async fn cookie_demo() -> String {
    let layer = session_demo::client_side_layer(&[SECRET]).unwrap();
    common::serve_app(session_demo::app_with_layer(layer)).await
}

/// The demo on a fresh SQLite file; its base URL and store.
async fn sqlite_demo(name: &str) -> (String, Arc<dyn StoreAdmin>) {
    let dir = session_test_support::scratch_dir("session-demo-hardening");
    let path = dir.join(format!("{name}.sqlite"));
    let _ = std::fs::remove_file(&path);
    let store = session_demo::open_store(&format!("sqlite://{}", path.display()), &Value::Null)
        .await
        .unwrap();
    let base = common::serve(store.clone(), session_demo::session_config()).await;
    (base, store)
}

/// `POST /logout` with `headers` and `cookie`.
async fn logout_with(base: &str, cookie: &str, headers: &[(&str, String)]) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .post(format!("{base}/logout"))
        .header(COOKIE, format!("session={cookie}"));
    for (name, value) in headers {
        req = req.header(*name, value);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn the_readme_users_log_in_with_the_readme_passwords() {
    let base = cookie_demo().await;
    for (user, password) in readme_users() {
        let res = common::login_with(&base, &user, &password, None, &[]).await;
        assert_eq!(res.status(), StatusCode::OK, "{user}");
        let cookie = common::session_cookie(&res).expect("login sets the cookie");
        let (status, body) = common::profile(&base, &cookie).await;
        assert_eq!(status, StatusCode::OK, "{user}");
        assert_eq!(body["username"], json!(user));
    }
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_user_get_the_same_401() {
    let base = cookie_demo().await;
    let mut bodies = Vec::new();
    for (user, password) in [
        ("alice", "not-wonderland"),
        ("alice", "Wonderland"),
        ("alice", ""),
        ("bob", "wonderland"),
        ("mallory", "wonderland"),
        ("mallory", "anything"),
        ("", ""),
        ("ALICE", "wonderland"),
    ] {
        let res = common::login_with(&base, user, password, None, &[]).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{user}/{password}");
        assert!(
            common::session_cookie(&res).is_none(),
            "a failed login set a cookie"
        );
        let content_type = res.headers()[CONTENT_TYPE].to_str().unwrap().to_owned();
        bodies.push((content_type, res.bytes().await.unwrap()));
    }
    assert_eq!(
        bodies[0].1.as_ref(),
        br#"{"error":"Invalid username or password"}"#
    );
    assert!(
        bodies.iter().all(|b| *b == bodies[0]),
        "the answers differ: {bodies:?}"
    );
}

#[test]
fn the_dummy_hash_parses_and_has_the_users_parameters() {
    let dummy = PasswordHash::new(DUMMY_PASSWORD_HASH).expect("the dummy hash parses");
    let dummy_params = argon2::Params::try_from(&dummy).unwrap();
    assert_eq!(dummy.algorithm.as_str(), "argon2id");
    // OWASP's Argon2id minimum: 19 MiB, 2 passes, 1 lane.
    assert_eq!(
        (
            dummy_params.m_cost(),
            dummy_params.t_cost(),
            dummy_params.p_cost()
        ),
        (19 * 1024, 2, 1)
    );
    for user in DEMO_USERS {
        let hash = PasswordHash::new(user.password_hash).expect("a user's hash parses");
        assert_eq!(hash.algorithm, dummy.algorithm, "{}", user.username);
        assert_eq!(hash.version, dummy.version, "{}", user.username);
        assert_eq!(
            argon2::Params::try_from(&hash).unwrap(),
            dummy_params,
            "{}",
            user.username
        );
        assert_eq!(
            hash.salt.map(|s| s.len()),
            dummy.salt.map(|s| s.len()),
            "{}",
            user.username
        );
        assert_eq!(
            hash.hash.map(|h| h.len()),
            dummy.hash.map(|h| h.len()),
            "{}",
            user.username
        );
        assert_ne!(hash.salt, dummy.salt, "{}: a salt reused", user.username);
    }
}

#[test]
fn no_plaintext_password_is_in_the_user_table() {
    let table = format!("{DEMO_USERS:?}");
    for (user, password) in readme_users() {
        assert!(
            !table.contains(&password),
            "{user}'s password is in the user table"
        );
        let entry = DEMO_USERS
            .iter()
            .find(|u| u.username == user)
            .unwrap_or_else(|| panic!("{user} of the README is no demo user"));
        assert!(entry.password_hash.starts_with("$argon2id$v=19$"));
        assert_eq!(
            session_demo::authenticate(&user, &password).map(|u| u.id),
            Some(entry.id),
            "{user}: the hash is not of the README's password"
        );
    }
}

/// Requests a browser sends from another site, each with what makes it
/// so; `authority` is the demo's `host:port`.
fn cross_site_headers(authority: &str) -> Vec<(&'static str, Vec<(&'static str, String)>)> {
    vec![
        (
            "another site's Origin",
            vec![("origin", "http://evil.example".to_owned())],
        ),
        (
            "another port's Origin",
            vec![("origin", "http://127.0.0.1:1".to_owned())],
        ),
        (
            "another host's Origin on the same port",
            vec![(
                "origin",
                format!("http://{}", authority.replace("127.0.0.1", "localhost")),
            )],
        ),
        (
            "an opaque Origin (a sandboxed frame)",
            vec![("origin", "null".to_owned())],
        ),
        (
            "Sec-Fetch-Site: cross-site without Origin",
            vec![("sec-fetch-site", "cross-site".to_owned())],
        ),
        (
            "Sec-Fetch-Site: cross-site with this Origin",
            vec![
                ("origin", format!("http://{authority}")),
                ("sec-fetch-site", "cross-site".to_owned()),
            ],
        ),
    ]
}

/// Checks a refusal: 403, the JSON error, and no cookie set.
async fn assert_refused(res: reqwest::Response, what: &str) {
    assert_eq!(res.status(), StatusCode::FORBIDDEN, "{what}");
    assert!(
        common::session_cookie_header(&res).is_none(),
        "{what}: a refused request set {:?}",
        common::session_cookie_header(&res)
    );
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"error": "Cross-site request refused"}),
        "{what}"
    );
}

#[tokio::test]
async fn a_cross_site_login_is_refused_and_changes_no_session() {
    let base = cookie_demo().await;
    let authority = base.trim_start_matches("http://");
    let cookie = common::login_alice(&base, None).await;
    for (what, headers) in cross_site_headers(authority) {
        // Someone else's site logs the visitor in as bob.
        let res = common::login_with(&base, "bob", "builder", Some(&cookie), &headers).await;
        assert_refused(res, what).await;
        // Without a session as well: none is made.
        let res = common::login_with(&base, "bob", "builder", None, &headers).await;
        assert_refused(res, what).await;
        assert_eq!(
            common::profile(&base, &cookie).await,
            (StatusCode::OK, common::alice()),
            "{what}"
        );
    }
}

/// A cross-site logout is refused and leaves the session alive; `store`,
/// when the session is in one, must still hold its row.
async fn cross_site_logout_leaves_the_session(base: &str, store: Option<Arc<dyn StoreAdmin>>) {
    let authority = base.trim_start_matches("http://");
    let cookie = common::login_alice(base, None).await;
    for (what, headers) in cross_site_headers(authority) {
        let res = logout_with(base, &cookie, &headers).await;
        assert_refused(res, what).await;
        assert_eq!(
            common::profile(base, &cookie).await,
            (StatusCode::OK, common::alice()),
            "{what}"
        );
        if let Some(store) = &store {
            assert!(
                store.exists(&store_key(&cookie, true)).await.unwrap(),
                "{what}: the row is gone"
            );
        }
    }
    // The same logout from the service's own page ends the session.
    let same_origin = [
        ("origin", format!("http://{authority}")),
        ("sec-fetch-site", "same-origin".to_owned()),
    ];
    let res = logout_with(base, &cookie, &same_origin).await;
    assert_eq!(res.status(), StatusCode::OK);
    let expired = common::session_cookie_header(&res).expect("logout expires the cookie");
    assert!(expired.contains("Max-Age=0"), "{expired}");
    if let Some(store) = &store {
        assert!(!store.exists(&store_key(&cookie, true)).await.unwrap());
        assert_eq!(
            common::profile(base, &cookie).await.0,
            StatusCode::UNAUTHORIZED
        );
    }
}

#[tokio::test]
async fn a_cross_site_logout_leaves_the_session_alive_in_the_cookie() {
    let base = cookie_demo().await;
    cross_site_logout_leaves_the_session(&base, None).await;
}

#[tokio::test]
async fn a_cross_site_logout_leaves_the_session_alive_in_the_store() {
    let (base, store) = sqlite_demo("logout").await;
    cross_site_logout_leaves_the_session(&base, Some(store)).await;
}

#[tokio::test]
async fn same_origin_and_origin_less_requests_pass() {
    let (base, store) = sqlite_demo("same-origin").await;
    let authority = base.trim_start_matches("http://");
    for (what, headers) in [
        ("no Origin (curl)", vec![]),
        (
            "the service's Origin",
            vec![("origin", format!("http://{authority}"))],
        ),
        (
            "the service's Origin, in capitals",
            vec![("origin", format!("HTTP://{}", authority.to_uppercase()))],
        ),
        (
            "a same-origin fetch",
            vec![
                ("origin", format!("http://{authority}")),
                ("sec-fetch-site", "same-origin".to_owned()),
            ],
        ),
        (
            "a navigation the user typed",
            vec![("sec-fetch-site", "none".to_owned())],
        ),
    ] {
        let res = common::login_with(&base, "alice", "wonderland", None, &headers).await;
        assert_eq!(res.status(), StatusCode::OK, "{what}");
        let cookie = common::session_cookie(&res).expect("login sets the cookie");
        assert!(store.exists(&store_key(&cookie, true)).await.unwrap());
        let res = logout_with(&base, &cookie, &headers).await;
        assert_eq!(res.status(), StatusCode::OK, "{what}");
        assert!(!store.exists(&store_key(&cookie, true)).await.unwrap());
    }
    // Reading is never refused: a link from another site may show a page.
    let res = reqwest::Client::new()
        .get(format!("{base}/profile"))
        .header("origin", "http://evil.example")
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}
