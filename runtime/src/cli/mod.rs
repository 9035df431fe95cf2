//! The command line: `autoflow run FILE`, `autoflow plugin check|new` and the other subcommands
//! (`autoflow server` and `worker` are the binary's own, beside these: `runtime/src/main.rs`).
use std::path::PathBuf;

use clap::Subcommand;

pub mod audit;
pub mod client;
pub mod database;
mod output;
pub mod pipelines;
pub mod plugin;
mod progress;
pub mod registry;
mod run;
pub mod runs;
pub mod secrets;
pub mod token;
pub mod user;
mod watch;

/// The subcommands of the command line.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a pipeline file once, locally, without a server.
    Run(run::RunArgs),
    /// Plugins: the server's registry (`push`, `list`) and tools for plugin authors (`check`,
    /// `new`).
    #[command(subcommand)]
    Plugin(plugin::PluginCommand),
    /// Pipelines on the server.
    Pipeline {
        /// Server and token.
        #[command(flatten)]
        client: client::ClientArgs,
        /// What to do.
        #[command(subcommand)]
        command: pipelines::PipelineCommand,
    },
    /// Runs on the server.
    Runs {
        /// Server and token.
        #[command(flatten)]
        client: client::ClientArgs,
        /// What to do.
        #[command(subcommand)]
        command: runs::RunsCommand,
    },
    /// Secrets on the server: set, list (names only), delete.
    Secret {
        /// Server and token.
        #[command(flatten)]
        client: client::ClientArgs,
        /// What to do.
        #[command(subcommand)]
        command: secrets::SecretCommand,
    },
    /// API tokens (made directly in the server's database).
    Token {
        /// What to do.
        #[command(subcommand)]
        command: token::TokenCommand,
    },
    /// Users and their roles (made directly in the server's database).
    User {
        /// What to do.
        #[command(subcommand)]
        command: user::UserCommand,
    },
    /// The audit log's hash chains (checked directly in the server's database).
    Audit {
        /// What to do.
        #[command(subcommand)]
        command: audit::AuditCommand,
    },
}

/// Options shared by commands that keep files: where the data directory is.
#[derive(Debug, Clone, clap::Args)]
pub struct DataDirArgs {
    /// Data directory (compiled-plugin cache, blobs, database).
    #[arg(long, env = "AUTOFLOW_DATA_DIR", default_value = "./autoflow-data")]
    pub data_dir: PathBuf,
}

/// The operator's egress setting (outbound HTTP and connections), on `autoflow server`,
/// `worker` and `run`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct EgressArgs {
    /// Hosts or addresses (`host[:port]`, comma-separated) whose loopback, private or
    /// link-local addresses steps may reach: over HTTP (a step must still list the host in its
    /// `allow_hosts`) and through the pipeline's connections (databases, NATS, Redis).
    /// Default: none.
    #[arg(
        long = "egress-allow-private",
        env = "AUTOFLOW_EGRESS_ALLOW_PRIVATE",
        value_delimiter = ','
    )]
    pub egress_allow_private: Vec<String>,
}

impl EgressArgs {
    /// The process's egress settings; an invalid entry is an error naming it.
    pub fn settings(&self) -> Result<crate::egress::EgressSettings, String> {
        let entries: Vec<String> = self
            .egress_allow_private
            .iter()
            .map(|e| e.trim().to_string())
            .filter(|e| !e.is_empty())
            .collect();
        for e in &entries {
            if crate::egress::HostPattern::parse(e).is_none() {
                return Err(format!(
                    "--egress-allow-private: invalid entry {e:?} (expected host, address or [v6], optionally with :port)"
                ));
            }
        }
        Ok(crate::egress::EgressSettings {
            allow_private: entries,
        })
    }
}

/// Runs a subcommand; returns the process exit code.
pub async fn run(command: Command) -> i32 {
    match command {
        Command::Run(args) => run::run(args).await,
        Command::Plugin(command) => plugin::run(command).await,
        Command::Pipeline { client, command } => {
            report("pipeline", pipelines::pipeline(&client, command).await)
        }
        Command::Runs { client, command } => report("runs", runs::runs(&client, command).await),
        Command::Secret { client, command } => {
            report("secret", secrets::secret(&client, command).await)
        }
        Command::Token { command } => report("token", token::token(command).await),
        Command::User { command } => report("user", user::user(command).await),
        Command::Audit { command } => report("audit", audit::audit(command).await),
    }
}

/// The exit code of a command's result; the error is printed. A reader that closed standard
/// output early (`| head`) is no error: the command ends quietly.
pub fn report(what: &str, result: anyhow::Result<()>) -> i32 {
    match result {
        Ok(()) => 0,
        Err(e) if output::is_closed(&e) => 0,
        Err(e) => {
            eprintln!("autoflow {what}: {e:#}");
            1
        }
    }
}
