//! Where issued tokens are used and checked: userinfo (a protected resource, RFC 6750),
//! introspection (RFC 7662) and revocation (RFC 7009).

use serde::Serialize;

use super::Latchkey;
use super::oidc::StandardClaims;
use super::token::{CLIENT_GRANT, TokenFailure};
use crate::crypto::token_hash;
use crate::protocol::access_token::AccessTokenClaims;
use crate::protocol::error::BearerError;
use crate::protocol::token::RefreshGrant;
use crate::protocol::types::{Client, GrantType, Scopes};
use crate::store::StoreError;

/// A refused bearer request, or a storage failure (which never counts as "valid").
#[derive(Debug, thiserror::Error)]
pub enum ResourceFailure {
    #[error(transparent)]
    Bearer(#[from] BearerError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The userinfo response (CONTRACT §4): `sub` and the claims the granted scopes allow.
#[derive(Debug, Serialize)]
pub struct UserInfo {
    pub sub: String,
    #[serde(flatten)]
    pub claims: StandardClaims,
}

/// Scopes that entitle a token to the userinfo endpoint.
const USERINFO_SCOPES: [&str; 3] = ["openid", "profile", "email"];

/// Validates an access token as a resource server must (RFC 9068 §4, RFC 6750 §3.1), including
/// that its grant has not been revoked since, and returns the user's claims.
pub async fn userinfo(svc: &Latchkey, bearer: &str) -> Result<UserInfo, ResourceFailure> {
    let now = svc.now();
    let issuer = &svc.settings.issuer;
    let claims = svc
        .keys()
        .verify_access_token(bearer, issuer, Some(issuer), now)
        .map_err(|_| BearerError::InvalidToken)?;
    if live_grant(svc, &claims).await?.is_none() {
        return Err(BearerError::InvalidToken.into());
    }
    let scope = Scopes::parse(&claims.scope).map_err(|_| BearerError::InvalidToken)?;
    if !USERINFO_SCOPES.iter().any(|s| scope.contains(s)) {
        return Err(BearerError::InsufficientScope.into());
    }
    let user = svc
        .store
        .user(&claims.sub)
        .await?
        .ok_or(BearerError::InvalidToken)?;
    Ok(UserInfo {
        claims: StandardClaims::released(&user, &scope),
        sub: user.id,
    })
}

/// RFC 7662 §2.2 response. An inactive token gets `{"active": false}` and nothing else.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct Introspection {
    pub active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<&'static str>,
}

/// RFC 7662 §2.1: the caller is an authenticated client and learns only about its own tokens;
/// everything else, including other clients' tokens, is `{"active": false}`.
pub async fn introspect(
    svc: &Latchkey,
    caller: &Client,
    token: &str,
) -> Result<Introspection, TokenFailure> {
    let now = svc.now();
    if let Some(claims) = own_access_token(svc, caller, token, now) {
        let live = if claims.grant_id == CLIENT_GRANT {
            live_client_token(svc, &claims).await?
        } else {
            live_grant(svc, &claims).await?.is_some()
        };
        if live {
            return Ok(Introspection {
                active: true,
                scope: Some(claims.scope),
                client_id: Some(claims.client_id),
                sub: Some(claims.sub),
                exp: Some(claims.exp),
                iat: Some(claims.iat),
                iss: Some(claims.iss),
                aud: Some(claims.aud),
                jti: Some(claims.jti),
                token_type: Some("Bearer"),
            });
        }
        return Ok(Introspection::default());
    }
    let idle_ttl = svc.settings.refresh_token_idle_ttl;
    match svc.store.refresh_token_grant(&token_hash(token)).await? {
        Some(grant) if grant.client_id == caller.id && grant.is_live(idle_ttl, now) => {
            // The token ends at its family's absolute end or its idle end, whichever is first.
            let idle_end = grant
                .refreshed_at
                .map_or(i64::MAX, |at| at.saturating_add(idle_ttl));
            Ok(Introspection {
                active: true,
                scope: Some(grant.scope.to_string()),
                client_id: Some(grant.client_id),
                sub: Some(grant.user_id),
                exp: Some(grant.expires_at.min(idle_end)),
                iss: Some(svc.settings.issuer.clone()),
                token_type: Some("refresh_token"),
                ..Introspection::default()
            })
        }
        _ => Ok(Introspection::default()),
    }
}

/// RFC 7009 §2.1: revokes the caller's own access or refresh token and, with it, the whole
/// grant, so every token issued from the same authorization stops working. Unknown tokens and
/// other clients' tokens change nothing and still answer 200 (§2.2).
pub async fn revoke(svc: &Latchkey, caller: &Client, token: &str) -> Result<(), TokenFailure> {
    let now = svc.now();
    let grant_id = match own_access_token(svc, caller, token, now) {
        // A client-credentials token has no grant to revoke; it expires on its own.
        Some(claims) if claims.grant_id == CLIENT_GRANT => None,
        Some(claims) => {
            svc.store.revoke_grant(&claims.grant_id, now).await?;
            Some(claims.grant_id)
        }
        // Spent refresh tokens count too: a rotation racing this revocation must not leave
        // a live successor (checklist item 78).
        None => {
            svc.store
                .revoke_refresh_token_grant(&token_hash(token), &caller.id, now)
                .await?
        }
    };
    if let Some(grant_id) = grant_id {
        tracing::info!(target: "audit", event = "grant_revoked", client_id = %caller.id, grant_id = %grant_id);
    }
    Ok(())
}

/// The claims of `token` when it is a valid access token issued to `caller`.
fn own_access_token(
    svc: &Latchkey,
    caller: &Client,
    token: &str,
    now: i64,
) -> Option<AccessTokenClaims> {
    svc.keys()
        .verify_access_token(token, &svc.settings.issuer, None, now)
        .ok()
        .filter(|claims| claims.client_id == caller.id)
        .map(|claims| AccessTokenClaims::clone(&claims))
}

/// The grant behind an access token, if it is still live: not revoked, user enabled.
/// The access token's own `exp` bounds its life; the family's end does not shorten it.
async fn live_grant(
    svc: &Latchkey,
    claims: &AccessTokenClaims,
) -> Result<Option<RefreshGrant>, StoreError> {
    Ok(svc.store.grant(&claims.grant_id).await?.filter(|g| {
        g.client_id == claims.client_id && g.user_id == claims.sub && !g.revoked && !g.user_disabled
    }))
}

/// A client-credentials token (RFC 6749 §4.4) is live while its client exists and still may
/// use that grant; it has no grant of its own.
async fn live_client_token(svc: &Latchkey, claims: &AccessTokenClaims) -> Result<bool, StoreError> {
    if claims.grant_id != CLIENT_GRANT || claims.sub != claims.client_id {
        return Ok(false);
    }
    Ok(svc
        .store
        .client(&claims.client_id)
        .await?
        .is_some_and(|c| c.client.allows(GrantType::ClientCredentials)))
}
