//! `latchkey bench` runs every scenario against a live server, provisioning and then removing
//! its own client and user.

use std::process::Command;

use crate::helpers::*;

#[tokio::test]
async fn bench_runs_every_scenario_and_cleans_up_after_itself() {
    let app = spawn_app().await;
    let before = app.store.table_counts().await.unwrap();
    for scenario in [
        "token-exchange",
        "refresh",
        "introspect",
        "userinfo",
        "code-flow",
    ] {
        let (base, database_url) = (app.base.clone(), app.database_url.clone());
        let out = tokio::task::spawn_blocking(move || {
            Command::new(env!("CARGO_BIN_EXE_latchkey"))
                .args([
                    "bench",
                    "--scenario",
                    scenario,
                    "--url",
                    &base,
                    "--database-url",
                    &database_url,
                ])
                .args([
                    "--concurrency",
                    "2",
                    "--requests",
                    "10",
                    "--warmup",
                    "0s",
                    "--json",
                ])
                .env("NO_COLOR", "1")
                .output()
                .expect("run latchkey bench")
        })
        .await
        .unwrap();
        assert!(
            out.status.success(),
            "{scenario}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: serde_json::Value =
            serde_json::from_slice(&out.stdout).expect("one JSON report");
        assert_eq!(report["scenario"], scenario);
        assert!(
            report["requests"].as_u64().unwrap() >= 10,
            "{scenario}: {report}"
        );
        assert_eq!(
            report["errors"],
            serde_json::json!({}),
            "{scenario}: {report}"
        );
        for field in [
            "requests_per_second",
            "p50_ms",
            "p90_ms",
            "p99_ms",
            "max_ms",
        ] {
            assert!(
                report[field].as_f64().unwrap() > 0.0,
                "{scenario}: {field} in {report}"
            );
        }
    }
    let after = app.store.table_counts().await.unwrap();
    let count =
        |counts: &[(&str, i64)], table: &str| counts.iter().find(|(t, _)| *t == table).unwrap().1;
    for table in ["clients", "users", "grants", "refresh_tokens", "consents"] {
        assert_eq!(
            count(&after, table),
            count(&before, table),
            "{table}: the throw-away client and user are gone"
        );
    }
}
