//! Natively, the calls go to the current test's [`FakeSql`]; without one, they fail.
use super::{Dialect, Rows, Value};
use crate::testing::{FakeSql, SqlCall, try_with_host};
use crate::{Error, Result};

fn with_fake<T>(what: &str, f: impl FnOnce(&mut FakeSql) -> Result<T>) -> Result<T> {
    try_with_host(|h| h.sql.as_mut().map(f))
        .flatten()
        .unwrap_or_else(|| {
            Err(Error::Fatal(format!(
                "sql::{what} is not available in native tests (give the TestHost a FakeSql)"
            )))
        })
}

fn query_in(c: &str, s: &str, p: &[Value], transaction: Option<u32>) -> Result<Rows> {
    with_fake("query", |f| {
        f.calls.push(SqlCall::Query {
            connection: c.into(),
            statement: s.into(),
            params: p.to_vec(),
            transaction,
        });
        f.results.pop_front().unwrap_or_else(|| Ok(Rows::default()))
    })
}

fn execute_in(c: &str, s: &str, p: &[Value], transaction: Option<u32>) -> Result<u64> {
    with_fake("execute", |f| {
        f.calls.push(SqlCall::Execute {
            connection: c.into(),
            statement: s.into(),
            params: p.to_vec(),
            transaction,
        });
        f.affected.pop_front().unwrap_or(Ok(0))
    })
}

pub fn query(c: &str, s: &str, p: &[Value]) -> Result<Rows> {
    query_in(c, s, p, None)
}
pub fn execute(c: &str, s: &str, p: &[Value]) -> Result<u64> {
    execute_in(c, s, p, None)
}
pub fn dialect(c: &str) -> Result<Dialect> {
    with_fake("dialect", |f| {
        f.calls.push(SqlCall::Dialect {
            connection: c.into(),
        });
        Ok(f.dialect)
    })
}

/// A transaction of the fake database; dropped unfinished, it records a rollback.
#[derive(Debug)]
pub struct Tx {
    connection: String,
    id: u32,
    done: bool,
}

pub fn begin(c: &str) -> Result<Tx> {
    with_fake("begin", |f| {
        f.transactions += 1;
        let id = f.transactions;
        f.calls.push(SqlCall::Begin {
            connection: c.into(),
            transaction: id,
        });
        Ok(Tx {
            connection: c.into(),
            id,
            done: false,
        })
    })
}

impl Tx {
    pub fn query(&self, s: &str, p: &[Value]) -> Result<Rows> {
        query_in(&self.connection, s, p, Some(self.id))
    }
    pub fn execute(&self, s: &str, p: &[Value]) -> Result<u64> {
        execute_in(&self.connection, s, p, Some(self.id))
    }
    pub fn commit(mut self) -> Result<()> {
        self.done = true;
        let transaction = self.id;
        with_fake("Transaction::commit", |f| {
            f.calls.push(SqlCall::Commit { transaction });
            Ok(())
        })
    }
    pub fn rollback(mut self) -> Result<()> {
        self.done = true;
        let transaction = self.id;
        with_fake("Transaction::rollback", |f| {
            f.calls.push(SqlCall::Rollback { transaction });
            Ok(())
        })
    }
}

impl Drop for Tx {
    fn drop(&mut self) {
        if !self.done {
            let transaction = self.id;
            try_with_host(|h| {
                if let Some(f) = h.sql.as_mut() {
                    f.calls.push(SqlCall::Rollback { transaction });
                }
            });
        }
    }
}
