//! The codecs end to end through `autoflow run`: `csv-parse` turns CSV documents (held in a
//! string field of JSON lines, and raw CSV lines that `file-source` hands over as bytes) into
//! row records, and `json-encode` turns raw text, JSON and binary lines into JSON objects; the
//! written records are compared with a reference computed here from the data the test made,
//! and the bad records are dead letters with their reasons.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use autoflow_tests::{Project, json_lines};
use serde_json::{Value, json};

const NAMES: [&str; 6] = [
    "Ada",
    "Lovelace, Ada",
    "say \"hi\"",
    "two\nlines",
    "",
    "007",
];

/// One CSV cell, quoted when it must be (RFC 4180).
fn cell(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// 40 uploads as JSON lines `{"upload": i, "csv": DOC}` (each DOC a header and 0 to 4 rows,
/// some with CRLF line ends or blank lines), plus a document with a short row and a line
/// without the field; and the row records csv-parse should make of the good ones.
fn uploads() -> (String, Vec<Value>) {
    let mut text = String::new();
    let mut want = Vec::new();
    for i in 0..40u64 {
        let end = if i % 3 == 0 { "\r\n" } else { "\n" };
        let mut doc = format!("id,name,qty,price{end}");
        for k in 0..i % 5 {
            let (id, name, qty) = (i * 10 + k, NAMES[((i + k) % 6) as usize], (i * k) % 7);
            let price = format!("{}.5", (i + k) % 9);
            doc.push_str(&format!("{id},{},{qty},{price}{end}", cell(name)));
            if i % 4 == 1 {
                doc.push_str(end);
            }
            let name = match name {
                "" => Value::Null,
                n => json!(n),
            };
            want.push(json!({"upload": i, "id": id, "name": name, "qty": qty,
                "price": price.parse::<f64>().unwrap()}));
        }
        text.push_str(&format!("{}\n", json!({"upload": i, "csv": doc})));
        if i == 20 {
            text.push_str(&format!(
                "{}\n{}\n",
                json!({"upload": 1000, "csv": "id,name,qty,price\n1,a,2\n"}),
                json!({"upload": 1001})
            ));
        }
    }
    (text, want)
}

/// A pipeline: file-source reads `/in/{input}` -> `middle` (a step with id `codec`) ->
/// file-sink writes `/out/{output}`; dead letters to `./rejected.jsonl`.
fn pipeline(input: &str, middle: &str, output: &str) -> String {
    format!(
        "name: codecs
batch_size: 8
steps:
  - {{ id: read, plugin: file-source@0.1.0, config: {{ path: /in/{input} }}, mounts: [{{ host: ./data/in, guest: /in }}] }}
  - {{ id: codec, input: read, {middle} }}
  - {{ id: write, plugin: file-sink@0.1.0, input: codec, config: {{ path: /out/{output} }}, mounts: [{{ host: ./data/out, guest: /out, mode: rw }}] }}
dead_letter: {{ path: ./rejected.jsonl }}
"
    )
}

/// Runs `file` in `p`, which must succeed; returns the dead letters' `(step, reason)`.
fn run_ok(p: &Project, file: &str) -> Vec<(String, String)> {
    // The file is only truncated when a run's first dead letter comes.
    let _ = std::fs::remove_file(p.path().join("rejected.jsonl"));
    let out = p.run(file, &[]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    if !p.path().join("rejected.jsonl").exists() {
        return Vec::new();
    }
    json_lines(&p.read("rejected.jsonl"))
        .iter()
        .map(|l| {
            (
                l["step"].as_str().unwrap().into(),
                l["reason"].as_str().unwrap().into(),
            )
        })
        .collect()
}

#[test]
fn csv_parse_turns_csv_documents_and_raw_csv_lines_into_rows_matching_a_reference() {
    let p = Project::new();

    // Documents in a string field, one JSON line each; the upload number is kept.
    let (text, want) = uploads();
    p.write("data/in/uploads.jsonl", &text);
    let middle = "plugin: csv-parse@0.1.0, config: { field: csv, keep: [upload], types: infer }";
    p.write(
        "field.yaml",
        &pipeline("uploads.jsonl", middle, "rows.jsonl"),
    );
    let letters = run_ok(&p, "field.yaml");
    let got = json_lines(&p.read("data/out/rows.jsonl"));
    assert!(want.len() > 60, "{}", want.len());
    assert_eq!(got, want);
    let keys: Vec<&String> = got[0].as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        ["upload", "id", "name", "qty", "price"],
        "kept fields first"
    );
    assert_eq!(
        letters,
        [
            (
                "codec".into(),
                "csv: row 2 (line 2) has 3 fields, the header has 4".into()
            ),
            ("codec".into(), "csv is missing".into())
        ]
    );

    // Raw CSV lines, handed over as bytes by file-source (a .txt file is read line by line).
    let rows: Vec<(u64, &str, String)> = (0..25u64)
        .map(|i| (i, NAMES[(i % 6) as usize], format!("{}.25", i % 4)))
        // One line is one record, so no name may hold a line break here.
        .filter(|(_, name, _)| !name.contains('\n'))
        .collect();
    let text: String = rows
        .iter()
        .map(|(id, name, price)| format!("{id};{};{price}\n", cell(name)))
        .collect();
    p.write("data/in/rows.txt", &format!("{text}1;2\n"));
    let middle = "plugin: csv-parse@0.1.0, config: { header: false, columns: [id, name, price], delimiter: \";\" }";
    p.write("raw.yaml", &pipeline("rows.txt", middle, "raw.jsonl"));
    let letters = run_ok(&p, "raw.yaml");
    let want: Vec<Value> = rows
        .iter()
        .map(|(id, name, price)| json!({"id": id.to_string(), "name": name, "price": price}))
        .collect();
    assert_eq!(json_lines(&p.read("data/out/raw.jsonl")), want);
    assert_eq!(
        letters,
        [(
            "codec".into(),
            "row 1 (line 1) has 2 fields, columns has 3".into()
        )]
    );
}

#[test]
fn json_encode_turns_text_json_and_binary_lines_into_objects_matching_a_reference() {
    let p = Project::new();
    let lines: Vec<Vec<u8>> = (0..30u32)
        .map(|i| match i % 3 {
            0 => format!("{{\"n\":{i}}}").into_bytes(),
            1 => format!("GET /orders/{i} 200 \"ok\"").into_bytes(),
            _ => vec![0xff, i as u8, b'x'],
        })
        .collect();
    let mut file = lines.join(&b'\n');
    file.push(b'\n');
    std::fs::write(p.path().join("data/in/lines.txt"), &file).unwrap();

    // auto: JSON when it parses, else text, else base64, each named.
    p.write(
        "auto.yaml",
        &pipeline(
            "lines.txt",
            "plugin: json-encode@0.1.0, config: { into: line }",
            "auto.jsonl",
        ),
    );
    let letters = run_ok(&p, "auto.yaml");
    assert!(letters.is_empty(), "{letters:?}");
    let want: Vec<Value> = (0..30u32)
        .map(|i| match i % 3 {
            0 => json!({"line": {"n": i}, "encoding": "json"}),
            1 => json!({"line": format!("GET /orders/{i} 200 \"ok\""), "encoding": "text"}),
            _ => json!({"line": base64_of(&[0xff, i as u8, b'x']), "encoding": "base64"}),
        })
        .collect();
    assert_eq!(json_lines(&p.read("data/out/auto.jsonl")), want);

    // text: the binary lines are dead letters naming the first bad byte.
    p.write(
        "text.yaml",
        &pipeline(
            "lines.txt",
            "plugin: json-encode@0.1.0, config: { as: text }",
            "text.jsonl",
        ),
    );
    let letters = run_ok(&p, "text.yaml");
    assert_eq!(letters.len(), 10, "{letters:?}");
    assert!(
        letters.iter().all(|l| l
            == &(
                "codec".to_string(),
                "value is not UTF-8: invalid byte at offset 0".to_string()
            )),
        "{letters:?}"
    );
    let got = json_lines(&p.read("data/out/text.jsonl"));
    let want: Vec<Value> = lines
        .iter()
        .filter_map(|l| std::str::from_utf8(l).ok())
        .map(|l| json!({"value": l}))
        .collect();
    assert_eq!(got, want);
}

/// Standard base64 with padding, by the base64 crate, as the reference.
fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
