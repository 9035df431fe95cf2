//! Inside a component: the `autoflow:plugin/sql` imports.
use super::{Dialect, Rows, Value};
use crate::bindings::source::autoflow::plugin0_1_0::sql as wit;
use crate::{Error, Result};

fn value_out(v: &Value) -> wit::Value {
    match v {
        Value::Null => wit::Value::Null,
        Value::Boolean(b) => wit::Value::Boolean(*b),
        Value::Integer(i) => wit::Value::Integer(*i),
        Value::Double(d) => wit::Value::Double(*d),
        Value::Text(s) => wit::Value::Text(s.clone()),
        Value::Bytes(b) => wit::Value::Bytes(b.clone()),
    }
}

fn value_in(v: wit::Value) -> Value {
    match v {
        wit::Value::Null => Value::Null,
        wit::Value::Boolean(b) => Value::Boolean(b),
        wit::Value::Integer(i) => Value::Integer(i),
        wit::Value::Double(d) => Value::Double(d),
        wit::Value::Text(s) => Value::Text(s),
        wit::Value::Bytes(b) => Value::Bytes(b),
    }
}

fn params(p: &[Value]) -> Vec<wit::Value> {
    p.iter().map(value_out).collect()
}

fn rows_in(r: wit::Rows) -> Rows {
    Rows {
        columns: r.columns,
        rows: r
            .rows
            .into_iter()
            .map(|row| row.into_iter().map(value_in).collect())
            .collect(),
    }
}

pub fn query(connection: &str, statement: &str, p: &[Value]) -> Result<Rows> {
    Ok(rows_in(
        wit::query(connection, statement, &params(p)).map_err(Error::from)?,
    ))
}

pub fn execute(connection: &str, statement: &str, p: &[Value]) -> Result<u64> {
    Ok(wit::execute(connection, statement, &params(p))?)
}

pub fn dialect(connection: &str) -> Result<Dialect> {
    Ok(match wit::dialect_of(connection)? {
        wit::Dialect::Postgres => Dialect::Postgres,
        wit::Dialect::Mysql => Dialect::Mysql,
        wit::Dialect::Sqlite => Dialect::Sqlite,
    })
}

/// An open transaction.
#[derive(Debug)]
pub struct Tx(wit::Transaction);

pub fn begin(connection: &str) -> Result<Tx> {
    Ok(Tx(wit::begin(connection)?))
}

impl Tx {
    pub fn query(&self, statement: &str, p: &[Value]) -> Result<Rows> {
        Ok(rows_in(
            self.0.query(statement, &params(p)).map_err(Error::from)?,
        ))
    }
    pub fn execute(&self, statement: &str, p: &[Value]) -> Result<u64> {
        Ok(self.0.execute(statement, &params(p))?)
    }
    pub fn commit(self) -> Result<()> {
        Ok(self.0.commit()?)
    }
    pub fn rollback(self) -> Result<()> {
        Ok(self.0.rollback()?)
    }
}
