//! `autoflow`: the server, the worker and the command-line client in one binary.
use autoflow::cli;
use clap::Parser;

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("AUTOFLOW_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        // A log line that cannot be written (stderr on a full disk) is dropped: by default the
        // subscriber reports it with `eprintln!`, which panics when stderr fails, and every
        // request or task that logged would die with it.
        .log_internal_errors(false)
        .init();
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(cli::main(cli));
    std::process::ExitCode::from(u8::try_from(code).unwrap_or(1))
}
