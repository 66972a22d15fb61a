//! Per-client access-token algorithms (CONTRACT §4): ES256 by default, RS256 (required by RFC
//! 9068 §4) and EdDSA on request, each verifiable with the published JWKS.

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use latchkey::protocol::types::SigningAlg;
use latchkey::service::admin::NewClient;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;

#[tokio::test]
async fn h46_each_client_algorithm_signs_tokens_that_verify_against_the_jwks() {
    let app = spawn_app().await;
    app.user("alice").await;
    let jwks: JwkSet = reqwest::get(app.url("/jwks"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks.keys.len(), 3, "one key per algorithm");
    let raw: Value = reqwest::get(app.url("/jwks"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for key in raw["keys"].as_array().unwrap() {
        for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
            assert!(key.get(private).is_none(), "{private} published in {key}");
        }
    }
    for (alg, expected) in [
        (SigningAlg::ES256, Algorithm::ES256),
        (SigningAlg::RS256, Algorithm::RS256),
        (SigningAlg::EdDSA, Algorithm::EdDSA),
    ] {
        let client = app
            .register(NewClient {
                access_token_alg: alg,
                ..NewClient::new(format!("{alg:?} app"), CB)
            })
            .await;
        let body = tokens(&app, &client, "alice", "openid").await;
        let token = body["access_token"].as_str().unwrap();
        let header = jsonwebtoken::decode_header(token).unwrap();
        assert_eq!(header.alg, expected);
        assert_eq!(header.typ.as_deref(), Some("at+jwt"));
        let jwk = jwks
            .find(header.kid.as_deref().unwrap())
            .expect("kid in the JWKS");
        let mut validation = Validation::new(expected);
        validation.set_issuer(&[&app.base]);
        validation.set_audience(&[&app.base]);
        let key = DecodingKey::from_jwk(jwk).unwrap();
        jsonwebtoken::decode::<Value>(token, &key, &validation).expect("verifies with the JWKS");
        assert_eq!(
            userinfo(&app, token).await.status,
            StatusCode::OK,
            "{alg:?}"
        );
    }
}
