//! Native tests of the pure parts: config, queries, cursors, rows to records.
use autoflow_plugin_sdk::testing::TestHost;
use autoflow_plugin_sdk::{Error, parse_config};
use serde_json::json;

use super::*;

fn config(extra: &str) -> Config {
    parse_config(&format!(
        r#"{{"connection":"db","table":"orders","cursor_column":"id"{extra}}}"#
    ))
    .unwrap()
}

#[test]
fn config_parses_and_is_checked() {
    let c = config(r#","where":"status = 'paid'","batch_limit":50"#);
    assert_eq!(c.where_.as_deref(), Some("status = 'paid'"));
    assert_eq!(c.batch_limit, Some(50));
    c.check().unwrap();
    assert!(parse_config::<Config>(r#"{"connection":"db","table":"t"}"#).is_err());
    assert!(
        parse_config::<Config>(r#"{"connection":"db","table":"t","cursor_column":"id","limit":3}"#)
            .is_err()
    );
    assert!(
        config(r#","columns":["a","a"]"#)
            .check()
            .unwrap_err()
            .contains("twice")
    );
    assert!(config(r#","where":" ""#).check().is_err());
    let schema: serde_json::Value = serde_json::from_str(CONFIG_SCHEMA).unwrap();
    assert_eq!(
        schema["required"],
        json!(["connection", "table", "cursor_column"])
    );
}

#[test]
fn first_and_later_queries_per_dialect() {
    let c = config("");
    assert_eq!(
        select_sql(Dialect::Postgres, &c, false, 100),
        r#"SELECT * FROM "orders" WHERE "id" IS NOT NULL ORDER BY "id" LIMIT 100"#
    );
    assert_eq!(
        select_sql(Dialect::Sqlite, &c, true, 5),
        r#"SELECT * FROM "orders" WHERE "id" > $1 ORDER BY "id" LIMIT 5"#
    );
    let c = config(
        r#","schema":"shop","columns":["status","na`me"],"key_column":"code","where":"amount > 10""#,
    );
    assert_eq!(
        select_sql(Dialect::Mysql, &c, true, 7),
        "SELECT `status`, `na``me`, `id`, `code` FROM `shop`.`orders` WHERE `id` > ? AND (amount > 10) ORDER BY `id` LIMIT 7"
    );
    assert_eq!(
        select_sql(Dialect::Postgres, &c, false, 1)
            .split(" FROM")
            .next(),
        Some(r#"SELECT "status", "na`me", "id", "code""#)
    );
}

#[test]
fn cursors_round_trip() {
    assert_eq!(parse_cursor("42").unwrap(), SqlValue::Integer(42));
    assert_eq!(
        parse_cursor(r#""2024-05-01 10:00""#).unwrap(),
        SqlValue::Text("2024-05-01 10:00".into())
    );
    assert!(matches!(parse_cursor("{}"), Err(Error::Fatal(_))));
    assert!(matches!(parse_cursor("nope"), Err(Error::Fatal(_))));
    for v in [
        SqlValue::Integer(-3),
        SqlValue::Text("a\"b".into()),
        SqlValue::Double(2.5),
    ] {
        assert_eq!(parse_cursor(&cursor_text(&v).unwrap()).unwrap(), v);
    }
    assert_eq!(cursor_text(&SqlValue::Text("x".into())).unwrap(), r#""x""#);
    assert!(cursor_text(&SqlValue::Null).is_err());
    assert!(SqlSource::open(config(""), Some("[1]".into())).is_err());
}

#[test]
fn rows_become_records() {
    let rows = Rows {
        columns: vec!["status".into(), "raw".into(), "id".into(), "code".into()],
        rows: vec![
            vec![
                SqlValue::Text("paid".into()),
                SqlValue::Bytes(vec![1, 2, 3]),
                SqlValue::Integer(1),
                SqlValue::Text("A-1".into()),
            ],
            vec![
                SqlValue::Null,
                SqlValue::Null,
                SqlValue::Integer(5),
                SqlValue::Null,
            ],
        ],
    };
    // Configured columns: the cursor and key columns are read but not shown.
    let c = config(r#","columns":["status","raw"],"key_column":"code""#);
    let (records, last) = to_batch(&rows, &c).unwrap();
    assert_eq!(last, Some(SqlValue::Integer(5)));
    assert_eq!(records[0].value, br#"{"status":"paid","raw":"AQID"}"#);
    assert_eq!(records[0].key.as_deref(), Some(&b"A-1"[..]));
    assert_eq!(records[1].value, br#"{"status":null,"raw":null}"#);
    assert_eq!(records[1].key, None);
    // All columns.
    let (records, _) = to_batch(&rows, &config(r#","key_column":"id""#)).unwrap();
    assert_eq!(
        records[1].value,
        br#"{"status":null,"raw":null,"id":5,"code":null}"#
    );
    assert_eq!(records[1].key.as_deref(), Some(&b"5"[..]));
    // A cursor column the result lacks.
    let e = to_batch(
        &rows,
        &parse_config::<Config>(r#"{"connection":"db","table":"t","cursor_column":"seq"}"#)
            .unwrap(),
    )
    .unwrap_err();
    assert!(
        matches!(&e, Error::Fatal(m) if m.contains("\"seq\"")),
        "{e}"
    );
}

#[test]
fn natively_reading_fails() {
    let e = TestHost::new()
        .source::<SqlSource>(
            r#"{"connection":"db","table":"t","cursor_column":"id"}"#,
            None,
            10,
        )
        .unwrap_err();
    assert!(
        matches!(&e, Error::Fatal(m) if m.contains("not available in native tests")),
        "{e}"
    );
}

mod flow {
    //! Whole runs against the SDK's scripted database.
    use autoflow_plugin_sdk::testing::{FakeSql, SqlCall, TestHost};

    use super::*;

    fn rows(ids: &[i64]) -> Rows {
        Rows {
            columns: vec!["id".into(), "name".into()],
            rows: ids
                .iter()
                .map(|i| vec![SqlValue::Integer(*i), SqlValue::Text(format!("n{i}"))])
                .collect(),
        }
    }

    #[test]
    fn a_run_reads_until_a_query_returns_nothing() {
        let fake = FakeSql::new(Dialect::Sqlite)
            .result(Ok(rows(&[1, 2])))
            .result(Ok(rows(&[3])));
        let mut host = TestHost::new().with_sql(fake);
        let batches = host
            .source::<SqlSource>(r#"{"connection":"db","table":"t","cursor_column":"id","key_column":"name","batch_limit":2}"#, None, 100)
            .unwrap();
        let cursors: Vec<_> = batches
            .iter()
            .map(|b| b.cursor.clone().unwrap_or_default())
            .collect();
        assert_eq!(cursors, ["2", "3"]);
        assert_eq!(batches[0].records[1].value, br#"{"id":2,"name":"n2"}"#);
        assert_eq!(batches[1].records[0].key.as_deref(), Some(&b"n3"[..]));
        let queries: Vec<(String, Vec<SqlValue>)> = host
            .sql
            .as_ref()
            .unwrap()
            .calls
            .iter()
            .filter_map(|c| match c {
                SqlCall::Query {
                    statement, params, ..
                } => Some((statement.clone(), params.clone())),
                _ => None,
            })
            .collect();
        assert_eq!(queries.len(), 3);
        assert_eq!(
            queries[0],
            (
                r#"SELECT * FROM "t" WHERE "id" IS NOT NULL ORDER BY "id" LIMIT 2"#.into(),
                vec![]
            )
        );
        assert_eq!(
            queries[1],
            (
                r#"SELECT * FROM "t" WHERE "id" > $1 ORDER BY "id" LIMIT 2"#.into(),
                vec![SqlValue::Integer(2)]
            )
        );
        assert_eq!(queries[2].1, vec![SqlValue::Integer(3)]);
        assert_eq!(host.counters.get("rows_read"), Some(&3));
    }

    #[test]
    fn a_resumed_run_starts_after_the_committed_cursor() {
        let mut host = TestHost::new().with_sql(FakeSql::new(Dialect::Mysql));
        let batches = host
            .source::<SqlSource>(
                r#"{"connection":"db","table":"t","cursor_column":"updated"}"#,
                Some(r#""2024-05-01""#.into()),
                10,
            )
            .unwrap();
        assert!(batches.is_empty());
        let calls = &host.sql.as_ref().unwrap().calls;
        assert_eq!(
            calls[0],
            SqlCall::Dialect {
                connection: "db".into()
            }
        );
        assert!(matches!(&calls[1], SqlCall::Query { statement, params, .. }
            if statement == "SELECT * FROM `t` WHERE `updated` > ? ORDER BY `updated` LIMIT 10"
                && params == &[SqlValue::Text("2024-05-01".into())]));
    }

    #[test]
    fn a_service_failure_keeps_its_kind() {
        let fake = FakeSql::new(Dialect::Postgres).result(Err(Error::Retryable("timeout".into())));
        let e = TestHost::new()
            .with_sql(fake)
            .source::<SqlSource>(
                r#"{"connection":"db","table":"t","cursor_column":"id"}"#,
                None,
                10,
            )
            .unwrap_err();
        assert_eq!(e, Error::Retryable("timeout".into()));
    }
}
