//! Part of the tests' build script: builds the plugins written in Python, JavaScript, C and
//! Rust (`plugins/{python,js,c,rust}`) and the hostile guests in those languages
//! (`tests/guests/lang`) with `plugins/build-lang.sh`, one language at a time. A language whose
//! toolchain is missing does not stop the build: its error is recorded in `lang.rs` and the
//! tests that need it fail under CI, or say why they skip elsewhere.
use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::process::Command;

/// The languages build-lang.sh knows.
const LANGS: &[&str] = &["python", "js", "c", "rust"];

/// Builds everything and returns the generated code: `BUILDS`, one
/// `(set, language, output folder, error)` per set (`plugins`, `guests`) and language, the
/// error empty when the build succeeded.
pub fn build(root: &Path, target_dir: &Path, scrub: impl Fn(&mut Command)) -> String {
    let script = root.join("plugins/build-lang.sh");
    let sets = [
        ("plugins", root.join("plugins")),
        ("guests", root.join("tests/guests/lang")),
    ];
    watch(root, &sets);
    let mut code = String::from(
        "/// (set, language, output folder, error or \"\") of each build of `plugins/build-lang.sh`.\n\
         pub const BUILDS: &[(&str, &str, &str, &str)] = &[\n",
    );
    for (set, src) in &sets {
        let out = target_dir.join(format!("lang-{set}"));
        for lang in LANGS.iter().filter(|l| src.join(l).is_dir()) {
            let mut cmd = Command::new("bash");
            cmd.arg(&script)
                .arg("--src")
                .arg(src)
                .arg("--out")
                .arg(&out)
                .arg(lang);
            scrub(&mut cmd);
            let error = match cmd.output() {
                Ok(o) if o.status.success() => String::new(),
                Ok(o) => format!(
                    "{}{}",
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr)
                ),
                Err(e) => format!("cannot run {}: {e}", script.display()),
            };
            if !error.is_empty() {
                println!(
                    "cargo:warning=building the {lang} {set} failed: {}",
                    error.lines().last().unwrap_or_default()
                );
                // A path that never exists: the next build tries again (the toolchain may be
                // installed by then) instead of keeping this failure.
                println!(
                    "cargo:rerun-if-changed={}",
                    out.join(".retry-after-failure").display()
                );
            }
            let dir = out.join(lang).display().to_string();
            let _ = writeln!(
                code,
                "    ({set:?}, {lang:?}, {dir:?}, {:?}),",
                error.trim()
            );
        }
    }
    code.push_str("];\n");
    code
}

/// Reruns the build script when a source, a helper, the script or a toolchain pin changes.
fn watch(root: &Path, sets: &[(&str, std::path::PathBuf)]) {
    let mut paths = vec![
        root.join("plugins/build-lang.sh"),
        root.join("plugins/js/package-lock.json"),
    ];
    for (_, src) in sets {
        for lang in LANGS {
            let Ok(entries) = fs::read_dir(src.join(lang)) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.is_dir() {
                    // A Rust crate: its manifest and sources.
                    paths.extend([path.join("Cargo.toml"), path.join("src")]);
                } else if !path.ends_with("package-lock.json") {
                    paths.push(path);
                }
            }
        }
    }
    for path in paths
        .iter()
        .filter(|p| p.exists() && !p.ends_with("node_modules"))
    {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}
