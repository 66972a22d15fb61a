//! Runs the example resource server of `examples/` against a live Latchkey.

#[path = "../../examples/resource_server.rs"]
mod resource_server;

use std::sync::Arc;

use reqwest::StatusCode;

use crate::helpers::*;

#[tokio::test]
async fn example_resource_server_accepts_latchkey_tokens_through_the_jwks() {
    let app = spawn_app().await;
    let sub = app.user("alice").await;
    let client = app.client().await;
    let verifier = resource_server::Verifier::discover(&app.base, &app.base)
        .await
        .expect("discovery");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let rs = format!("http://{}/hello", listener.local_addr().unwrap());
    tokio::spawn(
        async move { axum::serve(listener, resource_server::app(Arc::new(verifier))).await },
    );

    let body = tokens(&app, &client, "alice", "openid").await;
    let http = reqwest::Client::new();
    let ok = http
        .get(&rs)
        .bearer_auth(body["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let ok: serde_json::Value = ok.json().await.unwrap();
    assert_eq!(ok["hello"], sub);
    assert_eq!(ok["client_id"], client.id);

    let mut forged = body["access_token"].as_str().unwrap().to_owned();
    forged.truncate(forged.len() - 4);
    forged.push_str("AAAA");
    assert_eq!(
        http.get(&rs)
            .bearer_auth(forged)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        http.get(&rs).send().await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
}
