//! Secret generation, digests, constant-time comparison and password hashing.
//!
//! Design note: client secrets, codes, refresh tokens and session ids are generated here with
//! 256 bits from the operating system's CSPRNG, so a single SHA-256 digest is enough to store
//! them (ASVS 5.0 V6.5.2); a slow hash would only cap the token endpoint. Passwords are chosen
//! by people and get Argon2id with the OWASP parameters, run off the async runtime.

use std::sync::LazyLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq;

use crate::protocol::types::Password;

/// 32 random bytes, base64url without padding: 43 characters from the URL-safe alphabet, so no
/// client library's encoding of Basic credentials can break them (CONTRACT §5).
pub fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<32>())
}

/// `N` bytes from the operating system's CSPRNG.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    // The system RNG only fails when the OS cannot provide randomness; nothing is safe then.
    aws_lc_rs::rand::fill(&mut bytes).expect("the operating system's random source failed");
    bytes
}

/// A random identifier in UUID v4 form, used for user subjects and grant ids.
pub fn random_uuid() -> String {
    let mut b = random_bytes::<16>();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|byte| format!("{byte:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// The SHA-256 digest under which a high-entropy secret is stored and looked up.
pub fn token_hash(secret: &str) -> Vec<u8> {
    digest(&SHA256, secret.as_bytes()).as_ref().to_vec()
}

/// Constant-time equality, for secrets and digests of secrets.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// Argon2id, m=19456 KiB, t=2, p=1: the OWASP password storage recommendation.
fn argon2() -> Argon2<'static> {
    let params = Params::new(19_456, 2, 1, None).expect("static Argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// A hash of a random password, verified against when the username is unknown so that unknown
/// users and wrong passwords take the same time (ASVS 5.0 V6.3.8).
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    hash_password_blocking(&Password::new(random_token())).expect("hashing a random password")
});

#[derive(Debug, thiserror::Error)]
#[error("password hashing failed")]
pub struct HashError;

fn hash_password_blocking(password: &Password) -> Result<String, HashError> {
    let salt = SaltString::encode_b64(&random_bytes::<16>()).map_err(|_| HashError)?;
    argon2()
        .hash_password(password.expose().as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|_| HashError)
}

/// Hashes a password with Argon2id on the blocking pool.
pub async fn hash_password(password: Password) -> Result<String, HashError> {
    tokio::task::spawn_blocking(move || hash_password_blocking(&password))
        .await
        .map_err(|_| HashError)?
}

/// Checks `password` against `stored`, or against a dummy hash when there is no user, on the
/// blocking pool. Passwords are compared exactly as typed: no trimming, no case folding.
pub async fn verify_password(stored: Option<String>, password: Password) -> bool {
    tokio::task::spawn_blocking(move || {
        let stored = stored.unwrap_or_else(|| DUMMY_HASH.clone());
        let Ok(parsed) = PasswordHash::new(&stored) else {
            return false;
        };
        argon2()
            .verify_password(password.expose().as_bytes(), &parsed)
            .is_ok()
    })
    .await
    .unwrap_or(false)
}

/// Computes the dummy hash ahead of the first login so that the first unknown-user attempt is
/// not faster than the rest.
pub fn warm_up() {
    LazyLock::force(&DUMMY_HASH);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_tokens_are_43_url_safe_characters_and_distinct() {
        let a = random_token();
        assert_eq!(a.len(), 43);
        assert!(
            a.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_ne!(a, random_token());
    }

    #[tokio::test]
    async fn passwords_verify_exactly_as_typed() {
        let hash = hash_password(Password::new("Correct horse")).await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify_password(Some(hash.clone()), Password::new("Correct horse")).await);
        assert!(!verify_password(Some(hash.clone()), Password::new("correct horse")).await);
        assert!(!verify_password(Some(hash), Password::new("Correct horse ")).await);
        assert!(!verify_password(None, Password::new("anything")).await);
    }
}
