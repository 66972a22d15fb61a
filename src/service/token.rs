//! The token endpoint (RFC 6749 §3.2, §4.1.3, §6): client authentication, code exchange and
//! refresh, each state change one atomic store call.

use std::sync::Arc;

use super::trail::Detail;
use super::{InternalError, Latchkey, oidc, throttle};
use crate::crypto::{self, ct_eq, token_hash};
use crate::protocol::access_token::{self, AccessTokenClaims};
use crate::protocol::client_auth::ClientCredentials;
use crate::protocol::error::TokenError;
use crate::protocol::token::{
    self as rules, CodeGrant, CodePresentation, RefreshGrant, TokenRequest,
};
use crate::protocol::types::{AccessToken, Client, GrantType, RefreshToken, Scopes};
use crate::store::{CodeCheck, CodeRedemption, NewRefreshToken, RefreshCheck, RefreshRotation};

/// A failed token request: a protocol error for the client, or an internal failure.
#[derive(Debug, thiserror::Error)]
pub enum TokenFailure {
    #[error(transparent)]
    Protocol(#[from] TokenError),
    #[error(transparent)]
    Internal(#[from] InternalError),
    /// Too many failed authentications for this client from this address: wait this long.
    #[error("too many failed client authentications; retry in {0} seconds")]
    Throttled(i64),
}

impl From<crate::store::StoreError> for TokenFailure {
    fn from(e: crate::store::StoreError) -> Self {
        TokenFailure::Internal(e.into())
    }
}

/// A successful token response (RFC 6749 §5.1).
#[derive(Debug)]
pub struct Issued {
    pub access_token: AccessToken,
    pub expires_in: i64,
    pub refresh_token: Option<RefreshToken>,
    pub scope: Scopes,
    /// OIDC Core §3.1.3.3: with scope `openid`.
    pub id_token: Option<String>,
}

/// RFC 6749 §3.2.1: confidential clients authenticate; public clients identify themselves.
/// The secret's digest is compared in constant time. Every failure looks the same to the
/// caller: `invalid_client`.
/// Failures are throttled per client id and address (RFC 6749 §2.3.1: "MUST protect any
/// endpoint utilizing it against brute force attacks").
pub async fn authenticate(
    svc: &Latchkey,
    credentials: &ClientCredentials,
    address: Option<std::net::IpAddr>,
) -> Result<Client, TokenFailure> {
    let keys = throttle::client_keys(credentials.client_id(), address);
    if let Some(wait) = svc.throttle.wait(&keys, svc.now()) {
        tracing::info!(target: "audit", event = "client_auth_throttled", client_id = %credentials.client_id(), retry_after = wait);
        return Err(TokenFailure::Throttled(wait));
    }
    let record = svc.store.client(credentials.client_id()).await?;
    let authenticated = match (credentials, record) {
        (ClientCredentials::Secret { secret, .. }, Some(record))
            if record
                .secret_hash
                .as_ref()
                .is_some_and(|stored| ct_eq(&token_hash(secret.expose()), stored)) =>
        {
            Some(record.client)
        }
        (ClientCredentials::Public { .. }, Some(record)) if record.secret_hash.is_none() => {
            Some(record.client)
        }
        _ => None,
    };
    match authenticated {
        Some(client) => {
            svc.throttle.succeeded(&keys);
            Ok(client)
        }
        None => {
            tracing::info!(target: "audit", event = "client_auth_failed", client_id = %credentials.client_id());
            svc.throttle.failed(&keys, svc.now());
            Err(credentials.failure().into())
        }
    }
}

/// Handles an authenticated client's token request.
pub async fn issue(
    svc: &Latchkey,
    client: &Client,
    request: TokenRequest,
) -> Result<Issued, TokenFailure> {
    if !client.allows(request.grant_type()) {
        return Err(TokenError::GrantNotAllowed.into());
    }
    match request {
        TokenRequest::ClientCredentials { scope } => {
            client_credentials(svc, client, scope.as_ref())
        }
        TokenRequest::AuthorizationCode {
            code,
            redirect_uri,
            code_verifier,
        } => {
            let now = svc.now();
            let client_id = client.id.clone();
            let check: CodeCheck = Arc::new(move |grant: &CodeGrant| {
                let presented = CodePresentation {
                    client_id: &client_id,
                    redirect_uri: redirect_uri.as_deref(),
                    code_verifier: code_verifier.as_ref(),
                    now,
                };
                rules::check_code(grant, &presented)
            });
            exchange_code(svc, client, &token_hash(code.expose()), check, now).await
        }
        TokenRequest::RefreshToken {
            refresh_token,
            scope,
        } => {
            let now = svc.now();
            let idle_ttl = svc.settings.refresh_token_idle_ttl;
            let (client_id, client_scopes) = (client.id.clone(), client.scopes.clone());
            let check: RefreshCheck = Arc::new(move |grant: &RefreshGrant| {
                rules::check_refresh(
                    grant,
                    &client_id,
                    &client_scopes,
                    scope.as_ref(),
                    idle_ttl,
                    now,
                )
            });
            refresh(svc, client, &token_hash(refresh_token.expose()), check, now).await
        }
    }
}

async fn exchange_code(
    svc: &Latchkey,
    client: &Client,
    code_hash: &[u8],
    check: CodeCheck,
    now: i64,
) -> Result<Issued, TokenFailure> {
    let (refresh_token, new_refresh) = new_refresh_token(svc, now);
    let with_refresh = client.allows(GrantType::RefreshToken);
    let grant = match svc
        .store
        .redeem_authorization_code(code_hash, now, check, &new_refresh, with_refresh)
        .await?
    {
        CodeRedemption::Issued(grant) => grant,
        CodeRedemption::Rejected { error, grant_id } => {
            tracing::info!(target: "audit", event = "code_rejected", client_id = %client.id, reason = %error);
            let detail = Detail::new()
                .with("client_id", client.id.as_str())
                .with("error", error.code().as_str())
                .with("reason", error.to_string());
            svc.trail
                .record(now, None, Some(&grant_id), "code_rejected", detail);
            return Err(error.into());
        }
        CodeRedemption::Replayed { grant_id } => {
            tracing::warn!(target: "audit", event = "authorization_code_reuse", client_id = %client.id, grant_id = %grant_id);
            let detail = Detail::new()
                .with("client_id", client.id.as_str())
                .with("reason", TokenError::CodeReplayed.to_string());
            svc.trail
                .record(now, None, Some(&grant_id), "code_replayed", detail);
            return Err(TokenError::CodeReplayed.into());
        }
        CodeRedemption::Unknown => {
            let detail = Detail::new()
                .with("client_id", client.id.as_str())
                .with("reason", TokenError::InvalidCode.to_string());
            svc.trail.record(now, None, None, "code_rejected", detail);
            return Err(TokenError::InvalidCode.into());
        }
    };
    tracing::info!(target: "audit", event = "code_redeemed", client_id = %client.id, sub = %grant.user_id, grant_id = %grant.grant_id);
    let (access_token, jti) = sign(
        svc,
        client,
        &grant.grant_id,
        &grant.user_id,
        &grant.scope,
        grant.auth_time,
        now,
    )?;
    let id_token = id_token_for(
        svc,
        client,
        &grant.user_id,
        &grant.scope,
        grant.auth_time,
        grant.nonce.as_deref(),
        &access_token,
        now,
    )
    .await?;
    let pkce = if grant.code_challenge.is_some() {
        "code_verifier matched the challenge (S256)"
    } else {
        "not used (client opted out)"
    };
    let detail = issued_detail(svc, client, &jti, &grant.scope, id_token.is_some())
        .with("redirect_uri", "matched the authorization request")
        .with("pkce", pkce)
        .with(
            "refresh_token",
            if with_refresh { "issued" } else { "none" },
        );
    svc.trail
        .record(now, None, Some(&grant.grant_id), "code_redeemed", detail);
    Ok(Issued {
        access_token,
        expires_in: svc.settings.access_token_ttl,
        refresh_token: with_refresh.then_some(refresh_token),
        scope: grant.scope,
        id_token,
    })
}

async fn refresh(
    svc: &Latchkey,
    client: &Client,
    token_hash: &[u8],
    check: RefreshCheck,
    now: i64,
) -> Result<Issued, TokenFailure> {
    let (refresh_token, new_refresh) = new_refresh_token(svc, now);
    let (grant, scope) = match svc
        .store
        .rotate_refresh_token(token_hash, now, check, &new_refresh)
        .await?
    {
        RefreshRotation::Rotated { grant, scope } => (grant, scope),
        RefreshRotation::Rejected { error, grant_id } => {
            tracing::info!(target: "audit", event = "refresh_rejected", client_id = %client.id, reason = %error);
            let detail = Detail::new()
                .with("client_id", client.id.as_str())
                .with("error", error.code().as_str())
                .with("reason", error.to_string());
            svc.trail
                .record(now, None, Some(&grant_id), "refresh_rejected", detail);
            return Err(error.into());
        }
        RefreshRotation::Replayed { grant_id } => {
            tracing::warn!(target: "audit", event = "refresh_token_reuse_detected", client_id = %client.id, grant_id = %grant_id);
            let detail = Detail::new()
                .with("client_id", client.id.as_str())
                .with("reason", TokenError::RefreshReplayed.to_string());
            svc.trail
                .record(now, None, Some(&grant_id), "refresh_token_replayed", detail);
            return Err(TokenError::RefreshReplayed.into());
        }
        RefreshRotation::Unknown => {
            let detail = Detail::new()
                .with("client_id", client.id.as_str())
                .with("reason", TokenError::InvalidRefreshToken.to_string());
            svc.trail
                .record(now, None, None, "refresh_rejected", detail);
            return Err(TokenError::InvalidRefreshToken.into());
        }
    };
    tracing::info!(target: "audit", event = "token_refreshed", client_id = %client.id, sub = %grant.user_id, grant_id = %grant.grant_id);
    let (access_token, jti) = sign(
        svc,
        client,
        &grant.grant_id,
        &grant.user_id,
        &scope,
        grant.auth_time,
        now,
    )?;
    // OIDC Core §12.2: a refreshed ID token keeps `sub`, `aud` and `auth_time`, and carries no
    // nonce.
    let id_token = id_token_for(
        svc,
        client,
        &grant.user_id,
        &scope,
        grant.auth_time,
        None,
        &access_token,
        now,
    )
    .await?;
    let detail = issued_detail(svc, client, &jti, &scope, id_token.is_some())
        .with("refresh_token", "rotated: the presented one is spent");
    svc.trail.record(
        now,
        None,
        Some(&grant.grant_id),
        "refresh_token_rotated",
        detail,
    );
    Ok(Issued {
        access_token,
        expires_in: svc.settings.access_token_ttl,
        refresh_token: Some(refresh_token),
        scope,
        id_token,
    })
}

/// RFC 6749 §4.4: a confidential client's token for itself. RFC 9068 §2.2: `sub` is the client
/// id. No refresh token (§4.4.3), no grant: the token is live while its client exists and it
/// has not expired, and cannot be revoked before (it lives `access_token_ttl`, 10 min by
/// default).
fn client_credentials(
    svc: &Latchkey,
    client: &Client,
    requested: Option<&Scopes>,
) -> Result<Issued, TokenFailure> {
    // Checklist item 38: never for a public client, whatever its registration says.
    if client.public {
        return Err(TokenError::GrantNotAllowed.into());
    }
    let scope = rules::client_credentials_scope(requested, &client.scopes)?;
    let now = svc.now();
    let (access_token, _) = sign(svc, client, CLIENT_GRANT, &client.id, &scope, now, now)?;
    Ok(Issued {
        access_token,
        expires_in: svc.settings.access_token_ttl,
        refresh_token: None,
        scope,
        id_token: None,
    })
}

/// The `grant_id` of a client-credentials token: there is no grant behind it.
pub const CLIENT_GRANT: &str = "";

/// An ID token when the grant's scope includes `openid` (OIDC Core §3.1.3.3), with the
/// standard claims its scope releases.
#[allow(clippy::too_many_arguments)]
async fn id_token_for(
    svc: &Latchkey,
    client: &Client,
    user_id: &str,
    scope: &Scopes,
    auth_time: i64,
    nonce: Option<&str>,
    access_token: &AccessToken,
    now: i64,
) -> Result<Option<String>, TokenFailure> {
    if !scope.contains(oidc::OPENID) {
        return Ok(None);
    }
    let user = svc
        .store
        .user(user_id)
        .await
        .map_err(InternalError::from)?
        .filter(|user| !user.disabled)
        .ok_or(TokenError::InvalidCode)?;
    let facts = oidc::IdTokenFacts {
        user: &user,
        scope,
        auth_time,
        nonce,
        access_token: access_token.expose(),
        now,
    };
    Ok(Some(oidc::id_token(svc, client, &facts)?))
}

/// A fresh 256-bit refresh token and the record that stores its digest.
fn new_refresh_token(svc: &Latchkey, now: i64) -> (RefreshToken, NewRefreshToken) {
    let token = RefreshToken::new(crypto::random_token());
    let record = NewRefreshToken {
        token_hash: token_hash(token.expose()),
        family_expires_at: now + svc.settings.refresh_token_ttl,
    };
    (token, record)
}

/// What the trail records of issued tokens: the access token by `jti`, never the tokens.
fn issued_detail(
    svc: &Latchkey,
    client: &Client,
    jti: &str,
    scope: &Scopes,
    id_token: bool,
) -> Detail {
    Detail::new()
        .with("client_id", client.id.as_str())
        .with(
            "access_token",
            format!(
                "jti {jti}, {}, scope \"{scope}\", expires in {} s",
                client.access_token_alg.as_str(),
                svc.settings.access_token_ttl
            ),
        )
        .with("id_token", if id_token { "issued" } else { "none" })
}

/// Signs an RFC 9068 access token for `client` with the key of the client's algorithm; returns
/// it with its `jti`.
fn sign(
    svc: &Latchkey,
    client: &Client,
    grant_id: &str,
    sub: &str,
    scope: &Scopes,
    auth_time: i64,
    now: i64,
) -> Result<(AccessToken, String), TokenFailure> {
    let claims = AccessTokenClaims {
        iss: svc.settings.issuer.clone(),
        sub: sub.to_owned(),
        aud: client
            .audience
            .clone()
            .unwrap_or_else(|| svc.settings.issuer.clone()),
        client_id: client.id.clone(),
        iat: now,
        exp: now + svc.settings.access_token_ttl,
        jti: crypto::random_uuid(),
        scope: scope.to_string(),
        auth_time,
        grant_id: grant_id.to_owned(),
    };
    let keys = svc.keys();
    let key = keys
        .signer(client.access_token_alg, now)
        .map_err(InternalError::from)?;
    let token = access_token::sign(&claims, key).map_err(|e| TokenFailure::Internal(e.into()))?;
    // The `jti` names the token without being it.
    tracing::info!(target: "audit", event = "access_token_issued", client_id = %client.id, sub = %sub, grant_id = %grant_id, jti = %claims.jti);
    Ok((token, claims.jti))
}
