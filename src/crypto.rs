//! Secret generation, digests, constant-time comparison and password hashing.
//!
//! Design note: client secrets, codes, refresh tokens and session ids are generated here with
//! 256 bits from the operating system's CSPRNG, so a single SHA-256 digest is enough to store
//! them (ASVS 5.0 V6.5.2); a slow hash would only cap the token endpoint. Passwords are chosen
//! by people and get Argon2id with the OWASP parameters, run off the async runtime.

use std::sync::LazyLock;

use std::cell::RefCell;

use argon2::password_hash::{Output, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
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
fn params() -> Params {
    Params::new(19_456, 2, 1, None).expect("static Argon2 parameters are valid")
}

/// The Argon2id hash of a random password nobody knows, with the same parameters: verified
/// against when the username is unknown, so unknown users and wrong passwords take the same
/// time (ASVS 5.0 V6.3.8).
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$SWNg8cpir5CC8prWAYAgSQ$1ANEHEF7nmVClMuAixWoRL+cy0G533TmM5SlUUbcPSs";

#[derive(Debug, thiserror::Error)]
#[error("password hashing failed")]
pub struct HashError;

thread_local! {
    /// The Argon2id working memory of this thread, reused by every hash it computes. Allocating
    /// 19 MiB per login and freeing it made glibc keep one copy per allocator arena: measured,
    /// 16 sequential logins grew the server's RSS from 13 MB to 230 MB.
    static BLOCKS: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// Argon2id of `password` with `salt` into `out`, in this thread's reusable memory.
fn argon2id_into(
    params: &Params,
    version: Version,
    password: &Password,
    salt: &[u8],
    out: &mut [u8],
) -> bool {
    let argon2 = Argon2::new(Algorithm::Argon2id, version, params.clone());
    BLOCKS.with_borrow_mut(|blocks| {
        if blocks.len() != params.block_count() {
            *blocks = vec![Block::default(); params.block_count()];
        }
        argon2
            .hash_password_into_with_memory(
                password.expose().as_bytes(),
                salt,
                out,
                blocks.as_mut_slice(),
            )
            .is_ok()
    })
}

fn hash_password_blocking(password: &Password) -> Result<String, HashError> {
    let salt = SaltString::encode_b64(&random_bytes::<16>()).map_err(|_| HashError)?;
    let mut salt_bytes = [0u8; 64];
    let salt_raw = salt.decode_b64(&mut salt_bytes).map_err(|_| HashError)?;
    let params = params();
    let mut out = [0u8; 32];
    if !argon2id_into(&params, Version::V0x13, password, salt_raw, &mut out) {
        return Err(HashError);
    }
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: (&params).try_into().map_err(|_| HashError)?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(|_| HashError)?),
    };
    Ok(hash.to_string())
}

/// The check `PasswordVerifier` performs, computed in the reusable memory: the stored PHC string
/// gives parameters, salt and expected output; outputs are compared in constant time.
fn verify_password_blocking(stored: &str, password: &Password) -> bool {
    let Ok(hash) = PasswordHash::new(stored) else {
        return false;
    };
    if hash.algorithm != Algorithm::Argon2id.ident() {
        return false;
    }
    let (Some(salt), Some(expected), Ok(params)) = (hash.salt, hash.hash, Params::try_from(&hash))
    else {
        return false;
    };
    let version = hash
        .version
        .and_then(|v| Version::try_from(v).ok())
        .unwrap_or(Version::V0x13);
    let mut salt_bytes = [0u8; 64];
    let Ok(salt_raw) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    argon2id_into(&params, version, password, salt_raw, &mut out)
        && ct_eq(&out, expected.as_bytes())
}

/// Argon2id needs 19 MiB per hash, so it runs on a few dedicated threads, one per core, and a
/// flood of logins queues instead of exhausting memory (checklist item 68). A general blocking
/// pool would not do: each of its many threads keeps its own allocator arena with the 19 MiB
/// it last used; measured, 32 concurrent logins took the server's peak RSS to 1.2 GB that way.
type Job = Box<dyn FnOnce() + Send>;

static ARGON2_POOL: LazyLock<std::sync::mpsc::SyncSender<Job>> = LazyLock::new(|| {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let (sender, receiver) = std::sync::mpsc::sync_channel::<Job>(1024);
    let receiver = std::sync::Arc::new(std::sync::Mutex::new(receiver));
    for i in 0..cores {
        let receiver = receiver.clone();
        std::thread::Builder::new()
            .name(format!("argon2-{i}"))
            .spawn(move || {
                loop {
                    let job = match receiver.lock() {
                        Ok(receiver) => receiver.recv(),
                        Err(_) => return,
                    };
                    match job {
                        Ok(job) => job(),
                        Err(_) => return,
                    }
                }
            })
            .expect("starting an Argon2 worker thread");
    }
    sender
});

/// Runs an Argon2id computation on the dedicated threads and awaits its result.
async fn with_argon2<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (done, result) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        let _ = done.send(work());
    });
    let sender = ARGON2_POOL.clone();
    // The queue is bounded; waiting for room happens off the async workers.
    tokio::task::spawn_blocking(move || sender.send(job))
        .await
        .ok()?
        .ok()?;
    result.await.ok()
}

/// Hashes a password with Argon2id on the blocking pool.
pub async fn hash_password(password: Password) -> Result<String, HashError> {
    with_argon2(move || hash_password_blocking(&password))
        .await
        .ok_or(HashError)?
}

/// Checks `password` against `stored`, or against a dummy hash when there is no user, on the
/// blocking pool. Passwords are compared exactly as typed: no trimming, no case folding.
pub async fn verify_password(stored: Option<String>, password: Password) -> bool {
    with_argon2(move || {
        verify_password_blocking(stored.as_deref().unwrap_or(DUMMY_HASH), &password)
    })
    .await
    .unwrap_or(false)
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
