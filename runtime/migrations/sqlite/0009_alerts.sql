-- Alerts (issue 17): a tenant's channels (their configuration, URL and signing secret, sealed
-- under the master key), the open incidents of each pipeline's rules, the alerts (committed with
-- the run's end), their deliveries to channels (the outbox) and every delivery attempt.
CREATE TABLE channels (
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    target TEXT NOT NULL,
    sealed_config BLOB NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    updated_by TEXT,
    PRIMARY KEY (tenant_id, name)
);

CREATE TABLE alert_incidents (
    tenant_id TEXT NOT NULL,
    pipeline TEXT NOT NULL,
    rule_key TEXT NOT NULL,
    alert_id TEXT NOT NULL,
    opened_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, pipeline, rule_key)
);

CREATE TABLE alerts (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    tenant_id TEXT NOT NULL,
    pipeline TEXT NOT NULL,
    version BIGINT NOT NULL,
    run_id TEXT NOT NULL,
    rule_when TEXT NOT NULL,
    rule_key TEXT NOT NULL,
    severity TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('firing', 'resolved')),
    incident_id TEXT NOT NULL,
    summary TEXT NOT NULL,
    step TEXT,
    error TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX alerts_tenant ON alerts (tenant_id, seq);

CREATE TABLE alert_deliveries (
    id TEXT PRIMARY KEY,
    alert_id TEXT NOT NULL REFERENCES alerts(id),
    tenant_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts BIGINT NOT NULL DEFAULT 0,
    next_at BIGINT NOT NULL,
    lease_until BIGINT,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX alert_deliveries_due ON alert_deliveries (status, next_at);
CREATE INDEX alert_deliveries_alert ON alert_deliveries (alert_id);

CREATE TABLE alert_delivery_attempts (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id TEXT NOT NULL REFERENCES alert_deliveries(id),
    attempt BIGINT NOT NULL,
    at BIGINT NOT NULL,
    duration_ms BIGINT NOT NULL,
    http_status BIGINT,
    response TEXT,
    error TEXT
);
CREATE INDEX alert_delivery_attempts_delivery ON alert_delivery_attempts (delivery_id, seq);
