//! `autoflow plugin new NAME --lang rust|python|js --kind source|transform|sink`: writes a
//! working plugin project from the templates in `cli/templates` (embedded in the binary): the
//! plugin, the language's helper (Python and JS) and the WIT contract, a README with the build
//! command, and `test.sh`, which builds the plugin and runs it in a test pipeline.
use std::path::{Path, PathBuf};

/// A plugin's language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    /// Rust, with the `autoflow-plugin-sdk` crate.
    Rust,
    /// Python, with componentize-py 0.25.1.
    Python,
    /// JavaScript, with componentize-js 0.23.0.
    Js,
}

/// A plugin's kind (its world).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// Reads records from outside.
    Source,
    /// Turns batches into batches.
    Transform,
    /// Writes records out.
    Sink,
}

/// Arguments of `autoflow plugin new`.
#[derive(Debug, clap::Args)]
pub struct NewArgs {
    /// The plugin's name (lowercase letters, digits and dashes); also the new folder's name.
    pub name: String,
    /// Its language.
    #[arg(long)]
    pub lang: Lang,
    /// Its kind.
    #[arg(long)]
    pub kind: Kind,
    /// Where to create the folder (default: the current folder).
    #[arg(long, default_value = ".")]
    pub dir: PathBuf,
    /// Path of the `autoflow-plugin-sdk` crate (Rust). Default: this build's source tree.
    #[arg(long)]
    pub sdk: Option<PathBuf>,
}

/// The WIT contract, written into Python and JS projects (their build tools read it): 0.1.0,
/// which their helpers target (the host loads both versions; 0.2.0 changed only `transform`).
const WIT: &[(&str, &str)] = &[
    (
        "host.wit",
        include_str!("../../../../wit/deps/autoflow-plugin@0.1.0/host.wit"),
    ),
    (
        "types.wit",
        include_str!("../../../../wit/deps/autoflow-plugin@0.1.0/types.wit"),
    ),
    (
        "source.wit",
        include_str!("../../../../wit/deps/autoflow-plugin@0.1.0/source.wit"),
    ),
    (
        "transform.wit",
        include_str!("../../../../wit/deps/autoflow-plugin@0.1.0/transform.wit"),
    ),
    (
        "sink.wit",
        include_str!("../../../../wit/deps/autoflow-plugin@0.1.0/sink.wit"),
    ),
    (
        "sql.wit",
        include_str!("../../../../wit/deps/autoflow-plugin@0.1.0/sql.wit"),
    ),
    (
        "messaging.wit",
        include_str!("../../../../wit/deps/autoflow-plugin@0.1.0/messaging.wit"),
    ),
    (
        "worlds.wit",
        include_str!("../../../../wit/deps/autoflow-plugin@0.1.0/worlds.wit"),
    ),
];

/// The helpers, the very files of `plugins/python` and `plugins/js`.
const PYTHON_HELPER: &str = include_str!("../../../../plugins/python/autoflow_plugin.py");
const JS_HELPER: &str = include_str!("../../../../plugins/js/autoflow.js");

/// Runs `plugin new`; returns the exit code.
pub fn run(args: &NewArgs) -> i32 {
    match scaffold(args) {
        Ok(dir) => {
            println!(
                "created {}: build and test it with {}/test.sh",
                dir.display(),
                dir.display()
            );
            0
        }
        Err(e) => {
            eprintln!("plugin new: {e}");
            1
        }
    }
}

/// Writes the project; returns its folder.
pub fn scaffold(args: &NewArgs) -> Result<PathBuf, String> {
    let name = &args.name;
    let valid = name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !valid {
        return Err(format!(
            "invalid name {name:?}: use lowercase letters, digits and dashes, starting with a letter"
        ));
    }
    let dir = args.dir.join(name);
    if dir.exists() {
        return Err(format!("{} already exists", dir.display()));
    }
    let files = files(args)?;
    for (rel, text) in &files {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    make_executable(&dir.join("test.sh"))?;
    Ok(dir)
}

/// What building and `test.sh` leave in the project's folder, for its `.gitignore`: the
/// component, the test's output and log, and what `autoflow run` writes (its data folder with
/// the compiled-plugin cache, and the dead letters).
const TEST_OUTPUTS: &str =
    "*.wasm\n/test/out\n/test/run.log\n/autoflow-data/\n*.dead-letters.jsonl\n";

/// The project's files: (path relative to its folder, text).
fn files(args: &NewArgs) -> Result<Vec<(String, String)>, String> {
    let name = args.name.as_str();
    let module = name.replace('-', "_");
    let (kind, world) = match args.kind {
        Kind::Source => ("source", "source-plugin"),
        Kind::Transform => ("transform", "transform-plugin"),
        Kind::Sink => ("sink", "sink-plugin"),
    };
    let (language, build, code) = match args.lang {
        Lang::Rust => (
            "Rust",
            format!(
                "cargo test --quiet\ncargo build --quiet --release --target wasm32-wasip2\n\
                 cp \"${{CARGO_TARGET_DIR:-target}}/wasm32-wasip2/release/{module}.wasm\" {name}.wasm"
            ),
            template_rust(args.kind),
        ),
        Lang::Python => (
            "Python",
            format!(
                "\"${{COMPONENTIZE_PY:-componentize-py}}\" -d wit -w {world} componentize -p . {module} -o {name}.wasm"
            ),
            template_python(args.kind),
        ),
        Lang::Js => (
            "JavaScript",
            format!(
                "[ -n \"${{COMPONENTIZE_JS:-}}\" ] || [ -x node_modules/.bin/componentize-js ] || npm install --no-audit --no-fund\n\
                 \"${{COMPONENTIZE_JS:-node_modules/.bin/componentize-js}}\" {name}.js --wit wit -n {world} -d http fetch-event -o {name}.wasm"
            ),
            template_js(args.kind),
        ),
    };
    // JS has no file API, so its sink logs: the test looks for the lines in the run's log.
    let writes_file = !(args.lang == Lang::Js && args.kind == Kind::Sink);
    let check = if writes_file {
        "diff -u test/expected.jsonl test/out/out.jsonl"
    } else {
        "grep -q 'record: {\"n\":2}' test/run.log"
    };
    let sink_config = if writes_file {
        "{ path: /out/out.jsonl }"
    } else {
        "{}"
    };
    let sdk = match &args.sdk {
        Some(p) => std::path::absolute(p).map_err(|e| e.to_string())?,
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join("plugin-sdk"),
    };
    let fill = |t: &str| {
        t.replace("{{name}}", name)
            .replace("{{kind}}", kind)
            .replace("{{world}}", world)
            .replace("{{language}}", language)
            .replace(
                "{{build_line}}",
                &build
                    .lines()
                    .filter(|l| !l.starts_with("cargo test"))
                    .collect::<Vec<_>>()
                    .join(" && "),
            )
            .replace("{{build}}", &build)
            .replace("{{check}}", check)
            .replace("{{sink_config}}", sink_config)
            .replace("{{sdk}}", &sdk.display().to_string())
    };
    let mut files = vec![
        (
            "README.md".to_string(),
            fill(include_str!("../templates/README.md")),
        ),
        (
            "test.sh".to_string(),
            fill(include_str!("../templates/test.sh")),
        ),
        (
            "test/pipeline.yaml".to_string(),
            fill(test_pipeline(args.kind)),
        ),
    ];
    let input = "{\"n\":1}\n{\"n\":2}\n";
    let expected = match args.kind {
        Kind::Source => "{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n",
        Kind::Transform => "{\"n\":1,\"seen\":true}\n{\"n\":2,\"seen\":true}\n",
        Kind::Sink => input,
    };
    if args.kind != Kind::Source {
        files.push(("test/in.jsonl".into(), input.into()));
    }
    if writes_file {
        files.push(("test/expected.jsonl".into(), expected.into()));
    }
    match args.lang {
        Lang::Rust => {
            files.push((
                "Cargo.toml".into(),
                fill(include_str!("../templates/rust/Cargo.toml")),
            ));
            files.push(("src/lib.rs".into(), fill(code)));
            files.push((".gitignore".into(), format!("/target\n{TEST_OUTPUTS}")));
        }
        Lang::Python | Lang::Js => {
            let (file, helper_name, helper) = match args.lang {
                Lang::Python => (format!("{module}.py"), "autoflow_plugin.py", PYTHON_HELPER),
                _ => (format!("{name}.js"), "autoflow.js", JS_HELPER),
            };
            files.push((file, fill(code)));
            files.push((helper_name.into(), helper.into()));
            files.extend(
                WIT.iter()
                    .map(|(f, text)| (format!("wit/{f}"), (*text).to_string())),
            );
            files.push((
                ".gitignore".into(),
                format!("{TEST_OUTPUTS}node_modules/\n__pycache__/\n"),
            ));
            if args.lang == Lang::Js {
                files.push((
                    "package.json".into(),
                    fill(include_str!("../templates/js/package.json")),
                ));
            }
        }
    }
    Ok(files)
}

fn test_pipeline(kind: Kind) -> &'static str {
    match kind {
        Kind::Source => include_str!("../templates/test/source.yaml"),
        Kind::Transform => include_str!("../templates/test/transform.yaml"),
        Kind::Sink => include_str!("../templates/test/sink.yaml"),
    }
}

fn template_rust(kind: Kind) -> &'static str {
    match kind {
        Kind::Source => include_str!("../templates/rust/source.rs"),
        Kind::Transform => include_str!("../templates/rust/transform.rs"),
        Kind::Sink => include_str!("../templates/rust/sink.rs"),
    }
}

fn template_python(kind: Kind) -> &'static str {
    match kind {
        Kind::Source => include_str!("../templates/python/source.py"),
        Kind::Transform => include_str!("../templates/python/transform.py"),
        Kind::Sink => include_str!("../templates/python/sink.py"),
    }
}

fn template_js(kind: Kind) -> &'static str {
    match kind {
        Kind::Source => include_str!("../templates/js/source.js"),
        Kind::Transform => include_str!("../templates/js/transform.js"),
        Kind::Sink => include_str!("../templates/js/sink.js"),
    }
}

#[cfg(unix)]
fn make_executable(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| format!("chmod {}: {e}", path.display()))
}

#[cfg(not(unix))]
fn make_executable(_: &Path) -> Result<(), String> {
    Ok(())
}
