//! [`MemcachedConnector`]: the scheme table's entry for `memcache://` URLs.

use std::sync::Arc;

use serde_json::Value;
use session_core::{Connector, Error, Result, StoreAdmin, StoreConfig, async_trait};

use crate::{MemcachedConfig, MemcachedStore};

const SCHEMES: &[&str] = &["memcache", "memcached"];
const URL_FORMS: &str = "memcache://HOST[:PORT][,HOST[:PORT]...] (or memcached://)";
const DEFAULT_PORT: u16 = 11211;

/// Opens a [`MemcachedStore`] from a `memcache://` (or `memcached://`) URL:
/// one or more servers, `host[:port]` (IPv6 in brackets), separated by
/// `,`; the port defaults to 11211. The configuration document holds
/// [`MemcachedConfig`]'s fields.
///
/// ```
/// use session_core::Connector;
/// use session_memcached::MemcachedConnector;
///
/// assert_eq!(MemcachedConnector.schemes(), ["memcache", "memcached"]);
/// // No schema: no migration SQL, and nothing to connect for it.
/// let sql = MemcachedConnector.migration_sql("memcache://127.0.0.1", &serde_json::Value::Null)?;
/// assert_eq!(sql, None);
/// # Ok::<(), session_core::Error>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct MemcachedConnector;

#[async_trait]
impl Connector for MemcachedConnector {
    fn schemes(&self) -> &'static [&'static str] {
        SCHEMES
    }

    fn url_forms(&self) -> &'static str {
        URL_FORMS
    }

    fn migration_sql(&self, url: &str, config: &Value) -> Result<Option<String>> {
        MemcachedConfig::from_value(config.clone())?;
        parse_url(url)?;
        Ok(None)
    }

    async fn open(&self, url: &str, config: &Value) -> Result<Arc<dyn StoreAdmin>> {
        let config = MemcachedConfig::from_value(config.clone())?;
        Ok(Arc::new(MemcachedStore::connect(url, config).await?))
    }
}

/// The servers of a `memcache://` URL, each as `host:port`. A refusal is
/// an [`Error::InvalidConfig`] of `url` naming the problem.
pub(crate) fn parse_url(url: &str) -> Result<Vec<String>> {
    let invalid = |reason: String| Error::invalid_config("url", reason);
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(invalid(format!("expected {URL_FORMS}")));
    };
    if !SCHEMES.contains(&scheme.to_ascii_lowercase().as_str()) {
        return Err(invalid(format!(
            "the scheme `{scheme}:` is not memcached's; expected {URL_FORMS}"
        )));
    }
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains('@') {
        return Err(invalid(
            "a user or password is not supported (memcached's ASCII protocol has no authentication here)"
                .to_owned(),
        ));
    }
    if let Some(at) = rest.find(['/', '?', '#']) {
        return Err(invalid(format!(
            "unexpected `{}`: a memcached URL names servers only ({URL_FORMS}); settings go in the config",
            &rest[at..]
        )));
    }
    if rest.is_empty() {
        return Err(invalid(format!("no server; expected {URL_FORMS}")));
    }
    let mut servers: Vec<String> = Vec::new();
    for part in rest.split(',') {
        let server =
            parse_server(part).map_err(|why| invalid(format!("server `{part}`: {why}")))?;
        if servers.contains(&server) {
            return Err(invalid(format!("server `{server}` is listed twice")));
        }
        servers.push(server);
    }
    Ok(servers)
}

/// `host[:port]` or `[v6][:port]` to `host:port`.
fn parse_server(part: &str) -> Result<String, String> {
    let (host, port) = if let Some(v6) = part.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or("an IPv6 address needs its closing `]`")?;
        let port = match after {
            "" => None,
            after => Some(
                after
                    .strip_prefix(':')
                    .ok_or("expected `:PORT` after `]`")?,
            ),
        };
        if host.is_empty()
            || !host
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
        {
            return Err("not an IPv6 address".into());
        }
        (format!("[{host}]"), port)
    } else {
        let (host, port) = match part.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (part, None),
        };
        let valid = !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
        if !valid {
            return Err("expected a host name or address".into());
        }
        (host.to_owned(), port)
    };
    let port = match port {
        None => DEFAULT_PORT,
        Some(port) => match port.parse::<u16>() {
            Ok(port) if port != 0 => port,
            _ => return Err(format!("`{port}` is not a port (1 to 65535)")),
        },
    };
    Ok(format!("{host}:{port}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_urls_parse() {
        for (url, servers) in [
            ("memcache://127.0.0.1:11211", vec!["127.0.0.1:11211"]),
            ("memcache://cache", vec!["cache:11211"]),
            (
                "MEMCACHED://cache.internal:1234/",
                vec!["cache.internal:1234"],
            ),
            (
                "memcache://a:1,b,[::1]:3",
                vec!["a:1", "b:11211", "[::1]:3"],
            ),
            ("memcache://[::1]", vec!["[::1]:11211"]),
        ] {
            assert_eq!(parse_url(url).unwrap(), servers, "{url}");
        }
    }

    #[test]
    fn bad_urls_name_the_problem() {
        for (url, problem) in [
            ("redis://127.0.0.1", "not memcached's"),
            ("memcache:127.0.0.1", "expected memcache://"),
            ("memcache://", "no server"),
            ("memcache://h:notaport", "not a port"),
            ("memcache://h:0", "not a port"),
            ("memcache://h:70000", "not a port"),
            ("memcache://u:secret@h", "user or password"),
            ("memcache://h/db", "unexpected `/db`"),
            ("memcache://h?prefix=x", "unexpected `?prefix=x`"),
            ("memcache://a,,b", "expected a host"),
            ("memcache://a b", "expected a host"),
            ("memcache://[::1", "closing `]`"),
            ("memcache://a:1,a:1", "listed twice"),
        ] {
            match parse_url(url) {
                Err(Error::InvalidConfig { field, reason }) => {
                    assert_eq!(field, "url");
                    assert!(reason.contains(problem), "{url}: {reason}");
                    assert!(!reason.contains("secret"), "{url}: {reason}");
                }
                other => panic!("{url}: {other:?}"),
            }
        }
    }
}
