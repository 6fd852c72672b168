//! Open any session store of this workspace from a URL.
//!
//! One scheme table maps a URL's scheme to the backend that opens it:
//! `sqlite:`, `postgres:`/`postgresql:`, `oracle:`,
//! `redis:`/`rediss:`/`redis+cluster:`, `memcache:`/`memcached:`, `file:`,
//! and whatever later backends add. Each backend is a cargo feature of this
//! crate, named after its crate and on by default (`session-redis` with its
//! `tls` feature, for `rediss://`); turn the defaults off to compile only
//! the backend you use:
//!
//! ```toml
//! session-open = { path = "../session-store/crates/session-open", default-features = false, features = ["session-postgres"] }
//! ```
//!
//! The `sessions` CLI and the demo open their stores here, so they know no
//! backend by name. The opened store is an `Arc<dyn StoreAdmin>`: the
//! operations side (migrations, cleanup) and, by upcasting, the
//! `Arc<dyn Store>` the middleware takes.
//!
//! ```
//! use std::sync::Arc;
//! use session_core::{Bytes, Store, StoreAdmin};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> session_core::Result<()> {
//! let admin = session_open::open("sqlite::memory:", &serde_json::Value::Null).await?;
//! admin.migrate().await?;
//! let store: Arc<dyn Store> = admin;
//! store.set("k", Bytes::from_static(b"v"), None).await?;
//! assert!(store.exists("k").await?);
//!
//! let err = session_open::open("mysql://root:s3cret@db/app", &serde_json::Value::Null).await.err().unwrap();
//! assert!(err.to_string().contains("unknown database URL scheme `mysql://`"), "{err}");
//! assert!(!err.to_string().contains("s3cret"));
//! # Ok(()) }
//! ```

use std::sync::Arc;

use serde_json::Value;
use session_core::{Connector, Error, Result, StoreAdmin};

/// Builds the scheme table: one `"feature" => connector` row per backend,
/// compiled in only when its feature is on.
macro_rules! scheme_table {
    ($($feature:literal => $connector:expr),* $(,)?) => {
        /// The scheme table: one row per backend compiled in.
        static CONNECTORS: &[&dyn Connector] = &[$(
            #[cfg(feature = $feature)]
            &$connector,
        )*];
    };
}

scheme_table! {
    "session-sqlite" => session_sqlite::SqliteConnector,
    "session-postgres" => session_postgres::PostgresConnector,
    "session-oracle" => session_oracle::OracleConnector,
    "session-redis" => session_redis::RedisConnector,
    "session-memcached" => session_memcached::MemcachedConnector,
    "session-file" => session_file::FileConnector,
}

/// The configuration field URL errors name.
const FIELD: &str = "database_url";

/// Every backend compiled into this build.
pub fn connectors() -> &'static [&'static dyn Connector] {
    CONNECTORS
}

/// The URL forms of every backend compiled in, for help texts, e.g.
/// `sqlite://PATH, sqlite::memory:, postgres://USER@HOST/DB, ...`.
pub fn url_forms() -> String {
    CONNECTORS
        .iter()
        .map(|c| c.url_forms())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The backend that opens `url`, chosen by its scheme (case-insensitive).
///
/// # Errors
///
/// [`Error::InvalidConfig`] for `database_url` when the URL has no scheme
/// or one no compiled-in backend opens; the message repeats only the
/// scheme, never the rest of the URL (it may hold a password).
pub fn connector_for(url: &str) -> Result<&'static dyn Connector> {
    let scheme = url.split_once(':').map(|(s, _)| s).unwrap_or_default();
    let valid = !scheme.is_empty()
        && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    if valid {
        let scheme = scheme.to_ascii_lowercase();
        if let Some(found) = CONNECTORS
            .iter()
            .find(|c| c.schemes().contains(&scheme.as_str()))
        {
            return Ok(*found);
        }
    }
    let shown = if valid {
        format!("`{}://`", scheme.to_ascii_lowercase())
    } else {
        "(none)".to_owned()
    };
    let known: Vec<String> = CONNECTORS
        .iter()
        .flat_map(|c| c.schemes())
        .map(|s| format!("{s}://"))
        .collect();
    Err(Error::invalid_config(
        FIELD,
        format!(
            "unknown database URL scheme {shown}; known schemes: {} (forms: {})",
            known.join(", "),
            url_forms()
        ),
    ))
}

/// Opens the store `url` names, with `config` its backend's configuration
/// document (`Value::Null` for the defaults; see
/// [`StoreConfig`](session_core::StoreConfig)). The store may connect
/// lazily: its first operation proves the server is reachable.
///
/// # Errors
///
/// An unknown scheme, a malformed URL or configuration (naming the field,
/// never a password), or a backend that cannot be opened.
pub async fn open(url: &str, config: &Value) -> Result<Arc<dyn StoreAdmin>> {
    connector_for(url)?.open(url, config).await
}

/// The migration SQL of the store `url` names, without connecting or
/// creating anything; `None` for a backend without a schema.
///
/// # Errors
///
/// An unknown scheme, or a malformed URL or configuration.
pub fn migration_sql(url: &str, config: &Value) -> Result<Option<String>> {
    connector_for(url)?.migration_sql(url, config)
}

/// `url` as it may be shown in logs and messages: a password in the
/// user-info or in a query parameter becomes `***`; a connection string
/// that is not a URL (`host=db password=...`) is shown by its keys only.
///
/// ```
/// use session_open::redact;
/// assert_eq!(redact("postgres://app:s3cret@db:5432/app"), "postgres://app:***@db:5432/app");
/// assert_eq!(redact("postgres://app@db/app?password=s3cret&sslmode=require"),
///            "postgres://app@db/app?password=***&sslmode=require");
/// assert_eq!(redact("host=db user=app password=s3cret"),
///            "connection string with keys host, user, password");
/// assert_eq!(redact("sqlite://sessions.db"), "sqlite://sessions.db");
/// ```
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                // Fails only for URLs that cannot hold a password.
                let _ = parsed.set_password(Some("***"));
            }
            if parsed.query().is_some() {
                let pairs: Vec<(String, String)> = parsed
                    .query_pairs()
                    .map(|(k, v)| {
                        let secret = is_secret(&k);
                        (
                            k.into_owned(),
                            if secret { "***".into() } else { v.into_owned() },
                        )
                    })
                    .collect();
                parsed.query_pairs_mut().clear().extend_pairs(pairs);
            }
            parsed.to_string().replace("%2A%2A%2A", "***")
        }
        Err(_) if url.contains('=') => {
            let keys: Vec<&str> = url
                .split_whitespace()
                .filter_map(|part| part.split_once('=').map(|(k, _)| k))
                .filter(|k| {
                    !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                })
                .collect();
            format!("connection string with keys {}", keys.join(", "))
        }
        // A URL the `url` crate cannot read (several hosts, as in
        // `redis+cluster://u:pw@a:1,b:2`): the password of its user-info
        // hidden by hand.
        Err(_) => match url.split_once("://") {
            Some((scheme, rest)) => {
                let end = rest.find(['/', '?']).unwrap_or(rest.len());
                let (authority, tail) = rest.split_at(end);
                match authority.rsplit_once('@') {
                    Some((userinfo, hosts)) => {
                        let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
                        let hidden = if userinfo.contains(':') { ":***" } else { "" };
                        format!("{scheme}://{user}{hidden}@{hosts}{tail}")
                    }
                    None => url.to_owned(),
                }
            }
            None => url.to_owned(),
        },
    }
}

fn is_secret(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["pass", "pwd", "secret", "token"]
        .iter()
        .any(|word| key.contains(word))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_compiled_scheme_is_found_and_unique() {
        let mut seen = Vec::new();
        for connector in connectors() {
            for scheme in connector.schemes() {
                assert!(!seen.contains(scheme), "scheme {scheme} listed twice");
                seen.push(*scheme);
                let found = connector_for(&format!("{}://x", scheme.to_uppercase())).unwrap();
                assert!(found.schemes().contains(scheme));
            }
        }
        for scheme in [
            "sqlite",
            "postgres",
            "postgresql",
            "oracle",
            "redis",
            "rediss",
            "redis+cluster",
            "memcache",
            "memcached",
            "file",
        ] {
            assert!(seen.contains(&scheme), "{scheme} missing from {seen:?}");
        }
    }

    #[test]
    fn unknown_schemes_name_only_the_scheme() {
        let err = connector_for("mysql://root:s3cret@db/app").err().unwrap();
        let text = err.to_string();
        assert!(text.contains("`mysql://`"), "{text}");
        assert!(text.contains("sqlite://"), "{text}");
        assert!(!text.contains("s3cret"), "{text}");
        for bad in [
            "",
            "no scheme here",
            "://x",
            "p@ss:word@host",
            "host=db password=s3cret",
        ] {
            let text = connector_for(bad).err().unwrap().to_string();
            assert!(text.contains("(none)"), "{bad:?}: {text}");
            assert!(!text.contains("s3cret") && !text.contains("word"), "{text}");
        }
    }

    #[test]
    fn redaction_never_shows_a_password() {
        for url in [
            "postgres://app:s3cret@db/app",
            "postgresql://app:s3cret@db:5432/app?sslmode=require",
            "postgres://app@db/app?password=s3cret",
            "postgres://app@db/app?sslpassword=s3cret&application_name=x",
            "host=db port=5432 password=s3cret user=app",
            "host=db password='s3 cret'",
            "oracle://app:s3cret@db:1521/FREEPDB1",
            "redis://app:s3cret@cache:6379/0",
            "redis://:s3cret@cache",
            "redis+cluster://app:s3cret@a:7000,b:7001",
            "redis+cluster://app:s3cret@a:7000,b:7001/0",
        ] {
            let shown = redact(url);
            assert!(!shown.contains("s3"), "{url} -> {shown}");
        }
        assert_eq!(redact("sqlite::memory:"), "sqlite::memory:");
        assert_eq!(
            redact("redis+cluster://app:s3cret@a:7000,b:7001"),
            "redis+cluster://app:***@a:7000,b:7001"
        );
        assert_eq!(redact("postgres://app@db/app"), "postgres://app@db/app");
    }
}
