//! Issue 4: civis as an OpenID Provider, driven by an independent relying party (the
//! `openidconnect` crate), plus the OAuth security BCP attacks, each shown failing.

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreProviderMetadata, CoreUserInfoClaims,
};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, RedirectUrl, Scope, TokenResponse,
};
use serde_json::{Value, json};

use crate::driver::{LOGGED_OUT, REDIRECT, browse, citizen_with_passkey, plain, query, web_client};
use crate::support::{http, http_no_redirect, tempdir};

#[tokio::test]
async fn a_stock_oidc_library_logs_in_with_civis() {
    let data = tempdir();
    let server = plain(&data);
    let (client_id, secret) = web_client(&server).await;
    let (citizen_id, mut device) = citizen_with_passkey(&server, "OIDC-0001").await;
    let rp_http = http_no_redirect();

    // Discovery and JWKS, as the library reads them.
    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(server.url.clone()).unwrap(), &rp_http)
            .await
            .expect("discovery");
    let rp = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(client_id.clone()),
        Some(ClientSecret::new(secret)),
    )
    .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, csrf, nonce) = rp
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("email".into()))
        .set_pkce_challenge(challenge)
        .url();

    let (back, cookie) = browse(&server, auth_url.as_str(), &mut device, None, "allow").await;
    assert!(back.starts_with(REDIRECT), "{back}");
    assert_eq!(
        query(&back, "state").as_deref(),
        Some(csrf.secret().as_str())
    );
    assert_eq!(query(&back, "iss").as_deref(), Some(server.url.as_str()));
    let code = query(&back, "code").expect("code");

    let tokens = rp
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&rp_http)
        .await
        .expect("token exchange");
    let id_token = tokens.id_token().expect("id_token");
    let verifier = rp.id_token_verifier();
    let claims = id_token
        .claims(&verifier, &nonce)
        .expect("ID token valid per the library");
    assert_eq!(claims.subject().as_str(), citizen_id);
    assert_eq!(
        claims.auth_context_ref().map(|a| a.as_str()),
        Some("http://eidas.europa.eu/LoA/high")
    );
    let amr: Vec<String> = claims
        .auth_method_refs()
        .unwrap()
        .iter()
        .map(|a| a.to_string())
        .collect();
    assert!(
        amr.contains(&"user".to_owned()) && amr.contains(&"mfa".to_owned()),
        "{amr:?}"
    );
    assert!(claims.auth_time().is_some());
    let expected_hash = AccessTokenHash::from_token(
        tokens.access_token(),
        id_token.signing_alg().unwrap(),
        id_token.signing_key(&verifier).unwrap(),
    )
    .unwrap();
    assert_eq!(claims.access_token_hash(), Some(&expected_hash));
    assert_eq!(
        claims
            .given_name()
            .and_then(|n| n.get(None))
            .map(|n| n.as_str()),
        Some("Ana")
    );

    // The raw ID token: ES256 with a published kid, sid, and no national_id without its scope.
    let raw: Value = {
        let payload = id_token.to_string().split('.').nth(1).unwrap().to_owned();
        use base64::Engine;
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .unwrap(),
        )
        .unwrap()
    };
    assert!(raw["sid"].is_string());
    assert!(raw.get("national_id").is_none(), "{raw}");
    assert_eq!(raw["email"], Value::Null, "the citizen has no e-mail");

    // The access token is an RFC 9068 JWT.
    let at = tokens.access_token().secret().clone();
    let header: Value = {
        use base64::Engine;
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(at.split('.').next().unwrap())
                .unwrap(),
        )
        .unwrap()
    };
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["alg"], "ES256");

    // Userinfo through the library.
    let info: CoreUserInfoClaims = rp
        .user_info(tokens.access_token().to_owned(), None)
        .unwrap()
        .request_async(&rp_http)
        .await
        .expect("userinfo");
    assert_eq!(info.subject().as_str(), citizen_id);
    assert_eq!(
        info.family_name()
            .and_then(|n| n.get(None))
            .map(|n| n.as_str()),
        Some("Novak")
    );

    // Refresh, rotated.
    let refresh = tokens.refresh_token().expect("refresh token").clone();
    let refreshed = rp
        .exchange_refresh_token(&refresh)
        .unwrap()
        .request_async(&rp_http)
        .await
        .expect("refresh");
    assert_ne!(
        refreshed.refresh_token().unwrap().secret(),
        refresh.secret()
    );

    // A second authorization is silent: session and consent are remembered.
    let (challenge, _v) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, _, _) = rp
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .set_pkce_challenge(challenge)
        .url();
    let resp = rp_http
        .get(auth_url.as_str())
        .header("cookie", cookie.clone().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    assert!(
        resp.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with(REDIRECT)
    );

    // RP-initiated logout with id_token_hint: no question asked, back to the client with state.
    let logout = format!(
        "{}/end_session?id_token_hint={}&post_logout_redirect_uri={}&state=s1",
        server.url,
        id_token,
        url::form_urlencoded::byte_serialize(LOGGED_OUT.as_bytes()).collect::<String>()
    );
    let resp = rp_http
        .get(&logout)
        .header("cookie", cookie.clone().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(
        resp.headers()["location"],
        format!("{LOGGED_OUT}?state=s1").as_str()
    );
    let s = http()
        .get(server.at("/session"))
        .header("cookie", cookie.unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(s.status(), 401, "the civis session ended");
}

#[tokio::test]
async fn discovery_lists_what_the_contract_requires() {
    let data = tempdir();
    let server = plain(&data);
    let d: Value = http()
        .get(server.at("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(d["issuer"], server.url.as_str());
    for k in [
        "authorization_endpoint",
        "token_endpoint",
        "userinfo_endpoint",
        "jwks_uri",
        "introspection_endpoint",
        "revocation_endpoint",
        "end_session_endpoint",
    ] {
        assert!(d[k].as_str().unwrap().starts_with(&server.url), "{k}");
    }
    assert_eq!(d["response_types_supported"], json!(["code"]));
    assert_eq!(d["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(d["id_token_signing_alg_values_supported"], json!(["ES256"]));
    assert_eq!(
        d["acr_values_supported"],
        json!([
            "http://eidas.europa.eu/LoA/substantial",
            "http://eidas.europa.eu/LoA/high"
        ])
    );
    assert_eq!(d["subject_types_supported"], json!(["public", "pairwise"]));
    for s in ["openid", "profile", "email", "national_id"] {
        assert!(
            d["scopes_supported"]
                .as_array()
                .unwrap()
                .contains(&json!(s))
        );
    }
    for c in [
        "sub",
        "given_name",
        "family_name",
        "birthdate",
        "email",
        "national_id",
        "acr",
        "amr",
    ] {
        assert!(
            d["claims_supported"]
                .as_array()
                .unwrap()
                .contains(&json!(c)),
            "{c}"
        );
    }
    let jwks: Value = http()
        .get(d["jwks_uri"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = &jwks["keys"][0];
    assert_eq!(
        (
            key["kty"].as_str(),
            key["crv"].as_str(),
            key["alg"].as_str()
        ),
        (Some("EC"), Some("P-256"), Some("ES256"))
    );
    assert!(
        key["kid"].is_string() && key.get("d").is_none(),
        "public only"
    );
}
