//! The SQL form of `lookup`: the rows of a table on a granted connection whose column matches
//! the keys, `KEYS_PER_QUERY` keys per `SELECT ... WHERE column IN (...)`.
use autoflow_plugin_sdk::Error;
use autoflow_plugin_sdk::sql::{self, Dialect, Value as SqlValue};
use serde_json::{Map, Value};

use crate::{Answer, number_text};

/// Keys in one statement at most.
pub const KEYS_PER_QUERY: usize = 500;

/// A table looked in.
#[derive(Debug)]
pub struct Table {
    /// The granted connection.
    pub connection: String,
    /// The table's name.
    pub table: String,
    /// Its schema, if named.
    pub schema: Option<String>,
    /// The column matched against the keys.
    pub column: String,
    /// The columns wanted (`None`: all).
    pub columns: Option<Vec<String>>,
    /// The connection's dialect, once asked.
    pub dialect: Option<Dialect>,
}

/// A column's value as a key is compared.
pub fn key_text_of_sql(v: &SqlValue) -> Option<String> {
    match v {
        SqlValue::Null => None,
        SqlValue::Boolean(b) => Some(b.to_string()),
        SqlValue::Integer(i) => Some(i.to_string()),
        SqlValue::Double(x) => Some(number_text(*x)),
        SqlValue::Text(s) => Some(s.clone()),
        SqlValue::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
    }
}

impl Table {
    /// `SELECT` the matched column and the wanted ones for `n` keys.
    fn statement(&self, d: Dialect, n: usize) -> String {
        let q = |s: &str| d.quote_ident(s);
        let table = match &self.schema {
            Some(s) => format!("{}.{}", q(s), q(&self.table)),
            None => q(&self.table),
        };
        let columns = match &self.columns {
            Some(cs) => {
                let mut list = vec![q(&self.column)];
                list.extend(cs.iter().map(|c| q(c)));
                list.join(", ")
            }
            None => "*".to_string(),
        };
        let placeholders: Vec<String> = (1..=n).map(|i| d.placeholder(i)).collect();
        format!(
            "SELECT {columns} FROM {table} WHERE {} IN ({})",
            q(&self.column),
            placeholders.join(", ")
        )
    }

    /// The rows of `keys`, each with its key, in the order the database gave them.
    pub fn fetch(&mut self, keys: &[(String, SqlValue)]) -> Result<Answer, Error> {
        let d = match self.dialect {
            Some(d) => d,
            None => *self.dialect.insert(sql::dialect(&self.connection)?),
        };
        let mut answer = Answer::default();
        for chunk in keys.chunks(KEYS_PER_QUERY) {
            let params: Vec<SqlValue> = chunk.iter().map(|(_, v)| v.clone()).collect();
            let rows = sql::query(&self.connection, &self.statement(d, chunk.len()), &params)
                .map_err(|e| e.context(&format!("looking up in {:?}", self.table)))?;
            answer.queries += 1;
            let at = rows
                .columns
                .iter()
                .position(|c| c == &self.column)
                .ok_or_else(|| {
                    Error::InvalidConfig(format!(
                        "table {:?} has no column {:?}",
                        self.table, self.column
                    ))
                })?;
            for row in rows.rows {
                let Some(k) = row.get(at).and_then(key_text_of_sql) else {
                    continue;
                };
                let fields: Map<String, Value> = rows
                    .columns
                    .iter()
                    .zip(row.iter())
                    .enumerate()
                    .filter(|(i, _)| *i != at)
                    .map(|(_, (name, v))| (name.clone(), Value::from(v)))
                    .collect();
                answer.rows.push((k, fields));
            }
        }
        Ok(answer)
    }

    /// Why a record whose key has no row is rejected.
    pub fn miss(&self, key: &str) -> String {
        format!("no row in {:?} with {} = {key}", self.table, self.column)
    }
}
