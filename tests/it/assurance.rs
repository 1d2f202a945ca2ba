//! Issue 9 items 6 and 7: the assurance a login claims is true, and ceremonies from another
//! site's frame are refused.
//!
//! `acr` is LoA high and `amr` has `hwk` only for a device-bound passkey whose attestation
//! chains to a root the operator configured (`--attestation-roots`); everything else is
//! substantial with `swk`. The attestation CAs are made here with rcgen, the attestations by
//! the software [`Device`] (passkey-rs, rewritten to `packed` with `x5c`).

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use serde_json::{Value, json};

use crate::authenticator::Attestor;
use crate::driver::{
    Device, Opts, Reply, Server, VERIFIER, jwt_part, plain, query, start, tempdir,
};

const SUBSTANTIAL: &str = "http://eidas.europa.eu/LoA/substantial";
const HIGH: &str = "http://eidas.europa.eu/LoA/high";

/// An attestation CA of an authenticator maker.
struct MakerCa {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl MakerCa {
    fn new(name: &str) -> Self {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(vec![]).unwrap();
        p.distinguished_name.push(DnType::CommonName, name);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let pem = p.self_signed(&key).unwrap().pem();
        Self {
            pem,
            issuer: Issuer::new(p, key),
        }
    }

    /// An attestation certificate for one authenticator model, as WebAuthn §8.2.1 requires
    /// for `packed` (subject C, O, OU "Authenticator Attestation", CN; not a CA).
    fn attestor(&self) -> Attestor {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(vec![]).unwrap();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CountryName, "SI");
        dn.push(DnType::OrganizationName, "Test Keys d.o.o.");
        dn.push(DnType::OrganizationalUnitName, "Authenticator Attestation");
        dn.push(DnType::CommonName, "Test Key Series 1");
        p.distinguished_name = dn;
        p.is_ca = IsCa::ExplicitNoCa;
        let cert = p.signed_by(&key, &self.issuer).unwrap();
        Attestor {
            x5c: vec![cert.der().to_vec()],
            key_pkcs8: key.serialize_der(),
        }
    }
}

/// A plain-HTTP server trusting `roots` for attestation; the file lives in `dir`.
fn server_trusting(
    data: &tempfile::TempDir,
    dir: &tempfile::TempDir,
    roots: &[&MakerCa],
) -> Server {
    let path = dir.path().join("attestation-roots.pem");
    let pem: String = roots.iter().map(|r| r.pem.as_str()).collect();
    std::fs::write(&path, pem).unwrap();
    start(
        data,
        Opts::plain().with_args(["--attestation-roots", path.to_str().unwrap()]),
    )
}

/// Registers a citizen and enrols `device` for them (which must be accepted).
async fn enrolled(server: &Server, national_id: &str, mut device: Device) -> Device {
    let created = server.register_citizen(national_id).await;
    let answer = server.enrol(&created.enrolment_code, &mut device).await;
    assert_eq!(answer.status, 201, "{}", answer.text);
    device
}

/// Enrols `device` for a new citizen, signs in through `/authorize` and returns the ID
/// token's claims.
async fn id_token_claims(server: &Server, national_id: &str, device: Device) -> Value {
    let mut device = enrolled(server, national_id, device).await;
    let web = server.web_client().await;
    let (code, _) = server.code_for(&web.id, &mut device, None).await;
    let tokens = server.redeem(web.auth(), &code, VERIFIER).await.tokens();
    jwt_part(tokens.id_token(), 1)
}

fn amr(claims: &Value) -> Vec<String> {
    serde_json::from_value(claims["amr"].clone()).unwrap()
}

/// What `/authorize` answers a signed-in citizen asking for `acr_values=high`.
async fn ask_for_high(server: &Server, device: &mut Device) -> String {
    let web = server.web_client().await;
    let url = server.auth_url(
        &web.id,
        "&acr_values=http%3A%2F%2Feidas.europa.eu%2FLoA%2Fhigh",
    );
    let (back, _) = server.authorize(&url, device, None, "allow").await;
    back
}

#[tokio::test]
async fn without_attestation_roots_a_passkey_is_substantial_and_swk() {
    let data = tempdir();
    let server = plain(&data);
    let d = server
        .get("/.well-known/openid-configuration")
        .send()
        .await
        .json()
        .clone();
    assert_eq!(d["acr_values_supported"], json!([SUBSTANTIAL]), "{d}");

    // Even a device-bound key with a well-formed packed attestation: nothing to check it
    // against, so it proves nothing.
    let maker = MakerCa::new("Unconfigured maker");
    let device = Device::new(&server.url)
        .attesting(maker.attestor())
        .device_bound();
    let claims = id_token_claims(&server, "AS-0001", device).await;
    assert_eq!(claims["acr"], SUBSTANTIAL, "{claims}");
    assert_eq!(amr(&claims), ["swk", "user", "mfa"], "{claims}");

    // passkey-rs's own answer: `none` attestation, synced.
    let claims = id_token_claims(&server, "AS-0002", Device::new(&server.url)).await;
    assert_eq!(claims["acr"], SUBSTANTIAL, "{claims}");
    assert!(!amr(&claims).contains(&"hwk".to_owned()), "{claims}");

    let (_, mut device) = server.citizen_with_passkey("AS-0003").await;
    let back = ask_for_high(&server, &mut device).await;
    assert_eq!(
        query(&back, "error").as_deref(),
        Some("unmet_authentication_requirements"),
        "{back}"
    );
}

#[tokio::test]
async fn a_device_bound_key_attested_by_a_trusted_root_reaches_high_and_hwk() {
    let data = tempdir();
    let dir = tempdir();
    let maker = MakerCa::new("Trusted maker");
    let server = server_trusting(&data, &dir, &[&MakerCa::new("Other maker"), &maker]);
    let d = server
        .get("/.well-known/openid-configuration")
        .send()
        .await
        .json()
        .clone();
    assert_eq!(d["acr_values_supported"], json!([SUBSTANTIAL, HIGH]), "{d}");

    // Enrolment asks for the authenticator's attestation.
    let created = server.register_citizen("AS-0010").await;
    let started = server
        .start_enrolment(&created.enrolment_code)
        .await
        .json()
        .clone();
    assert_eq!(started["options"]["publicKey"]["attestation"], "direct");

    let device = Device::new(&server.url)
        .attesting(maker.attestor())
        .device_bound();
    let claims = id_token_claims(&server, "AS-0011", device).await;
    assert_eq!(claims["acr"], HIGH, "{claims}");
    assert_eq!(amr(&claims), ["hwk", "user", "mfa"], "{claims}");

    let device = Device::new(&server.url)
        .attesting(maker.attestor())
        .device_bound();
    let mut device = enrolled(&server, "AS-0012", device).await;
    let back = ask_for_high(&server, &mut device).await;
    assert!(query(&back, "code").is_some(), "high can be met: {back}");
}

#[tokio::test]
async fn untrusted_unattested_and_synced_keys_stay_substantial_with_roots_configured() {
    let data = tempdir();
    let dir = tempdir();
    let trusted = MakerCa::new("Trusted maker");
    let server = server_trusting(&data, &dir, &[&trusted]);

    // Chained to a CA the operator does not trust: enrolled (nobody is locked out), but
    // not a verified hardware key.
    let stranger = MakerCa::new("Unknown maker");
    let device = Device::new(&server.url)
        .attesting(stranger.attestor())
        .device_bound();
    let claims = id_token_claims(&server, "AS-0020", device).await;
    assert_eq!(claims["acr"], SUBSTANTIAL, "{claims}");
    assert_eq!(amr(&claims), ["swk", "user", "mfa"], "{claims}");

    // `none` attestation on a device-bound key.
    let device = Device::new(&server.url).device_bound();
    let claims = id_token_claims(&server, "AS-0021", device).await;
    assert_eq!(claims["acr"], SUBSTANTIAL, "{claims}");
    assert_eq!(amr(&claims), ["swk", "user", "mfa"], "{claims}");

    // Trusted attestation, but backup-eligible: the key may be synced to other devices.
    let device = Device::new(&server.url).attesting(trusted.attestor());
    let claims = id_token_claims(&server, "AS-0022", device).await;
    assert_eq!(claims["acr"], SUBSTANTIAL, "{claims}");
    assert_eq!(amr(&claims), ["swk", "user", "mfa"], "{claims}");

    let device = Device::new(&server.url)
        .attesting(stranger.attestor())
        .device_bound();
    let mut device = enrolled(&server, "AS-0023", device).await;
    let back = ask_for_high(&server, &mut device).await;
    assert_eq!(
        query(&back, "error").as_deref(),
        Some("unmet_authentication_requirements"),
        "{back}"
    );
}

fn refused(a: &Reply) {
    assert_eq!(a.status, 400, "{a:?}");
    assert_eq!(
        a.json()["type"],
        "urn:civis:problem:passkey-refused",
        "{a:?}"
    );
}

/// A login whose client data is changed by `tweak` (and validly re-signed).
async fn login_with(server: &Server, device: &mut Device, tweak: impl FnOnce(&mut Value)) -> Reply {
    let started = server.start_login().await.json().clone();
    let cred = device.get_with(&started["options"], tweak).await.unwrap();
    server.finish_login(&started["ceremony"], &cred).await
}

#[tokio::test]
async fn ceremonies_from_a_cross_origin_frame_are_refused() {
    let data = tempdir();
    let server = plain(&data);
    let (_, mut device) = server.citizen_with_passkey("AS-0030").await;

    // The re-signing itself is sound: unchanged client data logs in.
    let ok = login_with(&server, &mut device, |_| {}).await;
    assert_eq!(ok.status, 200, "{}", ok.text);

    let cross = login_with(&server, &mut device, |c| {
        c["crossOrigin"] = true.into();
        c["topOrigin"] = "https://evil.example".into();
    })
    .await;
    refused(&cross);
    let cross = login_with(&server, &mut device, |c| c["crossOrigin"] = true.into()).await;
    refused(&cross);
    let framed = login_with(&server, &mut device, |c| {
        c["topOrigin"] = "https://evil.example".into();
    })
    .await;
    refused(&framed);
    // Our own origin as top-level origin is fine.
    let own = server.url.clone();
    let ok = login_with(&server, &mut device, move |c| c["topOrigin"] = own.into()).await;
    assert_eq!(ok.status, 200, "{}", ok.text);

    // Enrolment: `none` attestation signs nothing over the client data, so edit it directly.
    let created = server.register_citizen("AS-0031").await;
    let mut device = Device::new(&server.url);
    let started = server
        .start_enrolment(&created.enrolment_code)
        .await
        .json()
        .clone();
    let mut cred = device.create(&started["options"]).await.unwrap();
    let raw = cred["response"]["clientDataJSON"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut client_data: Value = serde_json::from_slice(&b64url_decode(&raw)).unwrap();
    client_data["topOrigin"] = "https://evil.example".into();
    cred["response"]["clientDataJSON"] =
        b64url_encode(&serde_json::to_vec(&client_data).unwrap()).into();
    refused(&server.finish_enrolment(&started["ceremony"], &cred).await);
    // The code was not used up: the same citizen enrols from our own page.
    let mut device = Device::new(&server.url);
    assert_eq!(
        server
            .enrol(&created.enrolment_code, &mut device)
            .await
            .status,
        201
    );
}

fn b64url_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .unwrap()
}

fn b64url_encode(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}
