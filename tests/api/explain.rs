//! `latchkey explain REQUEST_ID` (issue 7 item 3): the real binary serves a flow, and the
//! command prints its timeline from the database, from whichever request id is quoted, with
//! no secret in it.

use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::cli::{Db, run_bounded, text};
use crate::helpers::*;
use crate::pages::serve;

/// Runs `latchkey explain ID` until its output contains `until` (the trail is written just
/// after the response, by a task of its own); returns the last output.
fn explain_until(db: &Db, request_id: &str, until: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = run_bounded(db.command(&["explain", request_id]), "");
        let stdout = text(&out.stdout);
        if stdout.contains(until) || Instant::now() > deadline {
            return stdout;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test]
async fn explain_prints_the_whole_flow_from_any_of_its_request_ids_without_secrets() {
    let db = Db::new();
    let (_server, app) = serve(&db, &[]).await;
    app.user("alice").await;
    let client = app.client().await;

    let flow = flow(&app, &client, "alice", "openid offline_access").await;
    let exchanged = exchange(&app, &client, &flow.code, &flow.verifier).await;
    assert_eq!(exchanged.status, StatusCode::OK);
    let token_request = exchanged.header("x-request-id").unwrap().to_owned();
    let body = exchanged.json();
    let refresh_token = body["refresh_token"].as_str().unwrap().to_owned();
    let access_token = body["access_token"].as_str().unwrap().to_owned();
    let refreshed = refresh(&app, &client, &refresh_token).await;
    assert_eq!(refreshed.status, StatusCode::OK);
    let refresh_request = refreshed.header("x-request-id").unwrap().to_owned();

    let timeline = explain_until(&db, &token_request, "refresh_token_rotated");
    let steps = [
        "authorization_request",
        "login_succeeded",
        "consent_given",
        "code_issued",
        "code_redeemed",
        "refresh_token_rotated",
    ];
    let mut at = 0;
    for step in steps {
        let found = timeline[at..]
            .find(&format!("  {step} "))
            .unwrap_or_else(|| panic!("{step} missing or out of order in:\n{timeline}"));
        at += found + 1;
    }
    assert!(
        timeline.contains("\n> "),
        "the request asked about is marked: {timeline}"
    );
    assert!(timeline.contains(&client.id), "{timeline}");
    assert!(
        timeline.contains("redirect_uri: https://app.example/cb"),
        "{timeline}"
    );
    assert!(timeline.contains("pkce: S256"), "{timeline}");
    assert!(
        timeline.contains("pkce: code_verifier matched the challenge (S256)"),
        "{timeline}"
    );
    let jti = jwt_claims(&access_token)["jti"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        timeline.contains(&format!("access_token: jti {jti}, ES256")),
        "{timeline}"
    );
    assert!(
        timeline.contains("state: [redacted, 3 characters]"),
        "{timeline}"
    );
    // Nothing secret: not the code, the tokens, the verifier, the secret or the password.
    let secrets = [
        flow.code.as_str(),
        flow.verifier.as_str(),
        access_token.as_str(),
        refresh_token.as_str(),
        client.secret.as_deref().unwrap(),
        PASSWORD,
    ];
    for secret in secrets {
        assert!(!timeline.contains(secret), "a secret in:\n{timeline}");
    }
    // The refresh's own request id leads to the same flow; --json gives the same events.
    let from_refresh = explain_until(&db, &refresh_request, "authorization_request");
    assert!(
        from_refresh.contains("  authorization_request "),
        "{from_refresh}"
    );
    let out = run_bounded(db.command(&["explain", "--json", &refresh_request]), "");
    let events: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let names: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    for step in steps {
        assert!(names.contains(&step), "{step} in {names:?}");
    }
}

#[tokio::test]
async fn explain_shows_why_a_request_got_the_error_page_and_a_failed_login() {
    let db = Db::new();
    let (_server, app) = serve(&db, &[]).await;
    app.user("alice").await;
    let client = app.client().await;
    let browser = Browser::new();
    let page = browser
        .authorize(
            &app,
            &[
                ("response_type", "code"),
                ("client_id", &client.id),
                ("redirect_uri", "https://evil.example/cb"),
            ],
        )
        .await;
    assert!(page.is_error_page());
    let id = page.header("x-request-id").unwrap().to_owned();
    let timeline = explain_until(&db, &id, "authorization_request_refused");
    assert!(
        timeline.contains("authorization_request_refused"),
        "{timeline}"
    );
    assert!(
        timeline.contains("redirect_uri received: https://evil.example/cb"),
        "{timeline}"
    );
    assert!(
        timeline.contains("registered redirect_uri: https://app.example/cb"),
        "{timeline}"
    );
    assert!(
        timeline.contains("answered: error page, no redirect"),
        "{timeline}"
    );

    // A wrong password is in the trail, without what was typed.
    let started = authorize_request(&app, &browser, &client, "openid", "s", &[]).await;
    let flow_request = started.header("x-request-id").unwrap().to_owned();
    let failed = browser
        .login(&app, &started, "alice", "my-secret-guess")
        .await;
    assert_eq!(failed.status, StatusCode::OK);
    let timeline = explain_until(&db, &flow_request, "login_failed");
    assert!(timeline.contains("  login_failed "), "{timeline}");
    assert!(!timeline.contains("my-secret-guess"), "{timeline}");
}

#[test]
fn explain_of_an_unknown_request_id_fails_with_one_line() {
    let db = Db::new();
    let out = run_bounded(db.command(&["explain", "no-such-request"]), "");
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("no flow events for request id no-such-request"),
        "{stderr}"
    );
}

#[tokio::test]
async fn no_flow_trail_records_nothing() {
    let db = Db::new();
    let (_server, app) = serve(&db, &["--no-flow-trail"]).await;
    app.user("alice").await;
    let client = app.client().await;
    let flow = flow(&app, &client, "alice", "openid").await;
    let exchanged = exchange(&app, &client, &flow.code, &flow.verifier).await;
    assert_eq!(exchanged.status, StatusCode::OK);
    let id = exchanged.header("x-request-id").unwrap().to_owned();
    let out = run_bounded(db.command(&["explain", &id]), "");
    assert!(!out.status.success(), "nothing recorded for {id}");
    let counts = app.store.table_counts().await.unwrap();
    assert!(counts.contains(&("flow_events", 0)), "{counts:?}");
}

#[tokio::test]
async fn a_failed_token_request_leads_to_the_flow_it_failed_in() {
    let db = Db::new();
    let (_server, app) = serve(&db, &[]).await;
    app.user("alice").await;
    let client = app.client().await;
    let flow = flow(&app, &client, "alice", "openid").await;
    let wrong = exchange(
        &app,
        &client,
        &flow.code,
        "a-verifier-that-does-not-match-0000000000000",
    )
    .await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    let id = wrong.header("x-request-id").unwrap().to_owned();
    let timeline = explain_until(&db, &id, "code_rejected");
    for step in [
        "authorization_request",
        "login_succeeded",
        "code_issued",
        "code_rejected",
    ] {
        assert!(
            timeline.contains(&format!("  {step} ")),
            "{step} in:\n{timeline}"
        );
    }
    assert!(timeline.contains("error: invalid_grant"), "{timeline}");
    assert!(timeline.contains("PKCE"), "{timeline}");
}
