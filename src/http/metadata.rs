//! Discovery (RFC 8414), the JWKS, the stylesheet and the demo callback page.

use std::collections::BTreeSet;

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::error::HttpError;
use super::pages::DemoCallback;
use crate::protocol::metadata::Metadata;
use crate::protocol::params::Params;
use crate::service::InternalError;
use crate::service::admin::DEFAULT_SCOPES;

/// `GET /.well-known/oauth-authorization-server`: built from the configured issuer only.
pub async fn metadata(State(state): State<AppState>) -> Result<Response, HttpError> {
    let clients = state.svc.store.clients().await.map_err(|e| {
        HttpError::from(crate::service::token::TokenFailure::Internal(
            InternalError::Store(e),
        ))
    })?;
    let mut scopes: BTreeSet<String> = DEFAULT_SCOPES.split(' ').map(str::to_owned).collect();
    for record in clients {
        scopes.extend(record.client.scopes.iter().map(str::to_owned));
    }
    let document = Metadata::new(&state.svc.settings.issuer, scopes.into_iter().collect());
    Ok((
        [(header::CACHE_CONTROL, "public, max-age=60")],
        Json(document),
    )
        .into_response())
}

/// `GET /jwks`: public keys only.
pub async fn jwks(State(state): State<AppState>) -> Response {
    let cache = format!("public, max-age={}", crate::service::keys::JWKS_MAX_AGE);
    (
        [(header::CACHE_CONTROL, cache)],
        Json(state.svc.keys().jwks()),
    )
        .into_response()
}

/// `GET /demo/callback` (only with `--demo`): the demo client's redirect URI. It shows what the
/// authorization response carried; the exchange itself happens in the terminal, where the
/// demo client's secret was printed, so the secret never reaches the browser.
pub async fn demo_callback(State(state): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let params = Params::parse(query.unwrap_or_default().as_bytes());
    let keys = ["code", "state", "iss", "error", "error_description"];
    let fields: Vec<(&str, &str)> = keys
        .iter()
        .filter_map(|k| params.get(k).map(|v| (*k, v)))
        .collect();
    let (title, hint) = if params.get("code").is_some() {
        (
            "Authorization code received",
            "Exchange it within the code lifetime with the curl command printed in the terminal.",
        )
    } else {
        (
            "The authorization request ended without a code",
            "See error and error_description above.",
        )
    };
    state.pages.render(
        StatusCode::OK,
        &DemoCallback {
            title,
            fields,
            hint,
        },
    )
}

/// `GET /health/live`: the process answers.
pub async fn live() -> &'static str {
    "ok"
}

/// `GET /health/ready`: the database answers too; 503 otherwise, so a load balancer stops
/// sending traffic to a node that cannot reach it.
pub async fn ready(State(state): State<AppState>) -> Response {
    match state.svc.store.ping().await {
        Ok(()) => "ok".into_response(),
        Err(error) => {
            tracing::warn!(%error, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database unreachable").into_response()
        }
    }
}
