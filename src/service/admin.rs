//! Administration of clients and users, shared by the CLI. Every input is checked before
//! anything is written, so bad input changes nothing (CONTRACT §3).

use crate::crypto::{self, token_hash};
use crate::protocol::redirect_uri;
use crate::protocol::types::{Client, ClientSecret, GrantType, Password, Scopes, SigningAlg};
use crate::store::{ClientRecord, Store, StoreError, UserClaims, UserRecord};

/// Why an administrative command is refused. The message is the one line the CLI prints.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Hash(#[from] crypto::HashError),
}

/// The default scopes of a new client (CONTRACT §3).
pub const DEFAULT_SCOPES: &str = "openid profile email offline_access";

/// What `client create` asks for.
#[derive(Debug)]
pub struct NewClient {
    /// A fixed id, for the demo client; otherwise a random one is generated.
    pub id: Option<String>,
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub public: bool,
    pub scope: Option<String>,
    pub audience: Option<String>,
    pub access_token_alg: SigningAlg,
    /// ID-token signing algorithm (OIDC Registration `id_token_signed_response_alg`).
    pub id_token_alg: SigningAlg,
    /// Grants beyond the default `authorization_code` and `refresh_token`
    /// (`client_credentials`, confidential clients only).
    pub extra_grant_types: Vec<GrantType>,
    /// RP-Initiated Logout 1.0: where the client may send the browser after logout.
    pub post_logout_redirect_uris: Vec<String>,
    /// Opting a confidential client out of PKCE is weaker (RFC 9700 §2.1.1) and explicit.
    pub allow_no_pkce: bool,
}

impl NewClient {
    /// A confidential client with one redirect URI and every default: the default scopes,
    /// ES256 access tokens, RS256 ID tokens, PKCE required, the default grants. Callers change
    /// what they need with struct update syntax.
    pub fn new(name: impl Into<String>, redirect_uri: impl Into<String>) -> Self {
        NewClient {
            id: None,
            name: name.into(),
            redirect_uris: vec![redirect_uri.into()],
            public: false,
            scope: None,
            audience: None,
            access_token_alg: SigningAlg::ES256,
            id_token_alg: SigningAlg::RS256,
            extra_grant_types: Vec::new(),
            post_logout_redirect_uris: Vec::new(),
            allow_no_pkce: false,
        }
    }
}

/// A created client and, for a confidential one, its secret: shown once, stored as a digest.
#[derive(Debug)]
pub struct CreatedClient {
    pub client: Client,
    pub secret: Option<ClientSecret>,
}

pub async fn create_client(
    store: &dyn Store,
    new: NewClient,
    now: i64,
) -> Result<CreatedClient, AdminError> {
    let invalid = |msg: &str| AdminError::Invalid(msg.to_owned());
    let name = new.name.trim();
    if name.is_empty() || name.chars().any(char::is_control) {
        return Err(invalid("client name must be non-empty text"));
    }
    if new.redirect_uris.is_empty() {
        return Err(invalid("at least one --redirect-uri is required"));
    }
    for uri in &new.redirect_uris {
        redirect_uri::validate_registration(uri, new.public)
            .map_err(|e| AdminError::Invalid(format!("{e}: {uri}")))?;
    }
    // The same rules as redirect URIs: they are redirect targets too.
    for uri in &new.post_logout_redirect_uris {
        redirect_uri::validate_registration(uri, new.public)
            .map_err(|e| AdminError::Invalid(format!("{e}: {uri}")))?;
    }
    let scopes = Scopes::parse(new.scope.as_deref().unwrap_or(DEFAULT_SCOPES))
        .map_err(|e| AdminError::Invalid(e.to_string()))?;
    if scopes.is_empty() {
        return Err(invalid("--scope must name at least one scope"));
    }
    if let Some(audience) = &new.audience {
        if url::Url::parse(audience).is_err() {
            return Err(invalid("--audience must be an absolute URI"));
        }
    }
    // Checklist item 47 (RFC 9700 §4.15): a client id must never be mistaken for a user's `sub`.
    if new.id.as_deref().is_some_and(looks_like_subject) {
        return Err(invalid(
            "a client id may not have the form of a user subject (a UUID)",
        ));
    }
    if new.public && new.allow_no_pkce {
        return Err(invalid("public clients must use PKCE"));
    }
    let secret = (!new.public).then(|| ClientSecret::new(crypto::random_token()));
    // Checklist item 38: a public client cannot authenticate, so it cannot act for itself.
    if new.public
        && new
            .extra_grant_types
            .contains(&GrantType::ClientCredentials)
    {
        return Err(AdminError::Invalid(
            "a public client cannot use the client_credentials grant".to_owned(),
        ));
    }
    let mut grant_types = vec![GrantType::AuthorizationCode, GrantType::RefreshToken];
    for grant in new.extra_grant_types {
        if !grant_types.contains(&grant) {
            grant_types.push(grant);
        }
    }
    let client = Client {
        id: new.id.unwrap_or_else(new_client_id),
        name: name.to_owned(),
        public: new.public,
        redirect_uris: new.redirect_uris,
        scopes,
        grant_types,
        require_pkce: !new.allow_no_pkce,
        access_token_alg: new.access_token_alg,
        id_token_alg: new.id_token_alg,
        post_logout_redirect_uris: new.post_logout_redirect_uris,
        audience: new.audience,
        created_at: now,
    };
    let record = ClientRecord {
        client: client.clone(),
        secret_hash: secret.as_ref().map(|s| token_hash(s.expose())),
    };
    store.insert_client(&record).await?;
    tracing::info!(target: "audit", event = "client_created", client_id = %client.id);
    Ok(CreatedClient { client, secret })
}

pub async fn client(store: &dyn Store, id: &str) -> Result<Client, AdminError> {
    store
        .client(id)
        .await?
        .map(|r| r.client)
        .ok_or_else(|| unknown_client(id))
}

pub async fn delete_client(store: &dyn Store, id: &str) -> Result<(), AdminError> {
    if !store.delete_client(id).await? {
        return Err(unknown_client(id));
    }
    tracing::info!(target: "audit", event = "client_deleted", client_id = %id);
    Ok(())
}

/// Issues a new secret for a confidential client; the old one stops working at once.
pub async fn rotate_secret(store: &dyn Store, id: &str) -> Result<ClientSecret, AdminError> {
    let record = store.client(id).await?.ok_or_else(|| unknown_client(id))?;
    if record.client.public {
        return Err(AdminError::Invalid(format!(
            "client {id} is public and has no secret"
        )));
    }
    let secret = ClientSecret::new(crypto::random_token());
    if !store
        .set_client_secret(id, &token_hash(secret.expose()))
        .await?
    {
        return Err(unknown_client(id));
    }
    tracing::info!(target: "audit", event = "client_secret_rotated", client_id = %id);
    Ok(secret)
}

/// What `user create` asks for.
#[derive(Debug)]
pub struct NewUser {
    pub username: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub password: Password,
}

pub async fn create_user(
    store: &dyn Store,
    new: NewUser,
    now: i64,
) -> Result<UserRecord, AdminError> {
    let username = new.username.trim();
    if username.is_empty() || username.len() > 255 || username.chars().any(char::is_control) {
        return Err(AdminError::Invalid(
            "username must be 1 to 255 characters of text".to_owned(),
        ));
    }
    check_email(new.email.as_deref())?;
    check_password(&new.password)?;
    if store.user_by_username(username).await?.is_some() {
        return Err(AdminError::Invalid(format!(
            "username {username} already exists"
        )));
    }
    let user = UserRecord {
        id: crypto::random_uuid(),
        username: username.to_owned(),
        email: new.email,
        name: new.name.filter(|n| !n.trim().is_empty()),
        password_hash: crypto::hash_password(new.password).await?,
        disabled: false,
        created_at: now,
        email_verified: false,
    };
    store.insert_user(&user).await.map_err(|e| match e {
        StoreError::Conflict(_) => {
            AdminError::Invalid(format!("username {username} already exists"))
        }
        other => other.into(),
    })?;
    tracing::info!(target: "audit", event = "user_created", sub = %user.id);
    Ok(user)
}

/// Sets a new password; the user's sessions end and their grants are revoked.
pub async fn set_password(
    store: &dyn Store,
    username: &str,
    password: Password,
    now: i64,
) -> Result<(), AdminError> {
    check_password(&password)?;
    if store.user_by_username(username).await?.is_none() {
        return Err(unknown_user(username));
    }
    let hash = crypto::hash_password(password).await?;
    if !store.set_password(username, &hash, now).await? {
        return Err(unknown_user(username));
    }
    tracing::info!(target: "audit", event = "user_password_set", username = %username);
    Ok(())
}

/// Disables a user: no more logins, sessions ended, grants revoked (CONTRACT §5).
pub async fn disable_user(store: &dyn Store, username: &str, now: i64) -> Result<(), AdminError> {
    if !store.disable_user(username, now).await? {
        return Err(unknown_user(username));
    }
    tracing::info!(target: "audit", event = "user_disabled", username = %username);
    Ok(())
}

fn check_email(email: Option<&str>) -> Result<(), AdminError> {
    if email.is_some_and(|e| !e.contains('@') || e.chars().any(char::is_whitespace)) {
        return Err(AdminError::Invalid(
            "email must be an address such as name@example.com".to_owned(),
        ));
    }
    Ok(())
}

/// Sets a user's profile claims (OIDC Core §5.1), as `user set-claims` does; an empty name or
/// email clears it.
pub async fn set_user_claims(
    store: &dyn Store,
    username: &str,
    claims: UserClaims,
) -> Result<(), AdminError> {
    check_email(claims.email.as_deref().filter(|e| !e.is_empty()))?;
    if claims.name.as_deref().is_some_and(|n| n.len() > 255) {
        return Err(AdminError::Invalid(
            "name must be at most 255 characters".to_owned(),
        ));
    }
    if !store.set_user_claims(username, &claims).await? {
        return Err(unknown_user(username));
    }
    tracing::info!(target: "audit", event = "user_claims_set", username = %username);
    Ok(())
}

/// 128 random bits as 32 lowercase hex digits: no `-` that a command line could take for a
/// flag, no `_`, and never the UUID form of a user subject.
fn new_client_id() -> String {
    crypto::random_bytes::<16>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// User subjects are UUIDs (8-4-4-4-12 hex digits); generated client ids never are.
fn looks_like_subject(id: &str) -> bool {
    let groups: Vec<&str> = id.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, len)| g.len() == len && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn check_password(password: &Password) -> Result<(), AdminError> {
    if password.expose().is_empty() {
        return Err(AdminError::Invalid("password must not be empty".to_owned()));
    }
    Ok(())
}

fn unknown_client(id: &str) -> AdminError {
    AdminError::NotFound(format!("unknown client id: {id}"))
}

fn unknown_user(username: &str) -> AdminError {
    AdminError::NotFound(format!("unknown user: {username}"))
}

/// True when `origin` (`scheme://host[:port]`) is the origin of a redirect URI registered for a
/// public client: the browser apps that may call the token endpoint cross-origin. A storage
/// failure allows nothing.
pub async fn is_public_client_origin(store: &dyn Store, origin: &str) -> bool {
    let Ok(clients) = store.clients().await else {
        return false;
    };
    clients
        .iter()
        .filter(|r| r.client.public)
        .flat_map(|r| &r.client.redirect_uris)
        .any(|uri| {
            url::Url::parse(uri).is_ok_and(|u| {
                matches!(u.scheme(), "http" | "https") && u.origin().ascii_serialization() == origin
            })
        })
}

/// The demo client's fixed id.
pub const DEMO_CLIENT_ID: &str = "latchkey-demo";
/// The playground's sample client (`/playground`, demo mode only).
pub const PLAYGROUND_CLIENT_ID: &str = "latchkey-playground";
/// The demo user's username.
pub const DEMO_USERNAME: &str = "demo";

/// What `serve --demo` prints: fresh credentials for the demo client and user.
#[derive(Debug)]
pub struct Demo {
    pub client_secret: ClientSecret,
    pub password: Password,
    pub redirect_uri: String,
    /// The playground client's secret: kept in the server's memory, never sent to a browser.
    pub playground_secret: ClientSecret,
    pub playground_redirect_uri: String,
}

/// Creates `id` with `redirect_uri`, or re-creates it when the issuer (and so the redirect URI)
/// changed since the last start; returns a fresh secret.
async fn ensure_demo_client(
    store: &dyn Store,
    id: &str,
    name: &str,
    redirect_uri: &str,
    now: i64,
) -> Result<ClientSecret, AdminError> {
    let current = store.client(id).await?;
    let stale = current
        .as_ref()
        .is_some_and(|c| !c.client.redirect_uris.iter().any(|r| r == redirect_uri));
    if stale {
        delete_client(store, id).await?;
    }
    if current.is_none() || stale {
        let new = NewClient {
            id: Some(id.to_owned()),
            ..NewClient::new(name, redirect_uri)
        };
        create_client(store, new, now).await?;
    }
    rotate_secret(store, id).await
}

/// Creates the demo client and user once; on every start gives both fresh credentials, since
/// only digests of the old ones are kept and they cannot be printed again.
pub async fn ensure_demo(store: &dyn Store, issuer: &str, now: i64) -> Result<Demo, AdminError> {
    let redirect_uri = format!("{issuer}/demo/callback");
    let client_secret = ensure_demo_client(
        store,
        DEMO_CLIENT_ID,
        "Latchkey demo app",
        &redirect_uri,
        now,
    )
    .await?;
    let playground_redirect_uri = format!("{issuer}/playground/callback");
    let playground_secret = ensure_demo_client(
        store,
        PLAYGROUND_CLIENT_ID,
        "Latchkey playground",
        &playground_redirect_uri,
        now,
    )
    .await?;
    let password = crypto::random_token()[..16].to_owned();
    if store.user_by_username(DEMO_USERNAME).await?.is_none() {
        let new = NewUser {
            username: DEMO_USERNAME.to_owned(),
            email: Some("demo@example.com".to_owned()),
            name: Some("Demo User".to_owned()),
            password: Password::new(password.clone()),
        };
        create_user(store, new, now).await?;
    } else {
        set_password(store, DEMO_USERNAME, Password::new(password.clone()), now).await?;
    }
    Ok(Demo {
        client_secret,
        password: Password::new(password),
        redirect_uri,
        playground_secret,
        playground_redirect_uri,
    })
}
