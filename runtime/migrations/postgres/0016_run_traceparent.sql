-- Observability (issue 19): the W3C trace context a run was queued in (the API request's,
-- continuing its caller's), so that every attempt's spans join one trace.
ALTER TABLE runs ADD COLUMN traceparent TEXT;
