//! The demo binary on `--backend cookie` (client-side sessions sealed in
//! the cookie, no store), over real HTTP on a free loopback port:
//!
//! * the README's curl session (login, profile, logout, profile) works,
//!   and nothing is written to disk;
//! * `SESSION_SECRET`: several secrets rotate keys (a cookie sealed under
//!   the old secret opens after a restart with `new,old`, and the next
//!   write seals it under the new one); a short one stops the demo with
//!   exit code 1, naming the variable; unset, a random one is made, with a
//!   warning, and sessions end with the process;
//! * `--litestar-compatible` is refused, an unused `DATABASE_URL` warned
//!   about;
//! * a tampered cookie is no session: 401, never 500.

mod common;

use std::path::{Path, PathBuf};

use common::start_demo;
use reqwest::StatusCode;
use reqwest::header::COOKIE;
use serde_json::{Value, json};

/// A secret of the sealing key, as an operator would set it.
const OLD_SECRET: &str = "the old secret of the demo: 32 bytes or more";
/// The secret that replaces it.
const NEW_SECRET: &str = "a newer secret of the demo: also 32 bytes or more";

/// A fresh directory to run the demo in: a store the demo should not
/// open (the default `session-demo.sqlite`) would appear here.
fn run_dir(name: &str) -> PathBuf {
    let dir = session_test_support::scratch_dir("session-demo-cookie").join(name);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The names of the files in `dir` that are not the demo's logs.
fn files_besides_logs(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| !name.ends_with(".log"))
        .collect()
}

#[tokio::test]
async fn the_readme_curl_session_works_on_sealed_cookies_with_no_store() {
    let dir = run_dir("readme");
    let demo = start_demo(
        &dir,
        "demo",
        &["--backend", "cookie"],
        &[("SESSION_SECRET", NEW_SECRET)],
    );
    assert!(
        demo.ready_line
            .contains("(sessions in sealed cookies, 1 secret)"),
        "{}",
        demo.ready_line
    );
    let base = &demo.base;
    // `curl -c jar -b jar`: a client that keeps its cookies.
    let jar = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();

    let res = jar.get(format!("{base}/profile")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    let res = common::login(&jar, base, "alice", "wonderland").await;
    assert_eq!(res.status(), StatusCode::OK);
    let set_cookie = common::session_cookie_header(&res).expect("login sets the cookie");
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"status": "logged in"})
    );
    let sealed = common::id_of(&set_cookie);
    // The whole session, sealed: longer than an id, and unreadable.
    assert!(sealed.len() > 100, "{set_cookie}");
    assert!(!sealed.contains("alice"), "{set_cookie}");
    // The demo's cookie settings (one day, plain http on 127.0.0.1: no
    // `Secure`) apply to the client-side layer too.
    assert!(
        set_cookie.ends_with("; Path=/; Max-Age=86400; HttpOnly; SameSite=Lax"),
        "{set_cookie}"
    );

    let res = jar.get(format!("{base}/profile")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap(), common::alice());

    let page = jar
        .get(format!("{base}/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("sealed (encrypted and authenticated"),
        "{page}"
    );
    assert!(
        page.contains("&quot;username&quot;: &quot;alice&quot;"),
        "{page}"
    );

    let res = jar.post(format!("{base}/logout")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let expired = common::session_cookie_header(&res).expect("logout expires the cookie");
    assert!(expired.contains("Max-Age=0"), "{expired}");
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"status": "logged out"})
    );

    let res = jar.get(format!("{base}/profile")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"error": "Not authenticated"})
    );

    // No store: nothing but the log in the directory the demo ran in, and
    // no warning in the log.
    assert_eq!(files_besides_logs(&dir), Vec::<String>::new());
    assert!(!demo.logs().contains("warning"), "{}", demo.logs());
}

#[tokio::test]
async fn a_cookie_sealed_under_the_old_secret_opens_after_rotation_and_is_resealed_with_the_new() {
    let dir = run_dir("rotation");
    let old_cookie = {
        let demo = start_demo(
            &dir,
            "old",
            &["--backend", "cookie"],
            &[("SESSION_SECRET", OLD_SECRET)],
        );
        let cookie = common::login_alice(&demo.base, None).await;
        assert_eq!(common::profile(&demo.base, &cookie).await.0, StatusCode::OK);
        cookie
    };

    // Rotated: the new secret first, the old one still opening.
    let rotated = format!("{NEW_SECRET},{OLD_SECRET}");
    let new_cookie = {
        let demo = start_demo(
            &dir,
            "rotated",
            &["--backend", "cookie"],
            &[("SESSION_SECRET", &rotated)],
        );
        assert!(
            demo.ready_line
                .contains("sessions in sealed cookies, 2 secrets, the first sealing"),
            "{}",
            demo.ready_line
        );
        assert_eq!(
            common::profile(&demo.base, &old_cookie).await,
            (StatusCode::OK, common::alice()),
            "the cookie sealed under the old secret no longer opens"
        );
        // The next write (a login on the open session) seals it anew.
        let cookie = common::login_alice(&demo.base, Some(&old_cookie)).await;
        assert_ne!(cookie, old_cookie);
        assert_eq!(
            common::profile(&demo.base, &cookie).await,
            (StatusCode::OK, common::alice())
        );
        cookie
    };

    // The old secret removed: the cookie written since the rotation opens,
    // so it was sealed under the new secret; the old cookie is no session.
    let demo = start_demo(
        &dir,
        "new",
        &["--backend", "cookie"],
        &[("SESSION_SECRET", NEW_SECRET)],
    );
    assert_eq!(
        common::profile(&demo.base, &new_cookie).await,
        (StatusCode::OK, common::alice()),
        "the re-sealed cookie needs the old secret"
    );
    assert_eq!(
        common::profile(&demo.base, &old_cookie).await.0,
        StatusCode::UNAUTHORIZED
    );
}

/// Variants of a good sealed cookie that must each be no session.
fn tampered(good: &str) -> Vec<(&'static str, String)> {
    let flip = |i: usize| {
        let mut bytes = good.as_bytes().to_vec();
        bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
        String::from_utf8(bytes).unwrap()
    };
    vec![
        ("a character of the version changed", flip(0)),
        ("a character of the nonce changed", flip(5)),
        (
            "a character of the ciphertext changed",
            flip(good.len() / 2),
        ),
        ("a character of the tag changed", flip(good.len() - 3)),
        (
            "the last character dropped",
            good[..good.len() - 1].to_owned(),
        ),
        ("cut in half", good[..good.len() / 2].to_owned()),
        ("a character appended", format!("{good}A")),
        ("doubled", format!("{good}{good}")),
        ("not base64", "!!not*base64!!".to_owned()),
        ("empty", String::new()),
        ("a store's session id", "0123456789abcdef".repeat(4)),
        (
            "the chunk layout's value",
            format!("2.{}", &good[..good.len() / 2]),
        ),
    ]
}

#[tokio::test]
async fn a_tampered_cookie_is_no_session_never_a_500() {
    let dir = run_dir("tampered");
    let mut demo = start_demo(
        &dir,
        "demo",
        &["--backend", "cookie"],
        &[("SESSION_SECRET", NEW_SECRET)],
    );
    let base = &demo.base.clone();
    let good = common::login_alice(base, None).await;
    // Sealed by another demo's secret: opens nowhere else.
    let foreign = {
        let other = start_demo(
            &dir,
            "other",
            &["--backend", "cookie"],
            &[("SESSION_SECRET", OLD_SECRET)],
        );
        common::login_alice(&other.base, None).await
    };
    let mut cases = tampered(&good);
    cases.push(("sealed under a secret this demo lacks", foreign));
    for (what, cookie) in &cases {
        assert_eq!(
            common::profile(base, cookie).await,
            (
                StatusCode::UNAUTHORIZED,
                json!({"error": "Not authenticated"})
            ),
            "{what}"
        );
        let page = reqwest::Client::new()
            .get(format!("{base}/"))
            .header(COOKIE, format!("session={cookie}"))
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), StatusCode::OK, "{what}");
        let logout = reqwest::Client::new()
            .post(format!("{base}/logout"))
            .header(COOKIE, format!("session={cookie}"))
            .send()
            .await
            .unwrap();
        assert_eq!(logout.status(), StatusCode::OK, "{what}");
    }
    // The good cookie still opens: the refusals above were the tampering.
    assert_eq!(
        common::profile(base, &good).await,
        (StatusCode::OK, common::alice())
    );
    assert!(
        demo.child.try_wait().unwrap().is_none(),
        "the demo stopped: {}",
        demo.logs()
    );
    println!("{} tampered cookies: 401, never 500", cases.len());
}

#[tokio::test]
async fn without_session_secret_a_random_one_is_made_with_a_warning() {
    let dir = run_dir("random");
    let unused_db = "sqlite://never-opened.sqlite";
    let env = [("SESSION_BACKEND", "cookie"), ("DATABASE_URL", unused_db)];
    let cookie = {
        let demo = start_demo(&dir, "first", &[], &env);
        assert!(
            demo.ready_line
                .contains("(sessions in sealed cookies, a random secret for this run)"),
            "{}",
            demo.ready_line
        );
        let logs = demo.logs();
        assert!(
            logs.contains("warning: SESSION_SECRET is not set")
                && logs.contains("every session ends when the demo stops")
                && logs.contains("32 bytes or more"),
            "{logs}"
        );
        assert!(
            logs.contains("warning: DATABASE_URL (sqlite://never-opened.sqlite) is unused"),
            "{logs}"
        );
        let cookie = common::login_alice(&demo.base, None).await;
        assert_eq!(common::profile(&demo.base, &cookie).await.0, StatusCode::OK);
        cookie
    };
    // A restart makes another secret: the session ended with the process.
    let demo = start_demo(&dir, "second", &[], &env);
    assert_eq!(
        common::profile(&demo.base, &cookie).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(files_besides_logs(&dir), Vec::<String>::new());
}

#[test]
fn a_short_or_empty_session_secret_stops_the_demo_naming_it() {
    let dir = run_dir("short");
    for (secret, expected) in [
        (
            "hunter2",
            "secret 1 of 1 is 7 bytes; each needs at least 32".to_owned(),
        ),
        (
            &format!("{NEW_SECRET},hunter2") as &str,
            "secret 2 of 2 is 7 bytes".to_owned(),
        ),
        ("", "is empty".to_owned()),
        ("   ", "is empty".to_owned()),
        (
            &format!("{NEW_SECRET},,{OLD_SECRET}") as &str,
            "secret 2 of 3 is empty".to_owned(),
        ),
    ] {
        let (code, stdout, stderr) = common::run_demo(
            &dir,
            &["--backend", "cookie"],
            &[("SESSION_SECRET", secret)],
        );
        assert_eq!(code, Some(1), "{secret:?}: {stderr}");
        assert!(stderr.contains("`SESSION_SECRET`"), "{secret:?}: {stderr}");
        assert!(stderr.contains(&expected), "{secret:?}: {stderr}");
        assert!(
            !stderr.contains("hunter2"),
            "the secret was printed: {stderr}"
        );
        assert!(!stdout.contains("serving on"), "{stdout}");
    }
}

#[test]
fn the_cookie_backend_refuses_litestar_compatible_mode() {
    let dir = run_dir("litestar");
    let (code, stdout, stderr) = common::run_demo(
        &dir,
        &["--backend", "cookie", "--litestar-compatible"],
        &[("SESSION_SECRET", NEW_SECRET)],
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("--backend cookie cannot be used with --litestar-compatible"),
        "{stderr}"
    );
    assert!(!stdout.contains("serving on"), "{stdout}");
    assert_eq!(files_besides_logs(&dir), Vec::<String>::new());
}

#[test]
fn help_documents_the_backend_and_the_secret() {
    let dir = run_dir("help");
    let (code, stdout, _) = common::run_demo(&dir, &["--help"], &[]);
    assert_eq!(code, Some(0));
    for needle in [
        "--backend BACKEND",
        "SESSION_BACKEND",
        "cookie  the browser",
        "SESSION_SECRET",
        "SESSION_SECRET=new,old",
        "DATABASE_URL",
    ] {
        assert!(
            stdout.contains(needle),
            "{needle:?} missing from:\n{stdout}"
        );
    }
}
