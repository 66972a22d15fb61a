//! Malformed input sent to the real server over HTTP (issue 5 item 6, SECURITY-CHECKLIST items
//! 64 and 66): invalid UTF-8, NUL bytes, megabyte parameters, repeated parameters, deeply nested
//! junk and redirect URIs that only look like the registered one. Each gets a clear error: never
//! a panic, a 5xx or a redirect to an unregistered URI, and nothing is left in the database.
//! The server still answers `/health/live` afterwards.
//!
//! Four defects were found by these tests and fixed: a non-VSCHAR `state` was stored and
//! echoed altered, a repeated `token` and duplicated `Authorization` headers let the first one
//! win, and on PostgreSQL a NUL in a client id or username failed the lookup with a 5xx.

use std::io::{Read, Write};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, HeaderValue, WWW_AUTHENTICATE};
use serde_json::{Value, json};

use crate::helpers::*;

const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const FORM: &str = "application/x-www-form-urlencoded";
const MIB: usize = 1024 * 1024;
/// `CB`, form-encoded.
const CB_ENCODED: &str = "https%3A%2F%2Fapp.example%2Fcb";

/// Rows per table, compared before and after to show that refused requests stored nothing.
/// Rows of every table that holds state; the flow trail (a diagnostic record, bounded by
/// maintenance) is expected to grow with refused requests.
async fn rows(app: &TestApp) -> Vec<(&'static str, i64)> {
    let mut counts = app.store.table_counts().await.expect("table counts");
    counts.retain(|(table, _)| *table != "flow_events");
    counts
}

async fn assert_alive(app: &TestApp, after: &str) {
    let live = reqwest::get(app.url("/health/live"))
        .await
        .unwrap_or_else(|e| panic!("after {after}: /health/live unreachable: {e}"));
    assert_eq!(live.status(), StatusCode::OK, "after {after}");
}

/// The query of a valid authorization request for `client` (state `s`), with the parameters
/// `raw` names left out and `raw` appended exactly as written, escapes included.
fn authorize_query(client: &TestClient, raw: &str) -> String {
    let replaced: Vec<&str> = raw
        .split('&')
        .filter_map(|pair| pair.split('=').next())
        .collect();
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in [
        ("response_type", "code"),
        ("client_id", client.id.as_str()),
        ("redirect_uri", client.redirect_uri.as_str()),
        ("state", "s"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ] {
        if !replaced.contains(&name) {
            query.append_pair(name, value);
        }
    }
    let mut query = query.finish();
    if !raw.is_empty() {
        query.push('&');
        query.push_str(raw);
    }
    query
}

/// `GET /authorize?{query}` and `POST /authorize` with `query` as the form body.
async fn authorize_both(app: &TestApp, query: &str) -> [(&'static str, Answer); 2] {
    let browser = Browser::new();
    let got = browser.get(&app.url(&format!("/authorize?{query}"))).await;
    let posted = post(
        app,
        "/authorize",
        Some(FORM),
        query.as_bytes().to_vec(),
        None,
    )
    .await;
    [("GET", got), ("POST", posted)]
}

/// How a request authenticates its client.
enum Auth<'a> {
    Basic(&'a TestClient),
    Header(HeaderValue),
}

/// A token request that must fail: what it is, content type, body, credentials, RFC 6749 error.
type TokenCase<'a> = (&'a str, Option<&'a str>, Vec<u8>, Option<Auth<'a>>, &'a str);

/// A POST with exactly these bytes as its body; redirects are returned, not followed.
async fn post(
    app: &TestApp,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
    auth: Option<Auth<'_>>,
) -> Answer {
    // A fresh client that never follows redirects, without cookies.
    let mut request = Browser::new().http.post(app.url(path)).body(body);
    if let Some(content_type) = content_type {
        request = request.header(CONTENT_TYPE, content_type);
    }
    match auth {
        Some(Auth::Basic(client)) => {
            request = request.basic_auth(&client.id, client.secret.as_ref())
        }
        Some(Auth::Header(value)) => request = request.header(AUTHORIZATION, value),
        None => {}
    }
    answer(request.send().await.expect("POST")).await
}

/// Writes `request` on a fresh connection and returns the status of the answer: for requests
/// no client library builds (reqwest refuses URIs over 64 KiB, and sends no unsized bodies).
async fn raw_status(app: &TestApp, request: Vec<u8>) -> StatusCode {
    let address = app.base.trim_start_matches("http://").to_owned();
    tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(&address).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        // The server may answer and close before it has read everything: the answer counts.
        let _ = stream.write_all(&request);
        let mut response = Vec::new();
        let _ = stream.read_to_end(&mut response);
        let text = String::from_utf8_lossy(&response);
        text.strip_prefix("HTTP/1.1 ")
            .and_then(|rest| rest.get(..3))
            .and_then(|code| code.parse::<u16>().ok())
            .and_then(|code| StatusCode::from_u16(code).ok())
            .unwrap_or_else(|| panic!("no HTTP answer: {:?}", text.get(..200)))
    })
    .await
    .expect("raw request")
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// `{"a":[[…]]}` with `depth` nested arrays.
fn nested_json(depth: usize) -> String {
    format!("{{\"a\":{}{}}}", "[".repeat(depth), "]".repeat(depth))
}

/// A JWT whose header is [`nested_json`].
fn nested_jwt(depth: usize) -> String {
    format!("{}.{}.{}", b64(nested_json(depth)), b64("{}"), b64("sig"))
}

/// Panics unless `answer` is the HTML error page with status 400 saying `message`, with no
/// redirect and no cookie.
fn assert_error_page(answer: &Answer, message: &str, what: &str) {
    assert!(
        answer.is_error_page(),
        "{what}: expected the error page, got {} {:?}",
        answer.status,
        answer.location()
    );
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{what}");
    assert!(
        answer.body.contains(message),
        "{what}: the page should say {message:?}"
    );
    assert_eq!(
        answer.header("set-cookie"),
        None,
        "{what}: no cookie is set"
    );
}

/// Panics unless `answer` redirects to `CB` with `error`, state `s` and `iss`
/// (RFC 6749 §4.1.2.1, RFC 9207).
fn assert_error_redirect(app: &TestApp, answer: &Answer, error: &str, what: &str) {
    assert_eq!(
        answer.status,
        StatusCode::SEE_OTHER,
        "{what}: {}",
        answer.body
    );
    let location = answer.location().unwrap_or_default();
    assert!(
        location.starts_with(&format!("{CB}?")),
        "{what}: redirected to {location}"
    );
    let params = answer.redirect_params();
    assert_eq!(
        params.get("error").map(String::as_str),
        Some(error),
        "{what}"
    );
    assert_eq!(params.get("state").map(String::as_str), Some("s"), "{what}");
    assert_eq!(params.get("iss"), Some(&app.base), "{what}");
    assert_eq!(
        answer.header("set-cookie"),
        None,
        "{what}: no cookie is set"
    );
}

/// Panics unless `answer` is an RFC 6749 §5.2 error: JSON with `error` (and only a description
/// besides), never cached, and the status §5.2 gives it.
fn assert_token_error(answer: &Answer, error: &str, what: &str) {
    let status = if error == "invalid_client" {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::BAD_REQUEST
    };
    assert_eq!(answer.status, status, "{what}: {}", answer.body);
    assert_eq!(
        answer.header("content-type"),
        Some("application/json"),
        "{what}"
    );
    assert_eq!(answer.header("cache-control"), Some("no-store"), "{what}");
    let body = answer.json();
    assert_eq!(body["error"], error, "{what}: {body}");
    let mut keys: Vec<&str> = body
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["error", "error_description", "request_id"],
        "{what}: {body}"
    );
    assert_eq!(
        body["request_id"].as_str(),
        answer.header("x-request-id"),
        "{what}: the body names the request id of the logs"
    );
    if status == StatusCode::UNAUTHORIZED {
        assert!(
            answer
                .header(WWW_AUTHENTICATE.as_str())
                .is_some_and(|c| c.starts_with("Basic ")),
            "{what}: RFC 6749 §5.2 asks for a challenge on 401"
        );
    }
}

#[tokio::test]
async fn m66_authorize_oversized_queries_are_refused_before_they_are_parsed() {
    let app = spawn_app().await;
    let client = app.client().await;
    let host = app.base.trim_start_matches("http://").to_owned();
    let before = rows(&app).await;

    // Checklist 66: a 200 000-character scope is over the server's 64 KiB URI limit.
    let request = format!(
        "GET /authorize?{}&scope={} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n",
        authorize_query(&client, ""),
        "a".repeat(200_000)
    );
    assert_eq!(
        raw_status(&app, request.into_bytes()).await,
        StatusCode::URI_TOO_LONG
    );
    // A 1 MiB state overflows the request-head buffer before the URI is even measured.
    let request = format!(
        "GET /authorize?{}&state={} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n",
        authorize_query(&client, "state=s"),
        "s".repeat(MIB)
    );
    assert_eq!(
        raw_status(&app, request.into_bytes()).await,
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
    );
    // The same megabyte as a form post is over the body limit.
    let body = authorize_query(&client, &format!("scope={}", "a".repeat(MIB)));
    let posted = post(&app, "/authorize", Some(FORM), body.into_bytes(), None).await;
    assert_eq!(posted.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(posted.location(), None);

    // Just under the limit the request reaches the checks: a scope the client may not have.
    let long = authorize_query(&client, &format!("scope={}", "a".repeat(60_000)));
    for (method, answer) in authorize_both(&app, &long).await {
        let what = format!("{method} with a 60 000-character scope");
        assert_error_redirect(&app, &answer, "invalid_scope", &what);
    }
    assert_eq!(rows(&app).await, before, "nothing stored");
    assert_alive(&app, "oversized authorization requests").await;
}

/// A client_id with a NUL byte names no client on either backend (PostgreSQL's text cannot
/// hold NUL; the lookup used to fail with 500 there).
#[tokio::test]
async fn m66_authorize_nul_and_invalid_utf8_in_client_id_or_redirect_uri_show_the_error_page() {
    let app = spawn_app().await;
    let client = app.client().await;
    let unknown_client = "names a client that is not registered here";
    let unregistered = "is not registered for this client";
    let cases = [
        ("client_id=%00".to_owned(), unknown_client),
        (format!("client_id={}%00", client.id), unknown_client),
        (format!("client_id=%00{}", client.id), unknown_client),
        ("client_id=%FF%FE".to_owned(), unknown_client),
        // An overlong encoding of NUL.
        ("client_id=%C0%80".to_owned(), unknown_client),
        ("redirect_uri=%00".to_owned(), unregistered),
        (format!("redirect_uri={CB_ENCODED}%00"), unregistered),
        (format!("redirect_uri={CB_ENCODED}%FF"), unregistered),
        ("redirect_uri=%FF%FE".to_owned(), unregistered),
        // An overlong encoding of '/'.
        (
            "redirect_uri=https%3A%2F%2Fapp.example%C0%AFcb".to_owned(),
            unregistered,
        ),
        (
            format!("redirect_uri={CB_ENCODED}%0D%0ALocation%3A%20https%3A%2F%2Fevil.test%2F"),
            unregistered,
        ),
    ];
    let before = rows(&app).await;
    for (raw, message) in &cases {
        let query = authorize_query(&client, raw);
        for (method, answer) in authorize_both(&app, &query).await {
            assert_error_page(&answer, message, &format!("{method} {raw}"));
        }
    }
    assert_eq!(rows(&app).await, before, "nothing stored");
    assert_alive(&app, "NUL and invalid UTF-8 in client_id and redirect_uri").await;
}

#[tokio::test]
async fn m66_authorize_nul_and_invalid_utf8_in_other_parameters_are_redirected_errors() {
    let app = spawn_app().await;
    let client = app.client().await;
    let challenge_with_nul = format!("code_challenge={}%00", &CHALLENGE[..42]);
    let cases = [
        ("scope=%00", "invalid_scope"),
        ("scope=openid%00", "invalid_scope"),
        ("scope=openid%00profile", "invalid_scope"),
        ("scope=%FF%FE", "invalid_scope"),
        ("scope=openid%C0%80", "invalid_scope"),
        ("response_type=%00", "unsupported_response_type"),
        ("response_type=code%00", "unsupported_response_type"),
        ("response_type=%FF%FE", "unsupported_response_type"),
        ("code_challenge_method=S256%00", "invalid_request"),
        ("code_challenge_method=%FF", "invalid_request"),
        (challenge_with_nul.as_str(), "invalid_request"),
        ("prompt=%00", "invalid_request"),
        ("prompt=login%FF", "invalid_request"),
        ("response_mode=query%00", "invalid_request"),
    ];
    let before = rows(&app).await;
    for (raw, error) in cases {
        let query = authorize_query(&client, raw);
        for (method, answer) in authorize_both(&app, &query).await {
            assert_error_redirect(&app, &answer, error, &format!("{method} {raw}"));
        }
    }
    assert_eq!(rows(&app).await, before, "nothing stored");
    assert_alive(&app, "NUL and invalid UTF-8 in redirect-able parameters").await;
}

/// RFC 6749 Appendix A.5 defines `state` as `1*VSCHAR` (%x20-7E), so a state with a NUL or
/// with bytes that are not UTF-8 is an invalid parameter value: `invalid_request` by redirect
/// (§4.1.2.1), nothing stored. (It used to be stored, with invalid UTF-8 replaced by U+FFFD,
/// so the client got back a state it never sent.)
#[tokio::test]
async fn m66_state_with_nul_or_invalid_utf8_is_invalid_request_and_stores_nothing() {
    let app = spawn_app().await;
    let client = app.client().await;
    let before = rows(&app).await;
    for raw in ["state=%00", "state=a%00b", "state=%FF%FE", "state=%C0%80"] {
        let query = authorize_query(&client, raw);
        for (method, answer) in authorize_both(&app, &query).await {
            let what = format!("{method} {raw}");
            assert_eq!(
                answer.status,
                StatusCode::SEE_OTHER,
                "{what}: {}",
                answer.body
            );
            let location = answer.location().unwrap_or_default();
            assert!(
                location.starts_with(&format!("{CB}?")),
                "{what}: expected invalid_request at the client, went to {location}"
            );
            let params = answer.redirect_params();
            assert_eq!(params["error"], "invalid_request", "{what}");
            assert_eq!(rows(&app).await, before, "{what}: nothing stored");
        }
    }
    assert_alive(&app, "NUL and invalid UTF-8 in state").await;
}

#[tokio::test]
async fn a09_repeated_client_id_or_redirect_uri_shows_the_error_page() {
    let app = spawn_app().await;
    let client = app.client().await;
    let other = app.client().await;
    let valid = authorize_query(&client, "");
    let repeated = "repeats client_id or redirect_uri";
    let cases = [
        (
            "the same client_id again",
            format!("{valid}&client_id={}", client.id),
        ),
        (
            "another client_id after",
            format!("{valid}&client_id={}", other.id),
        ),
        (
            "another client_id before",
            format!("client_id={}&{valid}", other.id),
        ),
        (
            "the same redirect_uri again",
            format!("{valid}&redirect_uri={CB_ENCODED}"),
        ),
        (
            "another redirect_uri after",
            format!("{valid}&redirect_uri=https%3A%2F%2Fevil.test%2Fcb"),
        ),
        (
            "another redirect_uri before",
            format!("redirect_uri=https%3A%2F%2Fevil.test%2Fcb&{valid}"),
        ),
        (
            "NUL repeats of both",
            format!("{valid}&client_id=%00&redirect_uri=%00"),
        ),
    ];
    let before = rows(&app).await;
    for (label, query) in &cases {
        for (method, answer) in authorize_both(&app, query).await {
            let what = format!("{method} {label}");
            assert_error_page(&answer, repeated, &what);
            assert!(!answer.body.contains("evil.test"), "{what}");
        }
    }
    assert_eq!(rows(&app).await, before, "nothing stored");
    assert_alive(&app, "repeated client_id and redirect_uri").await;
}

#[tokio::test]
async fn a09_other_repeated_parameters_redirect_invalid_request() {
    let app = spawn_app().await;
    let client = app.client().await;
    let valid = authorize_query(&client, "");
    let before = rows(&app).await;
    for repeat in [
        "response_type=code",
        "response_type=token",
        "state=t",
        "scope=openid&scope=openid",
        &format!("code_challenge={CHALLENGE}"),
        "code_challenge_method=S256",
        "prompt=login&prompt=login",
        "unknown=1&unknown=2",
    ] {
        let query = format!("{valid}&{repeat}");
        for (method, answer) in authorize_both(&app, &query).await {
            let what = format!("{method} +{repeat}");
            // RFC 6749 §3.1: "Request and response parameters MUST NOT be included more than
            // once"; the first state is the one echoed.
            assert_error_redirect(&app, &answer, "invalid_request", &what);
            assert_eq!(
                answer.redirect_params()["error_description"],
                "A parameter is repeated.",
                "{what}"
            );
        }
    }
    assert_eq!(rows(&app).await, before, "nothing stored");
    assert_alive(&app, "repeated parameters").await;
}

#[tokio::test]
async fn m66_authorize_deeply_nested_junk_is_refused_or_ignored() {
    let app = spawn_app().await;
    let client = app.client().await;
    let before = rows(&app).await;
    for depth in [10, 10_000] {
        // Parameters are flat text: brackets and braces are ordinary characters. They are
        // left unencoded here (legal in a query), so 10 000 levels stay under the URI limit.
        let json = nested_json(depth).replace('"', "%22");
        let query = authorize_query(&client, &format!("client_id={json}"));
        for (method, answer) in authorize_both(&app, &query).await {
            let what = format!("{method} client_id nested {depth} deep");
            assert_error_page(&answer, "names a client that is not registered here", &what);
        }
        let brackets = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let query = authorize_query(&client, &format!("scope={brackets}"));
        for (method, answer) in authorize_both(&app, &query).await {
            let what = format!("{method} scope nested {depth} deep");
            assert_error_redirect(&app, &answer, "invalid_scope", &what);
        }
        // PHP-style arrays do not name a client.
        let query = format!(
            "client_id[]={}&redirect_uri{}={CB_ENCODED}",
            client.id,
            "[a]".repeat(depth)
        );
        for (method, answer) in authorize_both(&app, &query).await {
            let what = format!("{method} bracketed names {depth} deep");
            assert_error_page(&answer, "does not name a client", &what);
        }
        // A nested JSON state comes back exactly as sent (prompt=none: no session, no page).
        let query = authorize_query(&client, &format!("state={json}&prompt=none"));
        for (method, answer) in authorize_both(&app, &query).await {
            let what = format!("{method} state nested {depth} deep");
            assert_eq!(answer.status, StatusCode::SEE_OTHER, "{what}");
            let params = answer.redirect_params();
            assert_eq!(params["error"], "login_required", "{what}");
            assert_eq!(params["state"], nested_json(depth), "{what}");
        }
    }
    assert_eq!(rows(&app).await, before, "nothing stored");

    // An unknown parameter with a deeply nested name is ignored (RFC 6749 §3.1): the request
    // goes on to the login page, and only its pending request is stored.
    for depth in [10, 10_000] {
        let query = authorize_query(&client, &format!("x{}=1", "[a]".repeat(depth)));
        for (method, answer) in authorize_both(&app, &query).await {
            assert_eq!(answer.status, StatusCode::SEE_OTHER, "{method} {depth}");
            assert!(
                answer.location().is_some_and(|l| l.starts_with("/login?")),
                "{method} {depth}: {:?}",
                answer.location()
            );
        }
    }
    let expected: Vec<(&str, i64)> = before
        .iter()
        .map(|&(table, n)| {
            (
                table,
                if table == "pending_requests" {
                    n + 4
                } else {
                    n
                },
            )
        })
        .collect();
    assert_eq!(
        rows(&app).await,
        expected,
        "four pending requests, nothing else"
    );
    assert_alive(&app, "deeply nested parameters").await;
}

#[tokio::test]
async fn a01_redirect_uri_look_alikes_show_the_error_page_and_store_nothing() {
    let app = spawn_app().await;
    let client = app.client().await;
    let loopback = app
        .client_with(vec!["http://127.0.0.1:8123/cb".to_owned()], false, None)
        .await;
    let native = app.public_client("http://127.0.0.1/cb").await;

    let cyrillic = "https://\u{0430}pp.example/cb";
    let punycode = url::Url::parse(cyrillic).unwrap().to_string();
    assert!(punycode.starts_with("https://xn--"), "{punycode}");
    let fullwidth = "https://\u{ff41}pp.example/cb";
    let soft_hyphen = "https://app\u{00ad}.example/cb";
    // A URL parser takes these for the registered URI itself; matching is on the string.
    for same in [
        fullwidth,
        soft_hyphen,
        "HTTPS://APP.EXAMPLE/cb",
        "https://app.example:443/cb",
        "https://app.example/x/../cb",
        "https://app.example/./cb",
        "https://app.example/cb/%2e%2e/cb",
    ] {
        assert_eq!(url::Url::parse(same).unwrap().as_str(), CB, "{same}");
    }
    let web = [
        "https://evil.test@app.example/cb",
        "https://app.example@evil.test/cb",
        "https://app.example:@evil.test/cb",
        "https://user:pass@app.example/cb",
        "https://app.example/cb#",
        "https://app.example/cb#frag",
        "https://app.example/cb#@evil.test",
        "https://app.example/cb/../cb",
        "https://app.example/x/../cb",
        "https://app.example/./cb",
        "https://app.example/%2e%2e/cb",
        "https://app.example/cb/%2e%2e/cb",
        "https://app.example/%2E%2E%2Fcb",
        "https://app.example/cb%2F..%2F..%2Fevil",
        "https://app.example/%63b",
        "HTTPS://APP.EXAMPLE/CB",
        "HTTPS://app.example/cb",
        "https://APP.example/cb",
        "https://app.example/CB",
        "https://app.example/cb/",
        "https://app.example//cb",
        "https://app.example/cb//",
        "https://app.example./cb",
        "https://app.example:443/cb",
        "https://app.example:8443/cb",
        "http://app.example/cb",
        "https://app.example/cb?",
        "https://app.example/cb?x=1",
        "https://app.example/cb?code=planted",
        "https://app.example/cb;x",
        "https://app.example/cb ",
        " https://app.example/cb",
        "https://app.example/cb\t",
        "https://app.example\\cb",
        "https:app.example/cb",
        "https:/app.example/cb",
        "https:///app.example/cb",
        "//app.example/cb",
        "app.example/cb",
        "https://app.example\u{2215}cb",
        "https://app.example/cb\u{200b}",
        cyrillic,
        &punycode,
        fullwidth,
        soft_hyphen,
    ];
    let loopback_variants = [
        "http://127.0.0.1:8124/cb",
        "http://127.0.0.1/cb",
        "http://127.0.0.1:08123/cb",
        "http://localhost:8123/cb",
        "http://127.1:8123/cb",
        "http://0x7f.0.0.1:8123/cb",
        "http://2130706433:8123/cb",
        "http://[::1]:8123/cb",
        "http://[::ffff:127.0.0.1]:8123/cb",
        "https://127.0.0.1:8123/cb",
        "http://user@127.0.0.1:8123/cb",
        "http://127.0.0.1:8123@evil.test/cb",
    ];
    // The loopback port exception (RFC 8252 §7.3) must not widen into anything else.
    let native_variants = [
        "http://127.0.0.1:5000/cb/",
        "http://127.0.0.1:5000//cb",
        "http://127.0.0.1:5000/cb#x",
        "http://127.0.0.1:5000/%63b",
        "http://127.0.0.1:5000/CB",
        "http://127.0.0.1:5000/cb/../cb",
        "http://127.0.0.1:5000/cb?x",
        "HTTP://127.0.0.1:5000/cb",
        "http://127.0.0.1:05000/cb",
        "http://127.1:5000/cb",
        "http://[::1]:5000/cb",
        "http://[::ffff:127.0.0.1]:5000/cb",
        "http://user@127.0.0.1:5000/cb",
        "http://127.0.0.1:5000@evil.test/cb",
        "http://127.0.0.1.evil.test:5000/cb",
    ];
    let groups: [(&TestClient, &[&str]); 3] = [
        (&client, &web),
        (&loopback, &loopback_variants),
        (&native, &native_variants),
    ];

    let before = rows(&app).await;
    let browser = Browser::new();
    for (client, variants) in groups {
        for &uri in variants {
            let form: Vec<(String, String)> = [
                ("response_type", "code"),
                ("client_id", client.id.as_str()),
                ("redirect_uri", uri),
                ("state", "s"),
                ("code_challenge", CHALLENGE),
                ("code_challenge_method", "S256"),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
            let pairs: Vec<(&str, &str)> =
                form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let got = browser.authorize(&app, &pairs).await;
            let posted = browser.post_form(&app.url("/authorize"), &form).await;
            for (method, answer) in [("GET", got), ("POST", posted)] {
                let what = format!("{method} {uri:?}");
                assert_error_page(&answer, "is not registered for this client", &what);
                // The value received is shown to the developer as escaped text in the
                // explanation, and nowhere else: never as a link, image or form target.
                let start = answer.body.find("<details").expect("explanation");
                let end = answer.body.find("</details>").expect("its end");
                let outside = format!("{}{}", &answer.body[..start], &answer.body[end..]);
                assert!(!outside.contains("evil.test"), "{what}");
                for attribute in ["href=", "src=", "action="] {
                    let inside = &answer.body[start..end];
                    assert!(
                        !inside.contains(attribute),
                        "{what}: {attribute} in {inside}"
                    );
                }
            }
        }
    }
    assert_eq!(rows(&app).await, before, "nothing stored");

    // The registered URIs themselves still work.
    for (client, uri) in [
        (&client, CB),
        (&loopback, "http://127.0.0.1:8123/cb"),
        (&native, "http://127.0.0.1:5000/cb"),
    ] {
        let mut probe = client.clone();
        probe.redirect_uri = uri.to_owned();
        let ok = Browser::new()
            .get(&app.url(&format!("/authorize?{}", authorize_query(&probe, ""))))
            .await;
        assert_eq!(ok.status, StatusCode::SEE_OTHER, "{uri}: {}", ok.body);
        assert!(
            ok.location().is_some_and(|l| l.starts_with("/login?")),
            "{uri}"
        );
    }
    assert_alive(&app, "redirect URI look-alikes").await;
}

/// A client_id with a NUL byte, in the body or in Basic credentials, is 401 `invalid_client`
/// on both backends (it used to be 503 on PostgreSQL).
#[tokio::test]
async fn m66_token_refuses_malformed_requests_with_rfc6749_errors_and_issues_nothing() {
    let app = spawn_app().await;
    app.user("alice").await;
    let client = app.client().await;
    let flow = flow(&app, &client, "alice", "openid").await;
    let (code, verifier) = (flow.code.as_str(), flow.verifier.as_str());
    let with_code = |code: &str| {
        format!(
            "grant_type=authorization_code&code={code}&redirect_uri={CB_ENCODED}&code_verifier={verifier}"
        )
    };
    let valid = with_code(code);
    let bytes = |parts: &[&[u8]]| parts.concat();
    let basic = || Some(Auth::Basic(&client));

    let distinct: String = (0..10_000).map(|i| format!("&f{i}=1")).collect();
    let cases: Vec<TokenCase<'_>> = vec![
        (
            "raw invalid UTF-8 in code",
            Some(FORM),
            bytes(&[b"grant_type=authorization_code&code=\xff\xfe", b"&redirect_uri=x"]),
            basic(),
            "invalid_grant",
        ),
        ("escaped invalid UTF-8 as code", Some(FORM), with_code("%FF%FE").into(), basic(), "invalid_grant"),
        ("the code and invalid UTF-8", Some(FORM), with_code(&format!("{code}%FF")).into(), basic(), "invalid_grant"),
        ("the code and a NUL", Some(FORM), with_code(&format!("{code}%00")).into(), basic(), "invalid_grant"),
        ("a NUL as code", Some(FORM), with_code("%00").into(), basic(), "invalid_grant"),
        (
            "raw invalid UTF-8 in grant_type",
            Some(FORM),
            bytes(&[b"grant_type=authorization_code\xff&code=", code.as_bytes()]),
            basic(),
            "unsupported_grant_type",
        ),
        (
            "NUL in grant_type",
            Some(FORM),
            valid.replacen("authorization_code", "authorization_code%00", 1).into(),
            basic(),
            "unsupported_grant_type",
        ),
        ("repeated grant_type", Some(FORM), format!("{valid}&grant_type=authorization_code").into(), basic(), "invalid_request"),
        ("repeated code", Some(FORM), format!("{valid}&code={code}").into(), basic(), "invalid_request"),
        ("another code", Some(FORM), format!("{valid}&code=other").into(), basic(), "invalid_request"),
        ("repeated redirect_uri", Some(FORM), format!("{valid}&redirect_uri={CB_ENCODED}").into(), basic(), "invalid_request"),
        ("repeated code_verifier", Some(FORM), format!("{valid}&code_verifier={verifier}").into(), basic(), "invalid_request"),
        (
            "repeated client_id",
            Some(FORM),
            format!("{valid}&client_id={0}&client_id={0}", client.id).into(),
            basic(),
            "invalid_request",
        ),
        ("10 000 repeats of one field", Some(FORM), format!("{valid}{}", "&x=1".repeat(10_000)).into(), basic(), "invalid_request"),
        (
            "a field name nested 10 000 deep",
            Some(FORM),
            format!("{}&x{}=1", with_code("not-a-code"), "[a]".repeat(10_000)).into(),
            basic(),
            "invalid_grant",
        ),
        (
            "a 60 000-character code_verifier",
            Some(FORM),
            format!("grant_type=authorization_code&code=not-a-code&code_verifier={}", "v".repeat(60_000)).into(),
            basic(),
            "invalid_grant",
        ),
        ("no content type", None, valid.clone().into(), basic(), "invalid_request"),
        ("text/plain", Some("text/plain"), valid.clone().into(), basic(), "invalid_request"),
        (
            "a JSON body",
            Some("application/json"),
            json!({"grant_type": "authorization_code", "code": code, "redirect_uri": CB, "code_verifier": verifier})
                .to_string()
                .into(),
            basic(),
            "invalid_request",
        ),
        (
            "multipart",
            Some("multipart/form-data; boundary=x"),
            "--x\r\nContent-Disposition: form-data; name=\"grant_type\"\r\n\r\nauthorization_code\r\n--x--\r\n".into(),
            basic(),
            "invalid_request",
        ),
        ("a look-alike form type", Some("application/x-www-form-urlencoded-x"), valid.clone().into(), basic(), "invalid_request"),
        ("a NUL client_id", Some(FORM), format!("{valid}&client_id=%00").into(), None, "invalid_client"),
        ("an invalid UTF-8 client_id", Some(FORM), format!("{valid}&client_id=%FF%FE").into(), None, "invalid_client"),
        (
            "Basic credentials with a NUL",
            Some(FORM),
            valid.clone().into(),
            Some(Auth::Header(HeaderValue::from_str(&format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{}%00:x", client.id)))).unwrap())),
            "invalid_client",
        ),
        (
            "Basic credentials that are not base64",
            Some(FORM),
            valid.clone().into(),
            Some(Auth::Header(HeaderValue::from_static("Basic %00%FF"))),
            "invalid_client",
        ),
        (
            "an Authorization header with non-ASCII bytes",
            Some(FORM),
            valid.clone().into(),
            Some(Auth::Header(HeaderValue::from_bytes(b"Basic \xff\xfe").unwrap())),
            "invalid_client",
        ),
    ];
    let before = rows(&app).await;
    for (what, content_type, body, auth, error) in cases {
        let answer = post(&app, "/token", content_type, body, auth).await;
        assert_token_error(&answer, error, what);
    }
    // Over the body limit: 413 before anything is parsed, with or without a declared length.
    let answer = post(
        &app,
        "/token",
        Some(FORM),
        format!("{valid}{distinct}").into(),
        basic(),
    )
    .await;
    assert_eq!(
        answer.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "10 000 distinct fields"
    );
    let mut chunked = format!(
        "POST /token HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Type: {FORM}\r\nTransfer-Encoding: chunked\r\n\r\n",
        app.base.trim_start_matches("http://")
    )
    .into_bytes();
    for _ in 0..16 {
        chunked.extend(b"10000\r\n");
        chunked.extend(std::iter::repeat_n(b'v', 0x10000));
        chunked.extend(b"\r\n");
    }
    chunked.extend(b"0\r\n\r\n");
    assert_eq!(
        raw_status(&app, chunked).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "a 1 MiB chunked body"
    );
    assert_eq!(
        rows(&app).await,
        before,
        "no code redeemed, no token issued"
    );
    assert_alive(&app, "malformed token requests").await;

    // None of that burned the code.
    let exchanged = exchange(&app, &client, code, verifier).await;
    assert_eq!(exchanged.status, StatusCode::OK, "{}", exchanged.body);
    assert!(exchanged.json()["access_token"].is_string());
}

async fn introspect(app: &TestApp, client: &TestClient, body: Vec<u8>) -> Answer {
    post(
        app,
        "/introspect",
        Some(FORM),
        body,
        Some(Auth::Basic(client)),
    )
    .await
}

async fn revoke(app: &TestApp, client: &TestClient, body: Vec<u8>) -> Answer {
    post(app, "/revoke", Some(FORM), body, Some(Auth::Basic(client))).await
}

#[tokio::test]
async fn m66_introspection_and_revocation_answer_inactive_for_nested_oversized_and_garbled_tokens()
{
    let app = spawn_app().await;
    app.user("alice").await;
    let client = app.client().await;
    let issued = tokens(&app, &client, "alice", "openid offline_access").await;
    let access = issued["access_token"].as_str().unwrap().to_owned();
    let refresh = issued["refresh_token"].as_str().unwrap().to_owned();
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(access.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();

    // Checklist 66: a header nested 10 000 deep. It is over the 8 KiB token limit, so a
    // shallower one, under the limit, makes sure the JSON parser itself is exercised too.
    let deep = nested_jwt(10_000);
    let parsed = nested_jwt(2_500);
    assert!(parsed.len() < 8 * 1024, "{}", parsed.len());
    let nested_payload = format!(
        "{}.{}.{}",
        b64(json!({"alg": header["alg"], "typ": "at+jwt", "kid": header["kid"]}).to_string()),
        b64(nested_json(2_500)),
        b64("sig")
    );
    let form = |token: &str| format!("token={token}").into_bytes();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("a header nested 10 000 deep", form(&deep)),
        ("a header nested 2 500 deep", form(&parsed)),
        ("a payload nested 2 500 deep", form(&nested_payload)),
        ("60 000 characters", form(&"a".repeat(60_000))),
        ("a NUL", form("%00")),
        ("the access token and a NUL", form(&format!("{access}%00"))),
        (
            "the access token and invalid UTF-8",
            form(&format!("{access}%FF")),
        ),
        (
            "the refresh token and a NUL",
            form(&format!("{refresh}%00")),
        ),
        ("escaped invalid UTF-8", form("%FF%FE")),
        ("raw invalid UTF-8", b"token=\xff\xfe\xfd".to_vec()),
        ("a 1 MiB token", form(&"a".repeat(MIB))),
    ];
    let before = rows(&app).await;
    for (what, body) in cases {
        let too_large = body.len() > 64 * 1024;
        let introspected = introspect(&app, &client, body.clone()).await;
        let revoked = revoke(&app, &client, body).await;
        if too_large {
            assert_eq!(introspected.status, StatusCode::PAYLOAD_TOO_LARGE, "{what}");
            assert_eq!(revoked.status, StatusCode::PAYLOAD_TOO_LARGE, "{what}");
            continue;
        }
        // RFC 7662 §2.2: anything not a live token of the caller is just inactive.
        assert_eq!(
            introspected.status,
            StatusCode::OK,
            "{what}: {}",
            introspected.body
        );
        assert_eq!(introspected.json(), json!({"active": false}), "{what}");
        // RFC 7009 §2.2: an invalid token is answered 200 all the same.
        assert_eq!(revoked.status, StatusCode::OK, "{what}: {}", revoked.body);
        assert_eq!(revoked.json(), json!({}), "{what}");
    }
    assert_eq!(rows(&app).await, before, "nothing stored");
    // And nothing was revoked.
    for token in [&access, &refresh] {
        let still = introspect(&app, &client, form(token)).await;
        assert_eq!(still.json()["active"], true, "{}", still.body);
    }
    assert_alive(&app, "malformed introspection and revocation").await;
}

/// RFC 6749 §3.2 forbids repeated parameters and RFC 7009 §2.2.1 / RFC 7662 §2.3 answer
/// errors as RFC 6749 §5.2 does, whose `invalid_request` covers a request that "repeats a
/// parameter". (The first `token` used to win.)
#[tokio::test]
async fn a09_repeated_token_parameter_is_invalid_request_at_introspection_and_revocation() {
    let app = spawn_app().await;
    app.user("alice").await;
    let client = app.client().await;
    let issued = tokens(&app, &client, "alice", "openid").await;
    let access = issued["access_token"].as_str().unwrap().to_owned();
    let body = format!("token={access}&token=garbage").into_bytes();
    let introspected = introspect(&app, &client, body.clone()).await;
    assert_token_error(&introspected, "invalid_request", "introspection");
    let revoked = revoke(&app, &client, body).await;
    assert_token_error(&revoked, "invalid_request", "revocation");
    let still = introspect(&app, &client, format!("token={access}").into_bytes()).await;
    assert_eq!(
        still.json()["active"],
        true,
        "nothing revoked: {}",
        still.body
    );
}

async fn userinfo_with(app: &TestApp, authorization: &[HeaderValue]) -> Answer {
    let mut request = reqwest::Client::new().get(app.url("/userinfo"));
    for value in authorization {
        request = request.header(AUTHORIZATION, value.clone());
    }
    answer(request.send().await.expect("GET /userinfo")).await
}

#[tokio::test]
async fn m66_userinfo_refuses_garbage_authorization_headers_without_a_server_error() {
    let app = spawn_app().await;
    app.user("alice").await;
    let client = app.client().await;
    let issued = tokens(&app, &client, "alice", "openid").await;
    let access = issued["access_token"].as_str().unwrap().to_owned();
    let bearer = |token: &str| HeaderValue::from_str(&format!("Bearer {token}")).unwrap();
    let invalid = "error=\"invalid_token\"";
    let bare = "Bearer realm=\"latchkey\"";
    let mut with_non_ascii = format!("Bearer {access}").into_bytes();
    with_non_ascii.extend(b"\xc2\xa0");
    let cases: Vec<(&str, Vec<HeaderValue>, &str)> = vec![
        ("garbage", vec![bearer("garbage")], invalid),
        ("three dots", vec![bearer("a.b.c")], invalid),
        ("spaces in the token", vec![bearer("a b c")], invalid),
        (
            "a header nested 10 000 deep",
            vec![bearer(&nested_jwt(10_000))],
            invalid,
        ),
        (
            "a header nested 2 500 deep",
            vec![bearer(&nested_jwt(2_500))],
            invalid,
        ),
        (
            "a 64 KiB token",
            vec![bearer(&"a".repeat(64 * 1024))],
            invalid,
        ),
        (
            "the token and a NUL escape",
            vec![bearer(&format!("{access}%00"))],
            invalid,
        ),
        // Not visible ASCII: read as no credentials at all (RFC 6750 §3.1: no error code).
        (
            "non-ASCII bytes",
            vec![HeaderValue::from_bytes(b"Bearer \xff\xfe").unwrap()],
            bare,
        ),
        (
            "the token and a non-ASCII byte",
            vec![HeaderValue::from_bytes(&with_non_ascii).unwrap()],
            bare,
        ),
        ("no token", vec![HeaderValue::from_static("Bearer")], bare),
        ("Basic", vec![HeaderValue::from_static("Basic YTpi")], bare),
    ];
    for (what, headers, challenge) in cases {
        let answer = userinfo_with(&app, &headers).await;
        assert_eq!(
            answer.status,
            StatusCode::UNAUTHORIZED,
            "{what}: {}",
            answer.body
        );
        let header = answer.header(WWW_AUTHENTICATE.as_str()).unwrap_or_default();
        if challenge == bare {
            assert_eq!(header, bare, "{what}");
        } else {
            assert!(header.contains(challenge), "{what}: {header}");
        }
        assert_eq!(answer.json()["error"], "invalid_token", "{what}");
    }
    // A megabyte of header is refused by the HTTP layer.
    let huge = userinfo_with(&app, &[bearer(&"a".repeat(MIB))]).await;
    assert_eq!(huge.status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);

    // The form-body variant (RFC 6750 §2.2).
    for (what, body, status) in [
        (
            "a NUL",
            b"access_token=%00".to_vec(),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "invalid UTF-8",
            b"access_token=\xff\xfe".to_vec(),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "a header nested 10 000 deep",
            format!("access_token={}", nested_jwt(10_000)).into_bytes(),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "a 1 MiB token",
            format!("access_token={}", "a".repeat(MIB)).into_bytes(),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
    ] {
        let answer = post(&app, "/userinfo", Some(FORM), body, None).await;
        assert_eq!(answer.status, status, "POST {what}: {}", answer.body);
    }

    // The real token still works.
    let info = userinfo(&app, &access).await;
    assert_eq!(info.status, StatusCode::OK, "{}", info.body);
    assert_eq!(info.header(CACHE_CONTROL.as_str()), Some("no-store"));
    assert_alive(&app, "garbage Authorization headers").await;
}

/// Two `Authorization` headers are a malformed request (RFC 9110 §5.3: a sender must not
/// repeat a field that is not a list), which RFC 6750 §3.1 answers 400 `invalid_request`.
/// (The first header used to win, so a proxy that reads the last one and this server could
/// disagree on who the caller is.)
#[tokio::test]
async fn a09_duplicated_authorization_headers_at_userinfo_are_invalid_request() {
    let app = spawn_app().await;
    app.user("alice").await;
    let client = app.client().await;
    let issued = tokens(&app, &client, "alice", "openid").await;
    let access = issued["access_token"].as_str().unwrap();
    let headers = [
        HeaderValue::from_str(&format!("Bearer {access}")).unwrap(),
        HeaderValue::from_static("Bearer garbage"),
    ];
    let answer = userinfo_with(&app, &headers).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.body);
    assert_eq!(answer.json()["error"], "invalid_request");
    assert!(
        answer
            .header(WWW_AUTHENTICATE.as_str())
            .is_some_and(|c| c.contains("error=\"invalid_request\"")),
        "{:?}",
        answer.header(WWW_AUTHENTICATE.as_str())
    );
}

/// A username with a NUL byte is a failed login on both backends (it used to be 500 on
/// PostgreSQL).
#[tokio::test]
async fn m66_login_survives_oversized_nul_and_invalid_utf8_credentials() {
    let app = spawn_app().await;
    app.user("alice").await;
    let client = app.client().await;
    let browser = Browser::new();
    let started = authorize_request(&app, &browser, &client, "openid", "s", &[]).await;
    let page = browser.follow(&app, &started).await;
    let hidden: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(page.hidden_inputs())
        .finish();
    let password: String = url::form_urlencoded::byte_serialize(PASSWORD.as_bytes()).collect();
    let submit = |credentials: &[u8]| {
        let body = [hidden.as_bytes(), b"&", credentials].concat();
        browser
            .http
            .post(app.url("/login"))
            .header(CONTENT_TYPE, FORM)
            .body(body)
            .send()
    };
    let failed = "The username or password is incorrect.";
    let before = rows(&app).await;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "a NUL in the username",
            format!("username=al%00ice&password={password}").into_bytes(),
        ),
        (
            "a NUL in the password",
            format!("username=alice&password={password}%00").into_bytes(),
        ),
        (
            "raw invalid UTF-8 in the username",
            b"username=\xff\xfe&password=x".to_vec(),
        ),
        (
            "escaped invalid UTF-8 in the password",
            b"username=alice&password=%FF%FE".to_vec(),
        ),
        (
            "a 60 000-character username",
            format!("username={}&password=x", "u".repeat(60_000)).into_bytes(),
        ),
    ];
    for (what, credentials) in cases {
        let refused = answer(submit(&credentials).await.expect("POST /login")).await;
        assert_eq!(refused.status, StatusCode::OK, "{what}");
        assert!(refused.body.contains(failed), "{what}");
        assert_eq!(refused.header("set-cookie"), None, "{what}: no session");
    }
    let huge = format!("username={}&password=x", "u".repeat(MIB));
    let refused = answer(submit(huge.as_bytes()).await.expect("POST /login")).await;
    assert_eq!(
        refused.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "1 MiB username"
    );

    // Garbage flow ids are unknown flows.
    for flow in ["%00", "%FF%FE", &nested_json(10_000).replace('"', "%22")] {
        let shown = browser.get(&app.url(&format!("/login?flow={flow}"))).await;
        assert_error_page(
            &shown,
            "no longer valid",
            &format!("GET /login flow {flow:.20}"),
        );
        let posted = post(
            &app,
            "/login",
            Some(FORM),
            format!("flow={flow}&csrf_token=x&username=alice&password={password}").into_bytes(),
            None,
        )
        .await;
        assert_error_page(
            &posted,
            "no longer valid",
            &format!("POST /login flow {flow:.20}"),
        );
    }

    // The account page's own sign-in form.
    let account = browser.get(&app.url("/account")).await;
    assert_eq!(account.status, StatusCode::OK);
    let csrf: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(account.hidden_inputs())
        .finish();
    let signed = browser
        .http
        .post(app.url("/account/login"))
        .header(CONTENT_TYPE, FORM)
        .body(format!("{csrf}&username=al%00ice&password=x"))
        .send()
        .await
        .expect("POST /account/login");
    let signed = answer(signed).await;
    assert_eq!(signed.status, StatusCode::OK, "account sign-in with a NUL");
    assert!(signed.body.contains(failed));
    assert_eq!(rows(&app).await, before, "no session, nothing stored");

    // The right credentials still work.
    let ok = answer(
        submit(format!("username=alice&password={password}").as_bytes())
            .await
            .expect("POST /login"),
    )
    .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.body);
    assert!(ok.location().is_some_and(|l| l.starts_with("/consent?")));
    assert_alive(&app, "malformed logins").await;
}
