//! The authorization server metadata document (RFC 8414 §2) and the paths it advertises. Every
//! URL is built from the configured issuer, never from request headers (checklist item 50).

use serde::Serialize;

/// Paths of Latchkey's endpoints; the router mounts exactly these.
pub mod paths {
    pub const METADATA: &str = "/.well-known/oauth-authorization-server";
    /// OIDC Discovery 1.0 §4: the same document, with the OpenID Provider fields.
    pub const OPENID_CONFIGURATION: &str = "/.well-known/openid-configuration";
    pub const AUTHORIZE: &str = "/authorize";
    pub const LOGIN: &str = "/login";
    pub const CONSENT: &str = "/consent";
    pub const ACCOUNT: &str = "/account";
    pub const ACCOUNT_LOGIN: &str = "/account/login";
    pub const ACCOUNT_REVOKE: &str = "/account/revoke";
    pub const LOGOUT: &str = "/logout";
    /// OpenID Connect RP-Initiated Logout 1.0.
    pub const END_SESSION: &str = "/end_session";
    pub const TOKEN: &str = "/token";
    pub const JWKS: &str = "/jwks";
    pub const INTROSPECT: &str = "/introspect";
    pub const REVOKE: &str = "/revoke";
    pub const USERINFO: &str = "/userinfo";
    pub const STYLESHEET: &str = "/assets/latchkey.css";
    pub const FAVICON: &str = "/favicon.ico";
    pub const FAVICON_SVG: &str = "/assets/favicon.svg";
    pub const HEALTH_LIVE: &str = "/health/live";
    pub const HEALTH_READY: &str = "/health/ready";
    pub const DEMO_CALLBACK: &str = "/demo/callback";
    pub const PLAYGROUND: &str = "/playground";
    pub const PLAYGROUND_START: &str = "/playground/start";
    pub const PLAYGROUND_CALLBACK: &str = "/playground/callback";
    pub const PLAYGROUND_EXCHANGE: &str = "/playground/exchange";
    pub const PLAYGROUND_REFRESH: &str = "/playground/refresh";
    pub const PLAYGROUND_USERINFO: &str = "/playground/userinfo";
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
    /// RP-Initiated Logout 1.0 §2.1.
    pub end_session_endpoint: String,
    pub response_types_supported: [&'static str; 1],
    pub response_modes_supported: [&'static str; 1],
    pub grant_types_supported: [&'static str; 3],
    pub code_challenge_methods_supported: [&'static str; 1],
    pub token_endpoint_auth_methods_supported: [&'static str; 3],
    pub introspection_endpoint_auth_methods_supported: [&'static str; 2],
    pub revocation_endpoint_auth_methods_supported: [&'static str; 2],
    pub scopes_supported: Vec<String>,
    /// RFC 9207 §3.
    pub authorization_response_iss_parameter_supported: bool,
    /// OIDC Discovery 1.0 §3 fields; RFC 8414 §2 allows them in its document too, so both
    /// paths serve one document and can never disagree.
    pub subject_types_supported: [&'static str; 1],
    pub id_token_signing_alg_values_supported: [&'static str; 3],
    pub claims_supported: [&'static str; 15],
    pub prompt_values_supported: [&'static str; 3],
    pub display_values_supported: [&'static str; 1],
    pub claims_parameter_supported: bool,
    pub request_parameter_supported: bool,
    pub request_uri_parameter_supported: bool,
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
            end_session_endpoint: url(paths::END_SESSION),
            response_types_supported: ["code"],
            response_modes_supported: ["query"],
            grant_types_supported: ["authorization_code", "refresh_token", "client_credentials"],
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
            subject_types_supported: ["public"],
            // RS256 first: OIDC Core §15.1 makes it the one every OP supports.
            id_token_signing_alg_values_supported: ["RS256", "ES256", "EdDSA"],
            claims_supported: [
                "iss",
                "sub",
                "aud",
                "exp",
                "iat",
                "auth_time",
                "nonce",
                "azp",
                "at_hash",
                "amr",
                "name",
                "preferred_username",
                "email",
                "email_verified",
                "scope",
            ],
            prompt_values_supported: ["none", "login", "consent"],
            display_values_supported: ["page"],
            claims_parameter_supported: false,
            request_parameter_supported: false,
            request_uri_parameter_supported: false,
        }
    }
}
