//! Data directories written by the previous layout keep working. The fixture
//! `tests/fixtures/datadir-v0.1` was written by civis at commit 7381fd1 (before the store's
//! transactions and the domain-owned OIDC entities); `datadir-v0.1.json` lists what is in it.
//! Its refresh token and enrolment ticket were re-dated to 2099 (only their `expires_at`
//! changed) so that the fixture does not age out.

use serde_json::Value;

use crate::driver::{Device, plain, tempdir};

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[tokio::test]
async fn a_data_dir_of_the_previous_layout_serves_and_accepts_writes() {
    let fixtures = crate::support::root().join("tests/fixtures");
    let facts: Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures.join("datadir-v0.1.json")).unwrap())
            .unwrap();
    let fact = |k: &str| facts[k].as_str().unwrap().to_owned();
    let data = tempdir();
    copy_dir(&fixtures.join("datadir-v0.1"), data.path());
    std::fs::create_dir_all(data.path().join("blobs")).unwrap();
    let server = plain(&data);

    // A citizen and their passkey, as the registry shows them.
    let citizen = server.citizen(&fact("citizen_id")).await;
    assert_eq!(citizen["national_id"], "OLD-0001", "{citizen}");
    assert_eq!(citizen["passkeys"].as_array().unwrap().len(), 1);

    // An old grant's refresh token rotates (client secret, grant, refresh token, citizen).
    let (client_id, client_secret) = (fact("client_id"), fact("client_secret"));
    let resp = server
        .refresh((&client_id, &client_secret), &fact("refresh_token"))
        .await;
    assert_eq!(resp.status, 200);
    let info = server.userinfo(&resp.tokens().access).await;
    let info = info.json();
    assert_eq!(info["given_name"], "Ana", "{info}");
    assert_eq!(info["sub"], fact("citizen_id"));

    // A machine client authenticates with its old secret.
    let (machine_id, machine_secret) = (fact("m2m_client_id"), fact("m2m_client_secret"));
    let resp = server
        .client_credentials((&machine_id, &machine_secret))
        .await;
    assert_eq!(resp.status, 200);

    // An old enrolment code creates a passkey, which then logs in.
    let mut device = Device::new(&server.url);
    let enrolled = server.enrol(&fact("enrolment_code"), &mut device).await;
    assert_eq!(enrolled.status, 201, "{}", enrolled.text);
    let login = server.login(&mut device).await;
    assert_eq!(login.status, 200, "{}", login.text);
    assert!(login.set_cookie().is_some());
}
