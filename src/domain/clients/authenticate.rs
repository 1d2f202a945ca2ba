//! Client authentication at the token, introspection and revocation endpoints:
//! [`Clients::authenticate`] with `client_secret_basic`, `client_secret_post`, `none` and
//! RFC 7523 `private_key_jwt` assertions (verified, then their `jti` spent once).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::crypto::PublicKey;
use crate::crypto::jwt::{self, Expect, Rejected, Typ};

use super::{
    ASSERTION_CLOCK_SKEW, AuthFailure, AuthMethod, Client, ClientAuthError, Clients,
    JWT_BEARER_ASSERTION_TYPE, MAX_ASSERTION_LEN, MAX_ASSERTION_LIFETIME, MAX_JTI_LEN,
    PresentedClient,
};

fn refuse(reason: impl Into<String>) -> AuthFailure {
    AuthFailure::Client(ClientAuthError::Invalid(reason.into()))
}

/// RFC 7519 `aud` of a client assertion: one string or an array.
#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    fn contains_any(&self, accepted: &[&str]) -> bool {
        match self {
            Self::One(a) => accepted.contains(&a.as_str()),
            Self::Many(list) => list.iter().any(|a| accepted.contains(&a.as_str())),
        }
    }
}

/// The claims of a client assertion that we check (RFC 7523 §3).
#[derive(Deserialize)]
struct AssertionClaims {
    iss: Option<String>,
    sub: Option<String>,
    aud: Option<Audience>,
    exp: Option<f64>,
    nbf: Option<f64>,
    iat: Option<f64>,
    jti: Option<String>,
}

/// The `sub` of an assertion, read without verification only to find the client whose key
/// verifies it.
fn assertion_subject(assertion: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Peek {
        sub: Option<String>,
    }
    let payload = assertion.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    serde_json::from_slice::<Peek>(&bytes).ok()?.sub
}

fn numeric_date(v: f64) -> Option<OffsetDateTime> {
    if !v.is_finite() {
        return None;
    }
    // NumericDate may carry fractions (RFC 7519 §2); whole seconds are precise enough.
    #[allow(clippy::cast_possible_truncation)]
    let secs = v.floor() as i64;
    OffsetDateTime::from_unix_timestamp(secs).ok()
}

impl Clients<'_> {
    /// Authenticates the client of a token, introspection or revocation request.
    ///
    /// Exactly one method may be presented, and it must be the client's registered one.
    /// `audiences` are the values a `private_key_jwt` assertion's `aud` may hold (the
    /// endpoint URLs and, last, the issuer: a FAPI 2.0 client's `aud` must be the issuer).
    ///
    /// # Errors
    /// [`AuthFailure::Client`] for anything the client got wrong (unknown client, wrong
    /// secret, wrong method, bad or replayed assertion); [`AuthFailure::Domain`] when storage
    /// fails.
    pub fn authenticate(
        &self,
        presented: &PresentedClient,
        audiences: &[&str],
        now: OffsetDateTime,
    ) -> Result<Client, AuthFailure> {
        let mut methods = Vec::new();
        if presented.basic.is_some() {
            methods.push(AuthMethod::ClientSecretBasic);
        }
        if presented.client_secret.is_some() {
            methods.push(AuthMethod::ClientSecretPost);
        }
        if presented.assertion.is_some() || presented.assertion_type.is_some() {
            methods.push(AuthMethod::PrivateKeyJwt);
        }
        if methods.len() > 1 {
            return Err(refuse(format!(
                "more than one authentication method presented ({})",
                methods
                    .iter()
                    .map(|m| m.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let method = methods.first().copied().unwrap_or(AuthMethod::None);

        // Which client the request claims to be, and its proof.
        let (client_id, secret) = match method {
            AuthMethod::ClientSecretBasic => {
                let (id, secret) = presented.basic.clone().unwrap_or_default();
                if presented.client_id.as_ref().is_some_and(|c| *c != id) {
                    return Err(refuse("client_id in the body differs from HTTP Basic"));
                }
                (id, Some(secret))
            }
            AuthMethod::ClientSecretPost => {
                let id = presented
                    .client_id
                    .clone()
                    .ok_or_else(|| refuse("client_secret without client_id"))?;
                (id, presented.client_secret.clone())
            }
            AuthMethod::PrivateKeyJwt => {
                if presented.assertion_type.as_deref() != Some(JWT_BEARER_ASSERTION_TYPE) {
                    return Err(refuse("client_assertion_type missing or not jwt-bearer"));
                }
                let assertion = presented
                    .assertion
                    .as_deref()
                    .ok_or_else(|| refuse("client_assertion_type without client_assertion"))?;
                if assertion.len() > MAX_ASSERTION_LEN {
                    return Err(refuse("client_assertion too long"));
                }
                let sub = assertion_subject(assertion)
                    .ok_or_else(|| refuse("client_assertion is not a JWT with a sub claim"))?;
                if presented.client_id.as_ref().is_some_and(|c| *c != sub) {
                    return Err(refuse("client_id differs from the assertion's sub"));
                }
                (sub, None)
            }
            AuthMethod::None => {
                let id = presented
                    .client_id
                    .clone()
                    .ok_or_else(|| refuse("no client credentials presented"))?;
                (id, None)
            }
        };
        let secret = secret.map(Zeroizing::new);
        // Hash before the lookup, so an unknown client costs the same as a wrong secret.
        let presented_hash = secret.as_ref().map(|s| self.secret_hash(s));

        let client = self
            .store
            .clients()
            .cached(&client_id)?
            .ok_or_else(|| refuse("unknown client_id"))?;
        if client.auth_method != method {
            return Err(refuse(format!(
                "client {} is registered for {} but presented {}",
                client.id,
                client.auth_method.as_str(),
                method.as_str()
            )));
        }
        match method {
            AuthMethod::ClientSecretBasic | AuthMethod::ClientSecretPost => {
                let ok = match (&client.secret_hash, &presented_hash) {
                    (Some(stored), Some(given)) => stored == given,
                    _ => false,
                };
                if !ok {
                    return Err(refuse(format!(
                        "wrong client secret for client {}",
                        client.id
                    )));
                }
            }
            AuthMethod::PrivateKeyJwt => {
                let assertion = presented.assertion.as_deref().unwrap_or_default();
                self.verify_assertion(&client, assertion, audiences, now)?;
            }
            AuthMethod::None => {}
        }
        Ok(client)
    }

    /// Verifies a `private_key_jwt` assertion (RFC 7523 §3) and spends its `jti`.
    fn verify_assertion(
        &self,
        client: &Client,
        assertion: &str,
        audiences: &[&str],
        now: OffsetDateTime,
    ) -> Result<(), AuthFailure> {
        let id = &client.id;
        let registered: Vec<&serde_json::Value> = client
            .jwks
            .as_ref()
            .and_then(|j| j.get("keys"))
            .and_then(serde_json::Value::as_array)
            .map(|k| k.iter().collect())
            .unwrap_or_default();
        // With a kid, the keys registered under it; without, every registered key.
        let candidates = |kid: Option<&str>| -> Vec<PublicKey> {
            registered
                .iter()
                .filter(|k| {
                    kid.is_none_or(|kid| {
                        k.get("kid").and_then(serde_json::Value::as_str) == Some(kid)
                    })
                })
                .filter_map(|k| crate::crypto::jwt::jwk_public_key(k))
                .collect()
        };
        // Time and audience are checked below against the injected `now`.
        let expect = Expect {
            typ: Typ::Any,
            issuer: None,
            audience: None,
            required: &[],
        };
        let claims: AssertionClaims =
            jwt::verify(assertion, candidates, &expect).map_err(|e| match e {
                Rejected::Malformed(e) => {
                    refuse(format!("client {id}: malformed assertion header ({e})"))
                }
                Rejected::Algorithm(alg) => refuse(format!(
                    "client {id}: assertion alg {alg} refused, only ES256"
                )),
                Rejected::NoKey => refuse(format!(
                    "client {id}: no registered key matches the assertion's kid"
                )),
                Rejected::Typ | Rejected::Invalid(_) => refuse(format!(
                    "client {id}: assertion signature or claims not valid under the registered \
                     keys ({e})"
                )),
            })?;

        if claims.iss.as_deref() != Some(id) || claims.sub.as_deref() != Some(id) {
            return Err(refuse(format!(
                "client {id}: assertion iss and sub must both be the client_id"
            )));
        }
        // FAPI 2.0 Security Profile §5.3.2.1: only the issuer, as a string (so that an
        // assertion made for another server's endpoint can never be replayed here).
        let accepted = if client.security.fapi2 {
            matches!((&claims.aud, audiences.last()), (Some(Audience::One(a)), Some(issuer)) if a == issuer)
        } else {
            claims
                .aud
                .as_ref()
                .is_some_and(|a| a.contains_any(audiences))
        };
        if !accepted {
            return Err(refuse(format!(
                "client {id}: assertion aud names neither the token endpoint nor the issuer"
            )));
        }
        let exp = claims
            .exp
            .and_then(numeric_date)
            .ok_or_else(|| refuse(format!("client {id}: assertion without a valid exp")))?;
        if exp + ASSERTION_CLOCK_SKEW <= now {
            return Err(refuse(format!("client {id}: assertion expired")));
        }
        if exp > now + MAX_ASSERTION_LIFETIME + ASSERTION_CLOCK_SKEW {
            return Err(refuse(format!(
                "client {id}: assertion exp is more than 10 minutes ahead"
            )));
        }
        for (name, value) in [("nbf", claims.nbf), ("iat", claims.iat)] {
            if let Some(v) = value {
                let t = numeric_date(v)
                    .ok_or_else(|| refuse(format!("client {id}: assertion {name} invalid")))?;
                if t > now + ASSERTION_CLOCK_SKEW {
                    return Err(refuse(format!(
                        "client {id}: assertion {name} in the future"
                    )));
                }
            }
        }
        let jti = claims
            .jti
            .filter(|j| !j.is_empty() && j.len() <= MAX_JTI_LEN)
            .ok_or_else(|| refuse(format!("client {id}: assertion without a usable jti")))?;
        // Kept until the assertion could no longer be accepted anyway.
        let keep_until = exp + ASSERTION_CLOCK_SKEW;
        let fresh = self
            .store
            .transact(|tx| tx.clients().claim_assertion_jti(id, &jti, keep_until))?;
        if !fresh {
            return Err(refuse(format!("client {id}: assertion jti replayed")));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::clients::NewClient;
    use crate::domain::clients::test_support::{ClientKey, NOW, clients, input};
    use crate::store::Store;
    use time::Duration;

    const TOKEN_URL: &str = "https://id.example.gov/token";
    const ISSUER: &str = "https://id.example.gov";

    fn secret_client(store: &Store, method: &str) -> (Client, String) {
        let (c, s) = clients(store)
            .register(
                NewClient {
                    token_endpoint_auth_method: Some(method.into()),
                    ..input()
                },
                NOW,
            )
            .unwrap();
        (c, s.map(|s| s.to_string()).unwrap_or_default())
    }

    fn auth(store: &Store, p: &PresentedClient) -> Result<Client, AuthFailure> {
        clients(store).authenticate(p, &[TOKEN_URL, ISSUER], NOW)
    }

    fn refused(r: Result<Client, AuthFailure>) -> String {
        match r {
            Err(AuthFailure::Client(ClientAuthError::Invalid(why))) => why,
            Err(e) => panic!("expected invalid_client, got {e:?}"),
            Ok(c) => panic!("expected invalid_client, got {}", c.id),
        }
    }

    #[test]
    fn client_secret_basic() {
        let store = Store::in_memory();
        let (c, secret) = secret_client(&store, "client_secret_basic");
        let basic = |id: &str, s: &str| PresentedClient {
            basic: Some((id.into(), s.into())),
            ..Default::default()
        };
        assert_eq!(auth(&store, &basic(&c.id, &secret)).unwrap().id, c.id);
        // client_id repeated in the body is fine when equal.
        let mut p = basic(&c.id, &secret);
        p.client_id = Some(c.id.clone());
        assert!(auth(&store, &p).is_ok());
        p.client_id = Some("other".into());
        refused(auth(&store, &p));
        refused(auth(&store, &basic(&c.id, "wrong")));
        refused(auth(&store, &basic(&c.id, "")));
        refused(auth(&store, &basic("unknown", &secret)));
        // The right secret by the wrong method.
        let post = PresentedClient {
            client_id: Some(c.id.clone()),
            client_secret: Some(secret.clone()),
            ..Default::default()
        };
        assert!(refused(auth(&store, &post)).contains("registered for client_secret_basic"));
        // Two methods at once.
        let mut both = basic(&c.id, &secret);
        both.client_secret = Some(secret.clone());
        assert!(refused(auth(&store, &both)).contains("more than one"));
        // Only a client_id: not a public client.
        let none = PresentedClient {
            client_id: Some(c.id.clone()),
            ..Default::default()
        };
        refused(auth(&store, &none));
        refused(auth(&store, &PresentedClient::default()));
    }

    #[test]
    fn client_secret_post_and_public() {
        let store = Store::in_memory();
        let (c, secret) = secret_client(&store, "client_secret_post");
        let post = |s: &str| PresentedClient {
            client_id: Some(c.id.clone()),
            client_secret: Some(s.into()),
            ..Default::default()
        };
        assert!(auth(&store, &post(&secret)).is_ok());
        refused(auth(&store, &post("nope")));
        refused(auth(
            &store,
            &PresentedClient {
                client_secret: Some(secret.clone()),
                ..Default::default()
            },
        ));
        let (public, _) = secret_client(&store, "none");
        let only_id = PresentedClient {
            client_id: Some(public.id.clone()),
            ..Default::default()
        };
        assert!(auth(&store, &only_id).unwrap().is_public());
        // A public client presenting a secret is refused (wrong method).
        let mut with_secret = only_id.clone();
        with_secret.client_secret = Some("x".into());
        refused(auth(&store, &with_secret));
    }

    // ---- private_key_jwt ----
    fn jwt_client(store: &Store, key: &ClientKey, kid: Option<&str>) -> Client {
        clients(store)
            .register(
                NewClient {
                    token_endpoint_auth_method: Some("private_key_jwt".into()),
                    jwks: Some(key.jwks(kid)),
                    ..input()
                },
                NOW,
            )
            .unwrap()
            .0
    }

    fn claims(client_id: &str, jti: &str) -> serde_json::Value {
        serde_json::json!({
            "iss": client_id, "sub": client_id, "aud": TOKEN_URL, "jti": jti,
            "iat": NOW.unix_timestamp(), "exp": NOW.unix_timestamp() + 300,
        })
    }

    fn assertion(jwt: String) -> PresentedClient {
        PresentedClient {
            assertion_type: Some(JWT_BEARER_ASSERTION_TYPE.into()),
            assertion: Some(jwt),
            ..Default::default()
        }
    }

    #[test]
    fn private_key_jwt_accepted_once() {
        let store = Store::in_memory();
        let key = ClientKey::new();
        let c = jwt_client(&store, &key, Some("k1"));
        let jwt = key.sign(Some("k1"), &claims(&c.id, "j-1"));
        assert_eq!(auth(&store, &assertion(jwt.clone())).unwrap().id, c.id);
        assert!(refused(auth(&store, &assertion(jwt))).contains("replayed"));
        // A fresh jti works; the issuer is an accepted audience too; aud may be an array.
        let mut cl = claims(&c.id, "j-2");
        cl["aud"] = serde_json::json!(["https://other.example", ISSUER]);
        let mut p = assertion(key.sign(None, &cl));
        p.client_id = Some(c.id.clone());
        assert!(auth(&store, &p).is_ok(), "no kid: any registered key");
        p = assertion(key.sign(Some("k1"), &claims(&c.id, "j-3")));
        p.client_id = Some("someone-else".into());
        refused(auth(&store, &p));
        let entries = store
            .backend()
            .unwrap()
            .scan("client_assertion_jtis", c.id.as_bytes(), b"", 100)
            .unwrap();
        assert_eq!(entries.len(), 2);
    }

    #[test]
    fn private_key_jwt_refusals() {
        let store = Store::in_memory();
        let key = ClientKey::new();
        let c = jwt_client(&store, &key, Some("k1"));
        let id = c.id.as_str();
        let try_claims = |edit: &dyn Fn(&mut serde_json::Value), jti: &str| {
            let mut cl = claims(id, jti);
            edit(&mut cl);
            refused(auth(&store, &assertion(key.sign(Some("k1"), &cl))))
        };
        let now = NOW.unix_timestamp();
        assert!(
            try_claims(&|c| c["aud"] = "https://evil.example/token".into(), "a").contains("aud")
        );
        assert!(
            try_claims(
                &|c| {
                    c.as_object_mut().unwrap().remove("aud");
                },
                "a2"
            )
            .contains("aud")
        );
        assert!(try_claims(&|c| c["exp"] = (now - 120).into(), "b").contains("expired"));
        assert!(
            try_claims(
                &|c| {
                    c.as_object_mut().unwrap().remove("exp");
                },
                "c"
            )
            .contains("exp")
        );
        assert!(try_claims(&|c| c["exp"] = (now + 3600).into(), "d").contains("10 minutes"));
        assert!(
            try_claims(
                &|c| {
                    c.as_object_mut().unwrap().remove("jti");
                },
                "e"
            )
            .contains("jti")
        );
        assert!(try_claims(&|c| c["iss"] = "x".into(), "f").contains("iss"));
        assert!(try_claims(&|c| c["nbf"] = (now + 600).into(), "g").contains("nbf"));
        // Refused assertions do not spend their jti.
        assert!(
            store
                .backend()
                .unwrap()
                .scan("client_assertion_jtis", b"", b"", 100)
                .unwrap()
                .is_empty()
        );

        // Unknown kid.
        let jwt = key.sign(Some("k2"), &claims(id, "h"));
        assert!(refused(auth(&store, &assertion(jwt))).contains("kid"));
        // Another key with the right kid.
        let jwt = ClientKey::new().sign(Some("k1"), &claims(id, "i"));
        assert!(refused(auth(&store, &assertion(jwt))).contains("signature"));
        // HS256 keyed with the public key (alg confusion).
        let body = URL_SAFE_NO_PAD.encode(claims(id, "j").to_string());
        let head = URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","typ":"JWT","kid":"k1"}"#);
        let input = format!("{head}.{body}");
        let mac = ring::hmac::sign(
            &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key.point),
            input.as_bytes(),
        );
        let hs = format!("{input}.{}", URL_SAFE_NO_PAD.encode(mac));
        assert!(refused(auth(&store, &assertion(hs))).contains("ES256"));
        // alg none.
        let none = format!("{}.{body}.", URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#));
        refused(auth(&store, &assertion(none)));
        // Wrong or missing assertion type.
        let jwt = key.sign(Some("k1"), &claims(id, "k"));
        let mut p = assertion(jwt.clone());
        p.assertion_type = Some("urn:ietf:params:oauth:client-assertion-type:saml2-bearer".into());
        refused(auth(&store, &p));
        p.assertion_type = None;
        refused(auth(&store, &p));
        // Assertion plus a secret: two methods.
        let mut p = assertion(jwt.clone());
        p.client_secret = Some("x".into());
        assert!(refused(auth(&store, &p)).contains("more than one"));
        // A secret client cannot authenticate with an assertion.
        let (sc, _) = secret_client(&store, "client_secret_basic");
        let jwt = key.sign(Some("k1"), &claims(&sc.id, "l"));
        assert!(refused(auth(&store, &assertion(jwt))).contains("registered for"));
        // Garbage.
        refused(auth(&store, &assertion("not-a-jwt".into())));
        // After all that, the untouched assertion is still good.
        assert!(auth(&store, &assertion(key.sign(Some("k1"), &claims(id, "k")))).is_ok());
    }

    #[test]
    fn expired_assertion_ids_are_swept() {
        let store = Store::in_memory();
        let key = ClientKey::new();
        let c = jwt_client(&store, &key, None);
        assert!(auth(&store, &assertion(key.sign(None, &claims(&c.id, "old")))).is_ok());
        let later = NOW + Duration::hours(1);
        assert_eq!(store.sweep_expired(NOW, 100).unwrap(), 0);
        assert_eq!(store.sweep_expired(later, 100).unwrap(), 1);
        assert!(
            store
                .backend()
                .unwrap()
                .scan("client_assertion_jtis", b"", b"", 100)
                .unwrap()
                .is_empty()
        );
    }
}
