//! SQL on the connections granted to the step (`autoflow:plugin/sql`): queries and statements
//! with typed parameters, transactions, and the dialect of a connection.
//!
//! A step names a connection the pipeline granted it (`connections: [warehouse]`); the host
//! holds the address and credentials. An ungranted name is an [`crate::Error::InvalidConfig`],
//! a failing service an [`crate::Error::Retryable`], a bad statement an [`crate::Error::Fatal`].
//!
//! ```no_run
//! use autoflow_plugin_sdk::sql::{self, Value};
//! # fn main() -> autoflow_plugin_sdk::Result<()> {
//! let rows = sql::query("warehouse", "SELECT id, name FROM users WHERE id > $1", &[Value::from(10)])?;
//! for object in rows.to_json_objects() {
//!     println!("{}", serde_json::Value::Object(object));
//! }
//! let tx = sql::Transaction::begin("warehouse")?;
//! tx.execute("DELETE FROM users WHERE id = $1", &[Value::from(3)])?;
//! tx.commit()?;
//! # Ok(()) }
//! ```
//!
//! In native unit tests (not wasm) the calls go to the [`crate::testing::FakeSql`] of the
//! current [`crate::testing::TestHost`], if it has one, and otherwise return
//! [`crate::Error::Fatal`] ("not available in native tests").
use serde_json::{Map, Value as Json};

use crate::Result;

/// A value passed as a parameter or read from a column.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Value {
    /// SQL NULL.
    #[default]
    Null,
    /// A boolean.
    Boolean(bool),
    /// An integer of any width.
    Integer(i64),
    /// A floating-point number.
    Double(f64),
    /// Text (also what other column types can be cast to in the statement, `col::text`).
    Text(String),
    /// Bytes.
    Bytes(Vec<u8>),
}

impl Value {
    /// Whether this is SQL NULL.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The value as JSON: NULL as `null`, booleans, integers and finite doubles as numbers
    /// (a NaN or infinite double as `null`), text as a string, bytes as a base64 string
    /// (standard alphabet, padded).
    pub fn to_json(&self) -> Json {
        match self {
            Value::Null => Json::Null,
            Value::Boolean(b) => Json::Bool(*b),
            Value::Integer(i) => Json::from(*i),
            Value::Double(d) => serde_json::Number::from_f64(*d).map_or(Json::Null, Json::Number),
            Value::Text(s) => Json::String(s.clone()),
            Value::Bytes(b) => Json::String(base64(b)),
        }
    }

    /// The value as text, as a key or a cursor would carry it: text as it is, numbers and
    /// booleans as written in JSON, bytes in base64; `None` for NULL.
    pub fn to_text(&self) -> Option<String> {
        match self {
            Value::Null => None,
            Value::Text(s) => Some(s.clone()),
            other => Some(match other.to_json() {
                Json::String(s) => s,
                json => json.to_string(),
            }),
        }
    }
}

/// From JSON: `null`, booleans, integers (an integer beyond `i64` becomes the text of its
/// digits, so none is lost), other numbers as doubles, strings as text; arrays and objects as
/// their compact JSON text.
impl From<&Json> for Value {
    fn from(v: &Json) -> Self {
        match v {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Boolean(*b),
            Json::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
                (Some(i), _, _) => Value::Integer(i),
                (None, Some(_), _) => Value::Text(n.to_string()),
                (None, None, Some(f)) => Value::Double(f),
                (None, None, None) => Value::Text(n.to_string()),
            },
            Json::String(s) => Value::Text(s.clone()),
            Json::Array(_) | Json::Object(_) => Value::Text(v.to_string()),
        }
    }
}

impl From<Json> for Value {
    fn from(v: Json) -> Self {
        match v {
            Json::String(s) => Value::Text(s),
            other => Value::from(&other),
        }
    }
}

impl From<&Value> for Json {
    fn from(v: &Value) -> Self {
        v.to_json()
    }
}

impl From<Value> for Json {
    fn from(v: Value) -> Self {
        match v {
            Value::Text(s) => Json::String(s),
            other => other.to_json(),
        }
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Boolean(v)
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Integer(v)
    }
}

impl From<i32> for Value {
    fn from(v: i32) -> Self {
        Value::Integer(v.into())
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Double(v)
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_string())
    }
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}

impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Self {
        Value::Bytes(v)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// The kind of database behind a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// PostgreSQL: `$1` placeholders, `"double quoted"` identifiers.
    Postgres,
    /// MySQL or MariaDB: `?` placeholders, `` `backquoted` `` identifiers.
    Mysql,
    /// SQLite: `$1` placeholders, `"double quoted"` identifiers.
    Sqlite,
}

impl Dialect {
    /// The placeholder of the `n`th parameter (from 1): `$n`, or `?` on MySQL.
    pub fn placeholder(self, n: usize) -> String {
        match self {
            Dialect::Mysql => "?".to_string(),
            Dialect::Postgres | Dialect::Sqlite => format!("${n}"),
        }
    }

    /// `name` quoted as an identifier: in double quotes (backquotes on MySQL), a quote inside
    /// doubled. One identifier: a dot is part of the name, not a schema separator.
    pub fn quote_ident(self, name: &str) -> String {
        let q = match self {
            Dialect::Mysql => '`',
            Dialect::Postgres | Dialect::Sqlite => '"',
        };
        let mut out = String::with_capacity(name.len() + 2);
        out.push(q);
        for c in name.chars() {
            if c == q {
                out.push(q);
            }
            out.push(c);
        }
        out.push(q);
        out
    }

    /// The name as the WIT spells it: `postgres`, `mysql` or `sqlite`.
    pub fn as_str(self) -> &'static str {
        match self {
            Dialect::Postgres => "postgres",
            Dialect::Mysql => "mysql",
            Dialect::Sqlite => "sqlite",
        }
    }
}

/// The rows a query returned.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Rows {
    /// Column names, in order.
    pub columns: Vec<String>,
    /// One list of values per row, in column order.
    pub rows: Vec<Vec<Value>>,
}

impl Rows {
    /// The index of column `name`.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name)
    }

    /// Each row as a JSON object, column name to [`Value::to_json`], in column order (a name
    /// repeated keeps its last value).
    pub fn to_json_objects(&self) -> Vec<Map<String, Json>> {
        self.rows.iter().map(|row| self.row_to_json(row)).collect()
    }

    /// One row (in this result's column order) as a JSON object.
    pub fn row_to_json(&self, row: &[Value]) -> Map<String, Json> {
        self.columns
            .iter()
            .zip(row)
            .map(|(c, v)| (c.clone(), v.to_json()))
            .collect()
    }

    /// The number of rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether there is no row.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

/// Standard base64 (RFC 4648, padded).
pub(crate) fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}
#[cfg(target_arch = "wasm32")]
#[path = "wasm.rs"]
mod imp;
#[cfg(not(target_arch = "wasm32"))]
#[path = "native.rs"]
mod imp;

/// Runs a statement that returns rows on `connection`, in its own transaction.
pub fn query(connection: &str, statement: &str, params: &[Value]) -> Result<Rows> {
    imp::query(connection, statement, params)
}

/// Runs a statement on `connection`; returns the number of rows it changed.
pub fn execute(connection: &str, statement: &str, params: &[Value]) -> Result<u64> {
    imp::execute(connection, statement, params)
}

/// The kind of database `connection` is.
pub fn dialect(connection: &str) -> Result<Dialect> {
    imp::dialect(connection)
}

/// Begins a transaction on `connection` (same as [`Transaction::begin`]).
pub fn begin(connection: &str) -> Result<Transaction> {
    Transaction::begin(connection)
}

/// An open transaction on one connection. Dropped without [`Transaction::commit`], it is
/// rolled back.
#[derive(Debug)]
pub struct Transaction(imp::Tx);

impl Transaction {
    /// Begins a transaction on `connection`.
    pub fn begin(connection: &str) -> Result<Self> {
        imp::begin(connection).map(Transaction)
    }

    /// Runs a statement that returns rows, inside the transaction.
    pub fn query(&self, statement: &str, params: &[Value]) -> Result<Rows> {
        self.0.query(statement, params)
    }

    /// Runs a statement inside the transaction; returns the number of rows it changed.
    pub fn execute(&self, statement: &str, params: &[Value]) -> Result<u64> {
        self.0.execute(statement, params)
    }

    /// Commits.
    pub fn commit(self) -> Result<()> {
        self.0.commit()
    }

    /// Rolls back (dropping the transaction does the same, without reporting an error).
    pub fn rollback(self) -> Result<()> {
        self.0.rollback()
    }
}

#[cfg(test)]
mod tests;
