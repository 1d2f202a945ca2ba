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

use crate::driver::{LOGGED_OUT, REDIRECT, enc, jwt_part, plain, query, tempdir};
use crate::support::http_no_redirect;

#[tokio::test]
async fn a_stock_oidc_library_logs_in_with_civis() {
    let data = tempdir();
    let server = plain(&data);
    let web = server.web_client().await;
    let (citizen_id, mut device) = server.citizen_with_passkey("OIDC-0001").await;
    let rp_http = http_no_redirect();

    // Discovery and JWKS, as the library reads them.
    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(server.url.clone()).unwrap(), &rp_http)
            .await
            .expect("discovery");
    let rp = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(web.id.clone()),
        Some(ClientSecret::new(web.secret.clone().unwrap())),
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

    let (back, cookie) = server
        .authorize(auth_url.as_str(), &mut device, None, "allow")
        .await;
    let cookie = cookie.unwrap();
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
        // No attestation roots configured: no passkey is a verified hardware key.
        Some("http://eidas.europa.eu/LoA/substantial")
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
    let raw = jwt_part(&id_token.to_string(), 1);
    assert!(raw["sid"].is_string());
    assert!(raw.get("national_id").is_none(), "{raw}");
    assert_eq!(raw["email"], Value::Null, "the citizen has no e-mail");

    // The access token is an RFC 9068 JWT.
    let at = tokens.access_token().secret().clone();
    let header = jwt_part(&at, 0);
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
    let resp = server
        .get(auth_url.as_str())
        .no_redirect()
        .cookie(&cookie)
        .send()
        .await;
    assert_eq!(resp.status, 303);
    assert!(resp.location().starts_with(REDIRECT));

    // RP-initiated logout with id_token_hint: no question asked, back to the client with state.
    let logout = format!(
        "/end_session?id_token_hint={id_token}&post_logout_redirect_uri={}&state=s1",
        enc(LOGGED_OUT)
    );
    let resp = server
        .get(&logout)
        .no_redirect()
        .cookie(&cookie)
        .send()
        .await;
    assert_eq!(resp.status, 303);
    assert_eq!(resp.location(), format!("{LOGGED_OUT}?state=s1"));
    assert_eq!(
        server.session(&cookie).await.status,
        401,
        "the civis session ended"
    );
}

#[tokio::test]
async fn discovery_lists_what_the_contract_requires() {
    let data = tempdir();
    let server = plain(&data);
    let d = server
        .get("/.well-known/openid-configuration")
        .send()
        .await
        .json()
        .clone();
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
        // High only with --attestation-roots (tests/it/assurance.rs).
        json!(["http://eidas.europa.eu/LoA/substantial"])
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
    let jwks = server.get(d["jwks_uri"].as_str().unwrap()).send().await;
    let jwks = jwks.json();
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
