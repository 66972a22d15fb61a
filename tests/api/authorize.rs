//! The authorization endpoint: client and redirect URI first, then the redirect-able checks
//! (SECURITY-CHECKLIST section A and E).

use reqwest::StatusCode;

use crate::helpers::*;

const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

fn query<'a>(client_id: &'a str, redirect_uri: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", redirect_uri),
        ("state", "s"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ]
}

fn with<'a>(
    mut base: Vec<(&'a str, &'a str)>,
    name: &'a str,
    value: &'a str,
) -> Vec<(&'a str, &'a str)> {
    base.retain(|(k, _)| *k != name);
    base.push((name, value));
    base
}

#[tokio::test]
async fn a01_redirect_uri_must_match_byte_for_byte() {
    let app = spawn_app().await;
    let client = app.client().await;
    let browser = Browser::new();
    let variants = [
        "https://app.example/CB",
        "HTTPS://app.example/cb",
        "https://APP.example/cb",
        "https://app.example/cb/",
        "https://app.example/cb?x=1",
        "https://app.example/cb#f",
        "https://app.example:443/cb",
        "https://app.example/cb/../cb",
        "https://app.example/%63b",
        "https://app.example/cb/%2E%2E/x",
        "https://app.example/cb/%252E%252E/x",
        "https://app.example/cb/..;/x",
        "https://app.example.evil.test/cb",
        "https://app.example@evil.test/cb",
        "https://app%2eexample%2fcb%2f:y@evil.test/",
        "https://evil.test/https://app.example/cb",
        "https://app.example/cb\\@evil.test",
    ];
    for uri in variants {
        let answer = browser.authorize(&app, &query(&client.id, uri)).await;
        assert!(
            answer.is_error_page(),
            "{uri} must get the error page, got {} {:?}",
            answer.status,
            answer.location()
        );
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{uri}");
    }
    let exact = browser.authorize(&app, &query(&client.id, CB)).await;
    assert_eq!(exact.status, StatusCode::SEE_OTHER);
    let login = browser.follow(&app, &exact).await;
    assert_eq!(login.status, StatusCode::OK);
    assert!(login.body.contains("name=\"password\""));
}

#[tokio::test]
async fn a02_unknown_client_never_redirects_even_with_a_session() {
    let app = spawn_app().await;
    app.user("alice").await;
    let client = app.client().await;
    let with_session = flow(&app, &client, "alice", "openid").await.browser;
    for browser in [Browser::new(), with_session] {
        let unknown = browser
            .authorize(&app, &query("nope", "https://evil.test/"))
            .await;
        assert!(
            unknown.is_error_page(),
            "unknown client: {}",
            unknown.status
        );
        let bad_uri = browser
            .authorize(&app, &query(&client.id, "https://evil.test/"))
            .await;
        assert!(
            bad_uri.is_error_page(),
            "unregistered redirect: {}",
            bad_uri.status
        );
    }
}

#[tokio::test]
async fn a02_bad_response_type_with_a_bad_redirect_uri_shows_the_page() {
    let app = spawn_app().await;
    let client = app.client().await;
    let browser = Browser::new();
    let q = [
        ("response_type", "bogus"),
        ("scope", "\0"),
        ("client_id", &client.id),
        ("redirect_uri", "https://evil.test/"),
    ];
    assert!(browser.authorize(&app, &q).await.is_error_page());
    let q = [
        ("response_type", "bogus"),
        ("redirect_uri", "https://evil.test/"),
    ];
    assert!(
        browser.authorize(&app, &q).await.is_error_page(),
        "missing client_id"
    );
}

#[tokio::test]
async fn a03_error_redirects_carry_state_and_iss() {
    let app = spawn_app().await;
    let client = app.client().await;
    let browser = Browser::new();
    let cases = [
        (
            with(query(&client.id, CB), "response_type", "token"),
            "unsupported_response_type",
        ),
        (
            with(query(&client.id, CB), "response_type", "code token"),
            "unsupported_response_type",
        ),
        (
            with(query(&client.id, CB), "response_type", "id_token"),
            "unsupported_response_type",
        ),
        (
            with(query(&client.id, CB), "scope", "openid admin"),
            "invalid_scope",
        ),
        (
            with(query(&client.id, CB), "response_mode", "fragment"),
            "invalid_request",
        ),
        (
            with(query(&client.id, CB), "prompt", "bogus"),
            "invalid_request",
        ),
    ];
    for (q, expected) in cases {
        let answer = browser.authorize(&app, &q).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{q:?}");
        assert!(answer.location().unwrap().starts_with(CB), "{q:?}");
        let params = answer.redirect_params();
        assert_eq!(params["error"], expected, "{q:?}");
        assert_eq!(params["state"], "s");
        assert_eq!(params["iss"], app.base);
        assert!(!params.contains_key("code"));
    }
}

#[tokio::test]
async fn a04_missing_redirect_uri_shows_the_error_page() {
    let app = spawn_app().await;
    let client = app
        .client_with(
            vec![
                "https://app.example/a".into(),
                "https://app.example/b".into(),
            ],
            false,
            None,
        )
        .await;
    let q: Vec<_> = query(&client.id, "x")
        .into_iter()
        .filter(|(k, _)| *k != "redirect_uri")
        .collect();
    assert!(Browser::new().authorize(&app, &q).await.is_error_page());
    let single = app.client().await;
    let q: Vec<_> = query(&single.id, "x")
        .into_iter()
        .filter(|(k, _)| *k != "redirect_uri")
        .collect();
    assert!(
        Browser::new().authorize(&app, &q).await.is_error_page(),
        "redirect_uri is always required"
    );
}

#[tokio::test]
async fn a06_loopback_redirect_may_use_any_port_for_native_clients_only() {
    let app = spawn_app().await;
    let native = app.public_client("http://127.0.0.1/cb").await;
    let browser = Browser::new();
    let ok = browser
        .authorize(&app, &query(&native.id, "http://127.0.0.1:53211/cb"))
        .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
    assert!(ok.location().unwrap().starts_with("/login"));
    for uri in [
        "http://127.0.0.1:53211/cb?bar=foo",
        "http://127.0.0.1/cb/x",
        "http://127.0.0.1.evil.test/cb",
        "http://127.0.0.1@evil.test/cb",
        "http://127.0.0.1:80@evil.test/cb",
        "http://localhost:53211/cb",
        "https://127.0.0.1/cbx",
        "https://127.0.0.1:53211/cb",
    ] {
        assert!(
            browser
                .authorize(&app, &query(&native.id, uri))
                .await
                .is_error_page(),
            "{uri}"
        );
    }
    let confidential = app
        .client_with(vec!["http://127.0.0.1/cb".into()], false, None)
        .await;
    let other_port = browser
        .authorize(&app, &query(&confidential.id, "http://127.0.0.1:53211/cb"))
        .await;
    assert!(
        other_port.is_error_page(),
        "the port exception is for public native clients only"
    );
}

#[tokio::test]
async fn a09_repeated_parameters_are_refused_and_unknown_ones_ignored() {
    let app = spawn_app().await;
    let client = app.client().await;
    let other = app.client().await;
    let browser = Browser::new();
    let mut q = query(&client.id, CB);
    q.push(("redirect_uri", "https://evil.test/"));
    assert!(
        browser.authorize(&app, &q).await.is_error_page(),
        "repeated redirect_uri"
    );
    let mut q = query(&client.id, CB);
    q.push(("client_id", &other.id));
    assert!(
        browser.authorize(&app, &q).await.is_error_page(),
        "repeated client_id"
    );
    let mut q = query(&client.id, CB);
    q.push(("scope", "openid"));
    q.push(("scope", "profile"));
    assert_eq!(
        browser.authorize(&app, &q).await.redirect_params()["error"],
        "invalid_request"
    );
    let mut q = query(&client.id, CB);
    q.push(("foo", "bar"));
    let ignored = browser.authorize(&app, &q).await;
    assert!(
        ignored.location().unwrap().starts_with("/login"),
        "unknown parameters are ignored"
    );
    let q = with(query(&client.id, CB), "code_challenge", "");
    assert_eq!(
        browser.authorize(&app, &q).await.redirect_params()["error"],
        "invalid_request",
        "empty = absent"
    );
}

#[tokio::test]
async fn e31_pkce_is_required_and_only_s256() {
    let app = spawn_app().await;
    let client = app.client().await;
    let public = app.public_client("https://spa.example/cb").await;
    let browser = Browser::new();
    let without: Vec<_> = query(&client.id, CB)
        .into_iter()
        .filter(|(k, _)| !k.starts_with("code_challenge"))
        .collect();
    let plain = with(query(&client.id, CB), "code_challenge_method", "plain");
    let no_method: Vec<_> = query(&client.id, CB)
        .into_iter()
        .filter(|(k, _)| *k != "code_challenge_method")
        .collect();
    let malformed = with(query(&client.id, CB), "code_challenge", "abc");
    let public_without: Vec<_> = query(&public.id, "https://spa.example/cb")
        .into_iter()
        .filter(|(k, _)| !k.starts_with("code_challenge"))
        .collect();
    for (name, q) in [
        ("missing", without),
        ("plain", plain),
        ("no method", no_method),
        ("malformed", malformed),
        ("public client without PKCE", public_without),
    ] {
        let answer = browser.authorize(&app, &q).await;
        let params = answer.redirect_params();
        assert_eq!(params["error"], "invalid_request", "{name}");
        assert_eq!(params["state"], "s", "{name}");
        assert_eq!(params["iss"], app.base, "{name}");
    }
}

#[tokio::test]
async fn e33_confidential_client_opted_out_of_pkce_gets_a_code_without_it_and_no_verifier_is_accepted()
 {
    let app = spawn_app().await;
    app.user("alice").await;
    let client = app
        .register(latchkey::service::admin::NewClient {
            allow_no_pkce: true,
            ..latchkey::service::admin::NewClient::new("Legacy", CB)
        })
        .await;
    let browser = Browser::new();
    let q = [
        ("response_type", "code"),
        ("client_id", client.id.as_str()),
        ("redirect_uri", CB),
        ("state", "xyz"),
    ];
    let started = browser.authorize(&app, &q).await;
    let logged_in = browser.login(&app, &started, "alice", PASSWORD).await;
    let done = browser.consent(&app, &logged_in, "allow").await;
    let code = done.redirect_params()["code"].clone();
    // E33: a verifier for a code issued without a challenge is a downgrade attempt.
    let (verifier, _) = pkce_pair();
    let downgrade = exchange(&app, &client, &code, &verifier).await;
    assert_eq!(downgrade.json()["error"], "invalid_grant");
}

#[tokio::test]
async fn authorization_endpoint_accepts_post() {
    let app = spawn_app().await;
    let client = app.client().await;
    let browser = Browser::new();
    let form: Vec<(String, String)> = query(&client.id, CB)
        .into_iter()
        .map(|(k, v)| (k.into(), v.into()))
        .collect();
    let answer = browser.post_form(&app.url("/authorize"), &form).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    assert!(answer.location().unwrap().starts_with("/login"));
}

#[tokio::test]
async fn c25_state_is_url_encoded_in_the_redirect() {
    let app = spawn_app().await;
    let client = app.client().await;
    let q = with(
        with(query(&client.id, CB), "state", "<script>&x=1"),
        "scope",
        "admin",
    );
    let answer = Browser::new().authorize(&app, &q).await;
    let location = answer.location().unwrap();
    assert!(!location.contains("<script>"), "{location}");
    assert_eq!(answer.redirect_params()["state"], "<script>&x=1");
    assert!(!answer.redirect_params().contains_key("x"));
}
