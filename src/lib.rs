//! Latchkey: an OAuth 2.0 authorization server (RFC 6749 Authorization Code flow with PKCE,
//! RFC 9068 JWT access tokens, RFC 9700 defaults) with its own login and consent pages.

/// `latchkey bench`: a load generator for this or any similar server.
pub mod bench;
/// Command implementations: `serve`, `client …`, `user …`.
pub mod cli;
/// The only reader of wall-clock time.
pub mod clock;
/// Command line and environment.
pub mod config;
/// Secret generation, digests, constant-time comparison, Argon2id.
pub mod crypto;
/// Fuzz-target entry points over the protocol parsers (`fuzz/`, replayed by `tests/props.rs`).
pub mod fuzzing;
/// HTTP adapters, routes and server.
pub mod http;
/// Pure OAuth rules: typed requests, checks, errors.
pub mod protocol;
/// Use cases: one function per endpoint step.
pub mod service;
/// Storage behind one trait.
pub mod store;
/// Logging set-up.
pub mod telemetry;
