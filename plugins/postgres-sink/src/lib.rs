//! `postgres-sink`: writes records (JSON objects) into a PostgreSQL table through a granted
//! connection, as plain inserts or as upserts on a key; each batch in one transaction.
//!
//! Config: `{ "connection": "warehouse", "table": "orders", "schema": "public",
//! "key": ["id"], "columns": ["id", "status", "amount"] }`. At the first write the sink reads
//! the table's columns and their types; every value is bound as text and cast to its column's
//! type in the statement (`$1::integer`, `$2::jsonb`, `$3::timestamp with time zone`), so any
//! type PostgreSQL can read from text works: JSON strings are bound as they are, numbers,
//! booleans and objects as their JSON text, arrays as array literals for array columns (else as
//! JSON text), null as NULL.
use autoflow_plugin_sdk::sql::{self, Dialect, Transaction, Value as SqlValue};
use autoflow_plugin_sdk::{Error, Metadata, Record, Sink, host};

mod config;
mod statement;

#[cfg(test)]
mod tests;

pub use config::{CONFIG_SCHEMA, Config};
pub use statement::{Column, bind_text, insert_sql, plan_rows, rows_per_statement};

/// What the sink knows of its table once it has looked.
#[derive(Debug)]
struct Table {
    /// Every column, with its type.
    all: Vec<Column>,
    /// The columns written, once known (from the config, or the first record).
    write: Option<Vec<Column>>,
}

/// The sink.
#[derive(Debug)]
pub struct PostgresSink {
    config: Config,
    key: Vec<String>,
    table_sql: String,
    table: Option<Table>,
    /// The statements written so far, by rows per statement (the columns are fixed once the
    /// first batch is written): full batches reuse theirs.
    statements: std::collections::HashMap<usize, String>,
}

impl PostgresSink {
    /// Checks the connection's dialect and reads the table's columns (once).
    fn table(&mut self) -> Result<&mut Table, Error> {
        if self.table.is_none() {
            let conn = &self.config.connection;
            let dialect = sql::dialect(conn)?;
            if dialect != Dialect::Postgres {
                return Err(Error::InvalidConfig(format!(
                    "connection {conn:?} is {}, postgres-sink needs postgres",
                    dialect.as_str()
                )));
            }
            let rows = sql::query(
                conn,
                statement::COLUMNS_SQL,
                &[SqlValue::from(self.table_sql.as_str())],
            )
            .map_err(|e| e.context(&format!("reading the columns of {}", self.table_sql)))?;
            let all: Vec<Column> = rows
                .rows
                .into_iter()
                .filter_map(|row| match row.as_slice() {
                    [SqlValue::Text(name), SqlValue::Text(ty)] => Some(Column {
                        name: name.clone(),
                        ty: ty.clone(),
                    }),
                    _ => None,
                })
                .collect();
            if all.is_empty() {
                return Err(Error::InvalidConfig(format!(
                    "no table {} on connection {conn:?}",
                    self.table_sql
                )));
            }
            statement::resolve_columns(&self.key, &all, &self.table_sql)?;
            let write = match &self.config.columns {
                Some(c) => Some(statement::resolve_columns(c, &all, &self.table_sql)?),
                None => None,
            };
            self.table = Some(Table { all, write });
        }
        self.table
            .as_mut()
            .ok_or_else(|| Error::Fatal("the table was not read".into()))
    }
}

impl Sink for PostgresSink {
    type Config = Config;

    fn metadata() -> Metadata {
        Metadata::new(
            "postgres-sink",
            env!("CARGO_PKG_VERSION"),
            "Writes records (JSON objects) into a PostgreSQL table, inserted or upserted on a \
             key, one transaction per batch; values are cast to the columns' types.",
        )
        .config_schema(CONFIG_SCHEMA)
    }

    fn open(config: Config) -> Result<Self, Error> {
        config.check().map_err(Error::InvalidConfig)?;
        Ok(PostgresSink {
            key: config.key.clone().unwrap_or_default(),
            table_sql: statement::table_sql(config.schema.as_deref(), &config.table),
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
        let table_sql = self.table_sql.clone();
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
            table.write = Some(statement::resolve_columns(&names, &table.all, &table_sql)?);
        }
        let columns = table.write.clone().unwrap_or_default();
        let rows = plan_rows(&objects, &columns, &key)?;
        let per = rows_per_statement(columns.len());
        let tx = Transaction::begin(&self.config.connection)?;
        let mut written = 0;
        let mut rows = rows.into_iter().peekable();
        while rows.peek().is_some() {
            let chunk: Vec<Vec<Option<String>>> = rows.by_ref().take(per).collect();
            let sql = self
                .statements
                .entry(chunk.len())
                .or_insert_with(|| insert_sql(&table_sql, &columns, &key, chunk.len()));
            let params: Vec<SqlValue> = chunk
                .into_iter()
                .flatten()
                .map(|v| v.map_or(SqlValue::Null, SqlValue::Text))
                .collect();
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

autoflow_plugin_sdk::export_sink!(PostgresSink);
