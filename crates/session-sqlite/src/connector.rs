//! [`SqliteConnector`]: opens a [`SqliteStore`] from a `sqlite:` URL, and
//! the parsing of those URLs.
//!
//! The `sqlite:` forms are not hierarchical URLs (`sqlite://sessions.db`
//! names the relative file `sessions.db`, where a URL parser sees a host),
//! so they are parsed here, as sqlx does, rather than with the `url` crate.

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Value;
use session_core::{Connector, Error, Result, StoreAdmin, StoreConfig, async_trait};

use crate::config::SqliteConfig;
use crate::migrations::dialect;
use crate::store::SqliteStore;

/// The URL forms [`SqliteConnector`] accepts, for help and errors.
const URL_FORMS: &str = "sqlite://RELATIVE/PATH, sqlite:///ABSOLUTE/PATH, sqlite::memory:";

/// Opens a [`SqliteStore`] from a URL: the `sqlite` entry of a scheme
/// table.
///
/// * `sqlite://sessions.db` and `sqlite:sessions.db`: the file
///   `sessions.db`, relative to the working directory;
/// * `sqlite:///var/lib/app/sessions.db`: an absolute path;
/// * `sqlite::memory:` (or `sqlite://:memory:`): a private in-memory
///   database.
///
/// The scheme is matched without regard to case; the path is taken as
/// written (no percent-decoding). Query parameters are refused: settings
/// go in the configuration document, a [`SqliteConfig`] (its own fields,
/// or SQLSpec's `{"litestar": {...}}` shape). The store is opened, not
/// migrated: call [`StoreAdmin::migrate`] (or `create_table`).
///
/// ```
/// use serde_json::json;
/// use session_core::{Bytes, Connector, Store};
/// use session_sqlite::SqliteConnector;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> session_core::Result<()> {
/// let config = json!({"table": "app_sessions", "cleanup_batch_size": 500});
/// let sql = SqliteConnector.migration_sql("sqlite:///no/such/dir/app.db", &config)?.unwrap();
/// assert!(sql.contains("CREATE TABLE IF NOT EXISTS app_sessions ("));
///
/// let admin = SqliteConnector.open("sqlite::memory:", &config).await?;
/// admin.migrate().await?;
/// assert_eq!(admin.cleanup_batch_size(), 500);
/// admin.set("k", Bytes::from_static(b"v"), None).await?;
/// assert!(admin.exists("k").await?);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct SqliteConnector;

#[async_trait]
impl Connector for SqliteConnector {
    fn schemes(&self) -> &'static [&'static str] {
        &["sqlite"]
    }

    fn url_forms(&self) -> &'static str {
        URL_FORMS
    }

    /// The migration SQL of the table `config` names; the URL is checked
    /// but no file is opened or created.
    fn migration_sql(&self, url: &str, config: &Value) -> Result<Option<String>> {
        parse_url(url)?;
        let config = SqliteConfig::from_value(config.clone())?;
        Ok(Some(dialect(&config.table_name()?).script()))
    }

    /// Opens the store (on tokio's blocking pool: opening probes the file).
    async fn open(&self, url: &str, config: &Value) -> Result<Arc<dyn StoreAdmin>> {
        let location = parse_url(url)?;
        let config = SqliteConfig::from_value(config.clone())?;
        let store = tokio::runtime::Handle::try_current()
            .map_err(|e| {
                Error::backend("sqlite", "open: must be called within a tokio runtime", e)
            })?
            .spawn_blocking(move || SqliteStore::at(location, config))
            .await
            .map_err(|e| Error::backend("sqlite", "open: the blocking task failed", e))??;
        Ok(Arc::new(store))
    }
}

/// Where a database lives, parsed from a path or `sqlite:` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Location {
    File(PathBuf),
    Memory,
}

/// A `sqlite:` URL (the scheme is required); errors name `url`.
fn parse_url(url: &str) -> Result<Location> {
    if !has_scheme(url) {
        // Only a plain scheme is repeated: the rest may hold a secret.
        let scheme = url.split_once(':').map(|(s, _)| s).unwrap_or_default();
        let shown = if !scheme.is_empty()
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        {
            format!("the scheme `{scheme}:`")
        } else {
            "no scheme".to_owned()
        };
        return Err(Error::invalid_config(
            "url",
            format!("a SQLite URL starts with `sqlite:`, this one has {shown}; use {URL_FORMS}"),
        ));
    }
    parse_location(url, "url")
}

fn has_scheme(location: &str) -> bool {
    location
        .get(..7)
        .is_some_and(|s| s.eq_ignore_ascii_case("sqlite:"))
}

/// A file path, a `sqlite:` URL or `:memory:`; errors name `field`.
pub(crate) fn parse_location(location: &str, field: &str) -> Result<Location> {
    let refuse = |reason: &str| Err(Error::invalid_config(field, reason.to_owned()));
    if location == ":memory:" {
        return Ok(Location::Memory);
    }
    let path = if has_scheme(location) {
        let rest = &location[7..];
        let (rest, authority) = match rest.strip_prefix("//") {
            Some(rest) => (rest, rest.split('/').next().unwrap_or_default()),
            None => (rest, ""),
        };
        if rest == ":memory:" {
            return Ok(Location::Memory);
        }
        if rest.contains('?') {
            return refuse(
                "query parameters in a sqlite: URL are not supported; \
                 set the pool size and busy timeout in SqliteConfig",
            );
        }
        if authority.contains('@') {
            return refuse(
                "a sqlite: URL names a file and takes no user, password or host; \
                 use sqlite://RELATIVE/PATH or sqlite:///ABSOLUTE/PATH",
            );
        }
        rest
    } else {
        location
    };
    if path.is_empty() {
        return refuse("the database path is empty; give a file path, a sqlite:// URL or :memory:");
    }
    Ok(Location::File(PathBuf::from(path)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse() {
        let file = |p: &str| Some(Location::File(PathBuf::from(p)));
        let parse = |l: &str| parse_location(l, "path").ok();
        assert_eq!(parse("sessions.db"), file("sessions.db"));
        assert_eq!(parse("sqlite://sessions.db"), file("sessions.db"));
        assert_eq!(parse("sqlite:sessions.db"), file("sessions.db"));
        assert_eq!(parse("sqlite:///var/db/s.db"), file("/var/db/s.db"));
        assert_eq!(parse("SQLite://dir/s.db"), file("dir/s.db"));
        assert_eq!(
            parse("sqlite:///tmp/my dir/a%20b.db"),
            file("/tmp/my dir/a%20b.db")
        );
        for memory in [":memory:", "sqlite::memory:", "sqlite://:memory:"] {
            assert_eq!(parse(memory), Some(Location::Memory));
        }
    }

    #[test]
    fn bad_locations_name_the_field() {
        for bad in ["", "sqlite://", "sqlite:", "sqlite://s.db?mode=ro"] {
            let err = parse_location(bad, "path").unwrap_err();
            assert!(
                matches!(&err, Error::InvalidConfig { field, .. } if field == "path"),
                "{bad:?}: {err}"
            );
        }
    }

    #[test]
    fn malformed_urls_name_the_problem_never_a_password() {
        for (url, problem) in [
            ("postgres://app:s3cret@db/app", "the scheme `postgres:`"),
            ("/var/db/s.db", "no scheme"),
            ("s3cret", "no scheme"),
            ("sqlite://app:s3cret@host/s.db", "no user, password or host"),
            ("sqlite:///var/db/s.db?password=s3cret", "query parameters"),
            ("sqlite://", "path is empty"),
        ] {
            let err = parse_url(url).unwrap_err();
            let text = err.to_string();
            assert!(
                matches!(&err, Error::InvalidConfig { field, .. } if field == "url"),
                "{url}: {text}"
            );
            assert!(text.contains(problem), "{url}: {text}");
            assert!(!text.contains("s3cret"), "{url}: {text}");
        }
        assert_eq!(parse_url("sqlite::memory:").ok(), Some(Location::Memory));
        assert!(parse_url(":memory:").is_err(), "a URL needs its scheme");
    }
}
