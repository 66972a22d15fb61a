//! `/playground` (issue 7 item 4): demo mode only; the sample client runs the flow with its
//! secret and tokens on the server, checks `state`, and refuses forged step posts.

use reqwest::StatusCode;

use crate::cli::{Db, Server, run_bounded};
use crate::helpers::*;

/// A demo server whose demo user's password is [`PASSWORD`].
fn demo_server(db: &Db) -> Server {
    let server = Server::spawn(db.command(&["serve", "--demo", "--bind", "127.0.0.1:0"]));
    let out = run_bounded(
        db.command(&["user", "set-password", "demo"]),
        &format!("{PASSWORD}\n"),
    );
    assert!(out.status.success(), "set-password");
    server
}

/// The `href` of the element with `id`, unescaped.
fn href_of(page: &Answer, id: &str) -> String {
    let at = page.body.find(&format!("id=\"{id}\"")).expect(id);
    let tag_start = page.body[..at].rfind('<').unwrap();
    let tag = &page.body[tag_start..at + 200.min(page.body.len() - at)];
    let start = tag.find("href=\"").expect("href") + 6;
    let end = tag[start..].find('"').unwrap() + start;
    unescape_html(&tag[start..end])
}

/// From the playground page: the authorization request, login and consent, back to the
/// callback; returns the playground page after it.
async fn run_to_callback(app: &TestApp, browser: &Browser) -> Answer {
    let started = browser.post_form(&app.url("/playground/start"), &[]).await;
    assert_eq!(started.status, StatusCode::SEE_OTHER);
    let page = browser.get(&app.url("/playground")).await;
    let authorize = href_of(&page, "send-authorization-request");
    assert!(
        authorize.contains("client_id=latchkey-playground"),
        "{authorize}"
    );
    assert!(
        authorize.contains("code_challenge_method=S256"),
        "{authorize}"
    );
    let to_login = browser.get(&authorize).await;
    let to_consent = browser.login(app, &to_login, "demo", PASSWORD).await;
    let back = browser.consent(app, &to_consent, "allow").await;
    let callback = back
        .location()
        .expect("redirect to the callback")
        .to_owned();
    assert!(
        callback.starts_with(&app.url("/playground/callback?code=")),
        "{callback}"
    );
    let done = browser.get(&callback).await;
    assert_eq!(done.location(), Some("/playground#code"));
    browser.get(&app.url("/playground")).await
}

fn csrf(page: &Answer) -> Vec<(String, String)> {
    page.hidden_inputs()
        .into_iter()
        .filter(|(name, _)| name == "csrf_token")
        .take(1)
        .collect()
}

#[tokio::test]
async fn the_playground_runs_the_flow_to_userinfo_with_secrets_kept_on_the_server() {
    let db = Db::new();
    let server = demo_server(&db);
    let app = TestApp::attach(server.base.clone(), &db.url).await;
    let browser = Browser::new();
    let page = run_to_callback(&app, &browser).await;
    assert!(page.body.contains("state</code> matches"), "{}", page.body);

    let exchanged = browser
        .post_form(&app.url("/playground/exchange"), &csrf(&page))
        .await;
    assert_eq!(exchanged.location(), Some("/playground#token"));
    let page = browser.get(&app.url("/playground")).await;
    assert!(
        page.body.contains("POST &#x2f;token HTTP&#x2f;1.1"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("Answer: <strong>200</strong>"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("&quot;typ&quot;: &quot;at+jwt&quot;"),
        "decoded header"
    );
    assert!(
        page.body
            .contains("&quot;client_id&quot;: &quot;latchkey-playground&quot;")
    );
    assert!(page.body.contains("nonce</code> the request sent"));

    let page_csrf = csrf(&page);
    browser
        .post_form(&app.url("/playground/refresh"), &page_csrf)
        .await;
    browser
        .post_form(&app.url("/playground/userinfo"), &page_csrf)
        .await;
    let page = browser.get(&app.url("/playground")).await;
    assert!(
        page.body.contains("grant_type=refresh_token"),
        "{}",
        page.body
    );
    assert!(page.body.contains("demo@example.com"), "{}", page.body);
    // No whole JWT (header.claims.signature), no client_secret parameter, no refresh token.
    let jwt_like = page
        .body
        .split(|c: char| !(c.is_ascii_alphanumeric() || "-_.".contains(c)));
    for word in jwt_like {
        assert!(
            !(word.starts_with("eyJ") && word.matches('.').count() == 2),
            "a whole JWT on the page: {word}"
        );
    }
    assert!(!page.body.contains("client_secret="));
    assert!(
        page.body
            .contains("refresh_token&quot;: &quot;[redacted: 43 characters")
    );
}

#[tokio::test]
async fn forged_steps_and_a_foreign_state_are_refused() {
    let db = Db::new();
    let server = demo_server(&db);
    let app = TestApp::attach(server.base.clone(), &db.url).await;
    let browser = Browser::new();
    let page = run_to_callback(&app, &browser).await;
    // A step posted without the page's CSRF token does nothing.
    let forged = vec![("csrf_token".to_owned(), "forged".to_owned())];
    browser
        .post_form(&app.url("/playground/exchange"), &forged)
        .await;
    let after = browser.get(&app.url("/playground")).await;
    assert!(
        !after.body.contains("Answer: <strong>"),
        "no exchange happened"
    );
    assert!(after.body.contains("id=\"exchange\""));
    // Another browser without a run gets nothing done either.
    let stranger = Browser::new();
    stranger
        .post_form(&app.url("/playground/exchange"), &csrf(&page))
        .await;
    assert!(
        !browser
            .get(&app.url("/playground"))
            .await
            .body
            .contains("Answer: <strong>")
    );

    // A response whose state is not this run's is flagged, as a client must.
    let code = browser
        .get(&app.url("/playground/callback?code=abc&state=not-mine"))
        .await;
    assert_eq!(code.status, StatusCode::SEE_OTHER);
    let page = browser.get(&app.url("/playground")).await;
    assert!(page.body.contains("state does not match"), "{}", page.body);
    // ... and not exchanged: no button, and a post does nothing.
    assert!(!page.body.contains("id=\"exchange\""));
    browser
        .post_form(&app.url("/playground/exchange"), &csrf(&page))
        .await;
    let after = browser.get(&app.url("/playground")).await;
    assert!(
        !after.body.contains("Answer: <strong>"),
        "no exchange of a foreign code"
    );

    // A cross-site post is refused outright.
    let cross_site = reqwest::Client::new()
        .post(app.url("/playground/start"))
        .header("origin", "https://evil.example")
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(cross_site.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_playground_exists_only_in_demo_mode() {
    let app = spawn_app().await;
    for path in ["/playground", "/playground/callback"] {
        let answer = reqwest::get(app.url(path)).await.unwrap();
        assert_eq!(answer.status(), StatusCode::NOT_FOUND, "{path}");
    }
    let start = reqwest::Client::new()
        .post(app.url("/playground/start"))
        .send()
        .await
        .unwrap();
    assert_eq!(start.status(), StatusCode::NOT_FOUND);
}
