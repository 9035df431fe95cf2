//! What differs between the databases: how a table's columns are read, how a table is named,
//! the statement (placeholders, casts, the upsert clause), how many parameters one statement
//! takes, and how a JSON value is bound.
use autoflow_plugin_sdk::sql::{Dialect, Value as SqlValue};
use serde_json::value::RawValue;

use crate::statement::{self, Column};

/// The statement that reads a table's columns and their types, in table order, and its
/// parameters; no row means no such table.
pub fn columns_query(
    d: Dialect,
    schema: Option<&str>,
    table: &str,
) -> (&'static str, Vec<SqlValue>) {
    match d {
        Dialect::Postgres => (
            statement::COLUMNS_SQL,
            vec![SqlValue::from(table_sql(d, schema, table).as_str())],
        ),
        // The schema is the database; without one, the connection's.
        Dialect::Mysql => (
            "SELECT CAST(column_name AS CHAR), CAST(column_type AS CHAR) \
             FROM information_schema.columns \
             WHERE table_schema = COALESCE(?, DATABASE()) AND table_name = ? \
             ORDER BY ordinal_position",
            vec![
                schema.map_or(SqlValue::Null, SqlValue::from),
                SqlValue::from(table),
            ],
        ),
        // The schema is an attached database's name (`main` by default).
        Dialect::Sqlite => (
            "SELECT name, type FROM pragma_table_info($1, $2) ORDER BY cid",
            vec![
                SqlValue::from(table),
                SqlValue::from(schema.unwrap_or("main")),
            ],
        ),
    }
}

/// The table as SQL: `table` or `schema.table`, each quoted as the dialect quotes.
pub fn table_sql(d: Dialect, schema: Option<&str>, table: &str) -> String {
    match schema {
        Some(s) => format!("{}.{}", d.quote_ident(s), d.quote_ident(table)),
        None => d.quote_ident(table),
    }
}

/// Parameters one statement takes at most: PostgreSQL and MySQL take 65,535, SQLite 32,766
/// (its default limit since 3.32).
pub fn max_params(d: Dialect) -> usize {
    match d {
        Dialect::Postgres => statement::MAX_PARAMS,
        Dialect::Mysql => 65_535,
        Dialect::Sqlite => 32_766,
    }
}

/// How many rows of `columns` columns fit in one statement.
pub fn rows_per_statement(d: Dialect, columns: usize) -> usize {
    (max_params(d) / columns.max(1)).max(1)
}

/// `INSERT INTO table (columns) VALUES (...), ...` for `rows` rows; with a `key`, an upsert:
/// on PostgreSQL `postgres-sink`'s (every value cast from text to its column's type), on
/// SQLite `ON CONFLICT (key) DO UPDATE SET c = excluded.c` (or `DO NOTHING` when every column
/// is in the key), on MySQL `ON DUPLICATE KEY UPDATE c = VALUES(c)` (any unique key of the
/// table decides there).
pub fn insert_sql(
    d: Dialect,
    table: &str,
    columns: &[Column],
    key: &[String],
    rows: usize,
) -> String {
    if d == Dialect::Postgres {
        return statement::insert_sql(table, columns, key, rows);
    }
    let q = |n: &str| d.quote_ident(n);
    let names: Vec<String> = columns.iter().map(|c| q(&c.name)).collect();
    let mut sql = format!("INSERT INTO {table} ({}) VALUES ", names.join(", "));
    let mut n = 0;
    for r in 0..rows {
        if r > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for i in 0..columns.len() {
            n += 1;
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&d.placeholder(n));
        }
        sql.push(')');
    }
    if key.is_empty() {
        return sql;
    }
    let others: Vec<&Column> = columns.iter().filter(|c| !key.contains(&c.name)).collect();
    if d == Dialect::Mysql {
        let set: Vec<String> = if others.is_empty() {
            key.iter().map(|k| format!("{0} = {0}", q(k))).collect()
        } else {
            others
                .iter()
                .map(|c| format!("{0} = VALUES({0})", q(&c.name)))
                .collect()
        };
        sql.push_str(&format!(" ON DUPLICATE KEY UPDATE {}", set.join(", ")));
    } else {
        let key_sql: Vec<String> = key.iter().map(|k| q(k)).collect();
        sql.push_str(&format!(" ON CONFLICT ({}) ", key_sql.join(", ")));
        if others.is_empty() {
            sql.push_str("DO NOTHING");
        } else {
            let set: Vec<String> = others
                .iter()
                .map(|c| format!("{0} = excluded.{0}", q(&c.name)))
                .collect();
            sql.push_str(&format!("DO UPDATE SET {}", set.join(", ")));
        }
    }
    sql
}

/// A value bound on MySQL and SQLite, typed as its JSON was: the database converts it to the
/// column's type as it converts any value of that type.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Bound {
    /// A string, or an object or array as its JSON text, or a number too big for 64 bits.
    Text(String),
    /// A whole number.
    Integer(i64),
    /// Another number, by its bits (so that it can be a key).
    Double(u64),
    /// `true` or `false`.
    Boolean(bool),
}

impl From<Bound> for SqlValue {
    fn from(b: Bound) -> Self {
        match b {
            Bound::Text(s) => SqlValue::Text(s),
            Bound::Integer(n) => SqlValue::Integer(n),
            Bound::Double(bits) => SqlValue::Double(f64::from_bits(bits)),
            Bound::Boolean(b) => SqlValue::Boolean(b),
        }
    }
}

/// A raw JSON value as bound on MySQL and SQLite (`None` for null).
pub fn bind_typed(v: &RawValue) -> Option<Bound> {
    let text = v.get();
    match text.as_bytes().first() {
        Some(b'n') => None,
        Some(b't') => Some(Bound::Boolean(true)),
        Some(b'f') => Some(Bound::Boolean(false)),
        Some(b'"') => serde_json::from_str::<String>(text).ok().map(Bound::Text),
        Some(b'-' | b'0'..=b'9') => Some(if let Ok(n) = text.parse::<i64>() {
            Bound::Integer(n)
        } else if !text.contains(['.', 'e', 'E']) {
            // A whole number past 64 bits: its digits, as the database reads them.
            Bound::Text(text.to_string())
        } else {
            match text.parse::<f64>() {
                Ok(x) if x.is_finite() => Bound::Double(x.to_bits()),
                _ => Bound::Text(text.to_string()),
            }
        }),
        _ => Some(Bound::Text(text.to_string())),
    }
}
