//! OpenID Connect on the code flow: the ID token (OIDC Core §2, §3.1.3.6) and the standard
//! claims of the `profile` and `email` scopes (§5.1, §5.4), shared by the token endpoint and
//! userinfo.

use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;

use super::{InternalError, Latchkey};
use crate::protocol::access_token::{jwt_algorithm, sign_jws};
use crate::protocol::types::{Client, Scopes, SigningAlg};
use crate::store::UserRecord;

/// The scope that makes a request an OpenID Connect request (OIDC Core §3.1.2.1).
pub const OPENID: &str = "openid";

/// Authentication methods (RFC 8176 §2): the login page checks a password.
const AMR_PASSWORD: &str = "pwd";

/// The standard claims a user's grant releases (OIDC Core §5.4): `profile` releases `name`
/// and `preferred_username`, `email` releases `email` and `email_verified`.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct StandardClaims {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
}

impl StandardClaims {
    pub fn released(user: &UserRecord, scope: &Scopes) -> Self {
        let profile = scope.contains("profile");
        let email = scope.contains("email") && user.email.is_some();
        StandardClaims {
            name: user.name.clone().filter(|_| profile),
            preferred_username: profile.then(|| user.username.clone()),
            email: user.email.clone().filter(|_| email),
            email_verified: email.then_some(user.email_verified),
        }
    }
}

/// OIDC Core §2 ID token claims.
#[derive(Debug, Serialize)]
struct IdTokenClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    exp: i64,
    iat: i64,
    auth_time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<&'a str>,
    /// §2: "the party to which the ID Token was issued", the client.
    azp: &'a str,
    /// §3.1.3.6: binds the ID token to the access token issued with it.
    at_hash: String,
    amr: [&'static str; 1],
    #[serde(flatten)]
    claims: StandardClaims,
}

/// What an ID token states.
pub struct IdTokenFacts<'a> {
    pub user: &'a UserRecord,
    pub scope: &'a Scopes,
    pub auth_time: i64,
    pub nonce: Option<&'a str>,
    pub access_token: &'a str,
    pub now: i64,
}

/// Signs an ID token for `client` with the key of its `id_token_alg` (RS256 unless the client
/// chose otherwise, OIDC Core §15.1). It lives as long as the access token issued with it.
pub fn id_token(
    svc: &Latchkey,
    client: &Client,
    facts: &IdTokenFacts<'_>,
) -> Result<String, InternalError> {
    let claims = IdTokenClaims {
        iss: &svc.settings.issuer,
        sub: &facts.user.id,
        aud: &client.id,
        exp: facts.now + svc.settings.access_token_ttl,
        iat: facts.now,
        auth_time: facts.auth_time,
        nonce: facts.nonce,
        azp: &client.id,
        at_hash: at_hash(client.id_token_alg, facts.access_token),
        amr: [AMR_PASSWORD],
        claims: StandardClaims::released(facts.user, facts.scope),
    };
    let keys = svc.keys();
    let key = keys.signer(client.id_token_alg, facts.now)?;
    Ok(sign_jws(None, &claims, key)?)
}

/// Who an ID token this server issued names: its subject and its audience (the client).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HintedUser {
    pub sub: String,
    pub client_id: String,
}

/// Reads an `id_token_hint` (OIDC Core §3.1.2.1, RP-Initiated Logout 1.0 §2): an ID token
/// this server issued, signature and issuer checked, expiry not (the specs allow a hint that
/// has expired). `None` when it is not such a token.
pub fn read_hint(svc: &Latchkey, hint: &str) -> Option<HintedUser> {
    #[derive(serde::Deserialize)]
    struct Named {
        sub: String,
        aud: String,
        azp: String,
        #[allow(dead_code)]
        at_hash: String,
    }
    if hint.len() > crate::protocol::authorize::MAX_OIDC_PARAMETER {
        return None;
    }
    let header = jsonwebtoken::decode_header(hint).ok()?;
    // Only our ID tokens: an access token (typ at+jwt) signed by the same keys is no hint, or
    // anyone holding one could sign its user out without confirmation.
    if header.typ.as_deref().is_some_and(|typ| typ != "JWT") {
        return None;
    }
    let keys = svc.keys();
    let key = keys.find(header.kid.as_deref()?)?;
    let mut validation = jsonwebtoken::Validation::new(jwt_algorithm(key.alg));
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.set_issuer(&[&svc.settings.issuer]);
    validation.set_required_spec_claims(&["iss", "aud", "sub"]);
    let named = jsonwebtoken::decode::<Named>(hint, &key.decoding, &validation)
        .ok()?
        .claims;
    // Our ID tokens name the client twice (aud and azp) and carry at_hash.
    if named.azp != named.aud {
        return None;
    }
    Some(HintedUser {
        sub: named.sub,
        client_id: named.aud,
    })
}

/// The subject of an `id_token_hint` issued to `client`.
pub fn hinted_subject(svc: &Latchkey, client: &Client, hint: &str) -> Option<String> {
    read_hint(svc, hint)
        .filter(|hinted| hinted.client_id == client.id)
        .map(|hinted| hinted.sub)
}

/// OIDC Core §3.1.3.6: the left half of the hash of the access token's ASCII octets, with the
/// hash of the ID token's `alg` (SHA-256 for RS256 and ES256; SHA-512 for EdDSA with Ed25519,
/// as OpenID Foundation errata settled).
pub fn at_hash(alg: SigningAlg, access_token: &str) -> String {
    let algorithm = match alg {
        SigningAlg::ES256 | SigningAlg::RS256 => &digest::SHA256,
        SigningAlg::EdDSA => &digest::SHA512,
    };
    let hash = digest::digest(algorithm, access_token.as_bytes());
    let bytes = hash.as_ref();
    URL_SAFE_NO_PAD.encode(&bytes[..bytes.len() / 2])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// OIDC Core §A.3 example: access token `jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y`
    /// hashes (RS256) to `77QmUPtjPfzWtF2AnpK9RQ`.
    #[test]
    fn at_hash_matches_the_oidc_core_example() {
        assert_eq!(
            at_hash(
                SigningAlg::RS256,
                "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"
            ),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
    }
}
