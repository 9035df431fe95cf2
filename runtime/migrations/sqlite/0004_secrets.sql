-- Secrets per tenant, encrypted at rest (XChaCha20-Poly1305 under the server's master key, bound
-- to tenant and name). Values are never returned by the API.
CREATE TABLE secrets (
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    name TEXT NOT NULL,
    nonce BLOB NOT NULL,
    ciphertext BLOB NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    updated_by TEXT,
    PRIMARY KEY (tenant_id, name)
);
