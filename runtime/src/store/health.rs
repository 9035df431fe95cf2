//! The database's health as `/healthz` reports it: whether a write commits now.
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{Result, Store, now_ms};

/// How long a probe's answer stands: at most one write per this, however often it is asked.
const PROBE_EVERY: Duration = Duration::from_secs(1);

/// Free space an embedded database's disk needs to count as healthy. A nearly full disk can
/// still take the probe's one page (into space the write-ahead log already holds) while the
/// next run's rows do not fit.
const MIN_FREE_BYTES: u64 = 1 << 20;

/// Whether the database can commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// A write committed.
    Ok,
    /// The disk is full; the text says what the database answered.
    DiskFull(String),
    /// Another failure (a write lock held past the busy timeout, a lost connection).
    Failing(String),
}

/// The last probe and when it ran.
pub(super) type LastProbe = Mutex<Option<(Instant, Health)>>;

impl Store {
    /// Writes one row and commits it, in a transaction as every write of the store is.
    /// Answers within a second are shared, so that probes cannot flood the database.
    pub async fn health(&self) -> Health {
        if let Some((at, health)) = self
            .last_probe
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            && at.elapsed() < PROBE_EVERY
        {
            return health.clone();
        }
        let health = match self.write_probe().await {
            Ok(()) => self.free_space(),
            Err(e) if e.is_disk_full() => Health::DiskFull(format!(
                "the disk is full: the database cannot commit ({e})"
            )),
            Err(e) => Health::Failing(format!("the database cannot commit ({e})")),
        };
        *self.last_probe.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((Instant::now(), health.clone()));
        health
    }

    /// For SQLite, whether the disk under the database file has [`MIN_FREE_BYTES`] free.
    fn free_space(&self) -> Health {
        let Some(dir) = self
            .sqlite_file()
            .and_then(|f| f.parent().map(std::path::Path::to_path_buf))
        else {
            return Health::Ok;
        };
        match rustix::fs::statvfs(&dir) {
            Ok(fs) if fs.f_bavail.saturating_mul(fs.f_frsize) < MIN_FREE_BYTES => {
                Health::DiskFull(format!(
                    "the disk is full: {} bytes free under the database ({}), less than the {MIN_FREE_BYTES} it needs to commit",
                    fs.f_bavail.saturating_mul(fs.f_frsize),
                    dir.display()
                ))
            }
            _ => Health::Ok,
        }
    }

    async fn write_probe(&self) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO health (id, checked_at) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET checked_at = excluded.checked_at",
        )
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        Ok(tx.commit().await?)
    }
}
