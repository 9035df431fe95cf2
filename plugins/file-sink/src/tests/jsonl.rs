//! JSON Lines output, truncation, append, durability.
use super::*;

#[test]
fn writes_values_verbatim_one_per_line_and_counts() {
    let path = temp_path("out.jsonl");
    let host = sink(&config(&path, ""), &[r#"{"b":2, "a":1}"#, "not json", "7"]).unwrap();
    assert_eq!(contents(&path), "{\"b\":2, \"a\":1}\nnot json\n7\n");
    assert_eq!(host.counters["records_written"], 3);
}

#[test]
fn truncates_unless_append() {
    let path = temp_path("t.jsonl");
    std::fs::write(&path, "old\n").unwrap();
    sink(&config(&path, ""), &["new"]).unwrap();
    assert_eq!(contents(&path), "new\n");
    sink(&config(&path, r#""append":true"#), &["more"]).unwrap();
    assert_eq!(contents(&path), "new\nmore\n");
}

#[test]
fn append_completes_a_cut_line_first() {
    let path = temp_path("cut.jsonl");
    std::fs::write(&path, "{\"a\":1}\n{\"a\":").unwrap();
    sink(&config(&path, r#""append":true"#), &[r#"{"a":2}"#]).unwrap();
    assert_eq!(contents(&path), "{\"a\":1}\n{\"a\":\n{\"a\":2}\n");
}

#[test]
fn multi_line_json_is_compacted_and_other_multi_line_text_is_fatal() {
    let path = temp_path("pretty.jsonl");
    sink(&config(&path, ""), &["{\n  \"a\": \"x y\"\n}"]).unwrap();
    assert_eq!(contents(&path), "{\"a\":\"x y\"}\n");
    let m = fatal(sink(&config(&path, ""), &["ok", "two\nlines"]));
    assert!(m.contains("batch index 1 (record 2 written)"), "{m}");
}

#[test]
fn several_batches_and_flushes() {
    let path = temp_path("multi.jsonl");
    let mut s = FileSink::open(serde_json::from_str(&config(&path, "")).unwrap()).unwrap();
    s.write(records(&["1", "2"])).unwrap();
    s.flush().unwrap();
    assert_eq!(contents(&path), "1\n2\n");
    s.write(records(&["3"])).unwrap();
    s.write(vec![]).unwrap();
    s.flush().unwrap();
    assert_eq!(contents(&path), "1\n2\n3\n");
}

#[test]
fn unwritable_path_names_path_and_os_error() {
    let path = temp_path("no-such-dir").join("out.jsonl");
    let m = fatal(sink(&config(&path, ""), &[]));
    assert!(
        m.contains(path.to_str().unwrap()) && m.contains("os error"),
        "{m}"
    );
}
