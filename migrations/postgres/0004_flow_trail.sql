-- The flow trail behind `latchkey explain REQUEST_ID`: what happened to each authorization flow,
-- step by step, with values redacted. `flow` labels the events of one authorization request
-- (from the pending request's digest), `grant_id` those of the grant it led to.
CREATE TABLE flow_events (
    id         BIGSERIAL PRIMARY KEY,
    at         BIGINT NOT NULL,
    request_id TEXT NOT NULL,
    flow       TEXT,
    grant_id   TEXT,
    event      TEXT NOT NULL,
    detail     TEXT NOT NULL
);
CREATE INDEX flow_events_request ON flow_events(request_id);
CREATE INDEX flow_events_flow ON flow_events(flow);
CREATE INDEX flow_events_grant ON flow_events(grant_id);
CREATE INDEX flow_events_at ON flow_events(at);
