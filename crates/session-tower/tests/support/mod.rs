//! What the issue-16 tests share: a store that counts its writes, a server
//! on a loopback port, and a client that shows every cookie.

#![allow(dead_code)] // each test file uses its own part

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use bytes::Bytes;
use reqwest::header::{COOKIE, SET_COOKIE};
use session_core::{MemoryStore, Result, Store, async_trait};

/// A [`MemoryStore`] that counts writes: `set`, `create`, `update`,
/// `compare_and_set`, `delete`, `delete_live`, and every `get` that renews.
#[derive(Default)]
pub(crate) struct CountingStore {
    pub(crate) inner: MemoryStore,
    writes: AtomicUsize,
    reads: AtomicUsize,
}

impl CountingStore {
    pub(crate) fn writes(&self) -> usize {
        self.writes.load(Ordering::SeqCst)
    }
    pub(crate) fn reads(&self) -> usize {
        self.reads.load(Ordering::SeqCst)
    }
    fn write(&self) {
        self.writes.fetch_add(1, Ordering::SeqCst);
    }
    fn read(&self) {
        self.reads.fetch_add(1, Ordering::SeqCst);
    }
}

#[async_trait]
impl Store for CountingStore {
    async fn get(&self, key: &str, renew_for: Option<Duration>) -> Result<Option<Bytes>> {
        if session_core::non_zero(renew_for).is_some() {
            self.write();
        } else {
            self.read();
        }
        self.inner.get(key, renew_for).await
    }
    async fn set(&self, key: &str, value: Bytes, expires_in: Option<Duration>) -> Result<()> {
        self.write();
        self.inner.set(key, value, expires_in).await
    }
    async fn delete(&self, key: &str) -> Result<()> {
        self.write();
        self.inner.delete(key).await
    }
    async fn delete_all(&self) -> Result<()> {
        self.write();
        self.inner.delete_all().await
    }
    async fn exists(&self, key: &str) -> Result<bool> {
        self.read();
        self.inner.exists(key).await
    }
    async fn expires_in(&self, key: &str) -> Result<Option<Duration>> {
        self.read();
        self.inner.expires_in(key).await
    }
    async fn delete_expired(&self) -> Result<u64> {
        self.write();
        self.inner.delete_expired().await
    }
    async fn create(&self, key: &str, value: Bytes, expires_in: Option<Duration>) -> Result<bool> {
        self.write();
        self.inner.create(key, value, expires_in).await
    }
    async fn update(&self, key: &str, value: Bytes, expires_in: Option<Duration>) -> Result<bool> {
        self.write();
        self.inner.update(key, value, expires_in).await
    }
    async fn compare_and_set(
        &self,
        key: &str,
        expected: Bytes,
        value: Bytes,
        expires_in: Option<Duration>,
    ) -> Result<bool> {
        self.write();
        self.inner
            .compare_and_set(key, expected, value, expires_in)
            .await
    }
    async fn delete_live(&self, key: &str) -> Result<bool> {
        self.write();
        self.inner.delete_live(key).await
    }
}

/// Serves `app` on a free loopback port; returns its base URL.
pub(crate) async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

/// One response, read whole.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) set_cookies: Vec<String>,
    pub(crate) headers: reqwest::header::HeaderMap,
    pub(crate) body: String,
}

impl Reply {
    /// The one `Set-Cookie` of the response.
    pub(crate) fn cookie(&self) -> &str {
        assert_eq!(self.set_cookies.len(), 1, "{self:?}");
        &self.set_cookies[0]
    }
    /// The values of header `name`.
    pub(crate) fn header(&self, name: &str) -> Vec<String> {
        self.headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    }
}

/// A browser of one site: keeps the cookies it is sent (`Max-Age=0`
/// removes one), whatever their `Secure` flag, and shows every
/// `Set-Cookie`.
#[derive(Clone, Default)]
pub(crate) struct Browser {
    pub(crate) base: String,
    pub(crate) jar: Arc<Mutex<Vec<(String, String)>>>,
}

impl Browser {
    pub(crate) fn new(base: &str) -> Self {
        Browser {
            base: base.to_owned(),
            jar: Arc::default(),
        }
    }

    pub(crate) fn cookie_header(&self) -> String {
        let jar = self.jar.lock().unwrap();
        jar.iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// The value of the cookie `name`, if held.
    pub(crate) fn get(&self, name: &str) -> Option<String> {
        let jar = self.jar.lock().unwrap();
        jar.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone())
    }

    /// Replaces the jar's cookies with one `name=value`.
    pub(crate) fn set(&self, name: &str, value: &str) {
        *self.jar.lock().unwrap() = vec![(name.to_owned(), value.to_owned())];
    }

    pub(crate) async fn send(&self, method: &str, path: &str) -> Reply {
        let client = reqwest::Client::new();
        let url = format!("{}{path}", self.base);
        let mut req = match method {
            "GET" => client.get(url),
            _ => client.post(url),
        };
        let cookies = self.cookie_header();
        if !cookies.is_empty() {
            req = req.header(COOKIE, cookies);
        }
        let res = req.send().await.unwrap();
        let set_cookies: Vec<String> = res
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        {
            let mut jar = self.jar.lock().unwrap();
            for cookie in &set_cookies {
                let pair = cookie.split(';').next().unwrap();
                let (name, value) = pair.split_once('=').unwrap();
                jar.retain(|(n, _)| n != name);
                if !cookie.contains("Max-Age=0") {
                    jar.push((name.to_owned(), value.to_owned()));
                }
            }
        }
        Reply {
            status: res.status().as_u16(),
            set_cookies,
            headers: res.headers().clone(),
            body: res.text().await.unwrap(),
        }
    }
}

/// The `Max-Age` of a `Set-Cookie`, if it has one.
pub(crate) fn max_age(set_cookie: &str) -> Option<u64> {
    set_cookie
        .split("; ")
        .find_map(|a| a.strip_prefix("Max-Age="))
        .map(|v| v.parse().unwrap())
}
