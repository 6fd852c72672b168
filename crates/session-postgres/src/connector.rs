//! [`PostgresConnector`]: the `postgres:`/`postgresql:` row of the scheme
//! table, and the URL parsing behind [`PostgresStore::from_url`].

use std::sync::Arc;

use serde_json::Value;
use session_core::{Connector, Error, Result, StoreAdmin, StoreConfig, async_trait};

use crate::config::PostgresConfig;
use crate::migrations::dialect;
use crate::store::PostgresStore;
use crate::tls::TlsOptions;

const SCHEMES: &[&str] = &["postgres", "postgresql"];
const URL_FORMS: &str = "postgres://USER@HOST:PORT/DB, postgresql://USER@HOST:PORT/DB";

/// Opens a [`PostgresStore`] from a `postgres://` or `postgresql://` URL
/// (the whole libpq URL syntax: `user[:password]@host[:port][,host...]/db?options`),
/// with a [`PostgresConfig`] document (`null` for the defaults, its own
/// fields, or SQLSpec's `{"litestar": {...}}`).
///
/// `sslmode` and `sslrootcert` choose TLS as libpq does (see
/// [`PostgresStore::from_url`]); a root certificate file is read by
/// [`open`](Connector::open), never by
/// [`migration_sql`](Connector::migration_sql).
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
        parse_url(url, &config)?;
        Ok(Some(dialect(&config.table_name()?, &config).script()))
    }

    async fn open(&self, url: &str, config: &Value) -> Result<Arc<dyn StoreAdmin>> {
        let config = PostgresConfig::from_value(config.clone())?;
        Ok(Arc::new(PostgresStore::from_url(url, config)?))
    }
}

/// Parses a connection URL (or a libpq `key=value` string) and its TLS
/// options: `sslmode` and `sslrootcert` are taken out and resolved with
/// the config's `ssl_root_cert` by libpq's rules (see [`TlsOptions`]), the
/// rest is read by tokio-postgres's own parser, and the driver's mode is
/// set to match. No file is read.
///
/// A refusal is an [`Error::InvalidConfig`] for `url` naming the problem
/// (a bad `sslmode` value by name), never a password (nor the URL, which
/// may hold one).
pub(crate) fn parse_url(
    url: &str,
    config: &PostgresConfig,
) -> Result<(tokio_postgres::Config, TlsOptions)> {
    let (rest, sslmode, sslrootcert) = take_tls_params(url)?;
    let mut pg_config = parse_driver_url(&rest, url)?;
    let tls = TlsOptions::resolve(
        sslmode.as_deref(),
        sslrootcert.as_deref(),
        config.ssl_root_cert.as_deref(),
        pg_config.get_hosts(),
    )
    .map_err(|err| match err {
        // The value is quoted: never if it is (part of) a password.
        Error::InvalidConfig { field, reason }
            if secrets_of(url).iter().any(|s| reason.contains(s.as_str())) =>
        {
            Error::invalid_config(field, "invalid value for option `sslmode`")
        }
        other => other,
    })?;
    pg_config.ssl_mode(tls.driver_mode());
    Ok((pg_config, tls))
}

/// tokio-postgres's reading of `text` (`url` without its TLS options);
/// errors are worded from `url`, the text the user gave.
fn parse_driver_url(text: &str, url: &str) -> Result<tokio_postgres::Config> {
    let invalid = |reason: String| Error::invalid_config("url", reason);
    let mut normalized = None;
    // A URL of another scheme would otherwise be read as a broken
    // `key=value` string.
    if let Some(scheme) = scheme_of(text) {
        if !SCHEMES.contains(&scheme.to_ascii_lowercase().as_str()) {
            return Err(invalid(format!(
                "the scheme `{scheme}:` is not PostgreSQL's; expected {URL_FORMS}"
            )));
        }
        if !text[scheme.len() + 1..].starts_with("//") {
            return Err(invalid(format!("expected {URL_FORMS}")));
        }
        // tokio-postgres knows the schemes in lower case only.
        normalized = Some(format!(
            "{}{}",
            scheme.to_ascii_lowercase(),
            &text[scheme.len()..]
        ));
    } else if !text.contains('=') {
        return Err(invalid(format!(
            "neither a URL ({URL_FORMS}) nor a `key=value` connection string"
        )));
    }
    normalized
        .as_deref()
        .unwrap_or(text)
        .parse()
        .map_err(|e: tokio_postgres::Error| {
            invalid(format!(
                "not a valid PostgreSQL connection URL: {}",
                reason(url, &e)
            ))
        })
}

/// The options tokio-postgres does not know and [`TlsOptions`] reads.
const TLS_PARAMS: [&str; 2] = ["sslmode", "sslrootcert"];

/// `url` without its `sslmode` and `sslrootcert` options, and their values
/// (the last of each, as libpq), decoded: percent-decoded in a URL's
/// query, unquoted and unescaped in a `key=value` string. Everything else
/// is left exactly as written, for tokio-postgres to read.
fn take_tls_params(url: &str) -> Result<(String, Option<String>, Option<String>)> {
    let mut found: [Option<String>; 2] = [None, None];
    let mut record = |key: &str, value: String| match TLS_PARAMS.iter().position(|p| *p == key) {
        Some(i) => {
            found[i] = Some(value);
            true
        }
        None => false,
    };
    let rest = match url.find("://").filter(|_| scheme_of(url).is_some()) {
        Some(scheme_end) => {
            // As tokio-postgres reads a URL: the user-info ends at the
            // first `@`, the query starts at the next `?`.
            let authority = scheme_end + 3;
            let after_user = url[authority..]
                .find('@')
                .map_or(authority, |at| authority + at + 1);
            match url[after_user..].find('?') {
                None => url.to_owned(),
                Some(q) => {
                    let query_start = after_user + q;
                    let mut kept = Vec::new();
                    for pair in url[query_start + 1..].split('&') {
                        let taken = match pair.split_once('=') {
                            Some((key, value)) => {
                                let key =
                                    percent_encoding::percent_decode_str(key).decode_utf8_lossy();
                                if TLS_PARAMS.contains(&key.as_ref()) {
                                    let value = percent_encoding::percent_decode_str(value)
                                        .decode_utf8()
                                        .map_err(|_| {
                                            Error::invalid_config(
                                                "url",
                                                format!("invalid utf-8 in option `{key}`"),
                                            )
                                        })?
                                        .into_owned();
                                    record(&key, value)
                                } else {
                                    false
                                }
                            }
                            None => false,
                        };
                        if !taken {
                            kept.push(pair);
                        }
                    }
                    let head = &url[..query_start];
                    if kept.is_empty() {
                        head.to_owned()
                    } else {
                        format!("{head}?{}", kept.join("&"))
                    }
                }
            }
        }
        None => {
            let mut rest = String::with_capacity(url.len());
            let mut copied_to = 0;
            for (key, value, span) in keyword_params(url) {
                if record(key, value) {
                    rest.push_str(&url[copied_to..span.start]);
                    copied_to = span.end;
                }
            }
            rest.push_str(&url[copied_to..]);
            rest
        }
    };
    let [sslmode, sslrootcert] = found;
    Ok((rest, sslmode, sslrootcert))
}

/// The `key = value` options of a libpq connection string, each with its
/// unquoted, unescaped value and the byte range it spans, read as
/// tokio-postgres does; the reading stops at the first malformed option
/// (tokio-postgres then reports it).
fn keyword_params(text: &str) -> Vec<(&str, String, std::ops::Range<usize>)> {
    let mut params = Vec::new();
    let mut chars = text.char_indices().peekable();
    let skip_ws = |chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>| {
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
    };
    loop {
        skip_ws(&mut chars);
        let Some(&(start, _)) = chars.peek() else {
            break;
        };
        while chars
            .next_if(|(_, c)| !c.is_whitespace() && *c != '=')
            .is_some()
        {}
        let key_end = chars.peek().map_or(text.len(), |(i, _)| *i);
        let key = &text[start..key_end];
        skip_ws(&mut chars);
        if key.is_empty() || chars.next_if(|(_, c)| *c == '=').is_none() {
            break;
        }
        skip_ws(&mut chars);
        let mut value = String::new();
        if chars.next_if(|(_, c)| *c == '\'').is_some() {
            let mut closed = false;
            while let Some((_, c)) = chars.next() {
                match c {
                    '\'' => {
                        closed = true;
                        break;
                    }
                    '\\' => value.extend(chars.next().map(|(_, c)| c)),
                    c => value.push(c),
                }
            }
            if !closed {
                break;
            }
        } else {
            while let Some((_, c)) = chars.next_if(|(_, c)| !c.is_whitespace()) {
                if c == '\\' {
                    value.extend(chars.next().map(|(_, c)| c));
                } else {
                    value.push(c);
                }
            }
            if value.is_empty() {
                break;
            }
        }
        let end = chars.peek().map_or(text.len(), |(i, _)| *i);
        params.push((key, value, start..end));
    }
    params
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
        match parse_url(url, &PostgresConfig::default()) {
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
            "postgresql://app@db/app?sslmode=verify-full",
            "postgresql://app@db/app?sslmode=verify-ca&sslrootcert=/etc/ssl/root.crt",
            "postgresql://app@db/app?sslrootcert=system",
            "host=db sslmode=verify-ca sslrootcert='/a b/root.crt' user=app",
        ] {
            parse_url(url, &PostgresConfig::default()).unwrap_or_else(|e| panic!("{url}: {e}"));
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
    #[test]
    fn tls_options_are_taken_out_of_both_forms() {
        let (rest, mode, root) = take_tls_params(
            "postgresql://u:p%3Fw@db:5432/app?application_name=x&sslmode=verify-ca&sslrootcert=%2Fetc%2Fca%20dir%2Froot.crt&connect_timeout=3",
        )
        .unwrap();
        assert_eq!(
            rest,
            "postgresql://u:p%3Fw@db:5432/app?application_name=x&connect_timeout=3"
        );
        assert_eq!(mode.as_deref(), Some("verify-ca"));
        assert_eq!(root.as_deref(), Some("/etc/ca dir/root.crt"));
        // Alone in the query: the `?` goes too; the last value wins.
        let (rest, mode, _) =
            take_tls_params("postgres://db/app?sslmode=disable&sslmode=verify-full").unwrap();
        assert_eq!(
            (rest.as_str(), mode.as_deref()),
            ("postgres://db/app", Some("verify-full"))
        );
        // A `?` in the password is not the query.
        let (rest, mode, _) = take_tls_params("postgres://u:a?b@db/app").unwrap();
        assert_eq!((rest.as_str(), mode), ("postgres://u:a?b@db/app", None));

        let (rest, mode, root) = take_tls_params(
            "host=db sslmode = require  sslrootcert='/a \\'b\\' c/root.crt' user=app",
        )
        .unwrap();
        assert_eq!(rest, "host=db    user=app");
        assert_eq!(mode.as_deref(), Some("require"));
        assert_eq!(root.as_deref(), Some("/a 'b' c/root.crt"));
        // A malformed string is left to tokio-postgres from where it breaks.
        let (rest, mode, _) = take_tls_params("sslmode=verify-full host='db").unwrap();
        assert_eq!(
            (rest.as_str(), mode.as_deref()),
            (" host='db", Some("verify-full"))
        );
    }

    #[test]
    fn the_driver_gets_the_nearest_mode_it_knows() {
        use tokio_postgres::config::SslMode as Driver;
        let config = PostgresConfig::default();
        for (url, expected) in [
            ("postgresql://db/app", Driver::Prefer),
            ("postgresql://db/app?sslmode=disable", Driver::Disable),
            ("postgresql://db/app?sslmode=require", Driver::Require),
            (
                "postgresql://db/app?sslmode=verify-ca&sslrootcert=/x.crt",
                Driver::Require,
            ),
            ("host=db sslmode=verify-full", Driver::Require),
            // No TLS on Unix sockets, whatever the mode (as libpq).
            (
                "postgresql:///app?host=/run/postgresql&sslmode=require",
                Driver::Disable,
            ),
        ] {
            let (pg, _) = parse_url(url, &config).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!(pg.get_ssl_mode(), expected, "{url}");
        }
    }

    #[test]
    fn a_bad_sslmode_is_named_but_never_a_password() {
        let reason = refused("postgresql://u:pw@db/app?sslmode=verify_full");
        assert!(
            reason.contains("invalid value for option `sslmode`: `verify_full`"),
            "{reason}"
        );
        // The value is the password: it is not repeated.
        let reason = refused("postgresql://u:sometimes@db/app?sslmode=sometimes");
        assert!(
            reason.contains("invalid value for option `sslmode`"),
            "{reason}"
        );
        assert!(!reason.contains("sometimes"), "{reason}");
        let reason = refused("host=db sslmode=verify-ca");
        assert!(reason.contains("needs a root certificate"), "{reason}");
    }
}
