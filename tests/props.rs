#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Bad input, at scale: property tests over the protocol parsers (authorization and token
//! requests, client authentication and the Basic header, scope strings, redirect URIs, PKCE and
//! JWT access tokens).
//!
//! Every parser is fed both arbitrary bytes and structured near-valid input, and each test
//! proves that the parser never panics and answers `Ok` or one of its typed errors; where the
//! rule is simple enough to state independently, the test also checks the answer against it
//! (exact redirect URI matching, scope round trips, repeated parameters refused, JWTs that
//! never verify unless signed by our key). The last tests replay the seed corpus of the fuzz
//! targets in `fuzz/` through the same entry points ([`latchkey::fuzzing`]) on stable Rust.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use latchkey::fuzzing;
use latchkey::protocol::access_token::{self, AccessTokenClaims, VerifyError};
use latchkey::protocol::authorize::{self, AuthorizationRequest};
use latchkey::protocol::client_auth::{self, AuthMethod, ClientCredentials};
use latchkey::protocol::error::{AuthorizeError, TokenError, UntrustedRequest};
use latchkey::protocol::params::Params;
use latchkey::protocol::pkce;
use latchkey::protocol::redirect_uri::{self, RedirectUriError};
use latchkey::protocol::token::{
    CodeGrant, CodePresentation, RefreshGrant, TokenRequest, check_code, check_refresh,
};
use latchkey::protocol::types::{Client, CodeVerifier, GrantType, Scopes, SigningAlg};
use proptest::prelude::*;
use proptest::sample::select;
use url::{Host, Url};

const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

// ---------------------------------------------------------------------------------------------
// Shared strategies
// ---------------------------------------------------------------------------------------------

/// Arbitrary bytes, including invalid UTF-8, NUL and the form delimiters.
fn bytes() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..512)
}

/// Text that mixes the characters parsers care about with arbitrary Unicode.
fn tricky_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        4 => "[a-zA-Z0-9._~-]{0,8}",
        1 => select(vec![
            " ", "  ", "+", "%", "%2", "%ZZ", "%00", "%20", "%2B", "%3A", "%C3%28", "%FF", "&", "=",
            ":", ";", "#", "?", "/", "\\", "*", "\"", "\0", "\t", "\n", "\r", "\u{a0}",
            "\u{200b}", "\u{ff0f}", "\u{0430}", "é", "😀",
        ])
        .prop_map(str::to_owned),
        1 => any::<String>(),
    ];
    proptest::collection::vec(piece, 0..6).prop_map(|pieces| pieces.concat())
}

/// The ways a form parameter's name or value can be written on the wire.
#[derive(Clone, Copy, Debug)]
enum Encoding {
    /// `application/x-www-form-urlencoded`, as a browser writes it.
    Form,
    /// Every byte as `%XX`.
    PercentAll,
    /// As it is, delimiters and all.
    Raw,
}

fn encoding() -> impl Strategy<Value = Encoding> {
    prop_oneof![
        3 => Just(Encoding::Form),
        1 => Just(Encoding::PercentAll),
        1 => Just(Encoding::Raw),
    ]
}

fn encode(text: &str, encoding: Encoding) -> String {
    match encoding {
        Encoding::Form => form_urlencoded::byte_serialize(text.as_bytes()).collect(),
        Encoding::PercentAll => text.bytes().map(|b| format!("%{b:02X}")).collect(),
        Encoding::Raw => text.to_owned(),
    }
}

/// A form body from `(name, value, encoding)` pairs, in order.
fn form(pairs: &[(String, String, Encoding)]) -> Vec<u8> {
    pairs
        .iter()
        .map(|(name, value, enc)| format!("{}={}", encode(name, *enc), encode(value, *enc)))
        .collect::<Vec<_>>()
        .join("&")
        .into_bytes()
}

/// A form body with pairs drawn from `names`, each value chosen from the parameter's own
/// plausible values or arbitrary text, in random order, sometimes repeated, sometimes spliced
/// with arbitrary bytes.
fn near_valid_form(
    names: &'static [(&'static str, &'static [&'static str])],
) -> impl Strategy<Value = Vec<u8>> {
    let pair = (
        select(names),
        any::<prop::sample::Index>(),
        tricky_text(),
        encoding(),
        0..4u8,
    )
        .prop_map(|((name, values), pick, text, enc, mode)| {
            let value = match mode {
                0 if !values.is_empty() => pick.get(values).to_string(),
                1 => String::new(),
                2 => text,
                _ => values.first().map_or(text, |v| v.to_string()),
            };
            (name.to_owned(), value, enc)
        });
    (
        proptest::collection::vec(pair, 0..12),
        proptest::option::weighted(0.1, bytes()),
    )
        .prop_map(|(pairs, junk)| {
            let mut body = form(&pairs);
            if let Some(junk) = junk {
                body.push(b'&');
                body.extend(junk);
            }
            body
        })
}

// ---------------------------------------------------------------------------------------------
// Params (RFC 6749 §3.1)
// ---------------------------------------------------------------------------------------------

proptest! {
    /// `Params::parse` takes any bytes, and never reports an empty value: RFC 6749 §3.1 treats
    /// a parameter without a value as omitted.
    #[test]
    fn params_parse_any_bytes_and_never_return_an_empty_value(body in bytes()) {
        let params = Params::parse(&body);
        for (name, _) in form_urlencoded::parse(&body) {
            prop_assert_ne!(params.get(&name), Some(""));
        }
    }

    /// `Params` agrees with a reference model of RFC 6749 §3.1 on any form, however its names
    /// and values are encoded: the value of a name is its first non-empty value, and a name is
    /// repeated exactly when it carries a non-empty value more than once.
    #[test]
    fn params_match_a_reference_model_of_repeats_and_empty_values(
        pairs in proptest::collection::vec(
            (select(vec!["a", "b", "client_id", "scope", "é"]),
             prop_oneof![Just(String::new()), tricky_text()],
             encoding().prop_filter("raw text could hold delimiters", |e| !matches!(e, Encoding::Raw))),
            0..10,
        )
    ) {
        let pairs: Vec<_> = pairs.into_iter().map(|(n, v, e)| (n.to_owned(), v, e)).collect();
        let params = Params::parse(&form(&pairs));
        let mut first: HashMap<&str, &str> = HashMap::new();
        let mut count: HashMap<&str, usize> = HashMap::new();
        for (name, value, _) in &pairs {
            if !value.is_empty() {
                first.entry(name).or_insert(value);
                *count.entry(name).or_default() += 1;
            }
        }
        for name in ["a", "b", "client_id", "scope", "é"] {
            prop_assert_eq!(params.get(name), first.get(name).copied(), "{}", name);
            prop_assert_eq!(params.is_repeated(name), count.get(name).copied().unwrap_or(0) > 1);
        }
        prop_assert_eq!(params.has_repeats(), count.values().any(|&c| c > 1));
    }
}

// ---------------------------------------------------------------------------------------------
// Authorization requests (RFC 6749 §4.1.1)
// ---------------------------------------------------------------------------------------------

const AUTHORIZE_PARAMS: &[(&str, &[&str])] = &[
    (
        "response_type",
        &["code", "token", "code token", "CODE", "id_token"],
    ),
    (
        "client_id",
        &["web1", "native", "legacy", "service", "WEB1", "web1 "],
    ),
    (
        "redirect_uri",
        &[
            "https://app.example/cb",
            "https://app.example/cb?tenant=1",
            "http://127.0.0.1:49152/cb",
            "http://[::1]:8080/cb",
            "com.example.app:/oauth2redirect",
            "https://legacy.example/cb",
            "https://svc.example/cb",
            "https://app.example/cb/",
            "https://APP.example/cb",
            "https://app.example/%63b",
        ],
    ),
    (
        "scope",
        &[
            "openid",
            "openid read",
            "read  write",
            "admin",
            "a\"b",
            " ",
            "caf\u{e9}",
        ],
    ),
    ("state", &["xyz", "a b", "\0"]),
    (
        "code_challenge",
        &[
            CHALLENGE,
            "abc",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-c+",
        ],
    ),
    ("code_challenge_method", &["S256", "plain", "s256"]),
    (
        "prompt",
        &[
            "none",
            "login",
            "consent",
            "none login",
            "select_account",
            "bogus",
        ],
    ),
    ("response_mode", &["query", "fragment", "form_post"]),
    ("nonce", &["n-0S6_WzA2Mj"]),
    ("unknown_parameter", &[]),
];

/// The client of [`fuzzing::clients`] named `id`.
fn client(id: &str) -> Client {
    fuzzing::clients().into_iter().find(|c| c.id == id).unwrap()
}

/// A complete authorization request for the confidential client `web1`, as pairs.
fn valid_authorize_pairs() -> Vec<(String, String)> {
    [
        ("response_type", "code"),
        ("client_id", "web1"),
        ("redirect_uri", "https://app.example/cb"),
        ("scope", "openid read"),
        ("state", "af0ifjsldkj"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ]
    .into_iter()
    .map(|(n, v)| (n.to_owned(), v.to_owned()))
    .collect()
}

/// Runs the three steps of the authorization endpoint as the service does.
fn authorize(body: &[u8]) -> Result<AuthorizationRequest, String> {
    let params = Params::parse(body);
    let id = authorize::requested_client_id(&params).map_err(|e| format!("{e:?}"))?;
    let client = fuzzing::clients()
        .into_iter()
        .find(|c| c.id == id)
        .ok_or_else(|| format!("{:?}", UntrustedRequest::UnknownClient))?;
    let uri = authorize::registered_redirect_uri(&params, &client).map_err(|e| format!("{e:?}"))?;
    AuthorizationRequest::validate(&params, &client, uri).map_err(|e| format!("{e:?}"))
}

proptest! {
    /// Arbitrary bytes as an authorization request never panic any of the three steps, for any
    /// client, and never break the invariants of a validated request.
    #[test]
    fn authorize_request_survives_arbitrary_bytes(body in bytes()) {
        fuzzing::authorize_request(&body);
        let _ = authorize(&body);
    }

    /// Near-valid authorization requests (real parameter names, plausible and hostile values,
    /// any order, repeats, mixed encodings, trailing junk) never panic, and whatever passes
    /// validation is for a registered redirect URI, an allowed scope and a valid S256 challenge.
    #[test]
    fn authorize_request_near_valid_forms_keep_the_invariants(
        body in near_valid_form(AUTHORIZE_PARAMS)
    ) {
        fuzzing::authorize_request(&body);
        if let Ok(request) = authorize(&body) {
            let client = client(&request.client_id);
            prop_assert!(redirect_uri::is_registered(&client.redirect_uris, &request.redirect_uri, client.public));
            prop_assert!(request.scope.is_subset(&client.scopes) && !request.scope.is_empty());
            prop_assert!(request.code_challenge.as_deref().is_some_and(pkce::is_valid_s256_challenge)
                || !client.require_pkce);
        }
    }

    /// A complete request is accepted whatever the order of its parameters and whatever
    /// unrecognised parameters surround it (RFC 6749 §3.1: "MUST ignore unrecognized request
    /// parameters"), and any one parameter, known or not, sent a second time with a value in
    /// any encoding makes it fail: as untrusted for `client_id` and `redirect_uri`, as
    /// `RepeatedParameter` otherwise.
    #[test]
    fn authorize_request_with_any_repeated_parameter_is_rejected(
        order in Just(valid_authorize_pairs()).prop_shuffle(),
        extra in proptest::collection::vec(
            ("[a-z]{1,6}", tricky_text().prop_filter("non-empty", |v| !v.is_empty())),
            0..3,
        ),
        repeat in any::<prop::sample::Index>(),
        second in "[a-zA-Z0-9 ]{1,10}",
        enc in encoding().prop_filter("raw text could hold delimiters", |e| !matches!(e, Encoding::Raw)),
        at in any::<prop::sample::Index>(),
    ) {
        let mut pairs: Vec<(String, String, Encoding)> = order
            .into_iter()
            .chain(extra.into_iter().enumerate().map(|(i, (n, v))| (format!("x{i}_{n}"), v)))
            .map(|(n, v)| (n, v, Encoding::Form))
            .collect();
        let accepted = authorize(&form(&pairs)).unwrap();
        prop_assert_eq!(accepted.client_id, "web1");
        prop_assert_eq!(accepted.scope.to_string(), "openid read");
        prop_assert_eq!(accepted.code_challenge.as_deref(), Some(CHALLENGE));

        let name = pairs[repeat.index(pairs.len())].0.clone();
        pairs.insert(at.index(pairs.len() + 1), (name.clone(), second, enc));
        let refused = authorize(&form(&pairs)).unwrap_err();
        let expected = if name == "client_id" || name == "redirect_uri" {
            format!("{:?}", UntrustedRequest::RepeatedClientOrRedirect)
        } else {
            format!("{:?}", AuthorizeError::RepeatedParameter)
        };
        prop_assert_eq!(refused, expected, "repeated {}", name);
    }
}

// ---------------------------------------------------------------------------------------------
// Token requests (RFC 6749 §4.1.3, §6) and client authentication (RFC 6749 §2.3)
// ---------------------------------------------------------------------------------------------

const TOKEN_PARAMS: &[(&str, &[&str])] = &[
    (
        "grant_type",
        &[
            "authorization_code",
            "refresh_token",
            "password",
            "client_credentials",
            "AUTHORIZATION_CODE",
        ],
    ),
    ("code", &["SplxlOBeZQQYbYS6WxSbIA", "\0"]),
    (
        "redirect_uri",
        &[
            "https://app.example/cb",
            "https://legacy.example/cb",
            "https://app.example/cb/",
            "http://127.0.0.1/cb",
        ],
    ),
    (
        "code_verifier",
        &[
            fuzzing::VERIFIER,
            CHALLENGE,
            "short",
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjX+",
        ],
    ),
    ("refresh_token", &["tGzv3JOkF0XG5Qx2TlKWIA"]),
    (
        "scope",
        &["openid", "read write", "admin", "a\\b", "openid read"],
    ),
    ("client_id", &["web1", "legacy", "native", "web2"]),
    ("client_secret", &["s3cr3t"]),
    ("unknown_parameter", &[]),
];

/// A complete authorization-code token request for `web1`, as pairs.
fn valid_token_pairs() -> Vec<(String, String)> {
    [
        ("grant_type", "authorization_code"),
        ("code", "SplxlOBeZQQYbYS6WxSbIA"),
        ("redirect_uri", "https://app.example/cb"),
        ("code_verifier", fuzzing::VERIFIER),
        ("client_id", "web1"),
        ("client_secret", "s3cr3t"),
    ]
    .into_iter()
    .map(|(n, v)| (n.to_owned(), v.to_owned()))
    .collect()
}

/// Client authentication then the token request, as the token endpoint runs them.
fn token_endpoint(
    authorization: Option<&str>,
    body: &[u8],
) -> Result<(ClientCredentials, TokenRequest), TokenError> {
    let mut params = Params::parse(body);
    let credentials = client_auth::parse(authorization, &mut params)?;
    let request = TokenRequest::parse(&mut params)?;
    Ok((credentials, request))
}

fn basic(id: &str, secret: &str) -> String {
    let id: String = form_urlencoded::byte_serialize(id.as_bytes()).collect();
    let secret: String = form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
}

/// Base64 text that is sometimes valid, sometimes padded wrongly, sometimes not base64.
fn basic_payload() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..64).prop_map(|b| STANDARD.encode(b)),
        "[a-zA-Z0-9:%+ ]{0,40}".prop_map(|s| STANDARD.encode(s)),
        "[a-zA-Z0-9+/=]{0,40}",
        proptest::collection::vec(any::<u8>(), 0..48).prop_map(|b| URL_SAFE_NO_PAD.encode(b)),
        tricky_text(),
    ]
}

proptest! {
    /// Arbitrary bytes as a token request body never panic the parser and the checks behind
    /// it, and nothing is accepted that breaks the code, PKCE or refresh rules.
    #[test]
    fn token_request_survives_arbitrary_bytes(body in bytes()) {
        fuzzing::token_request(&body);
        let _ = token_endpoint(None, &body);
    }

    /// Near-valid token requests (real names, plausible and hostile values, repeats, mixed
    /// encodings) never panic, and a parsed request always reports the `grant_type` sent.
    #[test]
    fn token_request_near_valid_forms_keep_the_invariants(body in near_valid_form(TOKEN_PARAMS)) {
        fuzzing::token_request(&body);
        fuzzing::client_auth(&body);
        let grant_type = Params::parse(&body).get("grant_type").map(str::to_owned);
        if let Ok(request) = TokenRequest::parse(&mut Params::parse(&body)) {
            prop_assert_eq!(Some(request.grant_type().as_str()), grant_type.as_deref());
        }
    }

    /// A complete token request is accepted in any order, and any one parameter sent a second
    /// time with a value, in any encoding, makes the token endpoint refuse it with
    /// `RepeatedParameter` (RFC 6749 §3.2).
    #[test]
    fn token_request_with_any_repeated_parameter_is_rejected(
        order in Just(valid_token_pairs()).prop_shuffle(),
        repeat in any::<prop::sample::Index>(),
        second in "[a-zA-Z0-9 ]{1,10}",
        enc in encoding().prop_filter("raw text could hold delimiters", |e| !matches!(e, Encoding::Raw)),
        at in any::<prop::sample::Index>(),
    ) {
        let mut pairs: Vec<_> = order.into_iter().map(|(n, v)| (n, v, Encoding::Form)).collect();
        let (credentials, request) = token_endpoint(None, &form(&pairs)).unwrap();
        prop_assert_eq!(credentials.client_id(), "web1");
        prop_assert_eq!(request.grant_type(), GrantType::AuthorizationCode);

        let name = pairs[repeat.index(pairs.len())].0.clone();
        pairs.insert(at.index(pairs.len() + 1), (name.clone(), second, enc));
        let refused = token_endpoint(None, &form(&pairs)).unwrap_err();
        prop_assert_eq!(refused, TokenError::RepeatedParameter, "repeated {}", name);
    }

    /// Any header and body never panic client authentication; with an empty body, a `Basic`
    /// header either yields non-empty credentials by method Basic or fails as a Basic failure
    /// (so the 401 with `WWW-Authenticate` of RFC 6749 §5.2 follows).
    #[test]
    fn basic_header_with_random_content_is_ok_or_a_basic_failure(
        scheme in select(vec!["Basic", "basic", "BASIC", "bAsIc"]),
        gap in select(vec![" ", "  ", " \t"]),
        payload in basic_payload(),
        body in prop_oneof![Just(Vec::new()), bytes()],
    ) {
        let header = format!("{scheme}{gap}{payload}");
        let mut input = header.clone().into_bytes();
        input.push(b'\n');
        input.extend(&body);
        fuzzing::client_auth(&input);
        match client_auth::parse(Some(&header), &mut Params::default()) {
            Ok(ClientCredentials::Secret { client_id, secret, method: AuthMethod::Basic }) => {
                prop_assert!(!client_id.is_empty() && !secret.expose().is_empty());
            }
            Ok(other) => prop_assert!(false, "Basic header gave {other:?}"),
            Err(error) => prop_assert_eq!(error, TokenError::BasicAuthFailed),
        }
    }

    /// Any non-empty client id and secret, whatever their characters (`:`, `+`, `%`, spaces,
    /// Unicode), survive the RFC 6749 §2.3.1 Basic encoding round trip exactly, in any case of
    /// the scheme name; and adding `client_secret` to the body is two methods at once.
    #[test]
    fn basic_header_round_trips_any_form_encoded_credentials(
        id in tricky_text().prop_filter("non-empty", |s| !s.is_empty()),
        secret in tricky_text().prop_filter("non-empty", |s| !s.is_empty()),
        scheme in select(vec!["Basic", "basic", "BASIC"]),
    ) {
        let header = basic(&id, &secret).replacen("Basic", scheme, 1);
        let credentials = client_auth::parse(Some(&header), &mut Params::default()).unwrap();
        let ClientCredentials::Secret { client_id, secret: got, method } = credentials else {
            panic!("expected secret credentials");
        };
        prop_assert_eq!(client_id, id);
        prop_assert_eq!(got.expose(), secret.as_str());
        prop_assert_eq!(method, AuthMethod::Basic);

        let mut both = Params::parse(b"client_secret=other");
        prop_assert_eq!(
            client_auth::parse(Some(&header), &mut both).unwrap_err(),
            TokenError::MultipleAuthMethods
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Code and refresh rules (RFC 6749 §4.1.3, §6; RFC 7636 §4.6; RFC 9700 §4.14.2)
// ---------------------------------------------------------------------------------------------

fn scope_set(raw: &str) -> Scopes {
    Scopes::parse(raw).unwrap()
}

/// A subset of a small scope universe.
fn scope_subset() -> impl Strategy<Value = Scopes> {
    proptest::sample::subsequence(vec!["openid", "read", "write", "admin"], 0..=4)
        .prop_map(|s| scope_set(&s.join(" ")))
}

proptest! {
    /// `check_code` accepts exactly the presentation the code is bound to: before expiry, by
    /// the client it was issued to, with the identical redirect URI, and with the verifier of
    /// its S256 challenge (or no verifier for a code issued without one).
    #[test]
    fn check_code_accepts_exactly_the_bound_presentation(
        challenge in proptest::option::of(Just(CHALLENGE.to_owned())),
        client_id in select(vec!["web1", "web2", "WEB1", ""]),
        redirect in proptest::option::of(select(vec![
            "https://app.example/cb", "https://app.example/cb/", "https://app.example/CB", "",
        ])),
        verifier in proptest::option::of(prop_oneof![
            Just(fuzzing::VERIFIER.to_owned()),
            Just(CHALLENGE.to_owned()),
            "[A-Za-z0-9._~-]{43,128}",
            tricky_text(),
        ]),
        now in 90i64..110,
    ) {
        let code = CodeGrant {
            grant_id: "g".into(),
            client_id: "web1".into(),
            user_id: "u".into(),
            redirect_uri: "https://app.example/cb".into(),
            code_challenge: challenge.clone(),
            scope: scope_set("openid"),
            auth_time: 0,
            expires_at: 100,
            nonce: None,
        };
        let verifier = verifier.map(CodeVerifier::new);
        let presented = CodePresentation {
            client_id,
            redirect_uri: redirect,
            code_verifier: verifier.as_ref(),
            now,
        };
        let pkce_ok = match (&challenge, &verifier) {
            (Some(c), Some(v)) => {
                pkce::is_valid_verifier(v.expose()) && pkce::s256_challenge(v.expose()) == *c
            }
            (None, None) => true,
            _ => false,
        };
        let expected = now < 100
            && client_id == "web1"
            && redirect == Some("https://app.example/cb")
            && pkce_ok;
        prop_assert_eq!(check_code(&code, &presented).is_ok(), expected);
    }

    /// `check_refresh` never widens a grant: it succeeds exactly for the owning client on a
    /// live family with a requested scope within both the grant and the client's current
    /// scopes, and then returns the requested scope (or the grant's).
    #[test]
    fn check_refresh_never_widens_the_scope(
        granted in scope_subset(),
        allowed in scope_subset(),
        requested in proptest::option::of(scope_subset()),
        client_id in select(vec!["web1", "web2"]),
        revoked in any::<bool>(),
        now in 0i64..200,
    ) {
        let grant = RefreshGrant {
            grant_id: "g".into(),
            client_id: "web1".into(),
            user_id: "u".into(),
            scope: granted.clone(),
            auth_time: 0,
            expires_at: 150,
            revoked,
            user_disabled: false,
            refreshed_at: Some(0),
        };
        let result = check_refresh(&grant, client_id, &allowed, requested.as_ref(), 120, now);
        let scope = requested.clone().unwrap_or_else(|| granted.clone());
        let expected_ok = client_id == "web1"
            && !revoked
            && now < 120
            && scope.is_subset(&granted)
            && scope.is_subset(&allowed);
        prop_assert_eq!(result.is_ok(), expected_ok, "{:?}", result);
        if let Ok(got) = result {
            prop_assert_eq!(got, scope);
        }
    }

    /// PKCE S256 (RFC 7636 §4.2, §4.6): the challenge of any string is 43 base64url characters,
    /// a string verifies against its own challenge exactly when it is a valid verifier, and
    /// never against the challenge of a different string.
    #[test]
    fn pkce_verifies_only_a_valid_verifier_against_its_own_challenge(
        verifier in prop_oneof!["[A-Za-z0-9._~-]{40,130}", tricky_text()],
        other in "[A-Za-z0-9._~-]{43,128}",
    ) {
        let challenge = pkce::s256_challenge(&verifier);
        prop_assert!(pkce::is_valid_s256_challenge(&challenge));
        prop_assert_eq!(
            pkce::verify(&CodeVerifier::new(verifier.clone()), &challenge),
            pkce::is_valid_verifier(&verifier)
        );
        if other != verifier {
            prop_assert!(!pkce::verify(&CodeVerifier::new(other), &challenge));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Scope strings (RFC 6749 §3.3) and other protocol names
// ---------------------------------------------------------------------------------------------

fn scope_char_allowed(c: char) -> bool {
    c == '!' || ('#'..='[').contains(&c) || (']'..='~').contains(&c)
}

/// A valid scope token: 1*( %x21 / %x23-5B / %x5D-7E ).
fn scope_token() -> impl Strategy<Value = String> {
    "[!#-\\[\\]-~]{1,12}"
}

proptest! {
    /// `Scopes::parse` accepts a string exactly when every character is a space or allowed by
    /// RFC 6749 §3.3; tabs, other whitespace, quotes, backslashes and non-ASCII are refused.
    #[test]
    fn scopes_parse_accepts_exactly_rfc6749_3_3_strings(raw in prop_oneof![
        tricky_text(),
        proptest::collection::vec(prop_oneof![scope_token(), Just(" ".to_owned()), tricky_text()], 0..6)
            .prop_map(|p| p.concat()),
    ]) {
        fuzzing::scopes(raw.as_bytes());
        let allowed = raw.chars().all(|c| c == ' ' || scope_char_allowed(c));
        prop_assert_eq!(Scopes::parse(&raw).is_ok(), allowed, "{:?}", raw);
    }

    /// Valid scope tokens joined by any runs of spaces parse to the set of those tokens
    /// (duplicates merged, order ignored), print canonically (sorted, single spaces) and parse
    /// back to the same set.
    #[test]
    fn scopes_round_trip_through_their_canonical_text(
        tokens in proptest::collection::vec(scope_token(), 0..8),
        gaps in proptest::collection::vec(1usize..4, 9),
        lead in 0usize..3,
    ) {
        let mut raw = " ".repeat(lead);
        for (token, gap) in tokens.iter().zip(&gaps) {
            raw.push_str(token);
            raw.push_str(&" ".repeat(*gap));
        }
        let scopes = Scopes::parse(&raw).unwrap();
        let expected: BTreeSet<&str> = tokens.iter().map(String::as_str).collect();
        prop_assert_eq!(scopes.iter().collect::<BTreeSet<_>>(), expected.clone());
        let canonical = expected.into_iter().collect::<Vec<_>>().join(" ");
        prop_assert_eq!(scopes.to_string(), canonical.clone());
        prop_assert_eq!(Scopes::parse(&canonical).unwrap(), scopes);
    }

    /// Algorithm and grant type names parse only when spelled exactly: no case folding, no
    /// trimming, no prefix matches.
    #[test]
    fn algorithm_and_grant_type_names_parse_only_when_exact(
        name in select(vec!["ES256", "RS256", "EdDSA", "authorization_code", "refresh_token", "none", "HS256"]),
        mangle in 0u8..5,
    ) {
        let raw = match mangle {
            0 => name.to_owned(),
            1 => name.to_lowercase(),
            2 => format!("{name} "),
            3 => format!("{name}\0"),
            _ => name[..name.len() - 1].to_owned(),
        };
        let known = ["ES256", "RS256", "EdDSA"].contains(&raw.as_str());
        prop_assert_eq!(SigningAlg::parse(&raw).map(SigningAlg::as_str), known.then_some(raw.as_str()));
        let grant = ["authorization_code", "refresh_token"].contains(&raw.as_str());
        prop_assert_eq!(GrantType::parse(&raw).map(GrantType::as_str), grant.then_some(raw.as_str()));
    }
}

// ---------------------------------------------------------------------------------------------
// Redirect URIs (RFC 6749 §3.1.2, RFC 9700 §2.6 and §4.1.3, RFC 8252 §7.3)
// ---------------------------------------------------------------------------------------------

/// A redirect URI assembled from scheme, user information, host, port, path, query and
/// fragment pieces, including dot segments, `%2e`, upper case, trailing slashes and Unicode
/// look-alikes.
fn uri_from_pieces() -> impl Strategy<Value = String> {
    let scheme = select(vec![
        "https",
        "http",
        "HTTPS",
        "Http",
        "com.example.app",
        "javascript",
        "JavaScript",
        "data",
        "file",
        "ftp",
        "h\u{0442}tps",
        "",
    ]);
    let userinfo = select(vec!["", "", "", "u@", "u:p@", "127.0.0.1@", "%40@", ":@"]);
    let host = select(vec![
        "app.example",
        "APP.example",
        "app.example.",
        "127.0.0.1",
        "[::1]",
        "localhost",
        "127.0.0.1.evil.test",
        "0x7f.0.0.1",
        "2130706433",
        "\u{0430}pp.example",
        "xn--pp-7cd.example",
        "*.app.example",
        "app.example\\@evil.test",
        "",
    ]);
    let port = select(vec![
        "", "", ":443", ":80", ":8080", ":0", ":65536", ":", ":-1",
    ]);
    let segment = select(vec![
        "cb",
        "CB",
        "..",
        ".",
        "%2e",
        "%2E%2E",
        "%63b",
        "",
        "a b",
        "a\\b",
        "\u{fc}",
        "%00",
        "*",
        "oauth2redirect",
    ]);
    let path = proptest::collection::vec(segment, 0..4).prop_map(|s| {
        if s.is_empty() {
            String::new()
        } else {
            format!("/{}", s.join("/"))
        }
    });
    let query = select(vec![
        "",
        "",
        "?x=1",
        "?code=x",
        "?state=",
        "?tenant=1",
        "?",
        "?a=%ZZ",
        "?Code=1",
    ]);
    let fragment = select(vec!["", "", "", "#", "#frag"]);
    let authority = prop_oneof![Just(true), Just(true), Just(false)];
    (
        scheme, authority, userinfo, host, port, path, query, fragment,
    )
        .prop_map(
            |(scheme, authority, userinfo, host, port, path, query, fragment)| {
                let slashes = if authority { "//" } else { "" };
                format!("{scheme}:{slashes}{userinfo}{host}{port}{path}{query}{fragment}")
            },
        )
}

/// Small, semantically neutral edits a lenient matcher might forgive.
fn mutate_uri(uri: &str, how: u8) -> String {
    match how {
        0 => uri.to_uppercase(),
        1 => format!("{uri}/"),
        2 => uri.replacen("://", "://%61", 1),
        3 => uri.replacen("/cb", "/./cb", 1),
        4 => uri.replacen("/cb", "/x/../cb", 1),
        5 => uri.replacen(".example", ".example:443", 1),
        6 => format!("{uri}?"),
        7 => format!("{uri}#"),
        8 => uri.replacen('a', "\u{0430}", 1),
        9 => uri.replacen("cb", "%63b", 1),
        10 => format!(" {uri}"),
        _ => uri
            .chars()
            .rev()
            .skip(1)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect(),
    }
}

/// The port-less text of a canonical `http` URI on a loopback IP literal (RFC 8252 §7.3).
fn loopback_key(raw: &str) -> Option<String> {
    let mut url = Url::parse(raw).ok()?;
    let loopback = match url.host()? {
        Host::Ipv4(ip) => ip.is_loopback(),
        Host::Ipv6(ip) => ip.is_loopback(),
        Host::Domain(_) => false,
    };
    if url.as_str() != raw || url.scheme() != "http" || !loopback || !url.username().is_empty() {
        return None;
    }
    url.set_port(None).ok()?;
    Some(url.into())
}

proptest! {
    /// Registration and matching take any string (NUL, invalid UTF-8 decoded lossily, Unicode)
    /// without panicking, and keep the registration and matching invariants of the fuzz target.
    #[test]
    fn redirect_uri_checks_survive_arbitrary_input(raw in prop_oneof![
        bytes().prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        tricky_text(),
    ]) {
        fuzzing::redirect_uri(raw.as_bytes());
        let _ = redirect_uri::validate_registration(&raw, false);
        let _ = redirect_uri::validate_registration(&raw, true);
    }

    /// URIs assembled from hostile pieces keep the registration invariants, and the first
    /// rules are exact: any `#` is refused as a fragment, then any `*` as a wildcard.
    #[test]
    fn redirect_uri_registration_refuses_unsafe_pieces(uri in uri_from_pieces(), public in any::<bool>()) {
        fuzzing::redirect_uri(uri.as_bytes());
        let result = redirect_uri::validate_registration(&uri, public);
        if uri.contains('#') {
            prop_assert_eq!(result, Err(RedirectUriError::Fragment));
        } else if uri.contains('*') {
            prop_assert_eq!(result, Err(RedirectUriError::Wildcard));
        } else if result.is_ok() {
            let url = Url::parse(&uri).unwrap();
            prop_assert!(url.username().is_empty() && url.password().is_none());
            prop_assert!(url.query_pairs().all(|(n, _)| !["code", "state", "iss", "error", "response"].contains(&n.as_ref())));
        }
    }

    /// `is_registered` is true only for an exact string match of a registered URI, for every
    /// client, unless the requested URI is a canonical `http` loopback IP literal of a public
    /// client: case changes, trailing slashes, dot segments, explicit default ports,
    /// percent-encodings and look-alike letters never match.
    #[test]
    fn redirect_uri_matches_only_by_exact_string_outside_loopback(
        registered in proptest::collection::vec(prop_oneof![
            uri_from_pieces(),
            select(vec!["https://app.example/cb", "http://127.0.0.1/cb", "com.example.app:/cb"]).prop_map(str::to_owned),
        ], 1..4),
        pick in any::<prop::sample::Index>(),
        how in proptest::option::of(0u8..12),
        public in any::<bool>(),
    ) {
        let base = pick.get(&registered).clone();
        let requested = how.map_or(base.clone(), |how| mutate_uri(&base, how));
        let exact = registered.contains(&requested);
        let matched = redirect_uri::is_registered(&registered, &requested, public);
        if !public || loopback_key(&requested).is_none() {
            prop_assert_eq!(matched, exact, "{:?} against {:?}", requested, registered);
        }
        if how.is_none() {
            prop_assert!(matched);
        }
    }

    /// RFC 8252 §7.3: for a public client, a loopback IP redirect URI matches with any port
    /// (the default port 80 written out included), and only when everything else is
    /// identical; a confidential client gets no such exception.
    #[test]
    fn loopback_redirect_uri_matches_any_port_for_public_clients_only(
        host in select(vec!["127.0.0.1", "[::1]"]),
        registered_port in proptest::option::of(1u16..=65535),
        port in 1u16..=65535,
        path in select(vec!["/", "/cb", "/oauth/callback", "/a/b/"]),
        query in select(vec!["", "?x=1"]),
        other in select(vec![
            "http://127.0.0.2{port}/cb", "http://localhost{port}/cb", "https://127.0.0.1{port}/cb",
            "http://127.0.0.1.evil.test{port}/cb", "http://u@127.0.0.1{port}/cb",
            "http://0x7f.0.0.1{port}/cb", "http://127.0.0.1{port}/cb/", "http://127.0.0.1{port}/CB",
            "http://127.0.0.1{port}/cb?", "http://[::1]{port}/cb#",
        ]),
    ) {
        let registered_port = registered_port.map_or(String::new(), |p| format!(":{p}"));
        let registered = vec![format!("http://{host}{registered_port}{path}{query}")];
        let requested = format!("http://{host}:{port}{path}{query}");
        prop_assert!(redirect_uri::is_registered(&registered, &requested, true), "{}", requested);
        prop_assert_eq!(
            redirect_uri::is_registered(&registered, &requested, false),
            registered[0] == requested
        );

        let cb = vec![format!("http://127.0.0.1{registered_port}/cb")];
        let look_alike = other.replace("{port}", &format!(":{port}"));
        prop_assert!(!redirect_uri::is_registered(&cb, &look_alike, true), "{}", look_alike);
    }
}

// ---------------------------------------------------------------------------------------------
// JWT access tokens (RFC 9068, RFC 8725)
// ---------------------------------------------------------------------------------------------

fn verify(token: &str) -> Result<AccessTokenClaims, VerifyError> {
    access_token::verify(
        token,
        fuzzing::ISSUER,
        Some(fuzzing::AUDIENCE),
        fuzzing::NOW,
        |kid| fuzzing::signing_keys().iter().find(|k| k.kid == kid),
    )
}

const JWT_ALGS: [&str; 12] = [
    "HS256", "HS384", "HS512", "ES256", "ES384", "RS256", "RS384", "RS512", "PS256", "PS384",
    "PS512", "EdDSA",
];

fn b64url_segment() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..96).prop_map(|b| URL_SAFE_NO_PAD.encode(b)),
        "[A-Za-z0-9_-]{0,120}",
        "[A-Za-z0-9_=+/-]{0,40}",
    ]
}

/// Claims that would pass every claim check, so only the signature can fail them.
fn good_claims() -> impl Strategy<Value = AccessTokenClaims> {
    ("\\PC{0,20}", "\\PC{0,20}", "[a-z ]{0,20}").prop_map(|(sub, jti, scope)| AccessTokenClaims {
        iss: fuzzing::ISSUER.to_owned(),
        sub,
        aud: fuzzing::AUDIENCE.to_owned(),
        client_id: "web1".to_owned(),
        iat: fuzzing::NOW - 5,
        exp: fuzzing::NOW + 300,
        jti,
        scope,
        auth_time: fuzzing::NOW - 10,
        grant_id: "grant".to_owned(),
    })
}

proptest! {
    /// Arbitrary text, and arbitrary bytes through the fuzz target's JSON-segment mode, never
    /// verify as an access token against the real keys.
    #[test]
    fn jwt_arbitrary_text_never_verifies(raw in prop_oneof![
        tricky_text(),
        bytes().prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
    ], json in bytes()) {
        fuzzing::jwt(raw.as_bytes());
        let mut mode = b"{".to_vec();
        mode.extend(json);
        fuzzing::jwt(&mode);
        prop_assert!(verify(&raw).is_err());
        prop_assert!(verify(&fuzzing::jwt_text(&mode)).is_err());
    }

    /// Three (or two, or four) random base64url segments never verify.
    #[test]
    fn jwt_random_base64url_segments_never_verify(
        segments in proptest::collection::vec(b64url_segment(), 2..5)
    ) {
        let token = segments.join(".");
        fuzzing::jwt(token.as_bytes());
        prop_assert!(verify(&token).is_err());
    }

    /// Segments of valid JSON with random `alg`, `typ`, `kid` and key references and a random
    /// signature never verify, and are refused for the first reason in RFC 9068 / RFC 8725
    /// order: unparseable header, then a `typ` other than `at+jwt`, then `jku`/`x5u`, then an
    /// unknown `kid`, then the signature.
    #[test]
    fn jwt_with_random_header_fields_is_refused_for_the_first_reason(
        alg in proptest::option::of(prop_oneof![select(JWT_ALGS.to_vec()).prop_map(str::to_owned), Just("none".to_owned()), "[A-Za-z0-9]{0,6}"]),
        typ in proptest::option::of(prop_oneof![
            select(vec!["at+jwt", "AT+JWT", "JWT", "at+jwt ", "application/at+jwt"]).prop_map(str::to_owned),
            "\\PC{0,8}",
        ]),
        kid in proptest::option::of(prop_oneof![
            select(vec![fuzzing::ED25519_KID, fuzzing::ES256_KID, ""]).prop_map(str::to_owned),
            "\\PC{0,12}",
        ]),
        key_ref in proptest::option::of(select(vec!["jku", "x5u"])),
        claims in prop_oneof![
            good_claims().prop_map(|c| serde_json::to_vec(&c).unwrap()),
            bytes(),
        ],
        signature in b64url_segment(),
    ) {
        let mut header = serde_json::Map::new();
        for (name, value) in [("alg", &alg), ("typ", &typ), ("kid", &kid)] {
            if let Some(value) = value {
                header.insert(name.to_owned(), value.clone().into());
            }
        }
        if let Some(key_ref) = key_ref {
            header.insert(key_ref.to_owned(), "https://evil.example/jwks".into());
        }
        let token = format!(
            "{}.{}.{signature}",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).unwrap()),
            URL_SAFE_NO_PAD.encode(&claims),
        );
        fuzzing::jwt(token.as_bytes());
        let known_kid = kid.as_deref().is_some_and(|k| fuzzing::signing_keys().iter().any(|key| key.kid == k));
        let expected = if !alg.as_deref().is_some_and(|a| JWT_ALGS.contains(&a)) {
            VerifyError::Malformed
        } else if typ.as_deref() != Some("at+jwt") {
            VerifyError::WrongType
        } else if key_ref.is_some() {
            VerifyError::ForeignKeyReference
        } else if !known_kid {
            VerifyError::UnknownKey
        } else {
            VerifyError::Invalid
        };
        prop_assert_eq!(verify(&token).unwrap_err(), expected);
    }

    /// A token signed by one of our keys verifies to exactly its claims, and changing any one
    /// character of it (header, claims or signature, including non-canonical base64 in the
    /// last signature character), or cutting it short, makes it fail.
    #[test]
    fn jwt_signed_by_our_key_verifies_and_any_one_character_change_is_refused(
        claims in good_claims(),
        key in 0usize..2,
        at in any::<prop::sample::Index>(),
        replacement in select("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=".chars().collect::<Vec<_>>()),
        cut in any::<prop::sample::Index>(),
    ) {
        let keys = fuzzing::signing_keys();
        prop_assert_eq!(keys.len(), 2);
        let token = access_token::sign(&claims, &keys[key]).unwrap();
        let token = token.expose();
        prop_assert_eq!(verify(token).unwrap(), claims);

        let mut chars: Vec<char> = token.chars().collect();
        let i = at.index(chars.len());
        prop_assume!(chars[i] != replacement);
        chars[i] = replacement;
        let changed: String = chars.into_iter().collect();
        prop_assert!(verify(&changed).is_err(), "position {} of {}", i, token);
        fuzzing::jwt(changed.as_bytes());

        let short = &token[..cut.index(token.len())];
        prop_assert!(verify(short).is_err());
    }
}

// ---------------------------------------------------------------------------------------------
// Fuzz corpus replay
// ---------------------------------------------------------------------------------------------

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// The entry point of the fuzz target named `target`.
fn entry_point(target: &str) -> Option<fn(&[u8])> {
    Some(match target {
        "authorize_request" => fuzzing::authorize_request,
        "token_request" => fuzzing::token_request,
        "client_auth" => fuzzing::client_auth,
        "scopes" => fuzzing::scopes,
        "redirect_uri" => fuzzing::redirect_uri,
        "jwt" => fuzzing::jwt,
        _ => return None,
    })
}

fn sorted_entries(dir: &Path) -> Vec<PathBuf> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    entries.sort();
    entries
}

/// Every file of the fuzz seed corpus (`fuzz/corpus/<target>/*`) runs through the entry point
/// its target uses without a panic, so the corpus is exercised on stable by `cargo test`; and
/// every target in `fuzz/fuzz_targets/` has a corpus of at least ten files, and every corpus a
/// target.
#[test]
fn fuzz_corpus_replays_without_panic() {
    let targets: BTreeSet<String> = sorted_entries(&fuzz_dir().join("fuzz_targets"))
        .iter()
        .filter_map(|p| Some(p.file_stem()?.to_str()?.to_owned()))
        .collect();
    let corpora: BTreeSet<String> = sorted_entries(&fuzz_dir().join("corpus"))
        .iter()
        .filter(|p| p.is_dir())
        .filter_map(|p| Some(p.file_name()?.to_str()?.to_owned()))
        .collect();
    assert_eq!(
        targets, corpora,
        "every fuzz target needs a corpus and vice versa"
    );
    for target in &targets {
        let run = entry_point(target)
            .unwrap_or_else(|| panic!("no entry point for fuzz target {target}"));
        let files = sorted_entries(&fuzz_dir().join("corpus").join(target));
        assert!(
            files.len() >= 10,
            "corpus of {target} has {} files",
            files.len()
        );
        for file in files {
            let data = std::fs::read(&file).unwrap();
            let outcome = std::panic::catch_unwind(|| run(&data));
            assert!(outcome.is_ok(), "{} panicked", file.display());
        }
    }
}

/// The `jwt` seed corpus holds at least one token that verifies against the fuzz-only Ed25519
/// key, so the fuzzer starts past the signature check and reaches the claim checks.
#[test]
fn jwt_corpus_holds_a_token_that_verifies() {
    let verified = sorted_entries(&fuzz_dir().join("corpus").join("jwt"))
        .iter()
        .map(|file| fuzzing::jwt_text(&std::fs::read(file).unwrap()))
        .filter(|token| verify(token).is_ok())
        .count();
    assert!(verified >= 1, "no token in fuzz/corpus/jwt verifies");
}
