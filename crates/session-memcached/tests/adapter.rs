//! The memcached store against real servers: item size limits, faults,
//! the namespace generation, key encoding, expiry on the wire, several
//! servers.

use std::time::{Duration, Instant};

use bytes::Bytes;
use session_core::{Error, Store, StoreAdmin};
use session_memcached::memcache::exp::{AsyncMetaClient, Delete, Get, Meta, Set};
use session_memcached::{MemcachedConfig, MemcachedStore};
use session_test_support::memcached::{memcached_url_or_skip, throwaway_or_skip, unique_prefix};

fn config(name: &str) -> MemcachedConfig {
    MemcachedConfig {
        prefix: unique_prefix(name),
        ..MemcachedConfig::default()
    }
}

fn quick(name: &str) -> MemcachedConfig {
    MemcachedConfig {
        connect_timeout: Duration::from_millis(500),
        response_timeout: Duration::from_millis(500),
        wait_timeout: Duration::from_millis(300),
        ..config(name)
    }
}

async fn raw(url: &str) -> AsyncMetaClient {
    AsyncMetaClient::connect(url.trim_start_matches("memcache://").to_owned())
        .await
        .unwrap()
}

fn hour() -> Option<Duration> {
    Some(Duration::from_secs(3600))
}

#[tokio::test]
async fn the_default_item_size_refuses_1_mib_clearly_and_the_store_goes_on() {
    let Some(server) = throwaway_or_skip(&[]) else {
        return;
    };
    let store = MemcachedStore::connect(&server.url(), config("itemsize"))
        .await
        .unwrap();
    let mib = Bytes::from(vec![7u8; 1024 * 1024]);
    for attempt in [
        store.set("big", mib.clone(), hour()).await.map(|()| true),
        store.create("big2", mib.clone(), hour()).await,
    ] {
        match attempt {
            Err(Error::Backend {
                context, source, ..
            }) => {
                assert!(context.contains("item size limit"), "{context}");
                assert!(source.to_string().contains("too large"), "{source}");
            }
            other => panic!("a 1 MiB value under -I 1m: {other:?}"),
        }
    }
    // Nothing was stored, nothing truncated, and the store still works.
    assert_eq!(store.get("big", None).await.unwrap(), None);
    assert!(!store.exists("big2").await.unwrap());
    let fits = Bytes::from(vec![9u8; 1000 * 1000]);
    store.set("fits", fits.clone(), hour()).await.unwrap();
    assert_eq!(store.get("fits", None).await.unwrap(), Some(fits));
}

#[tokio::test]
async fn a_port_nothing_listens_on_is_a_connection_error_within_the_timeout() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let store = MemcachedStore::connect(&format!("memcache://127.0.0.1:{port}"), quick("down"))
        .await
        .unwrap();
    let started = Instant::now();
    let err = store.get("k", None).await.unwrap_err();
    assert!(matches!(err, Error::Connection { .. }), "{err:?}");
    assert!(err.is_transient());
    assert!(std::error::Error::source(&err).is_some(), "{err:?}");
    assert!(err.to_string().contains(&port.to_string()), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_server_that_never_answers_is_a_connection_error_then_a_pool_timeout() {
    // Accepts connections, reads, never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let store = MemcachedStore::connect(
        &format!("memcache://127.0.0.1:{port}"),
        MemcachedConfig {
            pool_size: 1,
            ..quick("silent")
        },
    )
    .await
    .unwrap();
    let started = Instant::now();
    let (first, second) = tokio::join!(store.get("a", None), async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        store.get("b", None).await
    });
    let elapsed = started.elapsed();
    assert!(matches!(first, Err(Error::Connection { .. })), "{first:?}");
    assert!(
        matches!(second, Err(Error::PoolTimeout { .. })),
        "{second:?}"
    );
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
}

#[tokio::test]
async fn a_killed_server_gives_errors_not_hangs_and_a_restarted_one_serves_again() {
    let Some(server) = throwaway_or_skip(&[]) else {
        return;
    };
    let store = MemcachedStore::connect(&server.url(), quick("killed"))
        .await
        .unwrap();
    store
        .set("k", Bytes::from_static(b"v"), hour())
        .await
        .unwrap();
    server.stop().unwrap();
    for _ in 0..3 {
        let started = Instant::now();
        let err = store.get("k", None).await.unwrap_err();
        assert!(matches!(err, Error::Connection { .. }), "{err:?}");
        assert!(started.elapsed() < Duration::from_secs(2));
    }
    server.restart().unwrap();
    // memcached keeps nothing across a restart: the session is gone, the
    // store works again.
    assert_eq!(store.get("k", None).await.unwrap(), None);
    store
        .set("k", Bytes::from_static(b"w"), hour())
        .await
        .unwrap();
    assert_eq!(
        store.get("k", None).await.unwrap(),
        Some(Bytes::from_static(b"w"))
    );
}

#[tokio::test]
async fn delete_all_by_another_instance_is_seen_at_once_and_spares_other_prefixes() {
    let Some(url) = memcached_url_or_skip() else {
        return;
    };
    let shared = config("shared");
    let a = MemcachedStore::connect(&url, shared.clone()).await.unwrap();
    let b = MemcachedStore::connect(&url, shared).await.unwrap();
    let other = MemcachedStore::connect(&url, config("other"))
        .await
        .unwrap();
    a.set("k", Bytes::from_static(b"a"), None).await.unwrap();
    other
        .set("k", Bytes::from_static(b"o"), None)
        .await
        .unwrap();
    assert!(b.exists("k").await.unwrap());
    let before = a.memcached_key("k").unwrap().unwrap();
    b.delete_all().await.unwrap();
    // a has the old generation cached: its next read sees the new one.
    assert_eq!(a.get("k", None).await.unwrap(), None);
    assert!(!a.delete_live("k").await.unwrap());
    assert_ne!(a.memcached_key("k").unwrap().unwrap(), before);
    assert_eq!(
        other.get("k", None).await.unwrap(),
        Some(Bytes::from_static(b"o"))
    );
    // A create in a after the delete_all lands in the new generation.
    assert!(
        a.create("k", Bytes::from_static(b"new"), None)
            .await
            .unwrap()
    );
    assert_eq!(
        b.get("k", None).await.unwrap(),
        Some(Bytes::from_static(b"new"))
    );
}

#[tokio::test]
async fn a_lost_generation_is_a_new_namespace_never_an_old_one() {
    let Some(url) = memcached_url_or_skip() else {
        return;
    };
    let config = config("evicted");
    let prefix = config.prefix.clone();
    let store = MemcachedStore::connect(&url, config).await.unwrap();
    store
        .set("k", Bytes::from_static(b"v"), None)
        .await
        .unwrap();
    // As if memcached evicted the generation (or restarted without it).
    let client = raw(&url).await;
    let deleted = client
        .run(Delete::new(format!("{prefix}gen")))
        .await
        .unwrap();
    assert!(deleted.applied());
    assert_eq!(store.get("k", None).await.unwrap(), None);
    store
        .set("k", Bytes::from_static(b"w"), None)
        .await
        .unwrap();
    assert_eq!(
        store.get("k", None).await.unwrap(),
        Some(Bytes::from_static(b"w"))
    );
}

#[tokio::test]
async fn keys_on_the_wire_are_readable_and_carry_the_exact_expiry() {
    let Some(url) = memcached_url_or_skip() else {
        return;
    };
    let config = config("wire");
    let prefix = config.prefix.clone();
    let store = MemcachedStore::connect(&url, config).await.unwrap();
    let id = session_core::generate_session_id(32).unwrap();
    store
        .set(
            &id,
            Bytes::from_static(b"{}"),
            Some(Duration::from_millis(1500)),
        )
        .await
        .unwrap();
    let wire = store.memcached_key(&id).unwrap().unwrap();
    assert!(
        wire.starts_with(&prefix) && wire.ends_with(&format!(":k{id}")),
        "{wire}"
    );
    let client = raw(&url).await;
    let item = client
        .run(Get::new(&wire).meta(Meta::NONE.ttl()))
        .await
        .unwrap();
    assert_eq!(item.value.as_deref(), Some(&b"{}"[..]));
    // memcached holds it longer than 1.5 s; the store's exact expiry says
    // 1.5 s.
    let ttl = item.item.ttl.unwrap();
    assert!((3..=4).contains(&ttl), "memcached TTL {ttl}");
    let left = store.expires_in(&id).await.unwrap().unwrap();
    assert!(
        left <= Duration::from_millis(1501) && left > Duration::from_millis(1300),
        "{left:?}"
    );

    // Spaces, control characters and long keys are encoded.
    for key in ["a key\twith\nspaces", &"€".repeat(85), &"x".repeat(255)] {
        store
            .set(key, Bytes::from(key.to_owned()), None)
            .await
            .unwrap();
        let wire = store.memcached_key(key).unwrap().unwrap();
        assert!(
            wire.len() <= 250 && wire.bytes().all(|b| b.is_ascii_graphic()),
            "{wire}"
        );
        assert_eq!(
            store.get(key, None).await.unwrap(),
            Some(Bytes::from(key.to_owned()))
        );
    }
}

#[tokio::test]
async fn ttls_over_30_days_are_sent_as_absolute_times() {
    let Some(url) = memcached_url_or_skip() else {
        return;
    };
    let store = MemcachedStore::connect(&url, config("long")).await.unwrap();
    let forty_days = Duration::from_secs(40 * 24 * 3600);
    store
        .set("k", Bytes::from_static(b"v"), Some(forty_days))
        .await
        .unwrap();
    // Taken as a relative TTL, memcached would have expired it at once.
    assert!(store.exists("k").await.unwrap());
    let left = store.expires_in("k").await.unwrap().unwrap();
    // The exact expiry is rounded up to the millisecond.
    let most = forty_days + Duration::from_millis(1);
    assert!(
        left <= most && left > forty_days - Duration::from_secs(2),
        "{left:?}"
    );
    let wire = store.memcached_key("k").unwrap().unwrap();
    let item = raw(&url)
        .await
        .run(Get::new(&wire).meta(Meta::NONE.ttl()))
        .await
        .unwrap();
    assert!(
        item.item.ttl.unwrap() >= 40 * 24 * 3600,
        "{:?}",
        item.item.ttl
    );
    // And renewal to 40 days as well.
    store
        .set("r", Bytes::from_static(b"v"), Some(Duration::from_secs(5)))
        .await
        .unwrap();
    store.get("r", Some(forty_days)).await.unwrap().unwrap();
    assert!(store.expires_in("r").await.unwrap().unwrap() > forty_days - Duration::from_secs(2));
}

#[tokio::test]
async fn several_servers_share_the_keys() {
    let (Some(one), Some(two)) = (
        throwaway_or_skip(&["-I", "2m"]),
        throwaway_or_skip(&["-I", "2m"]),
    ) else {
        return;
    };
    let url = format!(
        "memcache://127.0.0.1:{},127.0.0.1:{}",
        one.port(),
        two.port()
    );
    let config = config("two");
    let store = MemcachedStore::connect(&url, config.clone()).await.unwrap();
    assert_eq!(store.address(), url.trim_start_matches("memcache://"));
    for i in 0..64 {
        assert!(
            store
                .create(&format!("k{i}"), Bytes::from(format!("{i}")), hour())
                .await
                .unwrap()
        );
    }
    // Each server holds some of them.
    for server in [&one, &two] {
        let client = raw(&server.url()).await;
        let mut held = 0;
        for i in 0..64 {
            let wire = store.memcached_key(&format!("k{i}")).unwrap().unwrap();
            if client.run(Get::new(&wire)).await.unwrap().hit() {
                held += 1;
            }
        }
        assert!(
            held > 0 && held < 64,
            "server {} holds {held} of 64",
            server.port()
        );
    }
    let again = MemcachedStore::connect(&url, config).await.unwrap();
    for i in 0..64 {
        assert_eq!(
            again.get(&format!("k{i}"), None).await.unwrap(),
            Some(Bytes::from(format!("{i}")))
        );
    }
    again.delete_all().await.unwrap();
    assert!(!store.exists("k0").await.unwrap());
}

#[tokio::test]
async fn describe_and_admin_defaults() {
    let Some(url) = memcached_url_or_skip() else {
        return;
    };
    let config = config("admin");
    let prefix = config.prefix.clone();
    let store = MemcachedStore::connect(&url, config).await.unwrap();
    let address = url.trim_start_matches("memcache://");
    assert_eq!(
        store.describe(),
        format!("memcached prefix {prefix} at {address}")
    );
    assert_eq!(store.backend(), "memcached");
    assert_eq!(store.location(), prefix);
    assert!(store.migrate().await.unwrap().is_noop());
    assert_eq!(StoreAdmin::migration_sql(&store), None);
    assert!(store.migrations().is_empty());
    assert!(store.session_table_exists().await.unwrap());
    assert_eq!(store.delete_expired().await.unwrap(), 0);
    assert_eq!(store.cleanup().await.unwrap(), Some(0));
    let why = store.expires_by_itself().unwrap();
    assert!(why.contains("by itself") && why.contains("evicts"), "{why}");
}

#[tokio::test]
async fn invalid_keys_reach_no_server() {
    // Nothing listens here: an invalid key must fail before connecting.
    let store = MemcachedStore::connect("memcache://127.0.0.1:9", quick("keys"))
        .await
        .unwrap();
    for key in ["", "a\0b", &"k".repeat(256)] {
        assert!(matches!(
            store.get(key, None).await,
            Err(Error::InvalidKey { .. })
        ));
        assert!(matches!(
            store.set(key, Bytes::new(), None).await,
            Err(Error::InvalidKey { .. })
        ));
        assert!(matches!(
            store.delete_live(key).await,
            Err(Error::InvalidKey { .. })
        ));
    }
}

/// memcached, when it refuses a value as too large, also deletes the item
/// stored under that key, whatever the mode (`add`, `replace`, a CAS that
/// does not match). The store refuses such values itself, so a
/// `compare_and_set`, `update` or `create` that fails writes nothing and
/// deletes nothing.
#[tokio::test]
async fn a_value_over_the_item_size_never_deletes_the_stored_session() {
    let Some(server) = throwaway_or_skip(&[]) else {
        return;
    };
    let store = MemcachedStore::connect(&server.url(), config("toolarge"))
        .await
        .unwrap();
    let small = Bytes::from_static(b"{\"user\":1}");
    let big = Bytes::from(vec![b'x'; 1024 * 1024]);
    store.set("s", small.clone(), hour()).await.unwrap();
    let attempts = [
        store
            .compare_and_set("s", small.clone(), big.clone(), hour())
            .await,
        store.update("s", big.clone(), hour()).await,
        store.create("s", big.clone(), hour()).await,
        store.set("s", big.clone(), hour()).await.map(|()| true),
    ];
    for attempt in attempts {
        match attempt {
            Err(Error::Backend { context, .. }) => {
                assert!(context.contains("item size limit"), "{context}");
                assert!(context.contains("nothing was sent"), "{context}");
            }
            other => panic!("a 1 MiB value under -I 1m: {other:?}"),
        }
        assert_eq!(store.get("s", None).await.unwrap(), Some(small.clone()));
    }
    // Just under the limit fits; the limit is configurable for -I 2m.
    let limit = session_memcached::DEFAULT_ITEM_SIZE_MAX;
    let fits = Bytes::from(vec![b'y'; usize::try_from(limit).unwrap() - 400]);
    assert!(
        store
            .compare_and_set("s", small.clone(), fits.clone(), hour())
            .await
            .unwrap()
    );
    assert_eq!(store.get("s", None).await.unwrap(), Some(fits.clone()));

    // Why the check: told a larger limit than the server's, the store
    // sends the value, memcached refuses it (a clear error still) and
    // drops the session it held.
    let misconfigured = MemcachedStore::connect(
        &server.url(),
        MemcachedConfig {
            item_size_max: 2 * 1024 * 1024,
            ..config("toolarge_misconfigured")
        },
    )
    .await
    .unwrap();
    misconfigured.set("s", small.clone(), hour()).await.unwrap();
    let err = misconfigured
        .compare_and_set("s", small.clone(), big.clone(), hour())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("refused the value as larger"),
        "{err}"
    );
    assert_eq!(misconfigured.get("s", None).await.unwrap(), None);
}

/// memcached reads `T` as a signed 32-bit number: an absolute expiry from
/// 2038-01-19 on was stored (`HD`) and gone at once. Such expiries are
/// kept in the client flags, in unix seconds, on an item without a TTL.
#[tokio::test]
async fn expiries_past_2038_are_kept_and_honoured() {
    let Some(url) = memcached_url_or_skip() else {
        return;
    };
    let store = MemcachedStore::connect(&url, config("far")).await.unwrap();
    let v = Bytes::from_static(b"v");
    let twenty_years = Duration::from_secs(20 * 365 * 24 * 3600);
    for duration in [twenty_years, Duration::from_secs(u64::MAX), Duration::MAX] {
        store.set("k", v.clone(), Some(duration)).await.unwrap();
        assert!(store.exists("k").await.unwrap(), "{duration:?}");
        let left = store.expires_in("k").await.unwrap().unwrap();
        assert!(left > twenty_years - Duration::from_secs(2), "{left:?}");
        assert!(
            !store.create("k", v.clone(), Some(duration)).await.unwrap(),
            "{duration:?}"
        );
        assert!(
            store
                .compare_and_set("k", v.clone(), v.clone(), Some(duration))
                .await
                .unwrap(),
            "{duration:?}"
        );
        assert!(store.update("k", v.clone(), Some(duration)).await.unwrap());
        assert!(store.exists("k").await.unwrap());
        assert!(store.delete_live("k").await.unwrap());
        assert!(
            store.create("k", v.clone(), Some(duration)).await.unwrap(),
            "{duration:?}"
        );
        assert!(store.exists("k").await.unwrap());
    }
    // A renewing read moves a short expiry past 2038 too.
    store
        .set("r", v.clone(), Some(Duration::from_secs(5)))
        .await
        .unwrap();
    assert_eq!(
        store.get("r", Some(twenty_years)).await.unwrap(),
        Some(v.clone())
    );
    let left = store.expires_in("r").await.unwrap().unwrap();
    assert!(left > twenty_years - Duration::from_secs(2), "{left:?}");

    // Such an item is gone at its instant: written here with one a second
    // away, as the store writes far ones (no TTL, unix seconds in the
    // flags).
    let wire = store.memcached_key("gone").unwrap().unwrap();
    let soon = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1;
    let written = raw(&url)
        .await
        .run(Set::new(&wire, "old").client_flags(u32::try_from(soon).unwrap()))
        .await
        .unwrap();
    assert!(written.applied());
    assert!(store.exists("gone").await.unwrap());
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert!(!store.exists("gone").await.unwrap());
    assert_eq!(store.expires_in("gone").await.unwrap(), None);
    assert!(
        store
            .create("gone", Bytes::from_static(b"new"), None)
            .await
            .unwrap()
    );
    assert_eq!(
        store.get("gone", None).await.unwrap(),
        Some(Bytes::from_static(b"new"))
    );
}

/// A server that answers after the response timeout: the late answer must
/// never be read as the answer to the next operation. The client drops a
/// connection whose exchange failed; if it pooled it, the next `get` would
/// read the late `first` instead of its own `second`.
#[tokio::test]
async fn a_late_answer_is_never_handed_to_the_next_operation() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let reads = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let reads = reads.clone();
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut lines = BufReader::new(read).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let tokens: Vec<&str> = line.split_whitespace().collect();
                    if tokens.first() == Some(&"ms") {
                        // A write: never answered (its connection is dropped).
                        tokio::time::sleep(Duration::from_secs(30)).await;
                        return;
                    }
                    if tokens.first() != Some(&"mg") || tokens.len() < 2 {
                        return;
                    }
                    let opaque = tokens
                        .iter()
                        .find(|t| t.starts_with('O'))
                        .map(|t| format!(" {t}"))
                        .unwrap_or_default();
                    let reply = if tokens[1].ends_with("gen") {
                        format!("VA 1{opaque}\r\n7\r\n")
                    } else {
                        let n = reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        let value = if n == 0 { "first" } else { "second" };
                        if n == 0 {
                            // Past the client's response timeout.
                            tokio::time::sleep(Duration::from_millis(600)).await;
                        }
                        format!("VA {} f0 t-1 c1{opaque}\r\n{value}\r\n", value.len())
                    };
                    if write.write_all(reply.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    let store = MemcachedStore::connect(
        &format!("memcache://127.0.0.1:{port}"),
        MemcachedConfig {
            pool_size: 1,
            response_timeout: Duration::from_millis(200),
            ..quick("late")
        },
    )
    .await
    .unwrap();
    assert!(store.session_table_exists().await.unwrap());
    let err = store.get("k", None).await.unwrap_err();
    assert!(matches!(err, Error::Connection { .. }), "{err:?}");
    assert!(err.to_string().contains("response timeout"), "{err}");
    // Past the late answer's arrival: a reused connection would hold it.
    tokio::time::sleep(Duration::from_millis(700)).await;
    for _ in 0..3 {
        assert_eq!(
            store.get("k", None).await.unwrap(),
            Some(Bytes::from_static(b"second"))
        );
    }
    // A write sent and not answered says that it may have been applied.
    let err = store
        .set("k", Bytes::from_static(b"v"), None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Connection { .. }), "{err:?}");
    assert!(err.to_string().contains("may have been applied"), "{err}");
    assert_eq!(
        store.get("k", None).await.unwrap(),
        Some(Bytes::from_static(b"second"))
    );
}
