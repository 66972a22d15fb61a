//! Logging: `tracing` to stderr. Operational logs are filtered by `LATCHKEY_LOG` (or
//! `RUST_LOG`) and printed as text, or as JSON lines with `LATCHKEY_LOG_FORMAT=json`.
//!
//! Audit events (target `audit`, checklist item 72) are always JSON lines, whatever the log
//! format, so they can be shipped and queried as a stream; `LATCHKEY_AUDIT=off` silences
//! them. Each line carries the event's own fields
//! (`event`, `client_id`, `sub`, …) at the top level and the request's `request_id` and
//! `client_ip` under `span`. No secret value is ever a field of any event; JSON escaping keeps
//! attacker-chosen values (a username with a line break) on one line.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The target every audit event uses.
pub const AUDIT: &str = "audit";

/// Installs the subscriber; `default` is the operational filter when no variable sets one.
pub fn init(default: &str) {
    let filter = std::env::var("LATCHKEY_LOG")
        .ok()
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| default.to_owned());
    // Audit events go to their own layer only.
    let operational = EnvFilter::new(format!("{filter},{AUDIT}=off"));
    let audit_on = std::env::var("LATCHKEY_AUDIT").map_or(true, |v| v != "off");
    let json = std::env::var("LATCHKEY_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let text_layer = (!json).then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(ansi)
            .with_filter(operational.clone())
    });
    let json_layer = json.then(|| json_lines().with_filter(operational));
    // Request spans pass too, so each event can name its request and client IP.
    let audit_layer = audit_on.then(|| {
        json_lines().with_filter(filter_fn(|meta| {
            meta.target() == AUDIT || (meta.is_span() && *meta.level() <= tracing::Level::INFO)
        }))
    });
    let _ = tracing_subscriber::registry()
        .with(text_layer)
        .with(json_layer)
        .with(audit_layer)
        .try_init();
}

/// One JSON object per line on stderr: event fields at the top level, the enclosing request
/// span (request id, client IP) under `span`.
fn json_lines<S>() -> impl Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    tracing_subscriber::fmt::layer()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .with_writer(std::io::stderr)
}

tokio::task_local! {
    /// The id of the request being answered (the `x-request-id` header, also in every log line
    /// of the request's span), for error pages, JSON errors and the flow trail.
    static REQUEST_ID_IN_SCOPE: String;
}

/// The id of the request being answered, when called while answering one.
pub fn current_request_id() -> Option<String> {
    REQUEST_ID_IN_SCOPE.try_with(String::clone).ok()
}

/// Runs `work` with `id` as the [`current_request_id`].
pub async fn with_request_id<T>(id: String, work: impl std::future::Future<Output = T>) -> T {
    REQUEST_ID_IN_SCOPE.scope(id, work).await
}
