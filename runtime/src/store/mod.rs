//! The server's database: one SQL text for SQLite and PostgreSQL through sqlx's `Any` driver
//! (`$1` placeholders, `BIGINT` times in Unix milliseconds, `TEXT` ids), migrations embedded per
//! database (`runtime/migrations/sqlite`, `runtime/migrations/postgres`).
//!
//! Every tenant-owned row carries `tenant_id`, and every function that reads or changes one
//! takes the tenant and filters on it.
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};

pub mod alert_clock;
pub mod alert_rules;
pub mod alerts;
pub mod audit;
pub mod audit_chain;
pub mod auth_failures;
pub mod backfills;
pub mod channels;
pub mod checkpoints;
pub mod claim;
pub mod dead_letters;
#[cfg(test)]
mod drift;
pub mod finish;
pub mod health;
pub mod idempotency;
pub mod key_check;
pub mod pipelines;
pub mod plugins;
pub mod queue;
pub mod runs;
pub mod schedules;
pub mod secrets;
pub mod tokens;
pub mod tx;
pub mod users;
pub mod workers;

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or failed a statement.
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// A migration failed.
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The database URL names a database this server does not support.
    #[error("unsupported database URL {0:?} (expected sqlite://... or postgres://...)")]
    Url(String),
    /// A row holds something it should not (a bad role, broken JSON).
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// Plugin data could not be sealed, or a sealed row does not open: it was sealed for
    /// another tenant, pipeline or step, with another key, or changed.
    #[error("sealed data: {0}")]
    Sealed(String),
}

impl StoreError {
    /// Whether the database (or the disk under it) is out of space: SQLite's `SQLITE_FULL`,
    /// PostgreSQL's `disk_full` (53100), or `ENOSPC` from the file system.
    pub fn is_disk_full(&self) -> bool {
        match self.code() {
            Some(DbCode::Sqlite(code)) => code == SQLITE_FULL,
            Some(DbCode::Postgres(state)) => state == "53100",
            None => {
                matches!(self, StoreError::Db(sqlx::Error::Io(e)) if e.raw_os_error() == Some(ENOSPC))
            }
        }
    }

    /// Whether the same statement may well succeed if tried again: a full disk, a busy or
    /// locked SQLite file, an I/O error, a lost or refused connection, a PostgreSQL
    /// connection exception, lack of resources, shutdown, serialization failure or deadlock.
    pub fn is_transient(&self) -> bool {
        match self.code() {
            Some(DbCode::Sqlite(code)) => matches!(
                code,
                SQLITE_BUSY | SQLITE_LOCKED | SQLITE_IOERR | SQLITE_FULL
            ),
            Some(DbCode::Postgres(state)) => ["08", "53", "57P", "40001", "40P01"]
                .iter()
                .any(|p| state.starts_with(p)),
            None => matches!(
                self,
                StoreError::Db(
                    sqlx::Error::Io(_)
                        | sqlx::Error::PoolTimedOut
                        | sqlx::Error::WorkerCrashed
                        | sqlx::Error::Tls(_)
                )
            ),
        }
    }

    /// The database's own code for the error, if the database gave one.
    fn code(&self) -> Option<DbCode> {
        let StoreError::Db(sqlx::Error::Database(d)) = self else {
            return None;
        };
        let code = d.code()?;
        if d.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
            // Decimal text of the extended result code; its low byte is the primary code.
            code.parse::<i32>().ok().map(|c| DbCode::Sqlite(c & 0xff))
        } else {
            Some(DbCode::Postgres(code.into_owned()))
        }
    }
}

/// A database's code for an error.
enum DbCode {
    /// SQLite's primary result code.
    Sqlite(i32),
    /// PostgreSQL's SQLSTATE.
    Postgres(String),
}

/// SQLite's primary result codes the store tells apart.
const SQLITE_BUSY: i32 = 5;
const SQLITE_LOCKED: i32 = 6;
const SQLITE_IOERR: i32 = 10;
const SQLITE_FULL: i32 = 13;
/// The file system's "no space left on device".
const ENOSPC: i32 = 28;

/// `Result` with [`StoreError`].
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Which database is behind the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// The connection pool and what it talks to; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    /// The pool.
    pub pool: AnyPool,
    /// The database behind it.
    pub backend: Backend,
    /// The URL it was opened with (PostgreSQL workers open a listening connection with it).
    pub url: String,
    /// On SQLite, claims take turns within the process (the one process using the file).
    claim_lock: std::sync::Arc<tokio::sync::Mutex<()>>,
    /// The last write probe of [`Store::health`].
    last_probe: std::sync::Arc<health::LastProbe>,
    /// Woken when a commit of this process wrote alerts (their deliverer waits on it).
    pub alerts_wake: std::sync::Arc<tokio::sync::Notify>,
}

/// The default database URL: SQLite file `autoflow.db` in `data_dir`.
pub fn default_url(data_dir: &Path) -> String {
    format!(
        "sqlite://{}?mode=rwc",
        data_dir.join("autoflow.db").display()
    )
}

impl Store {
    /// Connects to `url` (`sqlite://...` or `postgres://...`) and runs the migrations.
    /// SQLite connections use WAL, `synchronous=FULL` and foreign keys.
    pub async fn connect(url: &str) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(StoreError::Url(url.to_string()));
        };
        let options = AnyConnectOptions::from_str(url)?;
        let mut pool = AnyPoolOptions::new().acquire_timeout(Duration::from_secs(30));
        pool = match backend {
            Backend::Sqlite => pool.max_connections(8).after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute(
                        "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; \
                         PRAGMA busy_timeout=10000;",
                    )
                    .await?;
                    Ok(())
                })
            }),
            Backend::Postgres => pool.max_connections(16),
        };
        let pool = pool.connect_with(options).await?;
        match backend {
            Backend::Sqlite => sqlx::migrate!("./migrations/sqlite").run(&pool).await?,
            Backend::Postgres => sqlx::migrate!("./migrations/postgres").run(&pool).await?,
        }
        Ok(Self {
            pool,
            backend,
            url: url.to_string(),
            claim_lock: Default::default(),
            last_probe: Default::default(),
            alerts_wake: Default::default(),
        })
    }
}

impl Store {
    /// The SQLite database's file (`None` on PostgreSQL or for an in-memory database).
    pub fn sqlite_file(&self) -> Option<std::path::PathBuf> {
        let rest = self.url.strip_prefix("sqlite:")?;
        let path = rest.strip_prefix("//").unwrap_or(rest).split('?').next()?;
        (!path.is_empty() && path != ":memory:").then(|| std::path::PathBuf::from(path))
    }
}

/// Now, in Unix milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// `n` random bytes as lowercase hex (ids that cannot be guessed or enumerated).
pub fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    if getrandom::fill(&mut bytes).is_err() {
        // No OS randomness: fall back to time and a counter, still unique per process.
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let c = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let seed = format!("{}-{c}-{}", now_ms(), std::process::id());
        return crate::pipeline::digest_of(seed.as_bytes())[..n * 2].to_string();
    }
    hex::encode(bytes)
}

/// Whether `e` is a unique-constraint violation (a row with that key exists).
pub fn is_unique_violation(e: &StoreError) -> bool {
    match e {
        StoreError::Db(sqlx::Error::Database(d)) => d.is_unique_violation(),
        _ => false,
    }
}

/// `ids` as the inside of an SQL `IN (...)`: numbers only, and `-1` (no row has it) when empty.
pub(crate) fn id_list(ids: &[i64]) -> String {
    if ids.is_empty() {
        return "-1".to_string();
    }
    ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
}

/// Worker labels as stored: comma-separated.
pub(crate) fn labels_text(labels: &[String]) -> String {
    labels.join(",")
}

/// Worker labels from their stored text.
pub(crate) fn labels_of(text: &str) -> Vec<String> {
    text.split(',')
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// Column `column` of `row` read as one of the vocabulary's enums ([`crate::status`]): stored
/// as its text; a text it does not know is a corrupt row.
pub(crate) fn text_column<T>(row: &sqlx::any::AnyRow, column: &str) -> Result<T>
where
    T: FromStr<Err = crate::status::UnknownText>,
{
    let text: String = sqlx::Row::try_get(row, column)?;
    text.parse()
        .map_err(|e: crate::status::UnknownText| StoreError::Corrupt(format!("{column}: {e}")))
}
