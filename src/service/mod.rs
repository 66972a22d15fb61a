//! Use cases: each public function is one step of an endpoint, built from the protocol rules,
//! one store call where state changes, the clock and the keys.

pub mod account;
pub mod admin;
pub mod authorize;
pub mod keys;
pub mod logout;
pub mod maintenance;
pub mod oidc;
pub mod resource;
pub mod session;
pub mod throttle;
pub mod token;
pub mod trail;

use std::sync::Arc;

use crate::clock::Clock;
use crate::store::{Store, StoreError};
use keys::{KeyError, KeyRing};

/// Lifetimes and identity of one Latchkey deployment, fixed at start.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The issuer URL (RFC 8414 §2), without a trailing slash.
    pub issuer: String,
    /// Authorization code lifetime in seconds (at most 600, RFC 6749 §4.1.2).
    pub code_ttl: i64,
    pub access_token_ttl: i64,
    /// Absolute lifetime of a refresh-token family.
    pub refresh_token_ttl: i64,
    /// A family whose newest refresh token is unused this long ends.
    pub refresh_token_idle_ttl: i64,
    /// Absolute lifetime of a login session.
    pub session_ttl: i64,
    /// A session unused this long ends.
    pub session_idle_ttl: i64,
    /// How long a started authorization request waits for login and consent.
    pub pending_ttl: i64,
    /// Encrypts signing keys at rest (`--secret-key-file`); none by default.
    pub sealer: Arc<crate::crypto::Sealer>,
    /// Record each flow's steps for `latchkey explain` (on by default).
    pub flow_trail: bool,
}

impl Settings {
    /// Defaults for everything but the issuer: codes 60 s, access tokens 10 min, refresh
    /// families 30 days (14 days idle), sessions 12 h (1 h idle), pending requests 30 min.
    pub fn new(issuer: impl Into<String>) -> Self {
        Settings {
            issuer: issuer.into().trim_end_matches('/').to_owned(),
            code_ttl: 60,
            access_token_ttl: 600,
            refresh_token_ttl: 30 * 24 * 3600,
            refresh_token_idle_ttl: 14 * 24 * 3600,
            session_ttl: 12 * 3600,
            session_idle_ttl: 3600,
            pending_ttl: 30 * 60,
            sealer: Arc::new(crate::crypto::Sealer::none()),
            flow_trail: true,
        }
    }

    /// Cookies get `Secure` and the `__Host-` prefix when the issuer is https.
    pub fn secure_cookies(&self) -> bool {
        self.issuer.starts_with("https://")
    }
}

/// Everything a request needs: store, clock, keys and settings.
pub struct Latchkey {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    keys: std::sync::RwLock<Arc<KeyRing>>,
    pub settings: Settings,
    /// Failed password and client-secret attempts on this node.
    pub throttle: throttle::Throttle,
    /// Each flow's steps, for `latchkey explain`.
    pub trail: trail::Trail,
}

impl Latchkey {
    /// Loads (or creates on first start) the signing keys and assembles the service.
    pub async fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        settings: Settings,
    ) -> Result<Self, KeyError> {
        let keys = KeyRing::load_or_create(store.as_ref(), &settings.sealer, clock.now()).await?;
        Ok(Latchkey {
            trail: if settings.flow_trail {
                trail::Trail::spawn(store.clone())
            } else {
                trail::Trail::off()
            },
            store,
            clock,
            keys: std::sync::RwLock::new(Arc::new(keys)),
            settings,
            throttle: throttle::Throttle::default(),
        })
    }

    /// The current signing keys.
    pub fn keys(&self) -> Arc<KeyRing> {
        self.keys.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Re-reads the keys from the store (after a rotation or retirement on any node).
    pub async fn reload_keys(&self) -> Result<(), KeyError> {
        let ring = Arc::new(KeyRing::load(self.store.as_ref(), &self.settings.sealer).await?);
        *self.keys.write().unwrap_or_else(|e| e.into_inner()) = ring;
        Ok(())
    }

    pub fn now(&self) -> i64 {
        self.clock.now()
    }
}

/// An unexpected failure below the protocol: answered with a fixed 500 text, logged once.
#[derive(Debug, thiserror::Error)]
pub enum InternalError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Keys(#[from] KeyError),
    #[error("signing failed: {0}")]
    Signing(#[from] crate::protocol::access_token::SignError),
    #[error("password hashing failed")]
    Hash(#[from] crate::crypto::HashError),
}
