//! The blob store: component bytes in files named by their sha256 (hex) under one folder,
//! written atomically (write, fsync, rename). [`super::LocalPlugins`] reads the same layout.
use std::path::{Path, PathBuf};

use super::cache::{CacheError, digest_of, write_file_atomic};

/// A folder of blobs by digest.
#[derive(Debug, Clone)]
pub struct BlobStore {
    dir: PathBuf,
}

impl BlobStore {
    /// Uses (and creates) `dir`.
    pub fn open(dir: &Path) -> Result<Self, CacheError> {
        std::fs::create_dir_all(dir).map_err(|source| CacheError::Io {
            path: dir.into(),
            source,
        })?;
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path_of(&self, digest: &str) -> Option<PathBuf> {
        let hex_ok = digest.len() == 64
            && digest
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        hex_ok.then(|| self.dir.join(digest))
    }

    /// Stores `bytes` (unless a valid copy is there) and returns their digest.
    pub fn put(&self, bytes: &[u8]) -> Result<String, CacheError> {
        let digest = digest_of(bytes);
        let path = self.dir.join(&digest);
        let intact = std::fs::metadata(&path).is_ok_and(|m| m.len() == bytes.len() as u64);
        if !intact {
            write_file_atomic(&path, bytes)?;
        }
        Ok(digest)
    }

    /// The bytes of `digest`, checked against it; `None` if absent or corrupt.
    pub fn get(&self, digest: &str) -> Option<Vec<u8>> {
        let bytes = std::fs::read(self.path_of(digest)?).ok()?;
        (digest_of(&bytes) == digest).then_some(bytes)
    }
}
