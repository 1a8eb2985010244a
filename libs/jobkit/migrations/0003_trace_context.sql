-- W3C trace context (a `traceparent` value) of the request that created each job. Every
-- message sent for the job carries it (NATS header `traceparent`), so one job is one trace
-- across the services, and every log line about the job names its trace_id.
ALTER TABLE jobs ADD COLUMN trace_context text NOT NULL DEFAULT '';

-- The trace context an outbox message is published with, for the sweeper's re-publishes.
ALTER TABLE outbox ADD COLUMN trace_context text NOT NULL DEFAULT '';
