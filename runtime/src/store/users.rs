//! Users: a name, a password hash (argon2id, PHC text: [`crate::auth::password`]) and a role in
//! each tenant they belong to; and their sign-in sessions, of which only the sha256 of the
//! cookie is kept ([`crate::auth::session`]). Every change records its audit entry in its own
//! transaction.
use serde::Serialize;
use sqlx::Row;

use super::audit::NewAudit;
use super::tokens::Role;
use super::{Result, Store, StoreError, now_ms};

/// A user as stored (the password hash is never shown).
#[derive(Debug, Clone, Serialize)]
pub struct UserRow {
    /// Id (random hex).
    pub id: String,
    /// Unique sign-in name.
    pub name: String,
    /// The argon2id PHC string.
    #[serde(skip)]
    pub password_hash: String,
    /// Creation time, Unix ms.
    pub created_at: i64,
    /// Who created it (`user:NAME`, a token id, or `cli`).
    pub created_by: Option<String>,
    /// When the password was last set, Unix ms.
    pub password_changed_at: i64,
    /// When the user was disabled, Unix ms (a disabled user cannot sign in).
    pub disabled_at: Option<i64>,
}

impl UserRow {
    /// A new user named `name` with the password hash `password_hash`, made now by `created_by`.
    pub fn new(name: &str, password_hash: String, created_by: &str) -> UserRow {
        let now = now_ms();
        UserRow {
            id: super::random_hex(8),
            name: name.to_string(),
            password_hash,
            created_at: now,
            created_by: Some(created_by.to_string()),
            password_changed_at: now,
            disabled_at: None,
        }
    }
}

/// A user's role in one tenant.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Membership {
    /// Tenant id.
    pub tenant_id: String,
    /// Tenant name.
    pub tenant: String,
    /// Role there.
    pub role: Role,
}

/// A user with their roles, as listed.
#[derive(Debug, Clone, Serialize)]
pub struct UserInfo {
    /// The user.
    #[serde(flatten)]
    pub user: UserRow,
    /// Their tenants and roles (in a tenant's listing: that tenant's only).
    pub roles: Vec<Membership>,
}

/// A session as stored.
#[derive(Debug, Clone)]
pub struct SessionRow {
    /// Public id, part of the cookie.
    pub id: String,
    /// sha256 of the whole cookie value, hex.
    pub hash: String,
    /// The user.
    pub user_id: String,
    /// The tenant it acts in.
    pub tenant_id: String,
    /// Creation time, Unix ms.
    pub created_at: i64,
    /// Last use (to the minute), Unix ms.
    pub last_seen_at: i64,
    /// Absolute expiry, Unix ms.
    pub expires_at: i64,
    /// When it was signed out or ended.
    pub ended_at: Option<i64>,
    /// Where it was signed in from.
    pub remote: Option<String>,
    /// The browser's `User-Agent`.
    pub agent: Option<String>,
}

/// A session with what the check needs of its user.
#[derive(Debug, Clone)]
pub struct SessionCheck {
    /// The session.
    pub session: SessionRow,
    /// The user's name.
    pub user: String,
    /// Whether the user is disabled.
    pub disabled: bool,
    /// The user's role in the session's tenant now (`None`: no longer a member).
    pub role: Option<Role>,
}

const USER_COLUMNS: &str =
    "id, name, password_hash, created_at, created_by, password_changed_at, disabled_at";

fn user_of(row: &sqlx::any::AnyRow) -> Result<UserRow> {
    Ok(UserRow {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        password_hash: row.try_get("password_hash")?,
        created_at: row.try_get("created_at")?,
        created_by: row.try_get("created_by")?,
        password_changed_at: row.try_get("password_changed_at")?,
        disabled_at: row.try_get("disabled_at")?,
    })
}

fn role_of(text: &str) -> Result<Role> {
    text.parse()
        .map_err(|_| StoreError::Corrupt(format!("user role {text:?}")))
}

impl Store {
    /// Stores a new user with `role` in `tenant`, recording `audit`; fails with a unique
    /// violation when the name is taken.
    pub async fn insert_user(
        &self,
        u: &UserRow,
        tenant: &str,
        role: Role,
        audit: &NewAudit<'_>,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query(&format!(
            "INSERT INTO users ({USER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, NULL)"
        ))
        .bind(&u.id)
        .bind(&u.name)
        .bind(&u.password_hash)
        .bind(u.created_at)
        .bind(&u.created_by)
        .bind(u.password_changed_at)
        .execute(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO user_roles (user_id, tenant_id, role) VALUES ($1, $2, $3)")
            .bind(&u.id)
            .bind(tenant)
            .bind(role.as_str())
            .execute(&mut *tx)
            .await?;
        super::audit::insert(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The user named `name`.
    pub async fn user_by_name(&self, name: &str) -> Result<Option<UserRow>> {
        let row = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE name = $1"))
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(user_of).transpose()
    }

    /// The tenants of user `user_id` and the role in each, by tenant name.
    pub async fn memberships(&self, user_id: &str) -> Result<Vec<Membership>> {
        let rows = sqlx::query(
            "SELECT r.tenant_id, t.name, r.role FROM user_roles r JOIN tenants t ON t.id = r.tenant_id \
             WHERE r.user_id = $1 ORDER BY t.name",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let role: String = r.try_get("role")?;
                Ok(Membership {
                    tenant_id: r.try_get("tenant_id")?,
                    tenant: r.try_get("name")?,
                    role: role_of(&role)?,
                })
            })
            .collect()
    }

    /// The users with a role in `tenant` (every user when `None`), by name, each with their
    /// roles (in `tenant` only, when given).
    pub async fn users(&self, tenant: Option<&str>) -> Result<Vec<UserInfo>> {
        let rows = sqlx::query(
            "SELECT u.id, u.name, u.password_hash, u.created_at, u.created_by, u.password_changed_at, \
             u.disabled_at, r.tenant_id, t.name AS tenant_name, r.role \
             FROM users u LEFT JOIN user_roles r ON r.user_id = u.id LEFT JOIN tenants t ON t.id = r.tenant_id \
             WHERE $1 = '' OR r.tenant_id = $1 ORDER BY u.name, t.name",
        )
        .bind(tenant.unwrap_or(""))
        .fetch_all(&self.pool)
        .await?;
        let mut out: Vec<UserInfo> = Vec::new();
        for r in &rows {
            let user = user_of(r)?;
            let tenant_id: Option<String> = r.try_get("tenant_id")?;
            let membership = match tenant_id {
                Some(tenant_id) => {
                    let role: String = r.try_get("role")?;
                    Some(Membership {
                        tenant_id,
                        tenant: r.try_get("tenant_name")?,
                        role: role_of(&role)?,
                    })
                }
                None => None,
            };
            match out.last_mut() {
                Some(last) if last.user.id == user.id => last.roles.extend(membership),
                _ => out.push(UserInfo {
                    user,
                    roles: membership.into_iter().collect(),
                }),
            }
        }
        Ok(out)
    }

    /// Gives user `user_id` `role` in `tenant` (replacing the role they had there), recording
    /// `audit`; ends their sessions in the tenant when the role changes downwards.
    pub async fn set_user_role(
        &self,
        user_id: &str,
        tenant: &str,
        role: Role,
        audit: &NewAudit<'_>,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        let updated =
            sqlx::query("UPDATE user_roles SET role = $1 WHERE user_id = $2 AND tenant_id = $3")
                .bind(role.as_str())
                .bind(user_id)
                .bind(tenant)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        if updated == 0 {
            sqlx::query("INSERT INTO user_roles (user_id, tenant_id, role) VALUES ($1, $2, $3)")
                .bind(user_id)
                .bind(tenant)
                .bind(role.as_str())
                .execute(&mut *tx)
                .await?;
        }
        super::audit::insert(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Takes user `user_id` out of `tenant` and ends their sessions there, recording `audit`;
    /// whether they were a member.
    pub async fn remove_user_role(
        &self,
        user_id: &str,
        tenant: &str,
        audit: &NewAudit<'_>,
    ) -> Result<bool> {
        let mut tx = self.begin().await?;
        let removed = sqlx::query("DELETE FROM user_roles WHERE user_id = $1 AND tenant_id = $2")
            .bind(user_id)
            .bind(tenant)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if removed == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query(
            "UPDATE sessions SET ended_at = $1 WHERE user_id = $2 AND tenant_id = $3 AND ended_at IS NULL",
        )
        .bind(now_ms())
        .bind(user_id)
        .bind(tenant)
        .execute(&mut *tx)
        .await?;
        super::audit::insert(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Disables user `user_id` and ends all their sessions, recording `audit`; whether they
    /// were enabled.
    pub async fn disable_user(&self, user_id: &str, audit: &NewAudit<'_>) -> Result<bool> {
        let now = now_ms();
        let mut tx = self.begin().await?;
        let changed =
            sqlx::query("UPDATE users SET disabled_at = $1 WHERE id = $2 AND disabled_at IS NULL")
                .bind(now)
                .bind(user_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        if changed == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        end_sessions(&mut tx, user_id, now).await?;
        super::audit::insert(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Sets user `user_id`'s password hash and ends all their sessions, recording `audit`.
    pub async fn set_password(
        &self,
        user_id: &str,
        password_hash: &str,
        audit: &NewAudit<'_>,
    ) -> Result<()> {
        let now = now_ms();
        let mut tx = self.begin().await?;
        sqlx::query("UPDATE users SET password_hash = $1, password_changed_at = $2 WHERE id = $3")
            .bind(password_hash)
            .bind(now)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        end_sessions(&mut tx, user_id, now).await?;
        super::audit::insert(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Stores a new session, recording `audit` (the sign-in) with it.
    pub async fn insert_session(&self, s: &SessionRow, audit: &NewAudit<'_>) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO sessions (id, hash, user_id, tenant_id, created_at, last_seen_at, expires_at, ended_at, remote, agent) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, $8, $9)",
        )
        .bind(&s.id)
        .bind(&s.hash)
        .bind(&s.user_id)
        .bind(&s.tenant_id)
        .bind(s.created_at)
        .bind(s.last_seen_at)
        .bind(s.expires_at)
        .bind(&s.remote)
        .bind(&s.agent)
        .execute(&mut *tx)
        .await?;
        super::audit::insert(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The session with public id `id`, its user's name and state, and the user's role in
    /// the session's tenant now.
    pub async fn session_by_id(&self, id: &str) -> Result<Option<SessionCheck>> {
        let row = sqlx::query(
            "SELECT s.id, s.hash, s.user_id, s.tenant_id, s.created_at, s.last_seen_at, s.expires_at, \
             s.ended_at, s.remote, s.agent, u.name, u.disabled_at, r.role \
             FROM sessions s JOIN users u ON u.id = s.user_id \
             LEFT JOIN user_roles r ON r.user_id = s.user_id AND r.tenant_id = s.tenant_id WHERE s.id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else { return Ok(None) };
        let role: Option<String> = r.try_get("role")?;
        let disabled: Option<i64> = r.try_get("disabled_at")?;
        Ok(Some(SessionCheck {
            session: SessionRow {
                id: r.try_get("id")?,
                hash: r.try_get("hash")?,
                user_id: r.try_get("user_id")?,
                tenant_id: r.try_get("tenant_id")?,
                created_at: r.try_get("created_at")?,
                last_seen_at: r.try_get("last_seen_at")?,
                expires_at: r.try_get("expires_at")?,
                ended_at: r.try_get("ended_at")?,
                remote: r.try_get("remote")?,
                agent: r.try_get("agent")?,
            },
            user: r.try_get("name")?,
            disabled: disabled.is_some(),
            role: role.as_deref().map(role_of).transpose()?,
        }))
    }

    /// Marks session `id` used at `now`.
    pub async fn touch_session(&self, id: &str, now: i64) -> Result<()> {
        sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE id = $2 AND last_seen_at < $1")
            .bind(now)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Ends session `id` (signed out), recording `audit`; whether it was open.
    pub async fn end_session(&self, id: &str, audit: &NewAudit<'_>) -> Result<bool> {
        let end =
            sqlx::query("UPDATE sessions SET ended_at = $1 WHERE id = $2 AND ended_at IS NULL")
                .bind(now_ms())
                .bind(id);
        self.execute_audited(end, audit).await
    }
}

/// Ends every open session of `user_id`.
async fn end_sessions(conn: &mut sqlx::AnyConnection, user_id: &str, now: i64) -> Result<()> {
    sqlx::query("UPDATE sessions SET ended_at = $1 WHERE user_id = $2 AND ended_at IS NULL")
        .bind(now)
        .bind(user_id)
        .execute(conn)
        .await?;
    Ok(())
}
