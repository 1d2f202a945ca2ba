//! The test driver: what the tests do to a running civis, in the words of the domain
//! (fetch a page, read an admin record, refresh a grant, call userinfo), so that a test reads
//! as a story instead of request plumbing. Built on `support` (processes, clients).

use serde_json::Value;

use crate::support::{Server, admin_token, http};

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
