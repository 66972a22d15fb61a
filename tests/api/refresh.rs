//! Refresh tokens: rotation, reuse detection, client binding, scope, lifetime (checklist I).

use reqwest::StatusCode;

use crate::helpers::*;

fn rt(body: &serde_json::Value) -> String {
    body["refresh_token"]
        .as_str()
        .expect("a refresh token")
        .to_owned()
}

fn at(body: &serde_json::Value) -> String {
    body["access_token"]
        .as_str()
        .expect("an access token")
        .to_owned()
}

#[tokio::test]
async fn i52_rotation_returns_a_new_token_and_reuse_revokes_the_family() {
    let app = spawn_app().await;
    app.user("alice").await;
    let client = app.client().await;
    let first = tokens(&app, &client, "alice", "openid offline_access").await;
    let rt0 = rt(&first);
    let second = refresh(&app, &client, &rt0).await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.body);
    assert_eq!(second.header("cache-control"), Some("no-store"));
    let rt1 = rt(&second.json());
    assert_ne!(rt0, rt1);
    let third = refresh(&app, &client, &rt1).await.json();
    let (rt2, at2) = (rt(&third), at(&third));
    assert_eq!(userinfo(&app, &at2).await.status, StatusCode::OK);

    let reused = refresh(&app, &client, &rt0).await;
    assert_eq!(
        (reused.status, reused.json()["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    assert_eq!(
        refresh(&app, &client, &rt2).await.json()["error"],
        "invalid_grant",
        "the newest token died with its family"
    );
    assert_eq!(
        userinfo(&app, &at2).await.status,
        StatusCode::UNAUTHORIZED,
        "so did the access tokens"
    );
}

#[tokio::test]
async fn i51_refresh_token_is_bound_to_its_client() {
    let app = spawn_app().await;
    app.user("alice").await;
    let client = app.client().await;
    let other = app.client().await;
    let body = tokens(&app, &client, "alice", "openid").await;
    let stolen = refresh(&app, &other, &rt(&body)).await;
    assert_eq!(stolen.json()["error"], "invalid_grant");
    let no_auth = reqwest::Client::new()
        .post(app.url("/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", rt(&body).as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(no_auth.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        refresh(&app, &client, &rt(&body)).await.status,
        StatusCode::OK,
        "the failed attempts changed nothing"
    );
}

#[tokio::test]
async fn g45_refresh_scope_may_shrink_but_never_widen() {
    let app = spawn_app().await;
    app.user("alice").await;
    let client = app.client().await;
    let body = tokens(&app, &client, "alice", "openid profile").await;
    let wider = token(
        &app,
        &client,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &rt(&body)),
            ("scope", "openid email"),
        ],
    )
    .await;
    assert_eq!(wider.json()["error"], "invalid_scope");
    let narrower = token(
        &app,
        &client,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &rt(&body)),
            ("scope", "openid"),
        ],
    )
    .await;
    assert_eq!(narrower.status, StatusCode::OK, "{}", narrower.body);
    assert_eq!(narrower.json()["scope"], "openid");
}

#[tokio::test]
async fn i53_family_has_an_absolute_lifetime() {
    let app = spawn_app_with(|s| latchkey::service::Settings {
        refresh_token_ttl: 3600,
        ..s
    })
    .await;
    app.user("alice").await;
    let client = app.client().await;
    let mut body = tokens(&app, &client, "alice", "openid").await;
    for _ in 0..3 {
        app.clock.advance(1000);
        let next = refresh(&app, &client, &rt(&body)).await;
        assert_eq!(next.status, StatusCode::OK, "within the family lifetime");
        body = next.json();
    }
    app.clock.advance(601);
    assert_eq!(
        refresh(&app, &client, &rt(&body)).await.json()["error"],
        "invalid_grant",
        "past the absolute end"
    );
}

#[tokio::test]
async fn unknown_refresh_token_is_invalid_grant() {
    let app = spawn_app().await;
    let client = app.client().await;
    assert_eq!(
        refresh(&app, &client, "not-a-token").await.json()["error"],
        "invalid_grant"
    );
}

#[tokio::test]
async fn i53_family_unused_for_the_idle_lifetime_ends() {
    let app = spawn_app_with(|s| latchkey::service::Settings {
        refresh_token_idle_ttl: 3600,
        ..s
    })
    .await;
    app.user("alice").await;
    let client = app.client().await;
    let body = tokens(&app, &client, "alice", "openid").await;
    app.clock.advance(3500);
    let used = refresh(&app, &client, &rt(&body)).await;
    assert_eq!(used.status, StatusCode::OK, "used within the idle lifetime");
    app.clock.advance(3601);
    let idle = refresh(&app, &client, &rt(&used.json())).await;
    assert_eq!(
        idle.json()["error"],
        "invalid_grant",
        "unused for longer than the idle lifetime"
    );
}
