//! `lookup`: enriches each record (a JSON object) with the row of a SQL table whose `column`
//! equals the record's `key` field, through a granted connection (PostgreSQL, MySQL/MariaDB or
//! SQLite). The records of a batch are held until its end, then their keys not yet known are
//! looked up in one query per batch (`WHERE column IN (...)`, 500 keys per statement), and each
//! answer, row or none, is cached for the rest of the run (up to `cache_size` keys; a full cache
//! is emptied).
//!
//! Config: `{ "connection": "crm", "table": "customers", "key": "customer_id", "column": "id",
//! "columns": ["name", "tier"], "into": "customer", "missing": "keep" }`. The row's columns are
//! merged into the record (overwriting fields of the same names), or put under field `into` as
//! an object. A record whose key has no row is passed on as it is (`keep`; with `into`, that
//! field is null), dropped (`drop`) or dead-lettered (`reject`). A key is bound typed as its
//! JSON is (a number for a numeric column, a string for a text one); when several rows match,
//! the first is taken.
use std::collections::HashMap;

use autoflow_plugin_sdk::sql::{self, Dialect, Value as SqlValue};
use autoflow_plugin_sdk::{Error, Metadata, Output, Record, Transform, host};
use serde::Deserialize;
use serde_json::{Map, Value};

#[cfg(test)]
mod tests;

/// Keys in one statement at most.
pub const KEYS_PER_QUERY: usize = 500;

/// JSON Schema (draft 2020-12) of [`Config`].
pub const CONFIG_SCHEMA: &str = r##"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "lookup config",
  "type": "object",
  "properties": {
    "connection": {
      "description": "A PostgreSQL, MySQL/MariaDB or SQLite connection granted to the step.",
      "type": "string", "minLength": 1
    },
    "table": { "description": "The table looked in (quoted by the plugin).", "type": "string", "minLength": 1 },
    "schema": { "description": "The table's schema (MySQL: database; SQLite: attached database).", "type": "string", "minLength": 1 },
    "key": { "description": "The record's field whose value is looked up (a string, number or boolean).", "type": "string", "minLength": 1 },
    "column": { "description": "The table's column matched against it (default: the key's name).", "type": "string", "minLength": 1 },
    "columns": {
      "description": "The table's columns added to the record (default: every column but the matched one).",
      "type": "array", "items": { "type": "string", "minLength": 1 }, "minItems": 1, "uniqueItems": true
    },
    "into": { "description": "Put the row under this field as an object, instead of merging its columns into the record.", "type": "string", "minLength": 1 },
    "missing": {
      "description": "What becomes of a record whose key has no row (or no key): keep it as it is, drop it, or reject it (dead letter).",
      "enum": ["keep", "drop", "reject"], "default": "keep"
    },
    "cache_size": {
      "description": "Keys remembered per run at most, with their row or its absence (default 100000).",
      "type": "integer", "minimum": 1, "maximum": 10000000, "default": 100000
    }
  },
  "required": ["connection", "table", "key"],
  "additionalProperties": false
}"##;

/// What becomes of a record whose key has no row.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Missing {
    /// Passed on unchanged (with `into`, that field is null).
    #[default]
    Keep,
    /// Dropped.
    Drop,
    /// Dead-lettered, naming the key.
    Reject,
}

fn default_cache_size() -> usize {
    100_000
}

/// The step's configuration.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The granted connection.
    pub connection: String,
    /// The table.
    pub table: String,
    /// Its schema.
    #[serde(default)]
    pub schema: Option<String>,
    /// The record's field looked up.
    pub key: String,
    /// The column matched (default: `key`).
    #[serde(default)]
    pub column: Option<String>,
    /// The columns added.
    #[serde(default)]
    pub columns: Option<Vec<String>>,
    /// The field the row goes under, if not merged.
    #[serde(default)]
    pub into: Option<String>,
    /// What becomes of a record without a row.
    #[serde(default)]
    pub missing: Missing,
    /// Keys cached at most.
    #[serde(default = "default_cache_size")]
    pub cache_size: usize,
}

/// A record held until the end of its batch.
#[derive(Debug)]
struct Held {
    index: u32,
    record: Record,
    object: Map<String, Value>,
    /// The key as compared, with its bound value; `None` when the record has none.
    key: Option<(String, SqlValue)>,
}

/// The transform.
#[derive(Debug)]
pub struct Lookup {
    config: Config,
    column: String,
    held: Vec<Held>,
    /// Each key looked up, with its row's columns (`None`: no row).
    cache: HashMap<String, Option<Map<String, Value>>>,
    /// The dialect, once asked.
    dialect: Option<Dialect>,
}

/// A key as compared: numbers by value (`5` and `5.0` alike), strings as they are.
fn key_text_of_json(v: &Value) -> Option<(String, SqlValue)> {
    match v {
        Value::String(s) => Some((s.clone(), SqlValue::Text(s.clone()))),
        Value::Bool(b) => Some((b.to_string(), SqlValue::Boolean(*b))),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => Some((i.to_string(), SqlValue::Integer(i))),
            (None, Some(x)) => Some((number_text(x), SqlValue::Double(x))),
            _ => None,
        },
        _ => None,
    }
}

/// A column's value as a key is compared.
fn key_text_of_sql(v: &SqlValue) -> Option<String> {
    match v {
        SqlValue::Null => None,
        SqlValue::Boolean(b) => Some(b.to_string()),
        SqlValue::Integer(i) => Some(i.to_string()),
        SqlValue::Double(x) => Some(number_text(*x)),
        SqlValue::Text(s) => Some(s.clone()),
        SqlValue::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
    }
}

/// A number as a key compares: a whole one as an integer.
fn number_text(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 9.0e15 {
        format!("{}", x as i64)
    } else {
        x.to_string()
    }
}

impl Lookup {
    /// `SELECT` the matched column and the wanted ones for `n` keys.
    fn statement(&self, d: Dialect, n: usize) -> String {
        let q = |s: &str| d.quote_ident(s);
        let table = match &self.config.schema {
            Some(s) => format!("{}.{}", q(s), q(&self.config.table)),
            None => q(&self.config.table),
        };
        let columns = match &self.config.columns {
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

    /// Looks up `keys` (none cached), caching every answer.
    fn look_up(&mut self, keys: Vec<(String, SqlValue)>) -> Result<(), Error> {
        let d = match self.dialect {
            Some(d) => d,
            None => *self.dialect.insert(sql::dialect(&self.config.connection)?),
        };
        if self.cache.len() + keys.len() > self.config.cache_size {
            self.cache.clear();
        }
        let mut queries = 0;
        for chunk in keys.chunks(KEYS_PER_QUERY) {
            let params: Vec<SqlValue> = chunk.iter().map(|(_, v)| v.clone()).collect();
            let rows = sql::query(
                &self.config.connection,
                &self.statement(d, chunk.len()),
                &params,
            )
            .map_err(|e| e.context(&format!("looking up in {:?}", self.config.table)))?;
            queries += 1;
            let at = rows
                .columns
                .iter()
                .position(|c| c == &self.column)
                .ok_or_else(|| {
                    Error::InvalidConfig(format!(
                        "table {:?} has no column {:?}",
                        self.config.table, self.column
                    ))
                })?;
            for (k, _) in chunk {
                self.cache.insert(k.clone(), None);
            }
            for row in rows.rows {
                let Some(k) = row.get(at).and_then(key_text_of_sql) else {
                    continue;
                };
                let Some(slot) = self.cache.get_mut(&k).filter(|s| s.is_none()) else {
                    continue; // a key not asked for, or one whose first row was taken
                };
                let fields: Map<String, Value> = rows
                    .columns
                    .iter()
                    .zip(row.iter())
                    .enumerate()
                    .filter(|(i, _)| *i != at)
                    .map(|(_, (name, v))| (name.clone(), Value::from(v)))
                    .collect();
                *slot = Some(fields);
            }
        }
        host::count("lookup_queries", queries);
        Ok(())
    }
}

impl Transform for Lookup {
    type Config = Config;

    fn metadata() -> Metadata {
        Metadata::new(
            "lookup",
            env!("CARGO_PKG_VERSION"),
            "Enriches each record with the row of a SQL table matching its key (one query per \
             batch, cached for the run); records without a row are kept, dropped or rejected.",
        )
        .config_schema(CONFIG_SCHEMA)
    }

    fn open(config: Config) -> Result<Self, Error> {
        for (what, v) in [
            ("connection", &config.connection),
            ("table", &config.table),
            ("key", &config.key),
        ] {
            if v.is_empty() {
                return Err(Error::InvalidConfig(format!("{what} must not be empty")));
            }
        }
        if config.cache_size == 0 {
            return Err(Error::InvalidConfig("cache_size must be at least 1".into()));
        }
        if config.columns.as_ref().is_some_and(Vec::is_empty) {
            return Err(Error::InvalidConfig("columns must not be empty".into()));
        }
        Ok(Lookup {
            column: config.column.clone().unwrap_or_else(|| config.key.clone()),
            config,
            held: Vec::new(),
            cache: HashMap::new(),
            dialect: None,
        })
    }

    fn process(&mut self, record: Record, out: &mut Output) -> Result<(), Error> {
        let object = match serde_json::from_slice::<Value>(&record.value) {
            Ok(Value::Object(o)) => o,
            Ok(_) => {
                out.reject("the value is not a JSON object");
                return Ok(());
            }
            Err(e) => {
                out.reject(format!("the value is not valid JSON: {e}"));
                return Ok(());
            }
        };
        let key = match object.get(&self.config.key) {
            None | Some(Value::Null) => None,
            Some(v) => match key_text_of_json(v) {
                Some(k) => Some(k),
                None => {
                    out.reject(format!(
                        "field {:?} is an object or an array, not a key",
                        self.config.key
                    ));
                    return Ok(());
                }
            },
        };
        self.held.push(Held {
            index: out.index(),
            record,
            object,
            key,
        });
        Ok(())
    }

    fn end_batch(&mut self, out: &mut Output) -> Result<(), Error> {
        let mut unknown: Vec<(String, SqlValue)> = Vec::new();
        for h in &self.held {
            if let Some((k, v)) = &h.key
                && !self.cache.contains_key(k)
                && !unknown.iter().any(|(u, _)| u == k)
            {
                unknown.push((k.clone(), v.clone()));
            }
        }
        if !unknown.is_empty() {
            self.look_up(unknown)?;
        }
        let mut misses = 0;
        for mut h in std::mem::take(&mut self.held) {
            let row = h
                .key
                .as_ref()
                .and_then(|(k, _)| self.cache.get(k).cloned().flatten());
            match (row, &self.config.into) {
                (Some(row), Some(into)) => {
                    h.object.insert(into.clone(), Value::Object(row));
                }
                (Some(row), None) => h.object.extend(row),
                (None, into) => {
                    misses += 1;
                    match self.config.missing {
                        Missing::Drop => continue,
                        Missing::Reject => {
                            let key = h.key.as_ref().map_or("(none)", |(k, _)| k.as_str());
                            out.reject_at(
                                h.index,
                                format!(
                                    "no row in {:?} with {} = {key}",
                                    self.config.table, self.column
                                ),
                            );
                            continue;
                        }
                        Missing::Keep => {
                            if let Some(into) = into {
                                h.object.insert(into.clone(), Value::Null);
                            }
                        }
                    }
                }
            }
            h.record.value = Value::Object(h.object).to_string().into_bytes();
            out.emit(h.record);
        }
        if misses > 0 {
            host::count("lookup_misses", misses);
        }
        Ok(())
    }
}

autoflow_plugin_sdk::export_transform!(Lookup);
