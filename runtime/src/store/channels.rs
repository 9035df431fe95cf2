//! A tenant's alert channels: where alerts go. Each keeps its configuration (URL, signing
//! secret) sealed under the master key, bound to tenant and name; what the API shows is its
//! kind and a target without secrets (scheme and host).
use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::audit::NewAudit;
use super::{Result, Store, now_ms};

/// A channel as the API lists it: never its URL's path or its secret.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChannelInfo {
    /// Name.
    pub name: String,
    /// `webhook`, `slack` or `email`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Where it posts, without secrets: `https://host[:port]`.
    pub target: String,
    /// When it was first set, Unix ms.
    pub created_at: i64,
    /// When it was last set.
    pub updated_at: i64,
    /// Who set it last.
    pub updated_by: Option<String>,
    /// Sends an hour at most (the deliveries over it wait).
    pub max_per_hour: i64,
}

/// Sends an hour a channel takes when its PUT does not say.
pub const DEFAULT_MAX_PER_HOUR: i64 = 100;

/// A channel to set.
#[derive(Debug, Clone, Copy)]
pub struct NewChannel<'a> {
    /// `webhook`, `slack` or `email`.
    pub kind: &'a str,
    /// Where it sends, without secrets.
    pub target: &'a str,
    /// Its configuration, sealed.
    pub sealed: &'a [u8],
    /// Sends an hour at most.
    pub max_per_hour: i64,
}

/// A channel with its sealed configuration, as delivery reads it.
#[derive(Debug, Clone)]
pub struct SealedChannel {
    /// What the API shows.
    pub info: ChannelInfo,
    /// The configuration, sealed (`seal_bound("channel", [tenant, name], ..)`).
    pub sealed: Vec<u8>,
}

fn info_of(r: &sqlx::any::AnyRow) -> Result<ChannelInfo> {
    Ok(ChannelInfo {
        name: r.try_get("name")?,
        kind: r.try_get("kind")?,
        target: r.try_get("target")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        updated_by: r.try_get("updated_by")?,
        max_per_hour: r.try_get("max_per_hour")?,
    })
}

impl Store {
    /// Sets the tenant's channel `name` to `c`, recording `audit` with it.
    pub async fn put_channel(
        &self,
        tenant: &str,
        name: &str,
        c: &NewChannel<'_>,
        audit: &NewAudit<'_>,
    ) -> Result<()> {
        let upsert = sqlx::query(
            "INSERT INTO channels (tenant_id, name, kind, target, sealed_config, created_at, updated_at, updated_by, \
             max_per_hour) VALUES ($1, $2, $3, $4, $5, $6, $6, $7, $8) ON CONFLICT (tenant_id, name) DO UPDATE SET \
             kind = excluded.kind, target = excluded.target, sealed_config = excluded.sealed_config, \
             updated_at = excluded.updated_at, updated_by = excluded.updated_by, max_per_hour = excluded.max_per_hour",
        )
        .bind(tenant)
        .bind(name)
        .bind(c.kind)
        .bind(c.target)
        .bind(c.sealed)
        .bind(now_ms())
        .bind(audit.actor)
        .bind(c.max_per_hour);
        self.execute_audited(upsert, audit).await?;
        Ok(())
    }

    /// Deletes the tenant's channel `name`, recording `audit`; whether it existed.
    pub async fn delete_channel(
        &self,
        tenant: &str,
        name: &str,
        audit: &NewAudit<'_>,
    ) -> Result<bool> {
        let delete = sqlx::query("DELETE FROM channels WHERE tenant_id = $1 AND name = $2")
            .bind(tenant)
            .bind(name);
        self.execute_audited(delete, audit).await
    }

    /// The tenant's channels, by name.
    pub async fn channels(&self, tenant: &str) -> Result<Vec<ChannelInfo>> {
        let rows = sqlx::query(
            "SELECT name, kind, target, created_at, updated_at, updated_by, max_per_hour FROM channels \
             WHERE tenant_id = $1 ORDER BY name",
        )
        .bind(tenant)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(info_of).collect()
    }

    /// The tenant's channel `name` with its sealed configuration.
    pub async fn channel(&self, tenant: &str, name: &str) -> Result<Option<SealedChannel>> {
        let row = sqlx::query(
            "SELECT name, kind, target, created_at, updated_at, updated_by, max_per_hour, sealed_config \
             FROM channels \
             WHERE tenant_id = $1 AND name = $2",
        )
        .bind(tenant)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(SealedChannel {
                info: info_of(&r)?,
                sealed: r.try_get("sealed_config")?,
            })
        })
        .transpose()
    }

    /// Sends to the tenant's channel `name` recorded since `since` (Unix ms): how many, and
    /// the oldest's time.
    pub async fn channel_sends_since(
        &self,
        tenant: &str,
        name: &str,
        since: i64,
    ) -> Result<(i64, Option<i64>)> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, MIN(a.at) AS oldest FROM alert_delivery_attempts a \
             JOIN alert_deliveries d ON d.id = a.delivery_id \
             WHERE d.tenant_id = $1 AND d.channel = $2 AND a.at >= $3",
        )
        .bind(tenant)
        .bind(name)
        .bind(since)
        .fetch_one(&self.pool)
        .await?;
        Ok((row.try_get("n")?, row.try_get("oldest")?))
    }
}
