//! The account page: a signed-in user lists the clients they granted access and withdraws a
//! grant (ASVS 5.0 V10.7.3, checklist item 23), and signs out (checklist item 17).

use super::authorize::FlowError;
use super::{Latchkey, session};
use crate::protocol::types::Password;
use crate::store::ConsentRecord;

/// The purpose the account page's CSRF tokens are bound to.
const PURPOSE: &str = "account";

/// What the account page shows.
#[derive(Debug)]
pub enum AccountView {
    /// No session: a sign-in form; `failed` after wrong credentials.
    SignIn {
        csrf_token: String,
        failed: bool,
        username: String,
    },
    /// The user's grants, each with a revoke button, and a sign-out button.
    Grants {
        csrf_token: String,
        username: String,
        grants: Vec<ConsentRecord>,
    },
}

/// The account page for this browser.
pub async fn view(
    svc: &Latchkey,
    browser: &str,
    session_cookie: Option<&str>,
) -> Result<AccountView, FlowError> {
    let csrf_token = session::csrf_token(browser, PURPOSE);
    let Some(user_id) = signed_in(svc, session_cookie).await? else {
        return Ok(AccountView::SignIn {
            csrf_token,
            failed: false,
            username: String::new(),
        });
    };
    let user = svc
        .store
        .user(&user_id)
        .await
        .map_err(internal)?
        .ok_or(FlowError::UnknownFlow)?;
    let grants = svc.store.consents_of(&user_id).await.map_err(internal)?;
    Ok(AccountView::Grants {
        csrf_token,
        username: user.username,
        grants,
    })
}

/// The outcome of signing in on the account page.
#[derive(Debug)]
pub enum AccountLogin {
    Failed(AccountView),
    SignedIn { session_cookie: String },
}

/// Signs in without an authorization request, to manage grants.
pub async fn login(
    svc: &Latchkey,
    browser: Option<&str>,
    csrf_token: &str,
    username: String,
    password: Password,
    address: Option<std::net::IpAddr>,
) -> Result<AccountLogin, FlowError> {
    check_csrf(browser, csrf_token)?;
    match session::verify_credentials(svc, &username, password, address).await? {
        None => {
            tracing::info!(target: "audit", event = "login_failed", client_id = "-", username = %username);
            let csrf_token = csrf_token.to_owned();
            Ok(AccountLogin::Failed(AccountView::SignIn {
                csrf_token,
                failed: true,
                username,
            }))
        }
        Some(user) => {
            let session_cookie = session::start(svc, &user.id, svc.now()).await?;
            tracing::info!(target: "audit", event = "login_succeeded", client_id = "-", sub = %user.id, username = %user.username);
            Ok(AccountLogin::SignedIn { session_cookie })
        }
    }
}

/// Withdraws consent for a client and revokes every token the client holds for the user.
pub async fn revoke(
    svc: &Latchkey,
    browser: Option<&str>,
    session_cookie: Option<&str>,
    csrf_token: &str,
    client_id: &str,
) -> Result<(), FlowError> {
    check_csrf(browser, csrf_token)?;
    let user_id = signed_in(svc, session_cookie)
        .await?
        .ok_or(FlowError::Forbidden)?;
    if svc
        .store
        .revoke_consent(&user_id, client_id, svc.now())
        .await
        .map_err(internal)?
    {
        tracing::info!(target: "audit", event = "consent_revoked", client_id = %client_id, sub = %user_id);
    }
    Ok(())
}

/// Ends the browser's session on the server.
pub async fn logout(
    svc: &Latchkey,
    browser: Option<&str>,
    session_cookie: Option<&str>,
    csrf_token: &str,
) -> Result<(), FlowError> {
    check_csrf(browser, csrf_token)?;
    if let Some(cookie) = session_cookie {
        session::end(svc, cookie).await?;
        tracing::info!(target: "audit", event = "logout");
    }
    Ok(())
}

async fn signed_in(
    svc: &Latchkey,
    session_cookie: Option<&str>,
) -> Result<Option<String>, FlowError> {
    let Some(cookie) = session_cookie else {
        return Ok(None);
    };
    Ok(session::live(svc, cookie, svc.now())
        .await?
        .map(|s| s.user_id))
}

fn check_csrf(browser: Option<&str>, presented: &str) -> Result<(), FlowError> {
    if session::csrf_matches(browser, PURPOSE, presented) {
        Ok(())
    } else {
        Err(FlowError::Forbidden)
    }
}

fn internal(e: impl Into<super::InternalError>) -> FlowError {
    FlowError::Internal(e.into())
}
