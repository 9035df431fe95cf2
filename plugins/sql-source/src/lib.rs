//! `sql-source`: reads a table (PostgreSQL, MySQL/MariaDB or SQLite) incrementally, in the
//! order of a cursor column, through a granted connection.
//!
//! Config: `{ "connection": "warehouse", "table": "orders", "cursor_column": "id",
//! "columns": ["id", "status"], "key_column": "id", "where": "status <> 'draft'",
//! "batch_limit": 1000 }`. Each call reads
//! `SELECT cols FROM table WHERE cursor > <last> [AND (where)] ORDER BY cursor LIMIT n`
//! (the first run, with no cursor, `WHERE cursor IS NOT NULL`), with the dialect's placeholder
//! and identifier quoting. Each row becomes a record whose value is the JSON object of the row
//! (column name to value, in column order; bytes as base64 text), and whose key is the
//! `key_column`'s value as text. The cursor is the JSON text of the last row's cursor value
//! (`42`, `"2024-05-01"`): the cursor column must be unique and only grow (an id, a sequence),
//! since rows equal to the last cursor are not read again.
use autoflow_plugin_sdk::sql::{self, Dialect, Rows, Value as SqlValue};
use autoflow_plugin_sdk::{Batch, Error, Metadata, Record, Source, host};
use serde::Deserialize;
use serde_json::{Map, Value};

/// JSON Schema (draft 2020-12) of [`Config`].
pub const CONFIG_SCHEMA: &str = r##"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "sql-source config",
  "type": "object",
  "properties": {
    "connection": {
      "description": "A database connection (postgres://, mysql://, sqlite:) granted to the step.",
      "type": "string", "minLength": 1
    },
    "table": {
      "description": "The table (or view) to read, one identifier as it is named (quoted by the plugin).",
      "type": "string", "minLength": 1
    },
    "schema": {
      "description": "The table's schema (MySQL: database; SQLite: attached database). Default: the connection's.",
      "type": "string", "minLength": 1
    },
    "cursor_column": {
      "description": "The column rows are read in order of, and resumed after: unique and only growing (an id, a sequence). Rows where it is NULL are not read.",
      "type": "string", "minLength": 1
    },
    "columns": {
      "description": "The columns that make each record's JSON object, in order (default: all, *). Columns of types the database driver does not map (PostgreSQL timestamptz, numeric, jsonb...) must be read through a view that casts them to text.",
      "type": "array", "items": { "type": "string", "minLength": 1 }, "minItems": 1, "uniqueItems": true
    },
    "key_column": {
      "description": "The column whose value, as text, is each record's key (default: no key).",
      "type": "string", "minLength": 1
    },
    "where": {
      "description": "An extra SQL condition, added as AND (where); written in the connection's dialect.",
      "type": "string", "minLength": 1
    },
    "batch_limit": {
      "description": "Rows per query at most (default: as many as the host asks for).",
      "type": "integer", "minimum": 1, "maximum": 4294967295
    }
  },
  "required": ["connection", "table", "cursor_column"],
  "additionalProperties": false
}"##;

/// The step's configuration.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The granted connection.
    pub connection: String,
    /// The table.
    pub table: String,
    /// Its schema, if not the connection's default.
    #[serde(default)]
    pub schema: Option<String>,
    /// The column rows are ordered and resumed by.
    pub cursor_column: String,
    /// The columns of each record (default all).
    #[serde(default)]
    pub columns: Option<Vec<String>>,
    /// The column that gives each record's key.
    #[serde(default)]
    pub key_column: Option<String>,
    /// An extra condition.
    #[serde(default, rename = "where")]
    pub where_: Option<String>,
    /// Rows per query at most.
    #[serde(default)]
    pub batch_limit: Option<u32>,
}

impl Config {
    /// Checks what the schema says, for hosts that did not.
    pub fn check(&self) -> Result<(), String> {
        for (what, v) in [
            ("connection", Some(&self.connection)),
            ("table", Some(&self.table)),
            ("cursor_column", Some(&self.cursor_column)),
            ("schema", self.schema.as_ref()),
            ("key_column", self.key_column.as_ref()),
            ("where", self.where_.as_ref()),
        ] {
            if v.is_some_and(|v| v.trim().is_empty()) {
                return Err(format!("{what} must not be empty"));
            }
        }
        if let Some(columns) = &self.columns {
            if columns.is_empty() {
                return Err("columns must not be empty".into());
            }
            for (i, c) in columns.iter().enumerate() {
                if c.is_empty() {
                    return Err(format!("columns[{i}] is empty"));
                }
                if columns[..i].contains(c) {
                    return Err(format!("columns: {c:?} is listed twice"));
                }
            }
        }
        if self.batch_limit == Some(0) {
            return Err("batch_limit must be at least 1".into());
        }
        Ok(())
    }

    /// The columns selected: `None` for `*`; else the configured ones, then the cursor and key
    /// columns when they are not among them (read, but left out of the records).
    pub fn select_columns(&self) -> Option<Vec<String>> {
        let mut cols = self.columns.clone()?;
        for extra in std::iter::once(&self.cursor_column).chain(self.key_column.as_ref()) {
            if !cols.contains(extra) {
                cols.push(extra.clone());
            }
        }
        Some(cols)
    }
}

/// The query for one batch: `after` says whether there is a cursor to resume after (bound as
/// the first parameter).
pub fn select_sql(dialect: Dialect, config: &Config, after: bool, limit: u32) -> String {
    let q = |name: &str| dialect.quote_ident(name);
    let cols = match config.select_columns() {
        None => "*".to_string(),
        Some(c) => c.iter().map(|c| q(c)).collect::<Vec<_>>().join(", "),
    };
    let table = match &config.schema {
        Some(s) => format!("{}.{}", q(s), q(&config.table)),
        None => q(&config.table),
    };
    let cursor = q(&config.cursor_column);
    let mut sql = format!("SELECT {cols} FROM {table} WHERE ");
    if after {
        sql.push_str(&format!("{cursor} > {}", dialect.placeholder(1)));
    } else {
        sql.push_str(&format!("{cursor} IS NOT NULL"));
    }
    if let Some(w) = &config.where_ {
        sql.push_str(&format!(" AND ({w})"));
    }
    sql.push_str(&format!(" ORDER BY {cursor} LIMIT {limit}"));
    sql
}

/// The cursor value in a committed cursor (JSON text: a number or a string).
pub fn parse_cursor(text: &str) -> Result<SqlValue, Error> {
    match serde_json::from_str::<Value>(text) {
        Ok(v @ (Value::Number(_) | Value::String(_))) => Ok(SqlValue::from(v)),
        _ => Err(Error::Fatal(format!(
            "the committed cursor {text:?} is not a JSON number or string"
        ))),
    }
}

/// The cursor text of a cursor value.
pub fn cursor_text(v: &SqlValue) -> Result<String, Error> {
    match v {
        SqlValue::Null => Err(Error::Fatal("the cursor column is NULL".into())),
        SqlValue::Bytes(_) => Err(Error::Fatal(
            "the cursor column holds bytes: use a number or text column".into(),
        )),
        other => Ok(other.to_json().to_string()),
    }
}

/// The records of `rows`, and the last row's cursor value.
pub fn to_batch(rows: &Rows, config: &Config) -> Result<(Vec<Record>, Option<SqlValue>), Error> {
    let find = |name: &str| {
        rows.column(name)
            .ok_or_else(|| Error::Fatal(format!("the query result has no column {name:?}")))
    };
    let cursor_at = find(&config.cursor_column)?;
    let key_at = config.key_column.as_deref().map(find).transpose()?;
    // The columns of the record: all of them, or the configured ones (not the extras).
    let shown: Vec<usize> = match &config.columns {
        None => (0..rows.columns.len()).collect(),
        Some(c) => c.iter().map(|c| find(c)).collect::<Result<_, _>>()?,
    };
    let mut records = Vec::with_capacity(rows.len());
    for row in &rows.rows {
        let object: Map<String, Value> = shown
            .iter()
            .filter_map(|&i| Some((rows.columns.get(i)?.clone(), row.get(i)?.to_json())))
            .collect();
        let mut record = Record::from_json(&object)?;
        record.key = key_at
            .and_then(|k| row.get(k))
            .and_then(SqlValue::to_text)
            .map(String::into_bytes);
        records.push(record);
    }
    let last = rows.rows.last().and_then(|r| r.get(cursor_at)).cloned();
    Ok((records, last))
}

/// The source.
#[derive(Debug)]
pub struct SqlSource {
    config: Config,
    dialect: Option<Dialect>,
    cursor: Option<SqlValue>,
}

impl Source for SqlSource {
    type Config = Config;

    fn metadata() -> Metadata {
        Metadata::new(
            "sql-source",
            env!("CARGO_PKG_VERSION"),
            "Reads a PostgreSQL, MySQL or SQLite table incrementally by a cursor column (an id, \
             a sequence), each row as a JSON object; resumes after the last row read.",
        )
        .config_schema(CONFIG_SCHEMA)
    }

    fn open(config: Config, cursor: Option<String>) -> Result<Self, Error> {
        config.check().map_err(Error::InvalidConfig)?;
        let cursor = cursor.as_deref().map(parse_cursor).transpose()?;
        Ok(SqlSource {
            config,
            dialect: None,
            cursor,
        })
    }

    fn next(&mut self, max: u32) -> Result<Option<Batch>, Error> {
        let limit = max.min(self.config.batch_limit.unwrap_or(u32::MAX));
        if limit == 0 {
            return Ok(Some(Batch::default()));
        }
        let dialect = match self.dialect {
            Some(d) => d,
            None => *self.dialect.insert(sql::dialect(&self.config.connection)?),
        };
        let statement = select_sql(dialect, &self.config, self.cursor.is_some(), limit);
        let params: Vec<SqlValue> = self.cursor.iter().cloned().collect();
        let rows = sql::query(&self.config.connection, &statement, &params)?;
        if rows.is_empty() {
            return Ok(None);
        }
        let (records, last) = to_batch(&rows, &self.config)?;
        let cursor = match &last {
            Some(v) => Some(cursor_text(v)?),
            None => None,
        };
        self.cursor = last;
        host::count("rows_read", records.len() as u64);
        Ok(Some(Batch { records, cursor }))
    }
}

autoflow_plugin_sdk::export_source!(SqlSource);

#[cfg(test)]
mod tests;
