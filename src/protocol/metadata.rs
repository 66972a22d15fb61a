//! The authorization server metadata document (RFC 8414 §2) and the paths it advertises. Every
//! URL is built from the configured issuer, never from request headers (checklist item 50).

use serde::Serialize;

/// Paths of Latchkey's endpoints; the router mounts exactly these.
pub mod paths {
    pub const METADATA: &str = "/.well-known/oauth-authorization-server";
    pub const AUTHORIZE: &str = "/authorize";
    pub const LOGIN: &str = "/login";
    pub const CONSENT: &str = "/consent";
    pub const ACCOUNT: &str = "/account";
    pub const ACCOUNT_LOGIN: &str = "/account/login";
    pub const ACCOUNT_REVOKE: &str = "/account/revoke";
    pub const LOGOUT: &str = "/logout";
    pub const TOKEN: &str = "/token";
    pub const JWKS: &str = "/jwks";
    pub const INTROSPECT: &str = "/introspect";
    pub const REVOKE: &str = "/revoke";
    pub const USERINFO: &str = "/userinfo";
    pub const STYLESHEET: &str = "/assets/latchkey.css";
    pub const HEALTH_LIVE: &str = "/health/live";
    pub const HEALTH_READY: &str = "/health/ready";
    pub const DEMO_CALLBACK: &str = "/demo/callback";
}

/// RFC 8414 §2 metadata, with the fields CONTRACT §4 promises.
#[derive(Debug, Serialize)]
pub struct Metadata {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    pub introspection_endpoint: String,
    pub revocation_endpoint: String,
    pub userinfo_endpoint: String,
    pub response_types_supported: [&'static str; 1],
    pub response_modes_supported: [&'static str; 1],
    pub grant_types_supported: [&'static str; 2],
    pub code_challenge_methods_supported: [&'static str; 1],
    pub token_endpoint_auth_methods_supported: [&'static str; 3],
    pub introspection_endpoint_auth_methods_supported: [&'static str; 2],
    pub revocation_endpoint_auth_methods_supported: [&'static str; 2],
    pub scopes_supported: Vec<String>,
    /// RFC 9207 §3.
    pub authorization_response_iss_parameter_supported: bool,
}

impl Metadata {
    /// Builds the document for `issuer` (no trailing slash) and the scopes some client may
    /// request.
    pub fn new(issuer: &str, scopes_supported: Vec<String>) -> Self {
        let url = |path: &str| format!("{issuer}{path}");
        Metadata {
            issuer: issuer.to_owned(),
            authorization_endpoint: url(paths::AUTHORIZE),
            token_endpoint: url(paths::TOKEN),
            jwks_uri: url(paths::JWKS),
            introspection_endpoint: url(paths::INTROSPECT),
            revocation_endpoint: url(paths::REVOKE),
            userinfo_endpoint: url(paths::USERINFO),
            response_types_supported: ["code"],
            response_modes_supported: ["query"],
            grant_types_supported: ["authorization_code", "refresh_token"],
            code_challenge_methods_supported: ["S256"],
            token_endpoint_auth_methods_supported: [
                "client_secret_basic",
                "client_secret_post",
                "none",
            ],
            introspection_endpoint_auth_methods_supported: [
                "client_secret_basic",
                "client_secret_post",
            ],
            revocation_endpoint_auth_methods_supported: [
                "client_secret_basic",
                "client_secret_post",
            ],
            scopes_supported,
            authorization_response_iss_parameter_supported: true,
        }
    }
}
