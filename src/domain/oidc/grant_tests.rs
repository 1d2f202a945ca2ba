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
use crate::domain::passkeys::Session;
use crate::store::Store;

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
        Session {
            citizen_id: citizen.id,
            credential_id: "cred".into(),
            auth_time: NOW,
            expires_at: NOW + Duration::hours(8),
            user_verified: true,
            hardware_attested: false,
        }
    }

    /// A code for `client`, as `/authorize` issues it after login and consent.
    fn code(&self, client: &Client, session: &Session) -> String {
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
        };
        let p = self.provider();
        let pending = p
            .validate_authorization(&params, Some(client), NOW)
            .unwrap();
        let url = p.issue_code(&pending, session, &[7; 32], NOW).unwrap();
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
        self.provider()
            .exchange_code(client, Some(code), Some(REDIRECT), Some(verifier), NOW)
    }

    fn refresh(
        &self,
        client: &Client,
        token: &str,
        at: OffsetDateTime,
    ) -> Result<super::mint::TokenResponse, TokenError> {
        self.provider().refresh(client, Some(token), None, at)
    }

    fn live(&self, access_token: &str) -> bool {
        self.provider()
            .verify_access_token(access_token, NOW)
            .is_ok()
    }
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
        p.id_token_hint_audience(&id_token).as_deref(),
        Some(client.id.as_str())
    );
    assert_eq!(
        p.id_token_hint_audience(&tokens.access_token),
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
    };
    let (machine, _) = clients.register(input, NOW).unwrap();
    let p = f.provider();
    let t = p.client_credentials(&machine, None, NOW).unwrap();
    assert_eq!(t.scope, "seal");
    assert!(t.refresh_token.is_none() && t.id_token.is_none());
    assert!(matches!(
        p.client_credentials(&machine, Some("openid"), NOW),
        Err(TokenError::InvalidScope(_))
    ));
    assert!(f.live(&t.access_token));
    p.revoke(&machine, &t.access_token, NOW).unwrap();
    assert!(!f.live(&t.access_token));
}
