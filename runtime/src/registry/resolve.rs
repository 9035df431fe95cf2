//! Resolves a step's plugin reference to component bytes for a local run: a built-in by
//! `name@version` or `name@latest`, a blob by `sha256:<hex>`, or a `.wasm` file by path.
use std::borrow::Cow;
use std::path::{Path, PathBuf};

use super::builtin;
use super::cache::digest_of;
use crate::pipeline::{PluginRef, PluginVersion, version_order};

/// Component bytes and their sha256 (hex).
#[derive(Debug, Clone)]
pub struct Resolved {
    /// sha256 of the bytes, hex.
    pub digest: String,
    /// The component.
    pub bytes: Cow<'static, [u8]>,
}

/// Where a local run finds plugins besides the built-ins.
#[derive(Debug, Clone)]
pub struct LocalPlugins {
    /// Folder of blobs named by their hex digest (the server's blob store).
    pub blob_dir: Option<PathBuf>,
}

impl LocalPlugins {
    /// The bytes `reference` names; relative paths are read against `base_dir`. The error is
    /// the message shown after `steps[i].plugin: `.
    pub fn resolve(&self, reference: &PluginRef, base_dir: &Path) -> Result<Resolved, String> {
        match reference {
            PluginRef::Named { name, version } => {
                let found = builtin::all()
                    .filter(|b| b.name == name)
                    .max_by(|a, b| version_order(a.version, b.version));
                let found = match version {
                    PluginVersion::Latest => found,
                    PluginVersion::Exact(v) => {
                        builtin::all().find(|b| b.name == name && b.version == v)
                    }
                };
                match found {
                    Some(b) => Ok(Resolved {
                        digest: digest_of(b.bytes),
                        bytes: Cow::Borrowed(b.bytes),
                    }),
                    None => Err(format!(
                        "unknown plugin \"{reference}\" (built-in plugins: {})",
                        builtin::all()
                            .map(|b| format!("{}@{}", b.name, b.version))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )),
                }
            }
            PluginRef::Digest(hex) => {
                if let Some(b) = builtin::all().find(|b| digest_of(b.bytes) == *hex) {
                    return Ok(Resolved {
                        digest: hex.clone(),
                        bytes: Cow::Borrowed(b.bytes),
                    });
                }
                let path = self.blob_dir.as_ref().map(|d| d.join(hex));
                match path.as_deref().map(std::fs::read) {
                    Some(Ok(bytes)) if digest_of(&bytes) == *hex => Ok(Resolved {
                        digest: hex.clone(),
                        bytes: Cow::Owned(bytes),
                    }),
                    Some(Ok(_)) => Err(format!("the blob for sha256:{hex} is corrupt")),
                    _ => Err(format!("no plugin with digest sha256:{hex}")),
                }
            }
            PluginRef::Path(path) => {
                let full = crate::pipeline::resolve_path(path, base_dir);
                let bytes = std::fs::read(&full)
                    .map_err(|e| format!("cannot read {}: {e}", full.display()))?;
                Ok(Resolved {
                    digest: digest_of(&bytes),
                    bytes: Cow::Owned(bytes),
                })
            }
        }
    }
}
