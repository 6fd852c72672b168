//! The throwaway cluster really starts, stops, comes back, survives a crash
//! and leaves nothing behind.

use session_test_support::{connect, throwaway_cluster_or_skip};

async fn select_one(url: &str) -> Result<i32, String> {
    let client = connect(url).await.map_err(|e| e.to_string())?;
    let row = client
        .query_one("SELECT 1", &[])
        .await
        .map_err(|e| e.to_string())?;
    Ok(row.get(0))
}

#[tokio::test(flavor = "current_thread")]
async fn start_stop_restart_kill_and_drop() {
    let Some(cluster) = throwaway_cluster_or_skip() else {
        return;
    };
    let url = cluster.url();
    let root = cluster.root().to_path_buf();
    assert!(root.join("data").join("PG_VERSION").is_file());
    assert_eq!(select_one(&url).await, Ok(1));

    cluster.stop().unwrap();
    assert!(
        select_one(&url).await.is_err(),
        "a stopped cluster still answers"
    );

    cluster.restart().unwrap();
    assert_eq!(select_one(&url).await, Ok(1), "same port after a restart");

    // A crash: the client sees its connection die, the restart recovers.
    let client = connect(&url).await.unwrap();
    cluster.kill().unwrap();
    assert!(client.simple_query("SELECT 1").await.is_err());
    cluster.restart().unwrap();
    assert_eq!(select_one(&url).await, Ok(1), "back after a crash");

    drop(cluster);
    assert!(!root.exists(), "{} survived the drop", root.display());
    assert!(
        select_one(&url).await.is_err(),
        "the server survived the drop"
    );
}

/// A cluster started with TLS on says so, presents the test certificate
/// from its own folder, and still takes plain connections.
#[tokio::test(flavor = "current_thread")]
async fn a_tls_cluster_has_ssl_on() {
    let Some((cluster, certificates)) = session_test_support::tls_cluster_or_skip() else {
        return;
    };
    let client = connect(&cluster.url()).await.unwrap();
    let show = |name: &'static str| {
        let client = &client;
        async move {
            client
                .query_one("SELECT current_setting($1)", &[&name])
                .await
                .unwrap()
                .get::<_, String>(0)
        }
    };
    assert_eq!(show("ssl").await, "on");
    let cert_file = show("ssl_cert_file").await;
    assert!(
        cert_file.starts_with(&cluster.root().display().to_string()),
        "{cert_file}"
    );
    assert_eq!(
        std::fs::read(&cert_file).unwrap(),
        std::fs::read(&certificates.server_cert).unwrap()
    );
    // This client connected without TLS.
    let row = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap();
    assert!(!row.get::<_, bool>(0));
}
