//! `sql-sink`: writes records (JSON objects) into a table of PostgreSQL, MySQL/MariaDB or SQLite
//! through a granted connection, as plain inserts or as upserts on a key; each batch in one
//! transaction. The connection's URL picks the database.
//!
//! Config: `{ "connection": "warehouse", "table": "orders", "schema": "sales", "key": ["id"],
//! "columns": ["id", "status", "amount"] }`, as `postgres-sink`'s. At the first write the sink
//! reads the table's columns. On PostgreSQL it is `postgres-sink` (every value bound as text and
//! cast to its column's type). On MySQL and SQLite each value is bound typed as its JSON is
//! (string, whole number, other number, boolean; objects and arrays as their JSON text; null as
//! NULL) and the database converts it to the column's type; the upsert is `ON DUPLICATE KEY
//! UPDATE` on MySQL (any unique key of the table decides) and `ON CONFLICT (key) DO UPDATE` on
//! SQLite. The pieces shared with `postgres-sink` are its files (`config.rs`, `statement.rs`).
use autoflow_plugin_sdk::sql::{self, Dialect, Transaction, Value as SqlValue};
use autoflow_plugin_sdk::{Error, Metadata, Record, Sink, host};

// postgres-sink's config and statements; this sink uses some of their pieces.
#[allow(dead_code)]
#[path = "../../postgres-sink/src/config.rs"]
mod config;
pub mod dialect;
#[allow(dead_code)]
#[path = "../../postgres-sink/src/statement.rs"]
mod statement;

#[cfg(test)]
mod tests;

pub use config::Config;
use statement::Column;

/// JSON Schema (draft 2020-12) of [`Config`].
pub const CONFIG_SCHEMA: &str = r##"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "sql-sink config",
  "type": "object",
  "properties": {
    "connection": {
      "description": "A PostgreSQL, MySQL/MariaDB or SQLite connection granted to the step (the pipeline's top-level connections, the step's connections list).",
      "type": "string", "minLength": 1
    },
    "table": {
      "description": "The table to write, one identifier as it is named (quoted by the plugin: case and any character are kept).",
      "type": "string", "minLength": 1
    },
    "schema": {
      "description": "The table's schema: on PostgreSQL a schema (default: the search path), on MySQL a database (default: the connection's), on SQLite an attached database (default: main).",
      "type": "string", "minLength": 1
    },
    "key": {
      "description": "Upsert on these columns (a unique index or primary key over exactly them): the other columns are updated when a row with the key exists. Without key, a plain INSERT.",
      "type": "array", "items": { "type": "string", "minLength": 1 }, "minItems": 1, "uniqueItems": true
    },
    "columns": {
      "description": "The columns to write, from the fields of each record's JSON object of the same names. Default: the keys of the first record written. A missing field is NULL; fields outside the columns are ignored.",
      "type": "array", "items": { "type": "string", "minLength": 1 }, "minItems": 1, "uniqueItems": true
    }
  },
  "required": ["connection", "table"],
  "additionalProperties": false
}"##;

/// What the sink knows of its table once it has looked.
#[derive(Debug)]
struct Table {
    dialect: Dialect,
    sql: String,
    /// Every column, with its type.
    all: Vec<Column>,
    /// The columns written, once known (from the config, or the first record).
    write: Option<Vec<Column>>,
}

/// The sink.
#[derive(Debug)]
pub struct SqlSink {
    config: Config,
    key: Vec<String>,
    table: Option<Table>,
    /// The statements written so far, by rows per statement (the columns are fixed once the
    /// first batch is written): full batches reuse theirs.
    statements: std::collections::HashMap<usize, String>,
}

/// A text value, or bytes that are UTF-8 (MySQL hands some catalog columns over as bytes).
fn text(v: &SqlValue) -> Option<String> {
    match v {
        SqlValue::Text(s) => Some(s.clone()),
        SqlValue::Bytes(b) => String::from_utf8(b.clone()).ok(),
        _ => None,
    }
}

impl SqlSink {
    /// Reads the connection's dialect and the table's columns (once).
    fn table(&mut self) -> Result<&mut Table, Error> {
        if self.table.is_none() {
            let c = &self.config;
            let dialect = sql::dialect(&c.connection)?;
            let table_sql = dialect::table_sql(dialect, c.schema.as_deref(), &c.table);
            let (statement, params) =
                dialect::columns_query(dialect, c.schema.as_deref(), &c.table);
            let rows = sql::query(&c.connection, statement, &params)
                .map_err(|e| e.context(&format!("reading the columns of {table_sql}")))?;
            let all: Vec<Column> = rows
                .rows
                .into_iter()
                .filter_map(|row| match row.as_slice() {
                    [name, ty] => Some(Column {
                        name: text(name)?,
                        ty: text(ty)?,
                    }),
                    _ => None,
                })
                .collect();
            if all.is_empty() {
                return Err(Error::InvalidConfig(format!(
                    "no table {table_sql} on connection {:?} ({})",
                    c.connection,
                    dialect.as_str()
                )));
            }
            statement::resolve_columns(&self.key, &all, &table_sql)?;
            let write = match &c.columns {
                Some(names) => Some(statement::resolve_columns(names, &all, &table_sql)?),
                None => None,
            };
            self.table = Some(Table {
                dialect,
                sql: table_sql,
                all,
                write,
            });
        }
        self.table
            .as_mut()
            .ok_or_else(|| Error::Fatal("the table was not read".into()))
    }
}

impl Sink for SqlSink {
    type Config = Config;

    fn metadata() -> Metadata {
        Metadata::new(
            "sql-sink",
            env!("CARGO_PKG_VERSION"),
            "Writes records (JSON objects) into a PostgreSQL, MySQL/MariaDB or SQLite table, \
             inserted or upserted on a key, one transaction per batch.",
        )
        .config_schema(CONFIG_SCHEMA)
    }

    fn open(config: Config) -> Result<Self, Error> {
        config.check().map_err(Error::InvalidConfig)?;
        Ok(SqlSink {
            key: config.key.clone().unwrap_or_default(),
            config,
            table: None,
            statements: std::collections::HashMap::new(),
        })
    }

    fn write(&mut self, records: Vec<Record>) -> Result<(), Error> {
        if records.is_empty() {
            return Ok(());
        }
        let objects = statement::objects(&records)?;
        let key = self.key.clone();
        let table = self.table()?;
        if table.write.is_none() {
            let names = objects
                .first()
                .map(|first| statement::default_columns(first, &key))
                .unwrap_or_default();
            if names.is_empty() {
                return Err(Error::Fatal(
                    "batch index 0: the first record has no field to write (and no columns are configured)".into(),
                ));
            }
            table.write = Some(statement::resolve_columns(&names, &table.all, &table.sql)?);
        }
        let (d, table_sql) = (table.dialect, table.sql.clone());
        let columns = table.write.clone().unwrap_or_default();
        let rows: Vec<Vec<SqlValue>> = if d == Dialect::Postgres {
            statement::plan_rows(&objects, &columns, &key)?
                .into_iter()
                .map(|row| {
                    row.into_iter()
                        .map(|v| v.map_or(SqlValue::Null, SqlValue::Text))
                        .collect()
                })
                .collect()
        } else {
            statement::plan_rows_by(&objects, &columns, &key, |v, _| dialect::bind_typed(v))?
                .into_iter()
                .map(|row| {
                    row.into_iter()
                        .map(|v| v.map_or(SqlValue::Null, SqlValue::from))
                        .collect()
                })
                .collect()
        };
        let per = dialect::rows_per_statement(d, columns.len());
        let tx = Transaction::begin(&self.config.connection)?;
        let mut written = 0;
        let mut rows = rows.into_iter().peekable();
        while rows.peek().is_some() {
            let chunk: Vec<Vec<SqlValue>> = rows.by_ref().take(per).collect();
            let sql = self
                .statements
                .entry(chunk.len())
                .or_insert_with(|| dialect::insert_sql(d, &table_sql, &columns, &key, chunk.len()));
            let params: Vec<SqlValue> = chunk.into_iter().flatten().collect();
            written += tx
                .execute(sql, &params)
                .map_err(|e| e.context(&format!("writing into {table_sql}")))?;
        }
        tx.commit()
            .map_err(|e| e.context(&format!("committing into {table_sql}")))?;
        if written > 0 {
            host::count("rows_written", written);
        }
        Ok(())
    }
}

autoflow_plugin_sdk::export_sink!(SqlSink);
