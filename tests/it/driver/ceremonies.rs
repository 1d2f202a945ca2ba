//! The WebAuthn ceremonies as civis.js runs them, with a software [`Device`]: enrolment with
//! a code, usernameless login, and the session that a login opens.

use serde_json::{Value, json};

use super::Reply;
use crate::authenticator::Device;
use crate::support::Server;

impl Server {
    /// `POST path` with a JSON body and nothing else (what the ceremony pages send).
    pub async fn post_json(&self, path: &str, body: &Value) -> Reply {
        self.post(path).json(body).send().await
    }

    pub async fn start_enrolment(&self, code: &str) -> Reply {
        self.post_json("/enrol/start", &json!({ "code": code }))
            .await
    }

    pub async fn finish_enrolment(&self, ceremony: &Value, credential: &Value) -> Reply {
        self.post_json(
            "/enrol/finish",
            &json!({ "ceremony": ceremony, "credential": credential }),
        )
        .await
    }

    /// The whole enrolment ceremony; the answer of the step that ended it (status 0 with
    /// `device_error` if the device itself refused).
    pub async fn enrol(&self, code: &str, device: &mut Device) -> Reply {
        let started = self.start_enrolment(code).await;
        if started.status != 200 {
            return started;
        }
        let credential = match device.create(&started.json()["options"]).await {
            Ok(c) => c,
            Err(e) => {
                let text = json!({ "device_error": e }).to_string();
                return Reply::new(0, Default::default(), text);
            }
        };
        self.finish_enrolment(&started.json()["ceremony"], &credential)
            .await
    }

    /// A fresh device holding a passkey enrolled with `code`.
    pub async fn enrolled_device(&self, code: &str) -> Device {
        let mut device = Device::new(&self.url);
        let answer = self.enrol(code, &mut device).await;
        assert_eq!(answer.status, 201, "{}", answer.text);
        device
    }

    /// A registered citizen with one passkey on a software device; returns the citizen's id.
    pub async fn citizen_with_passkey(&self, national_id: &str) -> (String, Device) {
        let created = self.register_citizen(national_id).await;
        let device = self.enrolled_device(&created.enrolment_code).await;
        (created.id, device)
    }

    pub async fn start_login(&self) -> Reply {
        self.post_json("/login/start", &json!({})).await
    }

    /// Starts a login (which must be usernameless and require user verification) and lets
    /// the device answer; returns (ceremony, assertion).
    pub async fn assertion(&self, device: &mut Device) -> (Value, Value) {
        let started = self.start_login().await;
        assert_eq!(started.status, 200, "{}", started.text);
        let started = started.json();
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

    /// Finishes a login; the answer carries the session cookie if one was set.
    pub async fn finish_login(&self, ceremony: &Value, credential: &Value) -> Reply {
        self.post_json(
            "/login/finish",
            &json!({ "ceremony": ceremony, "credential": credential }),
        )
        .await
    }

    /// The whole login ceremony.
    pub async fn login(&self, device: &mut Device) -> Reply {
        let (ceremony, cred) = self.assertion(device).await;
        self.finish_login(&ceremony, &cred).await
    }

    /// `GET /session` with a session cookie (`name=value`).
    pub async fn session(&self, cookie: &str) -> Reply {
        self.get("/session").cookie(cookie).send().await
    }
}
