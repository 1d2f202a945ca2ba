//! The admin registry API (CONTRACT.md §2): authentication, validation, uniqueness, limits.

use serde_json::{Value, json};

use crate::driver::{plain, tempdir};
use crate::support::admin_token;

#[tokio::test]
async fn admin_calls_without_the_right_token_are_401_and_reveal_nothing() {
    let data = tempdir();
    let server = plain(&data);
    let created = server.register_citizen("AUTH-001").await;
    let known = format!("/admin/v1/citizens/{}", created.id);
    let unknown = "/admin/v1/citizens/does-not-exist";
    for target in [known.as_str(), unknown] {
        for auth in [
            None,
            Some("Bearer wrong"),
            Some("Basic YWRtaW46YWRtaW4="),
            Some("Bearer "),
        ] {
            let resp = server.get(target).authorization(auth).send().await;
            assert_eq!(resp.status, 401, "{auth:?}");
            assert_eq!(resp.header("www-authenticate"), "Bearer");
            let body = resp.json();
            assert!(body.get("detail").is_none(), "says nothing: {body}");
        }
    }
    assert_eq!(server.admin_get(&known).await.status, 200);
    assert_eq!(server.admin_get(unknown).await.status, 404);
}

#[tokio::test]
async fn citizen_is_recorded_with_who_and_when() {
    let data = tempdir();
    let server = plain(&data);
    let resp = server
        .admin_post(
            "/admin/v1/citizens",
            &json!({"given_name": " Zoë ", "family_name": "O'Brien-Łukasz",
            "birthdate": "1985-12-31", "national_id": "ab 12 34-x", "email": "Zoe@Example.ORG"}),
        )
        .await;
    assert_eq!(resp.status, 201);
    assert_eq!(resp.header("cache-control"), "no-store");
    let location = resp.location();
    let created = resp.json();
    let code = created["enrolment_code"].as_str().unwrap();
    assert!(code.len() >= 43, "at least 256 bits base64url");
    assert_eq!(
        created["enrolment_url"],
        format!("{}/enrol?code={code}", server.url).as_str()
    );
    let got = server.admin_get(location).await;
    let got = got.json();
    assert_eq!(got["given_name"], "Zoë");
    assert_eq!(got["national_id"], "AB1234-X");
    assert_eq!(got["email"], "Zoe@example.org");
    assert_eq!(got["birthdate"], "1985-12-31");
    assert!(got["registered_by"].as_str().unwrap().starts_with("admin:"));
    assert!(got["created_at"].as_str().unwrap().starts_with("20"));
    assert_eq!(got["passkeys"], json!([]));

    // Secrets never reach the log.
    let (_, log) = server.stop();
    assert!(!log.contains(code), "enrolment code logged");
    assert!(!log.contains(&admin_token()), "admin token logged");
}

#[tokio::test]
async fn duplicate_national_id_is_409_after_normalisation() {
    let data = tempdir();
    let server = plain(&data);
    server.register_citizen("XY-9876").await;
    let resp = server
        .admin_post(
            "/admin/v1/citizens",
            &json!({"given_name": "B", "family_name": "C", "birthdate": "1970-01-01", "national_id": " xy-98 76 "}),
        )
        .await;
    assert_eq!(resp.status, 409);
    assert_eq!(resp.header("content-type"), "application/problem+json");
}

#[tokio::test]
async fn invalid_fields_are_422_naming_each_field() {
    let data = tempdir();
    let server = plain(&data);
    let cases = [
        (
            json!({"given_name": "", "family_name": "N", "birthdate": "1990-01-01", "national_id": "AB1234"}),
            vec!["given_name"],
        ),
        (
            json!({"given_name": "A", "family_name": "N", "birthdate": "1990-02-30", "national_id": "AB1234"}),
            vec!["birthdate"],
        ),
        (
            json!({"given_name": "A", "family_name": "N", "birthdate": "2999-01-01", "national_id": "AB1234"}),
            vec!["birthdate"],
        ),
        (
            json!({"given_name": "A", "family_name": "N", "birthdate": "1990-01-01", "national_id": "A_1"}),
            vec!["national_id"],
        ),
        (
            json!({"given_name": "A", "family_name": "N", "birthdate": "1990-01-01", "national_id": "AB1234", "email": "x@"}),
            vec!["email"],
        ),
        (
            json!({"given_name": "A1", "family_name": "", "birthdate": "x", "national_id": "", "email": "x"}),
            vec![
                "given_name",
                "family_name",
                "national_id",
                "email",
                "birthdate",
            ],
        ),
    ];
    for (body, fields) in cases {
        let resp = server.admin_post("/admin/v1/citizens", &body).await;
        assert_eq!(resp.status, 422, "{body}");
        let got: Vec<&str> = resp.json()["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        assert_eq!(got, fields, "{body}");
    }
    // Wrong shape: missing field, unknown field, wrong type → 422 naming it.
    for (body, needle) in [
        (
            json!({"given_name": "A", "family_name": "N", "birthdate": "1990-01-01"}),
            "national_id",
        ),
        (
            json!({"given_name": "A", "family_name": "N", "birthdate": "1990-01-01", "national_id": "AB1234", "nid": 1}),
            "nid",
        ),
        (
            json!({"given_name": 5, "family_name": "N", "birthdate": "1990-01-01", "national_id": "AB1234"}),
            "given_name",
        ),
    ] {
        let resp = server.admin_post("/admin/v1/citizens", &body).await;
        assert_eq!(resp.status, 422);
        let problem: &Value = resp.json();
        assert!(
            problem["detail"].as_str().unwrap().contains(needle),
            "{problem}"
        );
    }
    // Nothing was stored by any of these.
    let (_, _) = server.stop();
    let citizens = crate::support::outside_runtime(|| {
        let store = civis::store::Store::open_sled(data.path()).unwrap();
        let backend = store.backend().unwrap();
        backend.scan(civis::store::CITIZENS, b"", b"", 10).unwrap()
    });
    assert!(citizens.is_empty());
}

#[tokio::test]
async fn malformed_oversized_and_untyped_bodies_get_precise_4xx() {
    let data = tempdir();
    let server = plain(&data);
    let citizens = "/admin/v1/citizens";
    let resp = server
        .post(citizens)
        .admin()
        .header("content-type", "application/json")
        .body("{\"given_name\":")
        .send()
        .await;
    assert_eq!(resp.status, 400);
    let resp = server.post(citizens).admin().body("{}").send().await;
    assert_eq!(resp.status, 415);
    let huge = format!("{{\"given_name\":\"{}\"}}", "a".repeat(70_000));
    let resp = server
        .post(citizens)
        .admin()
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await;
    assert_eq!(resp.status, 413);
    assert_eq!(resp.header("content-type"), "application/problem+json");
    // The server closes a connection whose oversized body it did not read; the driver
    // sends every request on a new one.
    assert_eq!(server.admin_delete(citizens).await.status, 405);
}

#[tokio::test]
async fn new_enrolment_code_replaces_the_old_one() {
    let data = tempdir();
    let server = plain(&data);
    let created = server.register_citizen("ENR-0001").await;
    let id = &created.id;
    let resp = server
        .post(&format!("/admin/v1/citizens/{id}/enrolment"))
        .admin()
        .send()
        .await;
    assert_eq!(resp.status, 201);
    let again = resp.json();
    assert_ne!(again["enrolment_code"], created.enrolment_code.as_str());
    assert!(again["expires_at"].is_string());
    let resp = server
        .post("/admin/v1/citizens/nope/enrolment")
        .admin()
        .send()
        .await;
    assert_eq!(resp.status, 404);
}
