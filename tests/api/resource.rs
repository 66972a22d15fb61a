//! Protected resources and token management: userinfo (RFC 6750), introspection (RFC 7662),
//! revocation (RFC 7009), discovery (RFC 8414).

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;

#[tokio::test]
async fn k59_k60_userinfo_refuses_missing_invalid_expired_and_query_tokens() {
    let app = spawn_app().await;
    app.user("alice").await;
    let client = app.client().await;
    let body = tokens(&app, &client, "alice", "openid").await;
    let access_token = body["access_token"].as_str().unwrap();

    let missing = answer(reqwest::get(app.url("/userinfo")).await.unwrap()).await;
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
    assert!(
        missing
            .header("www-authenticate")
            .unwrap()
            .starts_with("Bearer")
    );

    let in_query = answer(
        reqwest::get(app.url(&format!("/userinfo?access_token={access_token}")))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        in_query.status,
        StatusCode::UNAUTHORIZED,
        "K59: a token in the query is ignored"
    );

    let garbage = userinfo(&app, "not.a.jwt").await;
    assert_eq!(garbage.status, StatusCode::UNAUTHORIZED);
    assert!(
        garbage
            .header("www-authenticate")
            .unwrap()
            .contains("error=\"invalid_token\"")
    );

    let mut tampered = access_token.to_owned();
    tampered.pop();
    tampered.push(if access_token.ends_with('A') {
        'B'
    } else {
        'A'
    });
    assert_eq!(
        userinfo(&app, &tampered).await.status,
        StatusCode::UNAUTHORIZED,
        "bad signature"
    );

    assert_eq!(userinfo(&app, access_token).await.status, StatusCode::OK);
    app.clock.advance(600 + 61);
    let expired = userinfo(&app, access_token).await;
    assert_eq!(expired.status, StatusCode::UNAUTHORIZED);
    assert_eq!(expired.header("cache-control"), Some("no-store"));
}

#[tokio::test]
async fn k60_userinfo_without_an_identity_scope_is_insufficient_scope() {
    let app = spawn_app().await;
    app.user("alice").await;
    let client = app
        .client_with(vec![CB.into()], false, Some("read write"))
        .await;
    let body = tokens(&app, &client, "alice", "read").await;
    let answer = userinfo(&app, body["access_token"].as_str().unwrap()).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert!(
        answer
            .header("www-authenticate")
            .unwrap()
            .contains("insufficient_scope")
    );
}

#[tokio::test]
async fn userinfo_claims_follow_the_granted_scopes_and_post_is_accepted() {
    let app = spawn_app().await;
    app.user("alice").await;
    let client = app.client().await;
    let body = tokens(&app, &client, "alice", "openid").await;
    let access_token = body["access_token"].as_str().unwrap();
    let info = userinfo(&app, access_token).await.json();
    assert!(
        info.get("email").is_none() && info.get("name").is_none(),
        "{info}"
    );
    let post = reqwest::Client::new()
        .post(app.url("/userinfo"))
        .form(&[("access_token", access_token)])
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), StatusCode::OK);
}

#[tokio::test]
async fn b18_disabling_a_user_revokes_tokens_and_sessions_at_once() {
    let app = spawn_app().await;
    app.user("alice").await;
    let client = app.client().await;
    let flow = flow(&app, &client, "alice", "openid offline_access").await;
    let body = exchange(&app, &client, &flow.code, &flow.verifier)
        .await
        .json();
    latchkey::service::admin::disable_user(
        app.store.as_ref(),
        "alice",
        latchkey::clock::Clock::now(app.clock.as_ref()),
    )
    .await
    .unwrap();
    assert_eq!(
        userinfo(&app, body["access_token"].as_str().unwrap())
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        refresh(&app, &client, body["refresh_token"].as_str().unwrap())
            .await
            .json()["error"],
        "invalid_grant"
    );
    let introspected = client_post(
        &app,
        "/introspect",
        &client,
        &[("token", body["access_token"].as_str().unwrap())],
    )
    .await;
    assert_eq!(introspected.json(), serde_json::json!({"active": false}));
    let (_, challenge) = pkce_pair();
    let again = flow
        .browser
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
    assert!(
        again.location().unwrap().starts_with("/login"),
        "the old session is dead"
    );
}

#[tokio::test]
async fn j56_j57_introspection_requires_auth_and_tells_a_client_only_about_its_own_tokens() {
    let app = spawn_app().await;
    let sub = app.user("alice").await;
    let client = app.client().await;
    let other = app.client().await;
    let body = tokens(&app, &client, "alice", "openid offline_access").await;
    let access_token = body["access_token"].as_str().unwrap();
    let refresh_token = body["refresh_token"].as_str().unwrap();

    let anonymous = answer(
        reqwest::Client::new()
            .post(app.url("/introspect"))
            .form(&[("token", access_token)])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    let public = app.public_client("https://spa.example/cb").await;
    assert_eq!(
        client_post(
            &app,
            "/introspect",
            &public,
            &[("token", access_token), ("client_id", &public.id)]
        )
        .await
        .status,
        StatusCode::UNAUTHORIZED
    );

    let active = client_post(&app, "/introspect", &client, &[("token", access_token)]).await;
    assert_eq!(active.header("cache-control"), Some("no-store"));
    let active = active.json();
    assert_eq!(active["active"], true);
    assert_eq!(active["sub"], sub);
    assert_eq!(active["client_id"], client.id);
    assert_eq!(active["scope"], "offline_access openid");
    assert_eq!(active["token_type"], "Bearer");
    let rt_active = client_post(&app, "/introspect", &client, &[("token", refresh_token)])
        .await
        .json();
    assert_eq!(rt_active["active"], true);

    let inactive = serde_json::json!({"active": false});
    for token in [access_token, refresh_token] {
        assert_eq!(
            client_post(&app, "/introspect", &other, &[("token", token)])
                .await
                .json(),
            inactive,
            "another client's token"
        );
    }
    for token in ["x".repeat(43).as_str(), "'; DROP TABLE grants; --"] {
        assert_eq!(
            client_post(&app, "/introspect", &client, &[("token", token)])
                .await
                .json(),
            inactive
        );
    }
}

#[tokio::test]
async fn j58_revoking_a_refresh_token_revokes_its_family_and_access_tokens() {
    let app = spawn_app().await;
    app.user("alice").await;
    let client = app.client().await;
    let other = app.client().await;
    let body = tokens(&app, &client, "alice", "openid offline_access").await;
    let (access_token, refresh_token) = (
        body["access_token"].as_str().unwrap(),
        body["refresh_token"].as_str().unwrap(),
    );

    let foreign = client_post(&app, "/revoke", &other, &[("token", refresh_token)]).await;
    assert_eq!(foreign.status, StatusCode::OK);
    assert_eq!(
        userinfo(&app, access_token).await.status,
        StatusCode::OK,
        "another client cannot revoke it"
    );

    let anonymous = reqwest::Client::new()
        .post(app.url("/revoke"))
        .form(&[("token", refresh_token)])
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);

    let revoked = client_post(
        &app,
        "/revoke",
        &client,
        &[
            ("token", refresh_token),
            ("token_type_hint", "access_token"),
        ],
    )
    .await;
    assert_eq!(revoked.status, StatusCode::OK);
    assert_eq!(
        refresh(&app, &client, refresh_token).await.json()["error"],
        "invalid_grant"
    );
    assert_eq!(
        userinfo(&app, access_token).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        client_post(&app, "/introspect", &client, &[("token", access_token)])
            .await
            .json()["active"],
        false
    );
    assert_eq!(
        client_post(&app, "/revoke", &client, &[("token", "unknown")])
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn revoking_an_access_token_revokes_its_grant() {
    let app = spawn_app().await;
    app.user("alice").await;
    let client = app.client().await;
    let body = tokens(&app, &client, "alice", "openid offline_access").await;
    let access_token = body["access_token"].as_str().unwrap();
    assert_eq!(
        client_post(&app, "/revoke", &client, &[("token", access_token)])
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        userinfo(&app, access_token).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        refresh(&app, &client, body["refresh_token"].as_str().unwrap())
            .await
            .json()["error"],
        "invalid_grant"
    );
}

#[tokio::test]
async fn h50_discovery_has_the_contract_fields_and_ignores_the_host_header() {
    let app = spawn_app().await;
    let metadata = app.metadata().await;
    assert_eq!(metadata["issuer"], app.base);
    let plain = reqwest::get(app.url("/.well-known/oauth-authorization-server"))
        .await
        .unwrap();
    assert!(
        plain.headers().get("strict-transport-security").is_none(),
        "no HSTS for an http issuer"
    );
    for (field, path) in [
        ("authorization_endpoint", "/authorize"),
        ("token_endpoint", "/token"),
        ("jwks_uri", "/jwks"),
        ("introspection_endpoint", "/introspect"),
        ("revocation_endpoint", "/revoke"),
        ("userinfo_endpoint", "/userinfo"),
    ] {
        assert_eq!(metadata[field], app.url(path), "{field}");
    }
    assert_eq!(
        metadata["response_types_supported"],
        serde_json::json!(["code"])
    );
    assert_eq!(
        metadata["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(
        metadata["authorization_response_iss_parameter_supported"],
        true
    );
    let grants: Vec<&str> = metadata["grant_types_supported"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(grants.contains(&"authorization_code") && grants.contains(&"refresh_token"));
    assert!(!grants.contains(&"password") && !grants.contains(&"implicit"));
    let methods = metadata["token_endpoint_auth_methods_supported"]
        .as_array()
        .unwrap();
    assert!(
        methods.contains(&Value::from("none"))
            && methods.contains(&Value::from("client_secret_basic"))
    );
    assert!(
        metadata["scopes_supported"]
            .as_array()
            .unwrap()
            .contains(&Value::from("openid"))
    );

    let spoofed: Value = reqwest::Client::new()
        .get(app.url("/.well-known/oauth-authorization-server"))
        .header("Host", "evil.test")
        .header("X-Forwarded-Host", "evil.test")
        .header("X-Forwarded-Proto", "evil_protocol")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(spoofed, metadata);
}

#[tokio::test]
async fn scopes_supported_lists_every_scope_some_client_may_request() {
    let app = spawn_app().await;
    app.client_with(vec![CB.into()], false, Some("read:invoices"))
        .await;
    let scopes = app.metadata().await["scopes_supported"].clone();
    assert!(
        scopes
            .as_array()
            .unwrap()
            .contains(&Value::from("read:invoices")),
        "{scopes}"
    );
}

/// Checklist item 18: disabling a user also voids the codes issued to them and not yet
/// redeemed (they would otherwise start a grant, and an ID token, after the fact).
#[tokio::test]
async fn b18_disabling_a_user_voids_codes_not_yet_redeemed() {
    let app = spawn_app().await;
    app.user("alice").await;
    let client = app.client().await;
    let pending = flow(&app, &client, "alice", "openid").await;
    latchkey::service::admin::disable_user(app.store.as_ref(), "alice", 0)
        .await
        .unwrap();
    let answer = exchange(&app, &client, &pending.code, &pending.verifier).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.body);
    assert_eq!(answer.json()["error"], "invalid_grant");
}
