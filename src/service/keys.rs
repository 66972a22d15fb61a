//! Signing keys: created on first start and kept in the database, so every node and every
//! restart publishes the same JWKS and validates the same tokens (CONTRACT §2).

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use jsonwebtoken::jwk::{Jwk, JwkSet, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{DecodingKey, EncodingKey};

use crate::crypto;
use crate::protocol::access_token::{SigningKey, jwt_algorithm};
use crate::protocol::types::SigningAlg;
use crate::store::{SigningKeyRecord, Store, StoreError};

/// Why the key ring could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("signing key {0} in the database cannot be used")]
    Unusable(String),
    #[error("key generation failed")]
    Generation,
    #[error("no signing key for {0}")]
    Missing(&'static str),
}

/// The keys this node signs and verifies with, parsed once at start.
#[derive(Debug)]
pub struct KeyRing {
    keys: Vec<SigningKey>,
}

/// The algorithms this build creates keys for. RS256 and EdDSA are tracked in the security
/// hardening issue; the type already names them so clients and stored keys can carry them.
const CREATED_ALGS: [SigningAlg; 1] = [SigningAlg::ES256];

impl KeyRing {
    /// Loads the keys from the store, creating the first key of each algorithm if none exists.
    /// Nodes starting at once agree: the insert is conditional, and every node then loads what
    /// the database holds.
    pub async fn load_or_create(store: &dyn Store, now: i64) -> Result<Self, KeyError> {
        let existing = store.signing_keys().await?;
        for alg in CREATED_ALGS {
            if !existing.iter().any(|k| k.alg == alg) {
                store.insert_first_signing_key(&generate(alg, now)?).await?;
            }
        }
        let keys = store
            .signing_keys()
            .await?
            .into_iter()
            .map(|record| parse(&record))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(KeyRing { keys })
    }

    /// The key new tokens of `alg` are signed with: the newest one.
    pub fn signer(&self, alg: SigningAlg) -> Result<&SigningKey, KeyError> {
        self.keys
            .iter()
            .rev()
            .find(|k| k.alg == alg)
            .ok_or(KeyError::Missing(alg.as_str()))
    }

    /// The key with this `kid`, for verification.
    pub fn find(&self, kid: &str) -> Option<&SigningKey> {
        self.keys.iter().find(|k| k.kid == kid)
    }

    /// The public JWK set (RFC 7517 §5): public parameters only.
    pub fn jwks(&self) -> JwkSet {
        JwkSet {
            keys: self.keys.iter().map(|k| k.public_jwk.clone()).collect(),
        }
    }
}

fn generate(alg: SigningAlg, now: i64) -> Result<SigningKeyRecord, KeyError> {
    let private_der = match alg {
        SigningAlg::ES256 => {
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .map_err(|_| KeyError::Generation)?
                .as_ref()
                .to_vec()
        }
        SigningAlg::RS256 | SigningAlg::EdDSA => return Err(KeyError::Generation),
    };
    Ok(SigningKeyRecord {
        kid: crypto::random_token()[..16].to_owned(),
        alg,
        private_der,
        created_at: now,
    })
}

fn parse(record: &SigningKeyRecord) -> Result<SigningKey, KeyError> {
    let unusable = || KeyError::Unusable(record.kid.clone());
    let encoding = match record.alg {
        SigningAlg::ES256 => EncodingKey::from_ec_der(&record.private_der),
        SigningAlg::RS256 => EncodingKey::from_rsa_der(&record.private_der),
        SigningAlg::EdDSA => EncodingKey::from_ed_der(&record.private_der),
    };
    let mut jwk =
        Jwk::from_encoding_key(&encoding, jwt_algorithm(record.alg)).map_err(|_| unusable())?;
    jwk.common.key_id = Some(record.kid.clone());
    jwk.common.public_key_use = Some(PublicKeyUse::Signature);
    jwk.common.key_algorithm = Some(match record.alg {
        SigningAlg::ES256 => KeyAlgorithm::ES256,
        SigningAlg::RS256 => KeyAlgorithm::RS256,
        SigningAlg::EdDSA => KeyAlgorithm::EdDSA,
    });
    let decoding = DecodingKey::from_jwk(&jwk).map_err(|_| unusable())?;
    Ok(SigningKey {
        kid: record.kid.clone(),
        alg: record.alg,
        encoding,
        decoding,
        public_jwk: jwk,
    })
}
