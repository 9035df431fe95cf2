//! `autoflow`: the server, the worker and the command-line client in one binary.
use autoflow::{cli, server};
use clap::{Parser, Subcommand};

/// Autoflow: data pipelines whose every source, transform and sink is a sandboxed
/// WebAssembly component.
#[derive(Debug, Parser)]
#[command(name = "autoflow", version, about)]
struct Cli {
    /// How this process writes its own log lines (on standard error; `AUTOFLOW_LOG` filters
    /// them): `text`, or `json` (one object a line, with the run, step and tenant ids of lines
    /// written for a run).
    #[arg(
        long,
        global = true,
        env = "AUTOFLOW_LOG_FORMAT",
        value_enum,
        default_value_t
    )]
    log_format: autoflow::telemetry::logs::LogFormat,
    /// What to do.
    #[command(subcommand)]
    command: Command,
}

/// The subcommands: the server and the worker, and the command line's.
#[derive(Debug, Subcommand)]
enum Command {
    /// Start the server: REST API, registry, scheduler and a worker.
    Server(server::ServerArgs),
    /// Run only a worker: claim and run queued runs from a shared database.
    Worker(server::WorkerCommandArgs),
    /// The command line's own.
    #[command(flatten)]
    Cli(cli::Command),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    autoflow::telemetry::logs::init(cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(async {
        match cli.command {
            Command::Server(args) => cli::report("server", server::serve(args).await),
            Command::Worker(args) => cli::report("worker", server::work(args).await),
            Command::Cli(command) => cli::run(command).await,
        }
    });
    drop(runtime);
    autoflow::telemetry::traces::shutdown();
    std::process::ExitCode::from(u8::try_from(code).unwrap_or(1))
}
