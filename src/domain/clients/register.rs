//! Registering an agency client: [`Clients::register`] applies the field rules, issues the
//! `client_id` and (for secret methods) the one-time secret, and records the client.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use time::OffsetDateTime;
use zeroize::Zeroizing;

use super::rules::{Errors, client_jwks, client_name, grant_list, scope_list, uri_list};
use super::{
    AuthMethod, Client, Clients, DEFAULT_SCOPE, GrantType, NewClient, PROFILE_FAPI2, Security,
    SubjectType,
};
use crate::domain::audit::{Actor, Entry, event};
use crate::domain::{DomainError, Result, random_bytes};
use crate::store::StoreError;

impl Clients<'_> {
    /// Validates and records a new client. Returns the client and, for `client_secret_basic`
    /// and `client_secret_post`, its secret: shown to the caller once, stored only as a
    /// keyed hash.
    ///
    /// # Errors
    /// [`DomainError::Invalid`] naming every bad field; storage and randomness errors.
    pub fn register(
        &self,
        input: NewClient,
        now: OffsetDateTime,
    ) -> Result<(Client, Option<Zeroizing<String>>)> {
        let mut errors = Errors::default();
        let name = errors.check("name", client_name(&input.name));
        let auth_method = errors.check(
            "token_endpoint_auth_method",
            match input.token_endpoint_auth_method.as_deref() {
                None => Ok(AuthMethod::ClientSecretBasic),
                Some(m) => AuthMethod::parse(m).ok_or_else(|| {
                    format!(
                        "unknown method {m:?}; supported: client_secret_basic, \
                         client_secret_post, private_key_jwt, none"
                    )
                }),
            },
        );
        let grant_types = errors.check(
            "grant_types",
            match &input.grant_types {
                None => Ok(vec![GrantType::AuthorizationCode, GrantType::RefreshToken]),
                Some(list) => grant_list(list),
            },
        );
        let security = security_profile(&mut errors, &input, auth_method);
        let (redirect_uris, hosts) = uri_list(&mut errors, "redirect_uris", input.redirect_uris);
        let (post_logout_redirect_uris, _) = uri_list(
            &mut errors,
            "post_logout_redirect_uris",
            input.post_logout_redirect_uris.unwrap_or_default(),
        );
        let scopes = errors.check(
            "scope",
            scope_list(input.scope.as_deref().unwrap_or(DEFAULT_SCOPE)),
        );
        let subject_type = errors.check(
            "subject_type",
            match input.subject_type.as_deref() {
                None => Ok(SubjectType::Public),
                Some(s) => SubjectType::parse(s)
                    .ok_or_else(|| format!("unknown subject type {s:?}; use public or pairwise")),
            },
        );

        if let Some(grants) = &grant_types {
            let credentials_only = grants.as_slice() == [GrantType::ClientCredentials];
            if redirect_uris.is_empty()
                && !credentials_only
                && !errors.0.iter().any(|e| e.field == "redirect_uris")
            {
                errors.add(
                    "redirect_uris",
                    "must list at least one redirect URI unless grant_types is \
                     [\"client_credentials\"]",
                );
            }
            if auth_method == Some(AuthMethod::None)
                && grants.contains(&GrantType::ClientCredentials)
            {
                errors.add(
                    "grant_types",
                    "a public client (token_endpoint_auth_method none) cannot use \
                     client_credentials",
                );
            }
        }

        let mut sector = None;
        if subject_type == Some(SubjectType::Pairwise) {
            match hosts.len() {
                1 => sector = hosts.into_iter().next(),
                0 => errors.add(
                    "subject_type",
                    "pairwise needs redirect_uris: their host is the sector",
                ),
                _ => errors.add(
                    "redirect_uris",
                    format!(
                        "with subject_type pairwise all redirect URIs must share one host \
                         (the sector); found {}",
                        hosts.into_iter().collect::<Vec<_>>().join(", ")
                    ),
                ),
            }
        }

        let jwks = match (auth_method, &input.jwks) {
            (Some(AuthMethod::PrivateKeyJwt), None) => {
                errors.add(
                    "jwks",
                    "is required with private_key_jwt: a JWK Set with at least one EC P-256 key",
                );
                None
            }
            (Some(AuthMethod::PrivateKeyJwt), Some(raw)) => errors.check("jwks", client_jwks(raw)),
            (Some(_), Some(_)) => {
                errors.add(
                    "jwks",
                    "is only used with token_endpoint_auth_method private_key_jwt",
                );
                None
            }
            (_, None) | (None, Some(_)) => None,
        };

        let (
            Some(name),
            Some(auth_method),
            Some(grant_types),
            Some(scopes),
            Some(subject_type),
            true,
        ) = (
            name,
            auth_method,
            grant_types,
            scopes,
            subject_type,
            errors.0.is_empty(),
        )
        else {
            return Err(DomainError::Invalid(errors.0));
        };

        let id = URL_SAFE_NO_PAD.encode(random_bytes::<16>(self.rng)?);
        let secret = if auth_method.uses_secret() {
            let raw = Zeroizing::new(random_bytes::<32>(self.rng)?);
            Some(Zeroizing::new(URL_SAFE_NO_PAD.encode(*raw)))
        } else {
            None
        };
        let client = Client {
            id,
            name,
            redirect_uris,
            post_logout_redirect_uris,
            auth_method,
            jwks,
            scopes,
            subject_type,
            sector,
            grant_types,
            created_at: now,
            secret_hash: secret.as_ref().map(|s| self.secret_hash(s)),
            security,
        };
        let entry = Entry::new(
            event::CLIENT_REGISTERED,
            Actor::Admin,
            None,
            serde_json::json!({
                "client_id": client.id,
                "name": client.name,
                "token_endpoint_auth_method": client.auth_method.as_str(),
                "grant_types": client.grant_types.iter().map(|g| g.as_str()).collect::<Vec<_>>(),
                "scopes": client.scopes,
                "redirect_uris": client.redirect_uris,
                "require_pushed_authorization_requests": client.security.require_par,
                "dpop_bound_access_tokens": client.security.dpop_bound,
                "backchannel_logout_uri": client.security.backchannel_logout_uri,
                "profile": client.security.fapi2.then_some(PROFILE_FAPI2),
            }),
            now,
            self.rng,
        )?;
        match self.store.transact(|tx| {
            tx.clients().insert(&client)?;
            entry.append(tx).map(drop)
        }) {
            Ok(()) => Ok((client, secret)),
            Err(StoreError::Conflict { .. }) => Err(DomainError::Internal(
                "random client id collided with an existing one".into(),
            )),
            Err(e) => Err(e.into()),
        }
    }
}

/// The security-profile fields: `profile: "fapi2"` implies PAR and DPoP (sending them as
/// well is accepted, turning one off is refused) and needs `private_key_jwt`; a
/// back-channel logout URI follows the redirect URI rules.
fn security_profile(
    errors: &mut Errors,
    input: &NewClient,
    auth_method: Option<AuthMethod>,
) -> Security {
    let fapi2 = match input.profile.as_deref() {
        None => false,
        Some(PROFILE_FAPI2) => true,
        Some(other) => {
            errors.add(
                "profile",
                format!("unknown profile {other:?}; the one profile is \"fapi2\""),
            );
            false
        }
    };
    if fapi2 {
        for (field, value) in [
            (
                "require_pushed_authorization_requests",
                input.require_pushed_authorization_requests,
            ),
            ("dpop_bound_access_tokens", input.dpop_bound_access_tokens),
        ] {
            if value == Some(false) {
                errors.add(field, "profile fapi2 requires it (true or absent)");
            }
        }
        if auth_method.is_some_and(|m| m != AuthMethod::PrivateKeyJwt) {
            errors.add(
                "token_endpoint_auth_method",
                "profile fapi2 requires private_key_jwt (FAPI 2.0 Security Profile §5.3.2.1)",
            );
        }
    }
    let backchannel_logout_uri = input.backchannel_logout_uri.as_ref().and_then(|uri| {
        let checked = super::redirect_uri_host(uri).map(|_| uri.clone());
        errors.check("backchannel_logout_uri", checked)
    });
    let session_required = input.backchannel_logout_session_required.unwrap_or(false);
    if session_required && input.backchannel_logout_uri.is_none() {
        errors.add(
            "backchannel_logout_session_required",
            "needs a backchannel_logout_uri",
        );
    }
    Security {
        require_par: fapi2 || input.require_pushed_authorization_requests.unwrap_or(false),
        dpop_bound: fapi2 || input.dpop_bound_access_tokens.unwrap_or(false),
        backchannel_logout_uri,
        backchannel_logout_session_required: session_required,
        fapi2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::clients::redirect_uri_host;
    use crate::domain::clients::test_support::{ClientKey, NOW, clients, input};
    use crate::store::Store;

    /// The fields named in a 422.
    fn invalid_fields(r: Result<(Client, Option<Zeroizing<String>>)>) -> Vec<String> {
        match r {
            Err(DomainError::Invalid(errs)) => errs.iter().map(|e| e.field.to_string()).collect(),
            Err(e) => panic!("expected Invalid, got {e:?}"),
            Ok((c, _)) => panic!("expected Invalid, got {c:?}"),
        }
    }

    #[test]
    fn defaults_and_secret_once() {
        let store = Store::in_memory();
        let (c, secret) = clients(&store).register(input(), NOW).unwrap();
        assert_eq!(c.auth_method, AuthMethod::ClientSecretBasic);
        assert_eq!(c.scopes, ["openid", "profile", "email"]);
        assert_eq!(
            c.grant_types,
            [GrantType::AuthorizationCode, GrantType::RefreshToken]
        );
        assert_eq!(c.subject_type, SubjectType::Public);
        assert_eq!(c.sector, None);
        assert!(c.post_logout_redirect_uris.is_empty());
        assert!(
            c.id.len() == 22
                && c.id
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_')
        );
        let secret = secret.unwrap();
        assert_eq!(secret.len(), 43, "256 bits base64url");
        let hash = c.secret_hash.clone().unwrap();
        assert_ne!(&hash.0[..], secret.as_bytes());
        assert_ne!(
            hash.0,
            crate::crypto::digest::sha256(secret.as_bytes()),
            "keyed, not a plain hash"
        );
        assert!(!format!("{c:?}").contains(secret.as_str()));
        assert!(format!("{c:?}").contains("<redacted>"));
        let stored = clients(&store).get(&c.id).unwrap().unwrap();
        assert_eq!(stored, c);
        let raw = store
            .backend()
            .unwrap()
            .scan("clients", b"", b"", 10)
            .unwrap();
        let text = String::from_utf8_lossy(&raw[0].1).into_owned();
        assert!(!text.contains(secret.as_str()), "{text}");
        assert!(clients(&store).get("nope").unwrap().is_none());
        assert!(c.allows_scope("openid") && !c.allows_scope("seal"));
        assert!(c.allows_grant(GrantType::RefreshToken));
        assert!(!c.allows_grant(GrantType::ClientCredentials));
        assert!(!c.is_public());
    }

    #[test]
    fn name_rules() {
        let store = Store::in_memory();
        for bad in ["", "   ", "a\u{7}b", &"x".repeat(101)] {
            let r = clients(&store).register(
                NewClient {
                    name: bad.into(),
                    ..input()
                },
                NOW,
            );
            assert_eq!(invalid_fields(r), ["name"], "{bad:?}");
        }
    }

    #[test]
    fn redirect_uri_rules() {
        for ok in [
            "https://a.example/cb",
            "https://a.example:8443/cb?x=1",
            "http://localhost:3000/cb",
            "http://127.0.0.1/cb",
            "http://[::1]:9/cb",
        ] {
            assert!(redirect_uri_host(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://a.example/cb",
            "http://127.0.0.2/cb",
            "http://localhost.evil.example/cb",
            "https://a.example/cb#frag",
            "https://a.example/cb#",
            "/relative/cb",
            "a.example/cb",
            "com.example.app:/cb",
            "javascript:alert(1)",
            "https://user:pw@a.example/cb",
            " https://a.example/cb",
            "https://a.example/cb\r\nSet-Cookie: a=b",
            "https://a.example/c b",
            "https://a.example/c\tb",
            "",
        ] {
            assert!(redirect_uri_host(bad).is_err(), "{bad}");
        }
        let store = Store::in_memory();
        let r = clients(&store).register(
            NewClient {
                redirect_uris: vec!["https://ok.example/cb".into(), "http://x.example/cb".into()],
                post_logout_redirect_uris: Some(vec!["https://ok.example/bye#x".into()]),
                ..input()
            },
            NOW,
        );
        assert_eq!(
            invalid_fields(r),
            ["redirect_uris", "post_logout_redirect_uris"]
        );
    }

    #[test]
    fn redirect_uris_kept_as_sent_and_deduplicated() {
        let store = Store::in_memory();
        let (c, _) = clients(&store)
            .register(
                NewClient {
                    redirect_uris: vec![
                        "https://A.example".into(),
                        "https://A.example".into(),
                        "http://localhost:8080/cb".into(),
                    ],
                    ..input()
                },
                NOW,
            )
            .unwrap();
        assert_eq!(
            c.redirect_uris,
            ["https://A.example", "http://localhost:8080/cb"]
        );
    }

    #[test]
    fn empty_redirect_uris_only_for_client_credentials() {
        let store = Store::in_memory();
        let reg = clients(&store);
        let r = reg.register(
            NewClient {
                redirect_uris: vec![],
                ..input()
            },
            NOW,
        );
        assert_eq!(invalid_fields(r), ["redirect_uris"]);
        let r = reg.register(
            NewClient {
                redirect_uris: vec![],
                grant_types: Some(vec![
                    "client_credentials".into(),
                    "authorization_code".into(),
                ]),
                ..input()
            },
            NOW,
        );
        assert_eq!(invalid_fields(r), ["redirect_uris"]);
        let (c, secret) = reg
            .register(
                NewClient {
                    redirect_uris: vec![],
                    grant_types: Some(vec!["client_credentials".into()]),
                    scope: Some("seal".into()),
                    ..input()
                },
                NOW,
            )
            .unwrap();
        assert_eq!(c.grant_types, [GrantType::ClientCredentials]);
        assert!(secret.is_some());
    }

    #[test]
    fn grant_type_rules() {
        let store = Store::in_memory();
        let reg = clients(&store);
        for bad in [
            vec!["implicit".to_owned()],
            vec![],
            vec!["refresh_token".to_owned()],
        ] {
            let r = reg.register(
                NewClient {
                    grant_types: Some(bad.clone()),
                    ..input()
                },
                NOW,
            );
            assert_eq!(invalid_fields(r), ["grant_types"], "{bad:?}");
        }
        let r = reg.register(
            NewClient {
                token_endpoint_auth_method: Some("none".into()),
                grant_types: Some(vec![
                    "authorization_code".into(),
                    "client_credentials".into(),
                ]),
                ..input()
            },
            NOW,
        );
        assert_eq!(invalid_fields(r), ["grant_types"]);
    }

    #[test]
    fn scope_rules() {
        let store = Store::in_memory();
        let reg = clients(&store);
        for bad in ["openid admin", "", "   "] {
            let r = reg.register(
                NewClient {
                    scope: Some(bad.into()),
                    ..input()
                },
                NOW,
            );
            assert_eq!(invalid_fields(r), ["scope"], "{bad:?}");
        }
        let (c, _) = reg
            .register(
                NewClient {
                    scope: Some(" openid  sign openid national_id ".into()),
                    ..input()
                },
                NOW,
            )
            .unwrap();
        assert_eq!(c.scopes, ["openid", "sign", "national_id"]);
        assert_eq!(c.scope(), "openid sign national_id");
    }

    #[test]
    fn pairwise_needs_one_host() {
        let store = Store::in_memory();
        let reg = clients(&store);
        let (c, _) = reg
            .register(
                NewClient {
                    subject_type: Some("pairwise".into()),
                    redirect_uris: vec![
                        "https://Tax.example.gov/a".into(),
                        "https://tax.example.gov:8443/b".into(),
                    ],
                    ..input()
                },
                NOW,
            )
            .unwrap();
        assert_eq!(c.subject_type, SubjectType::Pairwise);
        assert_eq!(c.sector.as_deref(), Some("tax.example.gov"));
        let r = reg.register(
            NewClient {
                subject_type: Some("pairwise".into()),
                redirect_uris: vec!["https://a.example/cb".into(), "https://b.example/cb".into()],
                ..input()
            },
            NOW,
        );
        assert_eq!(invalid_fields(r), ["redirect_uris"]);
        let r = reg.register(
            NewClient {
                subject_type: Some("pairwise".into()),
                redirect_uris: vec![],
                grant_types: Some(vec!["client_credentials".into()]),
                ..input()
            },
            NOW,
        );
        assert_eq!(invalid_fields(r), ["subject_type"]);
        let r = reg.register(
            NewClient {
                subject_type: Some("ppid".into()),
                ..input()
            },
            NOW,
        );
        assert_eq!(invalid_fields(r), ["subject_type"]);
    }

    #[test]
    fn auth_method_rules() {
        let store = Store::in_memory();
        let reg = clients(&store);
        let r = reg.register(
            NewClient {
                token_endpoint_auth_method: Some("tls_client_auth".into()),
                ..input()
            },
            NOW,
        );
        assert_eq!(invalid_fields(r), ["token_endpoint_auth_method"]);
        let (c, secret) = reg
            .register(
                NewClient {
                    token_endpoint_auth_method: Some("none".into()),
                    ..input()
                },
                NOW,
            )
            .unwrap();
        assert!(c.is_public() && secret.is_none() && c.secret_hash.is_none());
        let (c, secret) = reg
            .register(
                NewClient {
                    token_endpoint_auth_method: Some("client_secret_post".into()),
                    ..input()
                },
                NOW,
            )
            .unwrap();
        assert_eq!(c.auth_method, AuthMethod::ClientSecretPost);
        assert!(secret.is_some());
        // jwks without private_key_jwt is refused rather than silently ignored.
        let r = reg.register(
            NewClient {
                jwks: Some(ClientKey::new().jwks(None)),
                ..input()
            },
            NOW,
        );
        assert_eq!(invalid_fields(r), ["jwks"]);
    }

    #[test]
    fn private_key_jwt_needs_ec_p256_jwks() {
        let store = Store::in_memory();
        let reg = clients(&store);
        let pkj = |jwks: Option<serde_json::Value>| NewClient {
            token_endpoint_auth_method: Some("private_key_jwt".into()),
            jwks,
            ..input()
        };
        assert_eq!(invalid_fields(reg.register(pkj(None), NOW)), ["jwks"]);
        let key = ClientKey::new();
        let good = key.jwks(Some("k1"));
        let x = good["keys"][0]["x"].clone();
        let y = good["keys"][0]["y"].clone();
        for bad in [
            serde_json::json!({}),
            serde_json::json!({"keys": []}),
            serde_json::json!([good["keys"][0].clone()]),
            serde_json::json!({"keys": [{"kty": "RSA", "n": "AQAB", "e": "AQAB"}]}),
            serde_json::json!({"keys": [{"kty": "EC", "crv": "P-384", "x": x, "y": y}]}),
            serde_json::json!({"keys": [{"kty": "EC", "crv": "P-256", "x": x}]}),
            serde_json::json!({"keys": [{"kty": "EC", "crv": "P-256", "x": "AAAA", "y": y}]}),
            serde_json::json!({"keys": [{"kty": "EC", "crv": "P-256", "x": x, "y": y, "d": x}]}),
            serde_json::json!({"keys": [{"kty": "EC", "crv": "P-256", "x": x, "y": y, "alg": "HS256"}]}),
            serde_json::json!({"keys": [{"kty": "EC", "crv": "P-256", "x": x, "y": y, "use": "enc"}]}),
            serde_json::json!({"keys": [
                {"kty": "EC", "crv": "P-256", "x": x, "y": y, "kid": "a"},
                {"kty": "EC", "crv": "P-256", "x": x, "y": y, "kid": "a"}]}),
        ] {
            assert_eq!(
                invalid_fields(reg.register(pkj(Some(bad.clone())), NOW)),
                ["jwks"],
                "{bad}"
            );
        }
        let mut extra = good.clone();
        extra["keys"][0]["x5c"] = serde_json::json!(["junk"]);
        let (c, secret) = reg.register(pkj(Some(extra)), NOW).unwrap();
        assert!(secret.is_none(), "private_key_jwt clients get no secret");
        assert_eq!(c.jwks, Some(good), "normalised to the public members");
    }

    #[test]
    fn security_profile_rules() {
        let store = Store::in_memory();
        let reg = clients(&store);
        let key = ClientKey::new();
        let fapi = |extra: NewClient| NewClient {
            profile: Some("fapi2".into()),
            token_endpoint_auth_method: Some("private_key_jwt".into()),
            jwks: Some(key.jwks(Some("k1"))),
            ..extra
        };
        let (c, _) = reg.register(fapi(input()), NOW).unwrap();
        assert!(c.security.fapi2 && c.security.require_par && c.security.dpop_bound);
        assert_eq!(
            clients(&store).get(&c.id).unwrap().unwrap(),
            c,
            "stored as v2"
        );
        let (c, _) = reg
            .register(
                fapi(NewClient {
                    require_pushed_authorization_requests: Some(true),
                    dpop_bound_access_tokens: Some(true),
                    ..input()
                }),
                NOW,
            )
            .unwrap();
        assert!(c.security.fapi2);
        for (bad, field) in [
            (
                NewClient {
                    profile: Some("fapi2".into()),
                    ..input()
                },
                "token_endpoint_auth_method",
            ),
            (
                fapi(NewClient {
                    require_pushed_authorization_requests: Some(false),
                    ..input()
                }),
                "require_pushed_authorization_requests",
            ),
            (
                NewClient {
                    profile: Some("FAPI2".into()),
                    ..input()
                },
                "profile",
            ),
            (
                NewClient {
                    backchannel_logout_uri: Some("http://rp.example/bc".into()),
                    ..input()
                },
                "backchannel_logout_uri",
            ),
            (
                NewClient {
                    backchannel_logout_session_required: Some(true),
                    ..input()
                },
                "backchannel_logout_session_required",
            ),
        ] {
            assert_eq!(invalid_fields(reg.register(bad, NOW)), [field]);
        }
        let (plain, _) = reg.register(input(), NOW).unwrap();
        assert_eq!(plain.security, Security::default());
        let raw = store
            .backend()
            .unwrap()
            .get("clients", plain.id.as_bytes())
            .unwrap()
            .unwrap();
        assert!(raw.starts_with(br#"{"v":"1""#), "a plain client stays v1");
        let (bc, _) = reg
            .register(
                NewClient {
                    backchannel_logout_uri: Some("http://127.0.0.1:9/bc".into()),
                    backchannel_logout_session_required: Some(true),
                    ..input()
                },
                NOW,
            )
            .unwrap();
        assert_eq!(
            bc.security.backchannel_logout_uri.as_deref(),
            Some("http://127.0.0.1:9/bc")
        );
        assert_eq!(clients(&store).get(&bc.id).unwrap().unwrap(), bc);
    }

    #[test]
    fn every_bad_field_is_named_at_once() {
        let store = Store::in_memory();
        let r = clients(&store).register(
            NewClient {
                name: String::new(),
                redirect_uris: vec!["http://x.example".into()],
                post_logout_redirect_uris: None,
                token_endpoint_auth_method: Some("private_key_jwt".into()),
                jwks: None,
                scope: Some("root".into()),
                subject_type: Some("x".into()),
                grant_types: Some(vec!["password".into()]),
                ..Default::default()
            },
            NOW,
        );
        assert_eq!(
            invalid_fields(r),
            [
                "name",
                "grant_types",
                "redirect_uris",
                "scope",
                "subject_type",
                "jwks"
            ]
        );
    }
}
