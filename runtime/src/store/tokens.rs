//! Tenants and API tokens. A token row keeps only the sha256 of the secret; see
//! [`crate::auth`] for the token format and the constant-time check.
use std::fmt;
use std::str::FromStr;

use serde::Serialize;
use sqlx::Row;

use super::audit::NewAudit;
use super::{Result, Store, StoreError, now_ms, random_hex};

/// A tenant.
#[derive(Debug, Clone, Serialize)]
pub struct Tenant {
    /// Id (random hex).
    pub id: String,
    /// Unique name, such as `default`.
    pub name: String,
    /// Creation time, Unix ms.
    pub created_at: i64,
}

/// A token as stored (never the secret).
#[derive(Debug, Clone, Serialize)]
pub struct TokenRow {
    /// Public id, part of the token text.
    pub id: String,
    /// The tenant it acts for.
    pub tenant_id: String,
    /// A label.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// sha256 of the whole token text, hex.
    #[serde(skip)]
    pub hash: String,
    /// Creation time, Unix ms.
    pub created_at: i64,
    /// Who created it (a token id, or `cli`/`server`).
    pub created_by: Option<String>,
    /// Expiry, Unix ms.
    pub expires_at: Option<i64>,
    /// Revocation time, Unix ms.
    pub revoked_at: Option<i64>,
    /// The scopes it is narrowed to (`None`: every route its role allows); see
    /// [`crate::auth::scope`].
    pub scopes: Option<Vec<String>>,
    /// The id of the user it belongs to: it carries at most that user's present role.
    #[serde(skip)]
    pub user_id: Option<String>,
    /// The name of the user it belongs to (as read back).
    pub user: Option<String>,
    /// The service account it belongs to.
    pub service_account: Option<String>,
    /// The present role of its user in its tenant, as read back: `None` when the user is
    /// disabled or has no role there (only meaningful with a user).
    #[serde(skip)]
    pub user_role: Option<Role>,
}

impl TokenRow {
    /// What the audit log says of a new token: its role, scopes and owner.
    pub fn describe(&self) -> String {
        let mut text = format!("role {}", self.role);
        if let Some(scopes) = &self.scopes {
            text.push_str(&format!("; scopes {}", scopes.join(" ")));
        }
        if let Some(user) = &self.user {
            text.push_str(&format!("; user {user}"));
        }
        if let Some(account) = &self.service_account {
            text.push_str(&format!("; service account {account}"));
        }
        text
    }
}

/// A token row with its user's name and present role.
const TOKEN_SELECT: &str = "SELECT t.id, t.tenant_id, t.name, t.role, t.hash, t.created_at, t.created_by, \
     t.expires_at, t.revoked_at, t.scopes, t.user_id, t.service_account, u.name AS user_name, \
     CASE WHEN u.disabled_at IS NULL THEN r.role END AS user_role \
     FROM tokens t LEFT JOIN users u ON u.id = t.user_id \
     LEFT JOIN user_roles r ON r.user_id = t.user_id AND r.tenant_id = t.tenant_id";

fn role_of(text: &str) -> Result<Role> {
    text.parse()
        .map_err(|_| StoreError::Corrupt(format!("token role {text:?}")))
}

fn token_of(row: &sqlx::any::AnyRow) -> Result<TokenRow> {
    let role: String = row.try_get("role")?;
    let scopes: Option<String> = row.try_get("scopes")?;
    let user_role: Option<String> = row.try_get("user_role")?;
    Ok(TokenRow {
        id: row.try_get("id")?,
        tenant_id: row.try_get("tenant_id")?,
        name: row.try_get("name")?,
        role: role_of(&role)?,
        hash: row.try_get("hash")?,
        created_at: row.try_get("created_at")?,
        created_by: row.try_get("created_by")?,
        expires_at: row.try_get("expires_at")?,
        revoked_at: row.try_get("revoked_at")?,
        scopes: scopes.map(|s| s.split_whitespace().map(str::to_string).collect()),
        user_id: row.try_get("user_id")?,
        user: row.try_get("user_name")?,
        service_account: row.try_get("service_account")?,
        user_role: user_role.as_deref().map(role_of).transpose()?,
    })
}

fn tenant_of(row: &sqlx::any::AnyRow) -> Result<Tenant> {
    Ok(Tenant {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        created_at: row.try_get("created_at")?,
    })
}

impl Store {
    /// The tenant named `name`.
    pub async fn tenant_by_name(&self, name: &str) -> Result<Option<Tenant>> {
        let row = sqlx::query("SELECT id, name, created_at FROM tenants WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(tenant_of).transpose()
    }

    /// Every tenant, by name.
    pub async fn tenants(&self) -> Result<Vec<Tenant>> {
        let rows = sqlx::query("SELECT id, name, created_at FROM tenants ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(tenant_of).collect()
    }

    /// Creates tenant `name`; fails with a unique violation if it exists.
    pub async fn create_tenant(&self, name: &str) -> Result<Tenant> {
        let tenant = Tenant {
            id: random_hex(8),
            name: name.to_string(),
            created_at: now_ms(),
        };
        sqlx::query("INSERT INTO tenants (id, name, created_at) VALUES ($1, $2, $3)")
            .bind(&tenant.id)
            .bind(&tenant.name)
            .bind(tenant.created_at)
            .execute(&self.pool)
            .await?;
        Ok(tenant)
    }

    /// Stores a new token row, recording `audit` in the same transaction.
    pub async fn insert_token(&self, t: &TokenRow, audit: &NewAudit<'_>) -> Result<()> {
        let insert = sqlx::query(
            "INSERT INTO tokens (id, tenant_id, name, role, hash, created_at, created_by, expires_at, revoked_at, \
             scopes, user_id, service_account) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, $9, $10, $11)",
        )
        .bind(&t.id)
        .bind(&t.tenant_id)
        .bind(&t.name)
        .bind(t.role.as_str())
        .bind(&t.hash)
        .bind(t.created_at)
        .bind(&t.created_by)
        .bind(t.expires_at)
        .bind(t.scopes.as_ref().map(|s| s.join(" ")))
        .bind(&t.user_id)
        .bind(&t.service_account);
        self.execute_audited(insert, audit).await?;
        Ok(())
    }

    /// The token with public id `id`, whatever its tenant (used to authenticate).
    pub async fn token_by_id(&self, id: &str) -> Result<Option<TokenRow>> {
        let row = sqlx::query(&format!("{TOKEN_SELECT} WHERE t.id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(token_of).transpose()
    }

    /// The tenant's tokens, newest first.
    pub async fn tokens(&self, tenant: &str) -> Result<Vec<TokenRow>> {
        let rows = sqlx::query(&format!(
            "{TOKEN_SELECT} WHERE t.tenant_id = $1 ORDER BY t.created_at DESC, t.id"
        ))
        .bind(tenant)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(token_of).collect()
    }

    /// Revokes the tenant's token `id`, recording `audit` with it; whether it existed (and was
    /// not yet revoked).
    pub async fn revoke_token(&self, tenant: &str, id: &str, audit: &NewAudit<'_>) -> Result<bool> {
        let revoke = sqlx::query("UPDATE tokens SET revoked_at = $1 WHERE tenant_id = $2 AND id = $3 AND revoked_at IS NULL")
            .bind(now_ms())
            .bind(tenant)
            .bind(id);
        self.execute_audited(revoke, audit).await
    }

    /// Whether the tenant has any token at all.
    pub async fn has_tokens(&self, tenant: &str) -> Result<bool> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM tokens WHERE tenant_id = $1")
            .bind(tenant)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get::<i64, _>("n")? > 0)
    }
}

/// What a token may do within its tenant. Each role includes the ones below it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Read everything of the tenant.
    Viewer,
    /// Also upload plugins, apply pipelines, trigger runs.
    Editor,
    /// Also manage tokens and read the audit log.
    Admin,
}

impl Role {
    /// `admin`, `editor` or `viewer`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Editor => "editor",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "viewer" => Ok(Role::Viewer),
            "editor" => Ok(Role::Editor),
            "admin" => Ok(Role::Admin),
            other => Err(format!("unknown role {other:?} (admin, editor, viewer)")),
        }
    }
}
