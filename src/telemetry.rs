//! Logging: `tracing` to stderr, filtered by `LATCHKEY_LOG` (or `RUST_LOG`). Audit events use
//! the `audit` target. No secret value is ever a field of any event.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Installs the subscriber; `default` is the filter when no variable sets one.
pub fn init(default: &str) {
    let filter = std::env::var("LATCHKEY_LOG")
        .ok()
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| default.to_owned());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
        .try_init();
}
