//! Logs never hold a secret: the real binary at the most verbose level, driven through the
//! whole flow and its failure paths (issue 3 item 13, checklist item 71).

use std::time::Duration;

use reqwest::StatusCode;

use crate::cli::{Db, Server};
use crate::helpers::*;

#[tokio::test]
async fn n71_no_secret_reaches_the_logs_at_trace_level() {
    let db = Db::new();
    let mut serve = db.command(&["serve", "--bind", "127.0.0.1:0"]);
    serve.env("LATCHKEY_LOG", "trace");
    let mut server = Server::spawn(serve);
    let app = TestApp::attach(server.base.clone(), &db.url).await;
    app.user("alice").await;
    let client = app.client().await;

    let flow = flow(&app, &client, "alice", "openid offline_access").await;
    let body = exchange(&app, &client, &flow.code, &flow.verifier)
        .await
        .json();
    let access_token = body["access_token"].as_str().unwrap().to_owned();
    let refresh_token = body["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(userinfo(&app, &access_token).await.status, StatusCode::OK);
    let rotated = refresh(&app, &client, &refresh_token).await.json();
    // Failure paths: replayed code, reused refresh token, wrong secret, wrong password.
    exchange(&app, &client, &flow.code, &flow.verifier).await;
    refresh(&app, &client, &refresh_token).await;
    let wrong = TestClient {
        secret: Some("WRONG-SECRET-CANARY-0123456789abcdefghijklmno".into()),
        ..client.clone()
    };
    exchange(
        &app,
        &wrong,
        "CODE-CANARY",
        "VERIFIER-CANARY-0123456789abcdefghijklmnopqrstuvwxyz",
    )
    .await;
    let browser = Browser::new();
    let (_, challenge) = pkce_pair();
    let started = browser
        .authorize(
            &app,
            &[
                ("response_type", "code"),
                ("client_id", &client.id),
                ("redirect_uri", CB),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
            ],
        )
        .await;
    browser
        .login(&app, &started, "alice", "PASSWORD-CANARY")
        .await;
    userinfo(&app, &format!("{access_token}x")).await;

    assert!(server.terminate().success());
    let mut logs = String::new();
    while let Ok(line) = server.lines.recv_timeout(Duration::from_secs(5)) {
        logs.push_str(&line);
        logs.push('\n');
    }
    assert!(
        logs.contains("code_redeemed"),
        "the log was captured at all"
    );
    let secrets = [
        ("password", PASSWORD.to_owned()),
        ("wrong password", "PASSWORD-CANARY".to_owned()),
        ("client secret", client.secret.clone().unwrap()),
        ("wrong secret", "WRONG-SECRET-CANARY".to_owned()),
        ("code", flow.code.clone()),
        ("code canary", "CODE-CANARY".to_owned()),
        ("verifier", flow.verifier.clone()),
        ("verifier canary", "VERIFIER-CANARY".to_owned()),
        ("access token", access_token.clone()),
        (
            "access token signature",
            access_token.rsplit('.').next().unwrap().to_owned(),
        ),
        ("refresh token", refresh_token.clone()),
        (
            "rotated refresh token",
            rotated["refresh_token"].as_str().unwrap().to_owned(),
        ),
    ];
    for (name, secret) in secrets {
        assert!(!logs.contains(&secret), "the {name} appears in the logs");
    }
}

/// Checklist item 62: `X-Forwarded-For` names the client only when the peer is a configured
/// proxy; otherwise the peer's own address is what logs and audit events record.
#[tokio::test]
async fn l62_forwarded_for_is_believed_only_from_a_trusted_proxy() {
    for (trusted, expected) in [
        (false, "client_ip=127.0.0.1"),
        (true, "client_ip=203.0.113.7"),
    ] {
        let db = Db::new();
        let mut serve = db.command(&["serve", "--bind", "127.0.0.1:0"]);
        serve.env("LATCHKEY_LOG", "info");
        if trusted {
            serve.args(["--trusted-proxy", "127.0.0.1"]);
        }
        let mut server = Server::spawn(serve);
        let app = TestApp::attach(server.base.clone(), &db.url).await;
        let client = app.client().await;
        let browser = Browser::new();
        let started = authorize_request(&app, &browser, &client, "openid", "s", &[]).await;
        let page = browser.follow(&app, &started).await;
        let mut form = page.hidden_inputs();
        form.push(("username".into(), "nobody".into()));
        form.push(("password".into(), "wrong".into()));
        let answer = browser
            .http
            .post(app.url("/login"))
            .header("X-Forwarded-For", "198.51.100.1, 203.0.113.7")
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::OK);
        assert!(server.terminate().success());
        let mut logs = String::new();
        while let Ok(line) = server.lines.recv_timeout(Duration::from_secs(5)) {
            logs.push_str(&line);
            logs.push('\n');
        }
        let failure = logs
            .lines()
            .find(|l| l.contains("login_failed"))
            .expect("an audit event for the failed login");
        assert!(failure.contains(expected), "trusted={trusted}: {failure}");
    }
}
