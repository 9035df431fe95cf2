-- People and trust (issue 15): users with a role in each of their tenants (passwords as argon2id
-- PHC strings), sign-in sessions (only the sha256 of the cookie is kept), and the audit log as
-- a hash chain per tenant. Entries written before this migration are not chained: the id of the
-- last of them is kept in audit_chain_start, and the chains start after it.
CREATE TABLE users (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    created_by TEXT,
    password_changed_at BIGINT NOT NULL,
    disabled_at BIGINT
);

CREATE TABLE user_roles (
    user_id TEXT NOT NULL REFERENCES users(id),
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    role TEXT NOT NULL CHECK (role IN ('admin', 'editor', 'viewer')),
    PRIMARY KEY (user_id, tenant_id)
);
CREATE INDEX user_roles_tenant ON user_roles (tenant_id);

CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    hash TEXT NOT NULL,
    user_id TEXT NOT NULL REFERENCES users(id),
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    ended_at BIGINT,
    remote TEXT,
    agent TEXT
);
CREATE INDEX sessions_user ON sessions (user_id);

ALTER TABLE audit_log ADD COLUMN agent TEXT;
ALTER TABLE audit_log ADD COLUMN prev_hash TEXT;
ALTER TABLE audit_log ADD COLUMN hash TEXT;

CREATE TABLE audit_chain_start (
    legacy_through BIGINT NOT NULL
);
INSERT INTO audit_chain_start (legacy_through) SELECT COALESCE(MAX(id), 0) FROM audit_log;
