//! OpenID Connect from the relying party's and the browser's side: authorization requests,
//! the browser's way through login and consent, and the token, introspection, revocation
//! and userinfo endpoints.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

use super::{Reply, Req};
use crate::authenticator::Device;
use crate::support::Server;

/// The cookie that binds an authorization request to the browser that sent it.
pub const BROWSER_COOKIE: &str = "__Host-civis_authz";

/// The web client's redirect URI; nothing listens there (the tests read `Location`).
pub const REDIRECT: &str = "http://localhost:9/cb";
/// The web client's post-logout redirect URI.
pub const LOGGED_OUT: &str = "http://localhost:9/bye";
/// The PKCE pair of RFC 7636, appendix B.
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// `(client_id, client_secret)` for HTTP Basic.
pub type Auth<'a> = (&'a str, &'a str);

/// The tokens of a successful token answer.
pub struct Tokens {
    pub access: String,
    pub refresh: Option<String>,
    pub id: Option<String>,
}

impl Tokens {
    pub fn refresh_token(&self) -> &str {
        self.refresh.as_deref().expect("a refresh token")
    }

    pub fn id_token(&self) -> &str {
        self.id.as_deref().expect("an ID token")
    }
}

impl Reply {
    /// The tokens of a token answer, which must be 200.
    pub fn tokens(&self) -> Tokens {
        assert_eq!(self.status, 200, "{}", self.text);
        let t = self.json();
        let text = |k: &str| t[k].as_str().map(str::to_owned);
        Tokens {
            access: text("access_token").expect("an access token"),
            refresh: text("refresh_token"),
            id: text("id_token"),
        }
    }

    /// The OAuth `error` code of the body.
    pub fn error(&self) -> Option<&str> {
        self.json()["error"].as_str()
    }
}

/// `s` percent-encoded for a query string.
pub fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// A query parameter of `url`.
pub fn query(url: &str, key: &str) -> Option<String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

/// The value of a hidden form field `name` in a page.
pub fn field(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no field {name}: {html}"))
        + marker.len();
    html[start..].split('"').next().unwrap().to_owned()
}

/// Part `n` of a JWT (0 header, 1 claims), decoded, signature unchecked.
pub fn jwt_part(jwt: &str, n: usize) -> Value {
    let part = jwt.split('.').nth(n).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

/// The token form of the authorization-code grant with the web client's redirect URI.
pub fn code_grant<'a>(code: &'a str, verifier: &'a str) -> [(&'a str, &'a str); 4] {
    [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
        ("code_verifier", verifier),
    ]
}

impl Server {
    /// An authorization request of `client_id` for `openid profile` with state `st`, nonce
    /// `n1` and the PKCE [`CHALLENGE`], to [`REDIRECT`]; `extra` is appended as it is.
    pub fn auth_url(&self, client_id: &str, extra: &str) -> String {
        self.auth_url_to(client_id, REDIRECT, extra)
    }

    /// Like [`Server::auth_url`] with another redirect URI.
    pub fn auth_url_to(&self, client_id: &str, redirect_uri: &str, extra: &str) -> String {
        format!(
            "{}/authorize?response_type=code&client_id={client_id}&redirect_uri={}&scope=openid%20profile&state=st&nonce=n1&code_challenge={CHALLENGE}&code_challenge_method=S256{extra}",
            self.url,
            enc(redirect_uri)
        )
    }

    /// The browser's side of `/authorize`: follows civis's redirects, logs in with the
    /// passkey when asked, answers the consent page with `decision`, and returns the final
    /// redirect to the client plus the session cookie.
    pub async fn authorize(
        &self,
        auth_url: &str,
        device: &mut Device,
        cookie: Option<String>,
        decision: &str,
    ) -> (String, Option<String>) {
        let mut cookie = cookie;
        // The cookie that binds the request to this browser, as a browser keeps it.
        let mut binding: Option<String> = None;
        let mut url = auth_url.to_owned();
        for _ in 0..6 {
            let mut req = self.get(&url).no_redirect();
            let jar: Vec<&str> = cookie
                .iter()
                .chain(binding.iter())
                .map(String::as_str)
                .collect();
            if !jar.is_empty() {
                req = req.cookie(&jar.join("; "));
            }
            let resp = req.send().await;
            if let Some(b) = resp.cookie_named(BROWSER_COOKIE) {
                binding = Some(b);
            }
            if (300..400).contains(&resp.status) {
                let loc = resp.location();
                if let Some(ret) = loc.strip_prefix("/login?return_to=") {
                    let login = self.login(device).await;
                    assert_eq!(login.status, 200, "{}", login.text);
                    cookie = login.cookie();
                    url = self.at(&form_decode(ret));
                    continue;
                }
                if loc.starts_with('/') {
                    url = self.at(loc);
                    continue;
                }
                return (loc.to_owned(), cookie);
            }
            let html = &resp.text;
            assert_eq!(resp.status, 200, "{html}");
            assert!(
                html.contains(">Allow</button>") && html.contains(">Deny</button>"),
                "{html}"
            );
            // The page's only script is `<script src=…>`: no markup from a client name runs.
            assert!(!html.contains("<script>"), "{html}");
            let resp = self
                .post("/authorize/consent")
                .no_redirect()
                .cookie(cookie.as_deref().unwrap())
                .form(&[
                    ("request", &field(html, "request")),
                    ("csrf", &field(html, "csrf")),
                    ("decision", decision),
                ])
                .send()
                .await;
            assert!((300..400).contains(&resp.status), "{}", resp.status);
            return (resp.location().to_owned(), cookie);
        }
        panic!("too many redirects");
    }

    /// A fresh code for a citizen at [`Server::auth_url`] (logging in and consenting as
    /// needed).
    pub async fn code_for(
        &self,
        client_id: &str,
        device: &mut Device,
        cookie: Option<String>,
    ) -> (String, Option<String>) {
        let (back, cookie) = self
            .authorize(&self.auth_url(client_id, ""), device, cookie, "allow")
            .await;
        (
            query(&back, "code").unwrap_or_else(|| panic!("no code in {back}")),
            cookie,
        )
    }

    /// A token request with HTTP Basic client authentication, not yet sent.
    pub fn token_request(&self, auth: Auth, form: &[(&str, &str)]) -> Req {
        self.post("/token").basic(auth.0, auth.1).form(form)
    }

    /// A token request; its answer must never be cached.
    pub async fn token(&self, auth: Auth<'_>, form: &[(&str, &str)]) -> Reply {
        let resp = self.token_request(auth, form).send().await;
        assert_eq!(resp.header("cache-control"), "no-store");
        resp
    }

    /// Redeems a code issued for [`REDIRECT`].
    pub async fn redeem(&self, auth: Auth<'_>, code: &str, verifier: &str) -> Reply {
        self.token(auth, &code_grant(code, verifier)).await
    }

    pub async fn refresh(&self, auth: Auth<'_>, refresh_token: &str) -> Reply {
        self.token(
            auth,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
            ],
        )
        .await
    }

    pub async fn client_credentials(&self, auth: Auth<'_>) -> Reply {
        self.token(auth, &[("grant_type", "client_credentials")])
            .await
    }

    /// Client credentials for a `private_key_jwt` client: no Basic, a signed assertion.
    pub async fn client_credentials_by_assertion(&self, assertion: &str) -> Reply {
        self.post("/token")
            .form(&[
                ("grant_type", "client_credentials"),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_assertion", assertion),
            ])
            .send()
            .await
    }

    /// What `/introspect` tells the client `auth` about `token`.
    pub async fn introspect(&self, auth: Auth<'_>, token: &str) -> Value {
        let resp = self
            .post("/introspect")
            .basic(auth.0, auth.1)
            .form(&[("token", token)])
            .send()
            .await;
        resp.json().clone()
    }

    pub async fn revoke(&self, auth: Auth<'_>, token: &str) -> Reply {
        self.post("/revoke")
            .basic(auth.0, auth.1)
            .form(&[("token", token)])
            .send()
            .await
    }

    /// `GET /userinfo` with a bearer token.
    pub async fn userinfo(&self, access_token: &str) -> Reply {
        self.get("/userinfo").bearer(access_token).send().await
    }

    /// The published JSON Web Key Set.
    pub async fn jwks(&self) -> Value {
        self.get("/jwks").send().await.json().clone()
    }
}

fn form_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .unwrap()
        .1
        .into_owned()
}
