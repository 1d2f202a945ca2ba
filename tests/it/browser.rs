//! End to end in a real browser: Debian's headless Chromium, driven by playwright-core over CDP
//! with a virtual WebAuthn authenticator, enrols a citizen's passkey and signs in with it by
//! clicking the buttons by their accessible names (tests/browser/e2e.mjs); then, as an agency
//! app, panva's openid-client runs the code flow in that browser (tests/browser/oidc-rp.mjs). Needs
//! `tests/browser/setup.sh`; without it the test is skipped, or fails when `CI` is set.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::driver::{plain, tempdir};
use crate::support::root;

const CHROMIUM: &str = "/usr/bin/chromium";

/// What is missing for the browser test, if anything.
fn missing_prerequisites() -> Vec<String> {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| CHROMIUM.to_owned());
    let mut missing = Vec::new();
    if !Path::new(&chromium).exists() {
        missing.push(chromium);
    }
    for package in ["playwright-core", "openid-client"] {
        let dir = root().join("tests/browser/node_modules").join(package);
        if !dir.exists() {
            missing.push(dir.display().to_string());
        }
    }
    if Command::new("node").arg("--version").output().is_err() {
        missing.push("node".to_owned());
    }
    missing
}

#[tokio::test]
async fn passkey_enrolment_and_login_in_headless_chromium() {
    let missing = missing_prerequisites();
    if !missing.is_empty() {
        let msg = format!(
            "browser test prerequisites missing: {}; run `tests/browser/setup.sh` (as root) first",
            missing.join(", ")
        );
        if std::env::var_os("CI").is_some() {
            panic!("{msg}");
        }
        eprintln!("SKIP passkey_enrolment_and_login_in_headless_chromium: {msg}");
        return;
    }

    let data = tempdir();
    let server = plain(&data);
    assert!(
        server.url.starts_with("http://localhost:"),
        "WebAuthn needs the localhost origin: {}",
        server.url
    );
    let created = server.register_citizen("BROWSER-001").await;
    let citizen_id = created.id;
    let enrolment_url = created.enrolment_url;
    assert!(
        enrolment_url.starts_with(&server.url),
        "enrolment link {enrolment_url} is not on {}",
        server.url
    );
    let login_url = server.at("/login");
    // The agency app of the relying-party part: nothing serves its addresses (any port Chromium
    // does not block); the browser's
    // visits there are answered inside the script.
    let agency = server
        .register_client(serde_json::json!({
            "name": "Agency app (openid-client)",
            "redirect_uris": ["http://localhost:43117/callback"],
            "post_logout_redirect_uris": ["http://localhost:43117/signed-out"],
            "scope": "openid profile",
        }))
        .await;
    let client_id = agency.id;
    // A genuine civis ID token of someone else (another citizen, another client), as any
    // site could collect one: a page on another origin sends the browser to `/end_session`
    // with it, which must not log the browser's citizen out.
    let foreign_id_token = {
        let other = server.web_client().await;
        let (_, mut device) = server.citizen_with_passkey("BROWSER-002").await;
        let (code, _) = server.code_for(&other.id, &mut device, None).await;
        let tokens = server
            .redeem(other.auth(), &code, crate::driver::VERIFIER)
            .await
            .tokens();
        tokens.id_token().to_owned()
    };
    // A FAPI 2.0 agency app: private_key_jwt with a key made here, PAR and DPoP (the DPoP
    // key is the script's own).
    let fapi_key = crate::driver::dpop::ClientKey::new();
    let mut fapi_jwk = fapi_key.jwk();
    fapi_jwk["kid"] = "k1".into();
    let fapi = server
        .register_client(serde_json::json!({
            "name": "Agency app (openid-client, FAPI 2.0)",
            "redirect_uris": ["http://localhost:43117/fapi-callback"],
            "scope": "openid profile",
            "profile": "fapi2",
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": {"keys": [fapi_jwk]},
        }))
        .await;
    let rp = serde_json::json!({
        "issuer": server.url,
        "client_id": client_id,
        "client_secret": agency.secret.expect("confidential client"),
        "redirect_uri": "http://localhost:43117/callback",
        "post_logout_redirect_uri": "http://localhost:43117/signed-out",
        "foreign_id_token": foreign_id_token,
        "fapi": {
            "client_id": fapi.id,
            "redirect_uri": "http://localhost:43117/fapi-callback",
            "kid": "k1",
            "private_key_pkcs8_b64": fapi_key.pkcs8_base64(),
        },
    })
    .to_string();

    let started = Instant::now();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg("tests/browser/e2e.mjs")
            .arg(&enrolment_url)
            .arg(&login_url)
            .arg(&rp)
            .current_dir(root())
            .output()
            .expect("run node")
    })
    .await
    .unwrap();
    let elapsed = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("e2e.mjs finished in {elapsed:.1?} with {}", out.status);
    if !out.status.success() {
        // Let the server flush its log lines for the failed ceremony.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let log = server.stderr();
        let warnings: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("refused") || l.contains("WARN") || l.contains("ERROR"))
            .collect();
        panic!(
            "browser end-to-end test failed ({}):\n--- e2e.mjs stdout\n{stdout}\n--- e2e.mjs \
             stderr\n{stderr}\n--- server warnings\n{}\n--- server stderr\n{}",
            out.status,
            warnings.join("\n"),
            log
        );
    }
    let summary: Value = stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("no JSON summary on stdout:\n{stdout}\n{stderr}"));
    eprintln!("e2e summary: {summary}");
    assert_eq!(summary["ok"], true, "{summary}");
    assert!(
        summary["login"]["status"]
            .as_str()
            .unwrap_or_default()
            .starts_with("Signed in as Ana Novak"),
        "{summary}"
    );

    assert_eq!(
        summary["session"]["citizen_id"], citizen_id,
        "the browser's session is the citizen's: {summary}"
    );

    // The FAPI 2.0 app: PAR, private_key_jwt, DPoP-bound tokens (cnf.jkt of its key),
    // userinfo and refresh with DPoP, no refresh-token rotation.
    let f = &summary["fapi"];
    // openid-client normalises token_type to lower case.
    assert_eq!(f["token_type"], "dpop", "{f}");
    assert_eq!(f["cnf_jkt_matches"], true, "{f}");
    assert!(f["sub"].is_string() && f["userinfo_sub"] == f["sub"], "{f}");
    assert_eq!(f["refreshed_token_type"], "dpop", "{f}");
    assert_eq!(f["refresh_rotated"], false, "{f}");
    assert_eq!(f["refreshed_again"], true, "{f}");

    // The stock relying party validated the ID token itself (signature against the JWKS,
    // iss, aud, exp, nonce); these are the values it saw.
    let rp = &summary["oidc"];
    assert_eq!(rp["issuer"], server.url.as_str(), "{rp}");
    let claims = &rp["id_token_claims"];
    assert_eq!(claims["iss"], server.url.as_str(), "{rp}");
    assert_eq!(claims["aud"], client_id.as_str(), "{rp}");
    assert!(
        claims["sub"].is_string() && claims["sid"].is_string(),
        "{rp}"
    );
    assert!(
        claims["acr"].is_string() && claims["amr"].is_array(),
        "{rp}"
    );
    assert_eq!(rp["userinfo"]["sub"], claims["sub"], "{rp}");
    assert_eq!(rp["userinfo"]["given_name"], "Ana", "{rp}");
    assert_eq!(rp["userinfo"]["family_name"], "Novak", "{rp}");
    assert_eq!(rp["introspection"]["active"], true, "{rp}");
    assert_eq!(rp["introspection"]["client_id"], client_id.as_str(), "{rp}");
    assert_eq!(rp["revoked_refresh_token_active"], false, "{rp}");
    assert_eq!(
        rp["forced_logout"]["asked"], true,
        "a cross-site link with someone else's ID token only asks: {rp}"
    );
    assert_eq!(
        rp["forced_logout"]["session_after"], 200,
        "and the citizen stays signed in: {rp}"
    );
    assert_eq!(rp["logout_returned_state"], true, "{rp}");
    assert_eq!(
        rp["session_after_logout"], 401,
        "logout ended the civis session: {rp}"
    );
    // Your activity, as the citizen sees it in the browser: heading, a login and a consent row.
    let activity = &rp["activity"];
    assert_eq!(activity["heading"], "Your activity", "{activity}");
    assert_eq!(activity["login_row"], true, "{activity}");
    assert_eq!(activity["consent_row"], true, "{activity}");
    assert_eq!(activity["received_row"], true, "{activity}");

    let citizen = server.citizen(&citizen_id).await;
    let passkeys = citizen["passkeys"].as_array().expect("passkeys array");
    assert_eq!(passkeys.len(), 1, "exactly one passkey: {citizen}");
    assert!(
        passkeys[0]["last_used_at"].is_string(),
        "the passkey records its login: {citizen}"
    );
    assert_eq!(
        passkeys[0]["id"], summary["enrol"]["credential_id"],
        "the server holds the browser's credential: {citizen}"
    );
}
