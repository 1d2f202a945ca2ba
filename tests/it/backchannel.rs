//! Back-channel logout (OpenID Connect Back-Channel Logout 1.0) through the real server: a
//! receiver on loopback gets a logout token that verifies with the JWKS and names the
//! session; a receiver that hangs does not delay the logout; a client that registered no
//! URI is never called; revoking the passkey announces the end of its sessions too.

use std::time::Duration;

use axum::Router;
use axum::routing::post;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::driver::{REDIRECT, Server, VERIFIER, enc, jwt_part, plain, tempdir};

/// How a receiver answers.
#[derive(Clone, Copy)]
enum Answer {
    Ok,
    Never,
    RedirectTo(&'static str),
}

/// A receiver on loopback: every body posted to `/bc` is sent to the channel, then answered
/// as `answer` says. Returns its `backchannel_logout_uri`.
async fn receiver(answer: Answer) -> (String, mpsc::UnboundedReceiver<String>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = Router::new().route(
        "/bc",
        post(move |body: String| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(body);
                match answer {
                    Answer::Ok => {
                        axum::response::IntoResponse::into_response(axum::http::StatusCode::OK)
                    }
                    Answer::Never => std::future::pending().await,
                    Answer::RedirectTo(to) => axum::response::IntoResponse::into_response(
                        axum::response::Redirect::temporary(to),
                    ),
                }
            }
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/bc"), rx)
}

/// The logout token of a posted form body.
fn logout_token(body: &str) -> String {
    url::form_urlencoded::parse(body.as_bytes())
        .find(|(k, _)| k == "logout_token")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("no logout_token in {body}"))
}

/// Verifies a logout token with the published JWKS and returns its claims.
async fn verified(server: &Server, token: &str, audience: &str) -> Value {
    civis::crypto::jwt::install_provider();
    let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_value(server.jwks().await).unwrap();
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("logout+jwt"));
    let jwk = jwks
        .find(header.kid.as_deref().unwrap())
        .expect("kid in the JWKS");
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    v.set_audience(&[audience]);
    v.set_issuer(&[server.url.as_str()]);
    v.set_required_spec_claims(&["iss", "aud", "iat", "exp"]);
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
    jsonwebtoken::decode::<Value>(token, &key, &v)
        .unwrap()
        .claims
}

async fn next_token(rx: &mut mpsc::UnboundedReceiver<String>) -> String {
    let body = tokio::time::timeout(Duration::from_secs(20), rx.recv())
        .await
        .expect("a logout token within 20 s")
        .unwrap();
    logout_token(&body)
}

#[tokio::test]
async fn a_session_end_reaches_every_registered_receiver_and_only_them() {
    let data = tempdir();
    let server = plain(&data);
    let (good_uri, mut good) = receiver(Answer::Ok).await;
    let (hanging_uri, mut hanging) = receiver(Answer::Never).await;
    // Never registered as anyone's back-channel URI: the silent client has it as its logout
    // redirect, and the redirecting receiver sends civis there.
    let (unregistered_uri, mut unregistered) = receiver(Answer::Ok).await;
    let unregistered_uri: &'static str = Box::leak(unregistered_uri.into_boxed_str());
    let (redirecting_uri, mut redirecting) = receiver(Answer::RedirectTo(unregistered_uri)).await;
    let register = |name: &str, uri: Option<&str>| {
        let mut body =
            json!({"name": name, "redirect_uris": [REDIRECT], "scope": "openid profile"});
        if let Some(uri) = uri {
            body["backchannel_logout_uri"] = uri.into();
            body["backchannel_logout_session_required"] = true.into();
        }
        server.register_client(body)
    };
    let agency = register("Agency", Some(&good_uri)).await;
    let slow = register("Slow agency", Some(&hanging_uri)).await;
    let moved = register("Moved agency", Some(&redirecting_uri)).await;
    let silent = server
        .register_client(json!({"name": "Silent agency", "redirect_uris": [REDIRECT],
            "post_logout_redirect_uris": [unregistered_uri], "scope": "openid profile"}))
        .await;
    let view = server
        .admin_get(&format!("/admin/v1/clients/{}", agency.id))
        .await;
    assert_eq!(view.json()["backchannel_logout_uri"], good_uri.as_str());

    let (citizen_id, mut device) = server.citizen_with_passkey("BCL-0001").await;
    let mut cookie = None;
    let mut id_tokens = Vec::new();
    for client in [&agency, &slow, &moved, &silent] {
        let (code, c) = server.code_for(&client.id, &mut device, cookie).await;
        cookie = c;
        let tokens = server.redeem(client.auth(), &code, VERIFIER).await.tokens();
        id_tokens.push(tokens.id_token().to_owned());
    }
    let cookie = cookie.unwrap();
    let agency_id_token = jwt_part(&id_tokens[0], 1);

    // RP-initiated logout: answered at once although one receiver never answers.
    let logout = server
        .get(&format!(
            "/end_session?id_token_hint={}",
            enc(&id_tokens[0])
        ))
        .no_redirect()
        .cookie(&cookie)
        .send();
    let resp = tokio::time::timeout(Duration::from_secs(10), logout)
        .await
        .expect("the logout is answered while a receiver hangs");
    assert_eq!(resp.status, 200, "{}", resp.text);
    assert_eq!(server.session(&cookie).await.status, 401);

    let token = next_token(&mut good).await;
    let claims = verified(&server, &token, &agency.id).await;
    assert_eq!(claims["sid"], agency_id_token["sid"]);
    assert_eq!(claims["sub"], agency_id_token["sub"]);
    assert_eq!(
        claims["events"],
        json!({"http://schemas.openid.net/event/backchannel-logout": {}})
    );
    assert!(claims.get("nonce").is_none() && claims["jti"].is_string());
    // The hanging receiver was called (and is still hanging); the logout did not wait.
    next_token(&mut hanging).await;
    // The redirecting one was called; its redirect was not followed.
    next_token(&mut redirecting).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        unregistered.try_recv().is_err(),
        "an unregistered URI was called"
    );
    assert!(good.try_recv().is_err(), "one token per session end");

    // Revoking the passkey ends its new session: announced to the agency again.
    let (code, _) = server.code_for(&agency.id, &mut device, None).await;
    let tokens = server.redeem(agency.auth(), &code, VERIFIER).await.tokens();
    let passkeys = server.citizen(&citizen_id).await;
    let passkey_id = passkeys["passkeys"][0]["id"].as_str().unwrap().to_owned();
    let revoked = server
        .admin_delete(&format!(
            "/admin/v1/citizens/{citizen_id}/passkeys/{passkey_id}"
        ))
        .await;
    assert_eq!(revoked.status, 204, "{}", revoked.text);
    let token = next_token(&mut good).await;
    let claims = verified(&server, &token, &agency.id).await;
    assert_eq!(claims["sid"], jwt_part(tokens.id_token(), 1)["sid"]);
    assert_ne!(
        claims["sid"], agency_id_token["sid"],
        "the new session's sid"
    );
}
