//! `lookup`: enriches each record (a JSON object) with what a SQL table or an HTTP API knows of
//! the record's `key` field. The records of a batch are held until its end, then their keys
//! not yet known are looked up together, and each answer, row or none, is cached for the rest
//! of the run (up to `cache_size` keys; a full cache is emptied).
//!
//! SQL (`sql.rs`): `{ "connection": "crm", "table": "customers", "key": "customer_id",
//! "column": "id", "columns": ["name", "tier"], "into": "customer", "missing": "keep" }`: the
//! row whose `column` equals the key, through a granted connection (PostgreSQL, MySQL/MariaDB
//! or SQLite), in one query per batch (`WHERE column IN (...)`, 500 keys per statement). A key
//! is bound typed as its JSON is (a number for a numeric column, a string for a text one).
//!
//! HTTP (`http.rs`): `{ "http": { "url": "https://api.example.com/customers?ids={keys}" },
//! "key": "customer_id" }`: the item of an API on the step's `allow_hosts`, in one request per
//! batch (`{keys}` in the URL, or `POST` with the keys in the body; `batch_size` keys per
//! request), or one request per new key (`{key}` in the URL; a 404 is no item).
//!
//! Either way, the row's fields are merged into the record (overwriting fields of the same
//! names), or put under field `into` as an object. A record whose key has no row is passed on
//! as it is (`keep`; with `into`, that field is null), dropped (`drop`) or dead-lettered
//! (`reject`). When several rows match a key, the first is taken.
use std::collections::HashMap;

use autoflow_plugin_sdk::sql::Value as SqlValue;
use autoflow_plugin_sdk::{Error, Metadata, Output, Record, Transform, host};
use serde::Deserialize;
use serde_json::{Map, Value};

pub mod http;
pub mod sql;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_http;

pub use http::HttpConfig;
pub use sql::{KEYS_PER_QUERY, key_text_of_sql};

/// JSON Schema (draft 2020-12) of [`Config`].
pub const CONFIG_SCHEMA: &str = r##"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "lookup config",
  "type": "object",
  "properties": {
    "connection": {
      "description": "SQL: a PostgreSQL, MySQL/MariaDB or SQLite connection granted to the step.",
      "type": "string", "minLength": 1
    },
    "table": { "description": "SQL: the table looked in (quoted by the plugin).", "type": "string", "minLength": 1 },
    "schema": { "description": "SQL: the table's schema (MySQL: database; SQLite: attached database).", "type": "string", "minLength": 1 },
    "column": { "description": "SQL: the table's column matched against the key (default: the key's name).", "type": "string", "minLength": 1 },
    "http": {
      "description": "HTTP: the API looked in, instead of connection and table.",
      "type": "object",
      "properties": {
        "url": { "description": "URL template, its host in the step's allow_hosts: {keys} (one GET per batch, the keys joined by separator), {key} (one GET per new key; 404 = no item), or neither with method POST (the keys in the body). Keys are percent-encoded.", "type": "string", "pattern": "^[hH][tT][tT][pP][sS]?://" },
        "method": { "description": "GET (default), or POST to send {\"<body_key>\": [keys...]} as the body.", "enum": ["GET", "POST", "get", "post"], "default": "GET" },
        "body_key": { "description": "With POST: the body's field holding the keys (default keys).", "type": "string", "minLength": 1, "default": "keys" },
        "headers": { "description": "Request header fields: a string, or {\"secret\": NAME, \"prefix\": \"Bearer \"} for the value of a secret granted to the step.", "type": "object", "additionalProperties": { "oneOf": [ { "type": "string" }, { "type": "object", "properties": { "secret": { "type": "string", "minLength": 1 }, "prefix": { "type": "string" } }, "required": ["secret"], "additionalProperties": false } ] } },
        "items": { "description": "JSON pointer to the items in an answer (batch: the array; per key: the item). Default: the answer itself.", "type": "string", "pattern": "^(/.*)?$" },
        "match": { "description": "Batch: the items' field matched against the keys (default: the key's name). It is left out of the row.", "type": "string", "minLength": 1 },
        "batch_size": { "description": "Batch: keys per request at most (default 100).", "type": "integer", "minimum": 1, "maximum": 10000, "default": 100 },
        "separator": { "description": "With {keys}: what joins the keys (default ,).", "type": "string", "minLength": 1, "default": "," }
      },
      "required": ["url"],
      "additionalProperties": false
    },
    "key": { "description": "The record's field whose value is looked up (a string, number or boolean).", "type": "string", "minLength": 1 },
    "columns": {
      "description": "The row's fields added to the record (default: every one but the matched one; HTTP: a field the item lacks is null).",
      "type": "array", "items": { "type": "string", "minLength": 1 }, "minItems": 1, "uniqueItems": true
    },
    "into": { "description": "Put the row under this field as an object, instead of merging its fields into the record.", "type": "string", "minLength": 1 },
    "missing": {
      "description": "What becomes of a record whose key has no row (or no key): keep it as it is, drop it, or reject it (dead letter).",
      "enum": ["keep", "drop", "reject"], "default": "keep"
    },
    "cache_size": {
      "description": "Keys remembered per run at most, with their row or its absence (default 100000).",
      "type": "integer", "minimum": 1, "maximum": 10000000, "default": 100000
    }
  },
  "required": ["key"],
  "oneOf": [
    { "required": ["connection", "table"], "not": { "required": ["http"] } },
    { "required": ["http"], "not": { "anyOf": [
      { "required": ["connection"] }, { "required": ["table"] }, { "required": ["schema"] }, { "required": ["column"] }
    ] } }
  ],
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

/// The step's configuration: `connection` and `table` (SQL), or `http`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// SQL: the granted connection.
    #[serde(default)]
    pub connection: Option<String>,
    /// SQL: the table.
    #[serde(default)]
    pub table: Option<String>,
    /// SQL: its schema.
    #[serde(default)]
    pub schema: Option<String>,
    /// SQL: the column matched (default: `key`).
    #[serde(default)]
    pub column: Option<String>,
    /// HTTP: the API.
    #[serde(default)]
    pub http: Option<HttpConfig>,
    /// The record's field looked up.
    pub key: String,
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

/// What a look-up found: each row with its key (as compared), in the order answered, and the
/// queries or requests it took.
#[derive(Debug, Default)]
pub struct Answer {
    /// Rows, each with its key; keys not asked for are ignored, and the first row of a key wins.
    pub rows: Vec<(String, Map<String, Value>)>,
    /// Queries or requests made.
    pub queries: u64,
}

/// Where rows come from.
#[derive(Debug)]
enum Backend {
    Sql(sql::Table),
    Http(http::Api),
}

impl Backend {
    /// The form `config` asks for, checked.
    fn open(config: &Config) -> Result<Self, Error> {
        let sql_fields = [
            ("connection", config.connection.is_some()),
            ("table", config.table.is_some()),
            ("schema", config.schema.is_some()),
            ("column", config.column.is_some()),
        ];
        match (&config.http, &config.connection, &config.table) {
            (Some(h), _, _) => {
                if let Some((name, _)) = sql_fields.iter().find(|(_, set)| *set) {
                    return Err(Error::InvalidConfig(format!(
                        "{name} is for a SQL lookup, http for an HTTP one: give one of them \
                         (with http, the items' field matched is http.match)"
                    )));
                }
                let api = http::Api::open(h.clone(), &config.key, config.columns.clone())?;
                Ok(Backend::Http(api))
            }
            (None, Some(connection), Some(table)) => {
                for (what, v) in [("connection", connection), ("table", table)] {
                    if v.is_empty() {
                        return Err(Error::InvalidConfig(format!("{what} must not be empty")));
                    }
                }
                Ok(Backend::Sql(sql::Table {
                    connection: connection.clone(),
                    table: table.clone(),
                    schema: config.schema.clone(),
                    column: config.column.clone().unwrap_or_else(|| config.key.clone()),
                    columns: config.columns.clone(),
                    dialect: None,
                }))
            }
            (None, Some(_), None) => Err(Error::InvalidConfig(
                "table is required with connection".into(),
            )),
            (None, None, Some(_)) => Err(Error::InvalidConfig(
                "connection is required with table".into(),
            )),
            (None, None, None) => Err(Error::InvalidConfig(
                "give connection and table (a SQL table) or http (an HTTP API) to look in".into(),
            )),
        }
    }

    fn fetch(&mut self, keys: &[(String, SqlValue)]) -> Result<Answer, Error> {
        match self {
            Backend::Sql(t) => t.fetch(keys),
            Backend::Http(a) => a.fetch(keys),
        }
    }

    fn miss(&self, key: &str) -> String {
        match self {
            Backend::Sql(t) => t.miss(key),
            Backend::Http(a) => a.miss(key),
        }
    }
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
    backend: Backend,
    held: Vec<Held>,
    /// Each key looked up, with its row's columns (`None`: no row).
    cache: HashMap<String, Option<Map<String, Value>>>,
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

/// A number as a key compares: a whole one as an integer.
fn number_text(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 9.0e15 {
        format!("{}", x as i64)
    } else {
        x.to_string()
    }
}

impl Lookup {
    /// Looks up `keys` (none cached), caching every answer.
    fn look_up(&mut self, keys: Vec<(String, SqlValue)>) -> Result<(), Error> {
        if self.cache.len() + keys.len() > self.config.cache_size {
            self.cache.clear();
        }
        let answer = self.backend.fetch(&keys)?;
        for (k, _) in keys {
            self.cache.insert(k, None);
        }
        for (k, row) in answer.rows {
            // A key not asked for, or one whose first row was taken, is passed over.
            if let Some(slot) = self.cache.get_mut(&k).filter(|s| s.is_none()) {
                *slot = Some(row);
            }
        }
        host::count("lookup_queries", answer.queries);
        Ok(())
    }

    /// The keys of the held records not in the cache, each once, in order.
    fn unknown_keys(&self) -> Vec<(String, SqlValue)> {
        let mut unknown: Vec<(String, SqlValue)> = Vec::new();
        for h in &self.held {
            if let Some((k, v)) = &h.key
                && !self.cache.contains_key(k)
                && !unknown.iter().any(|(u, _)| u == k)
            {
                unknown.push((k.clone(), v.clone()));
            }
        }
        unknown
    }
}

impl Transform for Lookup {
    type Config = Config;

    fn metadata() -> Metadata {
        Metadata::new(
            "lookup",
            env!("CARGO_PKG_VERSION"),
            "Enriches each record with the row of a SQL table, or the item of an HTTP API, \
             matching its key (one query per batch, cached for the run); records without a row \
             are kept, dropped or rejected.",
        )
        .config_schema(CONFIG_SCHEMA)
    }

    fn open(config: Config) -> Result<Self, Error> {
        let backend = Backend::open(&config)?;
        if config.key.is_empty() {
            return Err(Error::InvalidConfig("key must not be empty".into()));
        }
        if config.cache_size == 0 {
            return Err(Error::InvalidConfig("cache_size must be at least 1".into()));
        }
        if config.columns.as_ref().is_some_and(Vec::is_empty) {
            return Err(Error::InvalidConfig("columns must not be empty".into()));
        }
        Ok(Lookup {
            config,
            backend,
            held: Vec::new(),
            cache: HashMap::new(),
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
        let unknown = self.unknown_keys();
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
                            out.reject_at(h.index, self.backend.miss(key));
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
