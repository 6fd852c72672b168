//! [`FileConnector`]: opens a [`FileStore`] from a `file:` URL.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;
use session_core::{Connector, Error, Result, StoreAdmin, StoreConfig, async_trait};

use crate::config::FileConfig;
use crate::store::{BACKEND, FileStore};

/// The URL forms [`FileConnector`] accepts, for help and errors.
const URL_FORMS: &str = "file:///ABSOLUTE/DIR";

/// Opens a [`FileStore`] from a URL: the `file` entry of a scheme table.
///
/// `file:///var/lib/app/sessions` names the directory
/// `/var/lib/app/sessions` (percent-escapes decoded: `file:///tmp/my%20dir`
/// is `/tmp/my dir`); `file://localhost/...` is the same. The URL must be
/// absolute: `file:relative`, `file:/dir`, another host
/// (`file://otherhost/x`), a user, a query, a fragment or an empty path
/// are refused with an [`Error::InvalidConfig`] naming `url`. Settings go
/// in the configuration document, a [`FileConfig`].
///
/// ```
/// use serde_json::json;
/// use session_core::{Bytes, Connector, Store};
/// use session_file::FileConnector;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> session_core::Result<()> {
/// # let dir = std::env::temp_dir().join(format!("session-file-connector-doc-{}", std::process::id()));
/// let url = format!("file://{}", dir.display());
/// assert_eq!(FileConnector.migration_sql(&url, &json!(null))?, None); // no schema
/// let admin = FileConnector.open(&url, &json!({"fsync": true})).await?;
/// assert_eq!(admin.describe(), format!("file store at {}", dir.display()));
/// admin.set("k", Bytes::from_static(b"v"), None).await?;
/// assert!(admin.exists("k").await?);
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct FileConnector;

#[async_trait]
impl Connector for FileConnector {
    fn schemes(&self) -> &'static [&'static str] {
        &["file"]
    }

    fn url_forms(&self) -> &'static str {
        URL_FORMS
    }

    /// `None`: a directory has no schema. The URL and configuration are
    /// checked; nothing is created.
    fn migration_sql(&self, url: &str, config: &Value) -> Result<Option<String>> {
        parse_url(url)?;
        FileConfig::from_value(config.clone())?;
        Ok(None)
    }

    /// Opens the store (on tokio's blocking pool: opening creates or
    /// probes the directory).
    async fn open(&self, url: &str, config: &Value) -> Result<Arc<dyn StoreAdmin>> {
        let dir = parse_url(url)?;
        let config = FileConfig::from_value(config.clone())?;
        let store = tokio::runtime::Handle::try_current()
            .map_err(|e| Error::backend(BACKEND, "open: must be called within a tokio runtime", e))?
            .spawn_blocking(move || FileStore::open_with(dir, config))
            .await
            .map_err(|e| Error::backend(BACKEND, "open: the blocking task failed", e))??;
        Ok(Arc::new(store))
    }
}

/// The directory a `file:` URL names; every refusal is an
/// [`Error::InvalidConfig`] of `url`.
pub(crate) fn parse_url(url: &str) -> Result<PathBuf> {
    let refuse = |reason: String| Err(Error::invalid_config("url", reason));
    let has_scheme = url
        .get(..5)
        .is_some_and(|s| s.eq_ignore_ascii_case("file:"));
    if !has_scheme {
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
        return refuse(format!(
            "a file store URL starts with `file:`, this one has {shown}; use {URL_FORMS}"
        ));
    }
    if !url[5..].starts_with("//") {
        return refuse(format!(
            "a file store URL names an absolute directory as {URL_FORMS} \
             (`file:DIR` and `file:/DIR` are not accepted)"
        ));
    }
    let authority = url[7..].split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return refuse(format!(
            "a file store URL takes no user or password; use {URL_FORMS}"
        ));
    }
    let parsed = match url::Url::parse(url) {
        Ok(parsed) => parsed,
        Err(e) => return refuse(format!("not a valid URL ({e}); use {URL_FORMS}")),
    };
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return refuse(format!(
            "a file store URL takes no user or password; use {URL_FORMS}"
        ));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return refuse(
            "a file store URL takes no query or fragment; settings go in FileConfig \
             (e.g. `fsync = true`)"
                .to_owned(),
        );
    }
    match parsed.host_str() {
        None | Some("") | Some("localhost") => {}
        Some(host) => {
            return refuse(format!(
                "the host `{host}` is not this machine: a file store is a local directory, \
                 {URL_FORMS} (three slashes)"
            ));
        }
    }
    let path = match parsed.to_file_path() {
        Ok(path) => path,
        Err(()) => return refuse(format!("not a local directory path; use {URL_FORMS}")),
    };
    if path.parent().is_none() || path == Path::new("/") {
        return refuse(format!(
            "the directory path is empty (or the root directory); use {URL_FORMS}"
        ));
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_urls_parse() {
        let ok = |url: &str| parse_url(url).unwrap();
        assert_eq!(
            ok("file:///var/lib/app/sessions"),
            Path::new("/var/lib/app/sessions")
        );
        assert_eq!(
            ok("FILE:///var/lib/app/sessions/"),
            Path::new("/var/lib/app/sessions/")
        );
        assert_eq!(ok("file://localhost/srv/s"), Path::new("/srv/s"));
        assert_eq!(ok("file:///tmp/my%20dir"), Path::new("/tmp/my dir"));
    }

    #[test]
    fn odd_urls_are_refused_naming_url() {
        for (url, problem) in [
            ("file://otherhost/x", "the host `otherhost`"),
            ("file:relative", "absolute directory"),
            ("file:/abs", "absolute directory"),
            ("file:", "absolute directory"),
            ("file://", "empty"),
            ("file:///", "empty"),
            ("file:///x?fsync=1", "no query"),
            ("file:///x#frag", "no query"),
            ("file://user@localhost/x", "no user or password"),
            ("file://user:s3cret@localhost/x", "no user or password"),
            ("sqlite:///x", "the scheme `sqlite:`"),
            ("/var/lib/sessions", "no scheme"),
            ("", "no scheme"),
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
    }
}
