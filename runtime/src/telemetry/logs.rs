//! The process's own log lines (not a run's: those are in the store), on standard error, as
//! text or as JSON lines (`--log-format json`). A line written inside a run's or a step's span
//! carries its ids: JSON lines have them in `span` (the innermost) and `spans` (all, outermost
//! first), text lines before the message.
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One line of text each.
    #[default]
    Text,
    /// One JSON object each: `timestamp`, `level`, `target`, `fields` (`message` among them),
    /// `span` and `spans` (with `run`, `tenant`, `pipeline`, `attempt`, `step` where known).
    Json,
}

/// Sets up the process's log lines in `format`, filtered by `AUTOFLOW_LOG` (default `warn`),
/// and its traces when the environment asks for them ([`super::traces`]).
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_env("AUTOFLOW_LOG").unwrap_or_else(|_| EnvFilter::new("warn"));
    let lines = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        // A log line that cannot be written (stderr on a full disk) is dropped: by default the
        // subscriber reports it with `eprintln!`, which panics when stderr fails, and every
        // request or task that logged would die with it.
        .log_internal_errors(false);
    let lines = match format {
        LogFormat::Text => lines.with_filter(filter).boxed(),
        LogFormat::Json => lines
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .with_filter(filter)
            .boxed(),
    };
    tracing_subscriber::registry()
        .with(lines)
        .with(super::traces::layer())
        .init();
}
