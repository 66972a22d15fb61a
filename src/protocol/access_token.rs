//! JWT access tokens per RFC 9068: the header, the claims, and signing and verification with keys
//! that the caller passes in.

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, Jwk, KeyAlgorithm,
    OctetKeyPairParameters, OctetKeyPairType, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::protocol::types::{AccessToken, SigningAlg};

/// RFC 9068 §2.1: "Resource servers receiving a JWT access token MUST validate the typ value",
/// which "MUST be at+jwt".
pub const TOKEN_TYPE: &str = "at+jwt";

/// Leeway for `exp` and `iat`: the contract allows at most 60 s of clock skew.
pub const LEEWAY_SECONDS: u64 = 60;

/// RFC 9068 §2.2 claims, plus `auth_time` (§2.2.1) and Latchkey's `grant_id`, which names the
/// grant (token family) so a revocation can reach tokens already handed out.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccessTokenClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub client_id: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
    pub scope: String,
    pub auth_time: i64,
    pub grant_id: String,
}

/// One signing key, parsed once when keys are loaded.
pub struct SigningKey {
    pub kid: String,
    pub alg: SigningAlg,
    /// When the key was created; it signs only once every node has published it.
    pub created_at: i64,
    pub encoding: EncodingKey,
    pub decoding: DecodingKey,
    /// The public JWK as published at `jwks_uri` (RFC 7517), with `kid`, `alg` and `use`.
    pub public_jwk: Jwk,
}

/// A stored private key that cannot be used for its algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the private key is not a valid PKCS#8 key for its algorithm")]
pub struct InvalidKey;

impl SigningKey {
    /// Parses a PKCS#8 private key once, when keys are loaded: its public JWK (RFC 7517, with
    /// `kid`, `alg` and `use`) and the verification key are derived from it.
    pub fn from_pkcs8(
        kid: String,
        alg: SigningAlg,
        created_at: i64,
        private_der: &[u8],
    ) -> Result<SigningKey, InvalidKey> {
        let (encoding, algorithm) = match alg {
            SigningAlg::ES256 => {
                let encoding = EncodingKey::from_ec_der(private_der);
                let public = Jwk::from_encoding_key(&encoding, jwt_algorithm(alg))
                    .map_err(|_| InvalidKey)?;
                (encoding, public.algorithm)
            }
            SigningAlg::RS256 => {
                // jsonwebtoken signs RSA with a PKCS#1 key; its PEM reader takes the PKCS#8
                // wrapping off.
                let pem = format!(
                    "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
                    STANDARD.encode(private_der)
                );
                let encoding = EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(|_| InvalidKey)?;
                let public = Jwk::from_encoding_key(&encoding, jwt_algorithm(alg))
                    .map_err(|_| InvalidKey)?;
                (encoding, public.algorithm)
            }
            SigningAlg::EdDSA => {
                let pair = Ed25519KeyPair::from_pkcs8(private_der).map_err(|_| InvalidKey)?;
                let x = URL_SAFE_NO_PAD.encode(pair.public_key().as_ref());
                let okp = OctetKeyPairParameters {
                    key_type: OctetKeyPairType::OctetKeyPair,
                    curve: EllipticCurve::Ed25519,
                    x,
                };
                (
                    EncodingKey::from_ed_der(private_der),
                    AlgorithmParameters::OctetKeyPair(okp),
                )
            }
        };
        let jwk = Jwk {
            common: CommonParameters {
                key_id: Some(kid.clone()),
                public_key_use: Some(PublicKeyUse::Signature),
                key_algorithm: Some(match alg {
                    SigningAlg::ES256 => KeyAlgorithm::ES256,
                    SigningAlg::RS256 => KeyAlgorithm::RS256,
                    SigningAlg::EdDSA => KeyAlgorithm::EdDSA,
                }),
                ..CommonParameters::default()
            },
            algorithm,
        };
        let decoding = DecodingKey::from_jwk(&jwk).map_err(|_| InvalidKey)?;
        Ok(SigningKey {
            kid,
            alg,
            created_at,
            encoding,
            decoding,
            public_jwk: jwk,
        })
    }
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish()
    }
}

pub fn jwt_algorithm(alg: SigningAlg) -> Algorithm {
    match alg {
        SigningAlg::ES256 => Algorithm::ES256,
        SigningAlg::RS256 => Algorithm::RS256,
        SigningAlg::EdDSA => Algorithm::EdDSA,
    }
}

/// Signs `claims` with `key`, with header `typ: at+jwt` and the key's `kid` (RFC 9068 §2.1).
pub fn sign(
    claims: &AccessTokenClaims,
    key: &SigningKey,
) -> Result<AccessToken, jsonwebtoken::errors::Error> {
    let mut header = Header::new(jwt_algorithm(key.alg));
    header.typ = Some(TOKEN_TYPE.to_owned());
    header.kid = Some(key.kid.clone());
    jsonwebtoken::encode(&header, claims, &key.encoding).map(AccessToken::new)
}

/// Why a presented JWT is not a valid Latchkey access token. All of these are `invalid_token`
/// on the wire; the variants exist for logs and tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("not a JWT")]
    Malformed,
    #[error("typ is not at+jwt")]
    WrongType,
    #[error("the header names keys by URL or embeds one")]
    ForeignKeyReference,
    #[error("unknown kid")]
    UnknownKey,
    #[error("signature, algorithm or claims are invalid")]
    Invalid,
    #[error("expired, or issued in the future")]
    Expired,
}

/// Upper bound on a token's size before any parsing (checklist item 64).
const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Verifies a JWT access token as RFC 9068 §4 asks of a resource server: explicit type, an
/// algorithm fixed by the key (never taken from the token, RFC 8725 §3.1), issuer, audience,
/// the audience when one is required, and expiry with at most 60 s leeway against `now` (the caller's clock, never the wall clock
/// read here). `find_key` maps a `kid` to one of our keys.
pub fn verify<'k>(
    token: &str,
    issuer: &str,
    audience: Option<&str>,
    now: i64,
    find_key: impl Fn(&str) -> Option<&'k SigningKey>,
) -> Result<AccessTokenClaims, VerifyError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(VerifyError::Malformed);
    }
    let header = jsonwebtoken::decode_header(token).map_err(|_| VerifyError::Malformed)?;
    if header.typ.as_deref() != Some(TOKEN_TYPE) {
        return Err(VerifyError::WrongType);
    }
    if header.jku.is_some() || header.jwk.is_some() || header.x5u.is_some() || header.x5c.is_some()
    {
        return Err(VerifyError::ForeignKeyReference);
    }
    let kid = header.kid.ok_or(VerifyError::UnknownKey)?;
    let key = find_key(&kid).ok_or(VerifyError::UnknownKey)?;
    let mut validation = Validation::new(jwt_algorithm(key.alg));
    validation.validate_exp = false;
    validation.set_issuer(&[issuer]);
    match audience {
        Some(audience) => validation.set_audience(&[audience]),
        None => validation.validate_aud = false,
    }
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
    let claims = jsonwebtoken::decode::<AccessTokenClaims>(token, &key.decoding, &validation)
        .map(|data| data.claims)
        .map_err(|_| VerifyError::Invalid)?;
    let leeway = LEEWAY_SECONDS as i64;
    if now >= claims.exp.saturating_add(leeway) || claims.iat > now.saturating_add(leeway) {
        return Err(VerifyError::Expired);
    }
    Ok(claims)
}
