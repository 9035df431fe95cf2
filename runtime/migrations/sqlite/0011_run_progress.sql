-- Observability (issue 19): a running run's per-step counters as JSON, written by its worker
-- a few times a second while they change (fenced by attempt), read by GET /v1/runs/{id}.
ALTER TABLE runs ADD COLUMN progress TEXT;
