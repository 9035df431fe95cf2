//! `autoflow runs list|show|logs|attempts|dead-letters|cancel`: runs on the server, over the
//! REST API.
use clap::Subcommand;
use futures::StreamExt;
use reqwest::{Method, RequestBuilder};

use super::client::{Client, ClientArgs};
use super::output;
use crate::status::RunStatus;
use crate::wire::{Attempt, CancelAnswer, DeadLetter, LogLine, Run};

/// `autoflow runs ...`
#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// A pipeline's runs, newest first.
    List {
        /// Pipeline name.
        pipeline: String,
        /// Only runs with this status (queued, running, succeeded, failed or cancelled).
        #[arg(long)]
        status: Option<RunStatus>,
        /// At most this many.
        #[arg(long, default_value_t = 20)]
        limit: i64,
        /// Print the API's JSON instead of a line per run.
        #[arg(long)]
        json: bool,
    },
    /// One run, with its per-step report (the API's JSON).
    Show {
        /// Run id.
        id: String,
        /// Instead: a table of its steps' counters, redrawn while it runs, until it ends.
        #[arg(long, short)]
        follow: bool,
    },
    /// A run's log lines.
    Logs {
        /// Run id.
        id: String,
        /// Keep printing until the run ends.
        #[arg(long, short)]
        follow: bool,
        /// Only lines after this one (the cursor a listing with more prints; not with --follow).
        #[arg(long, conflicts_with = "follow")]
        after: Option<i64>,
        /// Print the API's JSON instead of a line per log line (not with --follow).
        #[arg(long, conflicts_with = "follow")]
        json: bool,
    },
    /// A run's attempts: worker, start, end, outcome, error.
    Attempts {
        /// Run id.
        id: String,
        /// Print the API's JSON instead of a line per attempt.
        #[arg(long)]
        json: bool,
    },
    /// The records a run's steps rejected (id, step, value, reason; tab-separated).
    DeadLetters {
        /// Run id.
        id: String,
        /// Which page.
        #[command(flatten)]
        page: DeadLetterArgs,
    },
    /// Cancel a queued or running run.
    Cancel {
        /// Run id.
        id: String,
    },
}

/// Which page of dead letters, and how to print it.
#[derive(Debug, Clone, clap::Args)]
pub struct DeadLetterArgs {
    /// Only dead letters with ids above this (the cursor a listing with more prints).
    #[arg(long)]
    pub after: Option<i64>,
    /// At most this many (the server allows 1000 at most).
    #[arg(long, default_value_t = 1000)]
    pub limit: i64,
    /// Print the API's JSON instead of a line per dead letter.
    #[arg(long)]
    pub json: bool,
}

/// Prints one page of the dead letters `req` asks for, and on stderr how to get the next.
pub(super) async fn dead_letters(
    c: &Client,
    req: RequestBuilder,
    page: &DeadLetterArgs,
) -> anyhow::Result<()> {
    let mut req = req.query(&[("limit", page.limit)]);
    if let Some(after) = page.after {
        req = req.query(&[("after", after)]);
    }
    let letters = c.page::<DeadLetter>(req).await?;
    output::rows(&letters.rows, page.json, |d| {
        format!("{}\t{}\t{}\t{}", d.id, d.step, d.value, d.reason)
    })?;
    output::more(letters.next.as_deref());
    Ok(())
}

fn print_line(l: &LogLine) -> anyhow::Result<()> {
    output::line(format!(
        "[{}] {}: {}",
        l.step.as_deref().unwrap_or("run"),
        l.level,
        l.message
    ))
}

/// Prints a run's logs as they come (server-sent events) until it ends.
pub(super) async fn follow(c: &Client, id: &str) -> anyhow::Result<()> {
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
                "log" => match serde_json::from_str::<LogLine>(data) {
                    Ok(line) => print_line(&line)?,
                    Err(e) => eprintln!("a log event that does not read: {e}"),
                },
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
            json,
        } => {
            let mut req = c
                .request(Method::GET, &format!("/v1/pipelines/{pipeline}/runs"))
                .query(&[("limit", limit)]);
            if let Some(s) = status {
                req = req.query(&[("status", s.as_str())]);
            }
            let runs: Vec<Run> = c.json(req).await?;
            output::rows(&runs, json, |r| {
                format!("{}  v{:<4} {:<10}", r.id, r.version, r.status)
            })
        }
        RunsCommand::Show { id, follow: true } => super::watch::follow(&c, &id).await,
        RunsCommand::Show { id, follow: false } => {
            output::json(&c.get::<Run>(&format!("/v1/runs/{id}")).await?)
        }
        RunsCommand::Logs {
            id, follow: true, ..
        } => follow(&c, &id).await,
        RunsCommand::Logs {
            id,
            follow: false,
            after,
            json,
        } => {
            let req = c
                .request(Method::GET, &format!("/v1/runs/{id}/logs"))
                .query(&[("after", after.unwrap_or(0))]);
            let lines = c.page::<LogLine>(req).await?;
            if json {
                output::json(&lines.rows)?;
            } else {
                lines.rows.iter().try_for_each(print_line)?;
            }
            output::more(lines.next.as_deref());
            Ok(())
        }
        RunsCommand::Attempts { id, json } => {
            let attempts: Vec<Attempt> = c.get(&format!("/v1/runs/{id}/attempts")).await?;
            output::rows(&attempts, json, |a| {
                format!(
                    "{:<3} {:<12} {}  {}  {}",
                    a.attempt,
                    a.status,
                    a.worker,
                    output::time(a.started_at),
                    a.error.as_deref().unwrap_or("")
                )
            })
        }
        RunsCommand::DeadLetters { id, page } => {
            let req = c.request(Method::GET, &format!("/v1/runs/{id}/dead-letters"));
            dead_letters(&c, req, &page).await
        }
        RunsCommand::Cancel { id } => {
            let a: CancelAnswer = c
                .json(c.request(Method::POST, &format!("/v1/runs/{id}/cancel")))
                .await?;
            output::line(format!("{}: {}", a.id, a.status))
        }
    }
}
