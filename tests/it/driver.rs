//! The test driver: what the tests do to a running civis, in the words of the domain —
//! start a server, register a client, register a citizen and enrol a passkey, log in,
//! authorize (logging in and answering consent as a browser would), redeem, refresh, call
//! userinfo, read a page or an admin record — so that a test reads as a story instead of
//! request plumbing. Built on `support` (processes, HTTP clients) and `authenticator`.

use serde_json::{Value, json};

use crate::authenticator::Device;
use crate::support::{Opts, Server, admin_token, http, http_no_redirect, register, tempdir};

/// Requests a test makes; implemented for the running [`Server`].
pub trait Drive {
    /// `GET` a path anonymously: status and body text.
    async fn get_page(&self, path: &str) -> (u16, String);

    /// `GET` a path with the admin token: status and JSON (`Null` when there is none).
    async fn admin_get(&self, path: &str) -> (u16, Value);

    /// `GET` a path with a session cookie (`name=value`): status and JSON.
    async fn get_with_cookie(&self, path: &str, cookie: &str) -> (u16, Value);

    /// `POST` a form to `/token` with HTTP Basic client credentials: status and JSON. Every
    /// answer of the token endpoint must be `no-store`.
    async fn token(&self, auth: (&str, &str), form: &[(&str, &str)]) -> (u16, Value);

    /// `grant_type=refresh_token` with `refresh_token`.
    async fn refresh(&self, auth: (&str, &str), refresh_token: &str) -> (u16, Value);

    /// `GET /userinfo` with a bearer token: the status.
    async fn userinfo(&self, access_token: &str) -> u16;
}

async fn status_and_json(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

impl Drive for Server {
    async fn get_page(&self, path: &str) -> (u16, String) {
        let resp = http().get(self.at(path)).send().await.unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    }

    async fn admin_get(&self, path: &str) -> (u16, Value) {
        let resp = self
            .client()
            .get(self.at(path))
            .bearer_auth(admin_token())
            .send()
            .await
            .unwrap();
        status_and_json(resp).await
    }

    async fn get_with_cookie(&self, path: &str, cookie: &str) -> (u16, Value) {
        let resp = http()
            .get(self.at(path))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap();
        status_and_json(resp).await
    }

    async fn token(&self, auth: (&str, &str), form: &[(&str, &str)]) -> (u16, Value) {
        let resp = http()
            .post(self.at("/token"))
            .basic_auth(auth.0, Some(auth.1))
            .form(form)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.headers()["cache-control"], "no-store");
        status_and_json(resp).await
    }

    async fn refresh(&self, auth: (&str, &str), refresh_token: &str) -> (u16, Value) {
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ];
        self.token(auth, &form).await
    }

    async fn userinfo(&self, access_token: &str) -> u16 {
        http()
            .get(self.at("/userinfo"))
            .bearer_auth(access_token)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }
}

// Servers, clients and citizens.

pub(crate) const REDIRECT: &str = "http://localhost:9/cb";
pub(crate) const LOGGED_OUT: &str = "http://localhost:9/bye";

pub(crate) fn plain(data: &tempfile::TempDir) -> Server {
    Server::start(data.path(), Opts::plain())
}

/// Registers a client; returns (client_id, client_secret).
pub(crate) async fn new_client(server: &Server, body: Value) -> (String, Option<String>) {
    let resp = http()
        .post(server.at("/admin/v1/clients"))
        .bearer_auth(admin_token())
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let v: Value = resp.json().await.unwrap();
    (
        v["client_id"].as_str().unwrap().to_owned(),
        v["client_secret"].as_str().map(str::to_owned),
    )
}

pub(crate) async fn web_client(server: &Server) -> (String, String) {
    let (id, secret) = new_client(
        server,
        json!({"name": "Tax office", "redirect_uris": [REDIRECT], "post_logout_redirect_uris": [LOGGED_OUT],
               "scope": "openid profile email national_id"}),
    )
    .await;
    (id, secret.unwrap())
}

/// A citizen with one passkey on a software device.
pub(crate) async fn citizen_with_passkey(server: &Server, national_id: &str) -> (String, Device) {
    let created = register(server, national_id).await;
    let mut device = Device::new(&server.url);
    let (status, body) = enrol(
        server,
        created["enrolment_code"].as_str().unwrap(),
        &mut device,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    (created["id"].as_str().unwrap().to_owned(), device)
}

/// The browser's side of `/authorize`: follows civis's redirects, logs in with the passkey
/// when asked, answers the consent page, and returns the final redirect to the client plus
/// the session cookie.
pub(crate) async fn browse(
    server: &Server,
    auth_url: &str,
    device: &mut Device,
    cookie: Option<String>,
    decision: &str,
) -> (String, Option<String>) {
    let client = http_no_redirect();
    let mut cookie = cookie;
    let mut url = auth_url.to_owned();
    for _ in 0..6 {
        let mut req = client.get(&url);
        if let Some(c) = &cookie {
            req = req.header("cookie", c);
        }
        let resp = req.send().await.unwrap();
        if resp.status().is_redirection() {
            let loc = resp.headers()["location"].to_str().unwrap().to_owned();
            if let Some(ret) = loc.strip_prefix("/login?return_to=") {
                let ((status, body), set) = login(server, device).await;
                assert_eq!(status, 200, "{body}");
                cookie = set.map(|c| c.split(';').next().unwrap().to_owned());
                url = server.at(&urlencoding_decode(ret));
                continue;
            }
            if loc.starts_with('/') {
                url = server.at(&loc);
                continue;
            }
            return (loc, cookie);
        }
        let status = resp.status();
        let html = resp.text().await.unwrap();
        assert_eq!(status, 200, "{html}");
        assert!(
            html.contains(">Allow</button>") && html.contains(">Deny</button>"),
            "{html}"
        );
        // The page's only script is `<script src=…>`: no markup from a client name runs.
        assert!(!html.contains("<script>"), "{html}");
        let field = |name: &str| hidden_field(&html, name);
        let resp = client
            .post(server.at("/authorize/consent"))
            .header("cookie", cookie.clone().unwrap())
            .form(&[
                ("request", field("request")),
                ("csrf", field("csrf")),
                ("decision", decision.to_owned()),
            ])
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_redirection(), "{}", resp.status());
        return (
            resp.headers()["location"].to_str().unwrap().to_owned(),
            cookie,
        );
    }
    panic!("too many redirects");
}

fn urlencoding_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .unwrap()
        .1
        .into_owned()
}

pub(crate) fn query(url: &str, key: &str) -> Option<String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

// Passkey ceremonies.

/// An HTTP answer: status and JSON body (or `null`).
pub(crate) type Answer = (u16, Value);

pub(crate) async fn post(
    server: &Server,
    path: &str,
    body: &Value,
) -> (u16, Value, reqwest::header::HeaderMap) {
    let resp = http()
        .post(server.at(path))
        .json(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, resp.json().await.unwrap_or(Value::Null), headers)
}

/// The whole enrolment ceremony as the page runs it; returns the finish answer.
pub(crate) async fn enrol(server: &Server, code: &str, device: &mut Device) -> Answer {
    let (status, started, _) = post(server, "/enrol/start", &json!({ "code": code })).await;
    if status != 200 {
        return (status, started);
    }
    let credential = match device.create(&started["options"]).await {
        Ok(c) => c,
        Err(e) => return (0, json!({ "device_error": e })),
    };
    let (status, body, _) = post(
        server,
        "/enrol/finish",
        &json!({ "ceremony": started["ceremony"], "credential": credential }),
    )
    .await;
    (status, body)
}

/// Starts a login and lets the device answer; returns (ceremony, assertion).
pub(crate) async fn assertion(server: &Server, device: &mut Device) -> (Value, Value) {
    let (status, started, _) = post(server, "/login/start", &json!({})).await;
    assert_eq!(status, 200, "{started}");
    assert_eq!(
        started["options"]["publicKey"]["allowCredentials"],
        json!([]),
        "usernameless"
    );
    assert_eq!(
        started["options"]["publicKey"]["userVerification"],
        "required"
    );
    let cred = device
        .get(&started["options"])
        .await
        .expect("device answers");
    (started["ceremony"].clone(), cred)
}

/// Finishes a login; returns the answer and the session cookie if one was set.
pub(crate) async fn finish_login(
    server: &Server,
    ceremony: &Value,
    cred: &Value,
) -> (Answer, Option<String>) {
    let (status, body, headers) = post(
        server,
        "/login/finish",
        &json!({ "ceremony": ceremony, "credential": cred }),
    )
    .await;
    let cookie = headers
        .get("set-cookie")
        .map(|v| v.to_str().unwrap().to_owned());
    ((status, body), cookie)
}

pub(crate) async fn login(server: &Server, device: &mut Device) -> (Answer, Option<String>) {
    let (ceremony, cred) = assertion(server, device).await;
    finish_login(server, &ceremony, &cred).await
}

/// Where most OIDC tests start: a running server (plain HTTP), a web client registered
/// with it, and a citizen holding a passkey on a software device.
pub(crate) struct Agency {
    /// The server's data directory, kept for as long as the test runs.
    pub data: tempfile::TempDir,
    pub server: Server,
    /// The web client's id and secret.
    pub id: String,
    pub secret: String,
    /// The citizen's device, holding their passkey.
    pub device: Device,
}

/// A plain server with a web client and a citizen (`national_id`) who has a passkey.
pub(crate) async fn agency_and_citizen(national_id: &str) -> Agency {
    let data = tempdir();
    let server = plain(&data);
    let (id, secret) = web_client(&server).await;
    let (_, device) = citizen_with_passkey(&server, national_id).await;
    Agency {
        data,
        server,
        id,
        secret,
        device,
    }
}

impl Agency {
    /// The parts, for tests that use them as locals: data dir, server, client id and
    /// secret, device.
    pub(crate) fn into_parts(self) -> (tempfile::TempDir, Server, String, String, Device) {
        (self.data, self.server, self.id, self.secret, self.device)
    }
}

/// The value of the hidden form field `name` on a page (as maud renders it:
/// `name="…" value="…"`). Panics if the page has none: the test expected the form.
pub(crate) fn hidden_field(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no hidden field {name} in {html}"))
        + marker.len();
    html[start..]
        .split('"')
        .next()
        .unwrap_or_default()
        .to_owned()
}
