//! Native tests against the SDK's scripted database.
use autoflow_plugin_sdk::sql::{Dialect, Rows, Value as Sql};
use autoflow_plugin_sdk::testing::{FakeSql, SqlCall, TestHost};
use autoflow_plugin_sdk::{Error, Record, parse_config};
use serde_json::{Value, json};

use super::*;

fn records(values: &[Value]) -> Vec<Record> {
    values.iter().map(|v| Record::new(v.to_string())).collect()
}

fn values(out: &[Record]) -> Vec<Value> {
    out.iter()
        .map(|r| serde_json::from_slice(&r.value).unwrap())
        .collect()
}

fn customers(ids: &[(i64, &str)]) -> Rows {
    Rows {
        columns: vec!["id".into(), "name".into(), "tier".into()],
        rows: ids
            .iter()
            .map(|(id, name)| {
                vec![
                    Sql::Integer(*id),
                    Sql::Text((*name).into()),
                    Sql::Integer(2),
                ]
            })
            .collect(),
    }
}

#[test]
fn one_query_per_batch_merges_rows_and_caches_them_for_the_run() {
    let fake = FakeSql::new(Dialect::Postgres)
        .result(Ok(customers(&[(1, "ada"), (2, "bob")])))
        .result(Ok(customers(&[])));
    let mut host = TestHost::new().with_sql(fake);
    let mut t: Lookup = host
        .open(r#"{"connection":"crm","table":"customers","key":"customer","column":"id"}"#)
        .unwrap();
    let out = host
        .batch(
            &mut t,
            records(&[
                json!({"order": 10, "customer": 1}),
                json!({"order": 11, "customer": 2}),
                json!({"order": 12, "customer": 1}),
                json!({"order": 13, "customer": 9}),
            ]),
        )
        .unwrap();
    assert_eq!(
        values(&out.records),
        [
            json!({"order": 10, "customer": 1, "name": "ada", "tier": 2}),
            json!({"order": 11, "customer": 2, "name": "bob", "tier": 2}),
            json!({"order": 12, "customer": 1, "name": "ada", "tier": 2}),
            json!({"order": 13, "customer": 9}),
        ]
    );
    let calls = &host.sql.as_ref().unwrap().calls;
    assert!(
        matches!(&calls[1], SqlCall::Query { statement, params, .. }
            if statement == r#"SELECT * FROM "customers" WHERE "id" IN ($1, $2, $3)"#
            && params == &[Sql::Integer(1), Sql::Integer(2), Sql::Integer(9)]),
        "{:?}",
        calls[1]
    );
    // Known keys (9 with no row among them) cost no query; a new one does.
    let out = host
        .batch(
            &mut t,
            records(&[
                json!({"customer": 2}),
                json!({"customer": 9}),
                json!({"customer": 3}),
            ]),
        )
        .unwrap();
    assert_eq!(out.records.len(), 3);
    let calls = &host.sql.as_ref().unwrap().calls;
    let queries: Vec<&SqlCall> = calls
        .iter()
        .filter(|c| matches!(c, SqlCall::Query { .. }))
        .collect();
    assert_eq!(queries.len(), 2);
    assert!(matches!(queries[1], SqlCall::Query { params, .. } if params == &[Sql::Integer(3)]));
    assert_eq!(host.counters.get("lookup_queries"), Some(&2));
    assert_eq!(
        host.counters.get("lookup_misses"),
        Some(&3),
        "9 twice, then 3"
    );
}

#[test]
fn into_columns_and_missing_rows_rejected_at_their_index() {
    let fake = FakeSql::new(Dialect::Mysql).result(Ok(Rows {
        columns: vec!["sku".into(), "title".into()],
        rows: vec![vec![Sql::Text("a-1".into()), Sql::Text("Lamp".into())]],
    }));
    let mut host = TestHost::new().with_sql(fake);
    let out = host
        .transform::<Lookup>(
            r#"{"connection":"db","table":"products","schema":"shop","key":"sku","columns":["title"],"into":"product","missing":"reject"}"#,
            records(&[
                json!({"sku": "zz"}),
                json!({"sku": "a-1", "n": 2}),
                json!({"sku": {"nested": 1}}),
                json!([1]),
                json!({"n": 1}),
            ]),
        )
        .unwrap();
    assert_eq!(
        values(&out.records),
        [json!({"sku": "a-1", "n": 2, "product": {"title": "Lamp"}})]
    );
    let mut rejected = out.rejected.clone();
    rejected.sort();
    assert_eq!(
        rejected,
        [
            (0, r#"no row in "products" with sku = zz"#.to_string()),
            (
                2,
                r#"field "sku" is an object or an array, not a key"#.to_string()
            ),
            (3, "the value is not a JSON object".to_string()),
            (4, r#"no row in "products" with sku = (none)"#.to_string()),
        ]
    );
    let calls = &host.sql.as_ref().unwrap().calls;
    assert!(
        matches!(&calls[1], SqlCall::Query { statement, .. }
            if statement == "SELECT `sku`, `title` FROM `shop`.`products` WHERE `sku` IN (?, ?)"),
        "{:?}",
        calls[1]
    );
}

#[test]
fn drop_and_keep_with_into_and_bad_configs() {
    let fake = FakeSql::new(Dialect::Sqlite).result(Ok(customers(&[])));
    let mut host = TestHost::new().with_sql(fake);
    let out = host
        .transform::<Lookup>(
            r#"{"connection":"db","table":"customers","key":"id","into":"c"}"#,
            records(&[json!({"id": 5})]),
        )
        .unwrap();
    assert_eq!(values(&out.records), [json!({"id": 5, "c": null})]);
    let fake = FakeSql::new(Dialect::Sqlite).result(Ok(customers(&[])));
    let mut host = TestHost::new().with_sql(fake);
    let out = host
        .transform::<Lookup>(
            r#"{"connection":"db","table":"customers","key":"id","missing":"drop"}"#,
            records(&[json!({"id": 5})]),
        )
        .unwrap();
    assert!(out.records.is_empty() && out.rejected.is_empty());

    for (config, why) in [
        (
            r#"{"connection":"","table":"t","key":"k"}"#,
            "connection must not be empty",
        ),
        (
            r#"{"connection":"c","table":"t","key":"k","cache_size":0}"#,
            "cache_size must be at least 1",
        ),
        (
            r#"{"connection":"c","table":"t","key":"k","columns":[]}"#,
            "columns must not be empty",
        ),
    ] {
        let e = Lookup::open(parse_config(config).unwrap()).unwrap_err();
        assert_eq!(e, Error::InvalidConfig(why.into()), "{config}");
    }
    assert!(parse_config::<Config>(r#"{"connection":"c","table":"t"}"#).is_err());
    assert!(
        parse_config::<Config>(r#"{"connection":"c","table":"t","key":"k","missing":"skip"}"#)
            .is_err()
    );
    let schema: Value = serde_json::from_str(CONFIG_SCHEMA).unwrap();
    // SQL needs connection and table; the HTTP form (tests_http.rs) needs http instead.
    assert_eq!(schema["required"], json!(["key"]));
    assert_eq!(
        schema["oneOf"][0]["required"],
        json!(["connection", "table"])
    );
}

#[test]
fn a_table_without_the_column_is_named_and_numbers_compare_by_value() {
    let fake = FakeSql::new(Dialect::Postgres).result(Ok(Rows {
        columns: vec!["code".into()],
        rows: vec![],
    }));
    let mut host = TestHost::new().with_sql(fake);
    let e = host
        .transform::<Lookup>(
            r#"{"connection":"db","table":"t","key":"id"}"#,
            records(&[json!({"id": 1})]),
        )
        .unwrap_err();
    assert_eq!(
        e,
        Error::InvalidConfig(r#"table "t" has no column "id""#.into())
    );
    assert_eq!(key_text_of_json(&json!(5.0)).unwrap().0, "5");
    assert_eq!(key_text_of_sql(&Sql::Double(5.0)).unwrap(), "5");
    assert_eq!(key_text_of_sql(&Sql::Integer(5)).unwrap(), "5");
    assert_eq!(key_text_of_json(&json!(1.5)).unwrap().0, "1.5");
}
