//! CSV output: header, quoting, cell text, columns, append.
use super::*;

#[test]
fn header_from_first_record_then_rows() {
    let path = temp_path("out.csv");
    let values = [
        r#"{"id":1,"name":"Ada, Countess","note":"say \"hi\"","ok":true,"x":null,"tags":["a"],"m":{"k":1}}"#,
        r#"{"name":"multi\nline","id":2.5}"#,
    ];
    let host = sink(&config(&path, ""), &values).unwrap();
    assert_eq!(
        contents(&path),
        "id,name,note,ok,x,tags,m\n\
         1,\"Ada, Countess\",\"say \"\"hi\"\"\",true,,\"[\"\"a\"\"]\",\"{\"\"k\"\":1}\"\n\
         2.5,\"multi\nline\",,,,,\n"
    );
    assert_eq!(host.counters["records_written"], 2);
}

#[test]
fn configured_columns_dotted_paths_and_delimiter() {
    let path = temp_path("cols.txt");
    let cfg = config(
        &path,
        r#""format":"csv","columns":["id","customer.country"],"delimiter":";""#,
    );
    let host = sink(
        &cfg,
        &[r#"{"id":1,"customer":{"country":"DE"},"extra":"x;y"}"#],
    )
    .unwrap();
    assert_eq!(contents(&path), "id;customer.country\n1;DE\n");
    assert_eq!(
        host.logs.len(),
        1,
        "one warning about the unwritten key: {:?}",
        host.logs
    );
    assert!(host.logs[0].1.contains("not written"));
}

#[test]
fn configured_columns_write_a_header_even_without_records() {
    let path = temp_path("empty.csv");
    sink(&config(&path, r#""columns":["a","b"]"#), &[]).unwrap();
    assert_eq!(contents(&path), "a,b\n");
    let path = temp_path("empty2.csv");
    sink(&config(&path, ""), &[]).unwrap();
    assert_eq!(contents(&path), "");
}

#[test]
fn append_reuses_the_existing_header() {
    let path = temp_path("app.csv");
    std::fs::write(&path, "\"amount\",id\r\n1,2\r\n").unwrap();
    sink(
        &config(&path, r#""append":true"#),
        &[r#"{"id":3,"amount":4}"#],
    )
    .unwrap();
    assert_eq!(contents(&path), "\"amount\",id\r\n1,2\r\n4,3\n");
    let bad = sink(&config(&path, r#""append":true,"columns":["id"]"#), &[]);
    assert!(matches!(bad, Err(Error::InvalidConfig(m)) if m.contains("differ from the header")));
    let path = temp_path("app-new.csv");
    sink(&config(&path, r#""append":true"#), &[r#"{"id":1}"#]).unwrap();
    assert_eq!(
        contents(&path),
        "id\n1\n",
        "appending to nothing writes the header"
    );
}

#[test]
fn non_json_or_non_object_records_are_fatal_and_write_nothing_of_the_batch() {
    let path = temp_path("bad.csv");
    let m = fatal(sink(&config(&path, ""), &[r#"{"a":1}"#, "nope"]));
    assert!(
        m.contains("batch index 1 (record 2 written): value is not valid JSON"),
        "{m}"
    );
    assert_eq!(contents(&path), "");
    let m = fatal(sink(&config(&path, ""), &["[1,2]"]));
    assert!(
        m.contains("batch index 0 (record 1 written): value is not a JSON object"),
        "{m}"
    );
}

#[test]
fn the_header_of_a_file_appended_to_is_read_as_file_source_reads_it() {
    let read = |text: &[u8]| crate::csv::read_header(text, b';').map_err(|e| e.to_string());
    assert_eq!(
        read(b"\xEF\xBB\xBFid;\"a;b\";\"say \"\"hi\"\"\"\r\n1;2;3\r\n"),
        Ok(vec!["id".into(), "a;b".into(), "say \"hi\"".into()])
    );
    assert_eq!(
        read(b"\"two\nlines\";x\n"),
        Ok(vec!["two\nlines".into(), "x".into()])
    );
    assert_eq!(
        read(b"\"open;x\n"),
        Err("the header row has an unclosed quote".into())
    );
    assert_eq!(
        read(b"caf\xe9\n"),
        Err("the header row is not UTF-8".into())
    );
}
