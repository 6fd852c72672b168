//! [`RedisConnector`]: the `redis:`/`rediss:`/`redis+cluster:` rows of the
//! scheme table, and the URL parsing behind [`RedisStore::open`].

use std::sync::Arc;

use redis::IntoConnectionInfo;
use serde_json::Value;
use session_core::{Connector, Error, Result, StoreAdmin, StoreConfig, async_trait};

use crate::config::RedisConfig;
use crate::store::RedisStore;

const SCHEMES: &[&str] = &["redis", "rediss", "redis+cluster", "rediss+cluster"];
const URL_FORMS: &str = "redis://[USER:PASSWORD@]HOST:PORT[/DB], rediss://... (TLS), \
                         redis+cluster://[USER:PASSWORD@]HOST:PORT[,HOST:PORT...], rediss+cluster://...";

/// Opens a [`RedisStore`] from a URL, with a [`RedisConfig`] document
/// (`null` for the defaults, or its own fields):
///
/// * `redis://[USER:PASSWORD@]HOST[:PORT][/DB]`: one server (port 6379 and
///   database 0 by default);
/// * `rediss://...`: the same over TLS (needs the crate's `tls` feature);
/// * `redis+cluster://[USER:PASSWORD@]HOST:PORT[,HOST:PORT...]` (or
///   `rediss+cluster://`): a Redis Cluster, found from any of the seed
///   nodes listed.
///
/// A single server is connected lazily (the first call proves it is
/// there); a cluster is asked for its slot map when the store opens. A
/// malformed URL is an [`Error::InvalidConfig`] for `url` that names the
/// problem and never repeats a password.
///
/// ```
/// use session_core::Connector;
/// use session_redis::RedisConnector;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> session_core::Result<()> {
/// let admin = RedisConnector.open("redis://app:s3cret@cache.internal/2", &serde_json::json!({"prefix": "app:"})).await?;
/// assert_eq!(admin.describe(), "redis prefix `app:` at cache.internal:6379/2");
/// // Redis has no schema, and expires keys itself.
/// assert_eq!(RedisConnector.migration_sql("redis://cache.internal", &serde_json::Value::Null)?, None);
/// assert!(admin.expires_by_itself().is_some());
///
/// let err = RedisConnector.open("redis://app:s3cret@cache:port/0", &serde_json::Value::Null).await.err().unwrap();
/// assert!(err.to_string().contains("invalid port number"), "{err}");
/// assert!(!err.to_string().contains("s3cret"));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct RedisConnector;

#[async_trait]
impl Connector for RedisConnector {
    fn schemes(&self) -> &'static [&'static str] {
        SCHEMES
    }

    fn url_forms(&self) -> &'static str {
        URL_FORMS
    }

    fn migration_sql(&self, url: &str, config: &Value) -> Result<Option<String>> {
        RedisConfig::from_value(config.clone())?;
        parse_url(url)?;
        Ok(None)
    }

    async fn open(&self, url: &str, config: &Value) -> Result<Arc<dyn StoreAdmin>> {
        let config = RedisConfig::from_value(config.clone())?;
        Ok(Arc::new(RedisStore::open(url, config).await?))
    }
}

/// Where a store's Redis is: one server or a cluster's seed nodes.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    /// One server.
    Single(Box<redis::ConnectionInfo>),
    /// A cluster, found from these seed nodes.
    Cluster(Vec<redis::ConnectionInfo>),
}

/// A parsed URL: the target and its address as shown in messages
/// (`host:port/db`, or the seed nodes), without credentials.
#[derive(Debug, Clone)]
pub(crate) struct Parsed {
    pub(crate) target: Target,
    pub(crate) shown: String,
    /// `rediss://` or `rediss+cluster://`.
    pub(crate) tls: bool,
}

fn invalid(reason: impl Into<String>) -> Error {
    Error::invalid_config("url", reason)
}

/// Parses a Redis URL (see [`RedisConnector`]). A refusal is an
/// [`Error::InvalidConfig`] for `url` that never repeats a password.
pub(crate) fn parse_url(url: &str) -> Result<Parsed> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(invalid(format!("expected {URL_FORMS}")));
    };
    let scheme = scheme.to_ascii_lowercase();
    if !SCHEMES.contains(&scheme.as_str()) {
        let shown = if scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        {
            format!("`{scheme}:`")
        } else {
            "of this URL".to_owned()
        };
        return Err(invalid(format!(
            "the scheme {shown} is not Redis's; expected {URL_FORMS}"
        )));
    }
    let tls = scheme.starts_with("rediss");
    if tls && !cfg!(feature = "tls") {
        return Err(invalid(format!(
            "`{scheme}://` is Redis over TLS, which this build of session-redis lacks: enable its `tls` feature"
        )));
    }
    let base = if tls { "rediss" } else { "redis" };
    if scheme.ends_with("+cluster") {
        parse_cluster(base, rest)
    } else {
        let (info, shown) = parse_node(&format!("{base}://{rest}"), true)?;
        Ok(Parsed {
            target: Target::Single(Box::new(info)),
            shown,
            tls,
        })
    }
}

/// The seed nodes of `redis+cluster://[USERINFO@]HOST:PORT[,HOST:PORT...][/0]`.
fn parse_cluster(base: &str, rest: &str) -> Result<Parsed> {
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let (userinfo, hosts) = match authority.rsplit_once('@') {
        Some((userinfo, hosts)) => (Some(userinfo), hosts),
        None => (None, authority),
    };
    if !matches!(tail, "" | "/" | "/0") {
        return Err(invalid(
            "a Redis Cluster has database 0 only and takes no options; expected redis+cluster://HOST:PORT[,HOST:PORT...]",
        ));
    }
    let mut seeds = Vec::new();
    let mut shown = Vec::new();
    for host in hosts.split(',') {
        if host.is_empty() {
            return Err(invalid(
                "an empty seed node; expected redis+cluster://HOST:PORT[,HOST:PORT...]",
            ));
        }
        let node = match userinfo {
            Some(userinfo) => format!("{base}://{userinfo}@{host}"),
            None => format!("{base}://{host}"),
        };
        let (info, address) = parse_node(&node, false)?;
        seeds.push(info);
        shown.push(address);
    }
    Ok(Parsed {
        target: Target::Cluster(seeds),
        shown: shown.join(","),
        tls: base == "rediss",
    })
}

/// One server's URL, checked with the `url` crate (whose errors never quote
/// the input) before the redis crate reads it. Returns the connection info
/// and `host:port` (with `/db` when `with_db`).
fn parse_node(url: &str, with_db: bool) -> Result<(redis::ConnectionInfo, String)> {
    let parsed =
        url::Url::parse(url).map_err(|e| invalid(format!("not a valid Redis URL: {e}")))?;
    let host = match parsed.host_str() {
        Some(host) if !host.is_empty() => host.to_owned(),
        _ => return Err(invalid(format!("no host; expected {URL_FORMS}"))),
    };
    let port = parsed.port().unwrap_or(6379);
    let db = match parsed.path().trim_start_matches('/') {
        "" => 0,
        db => db.parse::<u32>().map_err(|_| {
            invalid("the path must be a database number (`/0`, `/1`, ...) or empty")
        })?,
    };
    let secrets: Vec<&str> = parsed.password().into_iter().collect();
    let info = url.into_connection_info().map_err(|e| {
        let reason = e.to_string();
        let reason = if secrets.iter().any(|s| reason.contains(s)) {
            "invalid connection URL".to_owned()
        } else {
            reason
        };
        invalid(format!("not a valid Redis URL: {reason}"))
    })?;
    let shown = if with_db {
        format!("{host}:{port}/{db}")
    } else {
        format!("{host}:{port}")
    };
    Ok((info, shown))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(url: &str) -> String {
        match parse_url(url) {
            Err(Error::InvalidConfig { field, reason }) => {
                assert_eq!(field, "url", "{url}");
                reason
            }
            other => panic!("{url}: expected InvalidConfig, got {other:?}"),
        }
    }

    #[test]
    fn good_urls_parse_and_show_no_password() {
        for (url, shown) in [
            ("redis://127.0.0.1:6379/0", "127.0.0.1:6379/0"),
            ("redis://localhost", "localhost:6379/0"),
            ("REDIS://u:s3cret@cache:7000/3", "cache:7000/3"),
            ("redis://:s3cret@cache/", "cache:6379/0"),
            ("redis://[::1]:6380", "[::1]:6380/0"),
            (
                "redis+cluster://u:s3cret@a:7000,b:7001,c:7002",
                "a:7000,b:7001,c:7002",
            ),
            ("redis+cluster://127.0.0.1:7000/", "127.0.0.1:7000"),
        ] {
            let parsed = parse_url(url).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!(parsed.shown, shown, "{url}");
        }
        match parse_url("redis+cluster://a:1,b:2").unwrap().target {
            Target::Cluster(seeds) => assert_eq!(seeds.len(), 2),
            Target::Single(_) => panic!("a cluster URL gave one server"),
        }
    }

    #[test]
    fn bad_urls_name_the_problem_but_never_the_password() {
        for (url, problem) in [
            ("redis://u:s3cret@cache:port/0", "invalid port number"),
            ("redis://u:s3cret@cache/db", "database number"),
            ("redis://u:s3cret@/0", "empty host"),
            (
                "memcache://u:s3cret@cache",
                "the scheme `memcache:` is not Redis's",
            ),
            ("redis:u:s3cret@cache", "expected redis://"),
            ("redis+cluster://u:s3cret@a:1,,b:2", "empty seed node"),
            ("redis+cluster://u:s3cret@a:1/2", "database 0 only"),
            ("redis+cluster://u:s3cret@a:x", "invalid port number"),
        ] {
            let reason = refused(url);
            assert!(reason.contains(problem), "{url}: {reason}");
            assert!(!reason.contains("s3cret"), "{url}: {reason}");
        }
    }

    #[cfg(not(feature = "tls"))]
    #[test]
    fn tls_without_the_feature_says_which_feature() {
        let reason = refused("rediss://u:s3cret@cache:6380");
        assert!(reason.contains("`tls` feature"), "{reason}");
        assert!(!reason.contains("s3cret"), "{reason}");
    }
}
