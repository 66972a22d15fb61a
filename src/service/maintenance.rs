//! Bounded storage without a cron job: the server deletes what has expired, continuously and in
//! small batches, one node at a time (checklist item 70).
//!
//! Design note: a lease row names the node that cleans; it is renewed on every pass and taken
//! over when it lapses, so a crashed node stops cleaning for at most one lease period. Each
//! batch is one short `DELETE … WHERE key IN (SELECT … LIMIT n)`, so no lock is held long.
//! Used codes are kept a day past their expiry so a late replay is still recognised (and
//! revokes what was issued); revoked or ended grants are kept as long, then go with their
//! refresh tokens.

use std::sync::Arc;
use std::time::Duration;

use super::Latchkey;
use crate::crypto;
use crate::store::{PurgeReport, StoreError};

/// How long expired codes and ended grants are kept before deletion.
pub const RETENTION_SECONDS: i64 = 24 * 3600;
/// How long the flow trail (`latchkey explain`) keeps events.
pub const TRAIL_RETENTION_SECONDS: i64 = 7 * 24 * 3600;
/// The flow trail keeps at most this many events, whatever their age.
pub const TRAIL_MAX_EVENTS: i64 = 1_000_000;
/// Rows of each kind deleted per statement.
pub const BATCH: i64 = 500;
/// Batches per pass at most, so one pass stays short; the next pass continues.
const MAX_BATCHES: usize = 20;
const LEASE: &str = "cleanup";

/// One clean-up pass, if this node holds (or takes) the lease: repeated batches until one
/// deletes less than a full batch. Returns what was deleted, or `None` when another node holds
/// the lease.
pub async fn run_once(
    svc: &Latchkey,
    holder: &str,
    interval: Duration,
) -> Result<Option<PurgeReport>, StoreError> {
    let now = svc.now();
    let lease_end = now + 3 * interval.as_secs().max(1) as i64;
    if !svc
        .store
        .acquire_lease(LEASE, holder, now, lease_end)
        .await?
    {
        return Ok(None);
    }
    let mut total = PurgeReport::default();
    for _ in 0..MAX_BATCHES {
        let pass = svc
            .store
            .purge_expired(now, RETENTION_SECONDS, BATCH)
            .await?;
        total.pending_requests += pass.pending_requests;
        total.sessions += pass.sessions;
        total.authorization_codes += pass.authorization_codes;
        total.grants += pass.grants;
        let flow_events = svc
            .store
            .purge_flow_events(now - TRAIL_RETENTION_SECONDS, TRAIL_MAX_EVENTS, BATCH)
            .await?;
        total.flow_events += flow_events;
        let full = [
            pass.pending_requests,
            pass.sessions,
            pass.authorization_codes,
            pass.grants,
            flow_events,
        ]
        .iter()
        .any(|&n| n >= BATCH as u64);
        if !full {
            break;
        }
    }
    Ok(Some(total))
}

/// Runs [`run_once`] every `interval` until the process ends. Failures are logged and retried
/// at the next tick.
pub fn spawn(svc: Arc<Latchkey>, interval: Duration) -> tokio::task::JoinHandle<()> {
    let holder = crypto::random_uuid();
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            match run_once(&svc, &holder, interval).await {
                Ok(Some(report)) if report.total() > 0 => {
                    tracing::info!(
                        pending_requests = report.pending_requests,
                        sessions = report.sessions,
                        authorization_codes = report.authorization_codes,
                        grants = report.grants,
                        flow_events = report.flow_events,
                        "expired rows removed"
                    );
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(%error, "storage clean-up failed; retrying at the next tick")
                }
            }
        }
    })
}
