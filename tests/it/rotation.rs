//! Token-key rotation: a new key is published before it signs; old keys stay published.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::driver::new_client;
use crate::support::{Opts, Server, civis, http, tempdir};

fn kid_of(jwt: &str) -> String {
    let h: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(jwt.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    h["kid"].as_str().unwrap().to_owned()
}

async fn kids(server: &Server) -> Vec<String> {
    let jwks: Value = http()
        .get(server.at("/jwks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

async fn machine_token(server: &Server, id: &str, secret: &str) -> String {
    let t: Value = http()
        .post(server.at("/token"))
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    t["access_token"].as_str().unwrap().to_owned()
}

fn start(data: &tempfile::TempDir, keys: &std::path::Path, lead: &str) -> Server {
    Server::start(
        data.path(),
        Opts {
            plain_http: true,
            args: vec![
                "--keys-dir".into(),
                keys.display().to_string(),
                "--token-key-activation-seconds".into(),
                lead.into(),
                // One issuer across restarts, as in a deployment (tokens name it).
                "--issuer".into(),
                "http://localhost:8999".into(),
                // Keep the development admin token so the shared helpers work.
                "--admin-token-file".into(),
                crate::support::root()
                    .join("keys-dev/admin-token")
                    .display()
                    .to_string(),
            ],
            ..Default::default()
        },
    )
}

#[tokio::test]
async fn a_rotated_key_is_published_before_it_signs_and_the_old_one_stays() {
    let dir = tempdir();
    let keys = dir.path().join("keys");
    assert!(
        civis()
            .args(["keys", "init", "--dir"])
            .arg(&keys)
            .status()
            .unwrap()
            .success()
    );
    let data = tempdir();
    let server = start(&data, &keys, "3600");
    let (id, secret) = new_client(&server, json!({"name": "m", "redirect_uris": [], "grant_types": ["client_credentials"], "scope": "seal"})).await;
    let secret = secret.unwrap();
    let before = kids(&server).await;
    assert_eq!(before.len(), 1);
    let old_token = machine_token(&server, &id, &secret).await;
    assert_eq!(kid_of(&old_token), before[0]);
    drop(server);

    let out = civis()
        .args(["keys", "rotate", "--keys-dir"])
        .arg(&keys)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rotated = std::fs::read_dir(keys.join("token-keys")).unwrap().count();
    assert_eq!(rotated, 1);

    // Within the activation lead: both published, the old one still signs.
    let server = start(&data, &keys, "3600");
    let published = kids(&server).await;
    assert_eq!(published.len(), 2);
    let new_kid = published.iter().find(|k| **k != before[0]).unwrap().clone();
    assert_eq!(
        kid_of(&machine_token(&server, &id, &secret).await),
        before[0]
    );
    drop(server);

    // After the lead: the new key signs; tokens of the old key still verify.
    let server = start(&data, &keys, "0");
    let token = machine_token(&server, &id, &secret).await;
    assert_eq!(kid_of(&token), new_kid);
    assert_eq!(kids(&server).await.len(), 2, "old key still published");
    for t in [&token, &old_token] {
        let i: Value = http()
            .post(server.at("/introspect"))
            .basic_auth(&id, Some(&secret))
            .form(&[("token", t.as_str())])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(i["active"], true, "{i}");
    }
}
