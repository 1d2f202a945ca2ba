//! Agency-client registration (CONTRACT.md §2, "Client registration rules") against the real
//! server.

use serde_json::{Value, json};

use crate::driver::{Server, plain, tempdir};

/// POSTs a registration that must be refused with 422; returns the fields named.
async fn refused(server: &Server, body: Value) -> Vec<String> {
    let resp = server.post_client(&body).await;
    assert_eq!(resp.status, 422, "{body}");
    assert_eq!(resp.header("content-type"), "application/problem+json");
    let problem = resp.json();
    problem["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no errors in {problem}"))
        .iter()
        .map(|e| e["field"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn registration_defaults_and_secret_shown_once() {
    let data = tempdir();
    let server = plain(&data);
    let resp = server
        .post_client(
            &json!({"name": "Tax Office", "redirect_uris": ["https://tax.example.gov/cb"]}),
        )
        .await;
    assert_eq!(resp.status, 201);
    assert_eq!(resp.header("cache-control"), "no-store");
    let location = resp.location();
    let created = resp.json();
    let id = created["client_id"].as_str().unwrap();
    assert_eq!(location, format!("/admin/v1/clients/{id}"));
    assert!(
        id.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
        "URL-safe id {id}"
    );
    let secret = created["client_secret"].as_str().unwrap();
    assert!(secret.len() >= 43, "256 bits base64url");
    assert_eq!(created["name"], "Tax Office");
    assert_eq!(
        created["redirect_uris"],
        json!(["https://tax.example.gov/cb"])
    );
    assert_eq!(created["post_logout_redirect_uris"], json!([]));
    assert_eq!(created["token_endpoint_auth_method"], "client_secret_basic");
    assert_eq!(created["scope"], "openid profile email");
    assert_eq!(created["subject_type"], "public");
    assert_eq!(
        created["grant_types"],
        json!(["authorization_code", "refresh_token"])
    );

    let resp = server.admin_get(location).await;
    assert_eq!(resp.status, 200);
    let text = &resp.text;
    assert!(!text.contains(secret), "secret shown once: {text}");
    let shown: Value = serde_json::from_str(text).unwrap();
    assert!(shown.get("client_secret").is_none());
    let mut expected = created.clone();
    expected.as_object_mut().unwrap().remove("client_secret");
    assert_eq!(shown, expected);

    let resp = server.admin_get("/admin/v1/clients/unknown").await;
    assert_eq!(resp.status, 404);

    let (_, stderr) = server.stop();
    assert!(!stderr.contains(secret), "secret never logged");
}

#[tokio::test]
async fn other_methods_and_client_credentials() {
    let data = tempdir();
    let server = plain(&data);
    // A public client gets no secret.
    let resp = server
        .post_client(
            &json!({"name": "Citizen app", "redirect_uris": ["http://127.0.0.1:8080/cb"],
                "token_endpoint_auth_method": "none", "subject_type": "pairwise",
                "scope": "openid national_id"}),
        )
        .await;
    assert_eq!(resp.status, 201);
    let created = resp.json();
    assert!(created.get("client_secret").is_none());
    assert_eq!(created["subject_type"], "pairwise");
    assert_eq!(created["scope"], "openid national_id");
    // A seal client without redirect URIs.
    let resp = server
        .post_client(
            &json!({"name": "Registry seal", "grant_types": ["client_credentials"], "scope": "seal",
                "token_endpoint_auth_method": "client_secret_post"}),
        )
        .await;
    assert_eq!(resp.status, 201);
    let created = resp.json();
    assert!(created["client_secret"].is_string());
    assert_eq!(created["redirect_uris"], json!([]));
    assert_eq!(created["grant_types"], json!(["client_credentials"]));
    // private_key_jwt with an EC P-256 key: no secret, keys echoed.
    let jwks = json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": "k1",
        "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
        "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]});
    let resp = server
        .post_client(
            &json!({"name": "Pension fund", "redirect_uris": ["https://pension.example/cb"],
                "token_endpoint_auth_method": "private_key_jwt", "jwks": jwks}),
        )
        .await;
    assert_eq!(resp.status, 201);
    let created = resp.json();
    assert!(created.get("client_secret").is_none());
    assert_eq!(created["jwks"], jwks);
}

#[tokio::test]
async fn invalid_registrations_are_422_naming_the_field() {
    let data = tempdir();
    let server = plain(&data);
    let ok = json!({"name": "Agency", "redirect_uris": ["https://agency.example/cb"]});
    let with = |k: &str, v: Value| {
        let mut b = ok.clone();
        b[k] = v;
        b
    };
    assert_eq!(
        refused(
            &server,
            with("redirect_uris", json!(["http://agency.example/cb"]))
        )
        .await,
        ["redirect_uris"]
    );
    assert_eq!(
        refused(
            &server,
            with("redirect_uris", json!(["https://agency.example/cb#x"]))
        )
        .await,
        ["redirect_uris"]
    );
    let mut pairwise = with(
        "redirect_uris",
        json!(["https://a.example/cb", "https://b.example/cb"]),
    );
    pairwise["subject_type"] = json!("pairwise");
    assert_eq!(refused(&server, pairwise).await, ["redirect_uris"]);
    assert_eq!(
        refused(&server, with("scope", json!("openid admin"))).await,
        ["scope"]
    );
    assert_eq!(
        refused(
            &server,
            with("token_endpoint_auth_method", json!("private_key_jwt"))
        )
        .await,
        ["jwks"]
    );
    assert_eq!(
        refused(&server, with("redirect_uris", json!([]))).await,
        ["redirect_uris"]
    );
    let mut code_without_uris = with("redirect_uris", json!([]));
    code_without_uris["grant_types"] = json!(["authorization_code"]);
    assert_eq!(refused(&server, code_without_uris).await, ["redirect_uris"]);
    let mut public_cc = with("token_endpoint_auth_method", json!("none"));
    public_cc["grant_types"] = json!(["client_credentials"]);
    assert_eq!(refused(&server, public_cc).await, ["grant_types"]);

    // Unknown members and wrong shapes are refused too.
    let resp = server
        .post_client(&with("client_secret", json!("mine")))
        .await;
    assert_eq!(resp.status, 422);
    let resp = server
        .post_client(&with("redirect_uris", json!("https://a.example/cb")))
        .await;
    assert_eq!(resp.status, 422);

    // The base registration itself is fine.
    assert_eq!(server.post_client(&ok).await.status, 201);
}

#[tokio::test]
async fn registration_requires_the_admin_token() {
    let data = tempdir();
    let server = plain(&data);
    let body = json!({"name": "Agency", "redirect_uris": ["https://agency.example/cb"]});
    for auth in [None, Some("Bearer wrong"), Some("Basic YWRtaW46YWRtaW4=")] {
        let resp = server
            .post("/admin/v1/clients")
            .json(&body)
            .authorization(auth)
            .send()
            .await;
        assert_eq!(resp.status, 401, "{auth:?}");
        let problem = resp.json();
        assert!(problem.get("detail").is_none(), "says nothing: {problem}");
    }
    let resp = server.get("/admin/v1/clients/anything").send().await;
    assert_eq!(resp.status, 401);
}
