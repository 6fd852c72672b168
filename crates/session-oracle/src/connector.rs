//! [`OracleConnector`]: the `oracle:` row of the scheme table.

use std::sync::Arc;

use async_trait::async_trait;
use percent_encoding::percent_decode_str;
use serde_json::Value;
use session_core::{Connector, Error, Result, StoreAdmin, StoreConfig};
use url::Url;

use crate::config::{Credentials, OracleConfig};
use crate::migrations;
use crate::store::OracleStore;

/// The field URL errors name (the CLI's `--database-url`).
const FIELD: &str = "database_url";

/// The URL form, for help and error messages.
const FORM: &str = "oracle://USER@HOST:PORT/SERVICE";

/// Opens an [`OracleStore`] from `oracle://USER@HOST:PORT/SERVICE` (or
/// `oracle://USER@TNS_ALIAS`), the password from the `ORACLE_PASSWORD`
/// environment variable; a password in the URL is refused. `config` is an
/// [`OracleConfig`] document (or SQLSpec's `{"litestar": {...}}`).
///
/// [`open`](Connector::open) connects once before it returns, so a missing
/// client library (DPI-1047) or an unreachable database is reported there.
/// [`migration_sql`](Connector::migration_sql) needs neither a connection
/// nor the password.
///
/// ```
/// use session_core::Connector;
/// use session_oracle::OracleConnector;
///
/// let config = serde_json::json!({"table": "app_sessions", "in_memory": true});
/// let sql = OracleConnector
///     .migration_sql("oracle://app@db.internal:1521/FREEPDB1", &config)
///     .unwrap()
///     .unwrap();
/// assert!(sql.contains("CREATE TABLE app_sessions_migrations ("));
/// assert!(sql.contains(") INMEMORY;"));
///
/// let err = OracleConnector
///     .migration_sql("oracle://app:s3cret@db.internal:1521/FREEPDB1", &config)
///     .unwrap_err();
/// assert!(err.to_string().contains("ORACLE_PASSWORD"), "{err}");
/// assert!(!err.to_string().contains("s3cret"));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct OracleConnector;

#[async_trait]
impl Connector for OracleConnector {
    fn schemes(&self) -> &'static [&'static str] {
        &["oracle"]
    }

    fn url_forms(&self) -> &'static str {
        "oracle://USER@HOST:PORT/SERVICE (with ORACLE_PASSWORD set)"
    }

    fn migration_sql(&self, url: &str, config: &Value) -> Result<Option<String>> {
        parse(url)?;
        let config = OracleConfig::from_value(config.clone())?;
        Ok(Some(
            migrations::dialect(&config.table_name()?, config.in_memory).script(),
        ))
    }

    async fn open(&self, url: &str, config: &Value) -> Result<Arc<dyn StoreAdmin>> {
        let config = OracleConfig::from_value(config.clone())?;
        let credentials = Credentials::from_url(url)?;
        Ok(Arc::new(OracleStore::connect(credentials, config).await?))
    }
}

/// The user and connect string of an `oracle:` URL.
#[derive(Debug, PartialEq, Eq)]
struct Target {
    user: String,
    connect_string: String,
}

fn invalid(reason: impl Into<String>) -> Error {
    Error::invalid_config(FIELD, reason)
}

/// Parses `oracle://USER@HOST[:PORT][/SERVICE]`. No error repeats the URL:
/// it may hold a password.
fn parse(url: &str) -> Result<Target> {
    let parsed = Url::parse(url).map_err(|e| invalid(format!("not a URL ({e}); use {FORM}")))?;
    if !parsed.scheme().eq_ignore_ascii_case("oracle") {
        return Err(invalid(format!(
            "the scheme `{}:` is not oracle:; use {FORM}",
            parsed.scheme()
        )));
    }
    if parsed.password().is_some() {
        return Err(invalid(format!(
            "the oracle:// URL holds a password; put it in the ORACLE_PASSWORD environment \
             variable instead ({FORM})"
        )));
    }
    let user = percent_decode_str(parsed.username())
        .decode_utf8()
        .map_err(|_| invalid("the user name of the oracle:// URL is not UTF-8"))?;
    if user.is_empty() {
        return Err(invalid(format!("an oracle:// URL needs a user: {FORM}")));
    }
    let host = match parsed.host_str() {
        Some(host) if !host.is_empty() => host,
        _ => {
            return Err(invalid(format!(
                "an oracle:// URL needs a user and an address: {FORM}"
            )));
        }
    };
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(invalid(format!(
            "an oracle:// URL takes no `?` or `#` part: {FORM}; for other connect options \
             use a TNS alias (oracle://USER@ALIAS) or Credentials::new with a connect descriptor"
        )));
    }
    let mut connect_string = host.to_owned();
    if let Some(port) = parsed.port() {
        connect_string.push_str(&format!(":{port}"));
    }
    let path = parsed.path();
    if !path.is_empty() && path != "/" {
        let service = percent_decode_str(path)
            .decode_utf8()
            .map_err(|_| invalid("the service name of the oracle:// URL is not UTF-8"))?;
        connect_string.push_str(&service);
    }
    Ok(Target {
        user: user.into_owned(),
        connect_string,
    })
}

/// The [`Credentials`] of `url`, the password from `password` (the
/// `ORACLE_PASSWORD` variable outside tests).
pub(crate) fn credentials(
    url: &str,
    password: impl FnOnce() -> Option<String>,
) -> Result<Credentials> {
    let target = parse(url)?;
    let password = password().ok_or_else(|| {
        Error::invalid_config(
            "ORACLE_PASSWORD",
            "not set; this environment variable holds the password of the oracle:// URL's user",
        )
    })?;
    Ok(Credentials::new(
        target.user,
        password,
        target.connect_string,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(user: &str, connect_string: &str) -> Target {
        Target {
            user: user.into(),
            connect_string: connect_string.into(),
        }
    }

    fn field_and_text(err: Error) -> (String, String) {
        let text = err.to_string();
        match err {
            Error::InvalidConfig { field, .. } => (field, text),
            other => panic!("expected InvalidConfig, got {other:?}"),
        }
    }

    #[test]
    fn urls_give_the_user_and_the_connect_string() {
        assert_eq!(
            parse("oracle://app@db:1521/FREEPDB1").unwrap(),
            target("app", "db:1521/FREEPDB1")
        );
        assert_eq!(
            parse("ORACLE://app@db.internal/FREEPDB1").unwrap(),
            target("app", "db.internal/FREEPDB1")
        );
        // A TNS alias, and a percent-encoded common user.
        assert_eq!(parse("oracle://app@MYDB").unwrap(), target("app", "MYDB"));
        assert_eq!(
            parse("oracle://c%23%23admin@db:1521/CDB1").unwrap(),
            target("c##admin", "db:1521/CDB1")
        );
    }

    #[test]
    fn oracle_urls_keep_the_password_out() {
        // Moved from the CLI's `oracle_options` tests.
        let (field, text) = field_and_text(parse("oracle://app:pw@db:1521/FREEPDB1").unwrap_err());
        assert_eq!(field, "database_url");
        assert!(text.contains("ORACLE_PASSWORD"), "{text}");
        assert!(!text.contains("pw@"), "{text}");
        let (_, text) =
            field_and_text(parse("oracle://app:s3cr%40t@db:1521/FREEPDB1").unwrap_err());
        assert!(!text.contains("s3cr"), "{text}");
    }

    #[test]
    fn malformed_urls_name_the_problem_and_never_the_password() {
        for (url, expected) in [
            ("oracle://db:1521/FREEPDB1", "needs a user"),
            ("oracle://app@/FREEPDB1", "not a URL"),
            ("oracle:app@db", "needs a user"),
            ("oracle://app@db:99999/s3cret", "invalid port number"),
            ("oracle://app@db:1521/FREEPDB1?password=s3cret", "no `?`"),
            ("oracle://app@db:1521/FREEPDB1#s3cret", "no `?` or `#`"),
            ("postgres://app@db/s3cret", "not oracle:"),
            ("not a url s3cret", "not a URL"),
            ("", "not a URL"),
        ] {
            let (field, text) = field_and_text(parse(url).unwrap_err());
            assert_eq!(field, "database_url", "{url}");
            assert!(text.contains(expected), "{url}: {text}");
            assert!(!text.contains("s3cret"), "{url}: {text}");
            assert!(text.contains(FORM), "{url}: {text}");
        }
    }

    #[test]
    fn the_password_comes_from_oracle_password() {
        let found = credentials("oracle://app@db:1521/FREEPDB1", || Some("pw".into())).unwrap();
        assert_eq!(found.user(), "app");
        assert_eq!(found.password, "pw");
        assert_eq!(found.connect_string(), "db:1521/FREEPDB1");
        let (field, text) =
            field_and_text(credentials("oracle://app@db:1521/FREEPDB1", || None).unwrap_err());
        assert_eq!(field, "ORACLE_PASSWORD");
        assert!(text.contains("not set"), "{text}");
        // The URL is checked first: a password in it is refused even when
        // ORACLE_PASSWORD is set.
        let (field, _) =
            field_and_text(credentials("oracle://app:pw@db/s", || Some("pw".into())).unwrap_err());
        assert_eq!(field, "database_url");
    }

    #[test]
    fn migration_sql_needs_no_connection_and_no_password() {
        let sql = OracleConnector
            .migration_sql("oracle://app@db:1521/FREEPDB1", &Value::Null)
            .unwrap()
            .unwrap();
        assert!(sql.starts_with(
            "-- migration tracking table\nCREATE TABLE litestar_session_migrations ("
        ));
        let seed = serde_json::json!({"litestar": {"session_table": "app_sessions"}});
        let sql = OracleConnector
            .migration_sql("oracle://app@db/FREEPDB1", &seed)
            .unwrap()
            .unwrap();
        assert!(
            sql.contains("CREATE INDEX idx_app_sessions_expires_at ON app_sessions(expires_at);")
        );
        // A bad URL or a bad config is refused all the same.
        assert!(
            OracleConnector
                .migration_sql("oracle://db/FREEPDB1", &Value::Null)
                .is_err()
        );
        let err = OracleConnector
            .migration_sql("oracle://app@db/x", &serde_json::json!({"pool_max": 3}))
            .unwrap_err();
        assert!(err.to_string().contains("pool_max"), "{err}");
        assert_eq!(OracleConnector.schemes(), ["oracle"]);
        assert!(OracleConnector.url_forms().contains("ORACLE_PASSWORD"));
    }
}
