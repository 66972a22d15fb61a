//! The account page: users list and withdraw their grants (checklist item 23) and sign out
//! (checklist item 17).

use reqwest::StatusCode;

use crate::helpers::*;

async fn account_page(app: &TestApp, browser: &Browser) -> Answer {
    let page = browser.get(&app.url("/account")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    page
}

async fn start(app: &TestApp, browser: &Browser, client: &TestClient) -> Answer {
    let (_, challenge) = pkce_pair();
    browser
        .authorize(
            app,
            &[
                ("response_type", "code"),
                ("client_id", &client.id),
                ("redirect_uri", &client.redirect_uri),
                ("scope", "openid"),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
            ],
        )
        .await
}

#[tokio::test]
async fn c23_users_list_and_revoke_their_grants_which_revokes_the_clients_tokens() {
    let app = spawn_app().await;
    app.user("alice").await;
    let client = app.client().await;
    let flow = flow(&app, &client, "alice", "openid offline_access").await;
    let body = exchange(&app, &client, &flow.code, &flow.verifier)
        .await
        .json();
    let browser = flow.browser;

    let page = account_page(&app, &browser).await;
    assert!(
        page.body.contains("Test App") && page.body.contains("alice"),
        "{}",
        page.body
    );
    let form = page
        .body
        .split("action=\"/account/revoke\"")
        .nth(1)
        .expect("a revoke form");
    assert!(form.contains(&client.id));
    let revoked = browser.submit(&app, &page, "/account/revoke", &[]).await;
    assert_eq!(revoked.status, StatusCode::SEE_OTHER);
    assert_eq!(revoked.location(), Some("/account"));

    assert_eq!(
        refresh(&app, &client, body["refresh_token"].as_str().unwrap())
            .await
            .json()["error"],
        "invalid_grant"
    );
    assert_eq!(
        userinfo(&app, body["access_token"].as_str().unwrap())
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let after = account_page(&app, &browser).await;
    assert!(
        !after.body.contains("Test App"),
        "the grant is gone from the list"
    );
    let again = start(&app, &browser, &client).await;
    assert!(
        again.location().unwrap().starts_with("/consent"),
        "consent is asked again"
    );
}

#[tokio::test]
async fn c23_revoke_needs_the_csrf_token_and_a_session() {
    let app = spawn_app().await;
    app.user("alice").await;
    let client = app.client().await;
    let flow = flow(&app, &client, "alice", "openid").await;
    let browser = flow.browser;
    let page = account_page(&app, &browser).await;
    let forged = browser
        .post_form(
            &app.url("/account/revoke"),
            &[("client_id".into(), client.id.clone())],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let stranger = Browser::new();
    let no_session = stranger.submit(&app, &page, "/account/revoke", &[]).await;
    assert_eq!(
        no_session.status,
        StatusCode::FORBIDDEN,
        "another browser has neither cookie"
    );
    assert!(
        account_page(&app, &browser).await.body.contains("Test App"),
        "nothing was revoked"
    );
}

#[tokio::test]
async fn account_sign_in_works_without_an_authorization_request() {
    let app = spawn_app().await;
    app.user("alice").await;
    let browser = Browser::new();
    let page = account_page(&app, &browser).await;
    assert!(page.body.contains("name=\"password\""));
    let wrong = browser
        .submit(
            &app,
            &page,
            "/account/login",
            &[("username", "alice"), ("password", "nope")],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::OK);
    assert!(
        wrong
            .body
            .contains("The username or password is incorrect.")
    );
    let signed_in = browser
        .submit(
            &app,
            &page,
            "/account/login",
            &[("username", "alice"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(signed_in.status, StatusCode::SEE_OTHER);
    let grants = account_page(&app, &browser).await;
    assert!(
        grants
            .body
            .contains("You have not allowed any application access.")
    );
}

#[tokio::test]
async fn b17_logout_ends_the_session_on_the_server() {
    let app = spawn_app().await;
    app.user("alice").await;
    let client = app.client().await;
    let flow = flow(&app, &client, "alice", "openid").await;
    let browser = flow.browser;
    let page = account_page(&app, &browser).await;
    let old_cookies = browser.cookie_header(&app);
    assert!(old_cookies.contains("latchkey_session="));

    let without_token = browser.post_form(&app.url("/logout"), &[]).await;
    assert_eq!(without_token.status, StatusCode::FORBIDDEN);
    let out = browser.submit(&app, &page, "/logout", &[]).await;
    assert_eq!(out.status, StatusCode::OK);
    assert!(out.body.contains("You are signed out"));
    assert!(
        out.header("set-cookie")
            .unwrap()
            .contains("latchkey_session=;")
    );

    let (_, challenge) = pkce_pair();
    let url = url::Url::parse_with_params(
        &app.url("/authorize"),
        &[
            ("response_type", "code"),
            ("client_id", client.id.as_str()),
            ("redirect_uri", CB),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ],
    )
    .unwrap();
    let replayed = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(url.as_str())
        .header("Cookie", old_cookies)
        .send()
        .await
        .unwrap();
    let location = replayed.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.starts_with("/login"),
        "the old session cookie is useless: {location}"
    );
}
