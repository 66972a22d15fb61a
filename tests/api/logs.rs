//! Logs never hold a secret: the real binary at the most verbose level, driven through the
//! whole flow and its failure paths (issue 3 item 13, checklist item 71).

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::helpers::*;

/// Starts `latchkey serve` on a random port over `dir`'s database; returns the child and its
/// base URL, read from the "listening" log line.
fn start_binary(dir: &tempfile::TempDir) -> (std::process::Child, String) {
    let db = format!("sqlite://{}", dir.path().join("latchkey.db").display());
    let mut child = Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .args(["serve", "--bind", "127.0.0.1:0", "--database-url", &db])
        .env("LATCHKEY_LOG", "trace")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start latchkey");
    let log = dir.path().join("stderr.log");
    let mut stderr = child.stderr.take().expect("stderr");
    let mut file = std::fs::File::create(&log).expect("log file");
    // Detached: it ends when the child closes its stderr.
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut file).ok());
    let started = Instant::now();
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(address) = text.lines().find(|l| l.contains("latchkey is listening")).and_then(|l| {
            let at = l.find("address=")? + "address=".len();
            Some(l[at..].split_whitespace().next()?.to_owned())
        }) {
            return (child, format!("http://{address}"));
        }
        if started.elapsed() > Duration::from_secs(20) {
            child.kill().ok();
            panic!("latchkey did not start: {text}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
async fn n71_no_secret_reaches_the_logs_at_trace_level() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, base) = start_binary(&dir);
    let log_path = dir.path().join("stderr.log");
    let app = TestApp::attach(base, dir).await;
    app.user("alice").await;
    let client = app.client().await;

    let flow = flow(&app, &client, "alice", "openid offline_access").await;
    let body = exchange(&app, &client, &flow.code, &flow.verifier).await.json();
    let access_token = body["access_token"].as_str().unwrap().to_owned();
    let refresh_token = body["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(userinfo(&app, &access_token).await.status, StatusCode::OK);
    let rotated = refresh(&app, &client, &refresh_token).await.json();
    // Failure paths: replayed code, reused refresh token, wrong secret, wrong password.
    exchange(&app, &client, &flow.code, &flow.verifier).await;
    refresh(&app, &client, &refresh_token).await;
    let wrong = TestClient { secret: Some("WRONG-SECRET-CANARY-0123456789abcdefghijklmno".into()), ..client.clone() };
    exchange(&app, &wrong, "CODE-CANARY", "VERIFIER-CANARY-0123456789abcdefghijklmnopqrstuvwxyz").await;
    let browser = Browser::new();
    let (_, challenge) = pkce_pair();
    let started = browser
        .authorize(&app, &[("response_type", "code"), ("client_id", &client.id), ("redirect_uri", CB), ("code_challenge", &challenge), ("code_challenge_method", "S256")])
        .await;
    browser.login(&app, &started, "alice", "PASSWORD-CANARY").await;
    userinfo(&app, &format!("{access_token}x")).await;

    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().ok();
            panic!("latchkey did not stop");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(200));
    let mut logs = String::new();
    std::fs::File::open(&log_path).unwrap().read_to_string(&mut logs).unwrap();
    assert!(logs.contains("code_redeemed"), "the log was captured at all");
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
        ("access token signature", access_token.rsplit('.').next().unwrap().to_owned()),
        ("refresh token", refresh_token.clone()),
        ("rotated refresh token", rotated["refresh_token"].as_str().unwrap().to_owned()),
    ];
    for (name, secret) in secrets {
        assert!(!logs.contains(&secret), "the {name} appears in the logs");
    }
}
