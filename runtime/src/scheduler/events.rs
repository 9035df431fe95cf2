//! Event triggers: runs started by messages. Every few seconds the reconciler reads the newest
//! version of each pipeline with a `nats` trigger and keeps one listener per trigger (started
//! for a new version, stopped for one replaced or gone). A listener subscribes to the
//! trigger's subject through the pipeline's connection (its secrets opened, its addresses
//! checked by the egress policy like a step's); the first message of a burst starts its
//! debounce, the messages that come meanwhile join the burst, and at its end one run is queued
//! (trigger `event`) unless one queued by the trigger still waits to start: the run's own
//! source (`nats-source` on the stream that captures the subject) reads the messages.
use std::collections::HashMap;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::watch;

use crate::control::Core;
use crate::control::runs::{self, Queue};
use crate::integrations::{ConnectionUrl, Grant, expand};
use crate::pipeline::triggers::NatsTrigger;
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
        match core.store.newest_versions_with(&["\"nats\":"]).await {
            Ok(versions) => {
                let mut wanted = HashMap::new();
                for v in versions {
                    for (i, t) in v.definition.triggers.iter().enumerate() {
                        if let Some(nats) = &t.nats {
                            let key = (v.tenant.clone(), v.pipeline.clone(), v.version, i);
                            wanted.insert(key, (nats.clone(), v.definition.clone()));
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

/// Listens for trigger `key` until aborted, connecting again after a failure.
async fn listen(core: Core, key: Key, trigger: NatsTrigger, pipeline: crate::pipeline::Pipeline) {
    let (tenant, name, version, _) = &key;
    loop {
        if let Err(e) = subscribe(&core, tenant, name, *version, &trigger, &pipeline).await {
            tracing::warn!(
                "event trigger of pipeline {name:?} (tenant {tenant}): {e}; trying again in {}s",
                RETRY.as_secs()
            );
        }
        tokio::time::sleep(RETRY).await;
    }
}

/// The grant of the trigger's connection, its secrets opened.
async fn grant(
    core: &Core,
    tenant: &str,
    trigger: &NatsTrigger,
    pipeline: &crate::pipeline::Pipeline,
) -> Result<Grant, String> {
    let connection = pipeline
        .connections
        .get(&trigger.connection)
        .ok_or_else(|| format!("no connection {:?}", trigger.connection))?;
    let url = ConnectionUrl::read(&connection.url)?;
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
        url: expand(&connection.url, &values)?,
    })
}

/// One subscription: queues a run per burst until the subscription ends; why it ended.
async fn subscribe(
    core: &Core,
    tenant: &str,
    name: &str,
    version: i64,
    trigger: &NatsTrigger,
    pipeline: &crate::pipeline::Pipeline,
) -> Result<(), String> {
    let grant = grant(core, tenant, trigger, pipeline).await?;
    let (client, _) = core
        .integrations
        .nats(&grant)
        .await
        .map_err(|e| e.to_string())?;
    let mut messages = client
        .subscribe(trigger.subject.clone())
        .await
        .map_err(|e| format!("cannot subscribe to {:?}: {e}", trigger.subject))?;
    tracing::info!(
        "event trigger: pipeline {name:?} version {version} (tenant {tenant}) listens on {:?}",
        trigger.subject
    );
    let debounce = Duration::from_millis(trigger.debounce_ms());
    while messages.next().await.is_some() {
        // The burst: whatever comes before the debounce ends is part of it.
        let end = tokio::time::Instant::now() + debounce;
        let mut burst = 1u64;
        while let Ok(Some(_)) = tokio::time::timeout_at(end, messages.next()).await {
            burst += 1;
        }
        if let Err(e) = queue(core, tenant, name, burst).await {
            tracing::warn!("event trigger of pipeline {name:?}: cannot queue a run: {e}");
        }
    }
    Err(format!("the subscription to {:?} ended", trigger.subject))
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
