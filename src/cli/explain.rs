//! `latchkey explain REQUEST_ID`: the timeline of the authorization flow a request belonged to,
//! from the flow trail in the database (`service::trail`).

use std::time::{Duration, UNIX_EPOCH};

use crate::store::{FlowEvent, Store};

pub async fn run(store: &dyn Store, request_id: &str, json: bool) -> anyhow::Result<()> {
    let events = store.flow_events(request_id).await?;
    if events.is_empty() {
        anyhow::bail!(
            "no flow events for request id {request_id}: it is not an authorization, login, consent or token request of this database, or older than {} days",
            crate::service::maintenance::TRAIL_RETENTION_SECONDS / 86_400
        );
    }
    if json {
        let list: Vec<serde_json::Value> = events.iter().map(as_json).collect();
        println!("{}", serde_json::to_string_pretty(&list)?);
    } else {
        print!("{}", timeline(request_id, &events));
    }
    Ok(())
}

fn as_json(event: &FlowEvent) -> serde_json::Value {
    serde_json::json!({
        "at": event.at,
        "request_id": event.request_id,
        "flow": event.flow,
        "grant_id": event.grant_id,
        "event": event.event,
        "detail": serde_json::from_str::<serde_json::Value>(&event.detail).unwrap_or_default(),
    })
}

/// The events as text: one heading line per event (time, step, request id; `>` marks the
/// request asked about), then its facts indented.
pub fn timeline(request_id: &str, events: &[FlowEvent]) -> String {
    let mut flows: Vec<&str> = events.iter().filter_map(|e| e.flow.as_deref()).collect();
    flows.dedup();
    let mut grants: Vec<&str> = events
        .iter()
        .filter_map(|e| e.grant_id.as_deref())
        .collect();
    grants.dedup();
    let mut out = format!("Request {}", printable(request_id));
    if !flows.is_empty() {
        out.push_str(&format!(", authorization request {}", flows.join(", ")));
    }
    if !grants.is_empty() {
        out.push_str(&format!(", grant {}", grants.join(", ")));
    }
    out.push_str(":\n\n");
    for event in events {
        let at = UNIX_EPOCH + Duration::from_secs(u64::try_from(event.at).unwrap_or_default());
        let marker = if event.request_id == request_id {
            '>'
        } else {
            ' '
        };
        out.push_str(&format!(
            "{marker} {}  {:<30} request {}\n",
            humantime::format_rfc3339_seconds(at),
            event.event,
            printable(&event.request_id)
        ));
        if let Ok(serde_json::Value::Object(detail)) = serde_json::from_str(&event.detail) {
            for (name, value) in detail {
                let value = match value {
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                };
                out.push_str(&format!(
                    "      {}: {}\n",
                    printable(&name),
                    printable(&value)
                ));
            }
        }
    }
    out
}

/// Values a request carried (a redirect URI, a client id) may hold control characters: shown
/// escaped, so none can move the terminal's cursor or fake a line of the timeline.
fn printable(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(request_id: &str, name: &str, detail: &str) -> FlowEvent {
        FlowEvent {
            at: 1_764_108_000,
            request_id: request_id.to_owned(),
            flow: Some("00112233aabbccdd".to_owned()),
            grant_id: None,
            event: name.to_owned(),
            detail: detail.to_owned(),
        }
    }

    #[test]
    fn the_timeline_marks_the_request_asked_about_and_lists_each_fact() {
        let events = [
            event(
                "r1",
                "authorization_request",
                r#"{"client_id":"c1","scope":"openid"}"#,
            ),
            event("r2", "login_succeeded", r#"{"sub":"u1"}"#),
        ];
        let text = timeline("r2", &events);
        assert!(text.starts_with("Request r2, authorization request 00112233aabbccdd:"));
        assert!(text.contains("  2025-11-25T22:00:00Z  authorization_request "));
        assert!(text.contains("> 2025-11-25T22:00:00Z  login_succeeded "));
        assert!(text.contains("      client_id: c1\n"));
        assert!(text.contains("      sub: u1\n"));
    }

    #[test]
    fn control_characters_are_escaped() {
        let events = [event(
            "r1",
            "authorization_request_refused",
            r#"{"redirect_uri received":"https://a.example/\u001b[2J\n> fake line"}"#,
        )];
        let text = timeline("r1", &events);
        assert!(!text.contains('\u{1b}'));
        assert!(text.contains("\\u{1b}[2J\\n> fake line"), "{text}");
    }
}
