-- Triggers (issue 17): the values of a run's parameters, as JSON (null: the pipeline has none).
ALTER TABLE runs ADD COLUMN params TEXT;
-- The records a run was triggered with (a webhook trigger's body, one JSON document per
-- line), sealed with the master key for the tenant and pipeline, written in
-- the transaction that queues the run and read by its attempts' trigger-source step.
CREATE TABLE run_inputs (
    run_id TEXT PRIMARY KEY REFERENCES runs(id),
    tenant_id TEXT NOT NULL,
    records BIGINT NOT NULL,
    bytes BIGINT NOT NULL,
    sealed BLOB NOT NULL
);
