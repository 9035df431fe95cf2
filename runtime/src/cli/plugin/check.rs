//! `autoflow plugin check FILE`: loads a component the way a run would (compile, contract and
//! import checks), instantiates it in a sandbox with default limits, calls `describe`, and
//! checks its config schema. Prints what it found, or what is wrong (exit code 1).
use std::path::PathBuf;

use serde_json::json;

use crate::cli::DataDirArgs;
use crate::engine::{Engine, EngineConfig};
use crate::executor::prepare::{config_validator, describe};
use crate::registry::cache::digest_of;

/// Prints a line on standard output; a reader gone (`| head`) ends the printing quietly.
macro_rules! say {
    ($($arg:tt)*) => {
        drop(crate::cli::output::line(format_args!($($arg)*)))
    };
}

/// Arguments of `autoflow plugin check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The component (.wasm).
    pub file: PathBuf,
    /// Where the compiled cache is.
    #[command(flatten)]
    pub data: DataDirArgs,
    /// Print the findings as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs the check; returns the exit code.
pub async fn run(args: CheckArgs) -> i32 {
    match inspect(&args).await {
        Ok(report) => {
            if args.json {
                say!("{report:#}");
            } else {
                print_text(&args, &report);
            }
            0
        }
        Err(problem) => {
            if args.json {
                say!(
                    "{:#}",
                    json!({ "file": args.file.display().to_string(), "valid": false, "problem": problem })
                );
            } else {
                eprintln!(
                    "{}: not a valid Autoflow plugin: {problem}",
                    args.file.display()
                );
            }
            1
        }
    }
}

/// Everything `check` finds, or the first thing wrong.
async fn inspect(args: &CheckArgs) -> Result<serde_json::Value, String> {
    let bytes = std::fs::read(&args.file).map_err(|e| format!("cannot read it: {e}"))?;
    let engine = Engine::new(EngineConfig {
        max_instances: 2,
        cache_dir: Some(args.data.data_dir.join("cache")),
        ..EngineConfig::default()
    })
    .map_err(|e| e.to_string())?;
    let digest = digest_of(&bytes);
    let plugin = engine.load(&digest, &bytes).map_err(|e| e.to_string())?;
    let meta = describe(&engine, &plugin).await?;
    config_validator(&meta)?;
    let schema = match &meta.config_schema {
        Some(text) => serde_json::from_str(text).map_err(|e| e.to_string())?,
        None => serde_json::Value::Null,
    };
    Ok(json!({
        "file": args.file.display().to_string(),
        "valid": true,
        "digest": format!("sha256:{digest}"),
        "bytes": bytes.len(),
        "world": format!("{}-plugin", plugin.kind),
        "kind": plugin.kind,
        "contract": plugin.contract,
        "name": meta.name,
        "version": meta.version,
        "description": meta.description,
        "imports": plugin.imports,
        "config_schema": schema,
    }))
}

fn print_text(args: &CheckArgs, r: &serde_json::Value) {
    let s = |key: &str| r[key].as_str().unwrap_or_default().to_string();
    say!("{}: a valid Autoflow plugin", args.file.display());
    say!(
        "  world:       {} (autoflow:plugin@{})",
        s("world"),
        s("contract")
    );
    say!("  name:        {} {}", s("name"), s("version"));
    say!("  description: {}", s("description"));
    say!("  size:        {} bytes, {}", r["bytes"], s("digest"));
    say!("  imports:");
    for import in r["imports"].as_array().into_iter().flatten() {
        say!("    {}", import.as_str().unwrap_or_default());
    }
    match &r["config_schema"] {
        serde_json::Value::Null => say!("  config schema: none (any config is accepted)"),
        schema => say!("  config schema: {schema}"),
    }
}
