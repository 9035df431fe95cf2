//! Parsing: both formats to the same model, round trips, defaults and parse error texts.

use super::{FULL_JSON, FULL_YAML, parse_error};
use crate::pipeline::{Catchup, Format, MountMode, Overlap, Pipeline, PipelineError, parse};
use std::path::Path;

#[test]
fn yaml_and_json_give_the_same_model() {
    let from_yaml = parse(FULL_YAML, None).unwrap();
    let from_json = parse(FULL_JSON, None).unwrap();
    assert_eq!(from_yaml, from_json);
    assert_eq!(from_yaml.steps.len(), 3);
    assert_eq!(from_yaml.steps[1].input.as_deref(), Some("read"));
    assert_eq!(from_yaml.steps[2].mounts[0].mode, MountMode::Rw);
    assert_eq!(from_yaml.schedule.as_ref().unwrap().catchup, Catchup::Once);
    assert_eq!(from_yaml.schedule.as_ref().unwrap().overlap, Overlap::Queue);
}

#[test]
fn round_trips_through_yaml_and_json() {
    let pipeline = parse(FULL_YAML, None).unwrap();
    let yaml = serde_norway::to_string(&pipeline).unwrap();
    assert_eq!(parse(&yaml, Some(Format::Yaml)).unwrap(), pipeline);
    let json = serde_json::to_string_pretty(&pipeline).unwrap();
    assert_eq!(parse(&json, None).unwrap(), pipeline);
    let compact: Pipeline =
        serde_json::from_str(&serde_json::to_string(&pipeline).unwrap()).unwrap();
    assert_eq!(compact, pipeline);
}

/// A config number is the same number once stored as JSON and read back (found by the
/// `pipeline` fuzz target: serde_json's default float parser was one unit in the last place
/// off for `1.2222222222222222e+85`).
#[test]
fn config_floats_survive_the_stored_json_exactly() {
    let text = "name: p\nsteps:\n  - id: a\n    plugin: x@1.0.0\n    config: { x: 1.2222222222222222e+85, y: 0.1, z: 5e-324 }\n";
    let pipeline = parse(text, None).unwrap();
    let stored = serde_json::to_string(&pipeline).unwrap();
    let back: Pipeline = serde_json::from_str(&stored).unwrap();
    assert_eq!(back, pipeline);
    assert_eq!(
        back.steps[0].config["x"].as_f64(),
        Some(1.2222222222222222e85)
    );
    assert!(stored.contains("1.2222222222222222e+85"), "{stored}");
}

#[test]
fn defaults() {
    let p = parse(
        "name: p\nschedule: { cron: '* * * * * *' }\nsteps:\n  - id: a\n    plugin: x@1.0.0\n    \
         config:\n    mounts: [{ host: d, guest: /d }]\n",
        None,
    )
    .unwrap();
    let schedule = p.schedule.as_ref().unwrap();
    assert_eq!(schedule.timezone, "UTC");
    assert_eq!(schedule.catchup, Catchup::Skip);
    assert_eq!(schedule.overlap, Overlap::Skip);
    assert_eq!(p.steps[0].config, serde_json::json!({}));
    assert_eq!(p.steps[0].mounts[0].mode, MountMode::Ro);
    assert!(p.steps[0].limits.is_empty() && p.limits.is_empty());
    assert_eq!(p.batch_size, None);
    assert_eq!(p.effective_batch_size(&p.steps[0]), 1024);
    // No config at all is `{}` as well, and it is left out when written back.
    let p = parse(
        "{\"name\": \"p\", \"steps\": [{\"id\": \"a\", \"plugin\": \"x@1.0.0\"}]}",
        None,
    )
    .unwrap();
    assert_eq!(p.steps[0].config, serde_json::json!({}));
    assert!(!serde_json::to_string(&p).unwrap().contains("config"));
}

#[test]
fn catchup_accepts_booleans() {
    let with = |value: &str| {
        let text = format!("name: p\nschedule: {{ cron: x, catchup: {value} }}\nsteps: []\n");
        parse(&text, None).unwrap().schedule.unwrap().catchup
    };
    assert_eq!(with("false"), Catchup::Skip);
    assert_eq!(with("true"), Catchup::All);
    assert_eq!(with("all"), Catchup::All);
    assert_eq!(
        parse_error("name: p\nschedule: { cron: x, catchup: maybe }\nsteps: []\n"),
        "line 2, column 31: schedule.catchup: unknown variant `maybe`, expected one of `skip`, `once`, `all`"
    );
}

#[test]
fn format_detection_and_hints() {
    assert_eq!(Format::detect("  \n {\"name\": 1}"), Format::Json);
    assert_eq!(Format::detect("name: x"), Format::Yaml);
    assert_eq!(Format::from_path(Path::new("a/p.YML")), Some(Format::Yaml));
    assert_eq!(Format::from_path(Path::new("p.yaml")), Some(Format::Yaml));
    assert_eq!(Format::from_path(Path::new("p.json")), Some(Format::Json));
    assert_eq!(Format::from_path(Path::new("p.txt")), None);
    // The hint wins over the content.
    let yaml = "name: p\nsteps: []\n";
    assert_eq!(
        parse(yaml, Some(Format::Json)).unwrap_err().to_string(),
        "line 1, column 2: expected ident"
    );
    assert!(parse(yaml, Some(Format::Yaml)).is_ok());
    // A byte-order mark is skipped.
    assert!(parse("\u{feff}{\"name\": \"p\", \"steps\": []}", None).is_ok());
}

#[test]
fn unknown_field_yaml_names_the_place() {
    let text = "name: p\nsteps:\n  - id: read\n    plugn: x@1.0.0\n";
    assert_eq!(
        parse_error(text),
        "line 4, column 5: steps[0]: unknown field `plugn`, expected one of `id`, `plugin`, `config`, \
         `input`, `inputs`, `mounts`, `limits`, `batch_size`, `secrets`, `allow_hosts`, `connections`, `retry`"
    );
    let text = "name: p\nsteps:\n  - id: r\n    plugin: x@1.0.0\n    mounts: [{ host: a, guest: /b, mod: ro }]\n";
    assert_eq!(
        parse_error(text),
        "line 5, column 36: steps[0].mounts[0]: unknown field `mod`, expected one of `host`, `guest`, `mode`"
    );
    assert_eq!(
        parse_error("name: p\nstep: []\n"),
        "line 2, column 1: unknown field `step`, expected one of `name`, `description`, `schedule`, \
         `steps`, `limits`, `retry`, `batch_size`, `dead_letter`, `concurrency`, `labels`, `connections`, \
         `alerts`, `triggers`, `params`"
    );
}

#[test]
fn unknown_field_json_names_the_place() {
    let text = "{\"name\": \"p\", \"steps\": [{\"id\": \"r\",\n  \"plugn\": \"x\"}]}";
    assert_eq!(
        parse_error(text),
        "line 2, column 9: steps[0]: unknown field `plugn`, expected one of `id`, `plugin`, `config`, \
         `input`, `inputs`, `mounts`, `limits`, `batch_size`, `secrets`, `allow_hosts`, `connections`, `retry`"
    );
    assert_eq!(
        parse_error("{\"name\": \"p\", \"stepz\": []}"),
        "line 1, column 21: unknown field `stepz`, expected one of `name`, `description`, `schedule`, \
         `steps`, `limits`, `retry`, `batch_size`, `dead_letter`, `concurrency`, `labels`, `connections`, \
         `alerts`, `triggers`, `params`"
    );
}

#[test]
fn wrong_types_and_missing_fields() {
    assert_eq!(
        parse_error("name: p\nsteps:\n  - id: r\n    plugin: x\n    limits: { memory_mb: -1 }\n"),
        "line 5, column 26: steps[0].limits.memory_mb: invalid type: integer `-1`, expected u64"
    );
    assert_eq!(
        parse_error(
            "{\"name\": \"p\", \"steps\": [{\"id\": \"r\", \"plugin\": \"x\", \"batch_size\": \"big\"}]}"
        ),
        "line 1, column 70: steps[0].batch_size: invalid type: string \"big\", expected u32"
    );
    assert_eq!(
        parse_error("name: a\nsteps:\n  - id: read\n"),
        "line 3, column 5: steps[0]: missing field `plugin`"
    );
    assert_eq!(
        parse_error("{\"name\": \"a\"}"),
        "line 1, column 13: missing field `steps`"
    );
}

#[test]
fn malformed_text_gives_line_and_column() {
    assert_eq!(
        parse_error("name: a\nsteps:\n  - id: read\n    plugin: x\n   bad: indent\n"),
        "line 5, column 4: did not find expected '-' indicator, while parsing a block collection at line 3 column 3"
    );
    assert_eq!(
        parse_error("name: a\nsteps: [\n"),
        "line 3, column 1: did not find expected node content, while parsing a flow node"
    );
    assert_eq!(
        parse_error("{\"name\": \"a\", \"steps\": ["),
        "line 1, column 24: steps: EOF while parsing a list"
    );
    assert_eq!(
        parse_error("{\"name\": \"a\", \"steps\": []} x"),
        "line 1, column 28: trailing characters"
    );
    assert_eq!(parse_error(" \n"), "the pipeline definition is empty");
    match parse("{\"name\": 1}", None) {
        Err(PipelineError::Parse {
            location: Some(loc),
            ..
        }) => assert_eq!((loc.line, loc.column), (1, 10)),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn yaml_reading_rules() {
    // A field of the model given twice is refused, naming the place.
    assert_eq!(
        parse_error("name: p\nsteps:\n  - id: a\n    id: b\n    plugin: x\n"),
        "line 3, column 5: steps[0]: duplicate field `id`"
    );
    // Scalars are read by YAML 1.2's core schema: `on`, `no`, `yes` and `y` are strings (YAML
    // 1.1 made them booleans), `True` and `~` are what they look like; in a free-form config a
    // repeated key keeps its last value.
    let p = parse(
        "name: p\nsteps:\n  - id: a\n    plugin: x\n    \
         config: { on: on, no: no, yes: y, k: 1, k: 2, t: True, n: ~, o: 0o17, f: 1e3 }\n",
        None,
    )
    .unwrap();
    assert_eq!(
        p.steps[0].config,
        serde_json::json!({"on": "on", "no": "no", "yes": "y", "k": 2, "t": true, "n": null,
                           "o": 15, "f": 1000.0})
    );
    // Anchors and aliases work; an alias bomb (a billion `x` from nine lines) is refused
    // before it is expanded.
    let p = parse(
        "name: p\nsteps:\n  - id: a\n    plugin: x\n    config: { a: &a [1, 2], b: *a }\n",
        None,
    )
    .unwrap();
    assert_eq!(
        p.steps[0].config,
        serde_json::json!({"a": [1, 2], "b": [1, 2]})
    );
    let mut bomb = String::from("name: p\nsteps:\n  - id: a\n    plugin: x\n    config:\n");
    bomb.push_str("      a: &a [x, x, x, x, x, x, x, x, x, x]\n");
    for (from, to) in ('a'..='h').zip('b'..='i') {
        let ten = vec![format!("*{from}"); 10].join(", ");
        bomb.push_str(&format!("      {to}: &{to} [{ten}]\n"));
    }
    assert_eq!(parse_error(&bomb), "repetition limit exceeded");
}

#[test]
fn versions_order_as_semver_says() {
    use std::cmp::Ordering::{Equal, Greater, Less};
    let order = crate::pipeline::version_order;
    // Ascending, by semver 2.0's own example and numbers that text order gets wrong.
    let ascending = [
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
        "1.0.1",
        "1.2.0",
        "1.10.0",
        "2.0.0",
    ];
    for pair in ascending.windows(2) {
        assert_eq!(order(pair[0], pair[1]), Less, "{} < {}", pair[0], pair[1]);
        assert_eq!(
            order(pair[1], pair[0]),
            Greater,
            "{} > {}",
            pair[1],
            pair[0]
        );
    }
    assert_eq!(order("1.0.0+build.7", "1.0.0"), Equal);
}
