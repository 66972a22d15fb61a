//! The account page: list and withdraw grants, sign in and out without a client.

use axum::Extension;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar};

use super::error::HttpError;
use super::extract::{BrowserCookies, FormParams, require_same_origin};
use super::pages;
use super::{AppState, ClientIp};
use crate::protocol::metadata::paths;
use crate::protocol::params::Params;
use crate::protocol::types::Password;
use crate::service::account::{self, AccountLogin};
use crate::service::authorize::FlowError;
use crate::service::logout::{self, EndSession, EndSessionRequest};

/// `GET /account`.
pub async fn show(State(state): State<AppState>, jar: CookieJar) -> Result<Response, HttpError> {
    let cookies = BrowserCookies::read(&jar, &state);
    let (browser, jar) = match cookies.browser {
        Some(browser) => (browser.to_owned(), jar.clone()),
        None => {
            let value = crate::crypto::random_token();
            let cookie = state
                .cookies
                .build(state.cookies.browser_name(), value.clone());
            (value, jar.clone().add(cookie))
        }
    };
    let view = account::view(&state.svc, &browser, cookies.session).await?;
    Ok((
        jar,
        state
            .pages
            .render(StatusCode::OK, &pages::Account::from(&view)),
    )
        .into_response())
}

/// `POST /account/login`.
pub async fn login(
    State(state): State<AppState>,
    Extension(ClientIp(address)): Extension<ClientIp>,
    jar: CookieJar,
    headers: HeaderMap,
    FormParams(mut params): FormParams,
) -> Result<Response, HttpError> {
    require_same_origin(&state, &headers)?;
    let cookies = BrowserCookies::read(&jar, &state);
    let csrf_token = params.take("csrf_token").unwrap_or_default();
    let username = params.take("username").unwrap_or_default();
    let password = Password::new(params.take("password").unwrap_or_default());
    match account::login(
        &state.svc,
        cookies.browser,
        &csrf_token,
        username,
        password,
        address,
    )
    .await?
    {
        AccountLogin::Failed(view) => Ok(state
            .pages
            .render(StatusCode::OK, &pages::Account::from(&view))),
        AccountLogin::SignedIn { session_cookie } => {
            let jar = jar.clone().add(
                state
                    .cookies
                    .build(state.cookies.session_name(), session_cookie),
            );
            Ok((jar, Redirect::to(paths::ACCOUNT)).into_response())
        }
    }
}

/// `POST /account/revoke`.
pub async fn revoke(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    FormParams(mut params): FormParams,
) -> Result<Response, HttpError> {
    require_same_origin(&state, &headers)?;
    let cookies = BrowserCookies::read(&jar, &state);
    let csrf_token = params.take("csrf_token").unwrap_or_default();
    let client_id = params.take("client_id").unwrap_or_default();
    account::revoke(
        &state.svc,
        cookies.browser,
        cookies.session,
        &csrf_token,
        &client_id,
    )
    .await?;
    Ok(Redirect::to(paths::ACCOUNT).into_response())
}

/// `POST /logout`: the session ends on the server and the cookie is cleared.
pub async fn logout(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    FormParams(mut params): FormParams,
) -> Result<Response, HttpError> {
    require_same_origin(&state, &headers)?;
    let cookies = BrowserCookies::read(&jar, &state);
    let csrf_token = params.take("csrf_token").unwrap_or_default();
    account::logout(&state.svc, cookies.browser, cookies.session, &csrf_token).await?;
    let jar = without_session(jar, &state);
    Ok((
        jar,
        state.pages.render(StatusCode::OK, &pages::SignedOut {}),
    )
        .into_response())
}

/// The jar with the session cookie cleared (the session itself is ended on the server).
fn without_session(jar: CookieJar, state: &AppState) -> CookieJar {
    jar.remove(Cookie::build(state.cookies.session_name()).path("/"))
}

/// `GET` and `POST /end_session` (OpenID Connect RP-Initiated Logout 1.0 §2). A post from the
/// confirmation page carries `csrf_token`; a client's post does not.
pub async fn end_session_get(
    State(state): State<AppState>,
    jar: CookieJar,
    RawQuery(query): RawQuery,
) -> Result<Response, HttpError> {
    let params = Params::parse(query.unwrap_or_default().as_bytes());
    end_session(state, jar, params, None).await
}

pub async fn end_session_post(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    FormParams(mut params): FormParams,
) -> Result<Response, HttpError> {
    let Some(confirmation) = params.take("csrf_token") else {
        // A client's cross-site POST comes without the SameSite=Lax session cookie: the same
        // request as a top-level GET carries it, so the session really ends.
        let request = EndSessionRequest::parse(&params).map_err(FlowError::from)?;
        let query = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(request.fields())
            .finish();
        return Ok(Redirect::to(&format!("{}?{query}", paths::END_SESSION)).into_response());
    };
    require_same_origin(&state, &headers)?;
    end_session(state, jar, params, Some(confirmation)).await
}

async fn end_session(
    state: AppState,
    jar: CookieJar,
    params: Params,
    confirmation: Option<String>,
) -> Result<Response, HttpError> {
    let request = EndSessionRequest::parse(&params).map_err(FlowError::from)?;
    let cookies = BrowserCookies::read(&jar, &state);
    let ended = logout::end_session(
        &state.svc,
        request,
        cookies.browser,
        cookies.session,
        confirmation.as_deref(),
    )
    .await?;
    let jar = if ended.session_ended {
        without_session(jar, &state)
    } else {
        jar
    };
    let response = match &ended.next {
        EndSession::Confirm {
            csrf_token,
            request,
            client_name,
        } => {
            let fields = request.fields();
            let page = pages::EndSessionConfirm {
                csrf_token,
                client_name: client_name.as_deref(),
                fields,
            };
            state.pages.render(StatusCode::OK, &page)
        }
        EndSession::Redirect(url) => Redirect::to(url).into_response(),
        EndSession::SignedOut => state.pages.render(StatusCode::OK, &pages::SignedOut {}),
    };
    Ok((jar, response).into_response())
}
