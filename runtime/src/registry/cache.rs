//! The compiled-artifact cache: native code of each component, on disk by (digest, engine
//! fingerprint), so a restart loads a plugin in milliseconds instead of recompiling it.
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::component::Component;

/// Errors of the cache.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The directory or a file could not be used.
    #[error("{path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The bytes are not a component wasmtime can compile.
    #[error("not a loadable component: {0}")]
    Compile(String),
}

impl CacheError {
    /// Whether a file could not be written for lack of space (`ENOSPC`, `EDQUOT`).
    pub fn is_disk_full(&self) -> bool {
        matches!(self, CacheError::Io { source, .. } if matches!(source.raw_os_error(), Some(28 | 122)))
    }
}

/// Where a loaded component's native code came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// Compiled from the component bytes just now.
    Compiled,
    /// Read from the on-disk cache, without compiling.
    Cache,
}

/// A directory of compiled components for one engine configuration.
#[derive(Debug, Clone)]
pub struct CompiledCache {
    dir: PathBuf,
    fingerprint: String,
}

/// Feeds a `Hash` value into sha256, for a fingerprint that is stable across processes.
struct ShaHasher(Sha256);

impl Hasher for ShaHasher {
    fn finish(&self) -> u64 {
        0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

/// A short stable name for everything that makes compiled code compatible: wasmtime's
/// version, target and settings.
pub fn engine_fingerprint(engine: &wasmtime::Engine) -> String {
    let mut h = ShaHasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut h);
    hex::encode(&h.0.finalize()[..8])
}

impl CompiledCache {
    /// Uses (and creates) `dir`.
    pub fn open(dir: &Path, engine: &wasmtime::Engine) -> Result<Self, CacheError> {
        std::fs::create_dir_all(dir).map_err(|source| CacheError::Io {
            path: dir.into(),
            source,
        })?;
        Ok(Self {
            dir: dir.to_path_buf(),
            fingerprint: engine_fingerprint(engine),
        })
    }

    fn path_of(&self, digest: &str) -> PathBuf {
        self.dir
            .join(format!("{digest}-{}.cwasm", self.fingerprint))
    }

    /// The compiled component for `digest`: from the cache when present and valid, otherwise
    /// compiled from `bytes` and stored (atomically: write, fsync, rename).
    pub fn load_or_compile(
        &self,
        engine: &wasmtime::Engine,
        digest: &str,
        bytes: &[u8],
    ) -> Result<(Component, Origin), CacheError> {
        let path = self.path_of(digest);
        if path.exists() {
            // SAFETY: files in this directory are written only by `store` below, from
            // `Component::serialize` of this same engine configuration (the fingerprint is in
            // the name); wasmtime also checks the header before using it.
            #[allow(unsafe_code)]
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(c) => return Ok((c, Origin::Cache)),
                Err(e) => tracing::warn!("ignoring unusable cache entry {}: {e:#}", path.display()),
            }
        }
        let component = Component::from_binary(engine, bytes)
            .map_err(|e| CacheError::Compile(format!("{e:#}")))?;
        match component.serialize() {
            Ok(compiled) => {
                if let Err(e) = self.store(&path, &compiled) {
                    tracing::warn!("cannot cache compiled plugin: {e}");
                }
            }
            Err(e) => tracing::warn!("cannot serialize compiled plugin: {e:#}"),
        }
        Ok((component, Origin::Compiled))
    }

    fn store(&self, path: &Path, bytes: &[u8]) -> Result<(), CacheError> {
        write_file_atomic(path, bytes)
    }
}

pub use crate::pipeline::digest_of;

/// Writes `bytes` to `path` atomically; shared by the blob store and this cache.
pub(crate) fn write_file_atomic(path: &Path, bytes: &[u8]) -> Result<(), CacheError> {
    let io = |source| CacheError::Io {
        path: path.to_path_buf(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile_in(dir).map_err(io)?;
    tmp.1.write_all(bytes).map_err(io)?;
    tmp.1.sync_all().map_err(io)?;
    std::fs::rename(&tmp.0, path).map_err(io)?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

fn tempfile_in(dir: &Path) -> std::io::Result<(PathBuf, std::fs::File)> {
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let path = dir.join(format!(".tmp-{}-{nonce}", std::process::id()));
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)?;
    Ok((path, file))
}
