//! Row types shared by both stores, and their conversion into domain records. Each row type
//! decodes from SQLite and PostgreSQL alike (`FromRow` is generic over the backend).

use sqlx::FromRow;

use super::{ClientRecord, PendingRequest, StoreError, UserRecord};
use crate::protocol::authorize::{AuthorizationRequest, OidcParameters, Prompt};
use crate::protocol::token::{CodeGrant, RefreshGrant};
use crate::protocol::types::{Client, GrantType, Scopes, SigningAlg};

#[derive(FromRow)]
pub(super) struct ClientRow {
    id: String,
    name: String,
    secret_hash: Option<Vec<u8>>,
    redirect_uris: String,
    scopes: String,
    grant_types: String,
    require_pkce: bool,
    access_token_alg: String,
    audience: Option<String>,
    created_at: i64,
    id_token_alg: String,
    post_logout_redirect_uris: String,
}

impl TryFrom<ClientRow> for ClientRecord {
    type Error = StoreError;

    fn try_from(row: ClientRow) -> Result<Self, StoreError> {
        let corrupt = |what| StoreError::Corrupt(what);
        Ok(ClientRecord {
            client: Client {
                public: row.secret_hash.is_none(),
                id: row.id,
                name: row.name,
                redirect_uris: serde_json::from_str(&row.redirect_uris)
                    .map_err(|_| corrupt("clients.redirect_uris"))?,
                scopes: Scopes::parse(&row.scopes).map_err(|_| corrupt("clients.scopes"))?,
                grant_types: row
                    .grant_types
                    .split(' ')
                    .map(|g| GrantType::parse(g).ok_or(corrupt("clients.grant_types")))
                    .collect::<Result<_, _>>()?,
                require_pkce: row.require_pkce,
                access_token_alg: SigningAlg::parse(&row.access_token_alg)
                    .ok_or(corrupt("clients.access_token_alg"))?,
                audience: row.audience,
                created_at: row.created_at,
                id_token_alg: SigningAlg::parse(&row.id_token_alg)
                    .ok_or(corrupt("clients.id_token_alg"))?,
                post_logout_redirect_uris: serde_json::from_str(&row.post_logout_redirect_uris)
                    .map_err(|_| corrupt("clients.post_logout_redirect_uris"))?,
            },
            secret_hash: row.secret_hash,
        })
    }
}

#[derive(FromRow)]
pub(super) struct UserRow {
    id: String,
    username: String,
    email: Option<String>,
    name: Option<String>,
    password_hash: String,
    disabled: bool,
    created_at: i64,
    email_verified: bool,
}

impl From<UserRow> for UserRecord {
    fn from(row: UserRow) -> Self {
        UserRecord {
            id: row.id,
            username: row.username,
            email: row.email,
            name: row.name,
            password_hash: row.password_hash,
            disabled: row.disabled,
            created_at: row.created_at,
            email_verified: row.email_verified,
        }
    }
}

#[derive(FromRow)]
pub(super) struct PendingRow {
    id_hash: Vec<u8>,
    browser_hash: Vec<u8>,
    client_id: String,
    redirect_uri: String,
    scope: String,
    state: Option<String>,
    code_challenge: Option<String>,
    prompt: String,
    user_id: Option<String>,
    auth_time: Option<i64>,
    expires_at: i64,
    nonce: Option<String>,
    max_age: Option<i64>,
    login_hint: Option<String>,
}

impl TryFrom<PendingRow> for PendingRequest {
    type Error = StoreError;

    fn try_from(row: PendingRow) -> Result<Self, StoreError> {
        Ok(PendingRequest {
            id_hash: row.id_hash,
            browser_hash: row.browser_hash,
            request: AuthorizationRequest {
                client_id: row.client_id,
                redirect_uri: row.redirect_uri,
                scope: Scopes::parse(&row.scope)
                    .map_err(|_| StoreError::Corrupt("pending_requests.scope"))?,
                state: row.state,
                code_challenge: row.code_challenge,
                prompt: Prompt::from_stored(&row.prompt),
                oidc: OidcParameters {
                    nonce: row.nonce,
                    max_age: row.max_age,
                    login_hint: row.login_hint,
                },
            },
            user_id: row.user_id,
            auth_time: row.auth_time,
            expires_at: row.expires_at,
        })
    }
}

#[derive(FromRow)]
pub(super) struct CodeRow {
    grant_id: String,
    client_id: String,
    user_id: String,
    redirect_uri: String,
    code_challenge: Option<String>,
    scope: String,
    auth_time: i64,
    expires_at: i64,
    nonce: Option<String>,
}

impl TryFrom<CodeRow> for CodeGrant {
    type Error = StoreError;

    fn try_from(row: CodeRow) -> Result<Self, StoreError> {
        Ok(CodeGrant {
            grant_id: row.grant_id,
            client_id: row.client_id,
            user_id: row.user_id,
            redirect_uri: row.redirect_uri,
            code_challenge: row.code_challenge,
            scope: Scopes::parse(&row.scope)
                .map_err(|_| StoreError::Corrupt("authorization_codes.scope"))?,
            auth_time: row.auth_time,
            expires_at: row.expires_at,
            nonce: row.nonce,
        })
    }
}

#[derive(FromRow)]
pub(super) struct GrantRow {
    id: String,
    client_id: String,
    user_id: String,
    scope: String,
    auth_time: i64,
    expires_at: i64,
    revoked: bool,
    user_disabled: bool,
    refreshed_at: Option<i64>,
}

impl TryFrom<GrantRow> for RefreshGrant {
    type Error = StoreError;

    fn try_from(row: GrantRow) -> Result<Self, StoreError> {
        Ok(RefreshGrant {
            grant_id: row.id,
            client_id: row.client_id,
            user_id: row.user_id,
            scope: Scopes::parse(&row.scope).map_err(|_| StoreError::Corrupt("grants.scope"))?,
            auth_time: row.auth_time,
            expires_at: row.expires_at,
            revoked: row.revoked,
            user_disabled: row.user_disabled,
            refreshed_at: row.refreshed_at,
        })
    }
}

/// The grant with its user's status; `refreshed_at` is filled where a refresh token is joined.
pub(super) const GRANT_SELECT: &str = "SELECT g.id, g.client_id, g.user_id, g.scope, g.auth_time, g.expires_at, \
     g.revoked_at IS NOT NULL AS revoked, u.disabled AS user_disabled, CAST(NULL AS BIGINT) AS refreshed_at \
     FROM grants g JOIN users u ON u.id = g.user_id";

pub(super) const GRANT_WITH_REFRESH_SELECT: &str = "SELECT g.id, g.client_id, g.user_id, g.scope, g.auth_time, \
     g.expires_at, g.revoked_at IS NOT NULL AS revoked, u.disabled AS user_disabled, \
     r.created_at AS refreshed_at \
     FROM grants g JOIN users u ON u.id = g.user_id JOIN refresh_tokens r ON r.grant_id = g.id";

pub(super) const CLIENT_COLUMNS: &str = "id, name, secret_hash, redirect_uris, scopes, grant_types, require_pkce, \
     access_token_alg, audience, created_at, id_token_alg, post_logout_redirect_uris";

pub(super) const USER_COLUMNS: &str =
    "id, username, email, name, password_hash, disabled, created_at, email_verified";

pub(super) fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}
