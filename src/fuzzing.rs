//! Entry points for the fuzz targets in `fuzz/` and for the corpus replay in `tests/props.rs`.
//!
//! Each function takes arbitrary bytes, feeds them to the protocol parsers in the order the
//! HTTP layer does, and checks the invariants a successful parse must satisfy. None of them
//! does I/O or reads the clock: time is the fixed [`NOW`], the clients are [`clients`] and the
//! signing keys are [`signing_keys`], which exist only for fuzzing and tests.
//!
//! # Panics
//!
//! Never for any input while the parsers are correct. Each function panics (with `assert!`)
//! only when a parser broke one of the invariants listed in its documentation: that panic is
//! the bug report the fuzzer is looking for.

use std::sync::LazyLock;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use url::{Host, Url};

use crate::protocol::access_token::{self, SigningKey};
use crate::protocol::authorize::{self, AuthorizationRequest, Prompt};
use crate::protocol::client_auth::{self, AuthMethod, ClientCredentials};
use crate::protocol::error::{TokenError, UntrustedRequest};
use crate::protocol::params::Params;
use crate::protocol::pkce;
use crate::protocol::redirect_uri as redirect_rules;
use crate::protocol::token::{
    CodeGrant, CodePresentation, RefreshGrant, TokenRequest, check_code, check_refresh,
    client_credentials_scope,
};
use crate::protocol::types::{Client, CodeVerifier, GrantType, Scopes, SigningAlg};

/// The fixed "current time" of every fuzz run, in seconds since the Unix epoch.
pub const NOW: i64 = 1_750_000_000;
/// The issuer the `jwt` target verifies tokens for.
pub const ISSUER: &str = "https://latchkey.example";
/// The audience the `jwt` target requires.
pub const AUDIENCE: &str = "https://api.example";
/// `kid` of the Ed25519 key derived from a fixed seed, so the corpus can hold tokens that verify.
pub const ED25519_KID: &str = "fuzz-ed25519";
/// `kid` of the ES256 key, generated afresh in each process.
pub const ES256_KID: &str = "fuzz-es256";
/// The PKCE verifier of RFC 7636 Appendix B; [`code_grants`] bind its challenge.
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

/// Seed of the fuzz-only Ed25519 key. It signs nothing outside fuzzing and tests.
const ED25519_SEED: [u8; 32] = *b"latchkey-fuzz-only-ed25519-seed!";

fn scope_set(raw: &str) -> Scopes {
    Scopes::parse(raw).unwrap_or_default()
}

/// The registered clients the `authorize_request` target checks every request against: a
/// confidential web client, a public native client with loopback and custom-scheme redirect
/// URIs, a confidential client opted out of PKCE, and one without the code grant.
pub fn clients() -> Vec<Client> {
    let client = |id: &str, public: bool, uris: &[&str], scope: &str| Client {
        id: id.to_owned(),
        name: id.to_owned(),
        public,
        redirect_uris: uris.iter().map(|u| (*u).to_owned()).collect(),
        scopes: scope_set(scope),
        grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        require_pkce: true,
        access_token_alg: SigningAlg::ES256,
        audience: None,
        created_at: 0,
        id_token_alg: SigningAlg::RS256,
        post_logout_redirect_uris: Vec::new(),
    };
    let web = client(
        "web1",
        false,
        &["https://app.example/cb", "https://app.example/cb?tenant=1"],
        "openid profile read write",
    );
    let native = client(
        "native",
        true,
        &[
            "http://127.0.0.1/cb",
            "http://[::1]/cb",
            "com.example.app:/oauth2redirect",
        ],
        "openid read",
    );
    let mut legacy = client("legacy", false, &["https://legacy.example/cb"], "read");
    legacy.require_pkce = false;
    let mut service = client("service", false, &["https://svc.example/cb"], "read");
    service.grant_types = vec![GrantType::RefreshToken];
    vec![web, native, legacy, service]
}

/// The authorization codes the `token_request` target redeems: one bound to the S256 challenge
/// of [`VERIFIER`], one issued without PKCE, and one already expired at [`NOW`].
pub fn code_grants() -> Vec<CodeGrant> {
    let grant =
        |client_id: &str, redirect_uri: &str, challenge: Option<String>, ttl: i64| CodeGrant {
            grant_id: format!("grant-{client_id}"),
            client_id: client_id.to_owned(),
            user_id: "user".to_owned(),
            redirect_uri: redirect_uri.to_owned(),
            code_challenge: challenge,
            scope: scope_set("openid read"),
            auth_time: NOW - 10,
            expires_at: NOW + ttl,
            nonce: None,
        };
    vec![
        grant(
            "web1",
            "https://app.example/cb",
            Some(pkce::s256_challenge(VERIFIER)),
            60,
        ),
        grant("legacy", "https://legacy.example/cb", None, 60),
        grant(
            "native",
            "http://127.0.0.1/cb",
            Some(pkce::s256_challenge(VERIFIER)),
            0,
        ),
    ]
}

/// The refresh-token families the `token_request` target refreshes: a live one and a revoked one.
pub fn refresh_grants() -> Vec<RefreshGrant> {
    let live = RefreshGrant {
        grant_id: "grant-web1".to_owned(),
        client_id: "web1".to_owned(),
        user_id: "user".to_owned(),
        scope: scope_set("openid read write"),
        auth_time: NOW - 100,
        expires_at: NOW + 3600,
        revoked: false,
        user_disabled: false,
        refreshed_at: Some(NOW - 10),
    };
    let revoked = RefreshGrant {
        revoked: true,
        ..live.clone()
    };
    vec![live, revoked]
}

/// The idle lifetime of a refresh-token family in the `token_request` target.
pub const REFRESH_IDLE_TTL: i64 = 600;

fn ed25519_key() -> Option<SigningKey> {
    let pair = Ed25519KeyPair::from_seed_unchecked(&ED25519_SEED).ok()?;
    let pkcs8 = pair.to_pkcs8v1().ok()?;
    SigningKey::from_pkcs8(ED25519_KID.to_owned(), SigningAlg::EdDSA, 0, pkcs8.as_ref()).ok()
}

fn es256_key() -> Option<SigningKey> {
    let pkcs8 =
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
            .ok()?;
    SigningKey::from_pkcs8(ES256_KID.to_owned(), SigningAlg::ES256, 0, pkcs8.as_ref()).ok()
}

static KEYS: LazyLock<Vec<SigningKey>> =
    LazyLock::new(|| [ed25519_key(), es256_key()].into_iter().flatten().collect());

/// The fuzz-only signing keys: Ed25519 from a fixed seed ([`ED25519_KID`]) and a fresh ES256
/// key ([`ES256_KID`]).
pub fn signing_keys() -> &'static [SigningKey] {
    &KEYS
}

fn find_key(kid: &str) -> Option<&'static SigningKey> {
    signing_keys().iter().find(|k| k.kid == kid)
}

/// Target `authorize_request`: `data` is the query string of an authorization request.
///
/// Runs steps 1 to 3 of the authorization endpoint against every client of [`clients`].
/// Invariants: a client id is only accepted when neither `client_id` nor `redirect_uri` is
/// repeated; a confidential client's redirect URI is accepted only when registered byte for
/// byte; a validated request has no repeated parameter, `response_type=code`, a non-empty scope
/// within the client's, a well-formed S256 challenge (always present for clients that require
/// PKCE) and the redirect URI it was given; a stored prompt reads back as itself.
pub fn authorize_request(data: &[u8]) {
    let params = Params::parse(data);
    match authorize::requested_client_id(&params) {
        Ok(id) => assert!(
            !id.is_empty()
                && !params.is_repeated("client_id")
                && !params.is_repeated("redirect_uri"),
            "requested_client_id accepted {id:?} from a repeated or empty parameter"
        ),
        Err(UntrustedRequest::RepeatedClientOrRedirect) => assert!(
            params.is_repeated("client_id") || params.is_repeated("redirect_uri"),
            "RepeatedClientOrRedirect without a repeat"
        ),
        Err(_) => {}
    }
    for client in clients() {
        let Ok(uri) = authorize::registered_redirect_uri(&params, &client) else {
            continue;
        };
        assert!(
            client.public || client.redirect_uris.iter().any(|r| r == uri),
            "confidential client {} accepted unregistered redirect URI {uri:?}",
            client.id
        );
        let Ok(request) = AuthorizationRequest::validate(&params, &client, uri) else {
            continue;
        };
        assert!(!params.has_repeats(), "validated a request with repeats");
        assert_eq!(params.get("response_type"), Some("code"));
        assert!(!request.scope.is_empty() && request.scope.is_subset(&client.scopes));
        assert_eq!(request.redirect_uri, uri);
        match &request.code_challenge {
            Some(challenge) => assert!(pkce::is_valid_s256_challenge(challenge)),
            None => assert!(!client.public && !client.require_pkce, "PKCE was skipped"),
        }
        assert!(!(request.prompt.none && (request.prompt.login || request.prompt.consent)));
        assert_eq!(
            Prompt::from_stored(&request.prompt.as_string()),
            request.prompt
        );
    }
}

/// Target `token_request`: `data` is the form body of a token request.
///
/// Parses it as the token endpoint does and redeems the result against [`code_grants`] or
/// [`refresh_grants`] at [`NOW`]. Invariants: a parsed request had no repeated parameter and
/// the `grant_type` it reports; a repeated parameter is refused as such; a code is accepted
/// only before it expires, for its client, with its exact redirect URI and with a verifier
/// whose S256 transform is its challenge (or neither); a refresh is accepted only for a live
/// family of the same client and never widens its scope; the S256 transform of any string is
/// a well-formed challenge that verifies exactly when the string is a valid verifier.
pub fn token_request(data: &[u8]) {
    let mut params = Params::parse(data);
    let repeated = params.has_repeats();
    let grant_type = params.get("grant_type").map(str::to_owned);
    let client_id = params.get("client_id").unwrap_or("web1").to_owned();
    if let Some(verifier) = params.get("code_verifier") {
        let challenge = pkce::s256_challenge(verifier);
        assert!(pkce::is_valid_s256_challenge(&challenge));
        assert_eq!(
            pkce::verify(&CodeVerifier::new(verifier), &challenge),
            pkce::is_valid_verifier(verifier)
        );
    }
    let request = match TokenRequest::parse(&mut params) {
        Ok(request) => request,
        Err(error) => {
            assert!(
                !repeated || error == TokenError::RepeatedParameter,
                "a repeated parameter was refused as {error:?}"
            );
            return;
        }
    };
    assert!(
        !repeated,
        "parsed a token request with a repeated parameter"
    );
    assert_eq!(Some(request.grant_type().as_str()), grant_type.as_deref());
    match request {
        TokenRequest::AuthorizationCode {
            redirect_uri,
            code_verifier,
            ..
        } => {
            for code in code_grants() {
                let presented = CodePresentation {
                    client_id: &client_id,
                    redirect_uri: redirect_uri.as_deref(),
                    code_verifier: code_verifier.as_ref(),
                    now: NOW,
                };
                if check_code(&code, &presented).is_err() {
                    continue;
                }
                assert!(NOW < code.expires_at, "an expired code was accepted");
                assert_eq!(code.client_id, client_id);
                assert_eq!(redirect_uri.as_deref(), Some(code.redirect_uri.as_str()));
                match (&code.code_challenge, &code_verifier) {
                    (Some(challenge), Some(verifier)) => {
                        assert!(pkce::is_valid_verifier(verifier.expose()));
                        assert_eq!(&pkce::s256_challenge(verifier.expose()), challenge);
                    }
                    (None, None) => {}
                    _ => panic!("a PKCE mismatch was accepted"),
                }
            }
        }
        TokenRequest::RefreshToken { scope, .. } => {
            let client_scopes = scope_set("openid read");
            for grant in refresh_grants() {
                let Ok(granted) = check_refresh(
                    &grant,
                    &client_id,
                    &client_scopes,
                    scope.as_ref(),
                    REFRESH_IDLE_TTL,
                    NOW,
                ) else {
                    continue;
                };
                assert!(grant.is_live(REFRESH_IDLE_TTL, NOW) && grant.client_id == client_id);
                assert!(granted.is_subset(&grant.scope) && granted.is_subset(&client_scopes));
                if let Some(requested) = &scope {
                    assert_eq!(&granted, requested);
                }
            }
        }
        TokenRequest::ClientCredentials { scope } => {
            let client_scopes = scope_set("openid offline_access read write");
            if let Ok(granted) = client_credentials_scope(scope.as_ref(), &client_scopes) {
                assert!(granted.is_subset(&client_scopes));
                assert!(!granted.contains("openid") && !granted.contains("offline_access"));
            }
        }
    }
}

/// Target `client_auth`: up to the first `\n`, `data` is the `Authorization` header (absent
/// when there is no `\n`); the rest is the form body.
///
/// Invariants: repeated `client_id` or `client_secret` is refused; accepted credentials have a
/// non-empty client id and are taken out of the body; Basic credentials come only from a
/// `Basic` header with no `client_secret` in the body, and their failures are Basic failures;
/// body credentials come only without a Basic header.
pub fn client_auth(data: &[u8]) {
    let (header, body) = match data.iter().position(|&b| b == b'\n') {
        Some(at) => (
            Some(String::from_utf8_lossy(&data[..at]).into_owned()),
            &data[at + 1..],
        ),
        None => (None, data),
    };
    let mut params = Params::parse(body);
    let repeated = params.is_repeated("client_id") || params.is_repeated("client_secret");
    let body_secret = params.get("client_secret").is_some();
    let basic_scheme = header
        .as_deref()
        .and_then(|h| h.split_once(' '))
        .is_some_and(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"));
    let credentials = match client_auth::parse(header.as_deref(), &mut params) {
        Ok(credentials) => credentials,
        Err(error) => {
            assert!(!repeated || error == TokenError::RepeatedParameter);
            return;
        }
    };
    assert!(!repeated, "accepted credentials from a repeated parameter");
    assert!(!credentials.client_id().is_empty());
    assert!(params.get("client_id").is_none() && params.get("client_secret").is_none());
    match &credentials {
        ClientCredentials::Secret {
            secret,
            method: AuthMethod::Basic,
            ..
        } => {
            assert!(basic_scheme && !body_secret && !secret.expose().is_empty());
            assert_eq!(credentials.failure(), TokenError::BasicAuthFailed);
        }
        ClientCredentials::Secret { .. } => assert!(!basic_scheme && body_secret),
        ClientCredentials::Public { .. } => assert!(!basic_scheme && !body_secret),
    }
}

/// Target `scopes`: `data` (lossily decoded as UTF-8) is a scope string, and also a candidate
/// signing algorithm and grant type name.
///
/// Invariants: a scope string parses exactly when every character is a space or allowed by
/// RFC 6749 §3.3; a parsed set prints canonically and parses back to itself; algorithm and grant
/// type names parse only as the name they print.
pub fn scopes(data: &[u8]) {
    let raw = String::from_utf8_lossy(data);
    let allowed = raw.bytes().all(|b| {
        b == b' ' || b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b)
    });
    match Scopes::parse(&raw) {
        Ok(set) => {
            assert!(
                allowed,
                "accepted a scope string with a forbidden character"
            );
            let printed = set.to_string();
            assert_eq!(Scopes::parse(&printed).ok(), Some(set.clone()));
            assert!(
                !printed.starts_with(' ') && !printed.ends_with(' ') && !printed.contains("  ")
            );
            assert!(
                set.iter()
                    .all(|s| !s.is_empty() && !s.contains(' ') && raw.contains(s))
            );
            assert_eq!(set.is_empty(), raw.trim_matches(' ').is_empty());
        }
        Err(_) => assert!(!allowed, "refused a well-formed scope string"),
    }
    if let Some(alg) = SigningAlg::parse(&raw) {
        assert_eq!(alg.as_str(), raw);
    }
    if let Some(grant) = GrantType::parse(&raw) {
        assert_eq!(grant.as_str(), raw);
    }
}

/// The port-less text of a canonical `http` URI on a loopback IP literal, as RFC 8252 §7.3
/// matching sees it; computed independently of `redirect_uri` for the invariants.
fn loopback_key(raw: &str) -> Option<String> {
    let mut url = Url::parse(raw).ok()?;
    let loopback = match url.host()? {
        Host::Ipv4(ip) => ip.is_loopback(),
        Host::Ipv6(ip) => ip.is_loopback(),
        Host::Domain(_) => false,
    };
    // The canonical text, or the canonical text with the default port written out (RFC 8252
    // §7.3 allows any port, 80 included).
    let spelled_80 = url.port().is_none()
        && raw
            == format!(
                "http://{}:80{}",
                url.host_str()?,
                &url[url::Position::BeforePath..]
            );
    if (url.as_str() != raw && !spelled_80)
        || url.scheme() != "http"
        || !loopback
        || !url.username().is_empty()
    {
        return None;
    }
    url.set_port(None).ok()?;
    Some(url.into())
}

fn check_redirect_match(registered: &[String], requested: &str) {
    let exact = registered.iter().any(|r| r == requested);
    assert_eq!(
        redirect_rules::is_registered(registered, requested, false),
        exact,
        "confidential matching is not exact for {requested:?}"
    );
    if redirect_rules::is_registered(registered, requested, true) && !exact {
        let key = loopback_key(requested);
        assert!(
            key.is_some() && registered.iter().any(|r| loopback_key(r) == key),
            "public client matched {requested:?} beyond the loopback port exception"
        );
    }
}

/// Target `redirect_uri`: `data` (lossily decoded as UTF-8) is a redirect URI; when it holds a
/// `\n`, the text before it is also tried as the registered URI and the text after as the
/// requested one.
///
/// Invariants: registration refuses fragments, wildcards, whitespace, control characters,
/// backslashes, user information, dangerous schemes and plain `http` off loopback, and what a
/// confidential client may register a public client may too; a confidential client's URI
/// matches only byte for byte; a public client's matches beyond that only as a canonical `http`
/// loopback IP literal differing in port; every URI matches itself.
pub fn redirect_uri(data: &[u8]) {
    let raw = String::from_utf8_lossy(data);
    for public in [false, true] {
        if redirect_rules::validate_registration(&raw, public).is_err() {
            continue;
        }
        assert!(!raw.contains(['#', '*', '\\']));
        assert!(!raw.chars().any(|c| c.is_whitespace() || c.is_control()));
        let url = Url::parse(&raw);
        assert!(
            url.as_ref()
                .is_ok_and(|u| u.username().is_empty() && u.password().is_none())
        );
        if let Ok(url) = url {
            assert!(!matches!(
                url.scheme(),
                "javascript" | "data" | "vbscript" | "file" | "blob" | "about"
            ));
            assert!(public || matches!(url.scheme(), "http" | "https"));
            if url.scheme() == "http" {
                assert!(
                    matches!(url.host(), Some(Host::Domain("localhost"))) || loopback_host(&url)
                );
            }
        }
        if !public {
            assert!(redirect_rules::validate_registration(&raw, true).is_ok());
        }
    }
    for client in clients() {
        check_redirect_match(&client.redirect_uris, &raw);
    }
    let own = [raw.to_string()];
    assert!(redirect_rules::is_registered(&own, &raw, false));
    assert!(redirect_rules::is_registered(&own, &raw, true));
    if let Some((registered, requested)) = raw.split_once('\n') {
        check_redirect_match(&[registered.to_owned()], requested);
    }
}

fn loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        _ => false,
    }
}

/// The token text the `jwt` target verifies: `data` itself (lossily decoded), or, when `data`
/// starts with `{`, its first three `\n`-separated parts base64url-encoded and joined by `.`,
/// so the fuzzer can mutate the JSON of header and claims directly.
pub fn jwt_text(data: &[u8]) -> String {
    if data.first() != Some(&b'{') {
        return String::from_utf8_lossy(data).into_owned();
    }
    let parts: Vec<String> = data
        .splitn(3, |&b| b == b'\n')
        .map(|part| URL_SAFE_NO_PAD.encode(part))
        .collect();
    parts.join(".")
}

/// Target `jwt`: verifies [`jwt_text`] of `data` as an access token for [`ISSUER`] and
/// [`AUDIENCE`] at [`NOW`] against [`signing_keys`], with and without a required audience.
///
/// Invariants: an accepted token has the issuer, the audience when one is required, an
/// `exp` not past and an `iat` not ahead of [`NOW`] by more than the leeway, and a header with
/// `typ: at+jwt` naming one of the keys.
pub fn jwt(data: &[u8]) {
    let token = jwt_text(data);
    let leeway = access_token::LEEWAY_SECONDS as i64;
    for audience in [Some(AUDIENCE), None] {
        let Ok(claims) = access_token::verify(&token, ISSUER, audience, NOW, find_key) else {
            continue;
        };
        assert_eq!(claims.iss, ISSUER);
        if let Some(audience) = audience {
            assert_eq!(claims.aud, audience);
        }
        assert!(NOW < claims.exp.saturating_add(leeway) && claims.iat <= NOW + leeway);
        let header = jsonwebtoken::decode_header(&token);
        assert!(header.is_ok_and(|h| {
            h.typ.as_deref() == Some(access_token::TOKEN_TYPE)
                && h.kid.is_some_and(|kid| find_key(&kid).is_some())
        }));
    }
}
