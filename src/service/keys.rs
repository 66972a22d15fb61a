//! Signing keys: created on first start and kept in the database, so every node and every
//! restart publishes the same JWKS and validates the same tokens (CONTRACT §2).

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair};
use jsonwebtoken::jwk::JwkSet;

use crate::crypto::{self, Sealer};
use std::collections::HashMap;
use std::sync::Arc;

use crate::protocol::access_token::{self, AccessTokenClaims, SigningKey, VerifyError};
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
    #[error(transparent)]
    Seal(#[from] crypto::SealError),
}

/// The keys this node signs and verifies with, parsed once at start.
#[derive(Debug)]
pub struct KeyRing {
    keys: Vec<SigningKey>,
    /// Access tokens whose signature these keys verified, by SHA-256 of the token: a resource
    /// server presents the same token many times, and an ES256 verification costs 56 µs
    /// (`cargo bench --bench floor`). It lives and dies with the ring, so a retired key's
    /// tokens leave it at the next reload; expiry is checked on every use.
    verified: std::sync::Mutex<HashMap<[u8; 32], Arc<AccessTokenClaims>>>,
}

/// Verified tokens remembered at most; the memory is bounded (about 1 MiB), the set is
/// forgotten when full.
const VERIFIED_CAPACITY: usize = 4096;

/// A rotated key is published this long before it signs: longer than the JWKS cache lifetime
/// ([`JWKS_MAX_AGE`]) plus the interval at which nodes reload keys ([`RELOAD_INTERVAL`]).
pub const PUBLISH_BEFORE_SIGNING: i64 = 600;
/// `Cache-Control: max-age` of the JWKS.
pub const JWKS_MAX_AGE: i64 = 300;
/// How often a node re-reads the keys, to pick up rotations and retirements.
pub const RELOAD_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);

/// Every algorithm a client may choose gets a key on first start: ES256 (the default), RS256
/// (which RFC 9068 §4 requires every server to support) and EdDSA (Ed25519).
const CREATED_ALGS: [SigningAlg; 3] = SigningAlg::ALL;

impl KeyRing {
    /// Loads the keys from the store, creating the first key of each algorithm if none exists.
    /// Nodes starting at once agree: the insert is conditional, and every node then loads what
    /// the database holds.
    pub async fn load_or_create(
        store: &dyn Store,
        sealer: &Sealer,
        now: i64,
    ) -> Result<Self, KeyError> {
        let existing = store.signing_keys().await?;
        for alg in CREATED_ALGS {
            if !existing.iter().any(|k| k.alg == alg) {
                store
                    .insert_first_signing_key(&generate(alg, sealer, now)?)
                    .await?;
            }
        }
        Self::load(store, sealer).await
    }

    /// The live (not retired) keys in the store.
    pub async fn load(store: &dyn Store, sealer: &Sealer) -> Result<Self, KeyError> {
        let keys = store
            .signing_keys()
            .await?
            .into_iter()
            .map(|record| parse(&record, sealer))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(KeyRing {
            keys,
            verified: std::sync::Mutex::new(HashMap::new()),
        })
    }

    /// The key new tokens of `alg` are signed with: the newest one that every node has been
    /// publishing for [`PUBLISH_BEFORE_SIGNING`] (so any JWKS a resource server cached already
    /// holds it), or the oldest one while none has.
    pub fn signer(&self, alg: SigningAlg, now: i64) -> Result<&SigningKey, KeyError> {
        let of_alg = || self.keys.iter().filter(|k| k.alg == alg);
        of_alg()
            .rfind(|k| k.created_at + PUBLISH_BEFORE_SIGNING <= now)
            .or_else(|| of_alg().next())
            .ok_or(KeyError::Missing(alg.as_str()))
    }

    /// RFC 9068 §4 verification of one of our access tokens (see [`access_token::verify`]),
    /// remembered by the token's digest; `audience`, when given, must be the token's `aud`.
    pub fn verify_access_token(
        &self,
        token: &str,
        issuer: &str,
        audience: Option<&str>,
        now: i64,
    ) -> Result<Arc<AccessTokenClaims>, VerifyError> {
        let digest: [u8; 32] =
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes())
                .as_ref()
                .try_into()
                .map_err(|_| VerifyError::Malformed)?;
        let cached = self.verified_cache().get(&digest).cloned();
        let claims = match cached {
            Some(claims) => {
                access_token::check_times(&claims, now)?;
                claims
            }
            None => {
                let claims = Arc::new(access_token::verify(token, issuer, None, now, |kid| {
                    self.find(kid)
                })?);
                let mut cache = self.verified_cache();
                if cache.len() >= VERIFIED_CAPACITY {
                    cache.clear();
                }
                cache.insert(digest, claims.clone());
                claims
            }
        };
        if audience.is_some_and(|aud| aud != claims.aud) {
            return Err(VerifyError::Invalid);
        }
        Ok(claims)
    }

    fn verified_cache(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Arc<AccessTokenClaims>>> {
        self.verified.lock().unwrap_or_else(|e| e.into_inner())
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

/// Generates a key pair; every key is stored as PKCS#8 DER.
fn generate(alg: SigningAlg, sealer: &Sealer, now: i64) -> Result<SigningKeyRecord, KeyError> {
    let rng = SystemRandom::new();
    let private_der = match alg {
        SigningAlg::ES256 => EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| KeyError::Generation)?
            .as_ref()
            .to_vec(),
        SigningAlg::RS256 => RsaKeyPair::generate(KeySize::Rsa2048)
            .and_then(|pair| pair.as_der())
            .map_err(|_| KeyError::Generation)?
            .as_ref()
            .to_vec(),
        SigningAlg::EdDSA => Ed25519KeyPair::generate_pkcs8(&rng)
            .map_err(|_| KeyError::Generation)?
            .as_ref()
            .to_vec(),
    };
    let kid = crypto::random_token()[..16].to_owned();
    let private_der = sealer.seal(&kid, &private_der);
    Ok(SigningKeyRecord {
        kid,
        alg,
        private_der,
        created_at: now,
    })
}

fn parse(stored: &SigningKeyRecord, sealer: &Sealer) -> Result<SigningKey, KeyError> {
    let private_der = sealer.open(&stored.kid, &stored.private_der)?;
    SigningKey::from_pkcs8(
        stored.kid.clone(),
        stored.alg,
        stored.created_at,
        &private_der,
    )
    .map_err(|_| KeyError::Unusable(stored.kid.clone()))
}

/// Creates a new key for `alg` (`latchkey keys rotate`). It is published at once and signs
/// after [`PUBLISH_BEFORE_SIGNING`]; the old key keeps verifying until it is retired.
pub async fn rotate(
    store: &dyn Store,
    sealer: &Sealer,
    alg: SigningAlg,
    now: i64,
) -> Result<SigningKeyRecord, KeyError> {
    let record = generate(alg, sealer, now)?;
    store.insert_signing_key(&record).await?;
    tracing::info!(target: "audit", event = "signing_key_rotated", kid = %record.kid, alg = alg.as_str());
    Ok(record)
}

/// Runs [`KeyRing::load`] every [`RELOAD_INTERVAL`] and installs the result, so every node
/// follows rotations and retirements within a minute.
pub fn spawn_reload(svc: std::sync::Arc<super::Latchkey>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(RELOAD_INTERVAL);
        ticker.tick().await;
        loop {
            ticker.tick().await;
            if let Err(error) = svc.reload_keys().await {
                tracing::warn!(%error, "reloading signing keys failed; keeping the current ones");
            }
        }
    })
}
