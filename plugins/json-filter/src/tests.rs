//! Unit tests for `json-filter`, run natively against the SDK's `TestHost`.
use autoflow_plugin_sdk::testing::TestHost;
use autoflow_plugin_sdk::{Error, Record, Transform};
use serde_json::Value;

use super::{CONFIG_SCHEMA, JsonFilter};

const ORDERS: &[&str] = &[
    r#"{"id":1,"status":"paid","amount":120.5,"tags":["vip","eu"],"customer":{"country":"DE"}}"#,
    r#"{"id":2,"status":"pending","amount":80,"tags":[],"customer":{"country":"FR"}}"#,
    r#"{"id":3,"status":"paid","amount":15,"customer":{"country":"US","vip":true}}"#,
    r#"{"id":4,"status":"refunded","amount":"n/a","note":null,"items":[{"sku":"A-1"}]}"#,
];

/// The ids of the records `config` keeps out of [`ORDERS`].
fn kept(config: &str) -> Vec<u64> {
    let records = ORDERS.iter().map(|s| Record::new(*s)).collect();
    let out = TestHost::new()
        .transform::<JsonFilter>(config, records)
        .unwrap();
    assert!(out.rejected.is_empty());
    out.records
        .iter()
        .map(|r| r.json::<Value>().unwrap()["id"].as_u64().unwrap())
        .collect()
}

fn config_error(config: &str) -> String {
    match TestHost::new().transform::<JsonFilter>(config, vec![]) {
        Err(Error::InvalidConfig(m)) => m,
        other => panic!("{config}: expected invalid config, got {other:?}"),
    }
}

#[test]
fn equals_shorthand_and_eq() {
    assert_eq!(kept(r#"{"field":"status","equals":"paid"}"#), [1, 3]);
    assert_eq!(
        kept(r#"{"field":"status","op":"eq","value":"paid"}"#),
        [1, 3]
    );
    assert_eq!(
        kept(r#"{"field":"amount","equals":80.0}"#),
        [2],
        "numbers compare by value"
    );
    assert_eq!(kept(r#"{"field":"note","equals":null}"#), [4]);
}

#[test]
fn ne_is_false_for_missing_fields() {
    assert_eq!(
        kept(r#"{"field":"status","op":"ne","value":"paid"}"#),
        [2, 4]
    );
    assert_eq!(kept(r#"{"field":"note","op":"ne","value":1}"#), [4]);
    assert_eq!(
        kept(r#"{"not":{"field":"note","op":"eq","value":null}}"#),
        [1, 2, 3]
    );
}

#[test]
fn ordering_numbers_and_strings() {
    assert_eq!(kept(r#"{"field":"amount","op":"gt","value":80}"#), [1]);
    assert_eq!(kept(r#"{"field":"amount","op":"gte","value":80}"#), [1, 2]);
    assert_eq!(kept(r#"{"field":"amount","op":"lt","value":80.5}"#), [2, 3]);
    assert_eq!(kept(r#"{"field":"amount","op":"lte","value":15}"#), [3]);
    assert_eq!(
        kept(r#"{"field":"status","op":"gt","value":"paid"}"#),
        [2, 4]
    );
    // "n/a" is a string: never ordered against a number.
    assert_eq!(kept(r#"{"field":"amount","op":"lt","value":"z"}"#), [4]);
}

#[test]
fn big_integers_compare_exactly() {
    let records = vec![
        Record::new(r#"{"n":9007199254740993}"#),
        Record::new(r#"{"n":18446744073709551615}"#),
        Record::new(r#"{"n":-1}"#),
    ];
    let cfg = r#"{"field":"n","op":"gt","value":9007199254740992}"#;
    let out = TestHost::new()
        .transform::<JsonFilter>(cfg, records)
        .unwrap();
    assert_eq!(out.records.len(), 2);
}

#[test]
fn contains_in_exists() {
    assert_eq!(
        kept(r#"{"field":"status","op":"contains","value":"end"}"#),
        [2]
    );
    assert_eq!(
        kept(r#"{"field":"tags","op":"contains","value":"vip"}"#),
        [1]
    );
    assert_eq!(
        kept(r#"{"field":"status","op":"in","value":["pending","refunded"]}"#),
        [2, 4]
    );
    assert_eq!(
        kept(r#"{"field":"amount","op":"in","value":[15.0,80]}"#),
        [2, 3]
    );
    assert_eq!(kept(r#"{"field":"tags","op":"exists"}"#), [1, 2]);
    assert_eq!(
        kept(r#"{"field":"note","op":"exists"}"#),
        [4],
        "null is present"
    );
    assert_eq!(
        kept(r#"{"field":"tags","op":"exists","value":false}"#),
        [3, 4]
    );
}

#[test]
fn dotted_paths_and_array_indexes() {
    assert_eq!(kept(r#"{"field":"customer.country","equals":"DE"}"#), [1]);
    assert_eq!(kept(r#"{"field":"customer.vip","op":"exists"}"#), [3]);
    assert_eq!(kept(r#"{"field":"items.0.sku","equals":"A-1"}"#), [4]);
    assert_eq!(kept(r#"{"field":"tags.1","equals":"eu"}"#), [1]);
    assert!(kept(r#"{"field":"status.x","op":"exists"}"#).is_empty());
}

#[test]
fn all_any_not() {
    let cfg = r#"{"all":[{"field":"status","equals":"paid"},
                         {"any":[{"field":"customer.country","equals":"US"},
                                 {"field":"amount","op":"gt","value":100}]}]}"#;
    assert_eq!(kept(cfg), [1, 3]);
    assert_eq!(
        kept(r#"{"not":{"field":"status","equals":"paid"}}"#),
        [2, 4]
    );
    assert_eq!(kept(r#"{"all":[]}"#), [1, 2, 3, 4]);
    assert!(kept(r#"{"any":[]}"#).is_empty());
}

#[test]
fn emits_records_unchanged_and_rejects_non_json() {
    let odd = Record::new(r#"{ "status" : "paid" ,"x":1.50}"#).with_key("k");
    let records = vec![
        odd.clone(),
        Record::new("not json"),
        Record::new(r#"{"status":"x"}"#),
    ];
    let out = TestHost::new()
        .transform::<JsonFilter>(r#"{"field":"status","equals":"paid"}"#, records)
        .unwrap();
    assert_eq!(out.records, vec![odd]);
    assert_eq!(out.rejected.len(), 1);
    assert_eq!(out.rejected[0].0, 1);
    assert!(
        out.rejected[0].1.starts_with("value is not valid JSON"),
        "{}",
        out.rejected[0].1
    );
}

#[test]
fn non_object_values_do_not_match() {
    let records = vec![
        Record::new("5"),
        Record::new(r#""paid""#),
        Record::new("[1]"),
    ];
    let out = TestHost::new()
        .transform::<JsonFilter>(r#"{"field":"status","equals":"paid"}"#, records)
        .unwrap();
    assert!(out.records.is_empty() && out.rejected.is_empty());
}

#[test]
fn config_errors_are_clear() {
    assert!(
        config_error(r#"{"field":"a","op":"like","value":1}"#).contains("unknown variant `like`")
    );
    assert!(config_error(r#"{"field":"a","op":"in","value":"x"}"#).contains("`in` needs an array"));
    assert!(config_error(r#"{"field":"a","op":"eq","equals":1}"#).contains("not both"));
    assert!(config_error(r#"{"field":"a","op":"eq"}"#).contains("needs a `value`"));
    assert!(config_error(r#"{"field":"a","op":"gt","value":true}"#).contains("number or string"));
    assert!(config_error(r#"{"field":"a","op":"exists","value":1}"#).contains("boolean"));
    assert!(config_error(r#"{"field":"a"}"#).contains("needs `op` or `equals`"));
    assert!(
        config_error(r#"{"field":"a","equals":1,"value":2}"#).contains("`value` goes with `op`")
    );
    assert!(config_error(r#"{"op":"eq","value":1}"#).contains("needs `field`"));
    assert!(config_error(r#"{"field":"a..b","equals":1}"#).contains("empty segment"));
    assert!(config_error(r#"{"field":"a","equals":1,"all":[]}"#).contains("exactly one"));
    assert!(config_error("{}").contains("empty condition"));
    assert!(config_error(r#"{"feild":"a","equals":1}"#).contains("unknown field `feild`"));
    let nested = config_error(
        r#"{"all":[{"field":"a","equals":1},{"not":{"field":"b","op":"in","value":1}}]}"#,
    );
    assert!(nested.starts_with("all[1].not: "), "{nested}");
}

#[test]
fn null_value_is_an_operand() {
    assert_eq!(kept(r#"{"field":"note","op":"eq","value":null}"#), [4]);
}

#[test]
fn metadata_and_schema() {
    let m = JsonFilter::metadata();
    assert_eq!(
        (m.name.as_str(), m.version.as_str()),
        ("json-filter", "0.1.0")
    );
    let schema: Value = serde_json::from_str(CONFIG_SCHEMA).unwrap();
    let cond = &schema["$defs"]["condition"];
    assert_eq!(cond["additionalProperties"], false);
    let props: Vec<&String> = cond["properties"].as_object().unwrap().keys().collect();
    assert_eq!(
        props,
        ["field", "op", "value", "equals", "all", "any", "not"]
    );
    let ops: Vec<&str> = cond["properties"]["op"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for op in &ops {
        let cfg = format!(r#"{{"field":"a","op":"{op}","value":[1]}}"#);
        let ok = TestHost::new().transform::<JsonFilter>(&cfg, vec![]);
        assert!(
            !matches!(ok, Err(Error::InvalidConfig(ref m)) if m.contains("unknown variant")),
            "{op}"
        );
    }
    assert_eq!(ops.len(), 9);
}

/// Reasons for the records `config` rejects out of `values`.
fn rejections(config: &str, values: &[&[u8]]) -> Vec<String> {
    let records = values.iter().map(|v| Record::new(*v)).collect();
    let out = TestHost::new()
        .transform::<JsonFilter>(config, records)
        .unwrap();
    out.rejected.into_iter().map(|(_, r)| r).collect()
}

#[test]
fn invalid_json_anywhere_is_rejected_even_in_fields_not_read() {
    let cfg = r#"{"field":"status","equals":"paid"}"#;
    let bad: &[&[u8]] = &[
        br#"{"status":"paid","x":[1,}"#,
        br#"{"status":"paid"} trailing"#,
        br#"{"status":"paid","x":tru}"#,
        b"{\"status\":\"paid\",\"x\":\"caf\xe9\"}",
        br#"{"status":"paid","x":"a"#,
        b"",
    ];
    let reasons = rejections(cfg, bad);
    assert_eq!(reasons.len(), bad.len(), "{reasons:?}");
    assert!(
        reasons
            .iter()
            .all(|r| r.starts_with("value is not valid JSON")),
        "{reasons:?}"
    );
}

#[test]
fn repeated_keys_keep_the_last_like_a_parsed_value() {
    let records = vec![
        Record::new(r#"{"c":{"x":1},"c":{"y":2}}"#),
        Record::new(r#"{"s":"paid","s":"failed"}"#),
        Record::new(r#"{"s":"failed","s":"paid"}"#),
    ];
    let cfg = r#"{"any":[{"field":"c.x","op":"exists"},{"field":"s","equals":"paid"}]}"#;
    let out = TestHost::new()
        .transform::<JsonFilter>(cfg, records.clone())
        .unwrap();
    assert_eq!(out.records, vec![records[2].clone()]);
}

#[test]
fn a_path_and_a_path_inside_it_both_work() {
    let cfg = r#"{"all":[{"field":"customer","op":"exists"},{"field":"customer.country","equals":"DE"},
                         {"field":"items.1","equals":{"sku":"B"}},{"field":"items.1.sku","equals":"B"}]}"#;
    let records = vec![
        Record::new(r#"{"customer":{"country":"DE"},"items":[{"sku":"A"},{"sku":"B"}]}"#),
        Record::new(r#"{"customer":{"country":"FR"},"items":[{"sku":"A"},{"sku":"B"}]}"#),
    ];
    let out = TestHost::new()
        .transform::<JsonFilter>(cfg, records.clone())
        .unwrap();
    assert_eq!(out.records, vec![records[0].clone()]);
}

#[test]
fn reading_only_some_fields_agrees_with_a_full_parse() {
    use super::{Fields, Path};
    let docs = [
        r#"{"a":{"b":[1,{"c":"x"}],"d":null},"e":[[0,1],[2]],"f":"g","0":5}"#,
        r#"[{"a":1},{"b":{"c":[true]}}]"#,
        r#"{"a":[],"e":{"1":"obj key"},"f":{"g":{"h":1}}}"#,
        "42",
    ];
    let paths = [
        "a", "a.b", "a.b.1.c", "a.d", "e.0.1", "e.1", "f", "f.g.h", "0", "1.b.c.0", "0.a", "zz",
    ];
    let mut fields = Fields::default();
    let parsed: Vec<Path> = paths.iter().map(|p| Path::parse(p).unwrap()).collect();
    let slots: Vec<usize> = parsed.iter().map(|p| fields.slot(p.clone())).collect();
    let mut got = Vec::new();
    for doc in docs {
        fields.extract(doc, &mut got).unwrap();
        let full: Value = serde_json::from_str(doc).unwrap();
        for (p, s) in parsed.iter().zip(&slots) {
            assert_eq!(got[*s].as_ref(), p.lookup(&full), "{doc} at {p:?}");
        }
    }
}
