-- Dead letters: records a step rejected, kept with the reason, the step, the plugin's digest and
-- the attempt, so that they can be listed and replayed. A replay is a run whose `replay` names
-- the step to feed and, optionally, another plugin for it.
CREATE TABLE dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id TEXT NOT NULL,
    run_id TEXT NOT NULL REFERENCES runs(id),
    pipeline TEXT NOT NULL,
    version BIGINT NOT NULL,
    attempt BIGINT NOT NULL,
    step_id TEXT NOT NULL,
    digest TEXT NOT NULL,
    reason TEXT NOT NULL,
    record_key BLOB,
    record_value BLOB NOT NULL,
    headers TEXT NOT NULL,
    record_timestamp BIGINT,
    created_at BIGINT NOT NULL,
    replay_run TEXT
);
CREATE INDEX dead_letters_run ON dead_letters (tenant_id, run_id, id);
CREATE INDEX dead_letters_pipeline ON dead_letters (tenant_id, pipeline, id);

ALTER TABLE runs ADD COLUMN replay TEXT;

-- Runs of a tenant at once, at most (0: no limit).
ALTER TABLE tenants ADD COLUMN max_running BIGINT NOT NULL DEFAULT 0;
