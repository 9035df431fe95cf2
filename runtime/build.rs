//! Builds the built-in plugins (the `plugins/` workspace) for wasm32-wasip2 and generates
//! `builtin_plugins.rs`, which embeds them in the binary; and generates `ui_assets.rs`, which
//! embeds the web UI's files (`runtime/ui/`).
use std::path::{Path, PathBuf};
use std::process::Command;
use std::{env, fs};

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    let root = manifest.parent().map(Path::to_path_buf).unwrap_or_default();
    let plugins = root.join("plugins");
    embed_ui(&manifest.join("ui"));
    // Not the whole plugins/ folder: it also holds plugins/js/node_modules and the other
    // languages' examples, which are no built-ins. Each member's src is watched below.
    for watched in [
        "plugins/Cargo.toml",
        "plugins/Cargo.lock",
        "plugin-sdk/src",
        "plugin-sdk/Cargo.toml",
        "wit",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    let target_dir = env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("wasm-plugins");
    let crates = plugin_crates(&plugins);
    for c in &crates {
        println!(
            "cargo:rerun-if-changed={}",
            plugins.join(&c.0).join("src").display()
        );
        println!(
            "cargo:rerun-if-changed={}",
            plugins.join(&c.0).join("Cargo.toml").display()
        );
    }
    ensure_wasm_target();
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args([
        "build",
        "--release",
        "--target",
        "wasm32-wasip2",
        "--manifest-path",
    ])
    .arg(plugins.join("Cargo.toml"))
    .env("CARGO_TARGET_DIR", &target_dir);
    for (k, _) in env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k == "RUSTFLAGS"
            || k.starts_with("CARGO_ENCODED_RUSTFLAGS")
            || k.starts_with("CARGO_BUILD_")
            || k.starts_with("CARGO_PROFILE_")
            || k.starts_with("CARGO_CFG_")
            || k == "RUSTC_WRAPPER"
            || k == "RUSTC_WORKSPACE_WRAPPER"
            || k.starts_with("CARGO_FEATURE_")
            || k == "TARGET"
            || k == "RUSTC"
            || k == "RUSTDOC"
            || k == "CARGO_MAKEFLAGS"
        {
            cmd.env_remove(&k);
        }
    }
    let out = cmd
        .output()
        .unwrap_or_else(|e| fail(&format!("cannot run cargo for plugins/: {e}")));
    if !out.status.success() {
        fail(&format!(
            "building the built-in plugins failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let wasm_dir = target_dir.join("wasm32-wasip2").join("release");
    let mut code = String::from(
        "/// Built-in plugins: (name, version, component bytes).\npub const BUILTINS: &[(&str, &str, &[u8])] = &[\n",
    );
    for (dir, name, version) in &crates {
        let file = wasm_dir.join(format!("{}.wasm", name.replace('-', "_")));
        if !file.exists() {
            fail(&format!("plugin {dir}: {} was not built", file.display()));
        }
        code.push_str(&format!(
            "    ({name:?}, {version:?}, include_bytes!({:?})),\n",
            file.display().to_string()
        ));
    }
    code.push_str("];\n");
    let out_dir = PathBuf::from(env::var("OUT_DIR").unwrap_or_default());
    if let Err(e) = fs::write(out_dir.join("builtin_plugins.rs"), code) {
        fail(&format!("cannot write builtin_plugins.rs: {e}"));
    }
}

/// (folder, package name, version) of each member crate of plugins/ that is a cdylib.
fn plugin_crates(plugins: &Path) -> Vec<(String, String, String)> {
    let mut found = Vec::new();
    let Ok(entries) = fs::read_dir(plugins) else {
        return found;
    };
    for e in entries.flatten() {
        let toml = e.path().join("Cargo.toml");
        let Ok(text) = fs::read_to_string(&toml) else {
            continue;
        };
        if !text.contains("cdylib") {
            continue;
        }
        let field = |key: &str| {
            text.lines().find_map(|l| {
                l.trim().strip_prefix(key).map(|r| {
                    r.trim()
                        .trim_start_matches('=')
                        .trim()
                        .trim_matches('"')
                        .to_string()
                })
            })
        };
        let name = field("name").unwrap_or_default();
        let version = match field("version") {
            Some(v) if !v.contains('.') || v.contains("workspace") => workspace_version(plugins),
            Some(v) => v,
            None => workspace_version(plugins),
        };
        found.push((e.file_name().to_string_lossy().into_owned(), name, version));
    }
    found.sort();
    found
}

/// Adds the `wasm32-wasip2` target to the toolchain when it is missing: `rust-toolchain.toml`
/// lists it, but rustup adds a file's targets only when it installs the toolchain itself.
fn ensure_wasm_target() {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let libdir = Command::new(&rustc)
        .args(["--print", "target-libdir", "--target", "wasm32-wasip2"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    if libdir.is_some_and(|d| d.is_dir()) {
        return;
    }
    let added = Command::new("rustup")
        .args(["target", "add", "wasm32-wasip2"])
        .output();
    if !added.is_ok_and(|o| o.status.success()) {
        fail(
            "the Rust target wasm32-wasip2 is missing and could not be added: run `rustup target add wasm32-wasip2`",
        );
    }
}

fn workspace_version(plugins: &Path) -> String {
    fs::read_to_string(plugins.join("Cargo.toml"))
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                l.trim().strip_prefix("version").map(|r| {
                    r.trim()
                        .trim_start_matches('=')
                        .trim()
                        .trim_matches('"')
                        .to_string()
                })
            })
        })
        .unwrap_or_else(|| "0.1.0".into())
}

/// Writes `ui_assets.rs`: `UI_ASSETS`, each file under `dir` (sorted, subfolders included) as
/// (path from `dir` with `/`, bytes).
fn embed_ui(dir: &Path) {
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        println!("cargo:rerun-if-changed={}", d.display());
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            if path.is_dir() {
                pending.push(path);
            } else if let Ok(rel) = path.strip_prefix(dir) {
                println!("cargo:rerun-if-changed={}", path.display());
                let rel = rel.to_string_lossy().replace('\\', "/");
                files.push((rel, path.display().to_string()));
            }
        }
    }
    files.sort();
    let mut code = String::from(
        "/// The web UI's files: (path under runtime/ui/, bytes).\npub const UI_ASSETS: &[(&str, &[u8])] = &[\n",
    );
    for (rel, abs) in &files {
        code.push_str(&format!("    ({rel:?}, include_bytes!({abs:?})),\n"));
    }
    code.push_str("];\n");
    let out_dir = PathBuf::from(env::var("OUT_DIR").unwrap_or_default());
    if let Err(e) = fs::write(out_dir.join("ui_assets.rs"), code) {
        fail(&format!("cannot write ui_assets.rs: {e}"));
    }
}

fn fail(msg: &str) -> ! {
    eprintln!("{msg}");
    std::process::exit(1)
}
