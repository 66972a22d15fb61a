//! Hardening rules that cut across endpoints (SECURITY-CHECKLIST items 7, 10, 12, 13, 17, 18,
//! 30, 47, 48, 51 and 55): open redirects, methods, CORS, scope allow-lists, session lifetimes,
//! password changes, unguessable artifacts, forged tokens and deleted clients.

use std::collections::HashSet;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use latchkey::clock::Clock;
use latchkey::protocol::types::Password;
use latchkey::service::Settings;
use latchkey::service::admin::{self, NewClient};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

/// The values an attacker would put in a "return to" parameter (checklist item 7).
const EVIL_TARGETS: [&str; 8] = [
    "https://evil.test/",
    "//evil.test",
    "/\\evil.test",
    "/%2F%2Fevil.test",
    "https:evil.test",
    "\\/\\/evil.test",
    "/%09/evil.test",
    "https://app.example.evil.test/cb",
];

/// Starts an authorization request with a fresh PKCE challenge.
async fn start(
    app: &TestApp,
    browser: &Browser,
    client: &TestClient,
    scope: &str,
    extra: &[(&str, &str)],
) -> Answer {
    authorize_request(app, browser, client, scope, "s", extra).await
}

/// Panics unless the answer either does not redirect, redirects to a path of the AS itself, or
/// (when `client_redirect` is given) to that registered redirect URI.
fn assert_stays_home(app: &TestApp, client_redirect: Option<&str>, answer: &Answer, what: &str) {
    let Some(location) = answer.location() else {
        return;
    };
    let base = url::Url::parse(&app.base).unwrap();
    let same_origin_path = location.starts_with('/')
        && !location.starts_with("//")
        && !location.starts_with("/\\")
        && base
            .join(location)
            .is_ok_and(|target| target.origin() == base.origin());
    let to_client =
        client_redirect.is_some_and(|cb| location == cb || location.starts_with(&format!("{cb}?")));
    assert!(
        same_origin_path || to_client,
        "{what}: redirected off the server to {location}"
    );
}

/// `path` with `pairs` appended to its query, percent-encoded.
fn with_query(app: &TestApp, path: &str, pairs: &[(&str, &str)]) -> String {
    let mut url = url::Url::parse(&app.url(path)).unwrap();
    url.query_pairs_mut().extend_pairs(pairs);
    url.into()
}

fn hidden(page: &Answer, name: &str) -> String {
    page.hidden_inputs()
        .into_iter()
        .find(|(k, _)| k == name)
        .unwrap_or_else(|| panic!("no hidden {name} in {}", page.body))
        .1
}

#[tokio::test]
async fn a07_no_open_redirector_on_login_or_consent() {
    let app = spawn_app().await;
    app.user("alice").await;
    let client = app.client().await;

    // Without a flow.
    let stranger = Browser::new();
    for target in EVIL_TARGETS {
        for (path, pairs) in [
            ("/login", vec![("return_to", target), ("next", target)]),
            ("/consent", vec![("redirect", target)]),
            ("/logout", vec![("redirect", target)]),
            ("/account", vec![("return_to", target), ("next", target)]),
        ] {
            let answer = stranger.get(&with_query(&app, path, &pairs)).await;
            assert_stays_home(&app, None, &answer, &format!("GET {path} {pairs:?}"));
        }
        let raw = stranger
            .get(&app.url(&format!("/login?return_to={target}&next={target}")))
            .await;
        assert_stays_home(&app, None, &raw, &format!("raw GET /login {target}"));
    }

    // With a valid flow, the login page ignores them.
    let browser = Browser::new();
    let started = start(&app, &browser, &client, "openid", &[]).await;
    let login_path = started.location().unwrap().to_owned();
    assert!(login_path.starts_with("/login?"), "{login_path}");
    for target in EVIL_TARGETS {
        let mut url = url::Url::parse(&app.url(&login_path)).unwrap();
        url.query_pairs_mut()
            .append_pair("return_to", target)
            .append_pair("next", target);
        let page = browser.get(url.as_str()).await;
        assert_stays_home(
            &app,
            None,
            &page,
            &format!("GET /login with a flow, {target}"),
        );
    }

    // A login whose page URL carried return_to still ends on the AS or at the client.
    let page = browser
        .get(&app.url(&format!(
            "{login_path}&return_to=https://evil.test/&next=//evil.test"
        )))
        .await;
    assert_eq!(page.status, StatusCode::OK, "login page: {}", page.body);
    let logged_in = browser
        .submit(
            &app,
            &page,
            "/login",
            &[
                ("username", "alice"),
                ("password", PASSWORD),
                ("return_to", "https://evil.test/"),
                ("next", "//evil.test"),
                ("redirect", "https://evil.test/"),
                ("redirect_uri", "https://evil.test/"),
            ],
        )
        .await;
    assert_eq!(
        logged_in.status,
        StatusCode::SEE_OTHER,
        "{}",
        logged_in.body
    );
    assert_stays_home(&app, Some(CB), &logged_in, "after login");
    let consent_path = logged_in.location().unwrap().to_owned();
    assert!(consent_path.starts_with("/consent?"), "{consent_path}");

    // The consent page with a flow ignores `redirect` too, and so does its form.
    for target in EVIL_TARGETS {
        let mut url = url::Url::parse(&app.url(&consent_path)).unwrap();
        url.query_pairs_mut().append_pair("redirect", target);
        let page = browser.get(url.as_str()).await;
        assert_stays_home(
            &app,
            None,
            &page,
            &format!("GET /consent with a flow, {target}"),
        );
    }
    let consent_page = browser
        .get(&app.url(&format!("{consent_path}&redirect=https://evil.test/")))
        .await;
    assert_eq!(consent_page.status, StatusCode::OK, "{}", consent_page.body);
    let decided = browser
        .submit(
            &app,
            &consent_page,
            "/consent",
            &[
                ("decision", "allow"),
                ("redirect", "https://evil.test/"),
                ("redirect_uri", "https://evil.test/"),
                ("return_to", "https://evil.test/"),
            ],
        )
        .await;
    assert_eq!(decided.status, StatusCode::SEE_OTHER, "{}", decided.body);
    assert_stays_home(&app, Some(CB), &decided, "after consent");
    assert!(
        decided
            .location()
            .is_some_and(|l| l.starts_with(&format!("{CB}?"))),
        "the code goes to the registered URI: {:?}",
        decided.location()
    );
}

#[tokio::test]
async fn a10_authorization_endpoint_answers_get_and_post_only_and_token_post_only() {
    let app = spawn_app().await;
    let client = app.client().await;
    let http = Browser::new().http;
    let url = with_query(
        &app,
        "/authorize",
        &[
            ("response_type", "code"),
            ("client_id", &client.id),
            ("redirect_uri", CB),
            ("state", "s"),
            ("code_challenge", &pkce_pair().1),
            ("code_challenge_method", "S256"),
        ],
    );
    for method in [
        reqwest::Method::PUT,
        reqwest::Method::DELETE,
        reqwest::Method::PATCH,
    ] {
        let answer = http.request(method.clone(), &url).send().await.unwrap();
        assert_eq!(
            answer.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} /authorize"
        );
        assert!(answer.headers().get("location").is_none());
    }
    let get = http.get(app.url("/token")).send().await.unwrap();
    assert_eq!(get.status(), StatusCode::METHOD_NOT_ALLOWED, "GET /token");
}

#[tokio::test]
async fn a12_no_cors_on_the_front_channel_or_for_unregistered_origins() {
    let app = spawn_app().await;
    let client = app.client().await;
    let http = Browser::new().http;
    for path in ["/authorize", "/login", "/consent", "/token"] {
        let preflight = http
            .request(reqwest::Method::OPTIONS, app.url(path))
            .header("Origin", "https://evil.test")
            .header("Access-Control-Request-Method", "GET")
            .header("Access-Control-Request-Headers", "authorization")
            .send()
            .await
            .unwrap();
        let preflight = answer(preflight).await;
        // The token endpoint has a CORS layer (for public clients' origins), which may list its
        // methods; what grants access is the allowed origin, and that must be absent.
        let headers: &[&str] = if path == "/token" {
            &[
                "access-control-allow-origin",
                "access-control-allow-credentials",
            ]
        } else {
            &[
                "access-control-allow-origin",
                "access-control-allow-credentials",
                "access-control-allow-methods",
            ]
        };
        for header in headers.iter().copied() {
            assert!(
                preflight.header(header).is_none(),
                "OPTIONS {path}: {header}: {:?}",
                preflight.header(header)
            );
        }
    }
    let authorize = answer(
        http.get(with_query(
            &app,
            "/authorize",
            &[("client_id", &client.id), ("redirect_uri", CB)],
        ))
        .header("Origin", "https://evil.test")
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert!(authorize.header("access-control-allow-origin").is_none());
    let token = answer(
        http.post(app.url("/token"))
            .header("Origin", "https://evil.test")
            .basic_auth(&client.id, client.secret.as_ref())
            .form(&[("grant_type", "refresh_token"), ("refresh_token", "x")])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(token.status, StatusCode::BAD_REQUEST, "{}", token.body);
    for header in [
        "access-control-allow-origin",
        "access-control-allow-credentials",
    ] {
        assert!(
            token.header(header).is_none(),
            "POST /token: {header}: {:?}",
            token.header(header)
        );
    }
}

#[tokio::test]
async fn a13_scope_outside_the_clients_allow_list_is_invalid_scope_without_consent() {
    let app = spawn_app().await;
    app.user("alice").await;
    let client = app.client_with(vec![CB.into()], false, Some("read")).await;

    let check = |answer: &Answer, who: &str| {
        assert_eq!(
            answer.status,
            StatusCode::SEE_OTHER,
            "{who}: {}",
            answer.body
        );
        let location = answer.location().unwrap();
        assert!(
            location.starts_with(&format!("{CB}?")),
            "{who}: the error goes to the client, never to the consent page: {location}"
        );
        let params = answer.redirect_params();
        assert_eq!(
            params.get("error").map(String::as_str),
            Some("invalid_scope"),
            "{who}"
        );
        assert_eq!(params.get("state").map(String::as_str), Some("s"), "{who}");
        assert_eq!(params.get("iss"), Some(&app.base), "{who}");
        assert!(!params.contains_key("code"), "{who}");
    };

    let anonymous = Browser::new();
    check(
        &start(&app, &anonymous, &client, "read admin", &[]).await,
        "no session",
    );

    // With a session and a remembered consent for `read`, `admin` is still refused.
    let signed_in = flow(&app, &client, "alice", "read").await;
    check(
        &start(&app, &signed_in.browser, &client, "read admin", &[]).await,
        "with a session",
    );
    check(
        &start(
            &app,
            &signed_in.browser,
            &client,
            "read admin",
            &[("prompt", "consent")],
        )
        .await,
        "with prompt=consent",
    );
}

#[tokio::test]
async fn b17_sessions_end_after_the_idle_limit() {
    let app = spawn_app().await;
    app.user("alice").await;
    let client = app.client().await;
    let signed_in = flow(&app, &client, "alice", "openid").await;
    let browser = &signed_in.browser;

    let again = start(&app, browser, &client, "openid", &[]).await;
    assert!(
        again
            .location()
            .is_some_and(|l| l.starts_with(&format!("{CB}?"))),
        "a live session skips login and the remembered consent skips the page: {:?}",
        again.location()
    );
    app.clock.advance(3599);
    let before_limit = start(&app, browser, &client, "openid", &[]).await;
    assert!(
        before_limit
            .location()
            .is_some_and(|l| l.starts_with(&format!("{CB}?"))),
        "still live just before the idle limit: {:?}",
        before_limit.location()
    );
    app.clock.advance(3601);
    let idle = start(&app, browser, &client, "openid", &[]).await;
    assert!(
        idle.location().is_some_and(|l| l.starts_with("/login")),
        "idle past 1 h: login again, got {:?}",
        idle.location()
    );
}

#[tokio::test]
async fn b17_sessions_end_after_the_absolute_limit_even_when_active() {
    let app = spawn_app_with(|s| Settings {
        session_ttl: 7200,
        session_idle_ttl: 3600,
        ..s
    })
    .await;
    app.user("alice").await;
    let client = app.client().await;
    let signed_in = flow(&app, &client, "alice", "openid").await;
    let browser = &signed_in.browser;
    for elapsed in [3000, 6000] {
        app.clock.advance(3000);
        let active = start(&app, browser, &client, "openid", &[]).await;
        assert!(
            active
                .location()
                .is_some_and(|l| l.starts_with(&format!("{CB}?"))),
            "at {elapsed} s with activity every 3000 s the session lives: {:?}",
            active.location()
        );
    }
    app.clock.advance(1201);
    let ended = start(&app, browser, &client, "openid", &[]).await;
    assert!(
        ended.location().is_some_and(|l| l.starts_with("/login")),
        "past 7200 s the session ends despite activity: {:?}",
        ended.location()
    );
}

#[tokio::test]
async fn b18_a_password_change_ends_sessions_and_revokes_tokens() {
    let app = spawn_app().await;
    app.user("alice").await;
    let client = app.client().await;
    let signed_in = flow(&app, &client, "alice", "openid offline_access").await;
    let body = exchange(&app, &client, &signed_in.code, &signed_in.verifier)
        .await
        .json();
    let access_token = body["access_token"].as_str().unwrap();
    let refresh_token = body["refresh_token"].as_str().unwrap();
    assert_eq!(userinfo(&app, access_token).await.status, StatusCode::OK);

    admin::set_password(
        app.store.as_ref(),
        "alice",
        Password::new("new pw"),
        app.clock.now(),
    )
    .await
    .unwrap();

    let info = userinfo(&app, access_token).await;
    assert_eq!(
        info.status,
        StatusCode::UNAUTHORIZED,
        "the access token is revoked: {}",
        info.body
    );
    let refreshed = refresh(&app, &client, refresh_token).await;
    assert_eq!(
        (refreshed.status, refreshed.json()["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant")),
        "the refresh token is revoked"
    );
    let introspected = answer(
        reqwest::Client::new()
            .post(app.url("/introspect"))
            .basic_auth(&client.id, client.secret.as_ref())
            .form(&[("token", access_token)])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(introspected.json(), json!({"active": false}));

    let again = start(&app, &signed_in.browser, &client, "openid", &[]).await;
    assert!(
        again.location().is_some_and(|l| l.starts_with("/login")),
        "the session ended: {:?}",
        again.location()
    );
    let old_password = signed_in
        .browser
        .login(&app, &again, "alice", PASSWORD)
        .await;
    assert_eq!(
        (old_password.status, old_password.location()),
        (StatusCode::OK, None),
        "the old password no longer works"
    );
    let new_password = signed_in
        .browser
        .submit(
            &app,
            &old_password,
            "/login",
            &[("username", "alice"), ("password", "new pw")],
        )
        .await;
    assert_eq!(
        new_password.status,
        StatusCode::SEE_OTHER,
        "{}",
        new_password.body
    );
}

#[tokio::test]
async fn d30_codes_are_long_random_and_unrelated() {
    let app = spawn_app().await;
    app.user("alice").await;
    let client = app.client().await;
    let first = flow(&app, &client, "alice", "openid").await;
    let mut codes = vec![first.code.clone()];
    for _ in 1..50 {
        // Session and remembered consent: one request per code.
        let (code, _) = browser_flow(&app, &first.browser, &client, "alice", "openid").await;
        codes.push(code);
    }
    let distinct: HashSet<&String> = codes.iter().collect();
    assert_eq!(distinct.len(), codes.len(), "codes repeat");
    for code in &codes {
        assert!(code.len() >= 43, "{code}: fewer than 256 bits");
        assert!(
            code.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "{code}: not base64url"
        );
    }
    for (i, a) in codes.iter().enumerate() {
        for b in &codes[i + 1..] {
            let shared = a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
            assert!(shared <= 4, "{a} and {b} share a {shared}-character prefix");
        }
    }
}

/// Everything the app stored: on SQLite the bytes of the database file and its WAL; on
/// PostgreSQL every row of every table as text (binary columns appear as hex).
async fn database_bytes(app: &TestApp) -> Vec<u8> {
    if let Some(path) = &app.db_path {
        let mut bytes = std::fs::read(path).expect("database file");
        bytes.extend(std::fs::read(path.with_extension("db-wal")).unwrap_or_default());
        return bytes;
    }
    let pool = sqlx::PgPool::connect(&app.database_url)
        .await
        .expect("database");
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = current_schema()",
    )
    .fetch_all(&pool)
    .await
    .expect("tables");
    assert!(
        tables.len() >= 9,
        "the schema holds Latchkey's tables: {tables:?}"
    );
    let mut dump = Vec::new();
    for table in tables {
        let rows: Vec<String> = sqlx::query_scalar(&format!("SELECT t::text FROM {table} t"))
            .fetch_all(&pool)
            .await
            .expect("rows");
        for row in rows {
            dump.extend(row.into_bytes());
            dump.push(b'\n');
        }
    }
    dump
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// The `name=value` values of every `Set-Cookie` header of an answer.
fn cookie_values(answer: &Answer) -> Vec<String> {
    answer
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|c| c.split(';').next())
        .filter_map(|pair| pair.split_once('=').map(|(_, v)| v.to_owned()))
        .filter(|v| !v.is_empty())
        .collect()
}

#[tokio::test]
async fn d30_bearer_artifacts_are_stored_only_as_digests() {
    let app = spawn_app().await;
    app.user("alice").await;
    let client = app.client().await;
    let browser = Browser::new();
    let mut secrets: Vec<(&str, String)> = vec![
        ("client secret", client.secret.clone().unwrap()),
        ("password", PASSWORD.to_owned()),
    ];

    // The flow by hand, to see the cookies, flow id and CSRF token.
    let (verifier, challenge) = pkce_pair();
    let started = browser
        .authorize(
            &app,
            &[
                ("response_type", "code"),
                ("client_id", &client.id),
                ("redirect_uri", CB),
                ("scope", "openid offline_access"),
                ("state", "s"),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
            ],
        )
        .await;
    for value in cookie_values(&started) {
        secrets.push(("browser cookie", value));
    }
    let page = browser.follow(&app, &started).await;
    secrets.push(("flow id", hidden(&page, "flow")));
    secrets.push(("csrf token", hidden(&page, "csrf_token")));
    let logged_in = browser
        .submit(
            &app,
            &page,
            "/login",
            &[("username", "alice"), ("password", PASSWORD)],
        )
        .await;
    let session_cookies = cookie_values(&logged_in);
    assert!(!session_cookies.is_empty(), "login sets a session cookie");
    for value in session_cookies {
        secrets.push(("session cookie", value));
    }
    let decided = browser.consent(&app, &logged_in, "allow").await;
    let code = decided.redirect_params()["code"].clone();
    secrets.push(("redeemed code", code.clone()));
    let body = exchange(&app, &client, &code, &verifier).await.json();
    let first_refresh = body["refresh_token"].as_str().unwrap().to_owned();
    let rotated = refresh(&app, &client, &first_refresh).await.json();
    secrets.push(("used refresh token", first_refresh));
    secrets.push((
        "live refresh token",
        rotated["refresh_token"].as_str().unwrap().to_owned(),
    ));
    let (unredeemed, _) = browser_flow(&app, &browser, &client, "alice", "openid").await;
    secrets.push(("unredeemed code", unredeemed));
    let pending = start(&app, &browser, &client, "openid", &[("prompt", "consent")]).await;
    let pending_flow = url::Url::parse(&app.url(pending.location().unwrap()))
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "flow")
        .map(|(_, v)| v.into_owned())
        .expect("a pending consent flow");
    secrets.push(("pending flow id", pending_flow));

    let database = database_bytes(&app).await;
    assert!(
        contains(&database, client.id.as_bytes()),
        "the file holds this app's data"
    );
    assert!(
        contains(&database, b"alice"),
        "sanity: the user row is there"
    );
    for (what, value) in &secrets {
        assert!(
            !contains(&database, value.as_bytes()),
            "the {what} is stored in clear"
        );
        if let Ok(raw) = URL_SAFE_NO_PAD.decode(value) {
            if raw.len() >= 16 {
                assert!(
                    !contains(&database, &raw) && !contains(&database, hex(&raw).as_bytes()),
                    "the {what} is stored as its raw bytes"
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// H48: forged access tokens.

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn b64_json(value: &Value) -> String {
    b64(&serde_json::to_vec(value).unwrap())
}

/// The decoded header and payload of a JWT, and its three encoded parts.
struct Jwt {
    header: Value,
    payload: Value,
    parts: [String; 3],
}

fn split_jwt(token: &str) -> Jwt {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "{token}");
    let decode = |part: &str| -> Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
    };
    Jwt {
        header: decode(parts[0]),
        payload: decode(parts[1]),
        parts: [parts[0].into(), parts[1].into(), parts[2].into()],
    }
}

/// An ECDSA signature `r || s` as an ASN.1 DER `SEQUENCE { INTEGER r, INTEGER s }`.
fn der_signature(raw: &[u8]) -> Vec<u8> {
    let integer = |bytes: &[u8]| {
        let mut value: Vec<u8> = bytes.iter().copied().skip_while(|b| *b == 0).collect();
        if value.first().is_none_or(|b| b & 0x80 != 0) {
            value.insert(0, 0);
        }
        let mut out = vec![0x02, value.len() as u8];
        out.extend(value);
        out
    };
    let (r, s) = raw.split_at(raw.len() / 2);
    let body = [integer(r), integer(s)].concat();
    let mut out = vec![0x30, body.len() as u8];
    out.extend(body);
    out
}

async fn introspect(app: &TestApp, client: &TestClient, token: &str) -> Answer {
    answer(
        reqwest::Client::new()
            .post(app.url("/introspect"))
            .basic_auth(&client.id, client.secret.as_ref())
            .form(&[("token", token)])
            .send()
            .await
            .unwrap(),
    )
    .await
}

async fn assert_refused(app: &TestApp, client: &TestClient, token: &str, what: &str) {
    let info = userinfo(app, token).await;
    assert_eq!(
        info.status,
        StatusCode::UNAUTHORIZED,
        "{what}: userinfo answered {}",
        info.body
    );
    let introspected = introspect(app, client, token).await;
    assert_eq!(
        introspected.status,
        StatusCode::OK,
        "{what}: {}",
        introspected.body
    );
    assert_eq!(introspected.json(), json!({"active": false}), "{what}");
}

#[tokio::test]
async fn h48_forged_access_tokens_are_refused_at_userinfo_and_introspection() {
    let app = spawn_app().await;
    app.user("alice").await;
    let client = app.client().await;
    let body = tokens(&app, &client, "alice", "openid offline_access").await;
    let real = body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(userinfo(&app, &real).await.status, StatusCode::OK);
    assert_eq!(
        introspect(&app, &client, &real).await.json()["active"],
        true
    );

    let jwt = split_jwt(&real);
    let kid = jwt.header["kid"].as_str().unwrap().to_owned();
    let [h, p, s] = &jwt.parts;
    let with_header = |change: &dyn Fn(&mut Value)| {
        let mut header = jwt.header.clone();
        change(&mut header);
        b64_json(&header)
    };
    let mut forged: Vec<(String, String)> = Vec::new();

    // alg none, with and without the original signature.
    let none = b64_json(&json!({"alg": "none", "typ": "at+jwt", "kid": kid}));
    forged.push(("alg none".into(), format!("{none}.{p}.")));
    forged.push(("alg none, old signature".into(), format!("{none}.{p}.{s}")));
    let none_upper = b64_json(&json!({"alg": "None", "typ": "at+jwt", "kid": kid}));
    forged.push(("alg None".into(), format!("{none_upper}.{p}.")));

    // HS256 keyed with the public key in the forms an attacker can get it.
    let jwks_body = reqwest::get(app.url("/jwks"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let jwks: Value = serde_json::from_str(&jwks_body).unwrap();
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .expect("the kid is published")
        .clone();
    let mut point = vec![0x04];
    for coordinate in ["x", "y"] {
        point.extend(
            URL_SAFE_NO_PAD
                .decode(jwk[coordinate].as_str().unwrap())
                .unwrap(),
        );
    }
    let hmac_keys: [(&str, Vec<u8>); 3] = [
        ("JWK JSON", serde_json::to_vec(&jwk).unwrap()),
        ("JWKS document", jwks_body.into_bytes()),
        ("EC point", point),
    ];
    for (name, key) in hmac_keys {
        let mut header = Header::new(Algorithm::HS256);
        header.typ = Some("at+jwt".into());
        header.kid = Some(kid.clone());
        let token =
            jsonwebtoken::encode(&header, &jwt.payload, &EncodingKey::from_secret(&key)).unwrap();
        forged.push((format!("HS256 keyed with the {name}"), token));
    }

    // Keys by reference or embedded: the signature cannot be redone, the check must come first.
    let jku = with_header(&|h| h["jku"] = json!("https://evil.test/jwks"));
    forged.push(("jku".into(), format!("{jku}.{p}.{s}")));
    let x5u = with_header(&|h| h["x5u"] = json!("https://evil.test/cert.pem"));
    forged.push(("x5u".into(), format!("{x5u}.{p}.{s}")));
    let embedded = with_header(&|h| h["jwk"] = jwk.clone());
    forged.push(("embedded jwk".into(), format!("{embedded}.{p}.{s}")));

    for bad_kid in ["../../etc/passwd", "' OR '1'='1", ""] {
        let header = with_header(&|h| h["kid"] = json!(bad_kid));
        forged.push((format!("kid {bad_kid:?}"), format!("{header}.{p}.{s}")));
    }
    let no_kid = with_header(&|h| {
        h.as_object_mut().unwrap().remove("kid");
    });
    forged.push(("no kid".into(), format!("{no_kid}.{p}.{s}")));

    let raw_signature = URL_SAFE_NO_PAD.decode(s).unwrap();
    assert_eq!(raw_signature.len(), 64, "ES256 signatures are r || s");
    forged.push((
        "zero signature".into(),
        format!("{h}.{p}.{}", b64(&[0u8; 64])),
    ));
    forged.push(("empty signature".into(), format!("{h}.{p}.")));
    forged.push((
        "DER signature".into(),
        format!("{h}.{p}.{}", b64(&der_signature(&raw_signature))),
    ));

    for typ in [json!("JWT"), json!("jwt"), json!("application/jwt")] {
        let header = with_header(&|h| h["typ"] = typ.clone());
        forged.push((format!("typ {typ}"), format!("{header}.{p}.{s}")));
    }
    let untyped = with_header(&|h| {
        h.as_object_mut().unwrap().remove("typ");
    });
    forged.push(("no typ".into(), format!("{untyped}.{p}.{s}")));

    for (claim, value) in [
        ("aud", json!("https://evil.test")),
        ("iss", json!("https://evil.test")),
        ("scope", json!("openid offline_access admin")),
        ("exp", json!(jwt.payload["exp"].as_i64().unwrap() + 3600)),
    ] {
        let mut payload = jwt.payload.clone();
        payload[claim] = value;
        forged.push((
            format!("{claim} changed"),
            format!("{h}.{}.{s}", b64_json(&payload)),
        ));
    }

    for (what, token) in &forged {
        assert_refused(&app, &client, token, what).await;
    }

    // The real token still works: nothing above was refused by accident of a revocation.
    assert_eq!(userinfo(&app, &real).await.status, StatusCode::OK);

    // Expired beyond the 60 s leeway.
    app.clock.advance(600 + 61);
    assert_refused(&app, &client, &real, "expired").await;
}

#[tokio::test]
async fn h47_client_ids_never_look_like_user_subs() {
    let app = spawn_app().await;
    let mut subs = HashSet::new();
    let mut client_ids = HashSet::new();
    for i in 0..20 {
        subs.insert(app.user(&format!("user{i}")).await);
        client_ids.insert(app.client().await.id);
        client_ids.insert(app.public_client("http://127.0.0.1/cb").await.id);
    }
    let uuid_form = |s: &str| {
        let groups: Vec<&str> = s.split('-').collect();
        groups.len() == 5
            && groups
                .iter()
                .zip([8, 4, 4, 4, 12])
                .all(|(g, len)| g.len() == len && g.bytes().all(|b| b.is_ascii_hexdigit()))
    };
    assert_eq!(subs.len(), 20);
    assert_eq!(client_ids.len(), 40);
    assert!(
        subs.iter().all(|s| uuid_form(s)),
        "sanity: subs are UUIDs {subs:?}"
    );
    assert!(subs.is_disjoint(&client_ids));
    for id in &client_ids {
        assert!(!uuid_form(id), "client id {id} has the form of a user sub");
        assert!(
            !subs.iter().any(|s| s.eq_ignore_ascii_case(id)),
            "client id {id} equals a sub"
        );
    }
}

#[tokio::test]
async fn i51_i55_deleting_a_client_kills_its_refresh_and_access_tokens() {
    let app = spawn_app().await;
    app.user("alice").await;
    let client = app.client().await;
    let body = tokens(&app, &client, "alice", "openid offline_access").await;
    let access_token = body["access_token"].as_str().unwrap();
    let refresh_token = body["refresh_token"].as_str().unwrap();
    assert_eq!(userinfo(&app, access_token).await.status, StatusCode::OK);

    admin::delete_client(app.store.as_ref(), &client.id)
        .await
        .unwrap();

    let same_credentials = refresh(&app, &client, refresh_token).await;
    assert_eq!(
        (
            same_credentials.status,
            same_credentials.json()["error"].as_str()
        ),
        (StatusCode::UNAUTHORIZED, Some("invalid_client")),
        "the deleted client cannot authenticate"
    );
    let info = userinfo(&app, access_token).await;
    assert_eq!(
        info.status,
        StatusCode::UNAUTHORIZED,
        "the deleted client's access token is refused: {}",
        info.body
    );

    let other = app.client().await;
    let foreign = refresh(&app, &other, refresh_token).await;
    assert_eq!(
        (foreign.status, foreign.json()["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant")),
        "another client cannot use it"
    );

    // A client registered again under the same id inherits nothing.
    let reborn = app
        .register(NewClient {
            id: Some(client.id.clone()),
            ..NewClient::new("Test App", CB)
        })
        .await;
    assert_eq!(reborn.id, client.id);
    let inherited = refresh(&app, &reborn, refresh_token).await;
    assert_eq!(
        (inherited.status, inherited.json()["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant")),
        "a new client with the old id cannot use the old refresh token"
    );
    assert_eq!(
        userinfo(&app, access_token).await.status,
        StatusCode::UNAUTHORIZED,
        "nor revive the old access token"
    );
    assert_eq!(
        introspect(&app, &reborn, access_token).await.json(),
        json!({"active": false})
    );
}

#[tokio::test]
async fn h47_a_fixed_client_id_in_the_form_of_a_subject_is_refused() {
    let app = spawn_app().await;
    let sub = app.user("alice").await;
    let new = latchkey::service::admin::NewClient {
        id: Some(sub),
        ..latchkey::service::admin::NewClient::new("Impostor", CB)
    };
    let refused = latchkey::service::admin::create_client(app.store.as_ref(), new, 0).await;
    assert!(refused.is_err(), "{refused:?}");
}

#[tokio::test]
async fn a12_cors_is_granted_to_registered_public_client_origins_only() {
    let app = spawn_app().await;
    app.public_client("https://spa.example/cb").await;
    app.client().await;
    let http = reqwest::Client::new();
    let preflight = http
        .request(reqwest::Method::OPTIONS, app.url("/token"))
        .header("Origin", "https://spa.example")
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "content-type")
        .send()
        .await
        .unwrap();
    assert_eq!(
        preflight
            .headers()
            .get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok()),
        Some("https://spa.example")
    );
    assert!(
        preflight
            .headers()
            .get("access-control-allow-credentials")
            .is_none()
    );
    for (origin, allowed) in [
        ("https://spa.example", true),
        ("https://app.example", false),
        ("https://spa.example.evil.test", false),
        ("null", false),
    ] {
        let answer = http
            .post(app.url("/token"))
            .header("Origin", origin)
            .form(&[("grant_type", "refresh_token"), ("refresh_token", "x")])
            .send()
            .await
            .unwrap();
        let acao = answer
            .headers()
            .get("access-control-allow-origin")
            .map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(acao.is_some(), allowed, "{origin}: {acao:?}");
    }
    let page = http
        .get(app.url("/authorize"))
        .header("Origin", "https://spa.example")
        .send()
        .await
        .unwrap();
    assert!(
        page.headers().get("access-control-allow-origin").is_none(),
        "no CORS on pages"
    );
}

// ---------------------------------------------------------------------------------------------
// M67, F40, M69: brute-force protection.

#[tokio::test]
async fn m67_failed_logins_slow_down_then_answer_429_and_recover() {
    let app = spawn_app().await;
    app.user("alice").await;
    let client = app.client().await;
    let browser = Browser::new();
    let started = start(&app, &browser, &client, "openid", &[]).await;
    let page = browser.follow(&app, &started).await;
    for attempt in 1..=5 {
        let wrong = browser
            .submit(
                &app,
                &page,
                "/login",
                &[("username", "alice"), ("password", "wrong")],
            )
            .await;
        assert_eq!(wrong.status, StatusCode::OK, "attempt {attempt} is free");
    }
    let sixth = browser
        .submit(
            &app,
            &page,
            "/login",
            &[("username", "alice"), ("password", "wrong")],
        )
        .await;
    assert_eq!(
        sixth.status,
        StatusCode::OK,
        "the sixth failure is counted, then waits start"
    );
    let waiting = browser
        .submit(
            &app,
            &page,
            "/login",
            &[("username", "alice"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(
        waiting.status,
        StatusCode::TOO_MANY_REQUESTS,
        "not even the right password is checked"
    );
    assert_eq!(waiting.header("retry-after"), Some("1"));
    assert!(waiting.body.contains("Try again in 1 seconds"));
    app.clock.advance(2);
    let after = browser
        .submit(
            &app,
            &page,
            "/login",
            &[("username", "alice"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(
        after.status,
        StatusCode::SEE_OTHER,
        "after the wait the right password works"
    );
}

#[tokio::test]
async fn f40_m69_failed_client_authentication_is_throttled_per_client() {
    let app = spawn_app().await;
    let client = app.client().await;
    let other = app.client().await;
    let wrong = TestClient {
        secret: Some("wrong".into()),
        ..client.clone()
    };
    let form = [("grant_type", "refresh_token"), ("refresh_token", "x")];
    for _ in 0..6 {
        assert_eq!(
            token(&app, &wrong, &form).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    let throttled = token(&app, &client, &form).await;
    assert_eq!(throttled.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(throttled.header("retry-after").is_some());
    assert_eq!(throttled.header("cache-control"), Some("no-store"));
    assert_eq!(throttled.json()["error"], "temporarily_unavailable");
    let unaffected = token(&app, &other, &form).await;
    assert_eq!(
        unaffected.json()["error"],
        "invalid_grant",
        "another client is not slowed"
    );
    app.clock.advance(2);
    assert_eq!(
        token(&app, &client, &form).await.json()["error"],
        "invalid_grant",
        "the wait ends"
    );
}
