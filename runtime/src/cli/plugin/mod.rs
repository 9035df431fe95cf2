//! `autoflow plugin ...`: tools for plugin authors (`check FILE`, `new NAME --lang L --kind K`)
//! and the server's registry (`push`, `list`, `delete`, in `cli::registry`).
use clap::Subcommand;

mod check;
mod scaffold;

pub use check::CheckArgs;
pub use scaffold::{Kind, Lang, NewArgs};

/// The `plugin` subcommands.
#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Validate a component against the plugin contract and show its world, imports, metadata
    /// and config schema (or what is wrong with it).
    Check(CheckArgs),
    /// Write a new plugin project (code, build command, test pipeline) in a new folder.
    New(NewArgs),
    /// Upload to, list, or delete from the server's registry.
    #[command(flatten)]
    Registry(super::registry::RegistryCommand),
}

/// Runs a `plugin` subcommand; returns the exit code.
pub async fn run(command: PluginCommand) -> i32 {
    match command {
        PluginCommand::Check(args) => check::run(args).await,
        PluginCommand::New(args) => scaffold::run(&args),
        PluginCommand::Registry(command) => {
            super::report("plugin", super::registry::plugin(command).await)
        }
    }
}
