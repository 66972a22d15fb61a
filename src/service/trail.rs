//! The flow trail: each step of each authorization flow, recorded in the database for
//! `latchkey explain REQUEST_ID` (issue 7). A developer quotes the request id an error page or
//! JSON error showed; the operator sees the whole flow it belongs to — the authorization
//! request's checks, login, consent, the code issued and redeemed, the tokens issued and
//! refreshed — across nodes, since it is in the shared database.
//!
//! Design note: events are queued in memory and written by one task in multi-row inserts, so
//! a request never waits for the trail and, under load, one statement carries many events. The
//! trail is a diagnostic record, not state: a full queue drops events (with a warning) rather
//! than slow the token endpoint, and a crash loses at most what was queued. Nothing secret is
//! recorded: codes and tokens never (access tokens by `jti`), `state` and `nonce` by length,
//! a failed login's username only when it names a user (a password typed into the username
//! field must not be stored).

use std::sync::Arc;

use serde_json::{Map, Value};
use tokio::sync::mpsc;

use crate::store::{FlowEvent, Store};

/// Events waiting to be written at most; more are dropped.
const QUEUE: usize = 10_000;
/// Events per insert at most.
const BATCH: usize = 256;

/// Records flow events; cheap to call from any request.
#[derive(Debug)]
pub struct Trail {
    /// `None` when the trail is off (`--no-flow-trail`).
    queue: Option<mpsc::Sender<FlowEvent>>,
}

impl Trail {
    /// A trail that records nothing.
    pub fn off() -> Self {
        Trail { queue: None }
    }

    /// Starts the writer task on the current runtime.
    pub fn spawn(store: Arc<dyn Store>) -> Self {
        let (queue, mut events) = mpsc::channel::<FlowEvent>(QUEUE);
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(BATCH);
            while events.recv_many(&mut batch, BATCH).await > 0 {
                if let Err(error) = store.append_flow_events(&batch).await {
                    tracing::warn!(%error, events = batch.len(), "flow trail events not recorded");
                }
                batch.clear();
            }
        });
        Trail { queue: Some(queue) }
    }

    /// Records one step. `flow` labels the authorization request ([`flow_label`]), `grant_id`
    /// the grant; the request id is the current request's.
    pub fn record(
        &self,
        at: i64,
        flow: Option<&[u8]>,
        grant_id: Option<&str>,
        event: &'static str,
        detail: Detail,
    ) {
        let Some(queue) = &self.queue else {
            return;
        };
        let event = FlowEvent {
            at,
            request_id: crate::telemetry::current_request_id().unwrap_or_else(|| "-".to_owned()),
            flow: flow.map(flow_label),
            grant_id: grant_id.map(str::to_owned),
            event: event.to_owned(),
            detail: Value::Object(detail.0).to_string(),
        };
        if queue.try_send(event).is_err() {
            tracing::warn!("flow trail queue full: an event was dropped");
        }
    }
}

/// The label of an authorization request in the trail: the first 8 bytes of its id's digest,
/// in hex. The digest is what the database keys the request by; the label cannot be turned
/// back into the flow id.
pub fn flow_label(id_hash: &[u8]) -> String {
    id_hash.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// The facts of one step, built field by field.
#[derive(Debug, Default)]
pub struct Detail(Map<String, Value>);

impl Detail {
    pub fn new() -> Self {
        Detail::default()
    }

    pub fn with(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.0.insert(name.to_owned(), value.into());
        self
    }

    /// Adds a value, after any the field already has (`a, b`).
    pub fn append(mut self, name: &str, value: &str) -> Self {
        let joined = match self.0.get(name).and_then(Value::as_str) {
            Some(earlier) => format!("{earlier}, {value}"),
            None => value.to_owned(),
        };
        self.0.insert(name.to_owned(), Value::from(joined));
        self
    }

    /// A value that must not be stored, by its length only.
    pub fn redacted(self, name: &str, value: Option<&str>) -> Self {
        let shown = match value {
            Some(v) => format!("[redacted, {} characters]", v.chars().count()),
            None => "absent".to_owned(),
        };
        self.with(name, shown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_short_hex_of_the_digest() {
        assert_eq!(flow_label(&[0xab; 32]), "abababababababab");
    }

    #[test]
    fn redacted_values_keep_only_their_length() {
        let d = Detail::new()
            .redacted("state", Some("secret-state"))
            .redacted("nonce", None);
        let text = Value::Object(d.0).to_string();
        assert!(!text.contains("secret-state"));
        assert!(text.contains("[redacted, 12 characters]"));
        assert!(text.contains("absent"));
    }
}
