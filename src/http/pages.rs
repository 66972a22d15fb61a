//! One askama template per page; markup lives in `templates/`, escaping is automatic.

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use crate::service::account::AccountView;
use crate::service::authorize::{ConsentPage, LoginPage};

#[derive(Template)]
#[template(path = "login.html")]
pub struct Login<'a> {
    pub flow: &'a str,
    pub csrf_token: &'a str,
    pub client_name: &'a str,
    pub failed: bool,
    pub username: &'a str,
}

impl<'a> From<&'a LoginPage> for Login<'a> {
    fn from(page: &'a LoginPage) -> Self {
        Login {
            flow: &page.flow,
            csrf_token: &page.csrf_token,
            client_name: &page.client_name,
            failed: page.failed,
            username: &page.username,
        }
    }
}

#[derive(Template)]
#[template(path = "consent.html")]
pub struct Consent<'a> {
    pub flow: &'a str,
    pub csrf_token: &'a str,
    pub client_name: &'a str,
    pub redirect_host: &'a str,
    pub scopes: Vec<(&'a str, String)>,
    pub extends_grant: bool,
}

impl<'a> From<&'a ConsentPage> for Consent<'a> {
    fn from(page: &'a ConsentPage) -> Self {
        Consent {
            flow: &page.flow,
            csrf_token: &page.csrf_token,
            client_name: &page.client_name,
            redirect_host: &page.redirect_host,
            scopes: page
                .scopes
                .iter()
                .map(|s| (s.as_str(), describe_scope(s)))
                .collect(),
            extends_grant: page.extends_grant,
        }
    }
}

/// Each scope in plain words for the consent page.
pub fn describe_scope(scope: &str) -> String {
    match scope {
        "openid" => "sign you in and know who you are".to_owned(),
        "profile" => "see your name and username".to_owned(),
        "email" => "see your email address".to_owned(),
        "offline_access" => "keep access while you are away (refresh tokens)".to_owned(),
        other => format!("use the permission \u{201c}{other}\u{201d}"),
    }
}

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage<'a> {
    pub title: &'a str,
    pub message: &'a str,
    pub request_id: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "demo_callback.html")]
pub struct DemoCallback<'a> {
    pub title: &'a str,
    pub fields: Vec<(&'a str, &'a str)>,
    pub hint: &'a str,
}

/// Renders a page with a status. A template error is a bug: it answers a fixed 500 text.
pub fn render(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(error) => {
            tracing::error!(%error, "template rendering failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "account.html")]
pub struct Account<'a> {
    pub view: &'a AccountView,
}

#[derive(Template)]
#[template(path = "signed_out.html")]
pub struct SignedOut;

/// RP-Initiated Logout: the user confirms a logout the client could not prove.
#[derive(Template)]
#[template(path = "end_session.html")]
pub struct EndSessionConfirm<'a> {
    pub csrf_token: &'a str,
    pub client_name: Option<&'a str>,
    /// The request's parameters, posted back unchanged.
    pub fields: Vec<(&'static str, &'a str)>,
}
