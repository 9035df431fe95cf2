//! The pure part of the sink: identifiers, values bound as text, the multi-row INSERT (or
//! upsert) and the rows of one batch.
use std::collections::HashMap;

use autoflow_plugin_sdk::sql::Dialect;
use autoflow_plugin_sdk::{Error, Record};
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;

/// Parameters in one statement at most: PostgreSQL takes up to 65,535; we stay under that.
pub const MAX_PARAMS: usize = 65_534;

/// The statement that reads a table's columns and their types (as SQL type names that can
/// follow `::`), in table order. Its one parameter is the quoted, maybe schema-qualified, table
/// name; no row means no such table.
pub const COLUMNS_SQL: &str = "SELECT a.attname::text, pg_catalog.format_type(a.atttypid, a.atttypmod) \
     FROM pg_catalog.pg_attribute a \
     WHERE a.attrelid = pg_catalog.to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped \
     ORDER BY a.attnum";

/// One column of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// Its name.
    pub name: String,
    /// Its type, as `format_type` writes it (`integer`, `character varying(20)`, `jsonb`...).
    pub ty: String,
}

/// `name` as a PostgreSQL identifier.
pub fn quote(name: &str) -> String {
    Dialect::Postgres.quote_ident(name)
}

/// The table as SQL: `"table"` or `"schema"."table"`.
pub fn table_sql(schema: Option<&str>, table: &str) -> String {
    match schema {
        Some(s) => format!("{}.{}", quote(s), quote(table)),
        None => quote(table),
    }
}

/// The columns named `wanted`, with their types from `table`; a name the table lacks is an
/// `invalid-config` error naming it.
pub fn resolve_columns(
    wanted: &[String],
    table: &[Column],
    table_name: &str,
) -> Result<Vec<Column>, Error> {
    wanted
        .iter()
        .map(|w| {
            table.iter().find(|c| &c.name == w).cloned().ok_or_else(|| {
                Error::InvalidConfig(format!("table {table_name} has no column {w:?}"))
            })
        })
        .collect()
}

/// `INSERT INTO table (columns) VALUES ($1::type, ...), ... ` for `rows` rows, every
/// parameter cast from text to its column's type; with a `key`, an upsert on it (`ON CONFLICT
/// (key) DO UPDATE SET` the other columns `= EXCLUDED`, or `DO NOTHING` when every column is
/// in the key).
pub fn insert_sql(table: &str, columns: &[Column], key: &[String], rows: usize) -> String {
    let names: Vec<String> = columns.iter().map(|c| quote(&c.name)).collect();
    let mut sql = format!("INSERT INTO {table} ({}) VALUES ", names.join(", "));
    let mut n = 0;
    for r in 0..rows {
        if r > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for (i, c) in columns.iter().enumerate() {
            n += 1;
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("${n}::{}", c.ty));
        }
        sql.push(')');
    }
    if !key.is_empty() {
        let key_sql: Vec<String> = key.iter().map(|k| quote(k)).collect();
        sql.push_str(&format!(" ON CONFLICT ({}) ", key_sql.join(", ")));
        let set: Vec<String> = columns
            .iter()
            .filter(|c| !key.contains(&c.name))
            .map(|c| format!("{0} = EXCLUDED.{0}", quote(&c.name)))
            .collect();
        if set.is_empty() {
            sql.push_str("DO NOTHING");
        } else {
            sql.push_str(&format!("DO UPDATE SET {}", set.join(", ")));
        }
    }
    sql
}

/// How many rows of `columns` columns fit in one statement.
pub fn rows_per_statement(columns: usize) -> usize {
    (MAX_PARAMS / columns.max(1)).max(1)
}

/// A JSON value as the text bound for a column of type `ty`: `None` for null; a string as it
/// is; an array, for an array column (`...[]`), as a PostgreSQL array literal; anything else
/// (numbers, booleans, objects, arrays for other columns) as its JSON text.
pub fn bind_text(v: &Value, ty: &str) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Array(items) if ty.ends_with("[]") => Some(array_literal(items)),
        other => Some(other.to_string()),
    }
}

/// A JSON array as a PostgreSQL array literal: `{"a","b\"c",NULL,{"1","2"}}`; each element
/// quoted (strings as they are, numbers, booleans and objects as their JSON text), nested arrays
/// as nested literals.
fn array_literal(items: &[Value]) -> String {
    let mut out = String::from("{");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match item {
            Value::Null => out.push_str("NULL"),
            Value::Array(inner) => out.push_str(&array_literal(inner)),
            Value::String(s) => push_quoted(&mut out, s),
            other => push_quoted(&mut out, &other.to_string()),
        }
    }
    out.push('}');
    out
}

fn push_quoted(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

/// The JSON object of each record; a value that is not one is fatal, naming its index.
pub fn objects(records: &[Record]) -> Result<Vec<Fields<'_>>, Error> {
    records
        .iter()
        .enumerate()
        .map(|(i, r)| {
            serde_json::from_slice::<Fields<'_>>(&r.value).map_err(|e| {
                let what = if e.is_data() {
                    "is not a JSON object"
                } else {
                    "is not valid JSON"
                };
                Error::Fatal(format!("batch index {i}: the value {what}: {e}"))
            })
        })
        .collect()
}

/// One record's fields as written: each name with its raw JSON text, in order. Nothing is
/// parsed beyond the object's own structure, so a value costs one slice (and a string value,
/// its unescaping when bound).
#[derive(Debug, Default)]
pub struct Fields<'a>(Vec<(String, &'a RawValue)>);

impl<'a> Fields<'a> {
    /// The raw value of field `name`.
    pub fn get(&self, name: &str) -> Option<&'a RawValue> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
    }

    /// Whether the record has field `name`.
    pub fn contains_key(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// The field names, in order.
    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.0.iter().map(|(n, _)| n)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Fields<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Object;
        impl<'de> Visitor<'de> for Object {
            type Value = Fields<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Fields<'de>, M::Error> {
                let mut fields = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some((name, value)) = map.next_entry::<String, &'de RawValue>()? {
                    // A repeated name: the last one counts, as when parsing into a map.
                    fields.retain(|(n, _): &(String, &RawValue)| *n != name);
                    fields.push((name, value));
                }
                Ok(Fields(fields))
            }
        }
        d.deserialize_map(Object)
    }
}

/// A raw JSON value as the text bound for a column of type `ty` ([`bind_text`] on its parsed
/// form, without parsing numbers, booleans or objects: their JSON text is what is bound).
pub fn bind_raw(v: &RawValue, ty: &str) -> Option<String> {
    let text = v.get();
    match text.as_bytes().first() {
        Some(b'n') => None,
        Some(b'"') => serde_json::from_str::<String>(text).ok(),
        Some(b'[') if ty.ends_with("[]") => serde_json::from_str::<Value>(text)
            .ok()
            .and_then(|v| bind_text(&v, ty)),
        _ => Some(text.to_string()),
    }
}

/// The columns written by default: the keys of the first object, then the key columns it
/// lacks.
pub fn default_columns(first: &Fields<'_>, key: &[String]) -> Vec<String> {
    let mut columns: Vec<String> = first.keys().cloned().collect();
    for k in key {
        if !columns.contains(k) {
            columns.push(k.clone());
        }
    }
    columns
}

/// The bound values of each row, in `columns` order, row after row. A missing field is NULL,
/// fields outside `columns` are ignored. With a `key`, a record lacking a key field is fatal
/// (naming its index), and of the records with the same key (none of it NULL) only the last
/// is kept, at the place of the first: PostgreSQL refuses an upsert that touches a row twice.
pub fn plan_rows(
    objects: &[Fields<'_>],
    columns: &[Column],
    key: &[String],
) -> Result<Vec<Vec<Option<String>>>, Error> {
    plan_rows_by(objects, columns, key, |v, c| bind_raw(v, &c.ty))
}

/// [`plan_rows`] with each value made by `bind` (`None` for NULL): `sql-sink` binds typed
/// values on MySQL and SQLite.
pub fn plan_rows_by<T: Clone + Eq + std::hash::Hash>(
    objects: &[Fields<'_>],
    columns: &[Column],
    key: &[String],
    bind: impl Fn(&RawValue, &Column) -> Option<T>,
) -> Result<Vec<Vec<Option<T>>>, Error> {
    let key_idx: Vec<usize> = key
        .iter()
        .filter_map(|k| columns.iter().position(|c| &c.name == k))
        .collect();
    let mut rows: Vec<Vec<Option<T>>> = Vec::with_capacity(objects.len());
    let mut seen: HashMap<Vec<T>, usize> = HashMap::new();
    for (i, o) in objects.iter().enumerate() {
        if let Some(k) = key.iter().find(|k| !o.contains_key(k.as_str())) {
            return Err(Error::Fatal(format!(
                "batch index {i}: no value for the key column {k:?}"
            )));
        }
        let row: Vec<Option<T>> = columns
            .iter()
            .map(|c| o.get(&c.name).and_then(|v| bind(v, c)))
            .collect();
        let key_values: Option<Vec<T>> = key_idx
            .iter()
            .map(|&k| row.get(k).cloned().flatten())
            .collect();
        match key_values {
            Some(kv) if !key_idx.is_empty() => match seen.get(&kv) {
                Some(&at) => {
                    if let Some(slot) = rows.get_mut(at) {
                        *slot = row;
                    }
                }
                None => {
                    seen.insert(kv, rows.len());
                    rows.push(row);
                }
            },
            _ => rows.push(row),
        }
    }
    Ok(rows)
}
