//! Bounded storage without cron: expired rows are removed by the server itself, in batches,
//! one node at a time (checklist item 70), and operations endpoints.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use latchkey::service::maintenance;
use reqwest::StatusCode;

use crate::helpers::*;

async fn counts(app: &TestApp) -> HashMap<&'static str, i64> {
    app.store
        .table_counts()
        .await
        .unwrap()
        .into_iter()
        .collect()
}

/// Leaves every kind of expiring row behind: abandoned authorization requests, sessions,
/// redeemed and unredeemed codes, a replayed code's revoked grant, live refresh families.
async fn litter(app: &TestApp, client: &TestClient) {
    let abandoned = Browser::new();
    let (_, challenge) = pkce_pair();
    for _ in 0..30 {
        abandoned
            .authorize(
                app,
                &[
                    ("response_type", "code"),
                    ("client_id", &client.id),
                    ("redirect_uri", CB),
                    ("code_challenge", &challenge),
                    ("code_challenge_method", "S256"),
                ],
            )
            .await;
    }
    let flow = flow(app, client, "alice", "openid offline_access").await;
    exchange(app, client, &flow.code, &flow.verifier).await;
    exchange(app, client, &flow.code, &flow.verifier).await; // replay: revokes the grant
    for _ in 0..5 {
        let (code, verifier) = browser_flow(app, &flow.browser, client, "alice", "openid").await;
        exchange(app, client, &code, &verifier).await;
    }
    browser_flow(app, &flow.browser, client, "alice", "openid").await; // never redeemed
}

#[tokio::test]
async fn o70_expired_rows_are_purged_back_to_a_bound() {
    let app = spawn_app().await;
    app.user("alice").await;
    let client = app.client().await;
    litter(&app, &client).await;
    let before = counts(&app).await;
    assert!(before["pending_requests"] >= 30, "{before:?}");
    assert!(before["authorization_codes"] >= 7 && before["grants"] >= 6 && before["sessions"] >= 1);
    let svc = app.svc.clone().unwrap();

    // Nothing has expired yet: a pass deletes nothing that is still in use.
    let report = maintenance::run_once(&svc, "node-a", Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(report.total(), 0, "{report:?}");

    // Past every lifetime (the 30-day refresh families included) and the one-day retention.
    app.clock
        .advance(31 * 24 * 3600 + maintenance::RETENTION_SECONDS + 1);
    let report = maintenance::run_once(&svc, "node-a", Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    assert!(report.total() > 0);
    let after = counts(&app).await;
    for table in [
        "pending_requests",
        "sessions",
        "authorization_codes",
        "grants",
        "refresh_tokens",
    ] {
        assert_eq!(after[table], 0, "{table}: {after:?}");
    }
    for table in ["clients", "users", "consents", "signing_keys"] {
        assert_eq!(after[table], before[table], "{table} is not expiring data");
    }
}

#[tokio::test]
async fn o70_the_server_cleans_by_itself_on_its_interval() {
    let app = spawn_app().await;
    app.user("alice").await;
    let client = app.client().await;
    litter(&app, &client).await;
    app.clock
        .advance(31 * 24 * 3600 + maintenance::RETENTION_SECONDS + 1);
    let task = maintenance::spawn(app.svc.clone().unwrap(), Duration::from_millis(50));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = counts(&app).await;
        if now["pending_requests"] == 0 && now["grants"] == 0 && now["authorization_codes"] == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the background clean-up never ran: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    task.abort();
}

#[tokio::test]
async fn o70_unexpired_replay_evidence_survives_the_purge() {
    let app = spawn_app().await;
    app.user("alice").await;
    let client = app.client().await;
    let flow = flow(&app, &client, "alice", "openid offline_access").await;
    let first = exchange(&app, &client, &flow.code, &flow.verifier)
        .await
        .json();
    // The code expired a minute ago but is within retention: a replay is still recognised.
    app.clock.advance(120);
    maintenance::run_once(app.svc.as_ref().unwrap(), "node-a", Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(
        exchange(&app, &client, &flow.code, &flow.verifier)
            .await
            .json()["error"],
        "invalid_grant"
    );
    let refreshed = refresh(&app, &client, first["refresh_token"].as_str().unwrap()).await;
    assert_eq!(
        refreshed.json()["error"],
        "invalid_grant",
        "the late replay still revoked the grant"
    );
}

#[tokio::test]
async fn p_only_one_node_at_a_time_holds_the_cleanup_lease() {
    let app = spawn_app().await;
    let svc = app.svc.clone().unwrap();
    let interval = Duration::from_secs(60);
    assert!(
        maintenance::run_once(&svc, "node-a", interval)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        maintenance::run_once(&svc, "node-b", interval)
            .await
            .unwrap()
            .is_none(),
        "A holds it"
    );
    assert!(
        maintenance::run_once(&svc, "node-a", interval)
            .await
            .unwrap()
            .is_some(),
        "A renews it"
    );
    app.clock.advance(3 * 60 + 1);
    assert!(
        maintenance::run_once(&svc, "node-b", interval)
            .await
            .unwrap()
            .is_some(),
        "B takes a lapsed lease"
    );
    assert!(
        maintenance::run_once(&svc, "node-a", interval)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn health_endpoints_answer() {
    let app = spawn_app().await;
    let live = reqwest::get(app.url("/health/live")).await.unwrap();
    assert_eq!(live.status(), StatusCode::OK);
    let ready = reqwest::get(app.url("/health/ready")).await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
}

#[test]
fn db_stats_prints_rows_per_table_as_one_json_object() {
    let db = crate::cli::Db::new();
    let created = db
        .command(&["client", "create", "--name", "App", "--redirect-uri", CB])
        .output()
        .unwrap();
    assert!(created.status.success());
    let out = db.command(&["db", "stats"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    for table in latchkey::store::TABLES {
        assert!(stats[table].is_i64(), "{table} in {stats}");
    }
    assert_eq!(stats["clients"], 1);
    assert_eq!(stats["authorization_codes"], 0);
}
