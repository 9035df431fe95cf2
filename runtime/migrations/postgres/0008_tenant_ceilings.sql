-- Hardening (issue 13): a tenant's ceilings beside max_running (0: none): memory_mb of one
-- step, memory of its running runs together, max_output_bytes and fuel of one step.
ALTER TABLE tenants ADD COLUMN max_step_memory_mb BIGINT NOT NULL DEFAULT 0;
ALTER TABLE tenants ADD COLUMN max_running_memory_mb BIGINT NOT NULL DEFAULT 0;
ALTER TABLE tenants ADD COLUMN max_output_bytes BIGINT NOT NULL DEFAULT 0;
ALTER TABLE tenants ADD COLUMN max_fuel BIGINT NOT NULL DEFAULT 0;
-- The memory a run's steps hold together, MiB, from its version when it was queued (counted
-- against max_running_memory_mb while it runs).
ALTER TABLE runs ADD COLUMN memory_mb BIGINT NOT NULL DEFAULT 0;
