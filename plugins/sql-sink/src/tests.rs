//! Native tests: the statements of each dialect, typed binding, and whole writes against the
//! SDK's scripted database.
use autoflow_plugin_sdk::sql::{Dialect, Rows, Value as Sql};
use autoflow_plugin_sdk::testing::{FakeSql, SqlCall, TestHost};
use autoflow_plugin_sdk::{Error, Record, Sink, parse_config};
use serde_json::json;
use serde_json::value::RawValue;

use super::dialect::{Bound, bind_typed, insert_sql, rows_per_statement, table_sql};
use super::*;

fn col(name: &str, ty: &str) -> Column {
    Column {
        name: name.into(),
        ty: ty.into(),
    }
}

fn raw(text: &str) -> Box<RawValue> {
    RawValue::from_string(text.to_string()).unwrap()
}

#[test]
fn each_dialect_names_tables_and_upserts_its_own_way() {
    let cols = [col("id", "int"), col("name", "text")];
    let key = ["id".to_string()];
    assert_eq!(
        table_sql(Dialect::Mysql, Some("shop"), "or`ders"),
        "`shop`.`or``ders`"
    );
    assert_eq!(table_sql(Dialect::Sqlite, None, "orders"), r#""orders""#);
    assert_eq!(
        insert_sql(Dialect::Mysql, "`t`", &cols, &key, 2),
        "INSERT INTO `t` (`id`, `name`) VALUES (?, ?), (?, ?) ON DUPLICATE KEY UPDATE `name` = VALUES(`name`)"
    );
    assert_eq!(
        insert_sql(Dialect::Sqlite, r#""t""#, &cols, &key, 2),
        r#"INSERT INTO "t" ("id", "name") VALUES ($1, $2), ($3, $4) ON CONFLICT ("id") DO UPDATE SET "name" = excluded."name""#
    );
    assert_eq!(
        insert_sql(Dialect::Sqlite, r#""t""#, &cols[..1], &key, 1),
        r#"INSERT INTO "t" ("id") VALUES ($1) ON CONFLICT ("id") DO NOTHING"#
    );
    assert_eq!(
        insert_sql(Dialect::Mysql, "`t`", &cols[..1], &key, 1),
        "INSERT INTO `t` (`id`) VALUES (?) ON DUPLICATE KEY UPDATE `id` = `id`"
    );
    assert_eq!(
        insert_sql(Dialect::Mysql, "`t`", &cols, &[], 1),
        "INSERT INTO `t` (`id`, `name`) VALUES (?, ?)"
    );
    // PostgreSQL's is postgres-sink's, cast from text.
    assert_eq!(
        insert_sql(Dialect::Postgres, r#""t""#, &cols, &[], 1),
        r#"INSERT INTO "t" ("id", "name") VALUES ($1::int, $2::text)"#
    );
    assert_eq!(rows_per_statement(Dialect::Sqlite, 10), 3_276);
    assert_eq!(rows_per_statement(Dialect::Mysql, 10), 6_553);
}

#[test]
fn values_bind_typed_as_their_json_is() {
    for (text, bound) in [
        ("null", None),
        ("true", Some(Bound::Boolean(true))),
        ("false", Some(Bound::Boolean(false))),
        (r#""a\"b""#, Some(Bound::Text("a\"b".into()))),
        ("-42", Some(Bound::Integer(-42))),
        ("1.5", Some(Bound::Double(1.5f64.to_bits()))),
        ("2e3", Some(Bound::Double(2000f64.to_bits()))),
        (
            "123456789012345678901234",
            Some(Bound::Text("123456789012345678901234".into())),
        ),
        (r#"{"a": [1]}"#, Some(Bound::Text(r#"{"a": [1]}"#.into()))),
        ("[1,2]", Some(Bound::Text("[1,2]".into()))),
    ] {
        assert_eq!(bind_typed(&raw(text)), bound, "{text}");
    }
    assert_eq!(Sql::from(Bound::Double(1.5f64.to_bits())), Sql::Double(1.5));
}

fn table_columns() -> Rows {
    Rows {
        columns: vec!["name".into(), "type".into()],
        rows: [("id", "INTEGER"), ("name", "TEXT"), ("ok", "BOOLEAN")]
            .iter()
            .map(|(n, t)| vec![Sql::Text((*n).into()), Sql::Text((*t).into())])
            .collect(),
    }
}

fn write(dialect: Dialect, config: &str, batch: Vec<Record>) -> (Result<(), Error>, TestHost) {
    let fake = FakeSql::new(dialect)
        .result(Ok(table_columns()))
        .affected(Ok(2));
    let mut host = TestHost::new().with_sql(fake);
    let r = host.run(|| {
        let mut sink = SqlSink::open(parse_config(config)?)?;
        sink.write(batch)?;
        sink.write(Vec::new())?;
        sink.flush()
    });
    (r, host)
}

fn records(values: &[serde_json::Value]) -> Vec<Record> {
    values.iter().map(|v| Record::new(v.to_string())).collect()
}

#[test]
fn a_sqlite_upsert_batch_is_one_transaction_of_typed_values() {
    let (r, host) = write(
        Dialect::Sqlite,
        r#"{"connection":"db","table":"items","key":["id"]}"#,
        records(&[
            json!({"id": 1, "name": "a", "ok": true}),
            json!({"id": 2, "name": null, "ok": false}),
            json!({"id": 1, "name": "b", "ok": false}),
        ]),
    );
    r.unwrap();
    let calls = &host.sql.as_ref().unwrap().calls;
    assert!(
        matches!(&calls[1], SqlCall::Query { statement, params, .. }
            if statement.contains("pragma_table_info")
            && params == &[Sql::Text("items".into()), Sql::Text("main".into())]),
        "{:?}",
        calls[1]
    );
    let SqlCall::Execute {
        statement, params, ..
    } = &calls[3]
    else {
        panic!("{:?}", calls[3]);
    };
    assert_eq!(
        statement,
        r#"INSERT INTO "items" ("id", "name", "ok") VALUES ($1, $2, $3), ($4, $5, $6) ON CONFLICT ("id") DO UPDATE SET "name" = excluded."name", "ok" = excluded."ok""#
    );
    assert_eq!(
        params,
        &[
            Sql::Integer(1),
            Sql::Text("b".into()),
            Sql::Boolean(false),
            Sql::Integer(2),
            Sql::Null,
            Sql::Boolean(false),
        ],
        "the last record of a key wins, at the first one's place"
    );
    assert!(matches!(calls[4], SqlCall::Commit { .. }));
    assert_eq!(calls.len(), 5);
    assert_eq!(host.counters.get("rows_written"), Some(&2));
}

#[test]
fn on_mysql_the_schema_is_a_database_and_a_missing_table_is_named() {
    let (r, host) = write(
        Dialect::Mysql,
        r#"{"connection":"db","table":"items","schema":"shop","columns":["id","name"]}"#,
        records(&[json!({"id": 7, "name": "x", "extra": 1})]),
    );
    r.unwrap();
    let calls = &host.sql.as_ref().unwrap().calls;
    assert!(matches!(&calls[1], SqlCall::Query { statement, params, .. }
            if statement.contains("information_schema.columns")
            && params == &[Sql::Text("shop".into()), Sql::Text("items".into())]));
    assert!(
        matches!(&calls[3], SqlCall::Execute { statement, params, .. }
            if statement == "INSERT INTO `shop`.`items` (`id`, `name`) VALUES (?, ?)"
            && params == &[Sql::Integer(7), Sql::Text("x".into())])
    );

    let fake = FakeSql::new(Dialect::Mysql).result(Ok(Rows::default()));
    let mut host = TestHost::new().with_sql(fake);
    let e = host
        .run(|| {
            SqlSink::open(parse_config(r#"{"connection":"db","table":"nope"}"#)?)?
                .write(records(&[json!({"id": 1})]))
        })
        .unwrap_err();
    assert_eq!(
        e,
        Error::InvalidConfig(r#"no table `nope` on connection "db" (mysql)"#.into())
    );
    let (r, _) = write(
        Dialect::Sqlite,
        r#"{"connection":"db","table":"items","key":["sku"]}"#,
        records(&[json!({"id": 1})]),
    );
    assert_eq!(
        r.unwrap_err(),
        Error::InvalidConfig(r#"table "items" has no column "sku""#.into())
    );
}

#[test]
fn the_config_is_postgres_sinks_and_its_schema_is_json() {
    assert!(parse_config::<Config>(r#"{"connection":"db"}"#).is_err());
    let e = SqlSink::open(parse_config(r#"{"connection":"db","table":"t","key":[]}"#).unwrap())
        .unwrap_err();
    assert_eq!(e, Error::InvalidConfig("key must not be empty".into()));
    let schema: serde_json::Value = serde_json::from_str(CONFIG_SCHEMA).unwrap();
    assert_eq!(schema["required"], json!(["connection", "table"]));
    assert_eq!(schema["title"], "sql-sink config");
}
