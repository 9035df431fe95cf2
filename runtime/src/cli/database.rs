//! The server's database opened directly (`--data-dir` / `--database`), for the commands that
//! work without a running server or a token: `token`, `user`, `audit`.
use std::path::PathBuf;

use anyhow::Context;

use crate::store::{self, Store};

/// Where the server's database is.
#[derive(Debug, Clone, clap::Args)]
pub struct DatabaseArgs {
    /// Data directory of the server.
    #[arg(long, env = "AUTOFLOW_DATA_DIR", default_value = "./autoflow-data")]
    pub data_dir: PathBuf,
    /// Database URL. Default: SQLite in the data directory.
    #[arg(long, env = "AUTOFLOW_DATABASE")]
    pub database: Option<String>,
}

impl DatabaseArgs {
    /// The database URL.
    pub fn url(&self) -> String {
        self.database
            .clone()
            .unwrap_or_else(|| store::default_url(&self.data_dir))
    }

    /// Opens the database (migrating it); an error when there is none in the data directory
    /// and no `--database`.
    pub async fn open(&self) -> anyhow::Result<Store> {
        if self.database.is_none() && !self.data_dir.join("autoflow.db").exists() {
            anyhow::bail!(
                "no database in {} (start the server once, or pass --database)",
                self.data_dir.display()
            );
        }
        Store::connect(&self.url())
            .await
            .context("cannot open the database")
    }
}
