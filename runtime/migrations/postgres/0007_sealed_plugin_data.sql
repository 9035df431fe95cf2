-- Hardening (issue 13): plugin data sealed at rest with the master key, a checkpoint's cursor
-- and state, a dead letter's record (key, value, headers), each as one value bound to its
-- tenant, pipeline and step (and a dead letter's run). Rows written before this have it NULL
-- and keep their plain columns.
ALTER TABLE checkpoints ADD COLUMN sealed BYTEA;
ALTER TABLE dead_letters ADD COLUMN sealed BYTEA;

-- A value sealed with the master key by the first server or worker to start: one given another
-- key cannot open it and refuses to start, instead of sealing data the others cannot open.
CREATE TABLE master_key_check (
    id INTEGER PRIMARY KEY,
    sealed BYTEA NOT NULL
);
