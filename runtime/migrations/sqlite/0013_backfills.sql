-- Backfills (issue 17): one run per schedule slot in a range, at most `concurrency` of them
-- queued or running at once, driven by the servers' backfill drivers. `status` is `running`
-- until every slot has a run that ended (then `succeeded`, or `failed` when one failed), or
-- `cancelled`.
CREATE TABLE backfills (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    pipeline TEXT NOT NULL,
    version BIGINT NOT NULL,
    from_ms BIGINT NOT NULL,
    to_ms BIGINT NOT NULL,
    concurrency BIGINT NOT NULL,
    status TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    ended_at BIGINT
);
CREATE INDEX backfills_pipeline ON backfills (tenant_id, pipeline, created_at);
CREATE INDEX backfills_status ON backfills (status);
-- Its slots, each with the run that ran it once queued; `skipped`: a run of the slot had
-- already succeeded when the backfill was made (and it was not asked to run them again).
CREATE TABLE backfill_slots (
    backfill_id TEXT NOT NULL REFERENCES backfills(id),
    slot_ms BIGINT NOT NULL,
    skipped BIGINT NOT NULL DEFAULT 0,
    run_id TEXT,
    PRIMARY KEY (backfill_id, slot_ms)
);
