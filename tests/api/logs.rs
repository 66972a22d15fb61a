//! Logs never hold a secret: the real binary at the most verbose level, driven through the
//! whole flow and its failure paths (issue 3 item 13, checklist item 71).

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

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
    for (trusted, expected) in [(false, "127.0.0.1"), (true, "203.0.113.7")] {
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
        let failure = audit_events(&logs)
            .into_iter()
            .find(|e| e["event"] == "login_failed")
            .expect("an audit event for the failed login");
        assert_eq!(failure["span"]["client_ip"], expected, "trusted={trusted}");
    }
}

/// Every line of `logs` that is an audit event, parsed. Audit events are JSON lines whatever
/// the log format; a line that mentions the target but does not parse fails the test.
fn audit_events(logs: &str) -> Vec<Value> {
    logs.lines()
        .filter(|line| line.contains("\"target\":\"audit\""))
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"))
        })
        .collect()
}

fn drain_logs(server: &mut Server) -> String {
    assert!(server.terminate().success());
    let mut logs = String::new();
    while let Ok(line) = server.lines.recv_timeout(Duration::from_secs(5)) {
        logs.push_str(&line);
        logs.push('\n');
    }
    logs
}

/// The first event named `name`, or a failure listing what was seen.
fn event<'e>(events: &'e [Value], name: &str) -> &'e Value {
    events
        .iter()
        .find(|e| e["event"] == name)
        .unwrap_or_else(|| {
            let seen: Vec<&Value> = events.iter().map(|e| &e["event"]).collect();
            panic!("no `{name}` audit event; seen {seen:?}")
        })
}

/// Checklist item 72, issue 5 item 5: the whole flow and its failure paths each leave an audit
/// event (JSON line, target `audit`) naming the client, the subject where there is one, the
/// client's IP and the request id; an attacker's line break in a username stays inside one
/// escaped JSON string (no forged line); administration from the CLI is audited too.
#[tokio::test]
async fn n72_security_events_are_audited_with_client_subject_ip_and_request_id() {
    let db = Db::new();
    let mut server = Server::spawn(db.command(&["serve", "--bind", "127.0.0.1:0"]));
    let app = TestApp::attach(server.base.clone(), &db.url).await;
    let sub = app.user("alice").await;
    let client = app.client().await;

    // Success path: login, consent, code, exchange, refresh, revocation.
    let first = flow(&app, &client, "alice", "openid offline_access").await;
    let exchanged = exchange(&app, &client, &first.code, &first.verifier).await;
    assert_eq!(exchanged.status, StatusCode::OK);
    let exchange_request_id = exchanged.header("x-request-id").unwrap().to_owned();
    let refresh_token = exchanged.json()["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        refresh(&app, &client, &refresh_token).await.status,
        StatusCode::OK
    );
    // Failure paths: replayed code, reused refresh token, wrong secret, bad verifier,
    // refused consent, wrong password with a forged log line in the username.
    exchange(&app, &client, &first.code, &first.verifier).await;
    refresh(&app, &client, &refresh_token).await;
    let wrong = TestClient {
        secret: Some("not-the-secret".into()),
        ..client.clone()
    };
    exchange(
        &app,
        &wrong,
        "whatever",
        "whatever-verifier-0123456789-0123456789-abc",
    )
    .await;
    let second = flow(&app, &client, "alice", "openid").await;
    let bad_verifier = exchange(&app, &client, &second.code, "x".repeat(43).as_str()).await;
    assert_eq!(bad_verifier.status, StatusCode::BAD_REQUEST);
    let browser = Browser::new();
    let started = authorize_request(&app, &browser, &client, "openid email", "s", &[]).await;
    let to_consent = browser.login(&app, &started, "alice", PASSWORD).await;
    let denied = browser.consent(&app, &to_consent, "deny").await;
    assert_eq!(denied.redirect_params()["error"], "access_denied");
    let forged = "mallory\r\n{\"event\":\"login_succeeded\",\"target\":\"audit\"}";
    let browser = Browser::new();
    let started = authorize_request(&app, &browser, &client, "openid", "s", &[]).await;
    browser.login(&app, &started, forged, "wrong").await;
    let live = tokens(&app, &client, "alice", "openid offline_access").await;
    let revoke = reqwest::Client::new()
        .post(app.url("/revoke"))
        .basic_auth(&client.id, client.secret.as_deref())
        .form(&[("token", live["refresh_token"].as_str().unwrap())])
        .send()
        .await
        .unwrap();
    assert_eq!(revoke.status(), StatusCode::OK);

    let logs = drain_logs(&mut server);
    let events = audit_events(&logs);
    let with_subject = [
        "login_succeeded",
        "consent_given",
        "code_issued",
        "code_redeemed",
        "access_token_issued",
        "token_refreshed",
    ];
    let without_subject = [
        "authorization_code_reuse",
        "refresh_token_reuse_detected",
        "client_auth_failed",
        "code_rejected",
        "consent_refused",
        "login_failed",
        "grant_revoked",
    ];
    for name in with_subject.iter().chain(&without_subject) {
        let e = event(&events, name);
        assert_eq!(e["client_id"], client.id.as_str(), "{name}: {e}");
        assert_eq!(e["span"]["client_ip"], "127.0.0.1", "{name}: {e}");
        let id = e["span"]["request_id"].as_str().unwrap_or_default();
        assert_eq!(id.len(), 36, "{name} carries the request id: {e}");
        if with_subject.contains(name) {
            assert_eq!(e["sub"], sub.as_str(), "{name}: {e}");
        }
    }
    assert_eq!(
        event(&events, "code_redeemed")["span"]["request_id"],
        exchange_request_id.as_str(),
        "the audit event and the response name the same request"
    );
    let injected: Vec<&Value> = events
        .iter()
        .filter(|e| e["event"] == "login_failed" && e["username"] == forged)
        .collect();
    assert_eq!(injected.len(), 1, "the forged username is logged, escaped");
    assert!(
        !logs.lines().any(|l| l.starts_with("{\"event\"")),
        "no forged line"
    );
    let logins: Vec<&Value> = events
        .iter()
        .filter(|e| e["event"] == "login_succeeded")
        .collect();
    assert!(
        logins.iter().all(|e| e["username"] == "alice"),
        "{logins:?}"
    );

    // Administration through the CLI.
    let mut admin_logs = String::new();
    let mut admin = |args: &[&str], stdin: &str| {
        use std::io::Write;
        let mut cmd = db.command(args);
        cmd.stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        admin_logs.push_str(&String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<Value>(&out.stdout).unwrap_or(Value::Null)
    };
    let created = admin(
        &[
            "client",
            "create",
            "--name",
            "Audited",
            "--redirect-uri",
            CB,
        ],
        "",
    );
    let id = created["client_id"].as_str().unwrap().to_owned();
    admin(&["client", "rotate-secret", &id], "");
    admin(&["client", "delete", &id], "");
    admin(
        &["user", "create", "--username", "bob"],
        "a long enough password\n",
    );
    admin(&["user", "set-password", "bob"], "another long password\n");
    admin(&["user", "disable", "bob"], "");
    let rotated_key = admin(&["keys", "rotate"], "");
    let kid = rotated_key["kid"].as_str().unwrap().to_owned();
    admin(&["keys", "retire", &kid], "");
    let admin_events = audit_events(&admin_logs);
    for name in ["client_created", "client_secret_rotated", "client_deleted"] {
        assert_eq!(
            event(&admin_events, name)["client_id"],
            id.as_str(),
            "{name}"
        );
    }
    for name in ["user_created", "user_password_set", "user_disabled"] {
        event(&admin_events, name);
    }
    assert_eq!(
        event(&admin_events, "signing_key_rotated")["kid"],
        kid.as_str()
    );
    assert_eq!(
        event(&admin_events, "signing_key_retired")["kid"],
        kid.as_str()
    );
}

/// Issue 7 item 3: an error page shows the request id, the same as the `x-request-id` header,
/// and the log line that says why the page was shown carries it too.
#[tokio::test]
async fn error_pages_show_the_request_id_that_the_logs_carry() {
    let db = Db::new();
    let mut serve = db.command(&["serve", "--bind", "127.0.0.1:0"]);
    serve.env("LATCHKEY_LOG", "info");
    let mut server = Server::spawn(serve);
    let page = reqwest::get(format!(
        "{}/authorize?response_type=code&client_id=nobody&redirect_uri=https%3A%2F%2Fevil.example%2F",
        server.base
    ))
    .await
    .unwrap();
    assert_eq!(page.status(), StatusCode::BAD_REQUEST);
    let id = page.headers()["x-request-id"].to_str().unwrap().to_owned();
    let body = page.text().await.unwrap();
    assert!(
        body.contains(&format!("<code>{id}</code>")),
        "the page shows the request id {id}: {body}"
    );
    let logs = drain_logs(&mut server);
    let line = logs
        .lines()
        .find(|l| l.contains("error page"))
        .unwrap_or_else(|| panic!("no error-page log line: {logs}"));
    assert!(line.contains(&id), "the log line names the request: {line}");
    assert!(line.contains("not registered"), "and says why: {line}");
}
