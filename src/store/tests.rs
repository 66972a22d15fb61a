//! The store contract, written once and run against both backends. Every test below is a plain
//! async function over a [`Store`] trait object; the `contract!` macro at the end mounts each one
//! twice, in `mod sqlite` (a fresh database file per test) and in `mod postgres` (a fresh schema
//! per test on `LATCHKEY_TEST_POSTGRES_URL`). An unreachable PostgreSQL fails the test.

use std::sync::Arc;

use sqlx::Connection;

use super::{
    ClientRecord, CodeRedemption, FlowEvent, NewAuthorizationCode, NewRefreshToken, PendingRequest,
    PgStore, PurgeReport, RefreshRotation, SessionRecord, SigningKeyRecord, SqliteStore, Store,
    StoreError, TABLES, UserRecord,
};
use crate::protocol::authorize::{AuthorizationRequest, OidcParameters, Prompt};
use crate::protocol::error::TokenError;
use crate::protocol::token::{CodeGrant, RefreshGrant};
use crate::protocol::types::{Client, GrantType, Scopes, SigningAlg};

type S = Arc<dyn Store>;

/// The fixed "current time" of every test; other instants are offsets from it.
const NOW: i64 = 1_700_000_000;
const CB: &str = "https://app.example/cb";
/// The S256 challenge of RFC 7636 appendix B; the store only carries it.
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
/// When a grant's family ends unless a test says otherwise.
const FAMILY_END: i64 = NOW + 86_400;

// ----------------------------------------------------------------------------------------------
// Backends
// ----------------------------------------------------------------------------------------------

/// A new SQLite store in its own temporary directory (dropped with the directory).
async fn sqlite_store() -> (S, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let store = SqliteStore::connect(&url, 4)
        .await
        .unwrap_or_else(|e| panic!("cannot open the SQLite store at {url}: {e}"));
    (Arc::new(store), dir)
}

fn postgres_base_url() -> String {
    std::env::var("LATCHKEY_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/latchkey_test".to_owned())
}

/// A new PostgreSQL store over a fresh, empty schema. Panics (fails the test, never skips it)
/// when PostgreSQL cannot be reached.
async fn postgres_store() -> (S, String) {
    let base = postgres_base_url();
    let schema = format!("lk_{}", crate::crypto::random_uuid().replace('-', ""));
    let mut conn = sqlx::PgConnection::connect(&base)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "PostgreSQL at {base} is unreachable ({e}); the store contract must run on both \
             backends: start PostgreSQL or set LATCHKEY_TEST_POSTGRES_URL"
            )
        });
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("cannot create schema {schema} at {base}: {e}"));
    conn.close().await.expect("close setup connection");
    let separator = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{separator}options=-c%20search_path%3D{schema}");
    let store = PgStore::connect(&url, 4)
        .await
        .unwrap_or_else(|e| panic!("cannot open the PostgreSQL store at {url}: {e}"));
    (Arc::new(store), schema)
}

/// Drops a passed test's schema; a failed test's schema stays for inspection.
async fn drop_postgres_schema(schema: &str) {
    let base = postgres_base_url();
    let mut conn = sqlx::PgConnection::connect(&base)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {base} is unreachable: {e}"));
    sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("cannot drop schema {schema}: {e}"));
    conn.close().await.expect("close cleanup connection");
}

// ----------------------------------------------------------------------------------------------
// Fixtures
// ----------------------------------------------------------------------------------------------

fn scopes(raw: &str) -> Scopes {
    Scopes::parse(raw).expect("valid scope")
}

/// The digest under which a test's secret called `label` is stored.
fn hash(label: &str) -> Vec<u8> {
    crate::crypto::token_hash(label)
}

fn client_record(id: &str, confidential: bool) -> ClientRecord {
    ClientRecord {
        client: Client {
            id: id.to_owned(),
            name: format!("Client {id}"),
            public: !confidential,
            redirect_uris: vec![CB.to_owned(), format!("{CB}/{id}")],
            scopes: scopes("openid profile email"),
            grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
            require_pkce: true,
            access_token_alg: SigningAlg::ES256,
            audience: Some(format!("https://api.example/{id}")),
            created_at: NOW,
            id_token_alg: SigningAlg::RS256,
            post_logout_redirect_uris: Vec::new(),
        },
        secret_hash: confidential.then(|| hash(&format!("secret-{id}"))),
    }
}

fn user_record(id: &str, username: &str) -> UserRecord {
    UserRecord {
        id: id.to_owned(),
        username: username.to_owned(),
        email: Some(format!("{username}@example.com")),
        name: Some(format!("User {username}")),
        password_hash: format!("hash-of-{username}"),
        disabled: false,
        created_at: NOW,
        email_verified: false,
    }
}

/// Registers public client `c1` and user `u1` (username `alice`).
async fn seed(s: &S) {
    s.insert_client(&client_record("c1", false))
        .await
        .expect("insert client c1");
    s.insert_user(&user_record("u1", "alice"))
        .await
        .expect("insert user u1");
}

fn pending(label: &str, client_id: &str, expires_at: i64) -> PendingRequest {
    PendingRequest {
        id_hash: hash(&format!("pending-{label}")),
        browser_hash: hash(&format!("browser-{label}")),
        request: AuthorizationRequest {
            client_id: client_id.to_owned(),
            redirect_uri: CB.to_owned(),
            scope: scopes("openid profile"),
            state: Some(format!("state-{label}")),
            code_challenge: Some(CHALLENGE.to_owned()),
            prompt: Prompt {
                none: false,
                login: true,
                consent: true,
            },
            oidc: OidcParameters {
                nonce: Some(format!("nonce-{label}")),
                max_age: Some(300),
                login_hint: Some("alice".to_owned()),
            },
        },
        user_id: None,
        auth_time: None,
        expires_at,
    }
}

/// What a code called `label` is bound to; its grant id is `grant-{label}`.
fn code_grant(label: &str, client_id: &str, user_id: &str) -> CodeGrant {
    CodeGrant {
        grant_id: format!("grant-{label}"),
        client_id: client_id.to_owned(),
        user_id: user_id.to_owned(),
        redirect_uri: CB.to_owned(),
        code_challenge: Some(CHALLENGE.to_owned()),
        scope: scopes("openid profile"),
        auth_time: NOW - 5,
        expires_at: NOW + 600,
        nonce: Some(format!("nonce-{label}")),
    }
}

fn refresh(label: &str) -> NewRefreshToken {
    refresh_until(label, FAMILY_END)
}

fn refresh_until(label: &str, family_expires_at: i64) -> NewRefreshToken {
    NewRefreshToken {
        token_hash: hash(&format!("rt-{label}")),
        family_expires_at,
    }
}

fn accept_code(_: &CodeGrant) -> Result<(), TokenError> {
    Ok(())
}

fn reject_code(_: &CodeGrant) -> Result<(), TokenError> {
    Err(TokenError::PkceMismatch)
}

fn keep_scope(grant: &RefreshGrant) -> Result<Scopes, TokenError> {
    Ok(grant.scope.clone())
}

fn reject_refresh(_: &RefreshGrant) -> Result<Scopes, TokenError> {
    Err(TokenError::ScopeWidened)
}

/// Issues code `code-{label}` through pending request `pending-{label}`, as a consent page does.
async fn issue_code(s: &S, label: &str, grant: &CodeGrant, consent: Option<&Scopes>) {
    s.insert_pending_request(&pending(label, &grant.client_id, NOW + 600))
        .await
        .expect("insert pending request");
    let code = NewAuthorizationCode {
        code_hash: hash(&format!("code-{label}")),
        grant: grant.clone(),
    };
    let issued = s
        .issue_authorization_code(&hash(&format!("pending-{label}")), NOW, &code, consent)
        .await
        .expect("issue code");
    assert!(issued, "issuing code {label} from a fresh pending request");
}

/// Redeems code `code-{label}` (issued by [`issue_code`]) and returns its grant id; its first
/// refresh token is `rt-{label}`.
async fn redeem(s: &S, label: &str, refresh: &NewRefreshToken) -> String {
    match s
        .redeem_authorization_code(
            &hash(&format!("code-{label}")),
            NOW,
            Arc::new(accept_code),
            refresh,
            true,
        )
        .await
        .expect("redeem code")
    {
        CodeRedemption::Issued(grant) => grant.grant_id,
        other => panic!("redeeming fresh code {label}: expected Issued, got {other:?}"),
    }
}

/// A live grant `grant-{label}` of `user_id` at `client_id`, with refresh token `rt-{label}`.
async fn new_grant(s: &S, label: &str, client_id: &str, user_id: &str) -> String {
    issue_code(s, label, &code_grant(label, client_id, user_id), None).await;
    redeem(s, label, &refresh(label)).await
}

async fn grant_of(s: &S, grant_id: &str) -> RefreshGrant {
    s.grant(grant_id)
        .await
        .expect("grant")
        .unwrap_or_else(|| panic!("grant {grant_id} should exist"))
}

async fn revoked(s: &S, grant_id: &str) -> bool {
    grant_of(s, grant_id).await.revoked
}

/// Whether refresh token `rt-{label}` is stored and unspent.
async fn refresh_live(s: &S, label: &str) -> bool {
    s.refresh_token_grant(&hash(&format!("rt-{label}")))
        .await
        .expect("refresh_token_grant")
        .is_some()
}

async fn count(s: &S, table: &str) -> i64 {
    s.table_counts()
        .await
        .expect("table counts")
        .into_iter()
        .find(|(name, _)| *name == table)
        .unwrap_or_else(|| panic!("table_counts lacks {table}"))
        .1
}

fn session_record(label: &str, user_id: &str, expires_at: i64, idle: i64) -> SessionRecord {
    SessionRecord {
        id_hash: hash(&format!("session-{label}")),
        user_id: user_id.to_owned(),
        auth_time: NOW - 1,
        expires_at,
        idle_expires_at: idle,
    }
}

/// Looks session `session-{label}` up at `now` without moving its idle end past `idle`.
async fn session_live(s: &S, label: &str, now: i64, idle: i64) -> bool {
    s.session(&hash(&format!("session-{label}")), now, idle)
        .await
        .expect("session")
        .is_some()
}

// ----------------------------------------------------------------------------------------------
// Clients
// ----------------------------------------------------------------------------------------------

async fn clients_round_trip(s: S) {
    let public = client_record("c1", false);
    let confidential = client_record("c2", true);
    s.insert_client(&public).await.expect("insert c1");
    s.insert_client(&confidential).await.expect("insert c2");

    let got = s.client("c1").await.expect("client").expect("c1 exists");
    assert_eq!(got.client, public.client);
    assert_eq!(got.secret_hash, None);
    assert!(got.client.public);
    let got = s.client("c2").await.expect("client").expect("c2 exists");
    assert_eq!(got.client, confidential.client);
    assert_eq!(got.secret_hash, confidential.secret_hash);
    assert!(!got.client.public);

    assert!(s.client("nope").await.expect("client").is_none());

    let mut ids: Vec<String> = s
        .clients()
        .await
        .expect("clients")
        .into_iter()
        .map(|r| r.client.id)
        .collect();
    ids.sort();
    assert_eq!(ids, ["c1", "c2"]);
}

async fn duplicate_client_id_conflicts(s: S) {
    s.insert_client(&client_record("c1", false))
        .await
        .expect("insert c1");
    let err = s
        .insert_client(&client_record("c1", true))
        .await
        .expect_err("a second client c1 must be refused");
    assert!(matches!(err, StoreError::Conflict(_)), "got {err:?}");
    let kept = s.client("c1").await.expect("client").expect("c1 exists");
    assert_eq!(kept.secret_hash, None, "the first c1 is untouched");
}

async fn set_client_secret_only_for_confidential_clients(s: S) {
    s.insert_client(&client_record("pub", false))
        .await
        .expect("insert pub");
    s.insert_client(&client_record("conf", true))
        .await
        .expect("insert conf");
    let new_hash = hash("rotated secret");

    assert!(s.set_client_secret("conf", &new_hash).await.expect("set"));
    let conf = s.client("conf").await.expect("client").expect("conf");
    assert_eq!(conf.secret_hash.as_deref(), Some(new_hash.as_slice()));

    assert!(!s.set_client_secret("pub", &new_hash).await.expect("set"));
    let public = s.client("pub").await.expect("client").expect("pub");
    assert_eq!(public.secret_hash, None, "a public client stays public");
    assert!(public.client.public);

    assert!(!s.set_client_secret("nope", &new_hash).await.expect("set"));
}

async fn delete_client_cascades(s: S) {
    seed(&s).await;
    s.insert_client(&client_record("c2", false))
        .await
        .expect("insert c2");
    let consent = scopes("openid");
    // For each client: a redeemed grant with its refresh token and a consent, an unredeemed
    // code, and a pending request.
    for client in ["c1", "c2"] {
        issue_code(
            &s,
            &format!("{client}-g"),
            &code_grant(&format!("{client}-g"), client, "u1"),
            Some(&consent),
        )
        .await;
        redeem(&s, &format!("{client}-g"), &refresh(&format!("{client}-g"))).await;
        issue_code(
            &s,
            &format!("{client}-open"),
            &code_grant(&format!("{client}-open"), client, "u1"),
            None,
        )
        .await;
        s.insert_pending_request(&pending(&format!("{client}-p"), client, NOW + 600))
            .await
            .expect("insert pending");
    }

    assert!(s.delete_client("c1").await.expect("delete c1"));

    assert!(s.client("c1").await.expect("client").is_none());
    assert!(s.grant("grant-c1-g").await.expect("grant").is_none());
    assert!(!refresh_live(&s, "c1-g").await);
    assert!(s.consent("u1", "c1").await.expect("consent").is_none());
    assert!(
        s.pending_request(&hash("pending-c1-p"), NOW)
            .await
            .expect("pending")
            .is_none()
    );
    let gone = s
        .redeem_authorization_code(
            &hash("code-c1-open"),
            NOW,
            Arc::new(accept_code),
            &refresh("x"),
            true,
        )
        .await
        .expect("redeem");
    assert!(
        matches!(gone, CodeRedemption::Unknown),
        "c1's code must be gone, got {gone:?}"
    );
    let gone = s
        .rotate_refresh_token(&hash("rt-c1-g"), NOW, Arc::new(keep_scope), &refresh("y"))
        .await
        .expect("rotate");
    assert!(
        matches!(gone, RefreshRotation::Unknown),
        "c1's refresh token must be gone, got {gone:?}"
    );

    // The other client keeps everything.
    assert!(s.client("c2").await.expect("client").is_some());
    assert!(!revoked(&s, "grant-c2-g").await);
    assert!(refresh_live(&s, "c2-g").await);
    assert_eq!(s.consent("u1", "c2").await.expect("consent"), Some(consent));
    assert!(
        s.pending_request(&hash("pending-c2-p"), NOW)
            .await
            .expect("pending")
            .is_some()
    );
    assert_eq!(count(&s, "authorization_codes").await, 2);
    assert_eq!(count(&s, "refresh_tokens").await, 1);

    assert!(
        !s.delete_client("c1").await.expect("delete again"),
        "a second delete finds nothing"
    );
}

// ----------------------------------------------------------------------------------------------
// Users
// ----------------------------------------------------------------------------------------------

async fn users_round_trip(s: S) {
    let alice = user_record("u1", "alice");
    let bob = UserRecord {
        email: None,
        name: None,
        disabled: true,
        ..user_record("u2", "bob")
    };
    s.insert_user(&alice).await.expect("insert alice");
    s.insert_user(&bob).await.expect("insert bob");

    let got = s.user("u1").await.expect("user").expect("u1");
    assert_eq!(
        (
            got.id.as_str(),
            got.username.as_str(),
            got.email.as_deref(),
            got.name.as_deref()
        ),
        ("u1", "alice", Some("alice@example.com"), Some("User alice"))
    );
    assert_eq!(got.password_hash, alice.password_hash);
    assert!(!got.disabled);
    assert_eq!(got.created_at, NOW);

    let got = s
        .user_by_username("bob")
        .await
        .expect("by username")
        .expect("bob");
    assert_eq!(got.id, "u2");
    assert_eq!((got.email, got.name), (None, None));
    assert!(got.disabled);

    assert!(s.user("nope").await.expect("user").is_none());
    assert!(
        s.user_by_username("carol")
            .await
            .expect("by username")
            .is_none()
    );
    assert!(
        s.user_by_username("u1")
            .await
            .expect("by username")
            .is_none(),
        "user_by_username looks up usernames, not ids"
    );

    let mut names: Vec<String> = s
        .users()
        .await
        .expect("users")
        .into_iter()
        .map(|u| u.username)
        .collect();
    names.sort();
    assert_eq!(names, ["alice", "bob"]);
}

async fn duplicate_username_conflicts(s: S) {
    s.insert_user(&user_record("u1", "alice"))
        .await
        .expect("insert alice");
    let err = s
        .insert_user(&user_record("u2", "alice"))
        .await
        .expect_err("a second alice must be refused");
    assert!(matches!(err, StoreError::Conflict(_)), "got {err:?}");
    assert!(s.user("u2").await.expect("user").is_none());
    assert_eq!(s.users().await.expect("users").len(), 1);
}

/// `u1` (alice) and `u2` (bob) at client `c1`, each with a session and a grant.
async fn two_users_with_sessions_and_grants(s: &S) {
    seed(s).await;
    s.insert_user(&user_record("u2", "bob"))
        .await
        .expect("insert bob");
    for user in ["u1", "u2"] {
        s.create_session(&session_record(user, user, NOW + 3600, NOW + 600))
            .await
            .expect("create session");
        new_grant(s, user, "c1", user).await;
    }
}

async fn set_password_ends_sessions_and_revokes_grants(s: S) {
    two_users_with_sessions_and_grants(&s).await;

    assert!(
        s.set_password("alice", "new-hash", NOW + 1)
            .await
            .expect("set password")
    );

    let alice = s.user("u1").await.expect("user").expect("u1");
    assert_eq!(alice.password_hash, "new-hash");
    assert!(!alice.disabled, "a password change does not disable");
    assert!(!session_live(&s, "u1", NOW + 2, NOW + 600).await);
    assert!(revoked(&s, "grant-u1").await);
    assert!(
        !refresh_live(&s, "u1").await,
        "alice's refresh token is spent"
    );

    // Bob is untouched.
    assert!(session_live(&s, "u2", NOW + 2, NOW + 600).await);
    assert!(!revoked(&s, "grant-u2").await);
    assert!(refresh_live(&s, "u2").await);
    assert_eq!(
        s.user("u2").await.expect("user").expect("u2").password_hash,
        "hash-of-bob"
    );

    assert!(
        !s.set_password("carol", "x", NOW + 1)
            .await
            .expect("set password"),
        "unknown username"
    );
}

async fn disable_user_ends_sessions_and_revokes_grants(s: S) {
    two_users_with_sessions_and_grants(&s).await;

    assert!(s.disable_user("alice", NOW + 1).await.expect("disable"));

    assert!(s.user("u1").await.expect("user").expect("u1").disabled);
    assert!(!session_live(&s, "u1", NOW + 2, NOW + 600).await);
    assert_eq!(
        count(&s, "sessions").await,
        1,
        "alice's session row is gone"
    );
    let grant = grant_of(&s, "grant-u1").await;
    assert!(grant.revoked);
    assert!(grant.user_disabled);
    assert!(!refresh_live(&s, "u1").await);

    assert!(!s.user("u2").await.expect("user").expect("u2").disabled);
    assert!(session_live(&s, "u2", NOW + 2, NOW + 600).await);
    let grant = grant_of(&s, "grant-u2").await;
    assert!(!grant.revoked);
    assert!(!grant.user_disabled);
    assert!(refresh_live(&s, "u2").await);

    assert!(
        !s.disable_user("carol", NOW + 1).await.expect("disable"),
        "unknown username"
    );
}

async fn delete_user_removes_everything_issued_to_them(s: S) {
    two_users_with_sessions_and_grants(&s).await;
    let consent = scopes("openid");
    issue_code(
        &s,
        "open-u1",
        &code_grant("open-u1", "c1", "u1"),
        Some(&consent),
    )
    .await;
    issue_code(
        &s,
        "open-u2",
        &code_grant("open-u2", "c1", "u2"),
        Some(&consent),
    )
    .await;

    assert!(s.delete_user("alice").await.expect("delete"));

    assert!(s.user("u1").await.expect("user").is_none());
    assert!(
        s.user_by_username("alice")
            .await
            .expect("by username")
            .is_none()
    );
    assert!(!session_live(&s, "u1", NOW + 1, NOW + 600).await);
    assert!(s.grant("grant-u1").await.expect("grant").is_none());
    assert!(!refresh_live(&s, "u1").await);
    assert!(s.consent("u1", "c1").await.expect("consent").is_none());
    let gone = s
        .redeem_authorization_code(
            &hash("code-open-u1"),
            NOW,
            Arc::new(accept_code),
            &refresh("x"),
            true,
        )
        .await
        .expect("redeem");
    assert!(matches!(gone, CodeRedemption::Unknown), "got {gone:?}");

    // Bob keeps everything.
    assert!(s.user("u2").await.expect("user").is_some());
    assert!(session_live(&s, "u2", NOW + 1, NOW + 600).await);
    assert!(!revoked(&s, "grant-u2").await);
    assert!(refresh_live(&s, "u2").await);
    assert_eq!(s.consent("u2", "c1").await.expect("consent"), Some(consent));
    assert_eq!(count(&s, "authorization_codes").await, 2, "bob's two codes");

    assert!(!s.delete_user("alice").await.expect("delete again"));
}

// ----------------------------------------------------------------------------------------------
// Signing keys
// ----------------------------------------------------------------------------------------------

fn key(kid: &str, alg: SigningAlg) -> SigningKeyRecord {
    SigningKeyRecord {
        kid: kid.to_owned(),
        alg,
        private_der: format!("der of {kid}").into_bytes(),
        created_at: NOW,
    }
}

async fn first_signing_key_per_algorithm(s: S) {
    assert!(s.signing_keys().await.expect("keys").is_empty());

    assert!(
        s.insert_first_signing_key(&key("es-1", SigningAlg::ES256))
            .await
            .expect("insert")
    );
    assert!(
        !s.insert_first_signing_key(&key("es-2", SigningAlg::ES256))
            .await
            .expect("insert"),
        "a second ES256 key must not be inserted"
    );
    assert!(
        s.insert_first_signing_key(&key("rs-1", SigningAlg::RS256))
            .await
            .expect("insert"),
        "another algorithm gets its own first key"
    );

    let mut keys: Vec<(String, SigningAlg, Vec<u8>, i64)> = s
        .signing_keys()
        .await
        .expect("keys")
        .into_iter()
        .map(|k| (k.kid, k.alg, k.private_der, k.created_at))
        .collect();
    keys.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        keys,
        [
            (
                "es-1".to_owned(),
                SigningAlg::ES256,
                b"der of es-1".to_vec(),
                NOW
            ),
            (
                "rs-1".to_owned(),
                SigningAlg::RS256,
                b"der of rs-1".to_vec(),
                NOW
            ),
        ]
    );
}

// ----------------------------------------------------------------------------------------------
// Sessions
// ----------------------------------------------------------------------------------------------

async fn session_slides_idle_expiry(s: S) {
    seed(&s).await;
    s.create_session(&session_record("a", "u1", NOW + 1000, NOW + 10))
        .await
        .expect("create");

    let got = s
        .session(&hash("session-a"), NOW, NOW + 20)
        .await
        .expect("session")
        .expect("live session");
    assert_eq!(got.id_hash, hash("session-a"));
    assert_eq!(got.user_id, "u1");
    assert_eq!(got.auth_time, NOW - 1);
    assert_eq!(got.expires_at, NOW + 1000);
    assert_eq!(got.idle_expires_at, NOW + 20);

    // Past the original idle end (NOW + 10) but before the slid one (NOW + 20).
    assert!(
        session_live(&s, "a", NOW + 15, NOW + 25).await,
        "the idle end must have slid to NOW + 20"
    );
    // Idle end (now NOW + 25) reached.
    assert!(!session_live(&s, "a", NOW + 25, NOW + 100).await);
    assert!(
        !session_live(&s, "a", NOW + 26, NOW + 100).await,
        "an idle-expired session is not revived"
    );
}

async fn session_absolute_expiry(s: S) {
    seed(&s).await;
    s.create_session(&session_record("a", "u1", NOW + 50, NOW + 10))
        .await
        .expect("create");
    // Activity keeps the idle end ahead, but not past the absolute end.
    assert!(session_live(&s, "a", NOW + 5, NOW + 40).await);
    assert!(session_live(&s, "a", NOW + 35, NOW + 200).await);
    assert!(session_live(&s, "a", NOW + 49, NOW + 200).await);
    assert!(!session_live(&s, "a", NOW + 50, NOW + 200).await);
    assert!(!session_live(&s, "a", NOW + 60, NOW + 200).await);
}

async fn session_of_disabled_user_or_unknown_is_none(s: S) {
    seed(&s).await;
    s.insert_user(&UserRecord {
        disabled: true,
        ..user_record("u2", "bob")
    })
    .await
    .expect("insert disabled bob");
    s.create_session(&session_record("bob", "u2", NOW + 1000, NOW + 100))
        .await
        .expect("create");
    s.create_session(&session_record("alice", "u1", NOW + 1000, NOW + 100))
        .await
        .expect("create");

    assert!(!session_live(&s, "bob", NOW, NOW + 100).await);
    assert!(session_live(&s, "alice", NOW, NOW + 100).await);
    assert!(!session_live(&s, "nobody", NOW, NOW + 100).await);
}

async fn delete_session_ends_only_that_session(s: S) {
    seed(&s).await;
    s.create_session(&session_record("a", "u1", NOW + 1000, NOW + 100))
        .await
        .expect("create");
    s.create_session(&session_record("b", "u1", NOW + 1000, NOW + 100))
        .await
        .expect("create");

    s.delete_session(&hash("session-a")).await.expect("delete");
    assert!(!session_live(&s, "a", NOW, NOW + 100).await);
    assert!(session_live(&s, "b", NOW, NOW + 100).await);
    // Deleting what is not there is not an error (a second logout).
    s.delete_session(&hash("session-a"))
        .await
        .expect("delete again");
}

// ----------------------------------------------------------------------------------------------
// Pending requests
// ----------------------------------------------------------------------------------------------

async fn pending_request_round_trip_and_expiry(s: S) {
    seed(&s).await;
    let p = pending("a", "c1", NOW + 100);
    s.insert_pending_request(&p).await.expect("insert");

    let got = s
        .pending_request(&hash("pending-a"), NOW + 99)
        .await
        .expect("pending")
        .expect("live pending request");
    assert_eq!(got.id_hash, p.id_hash);
    assert_eq!(got.browser_hash, p.browser_hash);
    assert_eq!(got.request, p.request);
    assert_eq!((got.user_id, got.auth_time), (None, None));
    assert_eq!(got.expires_at, NOW + 100);

    assert!(
        s.pending_request(&hash("pending-a"), NOW + 100)
            .await
            .expect("pending")
            .is_none(),
        "expired at its expires_at"
    );
    assert!(
        s.pending_request(&hash("pending-b"), NOW)
            .await
            .expect("pending")
            .is_none()
    );
}

async fn record_login_sets_user(s: S) {
    seed(&s).await;
    s.insert_pending_request(&pending("a", "c1", NOW + 100))
        .await
        .expect("insert");

    assert!(
        s.record_login(&hash("pending-a"), "u1", NOW + 3)
            .await
            .expect("record")
    );
    let got = s
        .pending_request(&hash("pending-a"), NOW + 4)
        .await
        .expect("pending")
        .expect("live");
    assert_eq!(got.user_id.as_deref(), Some("u1"));
    assert_eq!(got.auth_time, Some(NOW + 3));

    assert!(
        !s.record_login(&hash("pending-b"), "u1", NOW + 3)
            .await
            .expect("record"),
        "no such pending request"
    );
}

async fn issue_authorization_code_consumes_pending_request_once(s: S) {
    seed(&s).await;
    let consent = scopes("openid profile");
    s.insert_pending_request(&pending("a", "c1", NOW + 100))
        .await
        .expect("insert");
    let first = NewAuthorizationCode {
        code_hash: hash("code-1"),
        grant: code_grant("1", "c1", "u1"),
    };
    let second = NewAuthorizationCode {
        code_hash: hash("code-2"),
        grant: code_grant("2", "c1", "u1"),
    };

    assert!(
        s.issue_authorization_code(&hash("pending-a"), NOW + 1, &first, Some(&consent))
            .await
            .expect("issue")
    );
    assert!(
        s.pending_request(&hash("pending-a"), NOW + 1)
            .await
            .expect("pending")
            .is_none(),
        "the pending request is consumed"
    );
    assert_eq!(
        s.consent("u1", "c1").await.expect("consent"),
        Some(consent.clone())
    );
    let consents = s.consents_of("u1").await.expect("consents_of");
    assert_eq!(consents.len(), 1);
    assert_eq!(consents[0].granted_at, NOW + 1);

    assert!(
        !s.issue_authorization_code(&hash("pending-a"), NOW + 2, &second, Some(&consent))
            .await
            .expect("issue again"),
        "a pending request issues at most one code"
    );
    assert_eq!(count(&s, "authorization_codes").await, 1);
    let second_code = s
        .redeem_authorization_code(
            &hash("code-2"),
            NOW + 3,
            Arc::new(accept_code),
            &refresh("2"),
            true,
        )
        .await
        .expect("redeem");
    assert!(
        matches!(second_code, CodeRedemption::Unknown),
        "got {second_code:?}"
    );
    match s
        .redeem_authorization_code(
            &hash("code-1"),
            NOW + 3,
            Arc::new(accept_code),
            &refresh("1"),
            true,
        )
        .await
        .expect("redeem")
    {
        CodeRedemption::Issued(grant) => assert_eq!(grant, first.grant),
        other => panic!("expected Issued, got {other:?}"),
    }
}

async fn issue_authorization_code_without_consent_or_when_expired(s: S) {
    seed(&s).await;
    s.insert_pending_request(&pending("a", "c1", NOW + 100))
        .await
        .expect("insert");
    s.insert_pending_request(&pending("old", "c1", NOW + 100))
        .await
        .expect("insert");
    let code = |label: &str| NewAuthorizationCode {
        code_hash: hash(&format!("code-{label}")),
        grant: code_grant(label, "c1", "u1"),
    };

    assert!(
        s.issue_authorization_code(&hash("pending-a"), NOW, &code("a"), None)
            .await
            .expect("issue")
    );
    assert!(
        s.consent("u1", "c1").await.expect("consent").is_none(),
        "no consent given, none stored"
    );

    assert!(
        !s.issue_authorization_code(
            &hash("pending-old"),
            NOW + 100,
            &code("old"),
            Some(&scopes("openid"))
        )
        .await
        .expect("issue"),
        "an expired pending request issues nothing"
    );
    assert!(s.consent("u1", "c1").await.expect("consent").is_none());
    assert_eq!(count(&s, "authorization_codes").await, 1);

    assert!(
        !s.issue_authorization_code(&hash("pending-none"), NOW, &code("none"), None)
            .await
            .expect("issue"),
        "unknown pending request"
    );
}

async fn issue_authorization_code_is_all_or_nothing(s: S) {
    seed(&s).await;
    issue_code(&s, "a", &code_grant("a", "c1", "u1"), None).await;
    s.insert_pending_request(&pending("b", "c1", NOW + 100))
        .await
        .expect("insert");
    // The code's digest collides with the stored code, so the code insert fails after the
    // pending request was consumed and the consent written, in the same transaction.
    let clash = NewAuthorizationCode {
        code_hash: hash("code-a"),
        grant: code_grant("b", "c1", "u1"),
    };
    s.issue_authorization_code(&hash("pending-b"), NOW, &clash, Some(&scopes("openid")))
        .await
        .expect_err("a duplicate code digest must fail");

    assert!(
        s.pending_request(&hash("pending-b"), NOW)
            .await
            .expect("pending")
            .is_some(),
        "the failed issue must not consume the pending request"
    );
    assert!(
        s.consent("u1", "c1").await.expect("consent").is_none(),
        "the failed issue must not store consent"
    );
}

async fn deny_pending_request_consumes_it(s: S) {
    seed(&s).await;
    s.insert_pending_request(&pending("a", "c1", NOW + 100))
        .await
        .expect("insert");
    s.insert_pending_request(&pending("old", "c1", NOW + 100))
        .await
        .expect("insert");

    assert!(
        s.deny_pending_request(&hash("pending-a"), NOW)
            .await
            .expect("deny")
    );
    assert!(
        s.pending_request(&hash("pending-a"), NOW)
            .await
            .expect("pending")
            .is_none()
    );
    assert!(
        !s.deny_pending_request(&hash("pending-a"), NOW)
            .await
            .expect("deny again")
    );
    let code = NewAuthorizationCode {
        code_hash: hash("code-a"),
        grant: code_grant("a", "c1", "u1"),
    };
    assert!(
        !s.issue_authorization_code(&hash("pending-a"), NOW, &code, None)
            .await
            .expect("issue"),
        "a denied request issues no code"
    );

    assert!(
        !s.deny_pending_request(&hash("pending-old"), NOW + 100)
            .await
            .expect("deny expired"),
        "an expired pending request cannot be answered"
    );
    assert!(
        !s.deny_pending_request(&hash("pending-none"), NOW)
            .await
            .expect("deny unknown")
    );
}

// ----------------------------------------------------------------------------------------------
// Consents
// ----------------------------------------------------------------------------------------------

async fn consents_and_revoke_consent(s: S) {
    seed(&s).await;
    s.insert_client(&client_record("c2", true))
        .await
        .expect("insert c2");
    s.insert_user(&user_record("u2", "bob"))
        .await
        .expect("insert bob");
    let (s1, s2) = (scopes("openid"), scopes("openid email"));
    for (label, client, user, consent) in [
        ("u1c1", "c1", "u1", &s1),
        ("u1c2", "c2", "u1", &s2),
        ("u2c1", "c1", "u2", &s1),
    ] {
        issue_code(&s, label, &code_grant(label, client, user), Some(consent)).await;
        redeem(&s, label, &refresh(label)).await;
    }
    // A second grant of u1 at c1, from a later code.
    issue_code(&s, "u1c1b", &code_grant("u1c1b", "c1", "u1"), Some(&s1)).await;
    redeem(&s, "u1c1b", &refresh("u1c1b")).await;

    assert_eq!(
        s.consent("u1", "c1").await.expect("consent"),
        Some(s1.clone())
    );
    assert_eq!(
        s.consent("u1", "c2").await.expect("consent"),
        Some(s2.clone())
    );
    assert!(s.consent("u2", "c2").await.expect("consent").is_none());

    let mut listed: Vec<(String, String, Scopes, i64)> = s
        .consents_of("u1")
        .await
        .expect("consents_of")
        .into_iter()
        .map(|c| (c.client_id, c.client_name, c.scope, c.granted_at))
        .collect();
    listed.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        listed,
        [
            ("c1".to_owned(), "Client c1".to_owned(), s1.clone(), NOW),
            ("c2".to_owned(), "Client c2".to_owned(), s2.clone(), NOW),
        ]
    );
    assert!(
        s.consents_of("nobody")
            .await
            .expect("consents_of")
            .is_empty()
    );

    assert!(s.revoke_consent("u1", "c1", NOW + 1).await.expect("revoke"));
    assert!(s.consent("u1", "c1").await.expect("consent").is_none());
    assert!(revoked(&s, "grant-u1c1").await);
    assert!(revoked(&s, "grant-u1c1b").await);
    assert!(!refresh_live(&s, "u1c1").await);
    assert!(!refresh_live(&s, "u1c1b").await);
    // Another client of the same user, and another user of the same client, keep theirs.
    assert_eq!(s.consent("u1", "c2").await.expect("consent"), Some(s2));
    assert!(!revoked(&s, "grant-u1c2").await);
    assert!(refresh_live(&s, "u1c2").await);
    assert_eq!(s.consent("u2", "c1").await.expect("consent"), Some(s1));
    assert!(!revoked(&s, "grant-u2c1").await);
    assert!(refresh_live(&s, "u2c1").await);
    assert_eq!(s.consents_of("u1").await.expect("consents_of").len(), 1);

    assert!(
        !s.revoke_consent("u1", "c1", NOW + 2)
            .await
            .expect("revoke again"),
        "no consent left to revoke"
    );
}

// ----------------------------------------------------------------------------------------------
// Authorization codes
// ----------------------------------------------------------------------------------------------

async fn redeem_issues_once_then_replay_revokes(s: S) {
    seed(&s).await;
    let expected = code_grant("a", "c1", "u1");
    issue_code(&s, "a", &expected, None).await;
    let exact = expected.clone();
    let check = move |g: &CodeGrant| {
        if *g == exact {
            Ok(())
        } else {
            Err(TokenError::InvalidCode)
        }
    };

    match s
        .redeem_authorization_code(
            &hash("code-a"),
            NOW + 1,
            Arc::new(check),
            &refresh("a"),
            true,
        )
        .await
        .expect("redeem")
    {
        CodeRedemption::Issued(grant) => assert_eq!(grant, expected),
        other => panic!("expected Issued, got {other:?}"),
    }
    let grant = grant_of(&s, "grant-a").await;
    assert_eq!(
        grant,
        RefreshGrant {
            grant_id: "grant-a".to_owned(),
            client_id: "c1".to_owned(),
            user_id: "u1".to_owned(),
            scope: expected.scope.clone(),
            auth_time: expected.auth_time,
            expires_at: FAMILY_END,
            revoked: false,
            user_disabled: false,
            refreshed_at: None,
        }
    );
    let by_token = s
        .refresh_token_grant(&hash("rt-a"))
        .await
        .expect("refresh_token_grant")
        .expect("the first refresh token is recorded");
    assert_eq!(by_token.grant_id, "grant-a");
    assert_eq!(by_token.refreshed_at, Some(NOW + 1));

    match s
        .redeem_authorization_code(
            &hash("code-a"),
            NOW + 2,
            Arc::new(accept_code),
            &refresh("a2"),
            true,
        )
        .await
        .expect("redeem again")
    {
        CodeRedemption::Replayed { grant_id } => assert_eq!(grant_id, "grant-a"),
        other => panic!("expected Replayed, got {other:?}"),
    }
    assert!(revoked(&s, "grant-a").await, "a replay revokes the grant");
    assert!(!refresh_live(&s, "a").await, "and spends its refresh token");
    assert!(!refresh_live(&s, "a2").await, "a replay records no token");
    assert_eq!(count(&s, "grants").await, 1);
}

async fn redeem_unknown_code(s: S) {
    seed(&s).await;
    let got = s
        .redeem_authorization_code(
            &hash("code-none"),
            NOW,
            Arc::new(accept_code),
            &refresh("x"),
            true,
        )
        .await
        .expect("redeem");
    assert!(matches!(got, CodeRedemption::Unknown), "got {got:?}");
    assert_eq!(count(&s, "grants").await, 0);
    assert_eq!(count(&s, "refresh_tokens").await, 0);
}

async fn redeem_rejected_burns_the_code(s: S) {
    seed(&s).await;
    issue_code(&s, "a", &code_grant("a", "c1", "u1"), None).await;

    match s
        .redeem_authorization_code(
            &hash("code-a"),
            NOW + 1,
            Arc::new(reject_code),
            &refresh("a"),
            true,
        )
        .await
        .expect("redeem")
    {
        CodeRedemption::Rejected { error, grant_id } => {
            assert_eq!(error, TokenError::PkceMismatch);
            assert!(!grant_id.is_empty());
        }
        other => panic!("expected Rejected, got {other:?}"),
    }
    assert!(s.grant("grant-a").await.expect("grant").is_none());
    assert!(!refresh_live(&s, "a").await);

    match s
        .redeem_authorization_code(
            &hash("code-a"),
            NOW + 2,
            Arc::new(accept_code),
            &refresh("b"),
            true,
        )
        .await
        .expect("redeem again")
    {
        CodeRedemption::Replayed { grant_id } => assert_eq!(grant_id, "grant-a"),
        other => panic!("a rejected code is burned: expected Replayed, got {other:?}"),
    }
    assert!(s.grant("grant-a").await.expect("grant").is_none());
    assert_eq!(count(&s, "refresh_tokens").await, 0);
}

async fn redeem_without_refresh_token(s: S) {
    seed(&s).await;
    issue_code(&s, "a", &code_grant("a", "c1", "u1"), None).await;

    let got = s
        .redeem_authorization_code(
            &hash("code-a"),
            NOW,
            Arc::new(accept_code),
            &refresh("a"),
            false,
        )
        .await
        .expect("redeem");
    assert!(matches!(got, CodeRedemption::Issued(_)), "got {got:?}");
    assert!(
        !revoked(&s, "grant-a").await,
        "the grant is recorded for its access tokens"
    );
    assert!(!refresh_live(&s, "a").await);
    assert_eq!(count(&s, "refresh_tokens").await, 0);
    let rotation = s
        .rotate_refresh_token(&hash("rt-a"), NOW + 1, Arc::new(keep_scope), &refresh("b"))
        .await
        .expect("rotate");
    assert!(
        matches!(rotation, RefreshRotation::Unknown),
        "got {rotation:?}"
    );
}

async fn redeem_is_all_or_nothing(s: S) {
    seed(&s).await;
    new_grant(&s, "a", "c1", "u1").await;
    issue_code(&s, "b", &code_grant("b", "c1", "u1"), None).await;

    // The new refresh token's digest collides with grant-a's, so recording it fails after the
    // code was consumed and the grant inserted, in the same transaction.
    s.redeem_authorization_code(
        &hash("code-b"),
        NOW,
        Arc::new(accept_code),
        &refresh("a"),
        true,
    )
    .await
    .expect_err("a duplicate refresh token digest must fail");
    assert!(s.grant("grant-b").await.expect("grant").is_none());

    let retry = s
        .redeem_authorization_code(
            &hash("code-b"),
            NOW,
            Arc::new(accept_code),
            &refresh("b"),
            true,
        )
        .await
        .expect("redeem");
    assert!(
        matches!(retry, CodeRedemption::Issued(_)),
        "a failed redemption must leave the code unused, got {retry:?}"
    );
}

async fn concurrent_redeems_issue_once(s: S) {
    seed(&s).await;
    issue_code(&s, "a", &code_grant("a", "c1", "u1"), None).await;
    // Open the pool's connections first, so the redeems race each other, not connection set-up.
    let warm: Vec<_> = (0..10)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move { s.ping().await })
        })
        .collect();
    for task in warm {
        task.await.expect("task").expect("ping");
    }
    let start = Arc::new(tokio::sync::Barrier::new(10));
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let s = s.clone();
            let start = start.clone();
            tokio::spawn(async move {
                start.wait().await;
                s.redeem_authorization_code(
                    &hash("code-a"),
                    NOW,
                    Arc::new(accept_code),
                    &refresh(&format!("a{i}")),
                    true,
                )
                .await
            })
        })
        .collect();
    let mut issued = 0;
    let mut replayed = 0;
    for task in tasks {
        match task.await.expect("task").expect("redeem") {
            CodeRedemption::Issued(grant) => {
                assert_eq!(grant.grant_id, "grant-a");
                issued += 1;
            }
            CodeRedemption::Replayed { grant_id } => {
                assert_eq!(grant_id, "grant-a");
                replayed += 1;
            }
            other => panic!("expected Issued or Replayed, got {other:?}"),
        }
    }
    assert_eq!((issued, replayed), (1, 9));
    assert_eq!(count(&s, "grants").await, 1);
    assert_eq!(count(&s, "refresh_tokens").await, 1);
    assert!(revoked(&s, "grant-a").await, "the replays revoke the grant");
}

// ----------------------------------------------------------------------------------------------
// Refresh tokens and grants
// ----------------------------------------------------------------------------------------------

async fn rotate_refresh_token_rotates_and_reuse_revokes_family(s: S) {
    seed(&s).await;
    new_grant(&s, "1", "c1", "u1").await; // rt-1 created at NOW
    let narrower = scopes("openid");
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let check: crate::store::RefreshCheck = {
        let (seen, narrower) = (seen.clone(), narrower.clone());
        Arc::new(move |g: &RefreshGrant| {
            seen.lock().expect("lock").push(g.clone());
            Ok::<_, TokenError>(narrower.clone())
        })
    };

    match s
        .rotate_refresh_token(&hash("rt-1"), NOW + 10, check.clone(), &refresh("2"))
        .await
        .expect("rotate")
    {
        RefreshRotation::Rotated { grant, scope } => {
            assert_eq!(grant.grant_id, "grant-1");
            assert_eq!(
                grant.refreshed_at,
                Some(NOW),
                "refreshed_at is the presented token's creation"
            );
            assert!(!grant.revoked);
            assert_eq!(grant.scope, scopes("openid profile"), "the grant's scope");
            assert_eq!(scope, narrower, "the check's scope");
        }
        other => panic!("expected Rotated, got {other:?}"),
    }
    assert_eq!(seen.lock().expect("lock")[0].refreshed_at, Some(NOW));
    assert!(!refresh_live(&s, "1").await, "the presented token is spent");
    let next = s
        .refresh_token_grant(&hash("rt-2"))
        .await
        .expect("refresh_token_grant")
        .expect("the new token is recorded");
    assert_eq!(next.grant_id, "grant-1");
    assert_eq!(next.refreshed_at, Some(NOW + 10));

    match s
        .rotate_refresh_token(&hash("rt-2"), NOW + 20, check.clone(), &refresh("3"))
        .await
        .expect("rotate")
    {
        RefreshRotation::Rotated { grant, .. } => assert_eq!(grant.refreshed_at, Some(NOW + 10)),
        other => panic!("expected Rotated, got {other:?}"),
    }

    // rt-1 again: reuse.
    match s
        .rotate_refresh_token(&hash("rt-1"), NOW + 30, check.clone(), &refresh("4"))
        .await
        .expect("rotate")
    {
        RefreshRotation::Replayed { grant_id } => assert_eq!(grant_id, "grant-1"),
        other => panic!("expected Replayed, got {other:?}"),
    }
    assert_eq!(
        seen.lock().expect("lock").len(),
        2,
        "no check runs on a replay"
    );
    assert!(revoked(&s, "grant-1").await);
    assert!(!refresh_live(&s, "3").await, "the newest token is spent");
    assert!(!refresh_live(&s, "4").await, "a replay records no token");
    let newest = s
        .rotate_refresh_token(&hash("rt-3"), NOW + 31, check.clone(), &refresh("5"))
        .await
        .expect("rotate");
    assert!(
        !matches!(newest, RefreshRotation::Rotated { .. }),
        "the family is revoked: the newest token no longer rotates, got {newest:?}"
    );
    assert!(!refresh_live(&s, "5").await);
}

async fn rotate_rejected_leaves_token_unspent(s: S) {
    seed(&s).await;
    new_grant(&s, "1", "c1", "u1").await;

    match s
        .rotate_refresh_token(
            &hash("rt-1"),
            NOW + 1,
            Arc::new(reject_refresh),
            &refresh("2"),
        )
        .await
        .expect("rotate")
    {
        RefreshRotation::Rejected { error, grant_id } => {
            assert_eq!(error, TokenError::ScopeWidened);
            assert!(!grant_id.is_empty());
        }
        other => panic!("expected Rejected, got {other:?}"),
    }
    assert!(refresh_live(&s, "1").await, "a rejection spends nothing");
    assert!(!refresh_live(&s, "2").await, "a rejection records nothing");
    assert!(!revoked(&s, "grant-1").await);

    let again = s
        .rotate_refresh_token(&hash("rt-1"), NOW + 2, Arc::new(keep_scope), &refresh("2"))
        .await
        .expect("rotate");
    assert!(
        matches!(again, RefreshRotation::Rotated { .. }),
        "the rightful client still rotates, got {again:?}"
    );
    assert!(refresh_live(&s, "2").await);
}

async fn rotate_unknown_token(s: S) {
    seed(&s).await;
    new_grant(&s, "1", "c1", "u1").await;
    let got = s
        .rotate_refresh_token(&hash("rt-none"), NOW, Arc::new(keep_scope), &refresh("2"))
        .await
        .expect("rotate");
    assert!(matches!(got, RefreshRotation::Unknown), "got {got:?}");
    assert!(!refresh_live(&s, "2").await);
    assert!(refresh_live(&s, "1").await);
    assert!(!revoked(&s, "grant-1").await);
}

async fn grant_reflects_user_status(s: S) {
    seed(&s).await;
    s.insert_user(&UserRecord {
        disabled: true,
        ..user_record("u2", "bob")
    })
    .await
    .expect("insert disabled bob");
    new_grant(&s, "alice", "c1", "u1").await;
    new_grant(&s, "bob", "c1", "u2").await;

    let alice = grant_of(&s, "grant-alice").await;
    assert!(!alice.user_disabled);
    assert_eq!(alice.refreshed_at, None, "no token presented");
    let bob = grant_of(&s, "grant-bob").await;
    assert!(bob.user_disabled);
    assert!(!bob.revoked);
    let bob = s
        .refresh_token_grant(&hash("rt-bob"))
        .await
        .expect("refresh_token_grant")
        .expect("bob's token is unspent");
    assert!(bob.user_disabled);
    assert!(s.grant("grant-none").await.expect("grant").is_none());
    assert!(!refresh_live(&s, "none").await);
}

async fn revoke_grant_revokes_its_tokens_only(s: S) {
    seed(&s).await;
    new_grant(&s, "a", "c1", "u1").await;
    new_grant(&s, "b", "c1", "u1").await;

    s.revoke_grant("grant-a", NOW + 5).await.expect("revoke");
    let a = grant_of(&s, "grant-a").await;
    assert!(a.revoked);
    assert!(!refresh_live(&s, "a").await);
    let rotation = s
        .rotate_refresh_token(&hash("rt-a"), NOW + 6, Arc::new(keep_scope), &refresh("a2"))
        .await
        .expect("rotate");
    assert!(
        !matches!(rotation, RefreshRotation::Rotated { .. }),
        "a revoked grant's token does not rotate, got {rotation:?}"
    );

    assert!(!revoked(&s, "grant-b").await);
    assert!(refresh_live(&s, "b").await);

    s.revoke_grant("grant-a", NOW + 7)
        .await
        .expect("revoking twice is not an error");
    s.revoke_grant("grant-none", NOW + 7)
        .await
        .expect("revoking an unknown grant is not an error");
}

async fn revoking_a_refresh_token_revokes_its_grant_even_once_rotated(s: S) {
    seed(&s).await;
    new_grant(&s, "a", "c1", "u1").await;
    new_grant(&s, "b", "c1", "u1").await;
    let rotation = s
        .rotate_refresh_token(&hash("rt-a"), NOW + 1, Arc::new(keep_scope), &refresh("a2"))
        .await
        .expect("rotate");
    assert!(
        matches!(rotation, RefreshRotation::Rotated { .. }),
        "{rotation:?}"
    );

    let other_client = s
        .revoke_refresh_token_grant(&hash("rt-a"), "c2", NOW + 2)
        .await
        .expect("revoke as another client");
    assert_eq!(other_client, None, "another client's token changes nothing");
    assert!(!revoked(&s, "grant-a").await);

    // The spent predecessor still names the family: its revocation ends the live successor.
    let revoked_id = s
        .revoke_refresh_token_grant(&hash("rt-a"), "c1", NOW + 3)
        .await
        .expect("revoke");
    assert_eq!(revoked_id.as_deref(), Some("grant-a"));
    assert!(revoked(&s, "grant-a").await);
    assert!(!refresh_live(&s, "a2").await);
    assert!(!revoked(&s, "grant-b").await, "other grants stay");
    let unknown = s
        .revoke_refresh_token_grant(&hash("rt-none"), "c1", NOW + 3)
        .await
        .expect("unknown token");
    assert_eq!(unknown, None);
}

// ----------------------------------------------------------------------------------------------
// Operations
// ----------------------------------------------------------------------------------------------

async fn lease_is_exclusive_until_it_expires(s: S) {
    assert!(
        s.acquire_lease("purge", "a", NOW, NOW + 10)
            .await
            .expect("lease")
    );
    assert!(
        !s.acquire_lease("purge", "b", NOW + 5, NOW + 15)
            .await
            .expect("lease"),
        "a live lease belongs to its holder"
    );
    assert!(
        s.acquire_lease("purge", "a", NOW + 5, NOW + 20)
            .await
            .expect("lease"),
        "the holder renews"
    );
    assert!(
        !s.acquire_lease("purge", "b", NOW + 19, NOW + 30)
            .await
            .expect("lease"),
        "renewed until NOW + 20"
    );
    assert!(
        s.acquire_lease("other", "b", NOW + 19, NOW + 30)
            .await
            .expect("lease"),
        "another lease name is independent"
    );
    assert!(
        s.acquire_lease("purge", "b", NOW + 20, NOW + 30)
            .await
            .expect("lease"),
        "an expired lease is taken over"
    );
    assert!(
        !s.acquire_lease("purge", "a", NOW + 21, NOW + 40)
            .await
            .expect("lease"),
        "the old holder lost it"
    );
}

async fn purge_deletes_only_what_is_past_the_cutoffs(s: S) {
    seed(&s).await;
    let before = NOW + 1000;
    let retention = 100;
    let old = before - retention;

    // Pending requests end at `before`.
    s.insert_pending_request(&pending("old", "c1", before))
        .await
        .expect("insert");
    s.insert_pending_request(&pending("live", "c1", before + 1))
        .await
        .expect("insert");
    // Sessions end at `before`, by either limit.
    s.create_session(&session_record("abs", "u1", before, before + 500))
        .await
        .expect("create");
    s.create_session(&session_record("idle", "u1", before + 5000, before))
        .await
        .expect("create");
    s.create_session(&session_record("live", "u1", before + 5000, before + 1))
        .await
        .expect("create");
    // Codes are kept until `before - retention`.
    for (label, expires_at) in [("old", old), ("recent", old + 1)] {
        let grant = CodeGrant {
            expires_at,
            ..code_grant(label, "c1", "u1")
        };
        issue_code(&s, &format!("code-{label}"), &grant, None).await;
    }
    // Grants too, by absolute end or revocation.
    for (label, family_end, revoked_at) in [
        ("g-expired", old, None),
        ("g-revoked-old", before + 5000, Some(old)),
        ("g-revoked-recent", before + 5000, Some(old + 1)),
        ("g-live", old + 1, None),
    ] {
        let grant = CodeGrant {
            expires_at: before + 5000,
            ..code_grant(label, "c1", "u1")
        };
        issue_code(&s, label, &grant, None).await;
        redeem(&s, label, &refresh_until(label, family_end)).await;
        if let Some(at) = revoked_at {
            s.revoke_grant(&grant.grant_id, at).await.expect("revoke");
        }
    }
    assert_eq!(count(&s, "authorization_codes").await, 6);
    assert_eq!(count(&s, "refresh_tokens").await, 4);

    let report = s
        .purge_expired(before, retention, 100)
        .await
        .expect("purge");
    assert_eq!(
        report,
        PurgeReport {
            pending_requests: 1,
            sessions: 2,
            authorization_codes: 1,
            grants: 2,
            flow_events: 0,
        }
    );

    let pending_left = |label: &'static str| {
        let s = s.clone();
        async move {
            s.pending_request(&hash(&format!("pending-{label}")), NOW)
                .await
                .expect("pending")
                .is_some()
        }
    };
    assert!(!pending_left("old").await);
    assert!(pending_left("live").await);
    assert_eq!(count(&s, "sessions").await, 1);
    assert!(session_live(&s, "live", NOW, before + 1).await);
    let code = |label: &'static str| {
        let s = s.clone();
        async move {
            s.redeem_authorization_code(
                &hash(&format!("code-code-{label}")),
                NOW,
                Arc::new(reject_code),
                &refresh("unused"),
                true,
            )
            .await
            .expect("redeem")
        }
    };
    let gone = code("old").await;
    assert!(matches!(gone, CodeRedemption::Unknown), "got {gone:?}");
    let kept = code("recent").await;
    assert!(
        matches!(kept, CodeRedemption::Rejected { .. }),
        "a code within retention stays, got {kept:?}"
    );
    assert!(s.grant("grant-g-expired").await.expect("grant").is_none());
    assert!(
        s.grant("grant-g-revoked-old")
            .await
            .expect("grant")
            .is_none()
    );
    assert!(revoked(&s, "grant-g-revoked-recent").await);
    assert!(!revoked(&s, "grant-g-live").await);
    assert_eq!(
        count(&s, "refresh_tokens").await,
        2,
        "refresh tokens go with their grants"
    );
    let rotation = s
        .rotate_refresh_token(
            &hash("rt-g-expired"),
            NOW,
            Arc::new(keep_scope),
            &refresh("x"),
        )
        .await
        .expect("rotate");
    assert!(
        matches!(rotation, RefreshRotation::Unknown),
        "got {rotation:?}"
    );
    assert_eq!(count(&s, "users").await, 1);
    assert_eq!(count(&s, "clients").await, 1);

    let again = s
        .purge_expired(before, retention, 100)
        .await
        .expect("purge again");
    assert_eq!(again, PurgeReport::default(), "nothing more to purge");
}

async fn purge_respects_the_batch_limit(s: S) {
    seed(&s).await;
    for i in 0..5 {
        s.insert_pending_request(&pending(&format!("old{i}"), "c1", NOW + i))
            .await
            .expect("insert");
    }
    s.insert_pending_request(&pending("live", "c1", NOW + 1000))
        .await
        .expect("insert");

    let first = s.purge_expired(NOW + 100, 0, 2).await.expect("purge");
    assert_eq!(first.pending_requests, 2);
    assert_eq!(first.total(), 2);
    assert_eq!(count(&s, "pending_requests").await, 4);

    let second = s.purge_expired(NOW + 100, 0, 2).await.expect("purge");
    assert_eq!(second.pending_requests, 2);
    let third = s.purge_expired(NOW + 100, 0, 2).await.expect("purge");
    assert_eq!(third.pending_requests, 1);
    let fourth = s.purge_expired(NOW + 100, 0, 2).await.expect("purge");
    assert_eq!(fourth.pending_requests, 0);

    assert_eq!(count(&s, "pending_requests").await, 1);
    assert!(
        s.pending_request(&hash("pending-live"), NOW)
            .await
            .expect("pending")
            .is_some()
    );
}

async fn table_counts_lists_every_table(s: S) {
    let empty = s.table_counts().await.expect("counts");
    let names: Vec<&str> = empty.iter().map(|(name, _)| *name).collect();
    assert_eq!(names, TABLES);
    assert!(
        empty.iter().all(|(_, n)| *n == 0),
        "a fresh store is empty: {empty:?}"
    );

    seed(&s).await;
    new_grant(&s, "a", "c1", "u1").await;
    s.create_session(&session_record("a", "u1", NOW + 100, NOW + 10))
        .await
        .expect("create");
    s.acquire_lease("purge", "a", NOW, NOW + 10)
        .await
        .expect("lease");
    let counts = s.table_counts().await.expect("counts");
    assert_eq!(
        counts,
        [
            ("clients", 1),
            ("users", 1),
            ("signing_keys", 0),
            ("sessions", 1),
            ("pending_requests", 0),
            ("consents", 0),
            ("grants", 1),
            ("authorization_codes", 1),
            ("refresh_tokens", 1),
            ("leases", 1),
            ("flow_events", 0),
        ]
    );
}

fn trail_event(
    at: i64,
    request_id: &str,
    flow: Option<&str>,
    grant_id: Option<&str>,
    event: &str,
) -> FlowEvent {
    FlowEvent {
        at,
        request_id: request_id.to_owned(),
        flow: flow.map(str::to_owned),
        grant_id: grant_id.map(str::to_owned),
        event: event.to_owned(),
        detail: format!(r#"{{"step":"{event}"}}"#),
    }
}

async fn flow_events_link_requests_by_flow_and_grant(s: S) {
    let events = [
        trail_event(
            NOW,
            "r-authorize",
            Some("f1"),
            None,
            "authorization_request",
        ),
        trail_event(NOW + 1, "r-login", Some("f1"), None, "login_succeeded"),
        trail_event(NOW + 2, "r-consent", Some("f1"), Some("g1"), "code_issued"),
        trail_event(NOW + 3, "r-token", None, Some("g1"), "code_redeemed"),
        trail_event(NOW + 3, "r-token", None, Some("g1"), "access_token_issued"),
        trail_event(
            NOW + 9,
            "r-refresh",
            None,
            Some("g1"),
            "refresh_token_rotated",
        ),
        // Another flow, and a refused request linked to nothing.
        trail_event(NOW, "r-other", Some("f2"), None, "authorization_request"),
        trail_event(
            NOW,
            "r-refused",
            None,
            None,
            "authorization_request_refused",
        ),
    ];
    s.append_flow_events(&events).await.expect("append");
    s.append_flow_events(&[]).await.expect("nothing to append");
    let whole: Vec<FlowEvent> = events[..6].to_vec();
    // Whichever step's request id is asked about, the whole flow comes back, in order.
    for request_id in [
        "r-authorize",
        "r-login",
        "r-consent",
        "r-token",
        "r-refresh",
    ] {
        assert_eq!(
            s.flow_events(request_id).await.expect("events"),
            whole,
            "{request_id}"
        );
    }
    assert_eq!(
        s.flow_events("r-other").await.expect("events"),
        vec![events[6].clone()]
    );
    assert_eq!(
        s.flow_events("r-refused").await.expect("events"),
        vec![events[7].clone()]
    );
    assert!(s.flow_events("r-unknown").await.expect("events").is_empty());

    // Purging takes what is older than the cutoff, in batches.
    assert_eq!(
        s.purge_flow_events(NOW + 1, 100, 2).await.expect("purge"),
        2
    );
    assert_eq!(
        s.purge_flow_events(NOW + 1, 100, 100).await.expect("purge"),
        2
    );
    let left = s.flow_events("r-refresh").await.expect("events");
    assert_eq!(left.len(), 4, "{left:?}");
    // Beyond the newest `keep`, older events go whatever their age.
    assert_eq!(
        s.purge_flow_events(NOW - 1, 1, 100).await.expect("purge"),
        3
    );
    let left = s.flow_events("r-refresh").await.expect("events");
    assert_eq!(left, vec![events[5].clone()]);
}

async fn ping_answers(s: S) {
    s.ping().await.expect("ping");
}

// ----------------------------------------------------------------------------------------------
// The two backends
// ----------------------------------------------------------------------------------------------

/// Mounts every contract test once per backend, each on a store of its own.
macro_rules! contract {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let (store, _dir) = super::sqlite_store().await;
                    super::$test(store).await;
                }
            )*
        }

        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let (store, schema) = super::postgres_store().await;
                    super::$test(store).await;
                    super::drop_postgres_schema(&schema).await;
                }
            )*
        }
    };
}

contract!(
    clients_round_trip,
    duplicate_client_id_conflicts,
    set_client_secret_only_for_confidential_clients,
    delete_client_cascades,
    users_round_trip,
    duplicate_username_conflicts,
    set_password_ends_sessions_and_revokes_grants,
    disable_user_ends_sessions_and_revokes_grants,
    delete_user_removes_everything_issued_to_them,
    first_signing_key_per_algorithm,
    session_slides_idle_expiry,
    session_absolute_expiry,
    session_of_disabled_user_or_unknown_is_none,
    delete_session_ends_only_that_session,
    pending_request_round_trip_and_expiry,
    record_login_sets_user,
    issue_authorization_code_consumes_pending_request_once,
    issue_authorization_code_without_consent_or_when_expired,
    issue_authorization_code_is_all_or_nothing,
    deny_pending_request_consumes_it,
    consents_and_revoke_consent,
    redeem_issues_once_then_replay_revokes,
    redeem_unknown_code,
    redeem_rejected_burns_the_code,
    redeem_without_refresh_token,
    redeem_is_all_or_nothing,
    concurrent_redeems_issue_once,
    rotate_refresh_token_rotates_and_reuse_revokes_family,
    rotate_rejected_leaves_token_unspent,
    rotate_unknown_token,
    grant_reflects_user_status,
    revoke_grant_revokes_its_tokens_only,
    revoking_a_refresh_token_revokes_its_grant_even_once_rotated,
    lease_is_exclusive_until_it_expires,
    purge_deletes_only_what_is_past_the_cutoffs,
    purge_respects_the_batch_limit,
    table_counts_lists_every_table,
    flow_events_link_requests_by_flow_and_grant,
    ping_answers,
);
