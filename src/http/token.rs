//! Back-channel handlers: token (RFC 6749 §3.2), introspection (RFC 7662), revocation
//! (RFC 7009) and userinfo (a protected resource, RFC 6750).

use std::net::IpAddr;

use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::json;

use super::error::HttpError;
use super::extract::{FormParams, authorization, bearer_token};
use super::{AppState, ClientIp};
use crate::protocol::client_auth::{self, ClientCredentials};
use crate::protocol::error::{BearerError, TokenError};
use crate::protocol::params::Params;
use crate::protocol::token::TokenRequest;
use crate::protocol::types::Client;
use crate::service::{resource, token};

/// `POST /token`.
pub async fn token(
    State(state): State<AppState>,
    Extension(ClientIp(address)): Extension<ClientIp>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    FormParams(mut params): FormParams,
) -> Result<Response, HttpError> {
    let client = authenticate(
        &state,
        &headers,
        query.as_deref(),
        address,
        &mut params,
        Callers::Any,
    )
    .await?;
    let request = TokenRequest::parse(&mut params)?;
    let issued = token::issue(&state.svc, &client, request).await?;
    let mut body = json!({
        "access_token": issued.access_token.expose(),
        "token_type": "Bearer",
        "expires_in": issued.expires_in,
        "scope": issued.scope.to_string(),
    });
    if let Some(refresh_token) = &issued.refresh_token {
        body["refresh_token"] = refresh_token.expose().into();
    }
    if let Some(id_token) = &issued.id_token {
        body["id_token"] = id_token.as_str().into();
    }
    Ok(Json(body).into_response())
}

/// `POST /introspect` (RFC 7662 §2.1), for authenticated confidential clients.
pub async fn introspect(
    State(state): State<AppState>,
    Extension(ClientIp(address)): Extension<ClientIp>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    FormParams(params): FormParams,
) -> Result<Response, HttpError> {
    let (client, token) = client_and_token(
        &state,
        &headers,
        query.as_deref(),
        address,
        params,
        Callers::Confidential,
    )
    .await?;
    let answer = resource::introspect(&state.svc, &client, &token).await?;
    Ok(Json(answer).into_response())
}

/// The authenticated caller and the `token` parameter of an introspection or revocation
/// request (RFC 7662 §2.1, RFC 7009 §2.1).
async fn client_and_token(
    state: &AppState,
    headers: &HeaderMap,
    query: Option<&str>,
    address: Option<IpAddr>,
    mut params: Params,
    callers: Callers,
) -> Result<(Client, String), HttpError> {
    let client = authenticate(state, headers, query, address, &mut params, callers).await?;
    // RFC 6749 §3.2 (whose §5.2 errors RFC 7662 and RFC 7009 reuse): no parameter twice.
    if params.has_repeats() {
        return Err(TokenError::RepeatedParameter.into());
    }
    let token = params
        .take("token")
        .ok_or(TokenError::MissingParameter("token"))?;
    Ok((client, token))
}

/// `POST /revoke` (RFC 7009 §2.1): 200 for anything the client may revoke or that is unknown.
/// Public clients identify themselves with `client_id` (RFC 7009 §5), so a browser app can
/// revoke its refresh token at sign-out.
pub async fn revoke(
    State(state): State<AppState>,
    Extension(ClientIp(address)): Extension<ClientIp>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    FormParams(params): FormParams,
) -> Result<Response, HttpError> {
    let (client, token) = client_and_token(
        &state,
        &headers,
        query.as_deref(),
        address,
        params,
        Callers::Any,
    )
    .await?;
    resource::revoke(&state.svc, &client, &token).await?;
    Ok(Json(json!({})).into_response())
}

/// RFC 6750 §3.1: two `Authorization` headers make a malformed request (400
/// `invalid_request`); a proxy that reads the other one must not disagree about the caller.
fn single_authorization(headers: &HeaderMap) -> Result<(), HttpError> {
    if headers
        .get_all(axum::http::header::AUTHORIZATION)
        .iter()
        .count()
        > 1
    {
        return Err(HttpError::Bearer(BearerError::InvalidRequest));
    }
    Ok(())
}

/// `GET /userinfo` with `Authorization: Bearer`.
pub async fn userinfo_get(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, HttpError> {
    single_authorization(&headers)?;
    let bearer = bearer_token(&headers).ok_or(HttpError::Bearer(BearerError::Missing))?;
    Ok(Json(resource::userinfo(&state.svc, bearer).await?).into_response())
}

/// `POST /userinfo`: the header, or `access_token` in a form body (RFC 6750 §2.2), not both.
pub async fn userinfo_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, HttpError> {
    single_authorization(&headers)?;
    let params = Params::parse(&body);
    if params.is_repeated("access_token") {
        return Err(HttpError::Bearer(BearerError::InvalidRequest));
    }
    let bearer = match (bearer_token(&headers), params.get("access_token")) {
        (Some(_), Some(_)) => return Err(HttpError::Bearer(BearerError::InvalidRequest)),
        (Some(token), None) | (None, Some(token)) => token,
        (None, None) => return Err(HttpError::Bearer(BearerError::Missing)),
    };
    Ok(Json(resource::userinfo(&state.svc, bearer).await?).into_response())
}

/// Which clients an endpoint serves.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Callers {
    /// The token endpoint: confidential clients, and public ones by `client_id` alone.
    Any,
    /// Introspection requires a confidential client's credentials (RFC 7662 §2.1).
    Confidential,
}

/// RFC 6749 §2.3.1: credentials "MUST NOT be included in the request URI".
async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    query: Option<&str>,
    address: Option<IpAddr>,
    params: &mut Params,
    callers: Callers,
) -> Result<Client, HttpError> {
    let query = Params::parse(query.unwrap_or_default().as_bytes());
    if query.get("client_secret").is_some() {
        return Err(TokenError::CredentialsInQuery.into());
    }
    // RFC 6749 §2.3: one authentication method per request; two headers are two methods.
    if headers
        .get_all(axum::http::header::AUTHORIZATION)
        .iter()
        .count()
        > 1
    {
        return Err(TokenError::MultipleAuthMethods.into());
    }
    let credentials = client_auth::parse(authorization(headers), params)?;
    if callers == Callers::Confidential && matches!(credentials, ClientCredentials::Public { .. }) {
        return Err(TokenError::ClientAuthFailed.into());
    }
    Ok(token::authenticate(&state.svc, &credentials, address).await?)
}
