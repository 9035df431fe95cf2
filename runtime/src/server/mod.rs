//! `autoflow server`: config -> pool + migrations -> engine and blob store -> seed -> executor
//! loop -> serve the API until Ctrl-C or SIGTERM.
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;

pub mod apply;
pub mod seed;
pub mod worker;

use crate::api::{self, AppState, Settings};
use crate::engine::{Engine, EngineConfig};
use crate::pipeline::ValidationPolicy;
use crate::registry::blob::BlobStore;
use crate::store::{self, Store};

/// Options of `autoflow server`.
#[derive(Debug, Clone, clap::Args)]
pub struct ServerArgs {
    /// Address to listen on (port 0: any free port; the address is printed).
    #[arg(long, env = "AUTOFLOW_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Data directory: database (SQLite), blobs, compiled-plugin cache, admin token.
    #[arg(long, env = "AUTOFLOW_DATA_DIR", default_value = "./autoflow-data")]
    pub data_dir: PathBuf,
    /// Database URL: `sqlite://FILE` or `postgres://...`. Default: SQLite in the data directory.
    #[arg(long, env = "AUTOFLOW_DATABASE")]
    pub database: Option<String>,
    /// Host folders that pipeline steps may mount (repeatable). None: mounts are refused.
    #[arg(long = "mount-root")]
    pub mount_roots: Vec<PathBuf>,
    /// Largest plugin upload, MiB.
    #[arg(long, env = "AUTOFLOW_MAX_PLUGIN_MB", default_value_t = 64)]
    pub max_plugin_mb: usize,
    /// Largest pipeline definition or other JSON body, KiB.
    #[arg(long, env = "AUTOFLOW_MAX_PIPELINE_KB", default_value_t = 256)]
    pub max_pipeline_kb: usize,
    /// Compiled-plugin cache folder. Default: `cache` in the data directory.
    #[arg(long, env = "AUTOFLOW_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
}

/// Builds the shared state: database (migrated), engine, blob store.
pub async fn state(args: &ServerArgs) -> anyhow::Result<AppState> {
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("cannot create the data directory {}", args.data_dir.display()))?;
    let url = args.database.clone().unwrap_or_else(|| store::default_url(&args.data_dir));
    let store = Store::connect(&url).await.context("cannot open the database")?;
    let engine = Engine::new(EngineConfig {
        fuel: true,
        cache_dir: Some(args.cache_dir.clone().unwrap_or_else(|| args.data_dir.join("cache"))),
        ..EngineConfig::default()
    })
    .context("cannot start the engine")?;
    let blobs = BlobStore::open(&args.data_dir.join("blobs")).context("cannot open the blob store")?;
    let policy = ValidationPolicy {
        allowed_mount_roots: args.mount_roots.clone(),
        base_dir: args.mount_roots.first().cloned().unwrap_or_else(|| args.data_dir.clone()),
        ..ValidationPolicy::default()
    };
    let settings = Settings {
        max_plugin_bytes: args.max_plugin_mb.saturating_mul(1 << 20),
        max_pipeline_bytes: args.max_pipeline_kb.saturating_mul(1 << 10),
        policy,
        data_dir: args.data_dir.clone(),
    };
    Ok(AppState { store, blobs, engine, settings: Arc::new(settings), wake: Arc::new(tokio::sync::Notify::new()) })
}

/// Runs the server until it is asked to stop.
pub async fn serve(args: ServerArgs) -> anyhow::Result<()> {
    let state = state(&args).await?;
    seed::seed(&state, &args.data_dir).await.context("cannot seed the database")?;
    let interrupted = state.store.fail_interrupted_runs().await?;
    if interrupted > 0 {
        tracing::warn!("{interrupted} run(s) were interrupted by the last stop and are marked failed");
    }
    tokio::spawn(worker::run_loop(state.clone()));
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    println!("autoflow server listening on http://{addr}");
    let _ = std::io::Write::flush(&mut std::io::stdout());
    let app = api::app(state).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app).with_graceful_shutdown(shutdown()).await?;
    Ok(())
}

async fn shutdown() {
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
