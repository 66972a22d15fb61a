//! An example resource server that accepts Latchkey's access tokens.
//!
//! It finds the JWKS through the issuer's RFC 8414 discovery document, then validates each
//! bearer token the way RFC 9068 §4 asks: `typ` is `at+jwt`, the signature verifies with the key
//! named by `kid` (algorithm fixed by that key, never by the token), `iss` is the issuer, `aud`
//! is this resource server, and `exp` has not passed. It does not see revocations before a
//! token expires; a resource server that must, calls Latchkey's introspection endpoint.
//!
//!     cargo run --example resource_server -- http://127.0.0.1:8080 127.0.0.1:9090
//!     curl -H "Authorization: Bearer $ACCESS_TOKEN" http://127.0.0.1:9090/hello

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::json;

/// What the resource server knows: the issuer, its own audience, and the issuer's keys.
pub struct Verifier {
    issuer: String,
    audience: String,
    keys: JwkSet,
}

#[derive(Debug, Deserialize)]
struct Claims {
    sub: String,
    client_id: String,
    scope: String,
}

impl Verifier {
    /// Fetches the discovery document and the JWKS it points to.
    pub async fn discover(issuer: &str, audience: &str) -> Result<Self, reqwest::Error> {
        let metadata: serde_json::Value =
            reqwest::get(format!("{issuer}/.well-known/oauth-authorization-server"))
                .await?
                .json()
                .await?;
        let jwks_uri = metadata["jwks_uri"].as_str().unwrap_or_default().to_owned();
        let keys: JwkSet = reqwest::get(jwks_uri).await?.json().await?;
        Ok(Verifier {
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            keys,
        })
    }

    fn verify(&self, token: &str) -> Option<Claims> {
        let header = jsonwebtoken::decode_header(token).ok()?;
        if header.typ.as_deref() != Some("at+jwt") {
            return None;
        }
        let jwk = self.keys.find(header.kid.as_deref()?)?;
        let alg = match jwk.algorithm {
            AlgorithmParameters::EllipticCurve(_) => Algorithm::ES256,
            AlgorithmParameters::RSA(_) => Algorithm::RS256,
            AlgorithmParameters::OctetKeyPair(_) => Algorithm::EdDSA,
            AlgorithmParameters::OctetKey(_) => return None,
        };
        let mut validation = Validation::new(alg);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        let key = DecodingKey::from_jwk(jwk).ok()?;
        jsonwebtoken::decode::<Claims>(token, &key, &validation)
            .ok()
            .map(|data| data.claims)
    }
}

/// The resource server's routes: `GET /hello` answers the token's subject and scope.
pub fn app(verifier: Arc<Verifier>) -> Router {
    Router::new()
        .route("/hello", get(hello))
        .with_state(verifier)
}

async fn hello(State(verifier): State<Arc<Verifier>>, headers: HeaderMap) -> Response {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match token.and_then(|t| verifier.verify(t)) {
        Some(claims) => Json(
            json!({ "hello": claims.sub, "client_id": claims.client_id, "scope": claims.scope }),
        )
        .into_response(),
        None => (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer error=\"invalid_token\"")],
            "invalid token",
        )
            .into_response(),
    }
}

#[allow(dead_code)]
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let issuer = args
        .next()
        .unwrap_or_else(|| "http://127.0.0.1:8080".to_owned());
    let bind = args.next().unwrap_or_else(|| "127.0.0.1:9090".to_owned());
    // Latchkey's tokens carry the issuer as audience unless the client has --audience.
    let verifier = Arc::new(Verifier::discover(&issuer, &issuer).await?);
    let listener = tokio::net::TcpListener::bind(&bind).await?;
    println!("resource server on http://{bind}/hello, trusting {issuer}");
    axum::serve(listener, app(verifier)).await?;
    Ok(())
}
