//! Native tests of the pure parts: config, statements, bound values, batch planning.
use autoflow_plugin_sdk::testing::TestHost;
use autoflow_plugin_sdk::{Error, Record, parse_config};
use serde_json::{Value, json};

use super::statement::{self, Column, MAX_PARAMS};
use super::*;

fn col(name: &str, ty: &str) -> Column {
    Column {
        name: name.into(),
        ty: ty.into(),
    }
}

fn records(values: &[Value]) -> Vec<Record> {
    values
        .iter()
        .map(|v| Record::from_json(v).unwrap())
        .collect()
}

#[test]
fn config_parses_and_is_checked() {
    let c: Config = parse_config(r#"{"connection":"wh","table":"orders","key":["id"]}"#).unwrap();
    assert_eq!(c.key.as_deref(), Some(&["id".to_string()][..]));
    c.check().unwrap();
    assert!(matches!(
        parse_config::<Config>(r#"{"connection":"wh","table":"t","nope":1}"#),
        Err(Error::InvalidConfig(_))
    ));
    assert!(
        matches!(parse_config::<Config>(r#"{"table":"t"}"#), Err(Error::InvalidConfig(m)) if m.contains("connection"))
    );
    let bad: Config =
        parse_config(r#"{"connection":"wh","table":"t","key":["id"],"columns":["a"]}"#).unwrap();
    assert!(bad.check().unwrap_err().contains("\"id\""));
    let twice: Config =
        parse_config(r#"{"connection":"wh","table":"t","columns":["a","a"]}"#).unwrap();
    assert!(twice.check().unwrap_err().contains("twice"));
    let empty: Config = parse_config(r#"{"connection":"","table":"t"}"#).unwrap();
    assert!(matches!(
        PostgresSink::open(empty),
        Err(Error::InvalidConfig(_))
    ));
}

#[test]
fn schema_is_json_and_lists_the_keys() {
    let s: Value = serde_json::from_str(CONFIG_SCHEMA).unwrap();
    let props = s["properties"].as_object().unwrap();
    for k in ["connection", "table", "schema", "key", "columns"] {
        assert!(props.contains_key(k), "{k}");
    }
    assert_eq!(
        PostgresSink::metadata().config_schema.as_deref(),
        Some(CONFIG_SCHEMA)
    );
}

#[test]
fn identifiers_are_quoted() {
    assert_eq!(statement::quote(r#"Odd"Name"#), r#""Odd""Name""#);
    assert_eq!(statement::table_sql(None, "orders"), r#""orders""#);
    assert_eq!(
        statement::table_sql(Some("my schema"), "T"),
        r#""my schema"."T""#
    );
}

#[test]
fn plain_insert_casts_every_parameter() {
    let cols = [
        col("id", "integer"),
        col("doc", "jsonb"),
        col("at", "timestamp with time zone"),
    ];
    assert_eq!(
        insert_sql(r#""t""#, &cols, &[], 2),
        r#"INSERT INTO "t" ("id", "doc", "at") VALUES ($1::integer, $2::jsonb, $3::timestamp with time zone), ($4::integer, $5::jsonb, $6::timestamp with time zone)"#
    );
}

#[test]
fn upsert_updates_the_other_columns() {
    let cols = [
        col("id", "bigint"),
        col("name", "text"),
        col("n", "numeric(10,2)"),
    ];
    assert_eq!(
        insert_sql(r#""t""#, &cols, &["id".into()], 1),
        r#"INSERT INTO "t" ("id", "name", "n") VALUES ($1::bigint, $2::text, $3::numeric(10,2)) ON CONFLICT ("id") DO UPDATE SET "name" = EXCLUDED."name", "n" = EXCLUDED."n""#
    );
    let only_key = [col("a", "text"), col("b", "text")];
    assert!(
        insert_sql(r#""t""#, &only_key, &["a".into(), "b".into()], 1)
            .ends_with(r#"ON CONFLICT ("a", "b") DO NOTHING"#)
    );
}

#[test]
fn statements_stay_under_the_parameter_limit() {
    assert_eq!(rows_per_statement(1), MAX_PARAMS);
    assert_eq!(rows_per_statement(3), MAX_PARAMS / 3);
    assert!(rows_per_statement(7) * 7 < 65_535);
    assert_eq!(rows_per_statement(100_000), 1);
    assert_eq!(rows_per_statement(0), MAX_PARAMS);
}

#[test]
fn values_are_bound_as_text() {
    assert_eq!(bind_text(&json!(null), "integer"), None);
    assert_eq!(
        bind_text(&json!("2024-01-02T03:04:05Z"), "timestamp with time zone").as_deref(),
        Some("2024-01-02T03:04:05Z")
    );
    assert_eq!(bind_text(&json!(12), "integer").as_deref(), Some("12"));
    assert_eq!(bind_text(&json!(1.5), "numeric").as_deref(), Some("1.5"));
    assert_eq!(bind_text(&json!(true), "boolean").as_deref(), Some("true"));
    assert_eq!(
        bind_text(&json!({"a": [1]}), "jsonb").as_deref(),
        Some(r#"{"a":[1]}"#)
    );
    assert_eq!(bind_text(&json!([1, 2]), "jsonb").as_deref(), Some("[1,2]"));
    assert_eq!(
        bind_text(&json!(["a", "b\"c\\", null, 3]), "text[]").as_deref(),
        Some(r#"{"a","b\"c\\",NULL,"3"}"#)
    );
    assert_eq!(
        bind_text(&json!([[1, 2], [3, 4]]), "integer[]").as_deref(),
        Some(r#"{{"1","2"},{"3","4"}}"#)
    );
}

#[test]
fn non_objects_are_fatal_with_their_index() {
    let mut rs = records(&[json!({"a": 1})]);
    rs.push(Record::new("[1]"));
    rs.push(Record::new("not json"));
    let e = statement::objects(&rs).unwrap_err();
    assert!(
        matches!(&e, Error::Fatal(m) if m.starts_with("batch index 1:")),
        "{e}"
    );
    let e = statement::objects(&rs[2..]).unwrap_err();
    assert!(
        matches!(&e, Error::Fatal(m) if m.starts_with("batch index 0:") && m.contains("not valid JSON")),
        "{e}"
    );
}

#[test]
fn rows_follow_the_columns() {
    let batch = records(&[json!({"b": "x", "a": 1, "extra": true}), json!({"a": 2})]);
    let objects = statement::objects(&batch).unwrap();
    assert_eq!(
        statement::default_columns(&objects[0], &[]),
        ["b", "a", "extra"]
    );
    assert_eq!(
        statement::default_columns(&objects[1], &["id".into()]),
        ["a", "id"]
    );
    let cols = [col("a", "integer"), col("b", "text")];
    let rows = plan_rows(&objects, &cols, &[]).unwrap();
    assert_eq!(
        rows,
        vec![
            vec![Some("1".into()), Some("x".into())],
            vec![Some("2".into()), None]
        ]
    );
}

#[test]
fn duplicate_keys_keep_the_last_record() {
    let batch = records(&[
        json!({"id": 1, "v": "first"}),
        json!({"id": 2, "v": "other"}),
        json!({"id": "1", "v": "last"}),
        json!({"id": null, "v": "n1"}),
        json!({"id": null, "v": "n2"}),
    ]);
    let objects = statement::objects(&batch).unwrap();
    let cols = [col("id", "integer"), col("v", "text")];
    let rows = plan_rows(&objects, &cols, &["id".into()]).unwrap();
    let v: Vec<_> = rows
        .iter()
        .map(|r| r[1].clone().unwrap_or_default())
        .collect();
    assert_eq!(v, ["last", "other", "n1", "n2"]);
    // Without a key nothing is merged.
    assert_eq!(plan_rows(&objects, &cols, &[]).unwrap().len(), 5);
}

#[test]
fn a_record_without_its_key_is_fatal() {
    let batch = records(&[json!({"id": 1}), json!({"v": 2})]);
    let objects = statement::objects(&batch).unwrap();
    let e = plan_rows(&objects, &[col("id", "integer")], &["id".into()]).unwrap_err();
    assert!(
        matches!(&e, Error::Fatal(m) if m.contains("batch index 1") && m.contains("\"id\"")),
        "{e}"
    );
}

#[test]
fn unknown_columns_are_invalid_config() {
    let table = [col("id", "integer"), col("v", "text")];
    let e =
        statement::resolve_columns(&["id".into(), "nope".into()], &table, r#""t""#).unwrap_err();
    assert!(
        matches!(&e, Error::InvalidConfig(m) if m.contains("\"nope\"") && m.contains(r#""t""#)),
        "{e}"
    );
    let ok = statement::resolve_columns(&["v".into()], &table, r#""t""#).unwrap();
    assert_eq!(ok, [col("v", "text")]);
}

#[test]
fn natively_writing_says_sql_is_unavailable() {
    let e = TestHost::new()
        .sink::<PostgresSink>(
            r#"{"connection":"wh","table":"t"}"#,
            records(&[json!({"a": 1})]),
        )
        .unwrap_err();
    assert!(
        matches!(&e, Error::Fatal(m) if m.contains("not available in native tests")),
        "{e}"
    );
}

mod flow {
    //! Whole writes against the SDK's scripted database.
    use autoflow_plugin_sdk::sql::{Dialect, Rows, Value as Sql};
    use autoflow_plugin_sdk::testing::{FakeSql, SqlCall, TestHost};

    use super::*;

    fn table_columns() -> Rows {
        Rows {
            columns: vec!["attname".into(), "format_type".into()],
            rows: [("id", "integer"), ("doc", "jsonb"), ("name", "text")]
                .iter()
                .map(|(n, t)| vec![Sql::Text((*n).into()), Sql::Text((*t).into())])
                .collect(),
        }
    }

    fn write(config: &str, fake: FakeSql, batch: Vec<Record>) -> (Result<(), Error>, TestHost) {
        let mut host = TestHost::new().with_sql(fake);
        let r = host.run(|| {
            let mut sink = PostgresSink::open(parse_config(config)?)?;
            sink.write(batch)?;
            sink.write(Vec::new())?;
            sink.flush()
        });
        (r, host)
    }

    #[test]
    fn an_upsert_batch_is_one_transaction() {
        let fake = FakeSql::new(Dialect::Postgres)
            .result(Ok(table_columns()))
            .affected(Ok(2));
        let (r, host) = write(
            r#"{"connection":"wh","table":"items","key":["id"]}"#,
            fake,
            records(&[
                json!({"id": 1, "doc": {"a": 1}}),
                json!({"id": 2, "doc": null}),
                json!({"id": 1, "doc": [2]}),
            ]),
        );
        r.unwrap();
        let calls = &host.sql.as_ref().unwrap().calls;
        assert_eq!(
            calls[0],
            SqlCall::Dialect {
                connection: "wh".into()
            }
        );
        assert!(
            matches!(&calls[1], SqlCall::Query { statement, params, transaction: None, .. }
            if statement == statement::COLUMNS_SQL && params == &[Sql::Text(r#""items""#.into())])
        );
        assert_eq!(
            calls[2],
            SqlCall::Begin {
                connection: "wh".into(),
                transaction: 1
            }
        );
        let SqlCall::Execute {
            statement,
            params,
            transaction: Some(1),
            ..
        } = &calls[3]
        else {
            panic!("{:?}", calls[3]);
        };
        assert_eq!(
            statement,
            r#"INSERT INTO "items" ("id", "doc") VALUES ($1::integer, $2::jsonb), ($3::integer, $4::jsonb) ON CONFLICT ("id") DO UPDATE SET "doc" = EXCLUDED."doc""#
        );
        assert_eq!(
            params,
            &[
                Sql::Text("1".into()),
                Sql::Text("[2]".into()),
                Sql::Text("2".into()),
                Sql::Null
            ]
        );
        assert_eq!(calls[4], SqlCall::Commit { transaction: 1 });
        assert_eq!(
            calls.len(),
            5,
            "the empty batch touches nothing; the table is read once"
        );
        assert_eq!(host.counters.get("rows_written"), Some(&2));
    }

    #[test]
    fn a_failed_statement_rolls_back_and_keeps_its_kind() {
        let fake = FakeSql::new(Dialect::Postgres)
            .result(Ok(table_columns()))
            .affected(Err(Error::Retryable("connection reset".into())));
        let (r, host) = write(
            r#"{"connection":"wh","table":"items"}"#,
            fake,
            records(&[json!({"id": 1})]),
        );
        let e = r.unwrap_err();
        assert!(
            matches!(&e, Error::Retryable(m) if m.contains(r#"writing into "items""#) && m.contains("connection reset")),
            "{e}"
        );
        let calls = &host.sql.as_ref().unwrap().calls;
        assert_eq!(calls.last(), Some(&SqlCall::Rollback { transaction: 1 }));
        assert!(!host.counters.contains_key("rows_written"));
    }

    #[test]
    fn big_batches_are_split_under_the_parameter_limit() {
        let fake = FakeSql::new(Dialect::Postgres).result(Ok(table_columns()));
        let batch: Vec<Value> = (0..70_000).map(|i| json!({"id": i})).collect();
        let (r, host) = write(
            r#"{"connection":"wh","table":"items","columns":["id"]}"#,
            fake,
            records(&batch),
        );
        r.unwrap();
        let sizes: Vec<usize> = host
            .sql
            .as_ref()
            .unwrap()
            .calls
            .iter()
            .filter_map(|c| match c {
                SqlCall::Execute {
                    params,
                    transaction: Some(1),
                    ..
                } => Some(params.len()),
                _ => None,
            })
            .collect();
        assert_eq!(sizes, [MAX_PARAMS, 70_000 - MAX_PARAMS]);
    }

    #[test]
    fn the_table_and_columns_must_exist_on_postgres() {
        let (r, _) = write(
            r#"{"connection":"wh","table":"items","columns":["id","nope"]}"#,
            FakeSql::new(Dialect::Postgres).result(Ok(table_columns())),
            records(&[json!({"id": 1})]),
        );
        assert!(matches!(r, Err(Error::InvalidConfig(m)) if m.contains("\"nope\"")));
        let (r, _) = write(
            r#"{"connection":"wh","table":"items"}"#,
            FakeSql::new(Dialect::Postgres).result(Ok(table_columns())),
            records(&[json!({"id": 1, "extra": 2})]),
        );
        assert!(matches!(r, Err(Error::InvalidConfig(m)) if m.contains("\"extra\"")));
        let (r, _) = write(
            r#"{"connection":"wh","table":"gone"}"#,
            FakeSql::new(Dialect::Postgres),
            records(&[json!({"id": 1})]),
        );
        assert!(matches!(r, Err(Error::InvalidConfig(m)) if m.contains(r#"no table "gone""#)));
        let (r, _) = write(
            r#"{"connection":"wh","table":"items"}"#,
            FakeSql::new(Dialect::Mysql),
            records(&[json!({"id": 1})]),
        );
        assert!(matches!(r, Err(Error::InvalidConfig(m)) if m.contains("mysql")));
    }
}

#[test]
fn raw_values_bind_as_their_parsed_form_would() {
    for (v, ty) in [
        (json!(null), "integer"),
        (json!("2024-01-02T03:04:05Z"), "timestamp with time zone"),
        (json!("quote \" and \\ and é"), "text"),
        (json!(12), "integer"),
        (json!(1.5), "numeric"),
        (json!(true), "boolean"),
        (json!({"a": [1]}), "jsonb"),
        (json!([1, 2]), "jsonb"),
        (json!(["a", "b\"c\\", null, 3]), "text[]"),
        (json!([[1, 2], [3, 4]]), "integer[]"),
    ] {
        let text = v.to_string();
        let raw: &serde_json::value::RawValue = serde_json::from_str(&text).unwrap();
        assert_eq!(
            statement::bind_raw(raw, ty),
            bind_text(&v, ty),
            "{text} as {ty}"
        );
    }
}
