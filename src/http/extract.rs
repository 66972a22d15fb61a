//! Reading requests: parameters with repeats preserved, cookies, and the same-origin check of
//! form posts.

use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};

use super::AppState;
use super::error::HttpError;
use crate::protocol::error::TokenError;
use crate::protocol::params::Params;

/// A form body as [`Params`], refusing any content type but
/// `application/x-www-form-urlencoded` (RFC 6749 §3.2).
pub struct FormParams(pub Params);

impl<S: Send + Sync> FromRequest<S> for FormParams {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_form = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| {
                v.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            });
        if !is_form {
            return Err(HttpError::Token(TokenError::WrongContentType).into_response());
        }
        // Over the body limit this answers 413 before anything is parsed.
        let body = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(FormParams(Params::parse(&body)))
    }
}

/// Cookie names and attributes: `__Host-` prefix and `Secure` when the issuer is https
/// (checklist item 16); always `HttpOnly`, `SameSite=Lax`, `Path=/`, no `Domain`.
#[derive(Clone, Debug)]
pub struct CookiePolicy {
    pub secure: bool,
}

impl CookiePolicy {
    pub fn session_name(&self) -> &'static str {
        if self.secure {
            "__Host-latchkey_session"
        } else {
            "latchkey_session"
        }
    }

    pub fn browser_name(&self) -> &'static str {
        if self.secure {
            "__Host-latchkey_browser"
        } else {
            "latchkey_browser"
        }
    }

    pub fn build(&self, name: &'static str, value: String) -> Cookie<'static> {
        Cookie::build((name, value))
            .http_only(true)
            .same_site(SameSite::Lax)
            .path("/")
            .secure(self.secure)
            .build()
    }
}

/// The session and browser-binding cookies of a request.
pub struct BrowserCookies<'a> {
    pub session: Option<&'a str>,
    pub browser: Option<&'a str>,
}

impl<'a> BrowserCookies<'a> {
    pub fn read(jar: &'a CookieJar, state: &AppState) -> Self {
        BrowserCookies {
            session: jar.get(state.cookies.session_name()).map(Cookie::value),
            browser: jar.get(state.cookies.browser_name()).map(Cookie::value),
        }
    }
}

/// RFC 6749 §10.12 defence in depth for login and consent posts: a browser that says the post
/// comes from another site is refused. `Origin: null` is what browsers send under
/// `Referrer-Policy: no-referrer`, so it is judged by `Sec-Fetch-Site` alone.
pub fn is_same_origin_post(headers: &HeaderMap, issuer_origin: &str) -> bool {
    let fetch_site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    if fetch_site.is_some_and(|site| site != "same-origin" && site != "none") {
        return false;
    }
    match headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        None | Some("null") => true,
        Some(origin) => origin == issuer_origin,
    }
}

/// [`is_same_origin_post`] as a step of a form handler: a cross-site post is refused with 403.
pub fn require_same_origin(state: &AppState, headers: &HeaderMap) -> Result<(), HttpError> {
    if is_same_origin_post(headers, &state.issuer_origin) {
        Ok(())
    } else {
        Err(crate::service::authorize::FlowError::Forbidden.into())
    }
}

/// The bearer token of the `Authorization` header (RFC 6750 §2.1), if any.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|token| !token.is_empty())
}

/// The raw `Authorization` header, for client authentication.
pub fn authorization(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
}
