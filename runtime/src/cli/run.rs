//! `autoflow run FILE`: validate a pipeline file, run it once locally, show progress and a
//! summary, write dead letters to a file, and exit non-zero on failure.
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::engine::{Engine, EngineConfig, LogLevel, LogLine};
use crate::executor::{self, DeadLetterFile, Outcome, RunSinks};
use crate::integrations::Integrations;
use crate::pipeline::{self, Format, ValidationPolicy};
use crate::registry::LocalPlugins;

use super::DataDirArgs;

/// Exit code of a run that failed.
const EXIT_FAILED: i32 = 1;
/// Exit code of a pipeline file that is invalid.
const EXIT_INVALID: i32 = 2;

/// Arguments of `autoflow run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The pipeline file (YAML or JSON).
    pub file: PathBuf,
    #[command(flatten)]
    pub data: DataDirArgs,
    /// Host folders that steps may mount (repeatable). Default: the pipeline file's folder.
    #[arg(
        long = "allow-mount-root",
        env = "AUTOFLOW_MOUNT_ROOTS",
        value_delimiter = ':'
    )]
    pub mount_roots: Vec<PathBuf>,
    /// Where rejected records go (JSON lines). Default: the pipeline's `dead_letter.path`,
    /// else `<name>.dead-letters.jsonl` in the current folder.
    #[arg(long)]
    pub dead_letters: Option<PathBuf>,
    /// A secret the steps may be granted, as NAME=VALUE (repeatable).
    #[arg(long = "secret", value_name = "NAME=VALUE")]
    pub secrets: Vec<String>,
    /// A value of one of the pipeline's parameters (`params:`), as NAME=VALUE (repeatable);
    /// the defaults fill the rest.
    #[arg(long = "param", value_name = "NAME=VALUE")]
    pub params: Vec<String>,
    /// Records for the pipeline's `trigger-source` step: a file of JSON (a document, an array
    /// of them, or JSON lines), or `-` for standard input.
    #[arg(long, value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// Print the run report as JSON on stdout instead of the summary table.
    #[arg(long)]
    pub json: bool,
    /// Hide the plugins' log lines below this level (trace, debug, info, warn, error).
    #[arg(long, default_value = "info")]
    pub log_level: String,
    /// Outbound HTTP: private addresses the operator allows.
    #[command(flatten)]
    pub egress: super::EgressArgs,
}

/// The records of `--input FILE` (`-`: standard input); an error names the file and the line.
fn read_input(file: &Path) -> Result<Vec<crate::engine::bindings::Record>, String> {
    let bytes = if file == Path::new("-") {
        let mut b = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut b).map(|_| b)
    } else {
        std::fs::read(file)
    }
    .map_err(|e| format!("--input {}: {e}", file.display()))?;
    let values = crate::control::input::records_of(&bytes)
        .map_err(|e| format!("--input {}: {e}", file.display()))?;
    Ok(values
        .iter()
        .map(|v| {
            crate::record::Record {
                value: v.to_string().into_bytes(),
                ..Default::default()
            }
            .into()
        })
        .collect())
}

/// Runs `autoflow run`; returns the exit code.
pub async fn run(args: RunArgs) -> i32 {
    match run_inner(&args).await {
        Ok(code) => code,
        Err((code, message)) => {
            eprintln!("{message}");
            code
        }
    }
}

async fn run_inner(args: &RunArgs) -> Result<i32, (i32, String)> {
    let file = args.file.display().to_string();
    let text = std::fs::read_to_string(&args.file)
        .map_err(|e| (EXIT_INVALID, format!("{file}: cannot read: {e}")))?;
    let parsed = pipeline::parse(&text, Format::from_path(&args.file))
        .map_err(|e| (EXIT_INVALID, format!("{file}: {e}")))?;
    let base_dir = args
        .file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let roots = if args.mount_roots.is_empty() {
        vec![base_dir.clone()]
    } else {
        args.mount_roots.clone()
    };
    let policy = ValidationPolicy {
        allowed_mount_roots: roots,
        base_dir: base_dir.clone(),
        ..ValidationPolicy::default()
    };
    let invalid = |errors: crate::pipeline::ValidationErrors| {
        let lines: Vec<String> = errors
            .messages()
            .iter()
            .map(|m| format!("{file}: {m}"))
            .collect();
        (EXIT_INVALID, lines.join("\n"))
    };
    let validated = parsed.validate(&policy).map_err(invalid)?;
    let fuel = validated
        .resolved_steps()
        .iter()
        .any(|s| s.limits.fuel.is_some());
    let egress = args.egress.settings().map_err(|e| (EXIT_INVALID, e))?;
    let integrations = Integrations::new(crate::egress::Policy::new(&egress));
    let engine = Engine::with_integrations(
        EngineConfig {
            fuel,
            // Every step holds one instance while the run goes; config checks use one more each.
            max_instances: u32::try_from(validated.steps().len() * 2 + 8).unwrap_or(u32::MAX),
            cache_dir: Some(args.data.data_dir.join("cache")),
            ..EngineConfig::default()
        },
        integrations.clone(),
    )
    .map_err(|e| (EXIT_FAILED, format!("cannot start the engine: {e}")))?;
    let plugins = LocalPlugins {
        blob_dir: Some(args.data.data_dir.join("blobs")),
    };
    let secrets = pairs("--secret", &args.secrets).map_err(|e| (EXIT_INVALID, e))?;
    let mut plan = executor::prepare::prepare(&engine, &validated, &plugins, &base_dir, &secrets)
        .await
        .map_err(invalid)?;
    plan.open_connections(&secrets)
        .map_err(|e| (EXIT_INVALID, e))?;
    let given = pairs("--param", &args.params).map_err(|e| (EXIT_INVALID, e))?;
    let given: crate::pipeline::params::ParamValues = given
        .into_iter()
        .map(|(k, v)| (k, serde_json::Value::String(v)))
        .collect();
    let values = crate::pipeline::params::resolve(&validated.pipeline().params, &given)
        .map_err(|e| (EXIT_INVALID, e.join("\n")))?;
    plan.apply_params(&values);
    if let Some(file) = &args.input {
        let records = read_input(file).map_err(|e| (EXIT_INVALID, e))?;
        let fed = plan.inject.as_mut().ok_or_else(|| {
            (
                EXIT_INVALID,
                "--input: the pipeline has no trigger-source step to read it".to_string(),
            )
        })?;
        fed.records = records;
    }
    let name = &validated.pipeline().name;
    let dead_path = args
        .dead_letters
        .clone()
        .or_else(|| validated.dead_letter_path().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from(format!("{name}.dead-letters.jsonl")));
    let dead = DeadLetterFile::new(&dead_path);
    let dead_sink = {
        let dead = dead.clone();
        Arc::new(move |letter: executor::DeadLetter| {
            if let Err(e) = dead.push(&letter) {
                eprintln!("cannot write dead letter to {}: {e}", dead.path().display());
            }
        })
    };
    let min_level = level_of(&args.log_level).ok_or_else(|| {
        (
            EXIT_INVALID,
            format!(
                "--log-level: unknown level {:?} (trace, debug, info, warn, error)",
                args.log_level
            ),
        )
    })?;
    let logs = Arc::new(move |line: LogLine| {
        if line.level >= min_level {
            let step = line.step.as_deref().unwrap_or("run");
            let _ = writeln!(
                std::io::stderr().lock(),
                "\r\x1b[2K[{step}] {:?}: {}",
                line.level,
                line.message
            );
        }
    });
    let counters = executor::new_counters(&plan);
    let progress = super::progress::spawn(&plan, counters.clone());
    let report = executor::execute(
        &engine,
        &plan,
        RunSinks {
            logs,
            dead_letters: dead_sink,
        },
        &counters,
    )
    .await;
    let _ = progress.send(());
    if let Err(e) = dead.flush() {
        eprintln!("cannot write dead letters to {}: {e}", dead_path.display());
    }
    let refs: Vec<String> = plan
        .steps
        .iter()
        .map(|s| {
            validated
                .step(&s.id)
                .map(|st| st.plugin.clone())
                .unwrap_or_default()
        })
        .collect();
    if args.json {
        // A reader gone from standard output (`| head`) is no failure of the run.
        if let Err(e) = super::output::json(&report)
            && !super::output::is_closed(&e)
        {
            eprintln!("{e:#}");
        }
    } else {
        eprint!("{}", super::progress::summary(name, &report, &refs));
        if report.dead_letters > 0 {
            eprintln!(
                "dead letters: {} written to {}",
                report.dead_letters,
                dead_path.display()
            );
        }
    }
    // No checkpoint to commit in a local run: what the sinks flushed is all there is.
    let succeeded = report.outcome == Outcome::Succeeded;
    integrations.settle(&report.acks, succeeded).await;
    if succeeded {
        return Ok(0);
    }
    let message = match report.failure() {
        Some((step, e)) => format!("run failed: step \"{step}\": {}", e.summary()),
        None => "run failed".to_string(),
    };
    Err((EXIT_FAILED, message))
}

/// The NAME=VALUE pairs of a repeatable `flag`.
fn pairs(flag: &str, pairs: &[String]) -> Result<BTreeMap<String, String>, String> {
    pairs
        .iter()
        .map(|p| match p.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(format!("{flag} {p:?}: expected NAME=VALUE")),
        })
        .collect()
}

fn level_of(name: &str) -> Option<LogLevel> {
    Some(match name {
        "trace" => LogLevel::Trace,
        "debug" => LogLevel::Debug,
        "info" => LogLevel::Info,
        "warn" => LogLevel::Warn,
        "error" => LogLevel::Error,
        _ => return None,
    })
}
