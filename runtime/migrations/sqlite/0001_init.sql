-- Autoflow server schema (SQLite). Times are Unix milliseconds; every tenant-owned row has tenant_id.
CREATE TABLE tenants (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);

CREATE TABLE tokens (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    name TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'editor', 'viewer')),
    hash TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    created_by TEXT,
    expires_at BIGINT,
    revoked_at BIGINT
);
CREATE INDEX tokens_tenant ON tokens (tenant_id, created_at);

-- Component bytes live in the blob store (files by digest); this row says they are there.
CREATE TABLE blobs (
    digest TEXT PRIMARY KEY,
    size BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE plugins (
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    digest TEXT NOT NULL REFERENCES blobs(digest),
    kind TEXT NOT NULL,
    size BIGINT NOT NULL,
    description TEXT NOT NULL,
    config_schema TEXT,
    builtin BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    created_by TEXT,
    PRIMARY KEY (tenant_id, name, version)
);
CREATE INDEX plugins_digest ON plugins (tenant_id, digest);

CREATE TABLE pipelines (
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    name TEXT NOT NULL,
    latest_version BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, name)
);

CREATE TABLE pipeline_versions (
    tenant_id TEXT NOT NULL,
    pipeline TEXT NOT NULL,
    version BIGINT NOT NULL,
    definition TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    created_by TEXT,
    PRIMARY KEY (tenant_id, pipeline, version),
    FOREIGN KEY (tenant_id, pipeline) REFERENCES pipelines (tenant_id, name)
);

-- The digest each step of a version runs, fixed when the version was applied.
CREATE TABLE version_plugins (
    tenant_id TEXT NOT NULL,
    pipeline TEXT NOT NULL,
    version BIGINT NOT NULL,
    step_id TEXT NOT NULL,
    reference TEXT NOT NULL,
    digest TEXT NOT NULL REFERENCES blobs(digest),
    PRIMARY KEY (tenant_id, pipeline, version, step_id),
    FOREIGN KEY (tenant_id, pipeline, version) REFERENCES pipeline_versions (tenant_id, pipeline, version)
);
CREATE INDEX version_plugins_digest ON version_plugins (tenant_id, digest);

CREATE TABLE runs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    tenant_id TEXT NOT NULL,
    pipeline TEXT NOT NULL,
    version BIGINT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    created_at BIGINT NOT NULL,
    created_by TEXT,
    started_at BIGINT,
    finished_at BIGINT,
    report TEXT,
    error TEXT,
    FOREIGN KEY (tenant_id, pipeline, version) REFERENCES pipeline_versions (tenant_id, pipeline, version)
);
CREATE INDEX runs_queue ON runs (status, seq);
CREATE INDEX runs_pipeline ON runs (tenant_id, pipeline, seq);

CREATE TABLE run_logs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id TEXT NOT NULL,
    run_id TEXT NOT NULL REFERENCES runs(id),
    at BIGINT NOT NULL,
    step TEXT,
    level TEXT NOT NULL,
    source TEXT NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX run_logs_run ON run_logs (run_id, id);

CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id TEXT,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT,
    remote TEXT,
    detail TEXT
);
CREATE INDEX audit_log_tenant ON audit_log (tenant_id, id);
