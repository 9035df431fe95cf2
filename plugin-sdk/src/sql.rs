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
mod imp {
    use super::{Dialect, Rows, Value};
    use crate::bindings::source::autoflow::plugin::sql as wit;
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
}

#[cfg(not(target_arch = "wasm32"))]
mod imp {
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
}

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
mod tests {
    use serde_json::json;

    use super::*;
    use crate::Error;

    #[test]
    fn json_to_value() {
        assert_eq!(Value::from(&json!(null)), Value::Null);
        assert_eq!(Value::from(&json!(true)), Value::Boolean(true));
        assert_eq!(Value::from(&json!(-42)), Value::Integer(-42));
        assert_eq!(Value::from(&json!(1.5)), Value::Double(1.5));
        assert_eq!(Value::from(&json!("hé")), Value::Text("hé".into()));
        assert_eq!(
            Value::from(&json!(u64::MAX)),
            Value::Text(u64::MAX.to_string())
        );
        assert_eq!(
            Value::from(&json!([1, "a"])),
            Value::Text(r#"[1,"a"]"#.into())
        );
        assert_eq!(
            Value::from(&json!({"b": 1, "a": [true]})),
            Value::Text(r#"{"b":1,"a":[true]}"#.into())
        );
        assert_eq!(Value::from(json!("owned")), Value::Text("owned".into()));
    }

    #[test]
    fn value_to_json() {
        assert_eq!(Value::Null.to_json(), json!(null));
        assert_eq!(Value::Boolean(false).to_json(), json!(false));
        assert_eq!(Value::Integer(i64::MIN).to_json(), json!(i64::MIN));
        assert_eq!(Value::Double(0.25).to_json(), json!(0.25));
        assert_eq!(Value::Double(f64::NAN).to_json(), json!(null));
        assert_eq!(Value::Text("x".into()).to_json(), json!("x"));
        assert_eq!(Value::Bytes(b"hello".to_vec()).to_json(), json!("aGVsbG8="));
        assert_eq!(Json::from(Value::Text("y".into())), json!("y"));
    }

    #[test]
    fn scalars_round_trip_through_json() {
        for j in [json!(null), json!(true), json!(7), json!(-7.5), json!("s")] {
            assert_eq!(Value::from(&j).to_json(), j);
        }
    }

    #[test]
    fn text_of_values() {
        assert_eq!(Value::Null.to_text(), None);
        assert_eq!(Value::Integer(12).to_text().as_deref(), Some("12"));
        assert_eq!(
            Value::Text("a\"b".into()).to_text().as_deref(),
            Some("a\"b")
        );
        assert_eq!(Value::Boolean(true).to_text().as_deref(), Some("true"));
        assert_eq!(Value::Bytes(vec![0xff]).to_text().as_deref(), Some("/w=="));
    }

    #[test]
    fn from_rust_values() {
        assert_eq!(Value::from(3i32), Value::Integer(3));
        assert_eq!(Value::from(Some("a")), Value::Text("a".into()));
        assert_eq!(Value::from(None::<i64>), Value::Null);
        assert_eq!(Value::from(vec![1u8]), Value::Bytes(vec![1]));
    }

    #[test]
    fn base64_matches_rfc4648() {
        for (input, out) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), out);
        }
        assert_eq!(base64(&[0xfb, 0xff]), "+/8=");
    }

    #[test]
    fn rows_as_json_objects() {
        let rows = Rows {
            columns: vec!["id".into(), "name".into(), "raw".into()],
            rows: vec![
                vec![Value::Integer(1), Value::Text("a".into()), Value::Null],
                vec![Value::Integer(2), Value::Null, Value::Bytes(vec![1, 2])],
            ],
        };
        let objects = rows.to_json_objects();
        assert_eq!(
            Json::Object(objects[0].clone()),
            json!({"id": 1, "name": "a", "raw": null})
        );
        assert_eq!(
            Json::Object(objects[1].clone()),
            json!({"id": 2, "name": null, "raw": "AQI="})
        );
        let keys: Vec<_> = objects[0].keys().cloned().collect();
        assert_eq!(keys, ["id", "name", "raw"]);
        assert_eq!(rows.column("name"), Some(1));
        assert_eq!(rows.len(), 2);
    }

    #[test]
    fn dialect_helpers() {
        assert_eq!(Dialect::Postgres.placeholder(3), "$3");
        assert_eq!(Dialect::Sqlite.placeholder(1), "$1");
        assert_eq!(Dialect::Mysql.placeholder(9), "?");
        assert_eq!(
            Dialect::Postgres.quote_ident(r#"we"ird.name"#),
            r#""we""ird.name""#
        );
        assert_eq!(Dialect::Mysql.quote_ident("a`b"), "`a``b`");
        assert_eq!(Dialect::Sqlite.as_str(), "sqlite");
    }

    #[test]
    fn native_calls_say_they_are_unavailable() {
        let e = query("db", "SELECT 1", &[]).err();
        assert!(matches!(e, Some(Error::Fatal(m)) if m.contains("not available in native tests")));
        assert!(Transaction::begin("db").is_err());
        assert!(dialect("db").is_err());
    }

    #[test]
    fn a_fake_database_answers_and_records() {
        use crate::testing::{FakeSql, SqlCall, TestHost};
        let rows = Rows {
            columns: vec!["n".into()],
            rows: vec![vec![Value::Integer(1)]],
        };
        let mut host = TestHost::new().with_sql(
            FakeSql::new(Dialect::Mysql)
                .result(Ok(rows.clone()))
                .affected(Ok(3))
                .affected(Err(Error::Retryable("busy".into()))),
        );
        host.run(|| {
            assert_eq!(dialect("db").unwrap(), Dialect::Mysql);
            assert_eq!(query("db", "SELECT ?", &[Value::from(1)]).unwrap(), rows);
            let tx = Transaction::begin("db").unwrap();
            assert_eq!(tx.execute("UPDATE t SET a = 1", &[]).unwrap(), 3);
            tx.commit().unwrap();
            let tx = begin("db").unwrap();
            assert_eq!(tx.execute("x", &[]), Err(Error::Retryable("busy".into())));
            drop(tx);
            assert!(query("db", "SELECT 2", &[]).unwrap().is_empty());
        });
        let calls = &host.sql.as_ref().unwrap().calls;
        assert_eq!(
            calls[0],
            SqlCall::Dialect {
                connection: "db".into()
            }
        );
        assert!(
            matches!(&calls[1], SqlCall::Query { params, transaction: None, .. } if params == &[Value::Integer(1)])
        );
        assert_eq!(
            calls[2],
            SqlCall::Begin {
                connection: "db".into(),
                transaction: 1
            }
        );
        assert!(matches!(
            &calls[3],
            SqlCall::Execute {
                transaction: Some(1),
                ..
            }
        ));
        assert_eq!(calls[4], SqlCall::Commit { transaction: 1 });
        assert_eq!(
            calls[5],
            SqlCall::Begin {
                connection: "db".into(),
                transaction: 2
            }
        );
        assert_eq!(calls[7], SqlCall::Rollback { transaction: 2 });
        assert_eq!(calls.len(), 9);
    }
}
