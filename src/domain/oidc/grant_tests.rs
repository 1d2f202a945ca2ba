//! Unit tests of the grants and of token verification, on the memory store with the
//! development keys: what the token endpoint promises, checked without HTTP.

use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use super::Provider;
use super::authorize::AuthorizeParams;
use super::grants::TokenError;
use super::verify::InvalidToken;
use crate::crypto::KeySet;
use crate::domain::SystemRng;
use crate::domain::citizens::{NewCitizen, Registry};
use crate::domain::clients::{Client, Clients, NewClient};
use crate::domain::passkeys::{Session, StoredPasskey};
use crate::store::Store;
use webauthn_rs::prelude::{
    AttestationFormat, COSEAlgorithm, COSEEC2Key, COSEKey, COSEKeyType, Credential, ECDSACurve,
    ParsedAttestation, Passkey,
};

const ISSUER: &str = "https://civis.test";
const REDIRECT: &str = "https://agency.test/cb";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const NOW: OffsetDateTime = datetime!(2026-12-01 10:00 UTC);

struct Fixture {
    store: Store,
    keys: KeySet,
    rng: SystemRng,
    grace: Duration,
}

impl Fixture {
    fn new() -> Self {
        let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("keys-dev");
        Self {
            store: Store::in_memory(),
            keys: KeySet::load(&root, &root.join("admin-token")).unwrap(),
            rng: SystemRng::new(),
            grace: Duration::ZERO,
        }
    }

    fn provider(&self) -> Provider<'_> {
        Provider {
            store: &self.store,
            rng: &self.rng,
            keys: &self.keys,
            issuer: ISSUER,
            refresh_grace: self.grace,
        }
    }

    fn client(&self) -> Client {
        let clients = Clients {
            store: &self.store,
            rng: &self.rng,
            keys: &self.keys,
        };
        let input = NewClient {
            name: "Agency".into(),
            redirect_uris: vec![REDIRECT.into()],
            post_logout_redirect_uris: None,
            token_endpoint_auth_method: None,
            jwks: None,
            scope: None,
            subject_type: None,
            grant_types: None,
            ..Default::default()
        };
        clients.register(input, NOW).unwrap().0
    }

    fn session(&self, national_id: &str) -> Session {
        let registry = Registry {
            store: &self.store,
            rng: &self.rng,
            enrolment_ttl: Duration::hours(1),
        };
        let input = NewCitizen {
            given_name: "Ana".into(),
            family_name: "Novak".into(),
            birthdate: "1990-04-01".into(),
            national_id: national_id.into(),
            email: None,
        };
        let (citizen, _) = registry.register(input, "officer", NOW).unwrap();
        let session = Session {
            citizen_id: citizen.id.clone(),
            credential_id: format!("cred-{national_id}"),
            auth_time: NOW,
            expires_at: NOW + Duration::hours(8),
            user_verified: true,
            hardware_attested: false,
        };
        let passkey = StoredPasskey {
            id: session.credential_id.clone(),
            citizen_id: citizen.id,
            passkey: sample_passkey(),
            created_at: NOW,
            last_used_at: None,
            revoked_at: None,
        };
        self.store
            .transact(|tx| {
                tx.passkeys().insert_credential(&passkey)?;
                tx.passkeys()
                    .insert_session(&session_hash(&session), &session)
            })
            .unwrap();
        session
    }

    /// A code for `client`, as `/authorize` issues it after login and consent.
    fn code(&self, client: &Client, session: &Session) -> String {
        self.code_at(client, session, NOW)
    }

    /// [`Fixture::code`] at `now` (consent given then, if there was none).
    fn code_at(&self, client: &Client, session: &Session, now: OffsetDateTime) -> String {
        let params = AuthorizeParams {
            response_type: Some("code".into()),
            client_id: Some(client.id.clone()),
            redirect_uri: Some(REDIRECT.into()),
            scope: Some("openid profile".into()),
            state: None,
            nonce: Some("n".into()),
            code_challenge: Some(CHALLENGE.into()),
            code_challenge_method: Some("S256".into()),
            prompt: None,
            max_age: None,
            acr_values: None,
            response_mode: None,
            request: None,
            request_uri: None,
            dpop_jkt: None,
        };
        let p = self.provider();
        let pending = p
            .validate_authorization(&params, Some(client), now)
            .unwrap();
        p.remember_consent(&session.citizen_id, &pending, now)
            .unwrap();
        let url = p
            .issue_code(&pending, session, &session_hash(session), now)
            .unwrap();
        url::Url::parse(&url)
            .unwrap()
            .query_pairs()
            .find(|(k, _)| k == "code")
            .map(|(_, v)| v.into_owned())
            .unwrap()
    }

    fn redeem(
        &self,
        client: &Client,
        code: &str,
        verifier: &str,
    ) -> Result<super::mint::TokenResponse, TokenError> {
        self.provider().exchange_code(
            client,
            Some(code),
            Some(REDIRECT),
            Some(verifier),
            None,
            NOW,
        )
    }

    fn refresh(
        &self,
        client: &Client,
        token: &str,
        at: OffsetDateTime,
    ) -> Result<super::mint::TokenResponse, TokenError> {
        self.provider().refresh(client, Some(token), None, None, at)
    }

    fn live(&self, access_token: &str) -> bool {
        self.provider()
            .verify_access_token(access_token, NOW)
            .is_ok()
    }
}

/// The fixture's session token hash (one per credential).
fn session_hash(session: &Session) -> [u8; 32] {
    crate::crypto::digest::sha256(session.credential_id.as_bytes())
}

/// A passkey as webauthn-rs keeps it (the key is never used: no assertion is checked here).
fn sample_passkey() -> Passkey {
    Credential {
        cred_id: vec![1; 16],
        cred: COSEKey {
            type_: COSEAlgorithm::ES256,
            key: COSEKeyType::EC_EC2(COSEEC2Key {
                curve: ECDSACurve::SECP256R1,
                x: vec![2; 32],
                y: vec![3; 32],
            }),
        },
        counter: 0,
        transports: None,
        user_verified: true,
        backup_eligible: false,
        backup_state: false,
        registration_policy: webauthn_rs_proto::UserVerificationPolicy::Required,
        extensions: webauthn_rs_proto::RegisteredExtensions::none(),
        attestation: ParsedAttestation::default(),
        attestation_format: AttestationFormat::None,
    }
    .into()
}

fn invalid_grant(r: Result<super::mint::TokenResponse, TokenError>) -> &'static str {
    match r {
        Err(TokenError::InvalidGrant(why)) => why,
        other => panic!("expected invalid_grant, got {other:?}"),
    }
}

#[test]
fn a_code_is_redeemed_once_and_its_replay_revokes_the_grant() {
    let f = Fixture::new();
    let client = f.client();
    let code = f.code(&client, &f.session("AB1001"));
    let tokens = f.redeem(&client, &code, VERIFIER).unwrap();
    assert!(tokens.id_token.is_some() && tokens.refresh_token.is_some());
    assert!(f.live(&tokens.access_token));
    invalid_grant(f.redeem(&client, &code, VERIFIER));
    assert!(
        !f.live(&tokens.access_token),
        "the replay revoked the grant"
    );
    let refresh = tokens.refresh_token.unwrap();
    invalid_grant(f.refresh(&client, &refresh, NOW));
}

#[test]
fn a_code_presented_wrongly_is_spent_anyway() {
    let f = Fixture::new();
    let client = f.client();
    let session = f.session("AB1002");
    let code = f.code(&client, &session);
    let why = invalid_grant(f.redeem(&client, &code, "x".repeat(43).as_str()));
    assert!(why.contains("code_verifier"), "{why}");
    invalid_grant(f.redeem(&client, &code, VERIFIER));
    let other = f.client();
    let code = f.code(&client, &session);
    assert_eq!(
        invalid_grant(f.redeem(&other, &code, VERIFIER)),
        super::grants::WRONG_CLIENT
    );
    invalid_grant(f.redeem(&client, &code, VERIFIER));
}

#[test]
fn refresh_rotates_and_a_reused_token_revokes_the_grant() {
    let f = Fixture::new();
    let client = f.client();
    let code = f.code(&client, &f.session("AB1003"));
    let first = f.redeem(&client, &code, VERIFIER).unwrap();
    let old = first.refresh_token.unwrap();
    let second = f
        .refresh(&client, &old, NOW + Duration::minutes(1))
        .unwrap();
    let new = second.refresh_token.clone().unwrap();
    assert_ne!(new, old, "rotated");
    assert!(f.live(&second.access_token));
    invalid_grant(f.refresh(&client, &old, NOW + Duration::minutes(2)));
    assert!(
        !f.live(&second.access_token),
        "reuse revoked the whole grant"
    );
    invalid_grant(f.refresh(&client, &new, NOW + Duration::minutes(3)));
}

#[test]
fn a_retry_within_the_grace_gets_the_same_answer_and_after_it_revokes() {
    let mut f = Fixture::new();
    f.grace = Duration::seconds(10);
    let client = f.client();
    let code = f.code(&client, &f.session("AB1004"));
    let old = f
        .redeem(&client, &code, VERIFIER)
        .unwrap()
        .refresh_token
        .unwrap();
    let at = NOW + Duration::minutes(1);
    let answer = f.refresh(&client, &old, at).unwrap();
    assert_eq!(
        f.refresh(&client, &old, at + Duration::seconds(10))
            .unwrap(),
        answer
    );
    invalid_grant(f.refresh(&client, &old, at + Duration::seconds(11)));
    assert!(!f.live(&answer.access_token));
}

#[test]
fn another_clients_refresh_token_and_an_expired_one_are_refused() {
    let f = Fixture::new();
    let client = f.client();
    let code = f.code(&client, &f.session("AB1005"));
    let token = f
        .redeem(&client, &code, VERIFIER)
        .unwrap()
        .refresh_token
        .unwrap();
    invalid_grant(f.refresh(&f.client(), &token, NOW));
    invalid_grant(f.refresh(&client, &token, NOW + super::REFRESH_TTL));
    assert!(
        f.refresh(&client, &token, NOW + Duration::days(1)).is_ok(),
        "neither spent it"
    );
}

#[test]
fn revoking_a_refresh_token_kills_its_access_tokens_and_introspection_says_so() {
    let f = Fixture::new();
    let client = f.client();
    let code = f.code(&client, &f.session("AB1006"));
    let tokens = f.redeem(&client, &code, VERIFIER).unwrap();
    let p = f.provider();
    let seen = p.introspect(&client, &tokens.access_token, NOW).unwrap();
    assert_eq!(seen["active"], true);
    let foreign = p
        .introspect(&f.client(), &tokens.access_token, NOW)
        .unwrap();
    assert_eq!(foreign["active"], false, "only the client's own tokens");
    p.revoke(&client, tokens.refresh_token.as_deref().unwrap(), NOW)
        .unwrap();
    assert!(matches!(
        p.verify_access_token(&tokens.access_token, NOW),
        Err(InvalidToken::Revoked)
    ));
    let after = p.introspect(&client, &tokens.access_token, NOW).unwrap();
    assert_eq!(after["active"], false);
}

#[test]
fn access_tokens_expire_and_id_tokens_do_not_pass_as_access_tokens() {
    let f = Fixture::new();
    let client = f.client();
    let code = f.code(&client, &f.session("AB1007"));
    let tokens = f.redeem(&client, &code, VERIFIER).unwrap();
    let p = f.provider();
    assert!(matches!(
        p.verify_access_token(&tokens.access_token, NOW + super::TOKEN_TTL),
        Err(InvalidToken::Rejected(_))
    ));
    let id_token = tokens.id_token.unwrap();
    assert!(matches!(
        p.verify_access_token(&id_token, NOW),
        Err(InvalidToken::Rejected(_))
    ));
    assert_eq!(
        p.id_token_hint(&id_token).map(|h| h.aud).as_deref(),
        Some(client.id.as_str())
    );
    assert_eq!(
        p.id_token_hint(&tokens.access_token).map(|h| h.aud),
        None,
        "not an ID token"
    );
}

#[test]
fn client_credentials_are_stateless_and_revocable_by_jti() {
    let f = Fixture::new();
    let clients = Clients {
        store: &f.store,
        rng: &f.rng,
        keys: &f.keys,
    };
    let input = NewClient {
        name: "Batch".into(),
        redirect_uris: vec![],
        post_logout_redirect_uris: None,
        token_endpoint_auth_method: None,
        jwks: None,
        scope: Some("seal".into()),
        subject_type: None,
        grant_types: Some(vec!["client_credentials".into()]),
        ..Default::default()
    };
    let (machine, _) = clients.register(input, NOW).unwrap();
    let p = f.provider();
    let t = p.client_credentials(&machine, None, None, NOW).unwrap();
    assert_eq!(t.scope, "seal");
    assert!(t.refresh_token.is_none() && t.id_token.is_none());
    assert!(matches!(
        p.client_credentials(&machine, Some("openid"), None, NOW),
        Err(TokenError::InvalidScope(_))
    ));
    assert!(f.live(&t.access_token));
    p.revoke(&machine, &t.access_token, NOW).unwrap();
    assert!(!f.live(&t.access_token));
}

/// The passkey behind `session`, marked revoked (as `DELETE …/passkeys/{id}` does).
fn revoke_passkey(f: &Fixture, session: &Session) {
    f.store
        .transact(|tx| {
            let mut p = tx.passkeys().credential(&session.credential_id)?.unwrap();
            p.revoked_at = Some(NOW);
            tx.passkeys().update_credential(&p);
            Ok::<_, crate::store::StoreError>(())
        })
        .unwrap();
}

#[test]
fn revoking_the_passkey_kills_its_grants_tokens_and_unredeemed_codes() {
    let f = Fixture::new();
    let client = f.client();
    let session = f.session("AB1101");
    let tokens = f
        .redeem(&client, &f.code(&client, &session), VERIFIER)
        .unwrap();
    let pending_code = f.code(&client, &session);
    let refresh = tokens.refresh_token.clone().unwrap();
    let p = f.provider();
    assert_eq!(
        p.introspect(&client, &refresh, NOW).unwrap()["active"],
        true
    );

    revoke_passkey(&f, &session);
    assert!(!f.live(&tokens.access_token));
    assert_eq!(
        p.introspect(&client, &refresh, NOW).unwrap()["active"],
        false
    );
    invalid_grant(f.refresh(&client, &refresh, NOW));
    invalid_grant(f.redeem(&client, &pending_code, VERIFIER));
}

#[test]
fn withdrawn_consent_kills_grants_and_a_new_consent_does_not_revive_them() {
    let f = Fixture::new();
    let client = f.client();
    let session = f.session("AB1102");
    let old = f
        .redeem(&client, &f.code(&client, &session), VERIFIER)
        .unwrap();
    let p = f.provider();
    p.revoke_consent(&session.citizen_id, &client.id, NOW)
        .unwrap();
    assert!(!f.live(&old.access_token));
    invalid_grant(f.refresh(&client, old.refresh_token.as_deref().unwrap(), NOW));

    // Consent given again, later: new grants work, the old one stays dead.
    let later = NOW + Duration::seconds(5);
    let code = f.code_at(&client, &session, later);
    let fresh = p
        .exchange_code(
            &client,
            Some(&code),
            Some(REDIRECT),
            Some(VERIFIER),
            None,
            later,
        )
        .unwrap();
    assert!(
        p.verify_access_token(&fresh.access_token, later).is_ok(),
        "new grant"
    );
    invalid_grant(f.refresh(&client, old.refresh_token.as_deref().unwrap(), later));
}

#[test]
fn a_code_dies_with_the_session_that_produced_it() {
    let f = Fixture::new();
    let client = f.client();
    let session = f.session("AB1103");
    let code = f.code(&client, &session);
    f.store
        .transact(|tx| {
            tx.passkeys().delete_session(&session_hash(&session));
            Ok::<_, crate::store::StoreError>(())
        })
        .unwrap();
    let why = invalid_grant(f.redeem(&client, &code, VERIFIER));
    assert!(why.contains("ended"), "{why}");
}

#[test]
fn sid_differs_per_client_for_one_session() {
    let f = Fixture::new();
    let (a, b) = (f.client(), f.client());
    let session = f.session("AB1104");
    let sid = |client: &Client| {
        let t = f
            .redeem(client, &f.code(client, &session), VERIFIER)
            .unwrap();
        let claims = t.id_token.unwrap().split('.').nth(1).unwrap().to_owned();
        let claims: serde_json::Value = serde_json::from_slice(
            &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, claims)
                .unwrap(),
        )
        .unwrap();
        claims["sid"].as_str().unwrap().to_owned()
    };
    let (sa, sb) = (sid(&a), sid(&b));
    assert_ne!(sa, sb);
    assert_eq!(sa, sid(&a), "stable for one session and client");
}
