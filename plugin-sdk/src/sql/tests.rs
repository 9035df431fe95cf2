//! Unit tests of the SQL values, rows and the native fake.
use serde_json::json;

use super::*;
use crate::Error;

#[test]
fn json_to_value() {
    assert_eq!(Value::from(&json!(null)), Value::Null);
    assert_eq!(Value::from(&json!(true)), Value::Boolean(true));
    assert_eq!(Value::from(&json!(-42)), Value::Integer(-42));
    assert_eq!(Value::from(&json!(1.5)), Value::Double(1.5));
    assert_eq!(Value::from(&json!("hé")), Value::Text("hé".into()));
    assert_eq!(
        Value::from(&json!(u64::MAX)),
        Value::Text(u64::MAX.to_string())
    );
    assert_eq!(
        Value::from(&json!([1, "a"])),
        Value::Text(r#"[1,"a"]"#.into())
    );
    assert_eq!(
        Value::from(&json!({"b": 1, "a": [true]})),
        Value::Text(r#"{"b":1,"a":[true]}"#.into())
    );
    assert_eq!(Value::from(json!("owned")), Value::Text("owned".into()));
}

#[test]
fn value_to_json() {
    assert_eq!(Value::Null.to_json(), json!(null));
    assert_eq!(Value::Boolean(false).to_json(), json!(false));
    assert_eq!(Value::Integer(i64::MIN).to_json(), json!(i64::MIN));
    assert_eq!(Value::Double(0.25).to_json(), json!(0.25));
    assert_eq!(Value::Double(f64::NAN).to_json(), json!(null));
    assert_eq!(Value::Text("x".into()).to_json(), json!("x"));
    assert_eq!(Value::Bytes(b"hello".to_vec()).to_json(), json!("aGVsbG8="));
    assert_eq!(Json::from(Value::Text("y".into())), json!("y"));
}

#[test]
fn scalars_round_trip_through_json() {
    for j in [json!(null), json!(true), json!(7), json!(-7.5), json!("s")] {
        assert_eq!(Value::from(&j).to_json(), j);
    }
}

#[test]
fn text_of_values() {
    assert_eq!(Value::Null.to_text(), None);
    assert_eq!(Value::Integer(12).to_text().as_deref(), Some("12"));
    assert_eq!(
        Value::Text("a\"b".into()).to_text().as_deref(),
        Some("a\"b")
    );
    assert_eq!(Value::Boolean(true).to_text().as_deref(), Some("true"));
    assert_eq!(Value::Bytes(vec![0xff]).to_text().as_deref(), Some("/w=="));
}

#[test]
fn from_rust_values() {
    assert_eq!(Value::from(3i32), Value::Integer(3));
    assert_eq!(Value::from(Some("a")), Value::Text("a".into()));
    assert_eq!(Value::from(None::<i64>), Value::Null);
    assert_eq!(Value::from(vec![1u8]), Value::Bytes(vec![1]));
}

#[test]
fn base64_matches_rfc4648() {
    for (input, out) in [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
    ] {
        assert_eq!(base64(input.as_bytes()), out);
    }
    assert_eq!(base64(&[0xfb, 0xff]), "+/8=");
}

#[test]
fn rows_as_json_objects() {
    let rows = Rows {
        columns: vec!["id".into(), "name".into(), "raw".into()],
        rows: vec![
            vec![Value::Integer(1), Value::Text("a".into()), Value::Null],
            vec![Value::Integer(2), Value::Null, Value::Bytes(vec![1, 2])],
        ],
    };
    let objects = rows.to_json_objects();
    assert_eq!(
        Json::Object(objects[0].clone()),
        json!({"id": 1, "name": "a", "raw": null})
    );
    assert_eq!(
        Json::Object(objects[1].clone()),
        json!({"id": 2, "name": null, "raw": "AQI="})
    );
    let keys: Vec<_> = objects[0].keys().cloned().collect();
    assert_eq!(keys, ["id", "name", "raw"]);
    assert_eq!(rows.column("name"), Some(1));
    assert_eq!(rows.len(), 2);
}

#[test]
fn dialect_helpers() {
    assert_eq!(Dialect::Postgres.placeholder(3), "$3");
    assert_eq!(Dialect::Sqlite.placeholder(1), "$1");
    assert_eq!(Dialect::Mysql.placeholder(9), "?");
    assert_eq!(
        Dialect::Postgres.quote_ident(r#"we"ird.name"#),
        r#""we""ird.name""#
    );
    assert_eq!(Dialect::Mysql.quote_ident("a`b"), "`a``b`");
    assert_eq!(Dialect::Sqlite.as_str(), "sqlite");
}

#[test]
fn native_calls_say_they_are_unavailable() {
    let e = query("db", "SELECT 1", &[]).err();
    assert!(matches!(e, Some(Error::Fatal(m)) if m.contains("not available in native tests")));
    assert!(Transaction::begin("db").is_err());
    assert!(dialect("db").is_err());
}

#[test]
fn a_fake_database_answers_and_records() {
    use crate::testing::{FakeSql, SqlCall, TestHost};
    let rows = Rows {
        columns: vec!["n".into()],
        rows: vec![vec![Value::Integer(1)]],
    };
    let mut host = TestHost::new().with_sql(
        FakeSql::new(Dialect::Mysql)
            .result(Ok(rows.clone()))
            .affected(Ok(3))
            .affected(Err(Error::Retryable("busy".into()))),
    );
    host.run(|| {
        assert_eq!(dialect("db").unwrap(), Dialect::Mysql);
        assert_eq!(query("db", "SELECT ?", &[Value::from(1)]).unwrap(), rows);
        let tx = Transaction::begin("db").unwrap();
        assert_eq!(tx.execute("UPDATE t SET a = 1", &[]).unwrap(), 3);
        tx.commit().unwrap();
        let tx = begin("db").unwrap();
        assert_eq!(tx.execute("x", &[]), Err(Error::Retryable("busy".into())));
        drop(tx);
        assert!(query("db", "SELECT 2", &[]).unwrap().is_empty());
    });
    let calls = &host.sql.as_ref().unwrap().calls;
    assert_eq!(
        calls[0],
        SqlCall::Dialect {
            connection: "db".into()
        }
    );
    assert!(
        matches!(&calls[1], SqlCall::Query { params, transaction: None, .. } if params == &[Value::Integer(1)])
    );
    assert_eq!(
        calls[2],
        SqlCall::Begin {
            connection: "db".into(),
            transaction: 1
        }
    );
    assert!(matches!(
        &calls[3],
        SqlCall::Execute {
            transaction: Some(1),
            ..
        }
    ));
    assert_eq!(calls[4], SqlCall::Commit { transaction: 1 });
    assert_eq!(
        calls[5],
        SqlCall::Begin {
            connection: "db".into(),
            transaction: 2
        }
    );
    assert_eq!(calls[7], SqlCall::Rollback { transaction: 2 });
    assert_eq!(calls.len(), 9);
}
