//! Prompt dispatch: a run queued in this process wakes its worker through
//! [`Core::wake`](crate::control::Core); on PostgreSQL, a run queued by any process
//! notifies channel `autoflow_runs` when its transaction commits, and every worker listens.
use std::time::Duration;

use crate::control::Core;
use crate::store::Backend;

/// On PostgreSQL, starts listening for queued runs and wakes this process's worker on each;
/// the listener reconnects after a failure. `None` on SQLite (one process: the in-process
/// wake is enough).
pub fn listen(state: &Core) -> Option<tokio::task::JoinHandle<()>> {
    if state.store.backend != Backend::Postgres {
        return None;
    }
    let (url, wake) = (state.store.url.clone(), state.wake.clone());
    Some(tokio::spawn(async move {
        loop {
            match sqlx::postgres::PgListener::connect(&url).await {
                Ok(mut listener) => {
                    if let Err(e) = listener.listen("autoflow_runs").await {
                        tracing::warn!("cannot LISTEN autoflow_runs: {e}");
                    } else {
                        while listener.recv().await.is_ok() {
                            wake.notify_one();
                        }
                    }
                }
                Err(e) => tracing::warn!("cannot connect to listen for runs: {e}"),
            }
            // Runs queued meanwhile are found by the worker's periodic look.
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }))
}
