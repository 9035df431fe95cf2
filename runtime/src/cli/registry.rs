//! `autoflow plugin push|list|delete`: the server's registry, over the REST API.
use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use reqwest::Method;

use super::client::{Client, ClientArgs};
use super::output;
use crate::wire::{Plugin, PluginDeleted};

/// `autoflow plugin push|list|delete`: the registry's side of `autoflow plugin`.
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
        /// Print the API's JSON instead of a line per plugin.
        #[arg(long)]
        json: bool,
    },
    /// Delete a plugin by digest (`sha256:<hex>` or `<hex>`): every name@version bound to it.
    /// Refused while a pipeline version pins it, and for the built-ins.
    Delete {
        /// Server and token.
        #[command(flatten)]
        client: ClientArgs,
        /// The digest.
        digest: String,
    },
}

/// Runs a registry command.
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
            let p: Plugin = c.json(req).await?;
            output::line(format!(
                "{}@{} {}",
                p.name,
                p.version,
                output::digest(&p.digest)
            ))
        }
        RegistryCommand::List { client, json } => {
            let c = Client::new(&client)?;
            let plugins: Vec<Plugin> = c.get("/v1/plugins").await?;
            output::rows(&plugins, json, |p| {
                format!(
                    "{:<24} {:<10} {:<9} {}",
                    p.name,
                    p.version,
                    p.kind,
                    output::digest(&p.digest)
                )
            })
        }
        RegistryCommand::Delete { client, digest } => {
            let c = Client::new(&client)?;
            let hex = digest.strip_prefix("sha256:").unwrap_or(&digest);
            let req = c.request(Method::DELETE, &format!("/v1/plugins/{hex}"));
            let d: PluginDeleted = c.json(req).await?;
            output::line(format!(
                "{} deleted ({} binding(s))",
                output::digest(&d.digest),
                d.deleted
            ))
        }
    }
}
