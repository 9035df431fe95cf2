-- The durable queue (issue 4): attempts and leases on runs, workers, schedules and their fires,
-- checkpoints (a source's cursor, a step's state) committed with a run's completion, and blob
-- contents in the database (on PostgreSQL, for workers on other machines).
ALTER TABLE runs ADD COLUMN attempt BIGINT NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN max_attempts BIGINT NOT NULL DEFAULT 1;
ALTER TABLE runs ADD COLUMN not_before BIGINT NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN lease_owner TEXT;
ALTER TABLE runs ADD COLUMN lease_expires_at BIGINT;
ALTER TABLE runs ADD COLUMN cancel_requested BIGINT NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN labels TEXT NOT NULL DEFAULT '';
ALTER TABLE runs ADD COLUMN concurrency BIGINT NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN trigger TEXT NOT NULL DEFAULT 'api';
ALTER TABLE runs ADD COLUMN fire_at BIGINT;
CREATE INDEX runs_claim ON runs (status, not_before, seq);
CREATE INDEX runs_lease ON runs (status, lease_expires_at);

CREATE TABLE run_attempts (
    tenant_id TEXT NOT NULL,
    run_id TEXT NOT NULL REFERENCES runs(id),
    attempt BIGINT NOT NULL,
    worker TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    finished_at BIGINT,
    status TEXT NOT NULL,
    error TEXT,
    PRIMARY KEY (run_id, attempt)
);

CREATE TABLE workers (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    labels TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL,
    stopped_at BIGINT
);

CREATE TABLE schedules (
    tenant_id TEXT NOT NULL,
    pipeline TEXT NOT NULL,
    version BIGINT NOT NULL,
    cron TEXT NOT NULL,
    timezone TEXT NOT NULL,
    catchup TEXT NOT NULL,
    overlap TEXT NOT NULL,
    max_catchup BIGINT NOT NULL,
    since BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, pipeline)
);

CREATE TABLE schedule_fires (
    tenant_id TEXT NOT NULL,
    pipeline TEXT NOT NULL,
    fire_at BIGINT NOT NULL,
    recorded_at BIGINT NOT NULL,
    outcome TEXT NOT NULL,
    run_id TEXT,
    PRIMARY KEY (tenant_id, pipeline, fire_at)
);

CREATE TABLE checkpoints (
    tenant_id TEXT NOT NULL,
    pipeline TEXT NOT NULL,
    step_id TEXT NOT NULL,
    cursor TEXT,
    state TEXT NOT NULL,
    run_id TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, pipeline, step_id)
);
ALTER TABLE blobs ADD COLUMN content BLOB;
