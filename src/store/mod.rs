//! Storage behind one trait. Each method is one atomic domain operation; pools and
//! transactions never leave this module, and single use is enforced in SQL with conditional
//! writes, never by reading first and writing after.

mod postgres;
mod rows;
mod sql;
mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;

pub use postgres::PgStore;
pub use sqlite::SqliteStore;

use crate::protocol::authorize::AuthorizationRequest;
use crate::protocol::error::TokenError;
use crate::protocol::token::{CodeGrant, RefreshGrant};
use crate::protocol::types::{Client, Scopes, SigningAlg};

/// Whether `text` can name a row: PostgreSQL's `text` cannot hold NUL, so a lookup by an
/// attacker's NUL-bearing id would fail as a database error (503) instead of finding nothing.
/// No stored id or username contains NUL, so such a lookup finds nothing on either backend.
pub(crate) fn storable(text: &str) -> bool {
    !text.contains('\0')
}

/// A failure of the storage layer. Callers answer 500/503 and never treat it as success.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule was broken (for instance a duplicate username); the text names it.
    #[error("{0}")]
    Conflict(&'static str),
    #[error("the database URL is not supported: {0}")]
    UnsupportedUrl(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is corrupt: {0}")]
    Corrupt(&'static str),
    /// The thread that runs write transactions has stopped (the store is shutting down).
    #[error("the database writer has stopped")]
    WriterStopped,
}

/// A registered client and the digest of its secret (absent for public clients).
#[derive(Clone, Debug)]
pub struct ClientRecord {
    pub client: Client,
    pub secret_hash: Option<Vec<u8>>,
}

/// A user of the login page. `id` is the `sub` of the user's tokens.
#[derive(Clone, Debug)]
pub struct UserRecord {
    pub id: String,
    pub username: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub password_hash: String,
    pub disabled: bool,
    pub created_at: i64,
    /// OIDC Core §5.1 `email_verified`: the operator vouches for the address.
    pub email_verified: bool,
}

/// Profile claims an administrator sets; `None` leaves the stored value as it is, and
/// `Some("")` clears `name` or `email`. A new email address is unverified unless
/// `email_verified` says otherwise.
#[derive(Clone, Debug, Default)]
pub struct UserClaims {
    pub name: Option<String>,
    pub email: Option<String>,
    pub email_verified: Option<bool>,
}

/// A signing key as stored: PKCS#8 DER of the private key.
#[derive(Clone)]
pub struct SigningKeyRecord {
    pub kid: String,
    pub alg: SigningAlg,
    pub private_der: Vec<u8>,
    pub created_at: i64,
}

/// A signing key as `keys list` shows it.
#[derive(Clone, Debug)]
pub struct SigningKeyInfo {
    pub kid: String,
    pub alg: SigningAlg,
    pub created_at: i64,
    pub retired_at: Option<i64>,
}

/// What retiring a key did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyRetirement {
    Retired,
    Unknown,
    /// The key is the last live one of its algorithm: rotate first.
    LastOfAlgorithm,
}

/// A browser's login session, stored under the digest of its cookie value.
#[derive(Clone, Debug)]
pub struct SessionRecord {
    pub id_hash: Vec<u8>,
    pub user_id: String,
    pub auth_time: i64,
    /// Absolute end, whatever the activity.
    pub expires_at: i64,
    /// End after inactivity; slid forward on use.
    pub idle_expires_at: i64,
}

/// An authorization request waiting for login and consent, kept server-side under the digest
/// of an unguessable id and bound to the browser that started it.
#[derive(Clone, Debug)]
pub struct PendingRequest {
    pub id_hash: Vec<u8>,
    pub browser_hash: Vec<u8>,
    pub request: AuthorizationRequest,
    /// Set once the user is known: from a live session, or by a login in this flow.
    pub user_id: Option<String>,
    pub auth_time: Option<i64>,
    pub expires_at: i64,
}

/// A user's standing consent for a client, as the account page lists it.
#[derive(Clone, Debug)]
pub struct ConsentRecord {
    pub client_id: String,
    pub client_name: String,
    pub scope: Scopes,
    pub granted_at: i64,
}

/// An authorization code about to be issued: its digest and everything it is bound to.
#[derive(Clone, Debug)]
pub struct NewAuthorizationCode {
    pub code_hash: Vec<u8>,
    pub grant: CodeGrant,
}

/// What a code redemption did.
#[derive(Debug)]
pub enum CodeRedemption {
    /// The code was consumed and the grant (with its first refresh token, if any) recorded.
    Issued(CodeGrant),
    /// The code was consumed (burned) but failed a check: nothing was issued. `grant_id` is
    /// the grant the code would have started (it links the failure to its flow).
    Rejected { error: TokenError, grant_id: String },
    /// The code had been used before; the grant it started has now been revoked.
    Replayed { grant_id: String },
    /// No such code.
    Unknown,
}

/// What a refresh-token rotation did.
#[derive(Debug)]
pub enum RefreshRotation {
    /// The old token is spent and `new` recorded; tokens carry `scope`.
    Rotated { grant: RefreshGrant, scope: Scopes },
    /// A check failed; nothing changed. `grant_id` is the token's grant.
    Rejected { error: TokenError, grant_id: String },
    /// The token had been used before: the whole family is now revoked (RFC 9700 §4.14.2).
    Replayed { grant_id: String },
    /// No such token.
    Unknown,
}

/// The check a consumed code must pass before tokens are recorded, run inside the transaction.
/// Owned, so the transaction can run on the store's own writer thread.
pub type CodeCheck = std::sync::Arc<dyn Fn(&CodeGrant) -> Result<(), TokenError> + Send + Sync>;
/// The check a refresh token's grant must pass; returns the scope of the new tokens.
pub type RefreshCheck =
    std::sync::Arc<dyn Fn(&RefreshGrant) -> Result<Scopes, TokenError> + Send + Sync>;

/// A freshly generated refresh token's digest, and the absolute end of its family.
#[derive(Clone, Debug)]
pub struct NewRefreshToken {
    pub token_hash: Vec<u8>,
    pub family_expires_at: i64,
}

/// The one storage interface of Latchkey. A SQLite and a PostgreSQL implementation serve it.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    async fn insert_client(&self, record: &ClientRecord) -> Result<(), StoreError>;
    async fn client(&self, id: &str) -> Result<Option<ClientRecord>, StoreError>;
    async fn clients(&self) -> Result<Vec<ClientRecord>, StoreError>;
    /// Deletes the client and, with it, its codes, consents and grants.
    async fn delete_client(&self, id: &str) -> Result<bool, StoreError>;
    async fn set_client_secret(&self, id: &str, secret_hash: &[u8]) -> Result<bool, StoreError>;

    /// Fails with [`StoreError::Conflict`] when the username is taken.
    async fn insert_user(&self, user: &UserRecord) -> Result<(), StoreError>;
    async fn user(&self, id: &str) -> Result<Option<UserRecord>, StoreError>;
    async fn user_by_username(&self, username: &str) -> Result<Option<UserRecord>, StoreError>;
    async fn users(&self) -> Result<Vec<UserRecord>, StoreError>;
    /// Deletes a user and everything issued to them (used by `latchkey bench` to remove its
    /// throw-away user).
    async fn delete_user(&self, username: &str) -> Result<bool, StoreError>;
    /// Sets the password hash, and in the same transaction ends the user's sessions and
    /// revokes their grants (ASVS 5.0 V7.4.3).
    async fn set_password(
        &self,
        username: &str,
        password_hash: &str,
        now: i64,
    ) -> Result<bool, StoreError>;
    /// Disables the user, ends their sessions and revokes their grants, in one transaction.
    async fn disable_user(&self, username: &str, now: i64) -> Result<bool, StoreError>;

    async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>, StoreError>;
    /// Inserts a key unless one of the same algorithm exists already; returns whether it did,
    /// so nodes starting together agree on one key.
    async fn insert_first_signing_key(&self, key: &SigningKeyRecord) -> Result<bool, StoreError>;
    /// Adds a key (rotation).
    async fn insert_signing_key(&self, key: &SigningKeyRecord) -> Result<(), StoreError>;
    /// Retires a key, unless it is the last live key of its algorithm; returns whether it did.
    async fn retire_signing_key(&self, kid: &str, now: i64) -> Result<KeyRetirement, StoreError>;
    /// Every key, retired ones included, without private parts.
    async fn signing_key_history(&self) -> Result<Vec<SigningKeyInfo>, StoreError>;

    async fn create_session(&self, session: &SessionRecord) -> Result<(), StoreError>;
    /// The live session under `id_hash` whose user is enabled, its idle end slid to
    /// `idle_expires_at`.
    async fn session(
        &self,
        id_hash: &[u8],
        now: i64,
        idle_expires_at: i64,
    ) -> Result<Option<SessionRecord>, StoreError>;

    /// Ends a session (logout).
    async fn delete_session(&self, id_hash: &[u8]) -> Result<(), StoreError>;

    async fn insert_pending_request(&self, pending: &PendingRequest) -> Result<(), StoreError>;
    async fn pending_request(
        &self,
        id_hash: &[u8],
        now: i64,
    ) -> Result<Option<PendingRequest>, StoreError>;
    /// Records who logged in for this pending request.
    async fn record_login(
        &self,
        id_hash: &[u8],
        user_id: &str,
        auth_time: i64,
    ) -> Result<bool, StoreError>;
    /// Consumes the pending request and issues the code, storing `consent` (the user's full
    /// granted scope for the client) when given; all or nothing. False when the pending request
    /// is gone (already answered or expired).
    async fn issue_authorization_code(
        &self,
        pending_id_hash: &[u8],
        now: i64,
        code: &NewAuthorizationCode,
        consent: Option<&Scopes>,
    ) -> Result<bool, StoreError>;
    /// Consumes the pending request without issuing anything (the user said no).
    async fn deny_pending_request(&self, id_hash: &[u8], now: i64) -> Result<bool, StoreError>;
    /// The scopes `user_id` has granted `client_id`, if any.
    async fn consent(&self, user_id: &str, client_id: &str) -> Result<Option<Scopes>, StoreError>;

    /// Every client the user has granted access, with the granted scopes (ASVS 5.0 V10.7.3).
    async fn consents_of(&self, user_id: &str) -> Result<Vec<ConsentRecord>, StoreError>;
    /// Withdraws the user's consent for a client and revokes every grant the client holds for
    /// the user, in one transaction. False when there was no consent.
    async fn revoke_consent(
        &self,
        user_id: &str,
        client_id: &str,
        now: i64,
    ) -> Result<bool, StoreError>;

    /// Consumes the code with one conditional write, runs `check`, and records the grant and
    /// its first refresh token, all in one transaction. A used code revokes its grant.
    async fn redeem_authorization_code(
        &self,
        code_hash: &[u8],
        now: i64,
        check: CodeCheck,
        refresh: &NewRefreshToken,
        issue_refresh: bool,
    ) -> Result<CodeRedemption, StoreError>;
    /// Spends the refresh token with one conditional write, runs `check`, records `new`; a
    /// spent token revokes its family.
    async fn rotate_refresh_token(
        &self,
        token_hash: &[u8],
        now: i64,
        check: RefreshCheck,
        new: &NewRefreshToken,
    ) -> Result<RefreshRotation, StoreError>;
    /// The grant behind an access token, with its user's status.
    async fn grant(&self, grant_id: &str) -> Result<Option<RefreshGrant>, StoreError>;
    /// The grant of an unspent refresh token.
    async fn refresh_token_grant(
        &self,
        token_hash: &[u8],
    ) -> Result<Option<RefreshGrant>, StoreError>;
    /// Sets a user's profile claims (OIDC Core §5.1); `None` leaves a claim unchanged.
    /// Returns false for an unknown username.
    async fn set_user_claims(
        &self,
        username: &str,
        claims: &UserClaims,
    ) -> Result<bool, StoreError>;
    /// Revokes a grant and so every token issued from it.
    async fn revoke_grant(&self, grant_id: &str, now: i64) -> Result<(), StoreError>;
    /// RFC 7009 §2.1: revokes the grant behind a refresh token of `client_id`, spent or not,
    /// looked up inside the revoking transaction. A rotation that commits just before cannot
    /// leave a live successor (checklist item 78). Returns the revoked grant's id.
    async fn revoke_refresh_token_grant(
        &self,
        token_hash: &[u8],
        client_id: &str,
        now: i64,
    ) -> Result<Option<String>, StoreError>;

    /// Appends events to the flow trail (`latchkey explain`), in one statement.
    async fn append_flow_events(&self, events: &[FlowEvent]) -> Result<(), StoreError>;
    /// The events of every flow the request `request_id` took part in, oldest first: the
    /// request's own events, those of the same authorization request (`flow`) and those of the
    /// grant it led to (`grant_id`), whichever step the request id belongs to.
    async fn flow_events(&self, request_id: &str) -> Result<Vec<FlowEvent>, StoreError>;
    /// Deletes every flow event older than the newest `keep` (so a flood of refused requests
    /// cannot grow the trail without bound), and at most `batch` recorded before `before`.
    async fn purge_flow_events(
        &self,
        before: i64,
        keep: i64,
        batch: i64,
    ) -> Result<u64, StoreError>;

    /// A trivial query: is the database reachable (readiness)?
    async fn ping(&self) -> Result<(), StoreError>;
    /// Rows per table, for `latchkey db stats`.
    async fn table_counts(&self) -> Result<Vec<(&'static str, i64)>, StoreError>;
    /// Takes or renews the lease `name` for `holder` until `expires_at`, unless another holder
    /// has a live one. One conditional upsert, so two nodes never both hold it.
    async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<bool, StoreError>;
    /// Deletes at most `batch` rows of each kind that ended before `before` (pending requests,
    /// sessions) or before `before - retention` (codes, kept a while so a late replay is still
    /// recognised; grants past their absolute end or revoked, with their refresh tokens). Each
    /// kind is its own short statement, so no lock is held long.
    async fn purge_expired(
        &self,
        before: i64,
        retention: i64,
        batch: i64,
    ) -> Result<PurgeReport, StoreError>;
}

/// One step of an authorization flow, as `latchkey explain` prints it. No secret is ever part
/// of it: codes and tokens appear as their `jti` or not at all, `state` and `nonce` as their
/// length.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct FlowEvent {
    pub at: i64,
    /// The `x-request-id` of the HTTP request the step happened in.
    pub request_id: String,
    /// Label of the authorization request (see `service::trail::flow_label`).
    pub flow: Option<String>,
    pub grant_id: Option<String>,
    pub event: String,
    /// A JSON object of the step's redacted facts.
    pub detail: String,
}

/// What one purge pass deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PurgeReport {
    pub pending_requests: u64,
    pub sessions: u64,
    pub authorization_codes: u64,
    pub grants: u64,
    /// Flow-trail events past their retention ([`Store::purge_flow_events`]).
    pub flow_events: u64,
}

impl PurgeReport {
    pub fn total(&self) -> u64 {
        self.pending_requests
            + self.sessions
            + self.authorization_codes
            + self.grants
            + self.flow_events
    }
}

/// The tables `latchkey db stats` reports, in schema order.
pub const TABLES: [&str; 11] = [
    "clients",
    "users",
    "signing_keys",
    "sessions",
    "pending_requests",
    "consents",
    "grants",
    "authorization_codes",
    "refresh_tokens",
    "leases",
    "flow_events",
];

/// Connection-pool size when `--database-max-connections` is not given.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 8;

/// Opens the store a `--database-url` names, creating and migrating it on first use.
pub async fn connect(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    connect_with(url, DEFAULT_MAX_CONNECTIONS).await
}

/// [`connect`] with a pool of at most `max_connections`.
pub async fn connect_with(url: &str, max_connections: u32) -> Result<Arc<dyn Store>, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::connect(url, max_connections).await?))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Ok(Arc::new(PgStore::connect(url, max_connections).await?))
    } else {
        Err(StoreError::UnsupportedUrl(
            "use sqlite://PATH or postgres://...".to_owned(),
        ))
    }
}

#[cfg(test)]
mod tests;
