-- Hardening (issue 13): failed authentications are written once per source address and window,
-- with how many there were; a run queued with an Idempotency-Key keeps it for 24 hours, unique
-- per tenant, committed with the run.
ALTER TABLE audit_log ADD COLUMN count BIGINT NOT NULL DEFAULT 1;

CREATE TABLE idempotency_keys (
    tenant_id TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    request TEXT NOT NULL,
    run_id TEXT NOT NULL REFERENCES runs(id),
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, idempotency_key)
);
