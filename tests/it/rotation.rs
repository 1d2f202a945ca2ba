//! Token-key rotation: a new key is published before it signs; old keys stay published.

use crate::driver::{Auth, Opts, Server, jwt_part, start as start_with, tempdir};
use crate::support::{civis, keys_init};

fn kid_of(jwt: &str) -> String {
    jwt_part(jwt, 0)["kid"].as_str().unwrap().to_owned()
}

async fn kids(server: &Server) -> Vec<String> {
    server.jwks().await["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

async fn machine_token(server: &Server, machine: Auth<'_>) -> String {
    server.client_credentials(machine).await.tokens().access
}

fn start(data: &tempfile::TempDir, keys: &std::path::Path, lead: &str) -> Server {
    let admin_token = crate::support::root().join("keys-dev/admin-token");
    start_with(
        data,
        Opts::plain().with_args([
            "--keys-dir".into(),
            keys.display().to_string(),
            "--token-key-activation-seconds".into(),
            lead.into(),
            // One issuer across restarts, as in a deployment (tokens name it).
            "--issuer".into(),
            "http://localhost:8999".into(),
            // Keep the development admin token so the driver's admin calls work.
            "--admin-token-file".into(),
            admin_token.display().to_string(),
        ]),
    )
}

#[tokio::test]
async fn a_rotated_key_is_published_before_it_signs_and_the_old_one_stays() {
    let dir = tempdir();
    let keys = dir.path().join("keys");
    assert!(keys_init(&keys).status.success());
    let data = tempdir();
    let server = start(&data, &keys, "3600");
    let machine = server.machine_client("m", "seal").await;
    let before = kids(&server).await;
    assert_eq!(before.len(), 1);
    let old_token = machine_token(&server, machine.auth()).await;
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
        kid_of(&machine_token(&server, machine.auth()).await),
        before[0]
    );
    drop(server);

    // After the lead: the new key signs; tokens of the old key still verify.
    let server = start(&data, &keys, "0");
    let token = machine_token(&server, machine.auth()).await;
    assert_eq!(kid_of(&token), new_kid);
    assert_eq!(kids(&server).await.len(), 2, "old key still published");
    for t in [&token, &old_token] {
        let i = server.introspect(machine.auth(), t).await;
        assert_eq!(i["active"], true, "{i}");
    }
}
