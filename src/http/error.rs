//! The one place where failures become status codes (STYLE rule 5). Internal causes are logged
//! once here, inside the request's span, and answered with a fixed text.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::pages::ErrorPage;
use crate::protocol::error::{BearerError, ErrorCode, TokenError};
use crate::service::InternalError;
use crate::service::authorize::FlowError;
use crate::service::resource::ResourceFailure;
use crate::service::token::TokenFailure;
use crate::store::StoreError;

/// A failed request, by how it is answered.
#[derive(Debug)]
pub enum HttpError {
    /// An HTML error page, never a redirect (RFC 6749 §4.1.2.1).
    Page {
        status: StatusCode,
        title: &'static str,
        message: String,
        /// What the client's developer must fix, with the values received that show it.
        explanation: Option<Explanation>,
    },
    /// RFC 6749 §5.2 JSON error.
    Token(TokenError),
    /// RFC 6750 §3 bearer challenge.
    Bearer(BearerError),
    /// Too many failed attempts: 429 with `Retry-After` (checklist items 40, 67, 69).
    Throttled { seconds: i64, html: bool },
    /// Storage is unreachable: 503, never a fake success (checklist item 73).
    Unavailable { html: bool },
    /// Anything else unexpected: 500 with a fixed text.
    Internal { html: bool },
}

impl HttpError {
    fn internal(error: InternalError, html: bool) -> Self {
        tracing::error!(error = %error, "request failed");
        match error {
            InternalError::Store(StoreError::Database(_)) => HttpError::Unavailable { html },
            _ => HttpError::Internal { html },
        }
    }
}

impl From<FlowError> for HttpError {
    fn from(error: FlowError) -> Self {
        match error {
            FlowError::Untrusted(untrusted) => HttpError::Page {
                status: StatusCode::BAD_REQUEST,
                title: "This request cannot be completed",
                message: format!(
                    "{} The application that sent you here is misconfigured, so you were not sent back to it.",
                    untrusted.cause
                ),
                explanation: Some(Explanation {
                    text: untrusted.cause.fix().to_owned(),
                    facts: untrusted.facts,
                }),
            },
            FlowError::UnknownFlow => HttpError::Page {
                status: StatusCode::BAD_REQUEST,
                title: "This sign-in request is no longer valid",
                message: error.to_string(),
                explanation: Some(Explanation {
                    text: "The flow parameter names no pending authorization request for this browser: it expired (30 minutes after the authorization request), it was already answered (back button or a second tab), or the browser lost the cookie that ties it to the request (cookies blocked, or another browser). Start a new authorization request.".to_owned(),
                    facts: Vec::new(),
                }),
            },
            FlowError::Forbidden => HttpError::Page {
                status: StatusCode::FORBIDDEN,
                title: "The form could not be verified",
                message: error.to_string(),
                explanation: Some(Explanation {
                    text: "The form's csrf_token does not belong to this browser's cookie, or the request came from another site (Origin or Sec-Fetch-Site). Post the form Latchkey served, from its own page, with cookies enabled.".to_owned(),
                    facts: Vec::new(),
                }),
            },
            FlowError::Throttled(seconds) => HttpError::Throttled {
                seconds,
                html: true,
            },
            FlowError::Internal(e) => HttpError::internal(e, true),
        }
    }
}

impl From<TokenFailure> for HttpError {
    fn from(failure: TokenFailure) -> Self {
        match failure {
            TokenFailure::Protocol(e) => HttpError::Token(e),
            TokenFailure::Internal(e) => HttpError::internal(e, false),
            TokenFailure::Throttled(seconds) => HttpError::Throttled {
                seconds,
                html: false,
            },
        }
    }
}

impl From<TokenError> for HttpError {
    fn from(error: TokenError) -> Self {
        HttpError::Token(error)
    }
}

impl From<ResourceFailure> for HttpError {
    fn from(failure: ResourceFailure) -> Self {
        match failure {
            ResourceFailure::Bearer(e) => HttpError::Bearer(e),
            ResourceFailure::Store(e) => HttpError::internal(e.into(), false),
        }
    }
}

/// What a developer must fix, shown under the user's message on an error page.
#[derive(Clone, Debug, Default)]
pub struct Explanation {
    pub text: String,
    /// Values the request carried that show the problem (never a secret).
    pub facts: Vec<(String, String)>,
}

/// RFC 6749 §5.2 error body. `request_id` (an extension member, as §5.2 allows) is the
/// `x-request-id` header's value and is in every log line of the request, so a developer can
/// quote it and an operator run `latchkey explain` on it.
fn json_error(status: StatusCode, code: ErrorCode, description: &str) -> Response {
    let request_id = super::current_request_id();
    let body = json!({
        "error": code.as_str(),
        "error_description": description,
        "request_id": request_id,
    });
    (status, Json(body)).into_response()
}

/// An HTML error page; [`super::render_error_pages`] renders it with the configured templates.
fn error_page(
    status: StatusCode,
    title: &str,
    message: &str,
    explanation: Option<Explanation>,
) -> Response {
    let explanation = explanation.unwrap_or_default();
    let page = ErrorPage {
        title: title.to_owned(),
        message: message.to_owned(),
        explanation: (!explanation.text.is_empty()).then_some(explanation.text),
        facts: explanation.facts,
        request_id: super::current_request_id().unwrap_or_else(|| "-".to_owned()),
    };
    let mut response = status.into_response();
    response.extensions_mut().insert(page);
    response
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        match self {
            HttpError::Page {
                status,
                title,
                message,
                explanation,
            } => {
                // The message is a fixed text that echoes no input; with the request span's
                // request_id it lets an operator find why a user saw this page.
                tracing::info!(status = status.as_u16(), reason = %message, "error page");
                error_page(status, title, &message, explanation)
            }
            HttpError::Token(error) => {
                let code = error.code();
                let status = if code == ErrorCode::InvalidClient {
                    StatusCode::UNAUTHORIZED
                } else {
                    StatusCode::BAD_REQUEST
                };
                let mut response = json_error(status, code, &error.to_string());
                if code == ErrorCode::InvalidClient {
                    // RFC 6749 §5.2: 401 "MUST include the WWW-Authenticate response header field
                    // matching the authentication scheme used by the client"; Basic is offered
                    // even when the client used the body, so it can retry with the header.
                    let challenge = if error.is_basic_challenge() {
                        "Basic realm=\"latchkey\""
                    } else {
                        "Basic realm=\"latchkey\", error=\"invalid_client\""
                    };
                    response.headers_mut().insert(
                        header::WWW_AUTHENTICATE,
                        HeaderValue::from_static(challenge),
                    );
                }
                response
            }
            HttpError::Bearer(error) => bearer_challenge(error),
            HttpError::Throttled { seconds, html } => {
                let message = format!("Too many failed attempts. Try again in {seconds} seconds.");
                let mut response = if html {
                    error_page(StatusCode::TOO_MANY_REQUESTS, "Please wait", &message, None)
                } else {
                    json_error(
                        StatusCode::TOO_MANY_REQUESTS,
                        ErrorCode::TemporarilyUnavailable,
                        &message,
                    )
                };
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
                response
            }
            HttpError::Unavailable { html: true } | HttpError::Internal { html: true } => {
                error_page(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "Please try again in a moment.",
                    None,
                )
            }
            HttpError::Unavailable { html: false } => json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::TemporarilyUnavailable,
                "The server cannot reach its storage; try again.",
            ),
            HttpError::Internal { html: false } => json_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                ErrorCode::ServerError,
                "Internal server error.",
            ),
        }
    }
}

/// RFC 6750 §3: a missing token gets a bare challenge; an invalid one `invalid_token` (401);
/// a token without the needed scope `insufficient_scope` (403).
fn bearer_challenge(error: BearerError) -> Response {
    let (status, challenge) = match error {
        BearerError::Missing => (StatusCode::UNAUTHORIZED, "Bearer realm=\"latchkey\"".to_owned()),
        BearerError::InvalidToken => (
            StatusCode::UNAUTHORIZED,
            format!("Bearer realm=\"latchkey\", error=\"invalid_token\", error_description=\"{error}\""),
        ),
        BearerError::InsufficientScope => (
            StatusCode::FORBIDDEN,
            "Bearer realm=\"latchkey\", error=\"insufficient_scope\", scope=\"openid profile email\"".to_owned(),
        ),
        BearerError::InvalidRequest => (StatusCode::BAD_REQUEST, "Bearer realm=\"latchkey\", error=\"invalid_request\"".to_owned()),
    };
    let code = match error {
        BearerError::Missing | BearerError::InvalidToken => ErrorCode::InvalidToken,
        BearerError::InsufficientScope => ErrorCode::InsufficientScope,
        BearerError::InvalidRequest => ErrorCode::InvalidRequest,
    };
    let mut response = json_error(status, code, &error.to_string());
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}
