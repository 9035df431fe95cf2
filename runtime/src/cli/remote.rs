//! `autoflow plugin push|list`, `autoflow pipeline apply|list|run|replay`, `autoflow runs
//! list|show|logs|dead-letters|cancel`: thin commands over the REST API.
use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use futures::StreamExt;
use reqwest::Method;

use super::client::{Client, ClientArgs};

/// `autoflow plugin push|list`: the registry's side of `autoflow plugin`.
#[derive(Debug, Subcommand)]
pub enum RegistryCommand {
    /// Upload a component into the server's registry as NAME@VERSION; prints its digest.
    Push {
        /// Server and token.
        #[command(flatten)]
        client: ClientArgs,
        /// The component (.wasm).
        file: PathBuf,
        /// Plugin name.
        #[arg(long)]
        name: String,
        /// Semantic version.
        #[arg(long)]
        version: String,
    },
    /// List the server's registry.
    List {
        /// Server and token.
        #[command(flatten)]
        client: ClientArgs,
    },
}

/// `autoflow pipeline ...`
#[derive(Debug, Subcommand)]
pub enum PipelineCommand {
    /// Create or update a pipeline from a YAML or JSON file (a new version when it changed).
    Apply {
        /// The pipeline file.
        file: PathBuf,
    },
    /// List pipelines.
    List,
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
    /// Replay the pipeline's dead letters through the step that rejected them (or through
    /// another plugin); prints the replay run's id.
    Replay {
        /// Pipeline name.
        name: String,
        /// The step whose dead letters to replay (needed when several steps rejected records).
        #[arg(long)]
        step: Option<String>,
        /// Run the step with this plugin instead (`name@version` or `sha256:...`).
        #[arg(long)]
        plugin: Option<String>,
        /// Only these dead letters (repeatable); default: all not replayed yet.
        #[arg(long = "id")]
        ids: Vec<i64>,
        /// Send this Idempotency-Key, as for `pipeline run`.
        #[arg(long, value_name = "KEY")]
        idempotency_key: Option<String>,
    },
}

/// `autoflow secret ...`
#[derive(Debug, Subcommand)]
pub enum SecretCommand {
    /// Set a secret (admins); the value is read from standard input unless `--value` is given.
    Set {
        /// Secret name.
        name: String,
        /// The value (prefer standard input: command lines are visible to other users).
        #[arg(long)]
        value: Option<String>,
    },
    /// The tenant's secrets, by name.
    List,
    /// Delete a secret (admins).
    Delete {
        /// Secret name.
        name: String,
    },
}

/// Runs a secret command.
pub async fn secret(args: &ClientArgs, cmd: SecretCommand) -> anyhow::Result<()> {
    let c = Client::new(args)?;
    match cmd {
        SecretCommand::Set { name, value } => {
            let value = match value {
                Some(v) => v,
                None => {
                    let mut text = String::new();
                    std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
                        .context("cannot read the value from standard input")?;
                    text.trim_end_matches(['\r', '\n']).to_string()
                }
            };
            let req = c
                .request(Method::PUT, &format!("/v1/secrets/{name}"))
                .json(&serde_json::json!({ "value": value }));
            c.json(req).await?;
            println!("secret {name} set");
        }
        SecretCommand::List => {
            let v = c.json(c.request(Method::GET, "/v1/secrets")).await?;
            for s in v.as_array().into_iter().flatten() {
                println!("{}", s["name"].as_str().unwrap_or(""));
            }
        }
        SecretCommand::Delete { name } => {
            c.json(c.request(Method::DELETE, &format!("/v1/secrets/{name}")))
                .await?;
            println!("secret {name} deleted");
        }
    }
    Ok(())
}

/// `autoflow runs ...`
#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// A pipeline's runs, newest first.
    List {
        /// Pipeline name.
        pipeline: String,
        /// Only runs with this status.
        #[arg(long)]
        status: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
    /// One run, with its per-step report.
    Show {
        /// Run id.
        id: String,
    },
    /// A run's log lines.
    Logs {
        /// Run id.
        id: String,
        /// Keep printing until the run ends.
        #[arg(long, short)]
        follow: bool,
    },
    /// The records a run's steps rejected, with the reasons.
    DeadLetters {
        /// Run id.
        id: String,
    },
    /// Cancel a queued or running run.
    Cancel {
        /// Run id.
        id: String,
    },
}

fn print(v: &serde_json::Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

/// Runs a plugin command.
pub async fn plugin(cmd: RegistryCommand) -> anyhow::Result<()> {
    match cmd {
        RegistryCommand::Push {
            client,
            file,
            name,
            version,
        } => {
            let c = Client::new(&client)?;
            let bytes =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let req = c
                .request(Method::POST, "/v1/plugins")
                .query(&[("name", &name), ("version", &version)])
                .body(bytes);
            let v = c.json(req).await?;
            println!(
                "{name}@{version} sha256:{}",
                v["digest"].as_str().unwrap_or("?")
            );
        }
        RegistryCommand::List { client } => {
            let c = Client::new(&client)?;
            let v = c.json(c.request(Method::GET, "/v1/plugins")).await?;
            for p in v.as_array().into_iter().flatten() {
                println!(
                    "{:<24} {:<10} {:<9} sha256:{}",
                    p["name"].as_str().unwrap_or(""),
                    p["version"].as_str().unwrap_or(""),
                    p["kind"].as_str().unwrap_or(""),
                    p["digest"].as_str().unwrap_or("")
                );
            }
        }
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
            let v = c.json(req).await?;
            println!("{} version {}", parsed.name, v["version"]);
        }
        PipelineCommand::List => {
            let v = c.json(c.request(Method::GET, "/v1/pipelines")).await?;
            for p in v.as_array().into_iter().flatten() {
                println!(
                    "{:<32} v{}",
                    p["name"].as_str().unwrap_or(""),
                    p["latest_version"]
                );
            }
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
            let v = queue(&c, req, idempotency_key.as_deref()).await?;
            let id = v["id"].as_str().unwrap_or("").to_string();
            println!("{id}");
            if wait {
                follow(&c, &id).await?;
                let run = c
                    .json(c.request(Method::GET, &format!("/v1/runs/{id}")))
                    .await?;
                eprintln!("run {id}: {}", run["status"].as_str().unwrap_or("?"));
                if run["status"] != "succeeded" {
                    anyhow::bail!("run {id} {}", run["status"].as_str().unwrap_or("?"));
                }
            }
        }
        PipelineCommand::Replay {
            name,
            step,
            plugin,
            ids,
            idempotency_key,
        } => {
            let body = serde_json::json!({ "step": step, "plugin": plugin, "ids": (!ids.is_empty()).then_some(ids) });
            let req = c
                .request(
                    Method::POST,
                    &format!("/v1/pipelines/{name}/dead-letters/replay"),
                )
                .json(&body);
            let v = queue(&c, req, idempotency_key.as_deref()).await?;
            println!("{}", v["id"].as_str().unwrap_or(""));
            eprintln!(
                "replaying {} dead letter(s) of step {}",
                v["dead_letters"],
                v["step"].as_str().unwrap_or("?")
            );
        }
    }
    Ok(())
}

/// The request header of an idempotency key and the answer header of a repeat (the API's
/// contract, as `api::idempotency` serves it).
const KEY_HEADER: &str = "Idempotency-Key";
const REPLAYED_HEADER: &str = "Idempotent-Replayed";

/// Sends a request that queues a run, with `key` as its Idempotency-Key; the answer. Notes on
/// stderr when the server answered with the run an earlier request with the key queued.
async fn queue(
    c: &Client,
    req: reqwest::RequestBuilder,
    key: Option<&str>,
) -> anyhow::Result<serde_json::Value> {
    let req = match key {
        Some(k) => req.header(KEY_HEADER, k),
        None => req,
    };
    let resp = c.send(req).await?;
    let replayed = resp
        .headers()
        .get(REPLAYED_HEADER)
        .is_some_and(|v| v == "true");
    let v: serde_json::Value = resp.json().await.context("the answer is not JSON")?;
    if replayed {
        eprintln!(
            "an earlier request with this idempotency key queued run {}",
            v["id"].as_str().unwrap_or("?")
        );
    }
    Ok(v)
}

fn print_line(l: &serde_json::Value) {
    let step = l["step"].as_str().unwrap_or("run");
    println!(
        "[{step}] {}: {}",
        l["level"].as_str().unwrap_or(""),
        l["message"].as_str().unwrap_or("")
    );
}

/// Prints a run's logs as they come (server-sent events) until it ends.
async fn follow(c: &Client, id: &str) -> anyhow::Result<()> {
    let resp = c
        .send(c.request(Method::GET, &format!("/v1/runs/{id}/logs?follow=true")))
        .await?;
    let mut stream = resp.bytes_stream();
    let mut buf = String::new();
    while let Some(chunk) = stream.next().await {
        buf.push_str(&String::from_utf8_lossy(&chunk?));
        while let Some(end) = buf.find("\n\n") {
            let event: String = buf.drain(..end + 2).collect();
            let kind = event
                .lines()
                .find_map(|l| l.strip_prefix("event:"))
                .map(str::trim)
                .unwrap_or("");
            let data = event
                .lines()
                .find_map(|l| l.strip_prefix("data:"))
                .map(str::trim)
                .unwrap_or("");
            match kind {
                "log" => print_line(&serde_json::from_str(data).unwrap_or_default()),
                "end" => return Ok(()),
                _ => {}
            }
        }
    }
    Ok(())
}

/// Runs a runs command.
pub async fn runs(args: &ClientArgs, cmd: RunsCommand) -> anyhow::Result<()> {
    let c = Client::new(args)?;
    match cmd {
        RunsCommand::List {
            pipeline,
            status,
            limit,
        } => {
            let mut req = c
                .request(Method::GET, &format!("/v1/pipelines/{pipeline}/runs"))
                .query(&[("limit", limit)]);
            if let Some(s) = status {
                req = req.query(&[("status", s)]);
            }
            let v = c.json(req).await?;
            for r in v.as_array().into_iter().flatten() {
                println!(
                    "{}  v{:<4} {:<10}",
                    r["id"].as_str().unwrap_or(""),
                    r["version"],
                    r["status"].as_str().unwrap_or("")
                );
            }
        }
        RunsCommand::Show { id } => print(
            &c.json(c.request(Method::GET, &format!("/v1/runs/{id}")))
                .await?,
        ),
        RunsCommand::Logs { id, follow: true } => follow(&c, &id).await?,
        RunsCommand::Logs { id, follow: false } => {
            let v = c
                .json(c.request(Method::GET, &format!("/v1/runs/{id}/logs")))
                .await?;
            v.as_array().into_iter().flatten().for_each(print_line);
        }
        RunsCommand::DeadLetters { id } => {
            let v = c
                .json(
                    c.request(Method::GET, &format!("/v1/runs/{id}/dead-letters"))
                        .query(&[("limit", 1000)]),
                )
                .await?;
            for d in v.as_array().into_iter().flatten() {
                println!(
                    "{}  [{}] {}: {}",
                    d["id"],
                    d["step"].as_str().unwrap_or(""),
                    d["reason"].as_str().unwrap_or(""),
                    d["value"]
                );
            }
        }
        RunsCommand::Cancel { id } => {
            let v = c
                .json(c.request(Method::POST, &format!("/v1/runs/{id}/cancel")))
                .await?;
            println!("{id}: {}", v["status"].as_str().unwrap_or("?"));
        }
    }
    Ok(())
}
