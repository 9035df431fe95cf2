//! The command line: `autoflow run FILE`, `autoflow plugin check|new` and the other subcommands.
use std::path::PathBuf;

use clap::{Parser, Subcommand};

pub mod plugin;
mod progress;
mod run;

/// Autoflow: data pipelines whose every source, transform and sink is a sandboxed
/// WebAssembly component.
#[derive(Debug, Parser)]
#[command(name = "autoflow", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a pipeline file once, locally, without a server.
    Run(run::RunArgs),
    /// Tools for plugin authors: check a component, start a new plugin.
    #[command(subcommand)]
    Plugin(plugin::PluginCommand),
}

/// Options shared by commands that keep files: where the data directory is.
#[derive(Debug, Clone, clap::Args)]
pub struct DataDirArgs {
    /// Data directory (compiled-plugin cache, blobs, database).
    #[arg(long, env = "AUTOFLOW_DATA_DIR", default_value = "./autoflow-data")]
    pub data_dir: PathBuf,
}

/// Runs the parsed command line; returns the process exit code.
pub async fn main(cli: Cli) -> i32 {
    match cli.command {
        Command::Run(args) => run::run(args).await,
        Command::Plugin(command) => plugin::run(command).await,
    }
}
