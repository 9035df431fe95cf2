//! The store's transactions, which never go back to the pool half done.
//!
//! sqlx's own `Transaction` counts its nesting depth itself and trusts that count: after a
//! failed `COMMIT` or statement (SQLite rolls a whole transaction back by itself on
//! `SQLITE_FULL`, `SQLITE_IOERR` or `SQLITE_NOMEM`), its `ROLLBACK` fails with "no transaction
//! is active", the count stays at 1, and the connection goes back to the pool believing it is
//! inside a transaction. Its next `begin` is then a `SAVEPOINT`, which on SQLite opens a real
//! transaction; the next failure's `ROLLBACK TO SAVEPOINT` leaves that transaction open; and from
//! then on every "commit" on that connection is a `RELEASE` inside a transaction that is never
//! committed, which holds the database's write lock for the life of the process: writes are
//! acknowledged and lost, and every other writer waits out its busy timeout.
//!
//! [`Tx`] begins and ends its transaction with plain statements and does not count: a
//! transaction that did not end in a `COMMIT` or `ROLLBACK` that succeeded (an error, a
//! dropped future, a failed commit) closes its connection instead of returning it, and closing
//! rolls back whatever the database still holds. The pool opens a fresh connection when one is
//! needed, so the store recovers by itself once the cause (a full disk) is gone.
use std::ops::{Deref, DerefMut};

use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool, Executor};

use super::{Backend, Result, Store};

/// A transaction on one pooled connection; derefs to the connection for statements.
pub struct Tx {
    conn: PoolConnection<Any>,
    /// Whether the transaction may still be open (not ended by a statement that succeeded).
    open: bool,
}

impl Store {
    /// Begins a transaction. On SQLite it takes the write lock at once (`BEGIN IMMEDIATE`:
    /// every transaction of the store writes), so it waits in the busy handler instead of
    /// failing when another writer commits between its reads and its first write.
    pub async fn begin(&self) -> Result<Tx> {
        let begin = match self.backend {
            Backend::Sqlite => "BEGIN IMMEDIATE",
            Backend::Postgres => "BEGIN",
        };
        Ok(Tx::begin_on(&self.pool, begin).await?)
    }
}

impl Tx {
    /// Begins a transaction on a connection of `pool` with `begin` (`BEGIN`, or a variant such
    /// as `BEGIN IMMEDIATE`): the store's, or a plugin connection's pool.
    pub async fn begin_on(pool: &AnyPool, begin: &str) -> sqlx::Result<Tx> {
        // A failed BEGIN may have left anything behind: the connection is not kept.
        let mut tx = Tx {
            conn: pool.acquire().await?,
            open: true,
        };
        tx.conn.execute(begin).await?;
        Ok(tx)
    }

    /// Commits. Only an `Ok` means the changes are durable; on an error the connection is
    /// closed, which rolls back whatever is left of the transaction.
    pub async fn commit(mut self) -> sqlx::Result<()> {
        self.conn.execute("COMMIT").await?;
        self.open = false;
        Ok(())
    }

    /// Rolls back (the connection is closed instead if that fails).
    pub async fn rollback(mut self) -> sqlx::Result<()> {
        self.conn.execute("ROLLBACK").await?;
        self.open = false;
        Ok(())
    }
}

impl Drop for Tx {
    fn drop(&mut self) {
        if self.open {
            self.conn.close_on_drop();
        }
    }
}

impl Deref for Tx {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        &self.conn
    }
}

impl DerefMut for Tx {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.conn
    }
}
