//! JSON Lines reading, cursors and resume.
use super::*;

const FILE: &[u8] = b"{\"id\":1}\n\n{\"id\":2}\r\n   \nnot json\n{\"id\":4}";

#[test]
fn one_record_per_non_blank_line_verbatim() {
    let path = temp_file("orders.jsonl", FILE);
    let batches = read(&config(&path, ""), None, 100).unwrap();
    assert_eq!(
        texts(&batches),
        [r#"{"id":1}"#, r#"{"id":2}"#, "not json", r#"{"id":4}"#]
    );
    assert_eq!(
        batches[0].cursor.as_deref(),
        Some(FILE.len().to_string().as_str())
    );
}

#[test]
fn batches_respect_max_and_cursor_is_byte_offset() {
    let path = temp_file("orders.txt", FILE);
    let batches = read(&config(&path, ""), None, 2).unwrap();
    let sizes: Vec<usize> = batches.iter().map(|b| b.records.len()).collect();
    assert_eq!(sizes, [2, 2]);
    let first_cursor = batches[0].cursor.clone().unwrap();
    assert_eq!(first_cursor, "20", "after the CRLF of the second record");
    let rest = read(&config(&path, ""), Some(&first_cursor), 2).unwrap();
    assert_eq!(texts(&rest), ["not json", r#"{"id":4}"#]);
}

#[test]
fn resume_at_end_reads_nothing_then_picks_up_appended_lines() {
    let path = temp_file("grow.jsonl", b"{\"a\":1}\n");
    let batches = read(&config(&path, ""), None, 10).unwrap();
    let cursor = batches.last().unwrap().cursor.clone().unwrap();
    assert!(
        read(&config(&path, ""), Some(&cursor), 10)
            .unwrap()
            .is_empty()
    );
    std::fs::write(&path, b"{\"a\":1}\n{\"a\":2}\n").unwrap();
    assert_eq!(
        texts(&read(&config(&path, ""), Some(&cursor), 10).unwrap()),
        [r#"{"a":2}"#]
    );
}

#[test]
fn every_cursor_resumes_exactly() {
    let path = temp_file("all.jsonl", FILE);
    let all = texts(&read(&config(&path, ""), None, 100).unwrap());
    let batches = read(&config(&path, ""), None, 1).unwrap();
    for (i, b) in batches.iter().enumerate() {
        let rest = texts(&read(&config(&path, ""), b.cursor.as_deref(), 3).unwrap());
        assert_eq!(rest, all[i + 1..]);
    }
}

#[test]
fn byte_order_mark_is_skipped() {
    let path = temp_file("bom.jsonl", b"\xEF\xBB\xBF{\"a\":1}\n");
    assert_eq!(
        texts(&read(&config(&path, ""), None, 10).unwrap()),
        [r#"{"a":1}"#]
    );
}

#[test]
fn empty_file_ends_at_once() {
    let path = temp_file("empty.jsonl", b"");
    assert!(read(&config(&path, ""), None, 10).unwrap().is_empty());
}

#[test]
fn missing_file_names_path_and_os_error() {
    let path = std::env::temp_dir().join("autoflow-file-source-does-not-exist.jsonl");
    let m = fatal(read(&config(&path, ""), None, 10));
    assert!(m.contains(path.to_str().unwrap()), "{m}");
    assert!(m.contains("os error"), "{m}");
}

#[test]
fn bad_cursors() {
    let path = temp_file("c.jsonl", b"{}\n");
    assert!(fatal(read(&config(&path, ""), Some("abc"), 10)).contains("invalid cursor"));
    assert!(fatal(read(&config(&path, ""), Some("99"), 10)).contains("past the end"));
}
