//! Login and consent pages (SECURITY-CHECKLIST sections B and C).

use reqwest::StatusCode;

use crate::helpers::*;

async fn start(
    app: &TestApp,
    browser: &Browser,
    client: &TestClient,
    scope: &str,
    extra: &[(&str, &str)],
) -> Answer {
    authorize_request(app, browser, client, scope, "st", extra).await
}

#[tokio::test]
async fn login_page_has_the_contract_form() {
    let app = spawn_app().await;
    let client = app.client().await;
    let browser = Browser::new();
    let page = browser
        .follow(&app, &start(&app, &browser, &client, "openid", &[]).await)
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.body.matches("<form method=\"post\"").count(), 1);
    assert!(page.body.contains("name=\"username\"") && page.body.contains("name=\"password\""));
    assert!(page.body.contains("Test App"), "the page names the client");
}

#[tokio::test]
async fn b14_login_without_the_csrf_token_or_from_another_origin_is_refused() {
    let app = spawn_app().await;
    app.user("alice").await;
    let client = app.client().await;
    let browser = Browser::new();
    let page = browser
        .follow(&app, &start(&app, &browser, &client, "openid", &[]).await)
        .await;
    let flow = page
        .hidden_inputs()
        .into_iter()
        .find(|(k, _)| k == "flow")
        .unwrap()
        .1;
    let without_token = browser
        .post_form(
            &app.url("/login"),
            &[
                ("flow".into(), flow.clone()),
                ("username".into(), "alice".into()),
                ("password".into(), PASSWORD.into()),
            ],
        )
        .await;
    assert_eq!(without_token.status, StatusCode::FORBIDDEN);
    let wrong_token = browser
        .post_form(
            &app.url("/login"),
            &[
                ("flow".into(), flow.clone()),
                ("csrf_token".into(), "x".repeat(43)),
                ("username".into(), "alice".into()),
                ("password".into(), PASSWORD.into()),
            ],
        )
        .await;
    assert_eq!(wrong_token.status, StatusCode::FORBIDDEN);
    let mut form = page.hidden_inputs();
    form.push(("username".into(), "alice".into()));
    form.push(("password".into(), PASSWORD.into()));
    let cross_site = browser
        .http
        .post(app.url("/login"))
        .header("Origin", "https://evil.test")
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(cross_site.status(), StatusCode::FORBIDDEN);
    let cross_fetch = browser
        .http
        .post(app.url("/login"))
        .header("Sec-Fetch-Site", "cross-site")
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(cross_fetch.status(), StatusCode::FORBIDDEN);
    let other_browser = Browser::new().post_form(&app.url("/login"), &form).await;
    assert_eq!(
        other_browser.status,
        StatusCode::BAD_REQUEST,
        "a flow is bound to the browser that started it"
    );
    let ok = browser.post_form(&app.url("/login"), &form).await;
    assert_eq!(
        ok.status,
        StatusCode::SEE_OTHER,
        "nothing was changed by the refused attempts"
    );
}

#[tokio::test]
async fn b15_b16_login_sets_a_fresh_httponly_lax_session_cookie() {
    let app = spawn_app().await;
    app.user("alice").await;
    let client = app.client().await;
    let browser = Browser::new();
    let started = start(&app, &browser, &client, "openid", &[]).await;
    let logged_in = browser.login(&app, &started, "alice", PASSWORD).await;
    let cookie = logged_in.header("set-cookie").unwrap();
    assert!(cookie.starts_with("latchkey_session="), "{cookie}");
    let value = cookie.split(';').next().unwrap().split('=').nth(1).unwrap();
    assert!(value.len() >= 43, "256-bit session id");
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(attribute), "{attribute} in {cookie}");
    }
    assert!(!cookie.contains("Domain"), "{cookie}");
    let again = Browser::new();
    let second = again
        .login(
            &app,
            &start(&app, &again, &client, "openid", &[]).await,
            "alice",
            PASSWORD,
        )
        .await;
    assert_ne!(
        second.header("set-cookie").unwrap(),
        cookie,
        "every login gets a new session id"
    );
}

#[tokio::test]
async fn b16_https_issuer_uses_host_prefixed_secure_cookies() {
    let app = spawn_app_with(|s| latchkey::service::Settings {
        issuer: "https://as.test".into(),
        ..s
    })
    .await;
    let client = app.client().await;
    let browser = Browser::new();
    let started = start(&app, &browser, &client, "openid", &[]).await;
    let cookie = started.header("set-cookie").unwrap();
    assert!(cookie.starts_with("__Host-latchkey_browser="), "{cookie}");
    assert_eq!(
        started.header("strict-transport-security"),
        Some("max-age=31536000"),
        "L61: HSTS under https"
    );
    assert!(
        cookie.contains("Secure") && cookie.contains("HttpOnly") && cookie.contains("Path=/"),
        "{cookie}"
    );
    assert!(started.location().is_some_and(|l| l.starts_with("/login")));
}

#[tokio::test]
async fn b19_unknown_user_and_wrong_password_look_the_same() {
    let app = spawn_app().await;
    app.user("alice").await;
    let client = app.client().await;
    let browser = Browser::new();
    let started = start(&app, &browser, &client, "openid", &[]).await;
    let page = browser.follow(&app, &started).await;
    let wrong = browser
        .submit(
            &app,
            &page,
            "/login",
            &[("username", "alice"), ("password", "wrong")],
        )
        .await;
    let unknown = browser
        .submit(
            &app,
            &page,
            "/login",
            &[("username", "nobody"), ("password", "wrong")],
        )
        .await;
    let case = browser
        .submit(
            &app,
            &page,
            "/login",
            &[
                ("username", "alice"),
                ("password", &PASSWORD.to_uppercase()),
            ],
        )
        .await;
    for answer in [&wrong, &unknown, &case] {
        assert_eq!(answer.status, StatusCode::OK);
        assert!(
            answer
                .body
                .contains("The username or password is incorrect.")
        );
        assert!(
            answer.header("set-cookie").is_none(),
            "no session on failure"
        );
    }
    assert_eq!(
        wrong.body.replace("alice", "nobody"),
        unknown.body,
        "same page apart from the echoed username"
    );
}

#[tokio::test]
async fn b18_disabled_user_cannot_log_in() {
    let app = spawn_app().await;
    app.user("alice").await;
    latchkey::service::admin::disable_user(app.store.as_ref(), "alice", 0)
        .await
        .unwrap();
    let client = app.client().await;
    let browser = Browser::new();
    let answer = browser
        .login(
            &app,
            &start(&app, &browser, &client, "openid", &[]).await,
            "alice",
            PASSWORD,
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(
        answer
            .body
            .contains("The username or password is incorrect.")
    );
}

#[tokio::test]
async fn consent_page_names_the_client_the_host_and_each_scope() {
    let app = spawn_app().await;
    app.user("alice").await;
    let client = app.client().await;
    let browser = Browser::new();
    let logged_in = browser
        .login(
            &app,
            &start(&app, &browser, &client, "openid email", &[]).await,
            "alice",
            PASSWORD,
        )
        .await;
    let page = browser.follow(&app, &logged_in).await;
    assert!(page.body.contains("Test App"));
    assert!(page.body.contains("app.example"));
    assert!(page.body.contains("see your email address") && page.body.contains("know who you are"));
    assert!(
        !page.body.contains("offline_access"),
        "only the requested scopes are listed"
    );
    assert!(
        page.body.contains("name=\"decision\" value=\"allow\"")
            && page.body.contains("name=\"decision\" value=\"deny\"")
    );
}

#[tokio::test]
async fn deny_redirects_access_denied_with_state_and_iss() {
    let app = spawn_app().await;
    app.user("alice").await;
    let client = app.client().await;
    let browser = Browser::new();
    let logged_in = browser
        .login(
            &app,
            &start(&app, &browser, &client, "openid", &[]).await,
            "alice",
            PASSWORD,
        )
        .await;
    let denied = browser.consent(&app, &logged_in, "deny").await;
    assert_eq!(denied.status, StatusCode::SEE_OTHER);
    let params = denied.redirect_params();
    assert_eq!(params["error"], "access_denied");
    assert_eq!(params["state"], "st");
    assert_eq!(params["iss"], app.base);
    assert!(!params.contains_key("code"));
}

#[tokio::test]
async fn c21_consent_ignores_posted_scopes_and_is_single_use() {
    let app = spawn_app().await;
    app.user("alice").await;
    let client = app.client().await;
    let browser = Browser::new();
    let logged_in = browser
        .login(
            &app,
            &start(&app, &browser, &client, "openid", &[]).await,
            "alice",
            PASSWORD,
        )
        .await;
    let page = browser.follow(&app, &logged_in).await;
    let allowed = browser
        .submit(
            &app,
            &page,
            "/consent",
            &[
                ("decision", "allow"),
                ("scope", "openid profile email offline_access"),
                ("client_id", "other"),
            ],
        )
        .await;
    assert_eq!(allowed.status, StatusCode::SEE_OTHER);
    let code = allowed.redirect_params()["code"].clone();
    assert!(!code.is_empty());
    let replay = browser
        .submit(&app, &page, "/consent", &[("decision", "allow")])
        .await;
    assert!(
        replay.is_error_page(),
        "a consent challenge is single-use: {}",
        replay.status
    );
    let get_approval = browser
        .get(&app.url("/consent?flow=x&decision=allow"))
        .await;
    assert!(get_approval.location().is_none(), "approval is never a GET");
}

#[tokio::test]
async fn c22_remembered_consent_covers_only_the_same_or_narrower_scopes() {
    let app = spawn_app().await;
    app.user("alice").await;
    let client = app.client().await;
    let other = app.client().await;
    let browser = Browser::new();
    browser_flow(&app, &browser, &client, "alice", "openid profile").await;
    let narrower = start(&app, &browser, &client, "openid", &[]).await;
    assert!(
        narrower.location().unwrap().starts_with(CB),
        "no page for a covered request"
    );
    assert!(narrower.redirect_params().contains_key("code"));
    let wider = start(&app, &browser, &client, "openid email", &[]).await;
    assert!(wider.location().unwrap().starts_with("/consent"));
    let page = browser.follow(&app, &wider).await;
    assert!(
        page.body
            .contains("access before. It now asks for more, so this extends the earlier grant"),
        "the page says a grant is extended"
    );
    let forced = start(&app, &browser, &client, "openid", &[("prompt", "consent")]).await;
    assert!(forced.location().unwrap().starts_with("/consent"));
    let other_client = start(&app, &browser, &other, "openid", &[]).await;
    assert!(other_client.location().unwrap().starts_with("/consent"));
}

#[tokio::test]
async fn b20_prompt_none_and_prompt_login() {
    let app = spawn_app().await;
    app.user("alice").await;
    let client = app.client().await;
    let fresh = Browser::new();
    let none = start(&app, &fresh, &client, "openid", &[("prompt", "none")]).await;
    let params = none.redirect_params();
    assert_eq!(params["error"], "login_required");
    assert_eq!(
        (params["state"].as_str(), params["iss"].as_str()),
        ("st", app.base.as_str())
    );

    let browser = Browser::new();
    browser_flow(&app, &browser, &client, "alice", "openid").await;
    let silent = start(&app, &browser, &client, "openid", &[("prompt", "none")]).await;
    assert!(
        silent.redirect_params().contains_key("code"),
        "logged in and consented: a code without UI"
    );
    let needs_consent = start(
        &app,
        &browser,
        &client,
        "openid email",
        &[("prompt", "none")],
    )
    .await;
    assert_eq!(needs_consent.redirect_params()["error"], "consent_required");
    let relogin = start(&app, &browser, &client, "openid", &[("prompt", "login")]).await;
    assert!(
        relogin.location().unwrap().starts_with("/login"),
        "prompt=login shows the login page despite the session"
    );
    let bad_uri = fresh
        .authorize(
            &app,
            &[
                ("response_type", "code"),
                ("client_id", &client.id),
                ("redirect_uri", "https://evil.test/"),
                ("prompt", "none"),
            ],
        )
        .await;
    assert!(bad_uri.is_error_page());
}

#[tokio::test]
async fn c24_l63_pages_cannot_be_framed_and_send_hardening_headers() {
    let app = spawn_app().await;
    app.user("alice").await;
    let client = app.client().await;
    let browser = Browser::new();
    let started = start(&app, &browser, &client, "openid", &[]).await;
    let login = browser.follow(&app, &started).await;
    let logged_in = browser.login(&app, &started, "alice", PASSWORD).await;
    let consent = browser.follow(&app, &logged_in).await;
    let error = browser.authorize(&app, &[("client_id", "nope")]).await;
    for (name, page) in [("login", &login), ("consent", &consent), ("error", &error)] {
        assert_eq!(page.header("x-frame-options"), Some("DENY"), "{name}");
        let csp = page.header("content-security-policy").unwrap_or_default();
        for directive in [
            "frame-ancestors 'none'",
            "base-uri 'none'",
            "object-src 'none'",
        ] {
            assert!(csp.contains(directive), "{name}: {csp}");
        }
        assert!(!csp.contains("unsafe-inline"), "{name}");
        assert_eq!(
            page.header("x-content-type-options"),
            Some("nosniff"),
            "{name}"
        );
        assert_eq!(
            page.header("referrer-policy"),
            Some("no-referrer"),
            "{name}"
        );
        assert_eq!(page.header("cache-control"), Some("no-store"), "{name}");
        assert!(
            page.header("access-control-allow-origin").is_none(),
            "{name}: no CORS on pages"
        );
    }
}

#[tokio::test]
async fn c25_client_name_is_escaped_on_the_consent_page() {
    let app = spawn_app().await;
    app.user("alice").await;
    let client = app
        .register(latchkey::service::admin::NewClient::new(
            "</script><img src=x onerror=alert(1)>",
            CB,
        ))
        .await;
    let browser = Browser::new();
    let started = start(&app, &browser, &client, "openid", &[]).await;
    let login = browser.follow(&app, &started).await;
    let logged_in = browser.login(&app, &started, "alice", PASSWORD).await;
    let consent = browser.follow(&app, &logged_in).await;
    for page in [&login, &consent] {
        assert!(!page.body.contains("<img"), "{}", page.body);
        assert!(
            page.body.contains("img src=x onerror=alert(1)"),
            "the name is shown, escaped"
        );
    }
}

#[tokio::test]
async fn a11_login_and_consent_posts_answer_303() {
    let app = spawn_app().await;
    app.user("alice").await;
    let client = app.client().await;
    let browser = Browser::new();
    let logged_in = browser
        .login(
            &app,
            &start(&app, &browser, &client, "openid", &[]).await,
            "alice",
            PASSWORD,
        )
        .await;
    assert_eq!(logged_in.status, StatusCode::SEE_OTHER);
    let allowed = browser.consent(&app, &logged_in, "allow").await;
    assert_eq!(allowed.status, StatusCode::SEE_OTHER);
}
