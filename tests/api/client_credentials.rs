//! The client_credentials grant (RFC 6749 §4.4; issue 8 item 4): a confidential client allowed
//! the grant gets an RFC 9068 access token for itself (`sub` = its client id), no refresh
//! token, scopes limited to its own and never a user scope.

use latchkey::protocol::types::GrantType;
use latchkey::service::admin::{self, AdminError, NewClient};
use reqwest::StatusCode;

use crate::helpers::*;

fn machine(public: bool, grants: Vec<GrantType>) -> NewClient {
    NewClient {
        public,
        scope: Some("openid offline_access api:read api:write".to_owned()),
        audience: Some("https://api.example".to_owned()),
        extra_grant_types: grants,
        ..NewClient::new("Batch job", CB)
    }
}

/// RFC 6749 §4.4.3 and RFC 9068 §2.2: the token names the client as its subject, carries the
/// client's non-user scopes by default, comes without a refresh token, is active at
/// introspection until the client is deleted, and is no key to userinfo (no user).
#[tokio::test]
async fn client_credentials_token_is_the_clients_own() {
    let app = spawn_app().await;
    let client = app
        .register(machine(false, vec![GrantType::ClientCredentials]))
        .await;
    let issued = client_post(
        &app,
        "/token",
        &client,
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(issued.status, StatusCode::OK, "{}", issued.body);
    let body = issued.json();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(
        body["scope"], "api:read api:write",
        "user scopes are left out"
    );
    assert!(
        body.get("refresh_token").is_none(),
        "RFC 6749 §4.4.3: no refresh token"
    );
    assert!(body.get("id_token").is_none());
    let token = body["access_token"].as_str().unwrap();
    let jwt = jwt_claims(token);
    assert_eq!(jwt["sub"], client.id.as_str());
    assert_eq!(jwt["client_id"], client.id.as_str());
    assert_eq!(jwt["aud"], "https://api.example");
    assert_eq!(jwt["iss"], app.base.as_str());

    let active = client_post(&app, "/introspect", &client, &[("token", token)])
        .await
        .json();
    assert_eq!(active["active"], true, "{active}");
    assert_eq!(active["sub"], client.id.as_str());
    assert_eq!(
        userinfo(&app, token).await.status,
        StatusCode::UNAUTHORIZED,
        "userinfo needs a user"
    );
    // Revocation answers 200 (RFC 7009 §2.2) but a client token has no grant to end: it
    // lives out its short lifetime (documented).
    assert_eq!(
        client_post(&app, "/revoke", &client, &[("token", token)])
            .await
            .status,
        StatusCode::OK
    );

    // A narrower scope is granted exactly as asked.
    let narrow = client_post(
        &app,
        "/token",
        &client,
        &[("grant_type", "client_credentials"), ("scope", "api:read")],
    )
    .await
    .json();
    assert_eq!(narrow["scope"], "api:read");

    // Another client learns nothing about it; once the client is gone, the token is inactive.
    let other = app.client().await;
    let foreign = client_post(&app, "/introspect", &other, &[("token", token)])
        .await
        .json();
    assert_eq!(foreign, serde_json::json!({"active": false}));
    admin::delete_client(app.store.as_ref(), &client.id)
        .await
        .unwrap();
    let watcher = app
        .register(machine(false, vec![GrantType::ClientCredentials]))
        .await;
    let gone = client_post(&app, "/introspect", &watcher, &[("token", token)])
        .await
        .json();
    assert_eq!(gone, serde_json::json!({"active": false}));
}

/// Checklist item 13 / RFC 6749 §3.3: a scope outside the client's, or a user scope, is
/// `invalid_scope`; nothing is issued.
#[tokio::test]
async fn f38_client_credentials_scope_is_limited_to_the_clients_non_user_scopes() {
    let app = spawn_app().await;
    let client = app
        .register(machine(false, vec![GrantType::ClientCredentials]))
        .await;
    for scope in [
        "api:admin",
        "openid",
        "offline_access api:read",
        "api:read profile",
    ] {
        let answer = client_post(
            &app,
            "/token",
            &client,
            &[("grant_type", "client_credentials"), ("scope", scope)],
        )
        .await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{scope}");
        assert_eq!(answer.json()["error"], "invalid_scope", "{scope}");
    }
}

/// Checklist item 38: the grant is allow-listed per client — a client not allowed it gets
/// `unauthorized_client`, a wrong secret `invalid_client`, and a public client can never be
/// registered with it.
#[tokio::test]
async fn f38_client_credentials_only_for_confidential_clients_allowed_it() {
    let app = spawn_app().await;
    let plain = app.client().await;
    let refused = client_post(
        &app,
        "/token",
        &plain,
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(refused.json()["error"], "unauthorized_client");

    let client = app
        .register(machine(false, vec![GrantType::ClientCredentials]))
        .await;
    let wrong = TestClient {
        secret: Some("not-the-secret".to_owned()),
        ..client.clone()
    };
    let unauthenticated = client_post(
        &app,
        "/token",
        &wrong,
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(unauthenticated.status, StatusCode::UNAUTHORIZED);
    assert_eq!(unauthenticated.json()["error"], "invalid_client");

    let public = admin::create_client(
        app.store.as_ref(),
        machine(true, vec![GrantType::ClientCredentials]),
        0,
    )
    .await;
    assert!(
        matches!(public, Err(AdminError::Invalid(_))),
        "a public client with client_credentials is refused: {public:?}"
    );
}
