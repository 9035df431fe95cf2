//! The control layer: the domain's operations, each written once below every face (the HTTP
//! API, the CLI, the cron ticker, the worker): apply a pipeline version ([`pipelines`]),
//! publish a plugin ([`plugins`]), create a tenant ([`tenants`]), queue a run ([`runs`]) with
//! its input ([`input`]), backfill a schedule's slots ([`backfills`]), set a tenant's alert
//! rules ([`alert_rules`]). Their errors are [`ControlError`], which each face maps once (the
//! API to status codes).
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;

pub mod alert_rules;
pub mod backfills;
pub mod error;
pub mod input;
pub mod metrics;
pub mod pipelines;
pub mod plugins;
pub mod runs;
pub mod tenants;

pub use error::{ControlError, ControlResult};

use crate::egress::EgressSettings;
use crate::engine::{Engine, EngineConfig};
use crate::integrations::Integrations;
use crate::pipeline::ValidationPolicy;
use crate::registry::blob::BlobStore;
use crate::secrets::MasterKey;
use crate::store::Store;

/// The validation policy of a server or worker: steps may mount folders under `mount_roots`
/// (none: no mounts), and relative paths are read against the first of them, else `data_dir`.
pub fn server_policy(mount_roots: &[PathBuf], data_dir: &Path) -> ValidationPolicy {
    ValidationPolicy {
        allowed_mount_roots: mount_roots.to_vec(),
        base_dir: mount_roots
            .first()
            .cloned()
            .unwrap_or_else(|| data_dir.to_path_buf()),
        ..ValidationPolicy::default()
    }
}

/// What the domain's operations work with; cheap to clone. The API's state, the scheduler
/// and the worker hold one.
#[derive(Clone)]
pub struct Core {
    /// The database.
    pub store: Store,
    /// Plugin bytes by digest.
    pub blobs: BlobStore,
    /// The wasm engine (to check, describe and run plugins).
    pub engine: Engine,
    /// The clients of the connections plugins use (the engine's steps connect through them;
    /// the worker acknowledges messages through them once a run has committed).
    pub integrations: Integrations,
    /// How pipelines are validated (mount roots, limits).
    pub policy: Arc<ValidationPolicy>,
    /// Seals and opens secrets.
    pub master_key: Arc<MasterKey>,
    /// Wakes this process's worker when a run is queued.
    pub wake: Arc<tokio::sync::Notify>,
}

impl Core {
    /// Opens the core of a server, worker or CLI command: the database at `url` (migrated),
    /// the engine with its compiled-plugin cache (`cache_dir`, default `<data_dir>/cache`),
    /// and the blob store and master key under `data_dir` (created if missing).
    pub async fn open(
        url: &str,
        data_dir: &Path,
        cache_dir: Option<&Path>,
        policy: ValidationPolicy,
        egress: EgressSettings,
    ) -> anyhow::Result<Core> {
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("cannot create the data directory {}", data_dir.display()))?;
        let store = Store::connect(url)
            .await
            .context("cannot open the database")?;
        let integrations = Integrations::new(crate::egress::Policy::new(&egress));
        let engine = Engine::with_integrations(
            EngineConfig {
                fuel: true,
                cache_dir: Some(
                    cache_dir.map_or_else(|| data_dir.join("cache"), Path::to_path_buf),
                ),
                describe_limits: policy.describe_limits,
                ..EngineConfig::default()
            },
            integrations.clone(),
        )
        .context("cannot start the engine")?;
        let blobs =
            BlobStore::open(&data_dir.join("blobs")).context("cannot open the blob store")?;
        let env_key = std::env::var(crate::secrets::MASTER_KEY_ENV).ok();
        let key_file = data_dir.join("master.key");
        let master_key = MasterKey::load_or_create(env_key.as_deref(), &key_file)
            .context("cannot load the master key")?;
        if !store
            .check_master_key(&master_key)
            .await
            .context("cannot check the master key")?
        {
            let from = if env_key.is_some() {
                crate::secrets::MASTER_KEY_ENV.to_string()
            } else {
                key_file.display().to_string()
            };
            anyhow::bail!(
                "the master key (from {from}) is not the one this database's secrets, step state and dead letters are \
                 sealed with: give every server and worker of the database the same key"
            );
        }
        Ok(Core {
            store,
            blobs,
            engine,
            integrations,
            policy: Arc::new(policy),
            wake: Arc::new(tokio::sync::Notify::new()),
            master_key: Arc::new(master_key),
        })
    }
}
