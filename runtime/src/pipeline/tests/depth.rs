//! The nesting-depth pre-scan: what counts as a level in each format, what does not, and the
//! error text and place.

use super::{FULL_JSON, FULL_YAML, parse_error};
use crate::pipeline::depth::{check, deepest};
use crate::pipeline::{Format, MAX_NESTING_DEPTH, PipelineError, parse};

/// The depth error for `text`, or `None` when the scan lets it through.
fn too_deep(text: &str, format: Format) -> Option<String> {
    check(text, format).err().map(|e| e.to_string())
}

/// `n` levels of block mappings: `a:\n  a:\n    a: x`.
fn block_maps(n: usize) -> String {
    (0..n)
        .map(|i| {
            format!(
                "{}a:{}\n",
                "  ".repeat(i),
                if i + 1 == n { " x" } else { "" }
            )
        })
        .collect()
}

#[test]
fn a_hundred_thousand_brackets_are_refused_at_the_65th() {
    let yaml = "[".repeat(100_000);
    assert_eq!(
        parse_error(&yaml),
        "line 1, column 65: nesting depth exceeds 64 levels (it reaches 100000)"
    );
    let json = format!("{{\"name\": \"p\", \"steps\": {}", "[".repeat(100_000));
    // `{` is level 1 and the 64th `[` level 65, at column 24 + 63.
    assert_eq!(
        parse(&json, None).unwrap_err().to_string(),
        "line 1, column 87: nesting depth exceeds 64 levels (it reaches 100001)"
    );
    let mixed = format!(
        "name: p\nsteps:\n  - id: a\n    config:\n{}",
        "      x: {\n".repeat(70)
    );
    match parse(&mixed, Some(Format::Yaml)) {
        Err(PipelineError::Parse {
            location: Some(loc),
            message,
        }) => {
            // Four block levels, then the 61st flow mapping.
            assert_eq!((loc.line, loc.column), (4 + 61, 10), "{message}");
            assert_eq!(message, "nesting depth exceeds 64 levels (it reaches 74)");
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn the_limit_itself_is_allowed() {
    assert_eq!(MAX_NESTING_DEPTH, 64);
    let brackets = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
    assert_eq!(too_deep(&brackets(64), Format::Yaml), None);
    assert_eq!(too_deep(&brackets(64), Format::Json), None);
    assert!(too_deep(&brackets(65), Format::Yaml).is_some());
    assert!(too_deep(&brackets(65), Format::Json).is_some());
    assert_eq!(too_deep(&block_maps(64), Format::Yaml), None);
    assert_eq!(
        too_deep(&block_maps(65), Format::Yaml).as_deref(),
        Some("line 65, column 129: nesting depth exceeds 64 levels (it reaches 65)")
    );
    // Wide is not deep.
    let wide = format!("[{}]", vec!["[[1], {a: [2]}]"; 5000].join(", "));
    assert_eq!(too_deep(&wide, Format::Yaml), None);
    assert_eq!(too_deep(&wide.replace("a:", "\"a\":"), Format::Json), None);
}

#[test]
fn real_pipelines_pass() {
    assert_eq!(too_deep(FULL_YAML, Format::Yaml), None);
    assert_eq!(too_deep(FULL_JSON, Format::Json), None);
    let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples");
    let mut seen = 0;
    let mut dirs = vec![std::path::PathBuf::from(examples)];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if let Some(format) = Format::from_path(&path) {
                let text = std::fs::read_to_string(&path).unwrap();
                assert_eq!(too_deep(&text, format), None, "{}", path.display());
                seen += 1;
            }
        }
    }
    assert!(seen > 0, "no example pipelines under {examples}");
}

#[test]
fn block_collections_count_as_levels() {
    // Entries on one line, each inside the one before.
    assert!(too_deep(&format!("{}x\n", "- ".repeat(65)), Format::Yaml).is_some());
    // A sequence's entry with a `:` is a mapping of one pair: a level of its own.
    assert_eq!(deepest("[[a]: b]", Format::Yaml), 3);
    assert_eq!(deepest("{[a]: b}", Format::Yaml), 2);
    assert_eq!(
        too_deep(&format!("a: {}", "[k: ".repeat(31)), Format::Yaml),
        None
    );
    assert_eq!(
        too_deep(&format!("a: {}", "[k: ".repeat(32)), Format::Yaml).as_deref(),
        Some("line 1, column 130: nesting depth exceeds 64 levels (it reaches 65)")
    );
    assert_eq!(
        too_deep(&format!("{}x\n", "- ".repeat(64)), Format::Yaml),
        None
    );
    // A sequence at its key's column is a level of its own: `k:` / `- k:` / `  - k:` ...
    let indentless = |n: usize| {
        let inner: String = (0..n - 1)
            .map(|i| format!("{}- k:\n", "  ".repeat(i)))
            .collect();
        format!("k:\n{inner}{}- x\n", "  ".repeat(n - 1))
    };
    assert_eq!(too_deep(&indentless(32), Format::Yaml), None);
    assert_eq!(
        too_deep(&indentless(33), Format::Yaml).as_deref(),
        Some("line 33, column 65: nesting depth exceeds 64 levels (it reaches 66)")
    );
    // Closed collections give their levels back.
    let siblings = block_maps(60).repeat(50);
    assert_eq!(too_deep(&siblings, Format::Yaml), None);
    let list = format!(
        "steps:\n{}",
        "  - id: a\n    config:\n      deep: [[[[1]]]]\n".repeat(1000)
    );
    assert_eq!(too_deep(&list, Format::Yaml), None);
}

#[test]
fn brackets_that_open_nothing_do_not_count() {
    let many = "[".repeat(100);
    for text in [
        format!("a: '{many}'\n"),
        format!("a: \"{many} \\\" {many}\"\n"),
        format!("a: \"first line\n  {many}\"\n"),
        format!("a: 'it''s {many}'\n"),
        format!("# {many}\na: 1\n"),
        format!("a: 1 # {many}\n"),
        format!("a: |\n  {many}\n  {many}\n\n  {many}\nb: 2\n"),
        format!("a: >-\n    {many}\n  b\n"),
        format!("- |2\n   {many}\n"),
        format!("regex: x{many}\n"),
        format!("a: text\n  {many}\n  more {many}\n"),
        format!("a: [1, 2] # {many}\n"),
        format!("a: [1, # {many}\n  2]\n"),
        format!("a: [\"{many}\", '{many}']\n"),
        format!("a: {{k: \"]]]{many}\"}}\n"),
        format!("a: &anchor !tag x{many}\n"),
    ] {
        assert_eq!(too_deep(&text, Format::Yaml), None, "{text}");
    }
    assert_eq!(
        too_deep(&format!("{{\"a\": \"{many} \\\" {many}\"}}"), Format::Json),
        None
    );
}

#[test]
fn brackets_the_parser_would_open_do_count() {
    let many = "[".repeat(100);
    for text in [
        format!("a: {many}\n"),
        format!("a:\n  {many}\n"),
        format!("- {many}\n"),
        format!("? {many}\n"),
        format!("a: &x {many}\n"),
        format!("a: !!seq {many}\n"),
        format!("--- {many}\n"),
        // A quote inside a flow plain scalar is text, not the start of a string.
        format!("a: [it's, {many}\n"),
        format!("a: [x\"y, {many}\n"),
        // `#` not after a blank is text too.
        format!("a: [b#c, {many}\n"),
        format!("a: [b, c]\nd: {many}\n"),
        // A block scalar ends at a line less indented than its content.
        format!("a: |\n    x\n  b: {many}\n"),
        format!("a: 'x'\nb: {many}\n"),
        // Line breaks libyaml knows besides \n.
        format!("a:\r{many}\n"),
        format!("a:\u{85}  {many}\n"),
        format!("a:\u{2028}{many}\n"),
    ] {
        assert!(
            too_deep(&text, Format::Yaml).is_some(),
            "not refused: {text:?}"
        );
    }
}

/// A small xorshift generator: the same texts on every run (`DEPTH_FUZZ_SEED` picks others,
/// `DEPTH_FUZZ_ROUNDS` how many).
fn generator(default_seed: u64) -> impl FnMut(u64) -> u64 {
    let mut seed = std::env::var("DEPTH_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default_seed)
        | 1;
    move |n| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    }
}

fn rounds(default: u64) -> u64 {
    std::env::var("DEPTH_FUZZ_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// How deep a parsed YAML value nests (a scalar: 0).
fn yaml_depth(v: &serde_norway::Value) -> usize {
    use serde_norway::Value;
    match v {
        Value::Sequence(a) => 1 + a.iter().map(yaml_depth).max().unwrap_or(0),
        Value::Mapping(m) => {
            1 + m
                .iter()
                .map(|(k, v)| yaml_depth(k).max(yaml_depth(v)))
                .max()
                .unwrap_or(0)
        }
        Value::Tagged(t) => yaml_depth(&t.value),
        _ => 0,
    }
}

/// Random texts made of YAML's tricky pieces: whenever libyaml reads one, the scan counts at
/// least as deep as what libyaml built (it must never count less).
#[test]
fn never_less_than_libyaml_on_random_texts() {
    let tricky = [
        "[",
        "]",
        "{",
        "}",
        "[",
        "{",
        "#",
        " #",
        "'",
        "\"",
        ": ",
        ":",
        "- ",
        "-",
        "|",
        ">",
        "|2",
        "\n",
        "\n",
        "\n  ",
        "\n    ",
        "  ",
        " ",
        "\t",
        "\u{85}",
        "\u{2028}",
        "&a ",
        "*a",
        "!t ",
        "!!str ",
        "%YAML 1.1\n",
        "---",
        "--- ",
        "...",
        "x",
        "y",
        "1",
        "? ",
        "?",
        ", ",
        ",",
        "\\",
        "\u{e9}",
        "\r\n",
        "\r",
        "a: ",
        "- a: ",
        "''",
        "\"\\\"\"",
    ];
    let structural = [
        "[", "[", "]", "{", "}", "- ", "- ", "a: ", "b: ", "\n", "\n  ", "\n    ", "\n      ",
        "? ", ": ", ", ", "x", "'q'", "|\n", "&a ", "!t ", " #c\n", "k:\n",
    ];
    for (pieces, longest, seed) in [
        (&tricky[..], 40, 0x2545_F491_4F6C_DD1D),
        (&structural[..], 80, 0x9E37_79B9_7F4A_7C15),
    ] {
        let mut rnd = generator(seed);
        let mut deep = 0;
        for _ in 0..rounds(30_000) {
            let len = rnd(longest) + 1;
            let text: String = (0..len)
                .map(|_| pieces[rnd(pieces.len() as u64) as usize])
                .collect();
            let Ok(value) = serde_norway::from_str::<serde_norway::Value>(&text) else {
                continue;
            };
            let depth = yaml_depth(&value);
            deep += usize::from(depth >= 3);
            let scanned = deepest(&text, Format::Yaml);
            assert!(
                scanned >= depth,
                "the scan counts {scanned}, libyaml built {depth}: {text:?}\n{value:?}"
            );
        }
        assert!(deep > 0, "no text of depth 3 or more was generated");
    }
}

/// Random values written by serde_norway (block style) and serde_json (flow style, also read as
/// YAML): the scan counts at least their depth, and not much more.
#[test]
fn close_to_the_depth_of_written_values() {
    use serde_json::Value;
    fn depth_of(v: &Value) -> usize {
        match v {
            Value::Array(a) => 1 + a.iter().map(depth_of).max().unwrap_or(0),
            Value::Object(o) => 1 + o.values().map(depth_of).max().unwrap_or(0),
            _ => 0,
        }
    }
    fn text(rnd: &mut dyn FnMut(u64) -> u64) -> String {
        let pieces = [
            "[", "]", "{", "}", "#", " #", "'", "\"", ": ", "- ", "|", ">", "\n", "  ", "\t", "&a",
            "*b", "!t", "---", "x", "?", ", ", "\\",
        ];
        (0..rnd(6))
            .map(|_| pieces[rnd(pieces.len() as u64) as usize])
            .collect()
    }
    fn value(rnd: &mut dyn FnMut(u64) -> u64, levels: usize) -> Value {
        match if levels == 0 { 3 } else { rnd(6) } {
            0 | 1 => Value::Array((0..=rnd(3)).map(|_| value(rnd, levels - 1)).collect()),
            2 => Value::Object(
                (0..=rnd(3))
                    .map(|_| (text(rnd), value(rnd, levels - 1)))
                    .collect(),
            ),
            3 | 4 => Value::String(text(rnd)),
            _ => Value::from(rnd(100)),
        }
    }
    let mut rnd = generator(0x5DEE_CE66_D1CE_4E5B);
    for round in 0..rounds(30_000) / 10 {
        let v = value(&mut rnd, (round % 9) as usize + 1);
        let depth = depth_of(&v);
        let json = serde_json::to_string(&v).unwrap();
        assert_eq!(deepest(&json, Format::Json), depth, "{json}");
        let yaml = serde_norway::to_string(&v).unwrap();
        if serde_norway::from_str::<Value>(&yaml).ok().as_ref() == Some(&v) {
            let scanned = deepest(&yaml, Format::Yaml);
            assert!(
                (depth..=2 * depth + 1).contains(&scanned),
                "the scan counts {scanned} for {depth}:\n{yaml}"
            );
        }
        if serde_norway::from_str::<Value>(&json).ok().as_ref() == Some(&v) {
            let scanned = deepest(&json, Format::Yaml);
            assert!(
                (depth..=depth + 1).contains(&scanned),
                "the scan counts {scanned} for {depth}: {json}"
            );
        }
    }
}
