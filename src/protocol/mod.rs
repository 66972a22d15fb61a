//! Pure OAuth 2.0 rules: typed requests, ordered checks and the error vocabulary. Nothing here
//! does I/O, reads the clock or knows about HTTP or SQL.

pub mod access_token;
pub mod authorize;
pub mod client_auth;
pub mod error;
pub mod metadata;
pub mod params;
pub mod pkce;
pub mod redirect_uri;
pub mod token;
pub mod types;
