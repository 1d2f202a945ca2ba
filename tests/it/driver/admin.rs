//! The admin API as an agency's registrar uses it: citizens, enrolment codes, clients.

use serde_json::{Value, json};

use super::Reply;
use crate::support::Server;

/// A registered citizen, as the registration answer names them.
pub struct Citizen {
    pub id: String,
    pub enrolment_code: String,
    pub enrolment_url: String,
}

/// A registered OAuth client; `secret` only for confidential clients.
pub struct Client {
    pub id: String,
    pub secret: Option<String>,
}

impl Client {
    /// `(client_id, client_secret)` for HTTP Basic at the token endpoints.
    pub fn auth(&self) -> (&str, &str) {
        let secret = self.secret.as_deref().expect("a confidential client");
        (&self.id, secret)
    }
}

impl Server {
    /// `GET path` with the admin token.
    pub async fn admin_get(&self, path: &str) -> Reply {
        self.get(path).admin().send().await
    }

    /// `POST path` with the admin token and a JSON body.
    pub async fn admin_post(&self, path: &str, body: &Value) -> Reply {
        self.post(path).admin().json(body).send().await
    }

    /// `DELETE path` with the admin token.
    pub async fn admin_delete(&self, path: &str) -> Reply {
        self.delete(path).admin().send().await
    }

    /// Registers Ana Novak with `national_id`; the answer must be 201 and never cached (it
    /// holds a one-time code).
    pub async fn register_citizen(&self, national_id: &str) -> Citizen {
        let resp = self
            .admin_post(
                "/admin/v1/citizens",
                &json!({
                    "given_name": "Ana", "family_name": "Novak",
                    "birthdate": "1990-04-01", "national_id": national_id,
                }),
            )
            .await;
        assert_eq!(resp.status, 201, "{}", resp.text);
        assert_eq!(resp.header("cache-control"), "no-store", "a one-time code");
        let created = resp.json();
        let text = |k: &str| created[k].as_str().unwrap().to_owned();
        Citizen {
            id: text("id"),
            enrolment_code: text("enrolment_code"),
            enrolment_url: text("enrolment_url"),
        }
    }

    /// The registry's record of a citizen (passkeys included).
    pub async fn citizen(&self, id: &str) -> Value {
        let resp = self.admin_get(&format!("/admin/v1/citizens/{id}")).await;
        assert_eq!(resp.status, 200, "{}", resp.text);
        resp.json().clone()
    }

    /// Issues a new enrolment code for a citizen (the old one stops working).
    pub async fn new_enrolment_code(&self, id: &str) -> String {
        let resp = self
            .post(&format!("/admin/v1/citizens/{id}/enrolment"))
            .admin()
            .send()
            .await;
        resp.json()["enrolment_code"].as_str().unwrap().to_owned()
    }

    /// POSTs a client registration, whatever the answer.
    pub async fn post_client(&self, body: &Value) -> Reply {
        self.admin_post("/admin/v1/clients", body).await
    }

    /// Registers a client that must be accepted.
    pub async fn register_client(&self, body: Value) -> Client {
        let resp = self.post_client(&body).await;
        assert_eq!(resp.status, 201, "{}", resp.text);
        let created = resp.json();
        Client {
            id: created["client_id"].as_str().unwrap().to_owned(),
            secret: created["client_secret"].as_str().map(str::to_owned),
        }
    }

    /// The tax office's web client: confidential, every citizen scope, one redirect and one
    /// logout address.
    pub async fn web_client(&self) -> Client {
        self.register_client(json!({
            "name": "Tax office", "redirect_uris": [super::REDIRECT],
            "post_logout_redirect_uris": [super::LOGGED_OUT],
            "scope": "openid profile email national_id",
        }))
        .await
    }

    /// A machine client: client credentials only, with `scope`.
    pub async fn machine_client(&self, name: &str, scope: &str) -> Client {
        self.register_client(json!({
            "name": name, "redirect_uris": [], "grant_types": ["client_credentials"],
            "scope": scope,
        }))
        .await
    }
}

/// An official's or seal's key as the creation answer names it.
pub struct SigningKey {
    pub id: String,
    pub certificate_pem: String,
}

impl Server {
    /// POSTs an official for `citizen_id`, whatever the answer.
    pub async fn post_official(&self, citizen_id: &str, title: &str, organisation: &str) -> Reply {
        self.admin_post(
            "/admin/v1/officials",
            &json!({"citizen_id": citizen_id, "title": title, "organisation": organisation}),
        )
        .await
    }

    /// Makes a citizen an official; must be accepted.
    pub async fn create_official(
        &self,
        citizen_id: &str,
        title: &str,
        organisation: &str,
    ) -> SigningKey {
        signing_key(self.post_official(citizen_id, title, organisation).await)
    }

    /// POSTs a seal for `client_id`, whatever the answer.
    pub async fn post_seal(&self, client_id: &str, organisation: &str) -> Reply {
        self.admin_post(
            "/admin/v1/seals",
            &json!({"client_id": client_id, "organisation": organisation}),
        )
        .await
    }

    /// Gives a client a seal; must be accepted.
    pub async fn create_seal(&self, client_id: &str, organisation: &str) -> SigningKey {
        signing_key(self.post_seal(client_id, organisation).await)
    }

    /// The CA's current CRL (DER); must be served as `application/pkix-crl`.
    pub async fn crl(&self) -> Vec<u8> {
        let resp = self.get("/pki/crl").send_bytes().await;
        assert_eq!(resp.0, 200);
        assert_eq!(resp.1, "application/pkix-crl");
        resp.2
    }
}

fn signing_key(resp: Reply) -> SigningKey {
    assert_eq!(resp.status, 201, "{}", resp.text);
    let created = resp.json();
    SigningKey {
        id: created["id"].as_str().unwrap().to_owned(),
        certificate_pem: created["certificate_pem"].as_str().unwrap().to_owned(),
    }
}
