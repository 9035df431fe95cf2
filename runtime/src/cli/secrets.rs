//! `autoflow secret set|list|delete`: the tenant's secrets on the server (names only, never
//! values, come back).
use anyhow::Context;
use clap::Subcommand;
use reqwest::Method;

use super::client::{Client, ClientArgs};
use super::output;
use crate::wire::Secret;

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
    List {
        /// Print the API's JSON (names and times, never values) instead of a name per line.
        #[arg(long)]
        json: bool,
    },
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
            c.send(req).await?;
            output::line(format!("secret {name} set"))
        }
        SecretCommand::List { json } => {
            let secrets: Vec<Secret> = c.get("/v1/secrets").await?;
            output::rows(&secrets, json, |s| s.name.clone())
        }
        SecretCommand::Delete { name } => {
            c.send(c.request(Method::DELETE, &format!("/v1/secrets/{name}")))
                .await?;
            output::line(format!("secret {name} deleted"))
        }
    }
}
