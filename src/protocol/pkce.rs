//! Proof Key for Code Exchange, S256 only (RFC 7636; RFC 9700 §2.1.1 forbids `plain` in effect,
//! since only S256 keeps the verifier secret).

use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::protocol::types::CodeVerifier;

/// RFC 7636 §4.1: `code-verifier = 43*128unreserved`, unreserved = ALPHA / DIGIT / "-" / "." /
/// "_" / "~".
pub fn is_valid_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// An S256 challenge is BASE64URL(SHA256(verifier)) without padding: exactly 43 characters of
/// the base64url alphabet (RFC 7636 §4.2).
pub fn is_valid_s256_challenge(challenge: &str) -> bool {
    challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
}

/// The S256 transformation of RFC 7636 §4.2.
pub fn s256_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest(&SHA256, verifier.as_bytes()))
}

/// RFC 7636 §4.6: "If the values are equal, the token endpoint MUST continue processing as
/// normal. If the values are not equal, an error response indicating invalid_grant MUST be
/// returned." The comparison is constant-time.
pub fn verify(verifier: &CodeVerifier, challenge: &str) -> bool {
    is_valid_verifier(verifier.expose())
        && crate::crypto::ct_eq(
            s256_challenge(verifier.expose()).as_bytes(),
            challenge.as_bytes(),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7636 Appendix B.
    #[test]
    fn rfc7636_appendix_b_vector() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert_eq!(s256_challenge(verifier), challenge);
        assert!(verify(&CodeVerifier::new(verifier), challenge));
        assert!(is_valid_s256_challenge(challenge));
    }

    #[test]
    fn sending_the_challenge_itself_as_verifier_fails() {
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(!verify(&CodeVerifier::new(challenge), challenge));
    }

    #[test]
    fn verifiers_outside_rfc7636_4_1_are_refused() {
        assert!(!is_valid_verifier(&"a".repeat(42)));
        assert!(!is_valid_verifier(&"a".repeat(129)));
        assert!(!is_valid_verifier(&format!("{}+", "a".repeat(42))));
        assert!(is_valid_verifier(&"a".repeat(128)));
        assert!(!is_valid_s256_challenge("abc"));
    }
}
