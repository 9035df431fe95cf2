//! `autoflow server`: config -> pool + migrations -> engine and blob store -> seed -> cron
//! ticker, an in-process worker and the alert deliverer -> serve the API until Ctrl-C or SIGTERM; and `autoflow
//! worker`, the same worker alone against a shared database.
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;

pub mod audit_heads;
pub mod http;
pub mod metrics;
pub mod seed;
pub mod tls;

use crate::api::{self, AppState, Settings};
use crate::control::Core;
use crate::pipeline::ValidationPolicy;
use crate::scheduler::worker::WorkerOptions;
use crate::scheduler::{self, worker};
use crate::store;

pub use crate::control::server_policy as policy;

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
    /// A request's headers must arrive within this many seconds, or its connection is closed
    /// (a keep-alive connection idle this long is closed too).
    #[arg(long, env = "AUTOFLOW_HEADER_TIMEOUT_SECS", default_value_t = 30)]
    pub header_timeout_secs: u64,
    /// A request's body must arrive within this many seconds, or it is answered 408.
    #[arg(long, env = "AUTOFLOW_BODY_TIMEOUT_SECS", default_value_t = 120)]
    pub body_timeout_secs: u64,
    /// Connections one source address may hold open at once; the next is answered 429.
    #[arg(
        long,
        env = "AUTOFLOW_MAX_CONNECTIONS_PER_SOURCE",
        default_value_t = 128
    )]
    pub max_connections_per_source: usize,
    /// Compiled-plugin cache folder. Default: `cache` in the data directory.
    #[arg(long, env = "AUTOFLOW_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
    /// A sign-in session unused this many minutes ends.
    #[arg(long, env = "AUTOFLOW_SESSION_IDLE_MINS", default_value_t = 30)]
    pub session_idle_mins: u64,
    /// A sign-in session ends this many hours after sign-in, used or not.
    #[arg(long, env = "AUTOFLOW_SESSION_MAX_HOURS", default_value_t = 12)]
    pub session_max_hours: u64,
    /// Session cookies carry `Secure`: set it when clients reach the server over HTTPS through
    /// a proxy that terminates TLS (with `--tls-cert` they always do).
    #[arg(long, env = "AUTOFLOW_SECURE_COOKIES")]
    pub secure_cookies: bool,
    /// HTTPS: certificate and key.
    #[command(flatten)]
    pub tls: tls::TlsArgs,
    /// The audit chains' heads, kept in a file outside the database.
    #[command(flatten)]
    pub audit_heads: audit_heads::AuditHeadArgs,
    /// Runs the server's own worker runs at once (0: none; runs wait for `autoflow worker`s).
    #[arg(long, env = "AUTOFLOW_WORKER_SLOTS", default_value_t = 4)]
    pub worker_slots: usize,
    /// The server's own worker: labels, lease, drain.
    #[command(flatten)]
    pub worker: WorkerArgs,
    /// Alert delivery: retries, public URL.
    #[command(flatten)]
    pub alerts: AlertArgs,
    /// `GET /metrics`: its token.
    #[command(flatten)]
    pub metrics: metrics::MetricsArgs,
}

/// Options of the server's alert deliverer.
#[derive(Debug, Clone, clap::Args)]
pub struct AlertArgs {
    /// The server's URL as people reach it, for links to runs in alerts. Default: the
    /// address it listens on.
    #[arg(long, env = "AUTOFLOW_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// The first retry of a failed alert delivery waits this many ms; each next one twice as
    /// long (at most 10 minutes).
    #[arg(long, env = "AUTOFLOW_ALERT_RETRY_MS", default_value_t = 1000)]
    pub alert_retry_ms: u64,
    /// Attempts per alert delivery before it is marked failed (it stays visible).
    #[arg(long, env = "AUTOFLOW_ALERT_MAX_ATTEMPTS", default_value_t = 10)]
    pub alert_max_attempts: u32,
}

impl AlertArgs {
    /// The deliverer's settings.
    pub fn settings(&self) -> crate::alerts::DeliverySettings {
        crate::alerts::DeliverySettings {
            retry_base: std::time::Duration::from_millis(self.alert_retry_ms.max(1)),
            max_attempts: self.alert_max_attempts.max(1),
            ..crate::alerts::DeliverySettings::default()
        }
    }
}

/// Options of a worker, in `autoflow worker` and in the server's own.
#[derive(Debug, Clone, clap::Args)]
pub struct WorkerArgs {
    /// What this worker can reach or do (comma-separated); it runs only pipelines whose
    /// `labels` it has all of.
    #[arg(long, env = "AUTOFLOW_LABELS", value_delimiter = ',')]
    pub labels: Vec<String>,
    /// A claimed run stays this worker's this long without a heartbeat, in ms.
    #[arg(long, env = "AUTOFLOW_LEASE_MS", default_value_t = 30_000)]
    pub lease_ms: u64,
    /// On SIGTERM, let running runs finish for this long, in seconds, then hand them back.
    #[arg(long, env = "AUTOFLOW_DRAIN_SECS", default_value_t = 30)]
    pub drain_secs: u64,
    /// A plugin's `describe` (at upload and before each run) must answer within this many
    /// ms; it also runs in at most 64 MiB.
    #[arg(long, env = "AUTOFLOW_DESCRIBE_TIMEOUT_MS", default_value_t = crate::pipeline::StepLimits::DESCRIBE.timeout_ms)]
    pub describe_timeout_ms: u64,
    /// Outbound HTTP: private addresses the operator allows.
    #[command(flatten)]
    pub egress: crate::cli::EgressArgs,
    /// A running run's counters are written for `GET /v1/runs/{id}` at most this often, in ms,
    /// while they change (0: not at all).
    #[arg(long, env = "AUTOFLOW_PROGRESS_INTERVAL_MS", default_value_t = 500)]
    pub progress_interval_ms: u64,
    /// Where the runs' OpenLineage events go.
    #[command(flatten)]
    pub lineage: crate::lineage::LineageArgs,
}

impl WorkerArgs {
    /// The validation policy of a server or worker with these options (see
    /// [`crate::control::server_policy`]).
    pub fn policy(&self, mount_roots: &[PathBuf], data_dir: &Path) -> ValidationPolicy {
        let mut policy = policy(mount_roots, data_dir);
        policy.describe_limits.timeout_ms = self.describe_timeout_ms.max(1);
        policy
    }
}

impl WorkerArgs {
    /// The worker's options, with `slots` runs at once.
    pub fn options(&self, slots: usize) -> anyhow::Result<WorkerOptions> {
        for label in &self.labels {
            if !crate::pipeline::is_valid_label(label) {
                anyhow::bail!("--labels: invalid label {label:?} (use a-z, 0-9, -, _, : and .)");
            }
        }
        let mut opts = WorkerOptions::new(self.labels.clone(), slots);
        opts.lease = std::time::Duration::from_millis(self.lease_ms.max(300));
        opts.drain = std::time::Duration::from_secs(self.drain_secs);
        opts.progress = (self.progress_interval_ms > 0)
            .then(|| std::time::Duration::from_millis(self.progress_interval_ms.max(100)));
        opts.lineage = self.lineage.emitter()?;
        Ok(opts)
    }
}

/// Options of `autoflow worker`.
#[derive(Debug, Clone, clap::Args)]
pub struct WorkerCommandArgs {
    /// The shared database: `postgres://...` (or the SQLite file of a server that runs no
    /// worker of its own).
    #[arg(long, env = "AUTOFLOW_DATABASE")]
    pub database: String,
    /// Local folder for plugin blobs and their compiled cache: on PostgreSQL, blobs are fetched
    /// from the database into it; with a server's SQLite file, give the server's data directory.
    #[arg(long, env = "AUTOFLOW_DATA_DIR", default_value = "./autoflow-worker")]
    pub data_dir: PathBuf,
    /// Host folders that pipeline steps may mount (repeatable), as on the server.
    #[arg(long = "mount-root")]
    pub mount_roots: Vec<PathBuf>,
    /// Compiled-plugin cache folder. Default: `cache` in the data directory.
    #[arg(long, env = "AUTOFLOW_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Runs at once.
    #[arg(long, env = "AUTOFLOW_WORKER_SLOTS", default_value_t = 4)]
    pub slots: usize,
    /// Labels, lease, drain.
    #[command(flatten)]
    pub worker: WorkerArgs,
    /// Serve this worker's Prometheus metrics at `http://ADDR/metrics` (port 0: any free port;
    /// the address is printed). Default: none, and the worker records no metrics.
    #[arg(long, env = "AUTOFLOW_METRICS_LISTEN")]
    pub metrics_listen: Option<String>,
    /// `GET /metrics`: its token.
    #[command(flatten)]
    pub metrics: metrics::MetricsArgs,
}

/// Builds the API's state: the core (database migrated, engine, blob store) and the body caps.
pub async fn state(args: &ServerArgs) -> anyhow::Result<AppState> {
    let url = args
        .database
        .clone()
        .unwrap_or_else(|| store::default_url(&args.data_dir));
    let settings = Settings {
        max_plugin_bytes: args.max_plugin_mb.saturating_mul(1 << 20),
        max_pipeline_bytes: args.max_pipeline_kb.saturating_mul(1 << 10),
        body_timeout: std::time::Duration::from_secs(args.body_timeout_secs),
        sessions: crate::auth::session::SessionSettings {
            idle: std::time::Duration::from_secs(args.session_idle_mins.saturating_mul(60)),
            max_age: std::time::Duration::from_secs(args.session_max_hours.saturating_mul(3600)),
            secure_cookies: args.secure_cookies || args.tls.tls_cert.is_some(),
        },
    };
    // The recorder first, so that what the core records while it opens (its engine's
    // instance slots) is kept.
    let metrics = crate::telemetry::Export::install(args.metrics.metrics_token.clone());
    let policy = args.worker.policy(&args.mount_roots, &args.data_dir);
    let egress = args.worker.egress.settings().map_err(anyhow::Error::msg)?;
    let core = Core::open(
        &url,
        &args.data_dir,
        args.cache_dir.as_deref(),
        policy,
        egress,
    )
    .await?;
    let deliverer = crate::alerts::Deliverer::new(
        core.store.clone(),
        core.master_key.clone(),
        core.integrations.egress().clone(),
        args.alerts.settings(),
    );
    if let Some(url) = &args.alerts.public_url {
        deliverer.set_public_url(url);
    }
    Ok(AppState {
        core,
        settings: Arc::new(settings),
        auth_failures: Arc::default(),
        logins: Arc::default(),
        deliverer,
        metrics,
    })
}

/// Runs the server until it is asked to stop.
pub async fn serve(args: ServerArgs) -> anyhow::Result<()> {
    // The certificate first: a wrong file stops the start before anything else is opened.
    let certificate = args.tls.load()?;
    let state = state(&args).await?;
    seed::seed(&state, &args.data_dir)
        .await
        .context("cannot seed the database")?;
    if state.store.backend == store::Backend::Sqlite {
        let interrupted = state.store.expire_all_leases().await?;
        if interrupted > 0 {
            tracing::warn!(
                "{interrupted} run(s) were interrupted by the last stop; they run again"
            );
        }
    }
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let ticker = tokio::spawn(scheduler::ticker::run(state.core.clone(), stop.clone()));
    let events = tokio::spawn(scheduler::events::run(state.core.clone(), stop.clone()));
    let worker = if args.worker_slots > 0 {
        let opts = args.worker.options(args.worker_slots)?;
        Some(tokio::spawn(worker::run(
            state.core.clone(),
            opts,
            stop.clone(),
        )))
    } else {
        None
    };
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    let (scheme, acceptor) = match &certificate {
        Some(certificate) => {
            #[cfg(unix)]
            certificate.reload_on_sighup()?;
            ("https", Some(certificate.acceptor()?))
        }
        None => ("http", None),
    };
    state
        .deliverer
        .set_public_url(&format!("{scheme}://{addr}"));
    let deliverer = tokio::spawn(state.deliverer.clone().run(stop.clone()));
    let watch = tokio::spawn(crate::alerts::watch::run(
        state.core.store.clone(),
        stop.clone(),
    ));
    let heads = args
        .audit_heads
        .start(state.core.store.clone(), stop.clone())?;
    println!("autoflow server listening on {scheme}://{addr}");
    println!("web UI at {scheme}://{addr}/");
    let _ = std::io::Write::flush(&mut std::io::stdout());
    let limits = http::ConnectionLimits {
        header_timeout: std::time::Duration::from_secs(args.header_timeout_secs.max(1)),
        per_source: args.max_connections_per_source.max(1),
    };
    http::serve(listener, api::app(state), limits, acceptor, shutdown()).await?;
    let _ = stop_tx.send(true);
    let _ = ticker.await;
    let _ = events.await;
    let _ = deliverer.await;
    let _ = watch.await;
    if let Some(heads) = heads {
        let _ = heads.await;
    }
    if let Some(worker) = worker {
        worker.await??;
    }
    Ok(())
}

/// Runs `autoflow worker` until SIGTERM or Ctrl-C, then drains.
pub async fn work(args: WorkerCommandArgs) -> anyhow::Result<()> {
    // The recorder before the core opens (see `state`).
    let export = args
        .metrics_listen
        .as_ref()
        .and_then(|_| crate::telemetry::Export::install(args.metrics.metrics_token.clone()));
    let policy = args.worker.policy(&args.mount_roots, &args.data_dir);
    let egress = args.worker.egress.settings().map_err(anyhow::Error::msg)?;
    let core = Core::open(
        &args.database,
        &args.data_dir,
        args.cache_dir.as_deref(),
        policy,
        egress,
    )
    .await?;
    let opts = args.worker.options(args.slots)?;
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let metrics = match (&args.metrics_listen, export) {
        (Some(addr), export) => {
            let mut stopped = stop.clone();
            let until = async move {
                let _ = stopped.wait_for(|s| *s).await;
            };
            Some(metrics::listen(addr, core.clone(), export, until).await?)
        }
        (None, _) => None,
    };
    println!(
        "autoflow worker {} started (labels: {})",
        opts.id,
        opts.labels.join(",")
    );
    let _ = std::io::Write::flush(&mut std::io::stdout());
    let worker = tokio::spawn(worker::run(core, opts, stop));
    shutdown().await;
    let _ = stop_tx.send(true);
    let result = worker.await?;
    if let Some(m) = metrics {
        let _ = m.await;
    }
    result
}

async fn shutdown() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
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
