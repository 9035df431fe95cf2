//! Event triggers: runs started by messages and files. Every few seconds the reconciler reads
//! the newest version of each pipeline with an event trigger and keeps one listener per
//! trigger (started for a new version, stopped for one replaced or gone). A listener watches
//! its source: a NATS subject (subscribed to) or a Redis stream (`XREAD BLOCK` after its last
//! entry), through the pipeline's connection (its secrets opened, its addresses checked by the
//! egress policy like a step's), or a folder (polled: a file that appears or whose size or
//! time changes). The first event of a burst starts its debounce, the events that come
//! meanwhile join the burst, and at its end one run is queued (trigger `event`) unless one
//! queued by the trigger still waits to start: the run's own source (`nats-source`,
//! `redis-source`, `file-source`, ...) reads what came.
use std::collections::HashMap;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::watch;

use crate::control::Core;
use crate::control::runs::{self, Queue};
use crate::integrations::{ConnectionUrl, Grant, expand};
use crate::pipeline::triggers::{FileTrigger, TriggerSpec};
use crate::status::Trigger;

/// How often the reconciler reads the pipelines.
pub const RECONCILE: Duration = Duration::from_secs(2);

/// How long a listener waits before connecting again after a failure.
const RETRY: Duration = Duration::from_secs(5);

/// A listener's identity: tenant, pipeline, version, the trigger's index.
type Key = (String, String, i64, usize);

/// Keeps the listeners of every pipeline's event triggers until `stop` turns true.
pub async fn run(core: Core, mut stop: watch::Receiver<bool>) {
    let mut listening: HashMap<Key, tokio::task::JoinHandle<()>> = HashMap::new();
    loop {
        match core
            .store
            .newest_versions_with(&["\"nats\":", "\"redis\":", "\"file\":"])
            .await
        {
            Ok(versions) => {
                let mut wanted = HashMap::new();
                for v in versions {
                    for (i, t) in v.definition.triggers.iter().enumerate() {
                        if t.is_event() {
                            let key = (v.tenant.clone(), v.pipeline.clone(), v.version, i);
                            wanted.insert(key, (t.clone(), v.definition.clone()));
                        }
                    }
                }
                listening.retain(|key, task| {
                    let keep = wanted.contains_key(key) && !task.is_finished();
                    if !keep {
                        task.abort();
                    }
                    keep
                });
                for (key, (trigger, pipeline)) in wanted {
                    if let std::collections::hash_map::Entry::Vacant(slot) =
                        listening.entry(key.clone())
                    {
                        slot.insert(tokio::spawn(listen(core.clone(), key, trigger, pipeline)));
                    }
                }
            }
            Err(e) => tracing::warn!("event triggers: cannot read the pipelines: {e}"),
        }
        tokio::select! {
            () = tokio::time::sleep(RECONCILE) => {}
            _ = stop.changed() => break,
        }
    }
    for task in listening.into_values() {
        task.abort();
    }
}

/// Listens for trigger `key` until aborted, starting again after a failure.
async fn listen(core: Core, key: Key, trigger: TriggerSpec, pipeline: crate::pipeline::Pipeline) {
    let (tenant, name, version, _) = &key;
    loop {
        let (events, mut arrived) = tokio::sync::mpsc::channel::<()>(64);
        let watching = watch_source(&core, tenant, name, *version, &trigger, &pipeline, events);
        tokio::pin!(watching);
        let debounce = Duration::from_millis(trigger.debounce_ms());
        let ended = 'watching: loop {
            tokio::select! {
                ended = &mut watching => break ended,
                Some(()) = arrived.recv() => {
                    // The burst: whatever comes before the debounce ends is part of it.
                    let end = tokio::time::Instant::now() + debounce;
                    let mut burst = 1u64;
                    loop {
                        tokio::select! {
                            () = tokio::time::sleep_until(end) => break,
                            ended = &mut watching => {
                                queue_logged(&core, tenant, name, burst).await;
                                break 'watching ended;
                            }
                            Some(()) = arrived.recv() => burst += 1,
                        }
                    }
                    queue_logged(&core, tenant, name, burst).await;
                }
            }
        };
        log_end(name, tenant, ended);
        tokio::time::sleep(RETRY).await;
    }
}

fn log_end(name: &str, tenant: &str, ended: Result<(), String>) {
    let why = ended.err().unwrap_or_else(|| "it stopped".into());
    tracing::warn!(
        "event trigger of pipeline {name:?} (tenant {tenant}): {why}; starting again in {}s",
        RETRY.as_secs()
    );
}

async fn queue_logged(core: &Core, tenant: &str, name: &str, burst: u64) {
    if let Err(e) = queue(core, tenant, name, burst).await {
        tracing::warn!("event trigger of pipeline {name:?}: cannot queue a run: {e}");
    }
}

/// The grant of connection `connection` of `pipeline`, its secrets opened.
async fn grant(
    core: &Core,
    tenant: &str,
    connection: &str,
    pipeline: &crate::pipeline::Pipeline,
) -> Result<Grant, String> {
    let c = pipeline
        .connections
        .get(connection)
        .ok_or_else(|| format!("no connection {connection:?}"))?;
    let url = ConnectionUrl::read(&c.url)?;
    let sealed = core
        .store
        .sealed_secrets(tenant, &url.secrets)
        .await
        .map_err(|e| e.to_string())?;
    let values = core
        .master_key
        .open_all(tenant, sealed)
        .map_err(|e| e.to_string())?;
    Ok(Grant {
        kind: url.kind,
        url: expand(&c.url, &values)?,
    })
}

/// Sends one event to `events` per message or file change of the trigger's source, until the
/// source fails (why) or the channel is closed.
async fn watch_source(
    core: &Core,
    tenant: &str,
    name: &str,
    version: i64,
    trigger: &TriggerSpec,
    pipeline: &crate::pipeline::Pipeline,
    events: tokio::sync::mpsc::Sender<()>,
) -> Result<(), String> {
    let listening = |what: String| {
        tracing::info!(
            "event trigger: pipeline {name:?} version {version} (tenant {tenant}) listens on {what}"
        );
    };
    if let Some(nats) = &trigger.nats {
        let grant = grant(core, tenant, &nats.connection, pipeline).await?;
        let (client, _) = core
            .integrations
            .nats(&grant)
            .await
            .map_err(|e| e.to_string())?;
        let mut messages = client
            .subscribe(nats.subject.clone())
            .await
            .map_err(|e| format!("cannot subscribe to {:?}: {e}", nats.subject))?;
        listening(format!("NATS subject {:?}", nats.subject));
        while messages.next().await.is_some() {
            if events.send(()).await.is_err() {
                return Ok(());
            }
        }
        return Err(format!("the subscription to {:?} ended", nats.subject));
    }
    if let Some(redis) = &trigger.redis {
        let grant = grant(core, tenant, &redis.connection, pipeline).await?;
        let mut conn = core
            .integrations
            .redis_of_its_own(&grant)
            .await
            .map_err(|e| e.to_string())?;
        listening(format!("Redis stream {:?}", redis.stream));
        let mut last = "$".to_string();
        loop {
            let options = redis::streams::StreamReadOptions::default()
                .block(2000)
                .count(100);
            let reply: Option<redis::streams::StreamReadReply> =
                redis::AsyncCommands::xread_options(
                    &mut conn,
                    &[&redis.stream],
                    &[&last],
                    &options,
                )
                .await
                .map_err(|e| format!("XREAD {:?}: {e}", redis.stream))?;
            for key in reply.map(|r| r.keys).unwrap_or_default() {
                for entry in key.ids {
                    last = entry.id;
                    if events.send(()).await.is_err() {
                        return Ok(());
                    }
                }
            }
        }
    }
    if let Some(file) = &trigger.file {
        listening(format!("folder {}", file.path.display()));
        return poll_folder(file, events).await;
    }
    Err("not an event trigger".into())
}

/// What is in a folder: each file's name, size and modification time.
type Snapshot = HashMap<std::ffi::OsString, (u64, Option<std::time::SystemTime>)>;

fn snapshot(path: &std::path::Path) -> Result<Snapshot, String> {
    let entries =
        std::fs::read_dir(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Ok(entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let meta = e.metadata().ok()?;
            meta.is_file()
                .then(|| (e.file_name(), (meta.len(), meta.modified().ok())))
        })
        .collect())
}

/// Polls `file.path`: an event per file that appeared or changed since the last look (what is
/// there when it starts is the baseline).
async fn poll_folder(
    file: &FileTrigger,
    events: tokio::sync::mpsc::Sender<()>,
) -> Result<(), String> {
    let path = file.path.clone();
    let look = |path: std::path::PathBuf| async move {
        tokio::task::spawn_blocking(move || snapshot(&path))
            .await
            .map_err(|e| e.to_string())?
    };
    let mut seen = look(path.clone()).await?;
    loop {
        tokio::time::sleep(Duration::from_millis(file.poll_ms())).await;
        let now = look(path.clone()).await?;
        let changed = now.iter().filter(|(k, v)| seen.get(*k) != Some(v)).count();
        seen = now;
        for _ in 0..changed {
            if events.send(()).await.is_err() {
                return Ok(());
            }
        }
    }
}

/// Queues a run of the newest version for a burst of `burst` messages, unless a run the
/// trigger queued still waits to start (it will read them).
async fn queue(core: &Core, tenant: &str, name: &str, burst: u64) -> Result<(), String> {
    if core
        .store
        .waiting_run(tenant, name, Trigger::Event)
        .await
        .map_err(|e| e.to_string())?
    {
        return Ok(());
    }
    let r = runs::runnable(core, tenant, name, None)
        .await
        .map_err(|e| e.to_string())?;
    let q = Queue {
        tenant,
        created_by: "trigger:nats",
        trigger: Trigger::Event,
        replay: None,
        idempotency: None,
        input: None,
        params: None,
    };
    let id = runs::queue(core, &r, q).await.map_err(|e| e.to_string())?;
    tracing::info!("event trigger: {burst} message(s) queued run {id} of pipeline {name:?}");
    Ok(())
}
