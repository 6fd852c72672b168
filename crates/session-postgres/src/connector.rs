//! [`PostgresConnector`]: the `postgres:`/`postgresql:` row of the scheme
//! table, and the URL parsing behind [`PostgresStore::from_url`].

use std::sync::Arc;

use serde_json::Value;
use session_core::{Connector, Error, Result, StoreAdmin, StoreConfig, async_trait};

use crate::config::PostgresConfig;
use crate::migrations::dialect;
use crate::store::PostgresStore;

const SCHEMES: &[&str] = &["postgres", "postgresql"];
const URL_FORMS: &str = "postgres://USER@HOST:PORT/DB, postgresql://USER@HOST:PORT/DB";

/// Opens a [`PostgresStore`] from a `postgres://` or `postgresql://` URL
/// (the whole libpq URL syntax: `user[:password]@host[:port][,host...]/db?options`),
/// with a [`PostgresConfig`] document (`null` for the defaults, its own
/// fields, or SQLSpec's `{"litestar": {...}}`).
///
/// The store connects lazily; [`migration_sql`](Connector::migration_sql)
/// never connects. A malformed URL is an [`Error::InvalidConfig`] for `url`
/// that names the problem and never repeats a password.
///
/// ```
/// use session_core::Connector;
/// use session_postgres::PostgresConnector;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> session_core::Result<()> {
/// let config = serde_json::json!({"table": "app_sessions", "fillfactor": 90});
/// let sql = PostgresConnector.migration_sql("postgres://app@db.internal/app", &config)?.unwrap();
/// assert!(sql.contains("CREATE TABLE IF NOT EXISTS app_sessions (") && sql.contains("fillfactor = 90"));
///
/// let admin = PostgresConnector.open("postgresql://app@db.internal:5432/app", &config).await?;
/// assert_eq!(admin.describe(), "postgres table app_sessions at db.internal:5432");
///
/// let err = PostgresConnector.open("postgres://app:s3cret@db:port/app", &config).await.err().unwrap();
/// assert!(err.to_string().contains("invalid value for option `port`"), "{err}");
/// assert!(!err.to_string().contains("s3cret"));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct PostgresConnector;

#[async_trait]
impl Connector for PostgresConnector {
    fn schemes(&self) -> &'static [&'static str] {
        SCHEMES
    }

    fn url_forms(&self) -> &'static str {
        URL_FORMS
    }

    fn migration_sql(&self, url: &str, config: &Value) -> Result<Option<String>> {
        let config = PostgresConfig::from_value(config.clone())?;
        parse_url(url)?;
        Ok(Some(dialect(&config.table_name()?, &config).script()))
    }

    async fn open(&self, url: &str, config: &Value) -> Result<Arc<dyn StoreAdmin>> {
        let config = PostgresConfig::from_value(config.clone())?;
        Ok(Arc::new(PostgresStore::from_url(url, config)?))
    }
}

/// Parses a connection URL (or a libpq `key=value` string) with
/// tokio-postgres's own parser. A refusal is an [`Error::InvalidConfig`]
/// for `url` naming the problem, never a password (nor the URL, which may
/// hold one).
pub(crate) fn parse_url(url: &str) -> Result<tokio_postgres::Config> {
    let invalid = |reason: String| Error::invalid_config("url", reason);
    let mut normalized = None;
    // A URL of another scheme would otherwise be read as a broken
    // `key=value` string.
    if let Some(scheme) = scheme_of(url) {
        if !SCHEMES.contains(&scheme.to_ascii_lowercase().as_str()) {
            return Err(invalid(format!(
                "the scheme `{scheme}:` is not PostgreSQL's; expected {URL_FORMS}"
            )));
        }
        if !url[scheme.len() + 1..].starts_with("//") {
            return Err(invalid(format!("expected {URL_FORMS}")));
        }
        // tokio-postgres knows the schemes in lower case only.
        normalized = Some(format!(
            "{}{}",
            scheme.to_ascii_lowercase(),
            &url[scheme.len()..]
        ));
    } else if !url.contains('=') {
        return Err(invalid(format!(
            "neither a URL ({URL_FORMS}) nor a `key=value` connection string"
        )));
    }
    normalized
        .as_deref()
        .unwrap_or(url)
        .parse()
        .map_err(|e: tokio_postgres::Error| {
            invalid(format!(
                "not a valid PostgreSQL connection URL: {}",
                reason(url, &e)
            ))
        })
}

/// The scheme of `url`, if it starts with one (`name:` followed by `//`,
/// or a name of letters alone, as `postgres:`).
fn scheme_of(url: &str) -> Option<&str> {
    let (scheme, rest) = url.split_once(':')?;
    let valid = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    // `host=a:1` is a key=value string, not a URL of scheme `host=a`.
    (valid && (rest.starts_with("//") || !url.contains('='))).then_some(scheme)
}

/// What tokio-postgres found wrong, as far as it can be shown without a
/// password: its detail when it names an option or a position, else the
/// `url` crate's reading of a URL, else a generic reason.
fn reason(url: &str, err: &tokio_postgres::Error) -> String {
    let secrets = secrets_of(url);
    let detail = std::error::Error::source(err)
        .map(ToString::to_string)
        .and_then(|detail| safe_detail(&detail, &secrets));
    // The URL library's reading, for a URL (its errors never quote input).
    let url_reason = scheme_of(url)
        .and_then(|_| url::Url::parse(url).err())
        .map(|e| e.to_string());
    let mut text = detail.unwrap_or_else(|| "invalid connection string".to_owned());
    if let Some(url_reason) = url_reason {
        text = format!("{text} ({url_reason})");
    }
    // Never show what may be a password, whatever its source said (even if
    // a very short password makes this refuse an innocent message).
    if secrets.iter().any(|s| text.contains(s.as_str())) {
        "invalid connection string".to_owned()
    } else {
        text
    }
}

/// `detail` if tokio-postgres wrote it without quoting the input (an
/// option name it knows, a position), or if the only quoted input is an
/// option name outside every password.
fn safe_detail(detail: &str, secrets: &[String]) -> Option<String> {
    if detail.starts_with("invalid value for option `")
        || detail == "unexpected EOF"
        || detail.starts_with("unterminated ")
        || detail.starts_with("invalid utf-8")
    {
        return Some(detail.to_owned());
    }
    if let Some(at) = detail.find(" but got `") {
        // "unexpected character at byte N: expected `=`", not the character.
        return Some(detail[..at].to_owned());
    }
    let option = detail.strip_prefix("unknown option `")?.strip_suffix('`')?;
    let plain = !option.is_empty()
        && option
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_');
    (plain && !secrets.iter().any(|s| s.contains(option))).then(|| detail.to_owned())
}

/// Everything in `url` that may be a password: the URL's password and
/// query parameters naming one (read by the `url` crate, and the
/// user-info as written when that crate cannot read the URL, e.g. with
/// several hosts), and in any form the rest of the text after a
/// `password` key (to the closing quote when quoted).
fn secrets_of(url: &str) -> Vec<String> {
    let mut secrets = Vec::new();
    if let Ok(parsed) = url::Url::parse(url) {
        secrets.extend(parsed.password().map(str::to_owned));
        secrets.extend(
            parsed
                .query_pairs()
                .filter(|(key, _)| key.to_ascii_lowercase().contains("pass"))
                .map(|(_, value)| value.into_owned()),
        );
    }
    if let Some((_, rest)) = url.split_once("://") {
        let authority = rest.split(['/', '?']).next().unwrap_or_default();
        if let Some((userinfo, _)) = authority.rsplit_once('@') {
            secrets.extend(userinfo.split_once(':').map(|(_, p)| p.to_owned()));
        }
    }
    let lower = url.to_ascii_lowercase();
    let mut from = 0;
    while let Some(found) = lower[from..].find("password") {
        from += found + "password".len();
        let Some(value) = url[from..].trim_start().strip_prefix('=') else {
            continue;
        };
        let value = value.trim_start();
        secrets.push(match value.strip_prefix('\'') {
            Some(quoted) => quoted.split('\'').next().unwrap_or_default().to_owned(),
            None => value.to_owned(),
        });
    }
    secrets.retain(|s| !s.is_empty());
    secrets
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
    fn good_urls_and_connection_strings_parse() {
        for url in [
            "postgres://app@db.internal:5432/app",
            "postgresql://app:s3cret@db.internal/app?sslmode=disable",
            "POSTGRES://app@db/app",
            "postgresql://app@a:1,b:2/app",
            "postgresql:///app?host=/var/run/postgresql",
            "host=db user=app password=s3cret dbname=app",
            "host=db port=5433 password='with space'",
        ] {
            parse_url(url).unwrap_or_else(|e| panic!("{url}: {e}"));
        }
    }

    #[test]
    fn a_malformed_url_names_the_problem_but_never_the_password() {
        for (url, problem) in [
            (
                "postgres://u:secret@host:notaport/db",
                "invalid value for option `port`",
            ),
            (
                "postgresql://u:secret@db/app?sslmode=sometimes",
                "invalid value for option `sslmode`",
            ),
            (
                "postgresql://u:secret@db/app?sslmdoe=require",
                "unknown option `sslmdoe`",
            ),
            (
                "host=db password=secret port=abc",
                "invalid value for option `port`",
            ),
            ("host=db password=secret connect_timeout", "unexpected EOF"),
            ("host=db password='secret", "unterminated quoted"),
            (
                "mysql://u:secret@db/app",
                "the scheme `mysql:` is not PostgreSQL's",
            ),
            ("postgres:secret@db", "expected postgres://"),
            ("just some words secret", "neither a URL"),
        ] {
            let reason = refused(url);
            assert!(reason.contains(problem), "{url}: {reason}");
            assert!(!reason.contains("secret"), "{url}: {reason}");
        }
    }

    #[test]
    fn an_option_name_inside_a_password_is_not_repeated() {
        // Unquoted, the space ends the password: tokio-postgres reads
        // `cret` as an unknown option; it is shown as nothing but generic.
        let reason = refused("host=db password=se cret=1");
        assert!(!reason.contains("cret"), "{reason}");
        let reason = refused("postgresql://u:xsslmdoe@db/app?sslmdoe=require");
        assert!(!reason.contains("sslmdoe"), "{reason}");
    }

    #[test]
    fn secrets_are_found_in_every_form() {
        assert!(secrets_of("postgres://u:p%40ss@h/db").contains(&"p%40ss".to_owned()));
        assert!(secrets_of("postgres://u:p@ss@h:x/db").contains(&"p@ss".to_owned()));
        assert!(secrets_of("postgres://u@h/db?password=abc&x=1").contains(&"abc".to_owned()));
        assert!(secrets_of("host=h password = 'a b' user=u").contains(&"a b".to_owned()));
        assert!(secrets_of("host=h user=u").is_empty());
    }
}
