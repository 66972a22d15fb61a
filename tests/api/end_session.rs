//! OpenID Connect RP-Initiated Logout 1.0 (issue 8 item 3): the session ends; the browser goes
//! back only to a `post_logout_redirect_uri` registered for the client, with `state`; without
//! proof that the logout comes from the signed-in user's client, the user confirms first.

use latchkey::service::admin::NewClient;
use reqwest::StatusCode;

use crate::helpers::*;

const LOGGED_OUT: &str = "https://app.example/logged-out";

async fn oidc_client(app: &TestApp) -> TestClient {
    app.register(NewClient {
        post_logout_redirect_uris: vec![LOGGED_OUT.to_owned()],
        ..NewClient::new("Relying Party", CB)
    })
    .await
}

/// Signs `alice` in through `client` and returns the browser and the ID token.
async fn signed_in(app: &TestApp, client: &TestClient) -> (Browser, String) {
    let flow = flow(app, client, "alice", "openid").await;
    let body = exchange(app, client, &flow.code, &flow.verifier)
        .await
        .json();
    let id_token = body["id_token"].as_str().expect("an id_token").to_owned();
    (flow.browser, id_token)
}

/// Whether the browser still has a live session: `prompt=none` answers with a code, or with
/// `login_required` once the session is gone.
async fn has_session(app: &TestApp, browser: &Browser, client: &TestClient) -> bool {
    let answer =
        authorize_request(app, browser, client, "openid", "s", &[("prompt", "none")]).await;
    let params = answer.redirect_params();
    match params.get("error").map(String::as_str) {
        Some("login_required") => false,
        None if params.contains_key("code") => true,
        other => panic!(
            "unexpected answer to prompt=none: {other:?} {:?}",
            answer.location()
        ),
    }
}

fn end_session_url(app: &TestApp, pairs: &[(&str, &str)]) -> String {
    url::Url::parse_with_params(&app.url("/end_session"), pairs)
        .unwrap()
        .into()
}

/// §2 and §3: with a valid `id_token_hint` for the signed-in user and a registered
/// `post_logout_redirect_uri`, the session ends at once and the browser goes back with
/// `state`; the discovery document names the endpoint.
#[tokio::test]
async fn logout_with_id_token_hint_ends_the_session_and_returns_with_state() {
    let app = spawn_app().await;
    app.user("alice").await;
    let client = oidc_client(&app).await;
    let (browser, id_token) = signed_in(&app, &client).await;
    assert!(has_session(&app, &browser, &client).await);

    let answer = browser
        .get(&end_session_url(
            &app,
            &[
                ("id_token_hint", &id_token),
                ("post_logout_redirect_uri", LOGGED_OUT),
                ("state", "bye-123"),
            ],
        ))
        .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    assert_eq!(
        answer.location(),
        Some(format!("{LOGGED_OUT}?state=bye-123").as_str())
    );
    assert!(
        !has_session(&app, &browser, &client).await,
        "the session ended"
    );
    let metadata = app.metadata().await;
    assert_eq!(metadata["end_session_endpoint"], app.url("/end_session"));
}

/// §3.1: a `post_logout_redirect_uri` that is not registered for the client (or a request
/// that names no client) gets an error page, never a redirect, and the session stays.
#[tokio::test]
async fn unregistered_post_logout_redirect_uri_is_an_error_page() {
    let app = spawn_app().await;
    app.user("alice").await;
    let client = oidc_client(&app).await;
    let (browser, id_token) = signed_in(&app, &client).await;
    for pairs in [
        vec![
            ("id_token_hint", id_token.as_str()),
            ("post_logout_redirect_uri", "https://evil.example/"),
        ],
        vec![
            ("id_token_hint", id_token.as_str()),
            (
                "post_logout_redirect_uri",
                "https://app.example/logged-out/",
            ),
        ],
        vec![("post_logout_redirect_uri", LOGGED_OUT)],
        vec![
            ("client_id", "someone-else"),
            ("id_token_hint", id_token.as_str()),
            ("post_logout_redirect_uri", LOGGED_OUT),
        ],
    ] {
        let answer = browser.get(&end_session_url(&app, &pairs)).await;
        assert!(
            answer.is_error_page(),
            "{pairs:?}: {} {:?}",
            answer.status,
            answer.location()
        );
        assert_eq!(answer.location(), None);
    }
    assert!(
        has_session(&app, &browser, &client).await,
        "the session stays"
    );
}

/// §2 (logout CSRF): without an `id_token_hint` for the signed-in user, the user is asked;
/// only the confirmation form, with its CSRF token, ends the session.
#[tokio::test]
async fn logout_without_proof_asks_the_user_first() {
    let app = spawn_app().await;
    app.user("alice").await;
    app.user("bob").await;
    let client = oidc_client(&app).await;
    let (browser, _) = signed_in(&app, &client).await;
    // Bob's ID token is proof for Bob, not for Alice's session.
    let (_, bobs_token) = {
        let flow = flow(&app, &client, "bob", "openid").await;
        let body = exchange(&app, &client, &flow.code, &flow.verifier)
            .await
            .json();
        (flow.browser, body["id_token"].as_str().unwrap().to_owned())
    };
    for pairs in [
        vec![
            ("client_id", client.id.as_str()),
            ("post_logout_redirect_uri", LOGGED_OUT),
        ],
        vec![("id_token_hint", bobs_token.as_str())],
    ] {
        let page = browser.get(&end_session_url(&app, &pairs)).await;
        assert_eq!(page.status, StatusCode::OK, "{pairs:?}");
        assert!(page.body.contains("Sign out?"), "{pairs:?}: {}", page.body);
        assert!(
            has_session(&app, &browser, &client).await,
            "{pairs:?}: not yet"
        );
    }

    let page = browser
        .get(&end_session_url(
            &app,
            &[
                ("client_id", client.id.as_str()),
                ("post_logout_redirect_uri", LOGGED_OUT),
                ("state", "s1"),
            ],
        ))
        .await;
    // A forged confirmation changes nothing.
    let mut forged = page.hidden_inputs();
    for (name, value) in forged.iter_mut() {
        if name == "csrf_token" {
            *value = "forged".to_owned();
        }
    }
    let refused = browser.post_form(&app.url("/end_session"), &forged).await;
    assert_eq!(refused.status, StatusCode::OK);
    assert!(refused.body.contains("Sign out?"));
    assert!(has_session(&app, &browser, &client).await);

    let confirmed = browser.submit(&app, &page, "/end_session", &[]).await;
    assert_eq!(
        confirmed.status,
        StatusCode::SEE_OTHER,
        "{}",
        confirmed.body
    );
    assert_eq!(
        confirmed.location(),
        Some(format!("{LOGGED_OUT}?state=s1").as_str())
    );
    assert!(
        !has_session(&app, &browser, &client).await,
        "confirmed: the session ended"
    );
}

/// Without a session there is nothing to confirm: the signed-out page, or the registered
/// redirect.
#[tokio::test]
async fn logout_without_a_session_shows_the_signed_out_page() {
    let app = spawn_app().await;
    let client = oidc_client(&app).await;
    let browser = Browser::new();
    let page = browser.get(&end_session_url(&app, &[])).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("signed out"), "{}", page.body);
    let back = browser
        .get(&end_session_url(
            &app,
            &[
                ("client_id", client.id.as_str()),
                ("post_logout_redirect_uri", LOGGED_OUT),
            ],
        ))
        .await;
    assert_eq!(back.location(), Some(LOGGED_OUT));
}

/// A client's cross-site POST arrives without the SameSite=Lax session cookie: it is sent on
/// as a top-level GET with the same parameters, which carries the cookie and ends the session.
#[tokio::test]
async fn a_clients_post_is_resent_as_a_get_so_the_session_really_ends() {
    let app = spawn_app().await;
    app.user("alice").await;
    let client = oidc_client(&app).await;
    let (browser, id_token) = signed_in(&app, &client).await;
    let posted = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(app.url("/end_session"))
        .form(&[
            ("id_token_hint", id_token.as_str()),
            ("post_logout_redirect_uri", LOGGED_OUT),
            ("state", "s2"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), StatusCode::SEE_OTHER);
    let location = posted.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with("/end_session?"), "{location}");
    assert!(
        has_session(&app, &browser, &client).await,
        "no cookie came with the POST"
    );
    let answer = browser.get(&app.url(&location)).await;
    assert_eq!(
        answer.location(),
        Some(format!("{LOGGED_OUT}?state=s2").as_str())
    );
    assert!(!has_session(&app, &browser, &client).await);
}

/// An access token is no `id_token_hint`: whoever holds one (a resource server) could
/// otherwise sign its user out without asking.
#[tokio::test]
async fn an_access_token_is_not_accepted_as_id_token_hint() {
    let app = spawn_app().await;
    app.user("alice").await;
    let client = oidc_client(&app).await;
    let flow = flow(&app, &client, "alice", "openid").await;
    let body = exchange(&app, &client, &flow.code, &flow.verifier)
        .await
        .json();
    let access_token = body["access_token"].as_str().unwrap();
    let page = flow
        .browser
        .get(&end_session_url(&app, &[("id_token_hint", access_token)]))
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("Sign out?"),
        "the user is asked: {}",
        page.body
    );
    assert!(has_session(&app, &flow.browser, &client).await);
}
