-- One row that /healthz writes and commits: a database that cannot commit (a full disk, a
-- held write lock) is reported as unhealthy instead of answering a read.
CREATE TABLE health (
    id INTEGER PRIMARY KEY,
    checked_at BIGINT NOT NULL
);
