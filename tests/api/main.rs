//! One integration-test binary: every test boots the real server on a random loopback port
//! with a fresh database and drives it over HTTP.

// Helpers outside #[test] functions panic on purpose: a failed request fails the test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod account;
mod algorithms;
mod authorize;
mod bench;
mod cli;
mod client_credentials;
mod crash;
mod end_session;
mod example;
mod explain;
mod faults;
mod hardening;
mod helpers;
mod keys;
mod login_consent;
mod logs;
mod maintenance;
mod malformed;
mod nodes;
mod oauth2_client;
mod oidc;
mod oidc_client;
mod pages;
mod playground;
mod refresh;
mod resource;
mod token;
