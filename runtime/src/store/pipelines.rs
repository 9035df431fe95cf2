//! Pipelines and their immutable versions, each with the digest every step was pinned to.
use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::audit::NewAudit;
use super::{Result, Store, now_ms};

/// A pipeline: its name and newest version.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PipelineRow {
    /// Name.
    pub name: String,
    /// The newest version number (1, 2, ...).
    pub latest_version: i64,
    /// Creation time, Unix ms.
    pub created_at: i64,
    /// Time of the newest version, Unix ms.
    pub updated_at: i64,
}

/// The plugin a step of a version runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pin {
    /// Step id.
    pub step: String,
    /// The reference as written (`json-filter@latest`).
    pub reference: String,
    /// The digest it resolved to when the version was made (hex; `sha256:<hex>` in JSON).
    #[serde(with = "crate::digest::as_spelled")]
    pub digest: String,
}

/// One version of a pipeline.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VersionRow {
    /// Pipeline name.
    pub pipeline: String,
    /// Version number.
    pub version: i64,
    /// The definition, as JSON.
    pub definition: serde_json::Value,
    /// Pinned plugins, by step id.
    pub plugins: Vec<Pin>,
    /// Creation time, Unix ms.
    pub created_at: i64,
    /// Who made it.
    pub created_by: Option<String>,
}

impl VersionRow {
    /// The definition as the pipeline model (stored versions were validated when applied).
    pub fn pipeline(&self) -> Result<crate::pipeline::Pipeline> {
        crate::pipeline::Pipeline::deserialize(&self.definition).map_err(|e| {
            super::StoreError::Corrupt(format!(
                "version {} of pipeline {:?} does not parse: {e}",
                self.version, self.pipeline
            ))
        })
    }
}

fn pipeline_of(r: &sqlx::any::AnyRow) -> Result<PipelineRow> {
    Ok(PipelineRow {
        name: r.try_get("name")?,
        latest_version: r.try_get("latest_version")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

/// A new version could not be made because the pipeline exists (`create_only`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlreadyExists;

/// A pipeline's newest version, parsed ([`Store::newest_versions_with`]).
#[derive(Debug, Clone)]
pub struct Newest {
    /// The tenant.
    pub tenant: String,
    /// The pipeline.
    pub pipeline: String,
    /// Its newest version.
    pub version: i64,
    /// When that version was made.
    pub created_at: i64,
    /// That version's definition.
    pub definition: crate::pipeline::Pipeline,
}

impl Store {
    /// Stores a new version of `name` (creating the pipeline when needed; refused when
    /// `create_only` and it exists) and returns its number. `audit` is recorded in the same
    /// transaction, with `name@version` as its target.
    #[allow(clippy::too_many_arguments)]
    pub async fn create_version(
        &self,
        tenant: &str,
        name: &str,
        definition: &serde_json::Value,
        pins: &[Pin],
        created_by: &str,
        create_only: bool,
        audit: NewAudit<'_>,
    ) -> Result<Result<i64, AlreadyExists>> {
        let now = now_ms();
        let mut tx = self.begin().await?;
        let bumped = if create_only {
            None
        } else {
            sqlx::query(
                "UPDATE pipelines SET latest_version = latest_version + 1, updated_at = $1 \
                 WHERE tenant_id = $2 AND name = $3 RETURNING latest_version",
            )
            .bind(now)
            .bind(tenant)
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?
        };
        let version = match bumped {
            Some(row) => row.try_get::<i64, _>("latest_version")?,
            None => {
                let inserted = sqlx::query(
                    "INSERT INTO pipelines (tenant_id, name, latest_version, created_at, updated_at) \
                     VALUES ($1, $2, 1, $3, $3) ON CONFLICT (tenant_id, name) DO NOTHING",
                )
                .bind(tenant)
                .bind(name)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                if inserted.rows_affected() == 0 {
                    tx.rollback().await?;
                    return Ok(Err(AlreadyExists));
                }
                1
            }
        };
        sqlx::query(
            "INSERT INTO pipeline_versions (tenant_id, pipeline, version, definition, created_at, created_by) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(tenant)
        .bind(name)
        .bind(version)
        .bind(definition.to_string())
        .bind(now)
        .bind(created_by)
        .execute(&mut *tx)
        .await?;
        for pin in pins {
            sqlx::query(
                "INSERT INTO version_plugins (tenant_id, pipeline, version, step_id, reference, digest) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(tenant)
            .bind(name)
            .bind(version)
            .bind(&pin.step)
            .bind(&pin.reference)
            .bind(&pin.digest)
            .execute(&mut *tx)
            .await?;
        }
        let schedule = match definition.get("schedule") {
            Some(s) if !s.is_null() => Some(
                serde_json::from_value::<crate::pipeline::Schedule>(s.clone())
                    .map_err(|e| super::StoreError::Corrupt(format!("schedule of {name}: {e}")))?,
            ),
            _ => None,
        };
        super::schedules::set(&mut tx, tenant, name, version, schedule.as_ref()).await?;
        let audit = NewAudit {
            target: Some(format!("{name}@{version}")),
            ..audit
        };
        super::audit::insert(&mut tx, &audit).await?;
        tx.commit().await?;
        Ok(Ok(version))
    }

    /// The tenant's pipelines, by name.
    pub async fn pipelines(&self, tenant: &str) -> Result<Vec<PipelineRow>> {
        let rows = sqlx::query(
            "SELECT name, latest_version, created_at, updated_at FROM pipelines WHERE tenant_id = $1 ORDER BY name",
        )
        .bind(tenant)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(pipeline_of).collect()
    }

    /// The tenant's pipeline `name`.
    pub async fn pipeline(&self, tenant: &str, name: &str) -> Result<Option<PipelineRow>> {
        let row = sqlx::query(
            "SELECT name, latest_version, created_at, updated_at FROM pipelines WHERE tenant_id = $1 AND name = $2",
        )
        .bind(tenant)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(pipeline_of).transpose()
    }

    /// The newest version of every pipeline (of every tenant) whose stored definition holds
    /// one of `needles` (a version that does not parse is left out, with a warning): what the
    /// watchers of time rules and event triggers look at.
    pub async fn newest_versions_with(&self, needles: &[&str]) -> Result<Vec<Newest>> {
        let like: Vec<String> = (0..needles.len())
            .map(|i| format!("v.definition LIKE ${}", i + 1))
            .collect();
        let sql = format!("{NEWEST} WHERE {}", like.join(" OR "));
        let rows = needles
            .iter()
            .fold(sqlx::query(&sql), |q, n| q.bind(format!("%{n}%")))
            .fetch_all(&self.pool)
            .await?;
        newest_of(&rows)
    }

    /// The newest version of every pipeline of `tenant`, parsed.
    pub async fn newest_versions_in(&self, tenant: &str) -> Result<Vec<Newest>> {
        let rows = sqlx::query(&format!("{NEWEST} WHERE v.tenant_id = $1"))
            .bind(tenant)
            .fetch_all(&self.pool)
            .await?;
        newest_of(&rows)
    }

    /// Version `version` of the tenant's pipeline `name` (the newest if `None`).
    pub async fn version(
        &self,
        tenant: &str,
        name: &str,
        version: Option<i64>,
    ) -> Result<Option<VersionRow>> {
        let row = sqlx::query(
            "SELECT v.version, v.definition, v.created_at, v.created_by FROM pipeline_versions v \
             JOIN pipelines p ON p.tenant_id = v.tenant_id AND p.name = v.pipeline \
             WHERE v.tenant_id = $1 AND v.pipeline = $2 AND v.version = COALESCE($3, p.latest_version)",
        )
        .bind(tenant)
        .bind(name)
        .bind(version)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let version: i64 = row.try_get("version")?;
        let text: String = row.try_get("definition")?;
        let definition =
            serde_json::from_str(&text).map_err(|e| super::StoreError::Corrupt(e.to_string()))?;
        let pins = sqlx::query(
            "SELECT step_id, reference, digest FROM version_plugins \
             WHERE tenant_id = $1 AND pipeline = $2 AND version = $3 ORDER BY step_id",
        )
        .bind(tenant)
        .bind(name)
        .bind(version)
        .fetch_all(&self.pool)
        .await?;
        let plugins = pins
            .iter()
            .map(|r| {
                Ok(Pin {
                    step: r.try_get("step_id")?,
                    reference: r.try_get("reference")?,
                    digest: r.try_get("digest")?,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Some(VersionRow {
            pipeline: name.to_string(),
            version,
            definition,
            plugins,
            created_at: row.try_get("created_at")?,
            created_by: row.try_get("created_by")?,
        }))
    }

    /// The version numbers of the tenant's pipeline `name` with their times and authors, newest first.
    pub async fn versions(
        &self,
        tenant: &str,
        name: &str,
    ) -> Result<Vec<(i64, i64, Option<String>)>> {
        let rows = sqlx::query(
            "SELECT version, created_at, created_by FROM pipeline_versions \
             WHERE tenant_id = $1 AND pipeline = $2 ORDER BY version DESC",
        )
        .bind(tenant)
        .bind(name)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("version")?,
                    r.try_get("created_at")?,
                    r.try_get("created_by")?,
                ))
            })
            .collect()
    }
}

/// The newest version of each pipeline, as [`newest_of`] reads it (a `WHERE` follows).
const NEWEST: &str = "SELECT v.tenant_id, v.pipeline, v.version, v.created_at, v.definition \
     FROM pipeline_versions v JOIN pipelines p ON p.tenant_id = v.tenant_id \
     AND p.name = v.pipeline AND p.latest_version = v.version";

/// Parses rows of newest versions (`tenant_id`, `pipeline`, `version`, `created_at`,
/// `definition`); a definition that does not parse is logged and left out.
fn newest_of(rows: &[sqlx::any::AnyRow]) -> Result<Vec<Newest>> {
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let text: String = r.try_get("definition")?;
        let pipeline: String = r.try_get("pipeline")?;
        match serde_json::from_str(&text) {
            Ok(definition) => out.push(Newest {
                tenant: r.try_get("tenant_id")?,
                pipeline,
                version: r.try_get("version")?,
                created_at: r.try_get("created_at")?,
                definition,
            }),
            Err(e) => tracing::warn!("pipeline {pipeline:?} does not parse: {e}"),
        }
    }
    Ok(out)
}
