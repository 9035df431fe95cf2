//! The server's validation policy (allowed mount roots, maximum limits, defaults) and the
//! resolution of host paths against it.

use std::path::{Component, Path, PathBuf};

use super::limits::StepLimits;
use super::model::EffectiveLimits;

/// What the server allows, and the defaults it fills in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationPolicy {
    /// Host folders that mounts may lie under (relative ones are read against the current
    /// directory). Empty: no mounts at all.
    pub allowed_mount_roots: Vec<PathBuf>,
    /// The folder relative paths in the pipeline are read against (the pipeline file's folder).
    pub base_dir: PathBuf,
    /// Largest `memory_mb` a pipeline may ask for.
    pub max_memory_mb: u64,
    /// Largest `timeout_ms` a pipeline may ask for.
    pub max_timeout_ms: u64,
    /// Largest `max_output_bytes` a pipeline may ask for.
    pub max_output_bytes: u64,
    /// Limits for what neither the step nor the pipeline sets.
    pub default_limits: EffectiveLimits,
    /// The limits of a plugin's `describe` call ([`StepLimits::DESCRIBE`] unless the operator
    /// sets `--describe-timeout-ms`).
    pub describe_limits: StepLimits,
}

impl Default for ValidationPolicy {
    /// No mounts, base folder `.`, at most 4096 MiB, 1 hour and 256 MiB of output per call,
    /// [`EffectiveLimits::default`].
    fn default() -> Self {
        ValidationPolicy {
            allowed_mount_roots: Vec::new(),
            base_dir: PathBuf::from("."),
            max_memory_mb: 4096,
            max_timeout_ms: 3_600_000,
            max_output_bytes: 256 << 20,
            default_limits: EffectiveLimits::default(),
            describe_limits: StepLimits::DESCRIBE,
        }
    }
}

impl ValidationPolicy {
    /// Checks a mount's host path as written in a pipeline and returns the path to mount:
    /// absolute, `..`-free and with symlinks resolved as far as the path exists.
    /// The error is the message shown after `steps[i].mounts[j].host: `.
    ///
    /// The executor should mount the returned path, never the path as written (and may call
    /// this again just before mounting).
    pub fn check_mount_host(&self, host: &Path) -> Result<PathBuf, String> {
        if host.as_os_str().is_empty() {
            return Err("must not be empty".to_owned());
        }
        if self.allowed_mount_roots.is_empty() {
            return Err("mounts are not allowed on this server".to_owned());
        }
        let resolved = resolve_path(host, &self.base_dir);
        let cwd = Path::new(".");
        let inside = self
            .allowed_mount_roots
            .iter()
            .any(|root| resolved.starts_with(resolve_path(root, cwd)));
        if inside {
            Ok(resolved)
        } else {
            let roots: Vec<String> = self
                .allowed_mount_roots
                .iter()
                .map(|r| r.display().to_string())
                .collect();
            Err(format!(
                "{host:?} is outside the allowed mount roots ({})",
                roots.join(", ")
            ))
        }
    }
}

/// Makes `path` absolute (against `base`, itself made absolute against the current directory),
/// removes `.` and `..` lexically, then resolves symlinks in the longest part that exists.
pub fn resolve_path(path: &Path, base: &Path) -> PathBuf {
    let joined = base.join(path);
    let absolute = std::path::absolute(&joined).unwrap_or(joined);
    let mut normal = PathBuf::new();
    for component in absolute.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                normal.pop();
            }
            other => normal.push(other),
        }
    }
    for existing in normal.ancestors() {
        if let Ok(canonical) = existing.canonicalize() {
            return match normal.strip_prefix(existing) {
                Ok(rest) if !rest.as_os_str().is_empty() => canonical.join(rest),
                _ => canonical,
            };
        }
    }
    normal
}
