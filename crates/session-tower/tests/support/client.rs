//! The client side: the `Set-Cookie`s of a response, and a browser that
//! keeps cookies.

use std::sync::{Arc, Mutex};

use reqwest::header::{COOKIE, SET_COOKIE};

/// Every `Set-Cookie` of `res`.
pub(crate) fn set_cookies(res: &reqwest::Response) -> Vec<String> {
    res.headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

/// The `Max-Age` of a `Set-Cookie`, if it has one.
pub(crate) fn max_age(set_cookie: &str) -> Option<u64> {
    set_cookie
        .split("; ")
        .find_map(|a| a.strip_prefix("Max-Age="))
        .map(|v| v.parse().unwrap())
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
        let set_cookies = set_cookies(&res);
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
