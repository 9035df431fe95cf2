//! Unit tests for `csv-parse`, run natively against the SDK's `TestHost`.
use autoflow_plugin_sdk::testing::TestHost;
use autoflow_plugin_sdk::{Error, Processed, Record, Transform};
use serde_json::Value;

use super::{CONFIG_SCHEMA, CsvParse};

fn run(config: &str, values: &[&[u8]]) -> Processed {
    let records = values.iter().map(|v| Record::new(*v)).collect();
    TestHost::new()
        .transform::<CsvParse>(config, records)
        .unwrap()
}

fn texts(out: &Processed) -> Vec<String> {
    out.records
        .iter()
        .map(|r| String::from_utf8(r.value.clone()).unwrap())
        .collect()
}

/// The rows of one CSV text under `config`, as JSON text; nothing may be rejected.
fn rows(config: &str, csv: &str) -> Vec<String> {
    let out = run(config, &[csv.as_bytes()]);
    assert!(out.rejected.is_empty(), "{:?}", out.rejected);
    texts(&out)
}

/// Why the one record `value` is rejected under `config`; no row may be emitted.
fn rejected(config: &str, value: &[u8]) -> String {
    let out = run(config, &[value]);
    assert!(out.records.is_empty(), "{:?}", texts(&out));
    assert_eq!(out.rejected.len(), 1);
    out.rejected[0].1.clone()
}

fn config_error(config: &str) -> String {
    match TestHost::new().transform::<CsvParse>(config, vec![]) {
        Err(Error::InvalidConfig(m)) => m,
        other => panic!("{config}: expected invalid config, got {other:?}"),
    }
}

#[test]
fn the_header_names_the_columns_and_every_cell_is_a_string() {
    assert_eq!(
        rows("{}", "id,name,qty\n1,Ada,3\n2,Bob,\n"),
        [
            r#"{"id":"1","name":"Ada","qty":"3"}"#,
            r#"{"id":"2","name":"Bob","qty":""}"#
        ]
    );
    // A header alone, and an empty text, give no row and no rejection.
    assert!(rows("{}", "id,name\n").is_empty());
    assert!(rows("{}", "").is_empty());
}

#[test]
fn quoting_follows_rfc_4180_with_crlf_or_lf() {
    let csv = "a,b,c\r\n\"x,y\",\"say \"\"hi\"\"\",\"two\r\nlines\"\r\n\"\",plain,\"\n\"\r\n";
    assert_eq!(
        rows("{}", csv),
        [
            r#"{"a":"x,y","b":"say \"hi\"","c":"two\r\nlines"}"#,
            r#"{"a":"","b":"plain","c":"\n"}"#
        ]
    );
    // The last row may lack a line end; a byte order mark is skipped.
    assert_eq!(rows("{}", "\u{feff}k\nv"), [r#"{"k":"v"}"#]);
}

#[test]
fn columns_name_rows_without_a_header_and_rename_a_header() {
    let cfg = r#"{"header":false,"columns":["id","name"]}"#;
    assert_eq!(
        rows(cfg, "1,Ada\n2,Bob"),
        [r#"{"id":"1","name":"Ada"}"#, r#"{"id":"2","name":"Bob"}"#]
    );
    let cfg = r#"{"columns":["id","name"]}"#;
    assert_eq!(
        rows(cfg, "Order ID,Customer Name\n1,Ada"),
        [r#"{"id":"1","name":"Ada"}"#]
    );
    assert_eq!(
        rejected(cfg, b"a,b,c\n1,2,3"),
        "the header has 3 fields, columns has 2"
    );
}

#[test]
fn other_delimiters_and_inferred_types() {
    let cfg = r#"{"delimiter":";","types":"infer"}"#;
    assert_eq!(
        rows(
            cfg,
            "i;f;e;t;n;s;z;big\n-12;3.5;1e3;true;;007;TRUE;18446744073709551616\n"
        ),
        [
            r#"{"i":-12,"f":3.5,"e":1e3,"t":true,"n":null,"s":"007","z":"TRUE","big":18446744073709551616}"#
        ]
    );
    let cfg = r#"{"delimiter":"\t","types":"string"}"#;
    assert_eq!(rows(cfg, "a\tb\n1\t\n"), [r#"{"a":"1","b":""}"#]);
}

#[test]
fn empty_lines_are_skipped_unless_asked_not_to() {
    let csv = "v\n1\n\n\r\n2\n";
    assert_eq!(rows("{}", csv), [r#"{"v":"1"}"#, r#"{"v":"2"}"#]);
    let cfg = r#"{"skip_empty_lines":false,"types":"infer"}"#;
    assert_eq!(
        rows(cfg, csv),
        [r#"{"v":1}"#, r#"{"v":null}"#, r#"{"v":null}"#, r#"{"v":2}"#]
    );
    // With two columns a blank line is a row of one field.
    assert_eq!(
        rejected(r#"{"skip_empty_lines":false}"#, b"a,b\n1,2\n\n3,4\n"),
        "row 3 (line 3) has 1 fields, the header has 2"
    );
}

#[test]
fn field_mode_parses_a_string_field_and_keeps_chosen_parent_fields() {
    let value = r#"{"device":{"id":"d1","site":"x"},"at":5,"body":"t,v\n1,2.5\n2,3\n"}"#;
    let cfg = r#"{"field":"body","keep":["at","device.id","missing"],"types":"infer"}"#;
    assert_eq!(
        rows(cfg, value),
        [
            r#"{"at":5,"device":{"id":"d1"},"t":1,"v":2.5}"#,
            r#"{"at":5,"device":{"id":"d1"},"t":2,"v":3}"#
        ]
    );
    // Without keep, a row holds its columns only; the field may be nested.
    let value = r#"{"msg":{"csv":"a\nx"},"other":1}"#;
    assert_eq!(rows(r#"{"field":"msg.csv"}"#, value), [r#"{"a":"x"}"#]);
}

#[test]
fn key_headers_and_time_are_copied_to_every_row() {
    let mut r = Record::new("a\n1\n2").with_key("k");
    r.headers.push(("h".into(), "v".into()));
    r.timestamp = Some(42);
    let out = TestHost::new()
        .transform::<CsvParse>("{}", vec![r])
        .unwrap();
    assert_eq!(out.records.len(), 2);
    for o in &out.records {
        assert_eq!(o.key.as_deref(), Some(&b"k"[..]));
        assert_eq!(o.header("h"), Some("v"));
        assert_eq!(o.timestamp, Some(42));
    }
}

#[test]
fn a_bad_row_rejects_its_whole_record_and_says_where() {
    let cases: &[(&str, &[u8], &str)] = &[
        (
            "{}",
            b"a,b,c\n1,2,3\n4,5,6,7\n",
            "row 3 (line 3) has 4 fields, the header has 3",
        ),
        // Rows are counted as records, lines as line breaks (a quoted field spans two).
        (
            "{}",
            b"a,b\n\"x\ny\",1\n2\n",
            "row 3 (line 4) has 1 fields, the header has 2",
        ),
        (
            r#"{"header":false,"columns":["a","b"]}"#,
            b"1,2\n3\n",
            "row 2 (line 2) has 1 fields, columns has 2",
        ),
        (
            "{}",
            b"a\n1\n\"never closed\n2\n",
            "row 3 (line 3): a quoted field is never closed",
        ),
        (
            "{}",
            b"a\ncaf\xe9\n",
            "value is not UTF-8: invalid byte at offset 5",
        ),
        (
            "{}",
            b"a,b,a\n1,2,3\n",
            "header column 3: duplicate name \"a\" (as column 1)",
        ),
        ("{}", b"a,,c\n1,2,3\n", "header column 2: empty name"),
    ];
    for (cfg, value, reason) in cases {
        assert_eq!(
            &rejected(cfg, value),
            reason,
            "{}",
            String::from_utf8_lossy(value)
        );
    }
    // The records before and after a bad one are parsed.
    let out = run("{}", &[b"a\n1", b"a,b\n1", b"a\n2"]);
    assert_eq!(texts(&out), [r#"{"a":"1"}"#, r#"{"a":"2"}"#]);
    assert_eq!(
        out.rejected,
        [(
            1,
            "row 2 (line 2) has 1 fields, the header has 2".to_string()
        )]
    );
}

#[test]
fn field_mode_rejects_a_missing_or_non_string_field_and_clashing_columns() {
    let cfg = r#"{"field":"body","keep":["id"]}"#;
    let cases: &[(&[u8], &str)] = &[
        (br#"{"id":1}"#, "body is missing"),
        (br#"{"body":[1]}"#, "body is an array, not a string"),
        (br#"[1]"#, "value is not a JSON object (it is an array)"),
        (
            b"a,b\n1,2",
            "value is not valid JSON: expected value at line 1 column 1",
        ),
        (
            br#"{"body":"a\n1,2"}"#,
            "body: row 2 (line 2) has 2 fields, the header has 1",
        ),
        (
            br#"{"id":1,"body":"x,id\n1,2"}"#,
            "body: header column \"id\" clashes with the kept field id",
        ),
    ];
    for (value, reason) in cases {
        assert_eq!(&rejected(cfg, value), reason);
    }
}

#[test]
fn bad_configs_name_their_place() {
    let cases = [
        (
            r#"{"header":false}"#,
            "columns: required when header is false",
        ),
        (r#"{"columns":[]}"#, "columns: name at least one column"),
        (r#"{"columns":["a",""]}"#, "columns[1]: empty name"),
        (
            r#"{"columns":["a","b","a"]}"#,
            "columns[2]: duplicate name \"a\" (as column 1)",
        ),
        (
            r#"{"delimiter":"\""}"#,
            "delimiter must be one ASCII character other than a quote or line break, not \"\\\"\"",
        ),
        (
            r#"{"delimiter":";;"}"#,
            "delimiter must be one ASCII character other than a quote or line break, not \";;\"",
        ),
        (
            r#"{"types":"guess"}"#,
            "types: must be \"string\" or \"infer\", not \"guess\"",
        ),
        (
            r#"{"keep":["id"]}"#,
            "keep: applies only with `field` (a whole value has no fields to keep)",
        ),
        (
            r#"{"field":"a..b"}"#,
            "field: invalid path \"a..b\": empty segment",
        ),
        (
            r#"{"field":"a","keep":["x",".y"]}"#,
            "keep[1]: invalid path \".y\": empty segment",
        ),
        (
            r#"{"field":"a","keep":["x","id.n"],"columns":["id","v"]}"#,
            "keep[1]: \"id.n\" clashes with column \"id\"",
        ),
    ];
    for (cfg, message) in cases {
        assert_eq!(config_error(cfg), message, "{cfg}");
    }
    assert!(config_error(r#"{"header":"yes"}"#).contains("expected a boolean"));
    assert!(config_error(r#"{"quote":"'"}"#).contains("unknown field `quote`"));
}

#[test]
fn metadata_carries_the_schema() {
    let m = CsvParse::metadata();
    assert_eq!(m.name, "csv-parse");
    let schema: Value = serde_json::from_str(m.config_schema.as_deref().unwrap()).unwrap();
    assert_eq!(
        schema,
        serde_json::from_str::<Value>(CONFIG_SCHEMA).unwrap()
    );
    assert_eq!(
        schema["dependentRequired"]["keep"],
        serde_json::json!(["field"])
    );
    assert_eq!(
        schema["properties"]["types"]["enum"],
        serde_json::json!(["string", "infer"])
    );
}

#[test]
fn the_readme_examples_hold() {
    let cfg = r#"{"field":"body","keep":["device"],"delimiter":";","types":"infer"}"#;
    assert_eq!(
        rows(cfg, r#"{"device":"d1","body":"t;temp\n1;20.5\n2;\n"}"#),
        [
            r#"{"device":"d1","t":1,"temp":20.5}"#,
            r#"{"device":"d1","t":2,"temp":null}"#
        ]
    );
    let payload = "id,name\n7,\"Lovelace, Ada\"\n";
    assert_eq!(
        rows("{}", payload),
        [r#"{"id":"7","name":"Lovelace, Ada"}"#]
    );
    assert_eq!(
        rows(r#"{"header":false,"columns":["id","name"]}"#, payload),
        [
            r#"{"id":"id","name":"name"}"#,
            r#"{"id":"7","name":"Lovelace, Ada"}"#
        ]
    );
}

#[test]
fn the_schema_agrees_with_the_code() {
    let schema: Value = serde_json::from_str(CONFIG_SCHEMA).unwrap();
    let v = jsonschema::validator_for(&schema).unwrap();
    for good in [
        "{}",
        r#"{"header":false,"columns":["a","b"],"delimiter":";","types":"infer"}"#,
        r#"{"field":"body.csv","keep":["id","device.name"],"skip_empty_lines":false}"#,
        r#"{"delimiter":"\t","columns":["x"]}"#,
    ] {
        let config: Value = serde_json::from_str(good).unwrap();
        assert!(v.is_valid(&config), "{good}");
        TestHost::new().transform::<CsvParse>(good, vec![]).unwrap();
    }
    for bad in [
        r#"{"header":false}"#,
        r#"{"columns":[]}"#,
        r#"{"columns":[""]}"#,
        r#"{"keep":["id"]}"#,
        r#"{"delimiter":";;"}"#,
        r#"{"delimiter":"\""}"#,
        r#"{"types":"guess"}"#,
        r#"{"field":"a..b"}"#,
        r#"{"quote":"'"}"#,
    ] {
        let config: Value = serde_json::from_str(bad).unwrap();
        assert!(!v.is_valid(&config), "{bad}");
        config_error(bad);
    }
}
