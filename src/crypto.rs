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

/// Encrypts signing keys at rest with AES-256-GCM under a key the operator keeps outside the
/// database (`--secret-key-file`), so a copy of the database alone does not let anyone sign
/// tokens (checklist item 75). Each sealed value is `LK1 || nonce || ciphertext+tag`, with the
/// key id as associated data so a sealed key cannot be moved to another id.
#[derive(Default)]
pub struct Sealer(Option<aws_lc_rs::aead::LessSafeKey>);

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Sealer([key])"
        } else {
            "Sealer(none)"
        })
    }
}

/// Why a secret key file or a sealed value cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error(
        "the secret key file must hold 32 bytes, base64-encoded (for example from `openssl rand -base64 32`)"
    )]
    BadKeyFile,
    #[error("cannot read the secret key file: {0}")]
    Io(#[from] std::io::Error),
    #[error("the signing keys are encrypted: give the --secret-key-file they were encrypted with")]
    KeyNeeded,
    #[error("a signing key does not decrypt with this secret key file")]
    WrongKey,
}

const SEALED_PREFIX: &[u8] = b"LK1";

impl Sealer {
    /// No encryption: keys are stored as plain PKCS#8.
    pub fn none() -> Self {
        Sealer(None)
    }

    /// Reads a base64-encoded 32-byte key from a file.
    pub fn from_file(path: &std::path::Path) -> Result<Self, SealError> {
        let text = std::fs::read_to_string(path)?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .or_else(|_| URL_SAFE_NO_PAD.decode(text.trim()))
            .map_err(|_| SealError::BadKeyFile)?;
        let key = aws_lc_rs::aead::UnboundKey::new(&aws_lc_rs::aead::AES_256_GCM, &bytes)
            .map_err(|_| SealError::BadKeyFile)?;
        Ok(Sealer(Some(aws_lc_rs::aead::LessSafeKey::new(key))))
    }

    pub fn is_active(&self) -> bool {
        self.0.is_some()
    }

    /// Seals `plain` for the key id `kid`, or returns it unchanged without a key.
    pub fn seal(&self, kid: &str, plain: &[u8]) -> Vec<u8> {
        let Some(key) = &self.0 else {
            return plain.to_vec();
        };
        let nonce_bytes = random_bytes::<12>();
        let mut sealed = plain.to_vec();
        key.seal_in_place_append_tag(
            aws_lc_rs::aead::Nonce::assume_unique_for_key(nonce_bytes),
            aws_lc_rs::aead::Aad::from(kid.as_bytes()),
            &mut sealed,
        )
        .expect("AES-GCM sealing of a small buffer cannot fail");
        [SEALED_PREFIX, &nonce_bytes, &sealed].concat()
    }

    /// Opens what [`Sealer::seal`] stored; plain values (stored without a key) pass through.
    pub fn open(&self, kid: &str, stored: &[u8]) -> Result<Vec<u8>, SealError> {
        let Some(rest) = stored.strip_prefix(SEALED_PREFIX) else {
            return Ok(stored.to_vec());
        };
        let key = self.0.as_ref().ok_or(SealError::KeyNeeded)?;
        if rest.len() < 12 {
            return Err(SealError::WrongKey);
        }
        let (nonce, sealed) = rest.split_at(12);
        let nonce = aws_lc_rs::aead::Nonce::try_assume_unique_for_key(nonce)
            .map_err(|_| SealError::WrongKey)?;
        let mut buffer = sealed.to_vec();
        let plain = key
            .open_in_place(
                nonce,
                aws_lc_rs::aead::Aad::from(kid.as_bytes()),
                &mut buffer,
            )
            .map_err(|_| SealError::WrongKey)?;
        Ok(plain.to_vec())
    }
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

    #[test]
    fn sealed_keys_open_only_with_the_same_key_and_kid() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        std::fs::write(
            &path,
            base64::engine::general_purpose::STANDARD.encode(random_bytes::<32>()),
        )
        .unwrap();
        let sealer = Sealer::from_file(&path).unwrap();
        let sealed = sealer.seal("kid1", b"private key");
        assert!(!sealed.windows(11).any(|w| w == b"private key"));
        assert_eq!(sealer.open("kid1", &sealed).unwrap(), b"private key");
        assert!(matches!(
            sealer.open("kid2", &sealed),
            Err(SealError::WrongKey)
        ));
        assert!(matches!(
            Sealer::none().open("kid1", &sealed),
            Err(SealError::KeyNeeded)
        ));
        std::fs::write(
            &path,
            base64::engine::general_purpose::STANDARD.encode(random_bytes::<32>()),
        )
        .unwrap();
        assert!(matches!(
            Sealer::from_file(&path).unwrap().open("kid1", &sealed),
            Err(SealError::WrongKey)
        ));
        std::fs::write(&path, "too short").unwrap();
        assert!(matches!(
            Sealer::from_file(&path),
            Err(SealError::BadKeyFile)
        ));
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
