//! The request plumbing every driver function shares: a request built step by step ([`Req`])
//! and the answer read in full ([`Reply`]), so tests never touch reqwest themselves.

use std::sync::OnceLock;
use std::time::Duration;

use reqwest::header::HeaderMap;
use serde_json::Value;

use crate::support::{Server, admin_token, http, root, tls_trusting};

/// One HTTP request to a server, not yet sent. Owned, so it can be moved into a task.
pub struct Req {
    method: reqwest::Method,
    url: String,
    follow_redirects: bool,
    parts: Vec<Part>,
}

enum Part {
    Header(String, String),
    Bearer(String),
    Basic(String, String),
    Json(Value),
    Form(Vec<(String, String)>),
    Body(String),
}

impl Server {
    /// `GET path` (or a full URL, such as an enrolment link or an authorization request).
    pub fn get(&self, path: &str) -> Req {
        self.request(reqwest::Method::GET, path)
    }

    /// `POST path`.
    pub fn post(&self, path: &str) -> Req {
        self.request(reqwest::Method::POST, path)
    }

    /// `DELETE path`.
    pub fn delete(&self, path: &str) -> Req {
        self.request(reqwest::Method::DELETE, path)
    }

    fn request(&self, method: reqwest::Method, path: &str) -> Req {
        let url = if path.starts_with("http://") || path.starts_with("https://") {
            path.to_owned()
        } else {
            self.at(path)
        };
        Req {
            method,
            url,
            follow_redirects: true,
            parts: Vec::new(),
        }
    }
}

impl Req {
    /// With the development admin token as bearer.
    pub fn admin(self) -> Self {
        self.bearer(&admin_token())
    }

    pub fn bearer(mut self, token: &str) -> Self {
        self.parts.push(Part::Bearer(token.to_owned()));
        self
    }

    /// With HTTP Basic client authentication.
    pub fn basic(mut self, id: &str, secret: &str) -> Self {
        self.parts
            .push(Part::Basic(id.to_owned(), secret.to_owned()));
        self
    }

    /// With a `Cookie` header (a `name=value` pair).
    pub fn cookie(self, cookie: &str) -> Self {
        self.header("cookie", cookie)
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.parts
            .push(Part::Header(name.to_owned(), value.to_owned()));
        self
    }

    /// With this `Authorization` header, or with none.
    pub fn authorization(self, value: Option<&str>) -> Self {
        match value {
            Some(v) => self.header("authorization", v),
            None => self,
        }
    }

    pub fn json(mut self, body: &Value) -> Self {
        self.parts.push(Part::Json(body.clone()));
        self
    }

    pub fn form(mut self, fields: &[(&str, &str)]) -> Self {
        let fields = fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        self.parts.push(Part::Form(fields));
        self
    }

    /// A raw body (with whatever `content-type` the test sets, or none).
    pub fn body(mut self, body: impl Into<String>) -> Self {
        self.parts.push(Part::Body(body.into()));
        self
    }

    /// Answers are taken as they come, redirects included (to see `Location`).
    pub fn no_redirect(mut self) -> Self {
        self.follow_redirects = false;
        self
    }

    /// Sends and returns the status, `Content-Type` and raw body (for binary answers).
    pub async fn send_bytes(self) -> (u16, String, Vec<u8>) {
        let resp = self.build().send().await.unwrap();
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        (status, content_type, resp.bytes().await.unwrap().to_vec())
    }

    /// Sends on a fresh connection and reads the whole answer.
    pub async fn send(self) -> Reply {
        let resp = self.build().send().await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        Reply::new(status, headers, resp.text().await.unwrap())
    }

    /// The reqwest request, on a fresh client.
    fn build(self) -> reqwest::RequestBuilder {
        let client = client_for(&self.url, self.follow_redirects);
        let mut req = client.request(self.method, &self.url);
        for part in self.parts {
            req = match part {
                Part::Header(k, v) => req.header(k, v),
                Part::Bearer(t) => req.bearer_auth(t),
                Part::Basic(id, secret) => req.basic_auth(id, Some(secret)),
                Part::Json(v) => req.json(&v),
                Part::Form(f) => req.form(&f),
                Part::Body(b) => req.body(b),
            };
        }
        req
    }
}

/// Plain HTTP as the tests always spoke it; HTTPS trusting only the development CA.
fn client_for(url: &str, follow_redirects: bool) -> reqwest::Client {
    // Installs the process's crypto provider, which plain-HTTP clients need too.
    let _ = http();
    let mut builder = reqwest::Client::builder().timeout(Duration::from_secs(30));
    if !follow_redirects {
        builder = builder.redirect(reqwest::redirect::Policy::none());
    }
    if url.starts_with("https://") {
        builder = builder.use_preconfigured_tls(tls_trusting(&root().join("keys-dev/ca.pem")));
    }
    builder.build().unwrap()
}

/// A whole answer: status, headers and body text; the body is parsed as JSON on demand.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
    json: OnceLock<Value>,
}

impl Reply {
    pub fn new(status: u16, headers: HeaderMap, text: String) -> Self {
        Self {
            status,
            headers,
            text,
            json: OnceLock::new(),
        }
    }

    /// The body as JSON; panics (showing the body) if it is not JSON.
    pub fn json(&self) -> &Value {
        self.json.get_or_init(|| {
            serde_json::from_str(&self.text)
                .unwrap_or_else(|e| panic!("not JSON ({e}), status {}: {}", self.status, self.text))
        })
    }

    /// A header that must be present, as text.
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header: {self:?}"))
            .to_str()
            .unwrap()
    }

    /// Where a redirect points.
    pub fn location(&self) -> &str {
        self.header("location")
    }

    /// The `name=value` pair of the `Set-Cookie` header, if one was set.
    pub fn cookie(&self) -> Option<String> {
        self.set_cookie()
            .map(|c| c.split(';').next().unwrap().to_owned())
    }

    /// `name=value` of the cookie `name` if the answer sets it (among all `Set-Cookie`s).
    pub fn cookie_named(&self, name: &str) -> Option<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| v.split(';').next())
            .find(|c| c.starts_with(&format!("{name}=")))
            .map(str::to_owned)
    }

    /// The whole `Set-Cookie` header (with its attributes), if one was set.
    pub fn set_cookie(&self) -> Option<&str> {
        self.headers.get("set-cookie").map(|v| v.to_str().unwrap())
    }
}
