//! CSV reading: header, quoting, type inference, errors, resume.
use super::*;
use crate::is_json_number;

#[test]
fn rows_become_objects_in_header_order() {
    let path = temp_file("orders.csv", b"id,status,amount,vip,note\n1,paid,12.50,true,\n2,\"pen,ding\",7,false,\"say \"\"hi\"\"\"\n");
    let out = texts(&read(&config(&path, ""), None, 10).unwrap());
    assert_eq!(
        out,
        [
            r#"{"id":1,"status":"paid","amount":12.50,"vip":true,"note":""}"#,
            r#"{"id":2,"status":"pen,ding","amount":7,"vip":false,"note":"say \"hi\""}"#
        ]
    );
    for v in &out {
        serde_json::from_str::<serde_json::Value>(v).unwrap();
    }
}

#[test]
fn quoted_newlines_crlf_and_blank_lines() {
    let path = temp_file(
        "multi.csv",
        b"a,b\r\n\"line1\r\nline2\",x\r\n\r\n3,\"\"\r\n4,5",
    );
    let out = texts(&read(&config(&path, ""), None, 10).unwrap());
    assert_eq!(
        out,
        [
            r#"{"a":"line1\r\nline2","b":"x"}"#,
            r#"{"a":3,"b":""}"#,
            r#"{"a":4,"b":5}"#
        ]
    );
}

#[test]
fn inference_off_and_other_delimiter() {
    let path = temp_file("semi.txt", b"id;zip;ok\n1;007;true\n");
    let cfg = config(
        &path,
        r#""format":"csv","delimiter":";","infer_types":false"#,
    );
    assert_eq!(
        texts(&read(&cfg, None, 10).unwrap()),
        [r#"{"id":"1","zip":"007","ok":"true"}"#]
    );
    let cfg = config(&path, r#""format":"csv","delimiter":";""#);
    assert_eq!(
        texts(&read(&cfg, None, 10).unwrap()),
        [r#"{"id":1,"zip":"007","ok":true}"#]
    );
}

#[test]
fn number_inference_follows_json_grammar() {
    for yes in ["0", "-1", "12.5", "1e10", "-0.5E-3", "18446744073709551616"] {
        assert!(is_json_number(yes), "{yes}");
    }
    for no in [
        "", "-", "007", "+1", ".5", "1.", "NaN", "inf", "1e", "1e999", " 1", "1 ", "0x10", "1_000",
    ] {
        assert!(!is_json_number(no), "{no}");
    }
}

#[test]
fn control_characters_and_unicode_are_escaped_validly() {
    let path = temp_file("esc.csv", "k,v\n\"t\tab\\\u{1}\",héllo ✓\n".as_bytes());
    let out = texts(&read(&config(&path, ""), None, 10).unwrap());
    let v: serde_json::Value = serde_json::from_str(&out[0]).unwrap();
    assert_eq!(v["k"], "t\tab\\\u{1}");
    assert_eq!(v["v"], "héllo ✓");
}

#[test]
fn row_width_mismatch_names_the_line() {
    let path = temp_file("bad.csv", b"a,b\n1,2\n\"x\ny\",2\n3\n");
    let m = fatal(read(&config(&path, ""), None, 10));
    assert!(
        m.contains("line 5: row has 1 fields but the header has 2"),
        "{m}"
    );
    // Also after resuming, when the reader did not count lines.
    let m = fatal(read(&config(&path, ""), Some("8"), 10));
    assert!(m.contains("line 5:"), "{m}");
}

#[test]
fn unterminated_quote_and_bad_utf8_name_the_line() {
    let path = temp_file("open.csv", b"a\n1\n\"never closed\n2\n");
    assert!(
        fatal(read(&config(&path, ""), None, 10))
            .contains("line 3: a quoted field is never closed")
    );
    let path = temp_file("latin1.csv", b"a\nok\ncaf\xe9\n");
    assert!(fatal(read(&config(&path, ""), None, 10)).contains("line 3: not valid UTF-8"));
}

#[test]
fn duplicate_header_is_fatal() {
    let path = temp_file("dup.csv", b"a,b,a\n1,2,3\n");
    assert!(fatal(read(&config(&path, ""), None, 10)).contains("duplicate column \"a\""));
}

#[test]
fn resume_rereads_header_then_seeks() {
    let path = temp_file("resume.csv", b"\xEF\xBB\xBFid,v\n1,a\n2,b\n3,c\n");
    let batches = read(&config(&path, ""), None, 1).unwrap();
    assert_eq!(batches.len(), 3);
    let cursor = batches[0].cursor.clone().unwrap();
    assert_eq!(cursor, "12", "BOM (3) + header (5) + first row (4)");
    let rest = texts(&read(&config(&path, ""), Some(&cursor), 10).unwrap());
    assert_eq!(rest, [r#"{"id":2,"v":"b"}"#, r#"{"id":3,"v":"c"}"#]);
    let from0 = texts(&read(&config(&path, ""), Some("0"), 10).unwrap());
    assert_eq!(from0.len(), 3);
}

#[test]
fn header_only_and_empty_files_end_at_once() {
    for contents in [&b""[..], b"a,b\n", b"\n\n"] {
        let path = temp_file("h.csv", contents);
        assert!(read(&config(&path, ""), None, 10).unwrap().is_empty());
    }
}
