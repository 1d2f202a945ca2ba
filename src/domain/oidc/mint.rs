//! Minting tokens: access tokens as RFC 9068 JWTs, ID tokens with the claims their scopes
//! release, and the token response (RFC 6749 §5.1) they travel in.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::model::Grant;
use super::{Provider, TOKEN_TTL, identity_claims, sha256, subject};
use crate::domain::citizens::Citizen;
use crate::domain::clients::{Client, SubjectType};
use crate::domain::{DomainError, new_id};

/// A successful token response (RFC 6749 §5.1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenResponse {
    /// JWT access token (`at+jwt`).
    pub access_token: String,
    /// `Bearer`, or `DPoP` when the access token is bound to a DPoP key.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// Granted scopes.
    pub scope: String,
    /// Opaque refresh token, when the client has the refresh grant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// OIDC ID token, when `openid` was granted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

/// Claims of our access tokens (RFC 9068).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Issuer.
    pub iss: String,
    /// Citizen subject as the client sees it, or the client id for client credentials.
    pub sub: String,
    /// Audience: the issuer (civis's own APIs are the resource server).
    pub aud: String,
    /// Expiry.
    pub exp: i64,
    /// Issued at.
    pub iat: i64,
    /// Unique id.
    pub jti: String,
    /// Client the token was issued to.
    pub client_id: String,
    /// Granted scopes, space-separated.
    pub scope: String,
    /// Login time (citizen tokens).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    /// Assurance level (citizen tokens).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    /// Grant id: revoking the grant kills the token (citizen tokens).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gid: Option<String>,
    /// Confirmation (RFC 9449 §6.1): the thumbprint of the DPoP key the token is bound to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
}

/// The `cnf` claim of a DPoP-bound token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    /// RFC 7638 thumbprint of the key.
    pub jkt: String,
}

/// What a grant's token response carries besides the grant itself.
pub(super) struct With<'a> {
    /// The ID token's `nonce`.
    pub nonce: Option<&'a str>,
    /// The new refresh token.
    pub refresh_token: Option<String>,
    /// The DPoP key the access token is bound to.
    pub jkt: Option<&'a str>,
}

/// The `token_type` of a token response: `DPoP` when its access token is bound.
pub fn token_type(jkt: Option<&str>) -> String {
    if jkt.is_some() { "DPoP" } else { "Bearer" }.to_owned()
}

impl Provider<'_> {
    pub(super) fn ts(t: OffsetDateTime) -> i64 {
        t.unix_timestamp()
    }

    pub(super) fn sub_for(&self, client: &Client, citizen_id: &str) -> String {
        match client.subject_type {
            SubjectType::Public => citizen_id.to_owned(),
            SubjectType::Pairwise => subject(
                self.keys,
                citizen_id,
                client.sector.as_deref().or(Some(&client.id)),
            ),
        }
    }

    fn sign(
        &self,
        typ: &str,
        claims: &impl Serialize,
        now: OffsetDateTime,
    ) -> Result<String, DomainError> {
        crate::crypto::jwt::sign(self.keys.tokens().signing(now), typ, claims)
            .map_err(|e| DomainError::Internal(format!("signing token: {e}")))
    }

    /// Signs an access token for a grant (or for a client itself).
    pub(super) fn access_token(
        &self,
        client: &Client,
        sub: String,
        scopes: &[String],
        grant: Option<&Grant>,
        jkt: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<String, DomainError> {
        let claims = AccessClaims {
            cnf: jkt.map(|j| Confirmation { jkt: j.to_owned() }),
            iss: self.issuer.to_owned(),
            sub,
            aud: self.issuer.to_owned(),
            exp: Self::ts(now + TOKEN_TTL),
            iat: Self::ts(now),
            jti: new_id(self.rng)?,
            client_id: client.id.clone(),
            scope: scopes.join(" "),
            auth_time: grant.map(|g| Self::ts(g.auth_time)),
            acr: grant.map(|g| g.acr.clone()),
            gid: grant.map(|g| g.id.clone()),
        };
        self.sign("at+jwt", &claims, now)
    }

    /// The ID token for a grant, with the claims its scopes release.
    fn id_token(
        &self,
        client: &Client,
        grant: &Grant,
        citizen: &Citizen,
        nonce: Option<&str>,
        access_token: &str,
        now: OffsetDateTime,
    ) -> Result<String, DomainError> {
        let digest = sha256(access_token.as_bytes());
        let half = digest.get(..16).unwrap_or_default();
        let mut claims = identity_claims(citizen, &grant.scopes);
        let mut put = |k: &str, v: serde_json::Value| {
            claims.insert(k.to_owned(), v);
        };
        put("iss", self.issuer.into());
        put("sub", self.sub_for(client, &grant.citizen_id).into());
        put("aud", client.id.clone().into());
        put("azp", client.id.clone().into());
        put("exp", Self::ts(now + TOKEN_TTL).into());
        put("iat", Self::ts(now).into());
        put("auth_time", Self::ts(grant.auth_time).into());
        put("acr", grant.acr.clone().into());
        put("amr", grant.amr.clone().into());
        put("sid", grant.sid.clone().into());
        {
            use base64::Engine;
            put(
                "at_hash",
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .encode(half)
                    .into(),
            );
        }
        if let Some(n) = nonce {
            put("nonce", n.into());
        }
        self.sign("JWT", &claims, now)
    }

    pub(super) fn tokens_for_grant(
        &self,
        client: &Client,
        grant: &Grant,
        citizen: &Citizen,
        with: With<'_>,
        now: OffsetDateTime,
    ) -> Result<TokenResponse, DomainError> {
        let With {
            nonce,
            refresh_token,
            jkt,
        } = with;
        let sub = self.sub_for(client, &grant.citizen_id);
        let access =
            self.access_token(client, sub.clone(), &grant.scopes, Some(grant), jkt, now)?;
        let id_token = if grant.scopes.iter().any(|s| s == "openid") {
            Some(self.id_token(client, grant, citizen, nonce, &access, now)?)
        } else {
            None
        };
        Ok(TokenResponse {
            access_token: access,
            token_type: token_type(jkt),
            expires_in: TOKEN_TTL.whole_seconds(),
            scope: grant.scopes.join(" "),
            refresh_token,
            id_token,
        })
    }
}
