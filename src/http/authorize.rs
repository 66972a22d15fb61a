//! Front-channel handlers: authorization endpoint, login and consent pages.

use axum::Extension;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;

use super::error::HttpError;
use super::extract::{BrowserCookies, FormParams, require_same_origin};
use super::pages;
use super::{AppState, ClientIp};
use crate::protocol::metadata::paths;
use crate::protocol::params::Params;
use crate::protocol::types::Password;
use crate::service::authorize::{self, ConsentForm, ConsentStep, LoginForm, LoginOutcome, Next};

/// `GET /authorize` (RFC 6749 §4.1.1).
pub async fn authorize_get(
    State(state): State<AppState>,
    jar: CookieJar,
    RawQuery(query): RawQuery,
) -> Result<Response, HttpError> {
    let params = Params::parse(query.unwrap_or_default().as_bytes());
    begin(&state, jar, &params).await
}

/// `POST /authorize` (RFC 6749 §3.1: "MAY support the use of the HTTP POST method as well").
pub async fn authorize_post(
    State(state): State<AppState>,
    jar: CookieJar,
    body: axum::body::Bytes,
) -> Result<Response, HttpError> {
    begin(&state, jar, &Params::parse(&body)).await
}

async fn begin(state: &AppState, jar: CookieJar, params: &Params) -> Result<Response, HttpError> {
    let cookies = BrowserCookies::read(&jar, state);
    let begun = authorize::begin(&state.svc, params, cookies.browser, cookies.session).await?;
    let jar = match begun.new_browser_cookie {
        Some(value) => jar
            .clone()
            .add(state.cookies.build(state.cookies.browser_name(), value)),
        None => jar.clone(),
    };
    Ok((jar, next_response(begun.next)).into_response())
}

/// Form posts are answered with 303 so the browser follows with a GET and no body (RFC 9700
/// §4.12).
fn next_response(next: Next) -> Response {
    match next {
        Next::Login { flow } => Redirect::to(&flow_url(paths::LOGIN, &flow)).into_response(),
        Next::Consent { flow } => Redirect::to(&flow_url(paths::CONSENT, &flow)).into_response(),
        Next::Client(url) => Redirect::to(&url).into_response(),
    }
}

fn flow_url(path: &str, flow: &str) -> String {
    let query: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("flow", flow)
        .finish();
    format!("{path}?{query}")
}

/// `GET /login?flow=…`: the login page of CONTRACT §4.
pub async fn login_page(
    State(state): State<AppState>,
    jar: CookieJar,
    RawQuery(query): RawQuery,
) -> Result<Response, HttpError> {
    let params = Params::parse(query.unwrap_or_default().as_bytes());
    let flow = params.get("flow").unwrap_or_default();
    let cookies = BrowserCookies::read(&jar, &state);
    let page = authorize::login_page(&state.svc, flow, cookies.browser).await?;
    Ok(state
        .pages
        .render(StatusCode::OK, &pages::Login::from(&page)))
}

/// `POST /login`: checks the credentials; a failure shows the page again with status 200.
pub async fn login_submit(
    State(state): State<AppState>,
    Extension(ClientIp(address)): Extension<ClientIp>,
    jar: CookieJar,
    headers: HeaderMap,
    FormParams(mut params): FormParams,
) -> Result<Response, HttpError> {
    require_same_origin(&state, &headers)?;
    let form = LoginForm {
        flow: params.take("flow").unwrap_or_default(),
        csrf_token: params.take("csrf_token").unwrap_or_default(),
        username: params.take("username").unwrap_or_default(),
        password: Password::new(params.take("password").unwrap_or_default()),
    };
    let cookies = BrowserCookies::read(&jar, &state);
    match authorize::login(&state.svc, form, cookies.browser, address).await? {
        LoginOutcome::Failed(page) => Ok(state
            .pages
            .render(StatusCode::OK, &pages::Login::from(&page))),
        LoginOutcome::LoggedIn {
            session_cookie,
            next,
        } => {
            let jar = jar.clone().add(
                state
                    .cookies
                    .build(state.cookies.session_name(), session_cookie),
            );
            Ok((jar, next_response(next)).into_response())
        }
    }
}

/// `GET /consent?flow=…`: the consent page of CONTRACT §4.
pub async fn consent_page(
    State(state): State<AppState>,
    jar: CookieJar,
    RawQuery(query): RawQuery,
) -> Result<Response, HttpError> {
    let params = Params::parse(query.unwrap_or_default().as_bytes());
    let flow = params.get("flow").unwrap_or_default();
    let cookies = BrowserCookies::read(&jar, &state);
    match authorize::consent_page(&state.svc, flow, cookies.browser, cookies.session).await? {
        ConsentStep::Show(page) => Ok(state
            .pages
            .render(StatusCode::OK, &pages::Consent::from(&page))),
        ConsentStep::Login { flow } => Ok(next_response(Next::Login { flow })),
    }
}

/// `POST /consent`: allow or deny, then back to the client.
pub async fn consent_submit(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    FormParams(mut params): FormParams,
) -> Result<Response, HttpError> {
    require_same_origin(&state, &headers)?;
    let form = ConsentForm {
        flow: params.take("flow").unwrap_or_default(),
        csrf_token: params.take("csrf_token").unwrap_or_default(),
        allow: params.get("decision") == Some("allow") && !params.is_repeated("decision"),
    };
    let cookies = BrowserCookies::read(&jar, &state);
    let next = authorize::decide(&state.svc, form, cookies.browser, cookies.session).await?;
    Ok(next_response(next))
}
