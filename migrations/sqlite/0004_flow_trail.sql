-- The flow trail behind `latchkey explain REQUEST_ID`: what happened to each authorization flow,
-- step by step, with values redacted. `flow` labels the events of one authorization request
-- (from the pending request's digest), `grant_id` those of the grant it led to.
CREATE TABLE flow_events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    at         INTEGER NOT NULL,
    request_id TEXT NOT NULL,
    flow       TEXT,
    grant_id   TEXT,
    event      TEXT NOT NULL,
    detail     TEXT NOT NULL
);
-- No secondary index: every request that starts, advances or ends a flow appends here, so
-- each index would tax the hot paths, while `latchkey explain` is an operator's occasional
-- query over at most TRAIL_MAX_EVENTS rows (about a second on SQLite at 1,000,000, BENCHMARKS.md).
