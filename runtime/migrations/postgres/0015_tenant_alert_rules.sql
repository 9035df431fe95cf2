-- Alerts (issue 17): a tenant's own alert rules (PUT /v1/alert-rules/{name}), applied to the
-- pipelines they select besides each pipeline's own; an alert says which tenant rule raised it.
CREATE TABLE alert_rules (
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    name TEXT NOT NULL,
    rule TEXT NOT NULL,
    pipelines TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    updated_by TEXT,
    PRIMARY KEY (tenant_id, name)
);

ALTER TABLE alerts ADD COLUMN rule_name TEXT;
