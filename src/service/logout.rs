//! OpenID Connect RP-Initiated Logout 1.0: a client sends the browser to the end-session
//! endpoint; the user's session ends, and the browser goes back to the client only to a
//! `post_logout_redirect_uri` registered for it, byte for byte (§3.1). A logout that does not
//! prove it comes from the signed-in user's client (a valid `id_token_hint` for that user) is
//! confirmed by the user first, so a cross-site link cannot sign anyone out (§2, logout CSRF).

use super::authorize::FlowError;
use super::{InternalError, Latchkey, oidc, session};
use crate::protocol::error::UntrustedRequest;
use crate::protocol::params::Params;

const PURPOSE: &str = "end-session";

/// The parameters of §2, as sent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EndSessionRequest {
    pub id_token_hint: Option<String>,
    pub client_id: Option<String>,
    pub post_logout_redirect_uri: Option<String>,
    pub state: Option<String>,
}

impl EndSessionRequest {
    pub fn parse(params: &Params) -> Result<Self, UntrustedRequest> {
        if params.has_repeats() {
            return Err(UntrustedRequest::RepeatedLogoutParameter);
        }
        let take = |name: &str| params.get(name).map(str::to_owned);
        Ok(EndSessionRequest {
            id_token_hint: take("id_token_hint"),
            client_id: take("client_id"),
            post_logout_redirect_uri: take("post_logout_redirect_uri"),
            state: take("state"),
        })
    }

    /// The parameters that were sent, by name: to post them back or re-send them as a query.
    pub fn fields(&self) -> Vec<(&'static str, &str)> {
        [
            ("id_token_hint", &self.id_token_hint),
            ("client_id", &self.client_id),
            ("post_logout_redirect_uri", &self.post_logout_redirect_uri),
            ("state", &self.state),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.as_deref().map(|v| (name, v)))
        .collect()
    }
}

/// What the browser sees next.
#[derive(Debug)]
pub enum EndSession {
    /// The user confirms first; the form posts the request back with `csrf_token`.
    Confirm {
        csrf_token: String,
        request: EndSessionRequest,
        client_name: Option<String>,
    },
    /// Back to the client, at its registered URI, with `state`.
    Redirect(String),
    /// The signed-out page.
    SignedOut,
}

/// The outcome and whether the session cookie is to be cleared.
pub struct Ended {
    pub next: EndSession,
    pub session_ended: bool,
}

/// Handles an end-session request. `confirmation` is the CSRF token of the confirmation form
/// when the user submitted it.
pub async fn end_session(
    svc: &Latchkey,
    request: EndSessionRequest,
    browser: Option<&str>,
    session_cookie: Option<&str>,
    confirmation: Option<&str>,
) -> Result<Ended, FlowError> {
    let now = svc.now();
    let hinted = request
        .id_token_hint
        .as_deref()
        .and_then(|hint| oidc::read_hint(svc, hint));
    if let (Some(hinted), Some(client_id)) = (&hinted, &request.client_id) {
        if &hinted.client_id != client_id {
            return Err(UntrustedRequest::LogoutClientMismatch.into());
        }
    }
    let client_id = hinted
        .as_ref()
        .map(|h| h.client_id.clone())
        .or_else(|| request.client_id.clone());
    let client = match &client_id {
        Some(id) => svc
            .store
            .client(id)
            .await
            .map_err(internal)?
            .map(|r| r.client),
        None => None,
    };
    // §3.1: only to a URI registered for the client the request names, byte for byte.
    let redirect = match &request.post_logout_redirect_uri {
        None => None,
        Some(uri) => {
            let registered = client
                .as_ref()
                .is_some_and(|c| c.post_logout_redirect_uris.iter().any(|r| r == uri));
            if !registered {
                return Err(UntrustedRequest::UnregisteredPostLogoutRedirectUri.into());
            }
            Some(with_state(uri, request.state.as_deref()))
        }
    };
    let session = match session_cookie {
        Some(cookie) => session::live(svc, cookie, now).await?,
        None => None,
    };
    let proven = match (&session, &hinted) {
        (Some(session), Some(hinted)) => session.user_id == hinted.sub,
        _ => false,
    };
    let confirmed =
        confirmation.is_some_and(|token| session::csrf_matches(browser, PURPOSE, token));
    if session.is_some() && !proven && !confirmed {
        return Ok(Ended {
            next: EndSession::Confirm {
                csrf_token: session::csrf_token(browser.unwrap_or_default(), PURPOSE),
                request,
                client_name: client.map(|c| c.name),
            },
            session_ended: false,
        });
    }
    let mut session_ended = false;
    if let (Some(cookie), Some(session)) = (session_cookie, &session) {
        session::end(svc, cookie).await?;
        session_ended = true;
        tracing::info!(target: "audit", event = "logout", sub = %session.user_id, client_id = client_id.as_deref().unwrap_or("-"));
    }
    Ok(Ended {
        next: redirect.map_or(EndSession::SignedOut, EndSession::Redirect),
        session_ended,
    })
}

/// `uri` with `state` added to its query (§3).
fn with_state(uri: &str, state: Option<&str>) -> String {
    let Some(state) = state else {
        return uri.to_owned();
    };
    match url::Url::parse(uri) {
        Ok(mut url) => {
            url.query_pairs_mut().append_pair("state", state);
            url.into()
        }
        Err(_) => uri.to_owned(),
    }
}

fn internal(e: impl Into<InternalError>) -> FlowError {
    FlowError::Internal(e.into())
}
