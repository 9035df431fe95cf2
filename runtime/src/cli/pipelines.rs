//! `autoflow pipeline apply|list|show|versions|rollback|run|backfill|backfills|replay|
//! dead-letters`: pipelines on the server, over the REST API.
use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use reqwest::Method;
use serde::de::DeserializeOwned;

use super::client::{Client, ClientArgs};
use super::output;
use super::runs::{DeadLetterArgs, dead_letters, follow};
use crate::status::RunStatus;
use crate::wire::{Pipeline, PipelineShown, ReplayQueued, Run, Version, Versions};

/// `autoflow pipeline ...`
#[derive(Debug, Subcommand)]
pub enum PipelineCommand {
    /// Create or update a pipeline from a YAML or JSON file (a new version when it changed).
    Apply {
        /// The pipeline file.
        file: PathBuf,
    },
    /// List pipelines.
    List {
        /// Print the API's JSON instead of a line per pipeline.
        #[arg(long)]
        json: bool,
    },
    /// A pipeline's newest version (or `--version N`): its steps and the digests they are
    /// pinned to.
    Show {
        /// Pipeline name.
        name: String,
        /// This version instead of the newest.
        #[arg(long)]
        version: Option<i64>,
        /// Print the API's JSON (with the definition).
        #[arg(long)]
        json: bool,
    },
    /// A pipeline's versions, newest first.
    Versions {
        /// Pipeline name.
        name: String,
        /// Print the API's JSON instead of a line per version.
        #[arg(long)]
        json: bool,
    },
    /// Make an older version current again: a new version with its definition and digests.
    Rollback {
        /// Pipeline name.
        name: String,
        /// The version to return to.
        #[arg(long)]
        version: i64,
    },
    /// Trigger a run; prints the run id.
    Run {
        /// Pipeline name.
        name: String,
        /// Run this version instead of the newest.
        #[arg(long)]
        version: Option<i64>,
        /// Wait for the run to end, printing its logs, and exit non-zero if it failed.
        #[arg(long)]
        wait: bool,
        /// Send this Idempotency-Key: run the command again with the same key (within 24 hours)
        /// and it prints the run the first one queued instead of queueing another.
        #[arg(long, value_name = "KEY")]
        idempotency_key: Option<String>,
    },
    /// Run the schedule's slots in a range, one run per slot (each given its slot's time as the
    /// `slot` parameter when the pipeline declares one); prints the backfill's id.
    Backfill {
        /// Pipeline name.
        name: String,
        /// The range's start, included: RFC 3339 (`2026-01-01T00:00:00Z`) or a date
        /// (midnight in the schedule's time zone).
        #[arg(long)]
        from: String,
        /// The range's end, excluded, read the same way.
        #[arg(long)]
        to: String,
        /// Runs queued or running at once, at most.
        #[arg(long, default_value_t = 1)]
        concurrency: i64,
        /// Run slots whose run already succeeded again (default: skip them).
        #[arg(long)]
        rerun_succeeded: bool,
        /// Wait for the backfill to end, printing its progress, and exit non-zero unless
        /// every slot's run succeeded.
        #[arg(long)]
        wait: bool,
    },
    /// The pipeline's backfills, newest first: id, status, range and progress.
    Backfills {
        /// Pipeline name.
        name: String,
        /// Print the API's JSON instead of a line per backfill.
        #[arg(long)]
        json: bool,
    },
    /// Replay the pipeline's dead letters through the step that rejected them (or through
    /// another plugin); prints the replay run's id.
    Replay {
        /// Pipeline name.
        name: String,
        /// The step whose dead letters to replay (needed when several steps rejected records).
        #[arg(long)]
        step: Option<String>,
        /// Run the step with this plugin instead (`name@version`, `sha256:<hex>` or `<hex>`).
        #[arg(long)]
        plugin: Option<String>,
        /// Only these dead letters (repeatable); default: all not replayed yet.
        #[arg(long = "id")]
        ids: Vec<i64>,
        /// Send this Idempotency-Key, as for `pipeline run`.
        #[arg(long, value_name = "KEY")]
        idempotency_key: Option<String>,
    },
    /// The pipeline's dead letters (id, step, value, reason; tab-separated), oldest first.
    DeadLetters {
        /// Pipeline name.
        name: String,
        /// Only this step's.
        #[arg(long)]
        step: Option<String>,
        /// Only those not replayed yet.
        #[arg(long)]
        unreplayed: bool,
        /// Which page.
        #[command(flatten)]
        page: DeadLetterArgs,
    },
}

/// A plugin reference as the server reads it: a bare 64-hex digest gets its `sha256:`.
fn plugin_ref(reference: String) -> String {
    let bare = reference.len() == 64 && reference.bytes().all(|b| b.is_ascii_hexdigit());
    if bare {
        format!("sha256:{}", reference.to_ascii_lowercase())
    } else {
        reference
    }
}

/// `GET path` as a `T`, printed as JSON.
async fn show_json<T: DeserializeOwned + serde::Serialize>(
    c: &Client,
    path: &str,
) -> anyhow::Result<()> {
    output::json(&c.get::<T>(path).await?)
}

/// A version's steps and pins, a line each.
fn print_version(v: &Version) -> anyhow::Result<()> {
    output::line(format!(
        "{} version {} (made {} by {})",
        v.pipeline,
        v.version,
        output::time(v.created_at),
        v.created_by.as_deref().unwrap_or("-")
    ))?;
    for p in &v.plugins {
        output::line(format!(
            "  {:<20} {:<28} {}",
            p.step,
            p.reference,
            output::digest(&p.digest)
        ))?;
    }
    Ok(())
}

/// Runs a pipeline command.
pub async fn pipeline(args: &ClientArgs, cmd: PipelineCommand) -> anyhow::Result<()> {
    let c = Client::new(args)?;
    match cmd {
        PipelineCommand::Apply { file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let format = crate::pipeline::Format::from_path(&file)
                .unwrap_or_else(|| crate::pipeline::Format::detect(&text));
            let parsed = crate::pipeline::parse(&text, Some(format))
                .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            let ct = match format {
                crate::pipeline::Format::Json => "application/json",
                crate::pipeline::Format::Yaml => "application/yaml",
            };
            let req = c
                .request(Method::PUT, &format!("/v1/pipelines/{}", parsed.name))
                .header("content-type", ct)
                .body(text);
            let v: Version = c.json(req).await?;
            output::line(format!("{} version {}", parsed.name, v.version))
        }
        PipelineCommand::List { json } => {
            let pipelines: Vec<Pipeline> = c.get("/v1/pipelines").await?;
            output::rows(&pipelines, json, |p| {
                format!("{:<32} v{}", p.name, p.latest_version)
            })
        }
        PipelineCommand::Show {
            name,
            version: Some(n),
            json,
        } => {
            let path = format!("/v1/pipelines/{name}/versions/{n}");
            if json {
                return show_json::<Version>(&c, &path).await;
            }
            print_version(&c.get(&path).await?)
        }
        PipelineCommand::Show {
            name,
            version: None,
            json,
        } => {
            let path = format!("/v1/pipelines/{name}");
            if json {
                return show_json::<PipelineShown>(&c, &path).await;
            }
            let p: PipelineShown = c.get(&path).await?;
            output::line(format!(
                "{} ({} version(s), created {}, updated {})",
                p.name,
                p.latest_version,
                output::time(p.created_at),
                output::time(p.updated_at)
            ))?;
            p.latest.as_ref().map_or(Ok(()), print_version)
        }
        PipelineCommand::Versions { name, json } => {
            let v: Versions = c.get(&format!("/v1/pipelines/{name}/versions")).await?;
            output::rows(&v.versions, json, |e| {
                format!(
                    "v{:<5} {}  {}",
                    e.version,
                    output::time(e.created_at),
                    e.created_by.as_deref().unwrap_or("-")
                )
            })
        }
        PipelineCommand::Rollback { name, version } => {
            let req = c
                .request(Method::POST, &format!("/v1/pipelines/{name}/rollback"))
                .json(&serde_json::json!({ "version": version }));
            let v: Version = c.json(req).await?;
            output::line(format!(
                "{name} version {} (the definition and digests of version {version})",
                v.version
            ))
        }
        PipelineCommand::Run {
            name,
            version,
            wait,
            idempotency_key,
        } => {
            let body = serde_json::json!({ "version": version });
            let req = c
                .request(Method::POST, &format!("/v1/pipelines/{name}/runs"))
                .json(&body);
            let queued: crate::wire::Queued = queue(&c, req, idempotency_key.as_deref()).await?;
            let id = queued.id;
            output::line(&id)?;
            if wait {
                follow(&c, &id).await?;
                let run: Run = c.get(&format!("/v1/runs/{id}")).await?;
                eprintln!("run {id}: {}", run.status);
                if run.status != RunStatus::Succeeded {
                    match &run.error {
                        Some(error) => anyhow::bail!("run {id} {}: {error}", run.status),
                        None => anyhow::bail!("run {id} {}", run.status),
                    }
                }
            }
            Ok(())
        }
        PipelineCommand::Backfill {
            name,
            from,
            to,
            concurrency,
            rerun_succeeded,
            wait,
        } => {
            let body = serde_json::json!({
                "from": from, "to": to, "concurrency": concurrency,
                "rerun_succeeded": rerun_succeeded,
            });
            let req = c
                .request(Method::POST, &format!("/v1/pipelines/{name}/backfills"))
                .json(&body);
            let b: serde_json::Value = c.json(req).await?;
            let id = b["id"].as_str().unwrap_or_default().to_string();
            output::line(&id)?;
            if wait {
                wait_backfill(&c, &id).await?;
            }
            Ok(())
        }
        PipelineCommand::Backfills { name, json } => {
            let list: Vec<serde_json::Value> =
                c.get(&format!("/v1/backfills?pipeline={name}")).await?;
            output::rows(&list, json, backfill_line)
        }
        PipelineCommand::Replay {
            name,
            step,
            plugin,
            ids,
            idempotency_key,
        } => {
            let body = serde_json::json!({
                "step": step, "plugin": plugin.map(plugin_ref), "ids": (!ids.is_empty()).then_some(ids),
            });
            let req = c
                .request(
                    Method::POST,
                    &format!("/v1/pipelines/{name}/dead-letters/replay"),
                )
                .json(&body);
            let r: ReplayQueued = queue(&c, req, idempotency_key.as_deref()).await?;
            output::line(&r.id)?;
            eprintln!(
                "replaying {} dead letter(s) of step {}",
                r.dead_letters,
                r.step.as_deref().unwrap_or("?")
            );
            Ok(())
        }
        PipelineCommand::DeadLetters {
            name,
            step,
            unreplayed,
            page,
        } => {
            let mut req = c.request(Method::GET, &format!("/v1/pipelines/{name}/dead-letters"));
            if let Some(step) = &step {
                req = req.query(&[("step", step)]);
            }
            if unreplayed {
                req = req.query(&[("replayed", "false")]);
            }
            dead_letters(&c, req, &page).await
        }
    }
}

/// The request header of an idempotency key and the answer header of a repeat (the API's
/// contract, as `api::idempotency` serves it).
const KEY_HEADER: &str = "Idempotency-Key";
const REPLAYED_HEADER: &str = "Idempotent-Replayed";

/// Something a run-queueing request answers: the run's id.
trait QueuedRun: DeserializeOwned {
    /// The run's id.
    fn id(&self) -> &str;
}

impl QueuedRun for crate::wire::Queued {
    fn id(&self) -> &str {
        &self.id
    }
}

impl QueuedRun for ReplayQueued {
    fn id(&self) -> &str {
        &self.id
    }
}

/// Sends a request that queues a run, with `key` as its Idempotency-Key; the answer. Notes on
/// stderr when the server answered with the run an earlier request with the key queued.
async fn queue<T: QueuedRun>(
    c: &Client,
    req: reqwest::RequestBuilder,
    key: Option<&str>,
) -> anyhow::Result<T> {
    let req = match key {
        Some(k) => req.header(KEY_HEADER, k),
        None => req,
    };
    let resp = c.send(req).await?;
    let replayed = resp
        .headers()
        .get(REPLAYED_HEADER)
        .is_some_and(|v| v == "true");
    let answer: T = resp
        .json()
        .await
        .context("the answer is not what this client expects")?;
    if replayed {
        eprintln!(
            "an earlier request with this idempotency key queued run {}",
            answer.id()
        );
    }
    Ok(answer)
}

/// A backfill on one line: id, status, range and progress.
fn backfill_line(b: &serde_json::Value) -> String {
    let p = &b["progress"];
    let n = |k: &str| p[k].as_i64().unwrap_or(0);
    format!(
        "{}  {:<9}  {} .. {}  {}/{} done ({} succeeded, {} failed, {} skipped, {} running, {} queued)",
        b["id"].as_str().unwrap_or_default(),
        b["status"].as_str().unwrap_or_default(),
        b["from_time"].as_str().unwrap_or_default(),
        b["to_time"].as_str().unwrap_or_default(),
        n("succeeded") + n("failed") + n("cancelled") + n("skipped"),
        n("slots"),
        n("succeeded"),
        n("failed"),
        n("skipped"),
        n("running"),
        n("queued"),
    )
}

/// Prints backfill `id`'s progress on stderr each time it changes until it ends; an error
/// unless it succeeded.
async fn wait_backfill(c: &Client, id: &str) -> anyhow::Result<()> {
    let mut last = String::new();
    loop {
        let b: serde_json::Value = c.get(&format!("/v1/backfills/{id}")).await?;
        let line = backfill_line(&b);
        if line != last {
            eprintln!("{line}");
            last = line;
        }
        match b["status"].as_str() {
            Some("running") => tokio::time::sleep(std::time::Duration::from_millis(500)).await,
            Some("succeeded") => return Ok(()),
            other => anyhow::bail!("backfill {id} {}", other.unwrap_or("ended")),
        }
    }
}
