//! Builds the test guests (the `tests/guests` workspace) for wasm32-wasip2 and writes
//! `$OUT_DIR/guests.rs`: one `pub const NAME: &str` per guest, holding the absolute path of its
//! component, the way wasmtime's `test-programs/artifacts` build script does.
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::{env, fs};

#[path = "build_lang.rs"]
mod build_lang;

/// Variables that cargo sets for this build script (or that configure the outer build) and that
/// must not reach the nested cargo: they would give the guests the host's flags, cfgs or
/// profile, or point it at the outer target dir, whose lock the outer cargo holds.
const LEAKY: &[&str] = &[
    "RUSTFLAGS",
    "RUSTDOCFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_ENCODED_RUSTDOCFLAGS",
    "CARGO_BUILD_RUSTFLAGS",
    "CARGO_BUILD_RUSTDOCFLAGS",
    "CARGO_BUILD_TARGET",
    "CARGO_BUILD_TARGET_DIR",
    "CARGO_BUILD_BUILD_DIR",
    "CARGO_TARGET_DIR",
    "CARGO_MANIFEST_DIR",
    "CARGO_MANIFEST_PATH",
    "CARGO_MANIFEST_LINKS",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_CRATE_NAME",
    "RUSTC_WORKSPACE_WRAPPER",
    "RUSTC_LINKER",
    "OUT_DIR",
    "TARGET",
    "HOST",
    "NUM_JOBS",
    "OPT_LEVEL",
    "DEBUG",
    "PROFILE",
];

/// Prefixes of the same kind: per-package cfgs, features, package metadata, profile overrides
/// and `links` metadata.
const LEAKY_PREFIXES: &[&str] = &[
    "CARGO_CFG_",
    "CARGO_FEATURE_",
    "CARGO_PKG_",
    "CARGO_PROFILE_",
    "DEP_",
];

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    setup_tools(&manifest_dir);
    let root = manifest_dir
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let guests_dir = manifest_dir.join("guests");
    let guests_manifest = guests_dir.join("Cargo.toml");

    let guests = members(&guests_manifest);
    for watched in [
        guests_manifest.clone(),
        guests_dir.join("Cargo.lock"),
        root.join("plugin-sdk/src"),
        root.join("plugin-sdk/Cargo.toml"),
        root.join("wit"),
    ] {
        println!("cargo:rerun-if-changed={}", watched.display());
    }
    for guest in &guests {
        println!(
            "cargo:rerun-if-changed={}",
            guests_dir.join(guest).join("src").display()
        );
        println!(
            "cargo:rerun-if-changed={}",
            guests_dir.join(guest).join("Cargo.toml").display()
        );
    }
    println!("cargo:rerun-if-env-changed=CARGO_TARGET_DIR");

    // The workspace target dir: $CARGO_TARGET_DIR (relative to the workspace root if relative),
    // else <root>/target. The guests get their own directory in it.
    let workspace_target = match env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => root.join(dir),
        None => root.join("target"),
    };
    let target_dir = workspace_target.join("test-guests");

    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args([
        "build",
        "--release",
        "--target",
        "wasm32-wasip2",
        "--manifest-path",
    ])
    .arg(&guests_manifest)
    .current_dir(&guests_dir);
    for (key, _) in env::vars_os() {
        if leaks(&key) {
            cmd.env_remove(&key);
        }
    }
    // Under Miri, RUSTC and RUSTC_WRAPPER are Miri's own driver, useless for building wasm.
    if env::var_os("CARGO_CFG_MIRI").is_some() {
        cmd.env_remove("RUSTC").env_remove("RUSTC_WRAPPER");
    }
    cmd.env("CARGO_TARGET_DIR", &target_dir);

    let out = match cmd.output() {
        Ok(out) => out,
        Err(e) => fail(&format!("cannot run cargo to build the test guests: {e}")),
    };
    if !out.status.success() {
        fail(&format!(
            "building the test guests ({}) for wasm32-wasip2 failed ({}):\n{}",
            guests_manifest.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }

    let wasm_dir = target_dir.join("wasm32-wasip2").join("release");
    let mut code = String::new();
    let mut all = String::from("/// Every test guest: (crate name, component path).\n");
    all.push_str("pub const ALL: &[(&str, &str)] = &[\n");
    for guest in &guests {
        let file = wasm_dir.join(format!("{}.wasm", guest.replace('-', "_")));
        if !file.is_file() {
            fail(&format!(
                "test guest {guest}: {} was not built",
                file.display()
            ));
        }
        let path = file.display().to_string();
        let constant = guest.to_uppercase().replace('-', "_");
        code.push_str(&format!(
            "/// Path of the `{guest}` test guest component.\npub const {constant}: &str = {path:?};\n"
        ));
        all.push_str(&format!("    ({guest:?}, {constant}),\n"));
    }
    all.push_str("];\n");
    code.push_str(&all);

    let out_dir = PathBuf::from(env::var_os("OUT_DIR").unwrap_or_default());
    write(&out_dir.join("guests.rs"), &code);

    // Plugins in other languages; the C ones need wasmtime's preview1 reactor adapter.
    let adapter = out_dir.join("wasi_snapshot_preview1.reactor.wasm");
    write_bytes(
        &adapter,
        wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
    );
    let lang = build_lang::build(&root, &workspace_target, |cmd| {
        for (key, _) in env::vars_os() {
            if leaks(&key) {
                cmd.env_remove(&key);
            }
        }
        cmd.env("AUTOFLOW_WASI_ADAPTER", &adapter);
    });
    write(&out_dir.join("lang.rs"), &lang);
}

/// Runs `setup-tools.sh`, which installs what the tests need and the machine lacks (the wasm
/// target, the other languages' toolchains), unless `AUTOFLOW_SKIP_SETUP` is set. What it
/// could not install is one warning line each; the builds that need it then fail, named.
fn setup_tools(manifest_dir: &Path) {
    println!("cargo:rerun-if-env-changed=AUTOFLOW_SKIP_SETUP");
    let script = manifest_dir.join("setup-tools.sh");
    println!("cargo:rerun-if-changed={}", script.display());
    // The locks of what it installs with npm: a changed one is installed again.
    for lock in [
        "browser/package-lock.json",
        "../plugins/js/package-lock.json",
    ] {
        println!(
            "cargo:rerun-if-changed={}",
            manifest_dir.join(lock).display()
        );
    }
    if env::var_os("AUTOFLOW_SKIP_SETUP").is_some() {
        return;
    }
    let mut cmd = Command::new("bash");
    cmd.arg(&script);
    for (key, _) in env::vars_os() {
        if leaks(&key) {
            cmd.env_remove(&key);
        }
    }
    match cmd.output() {
        Ok(out) => {
            for line in String::from_utf8_lossy(&out.stderr)
                .lines()
                .filter(|l| l.starts_with("setup-tools:"))
            {
                println!("cargo:warning={line}");
            }
        }
        Err(e) => println!("cargo:warning=cannot run {}: {e}", script.display()),
    }
}

/// Writes `text` to `path`, or stops the build.
fn write(path: &Path, text: &str) {
    write_bytes(path, text.as_bytes());
}

/// Writes `bytes` to `path`, or stops the build.
fn write_bytes(path: &Path, bytes: &[u8]) {
    if let Err(e) = fs::write(path, bytes) {
        fail(&format!("cannot write {}: {e}", path.display()));
    }
}

/// Whether the nested cargo must not inherit the variable `key`.
fn leaks(key: &OsStr) -> bool {
    let Some(key) = key.to_str() else {
        return false;
    };
    LEAKY.contains(&key) || LEAKY_PREFIXES.iter().any(|p| key.starts_with(p))
}

/// The member folders listed in the `members = [...]` array of the guests' workspace manifest.
fn members(manifest: &Path) -> Vec<String> {
    let text = match fs::read_to_string(manifest) {
        Ok(text) => text,
        Err(e) => fail(&format!("cannot read {}: {e}", manifest.display())),
    };
    let from_members: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("members"))
        .collect();
    let from_members = from_members.join("\n");
    let Some(list) = from_members
        .split_once('[')
        .and_then(|(_, rest)| rest.split_once(']'))
        .map(|(list, _)| list)
    else {
        fail(&format!(
            "{}: no `members = [...]` list",
            manifest.display()
        ));
    };
    let members: Vec<String> = list
        .lines()
        .map(|l| l.split('#').next().unwrap_or_default())
        .flat_map(|l| l.split(','))
        .map(|m| m.trim().trim_matches('"').to_string())
        .filter(|m| !m.is_empty())
        .collect();
    if members.is_empty() {
        fail(&format!(
            "{}: the `members` list is empty",
            manifest.display()
        ));
    }
    members
}

/// Stops the build with `msg` on stderr, which cargo shows.
fn fail(msg: &str) -> ! {
    eprintln!("error: {msg}");
    std::process::exit(1)
}
