//! Browser sessions and the checks every page form shares: credentials, session cookies and
//! CSRF tokens.

use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use std::net::IpAddr;

use super::authorize::FlowError;
use super::{InternalError, Latchkey, throttle};
use crate::crypto::{self, ct_eq, token_hash};
use crate::protocol::types::Password;
use crate::store::{SessionRecord, UserRecord};

/// The user whose username and password these are, if enabled. Unknown users are checked
/// against a dummy hash so both failures take the same path and time (ASVS 5.0 V6.3.8).
/// Attempts are throttled per username and per address ([`super::throttle`]); while one is
/// waiting, no password is checked at all.
pub async fn verify_credentials(
    svc: &Latchkey,
    username: &str,
    password: Password,
    address: Option<IpAddr>,
) -> Result<Option<UserRecord>, FlowError> {
    let keys = throttle::login_keys(username, address);
    if let Some(wait) = svc.throttle.wait(&keys, svc.now()) {
        tracing::info!(target: "audit", event = "login_throttled", retry_after = wait);
        return Err(FlowError::Throttled(wait));
    }
    let user = svc
        .store
        .user_by_username(username)
        .await
        .map_err(|e| FlowError::Internal(e.into()))?;
    let stored_hash = user.as_ref().map(|u| u.password_hash.clone());
    let password_ok = crypto::verify_password(stored_hash, password).await;
    let user = user.filter(|u| password_ok && !u.disabled);
    match &user {
        Some(_) => svc.throttle.succeeded(&keys),
        None => svc.throttle.failed(&keys, svc.now()),
    }
    Ok(user)
}

/// Starts a session with a fresh 256-bit id (no fixation, ASVS 5.0 V7.2.4); returns the cookie
/// value. Only its digest is stored.
pub async fn start(svc: &Latchkey, user_id: &str, now: i64) -> Result<String, InternalError> {
    let cookie = crypto::random_token();
    let session = SessionRecord {
        id_hash: token_hash(&cookie),
        user_id: user_id.to_owned(),
        auth_time: now,
        expires_at: now + svc.settings.session_ttl,
        idle_expires_at: now + svc.settings.session_idle_ttl,
    };
    svc.store.create_session(&session).await?;
    Ok(cookie)
}

/// The live session behind a cookie, its idle end slid forward (ASVS 5.0 V7.3.1, V7.3.2).
pub async fn live(
    svc: &Latchkey,
    cookie: &str,
    now: i64,
) -> Result<Option<SessionRecord>, InternalError> {
    let idle_end = now + svc.settings.session_idle_ttl;
    Ok(svc
        .store
        .session(&token_hash(cookie), now, idle_end)
        .await?)
}

/// Ends the session behind a cookie on the server, so the cookie is useless afterwards.
pub async fn end(svc: &Latchkey, cookie: &str) -> Result<(), InternalError> {
    svc.store.delete_session(&token_hash(cookie)).await?;
    Ok(())
}

/// The CSRF token of a form in one browser: a digest of the browser-binding cookie and what the
/// form is for (a flow id, or a fixed purpose), valid only where both are (RFC 6749 §10.12).
pub fn csrf_token(browser: &str, purpose: &str) -> String {
    let input = format!("latchkey-csrf\0{browser}\0{purpose}");
    URL_SAFE_NO_PAD.encode(digest(&SHA256, input.as_bytes()))
}

/// Constant-time check of a posted CSRF token.
pub fn csrf_matches(browser: Option<&str>, purpose: &str, presented: &str) -> bool {
    browser.is_some_and(|b| ct_eq(csrf_token(b, purpose).as_bytes(), presented.as_bytes()))
}
