//! `redis-source`: reads the entries of a Redis stream through a consumer group, up to
//! `max_entries` per run; what `redis-sink` appends, it reads back as the same records.
//!
//! Config: `{ "connection": "cache", "stream": "orders", "group": "loaders", "max_entries":
//! 10000, "wait_ms": 500, "batch": 500, "value": "payload" }`. The group is created on first use
//! at the stream's start, so its first run reads every entry already there. Each entry becomes
//! a record: with `value: payload` (the default) its value is field `payload` (as `redis-sink`
//! writes it), its key field `autoflow-key`, the other fields headers; an entry without a
//! `payload` (written by something else) is read as with `value: fields`, which makes the
//! record's value a JSON object of the entry's fields, each a string (field `autoflow-key` is
//! still the key). How it reads and acknowledges is `nats-source`'s
//! (`plugins/nats-source/src/source.rs`): entries are acknowledged (`XACK`) once the run has
//! committed, and an entry a failed run read is delivered again. The cursor is the entry id of
//! the batch's last entry.
use autoflow_plugin_sdk::Record;
use autoflow_plugin_sdk::messaging::Message;
use serde::Deserialize;

#[path = "../../nats-source/src/source.rs"]
mod source;

use source::{MessageSource, Origin, Place};

/// JSON Schema (draft 2020-12) of [`Config`].
pub const CONFIG_SCHEMA: &str = r##"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "redis-source config",
  "type": "object",
  "properties": {
    "connection": {
      "description": "A Redis connection (redis://) granted to the step.",
      "type": "string", "minLength": 1
    },
    "stream": {
      "description": "The key of the stream to read.",
      "type": "string", "minLength": 1
    },
    "group": {
      "description": "The consumer group that keeps this step's position (created at the stream's start on first use).",
      "type": "string", "minLength": 1
    },
    "max_entries": {
      "description": "Entries read per run at most (default 10000).",
      "type": "integer", "minimum": 1, "maximum": 4294967295, "default": 10000
    },
    "wait_ms": {
      "description": "How long a read blocks for a first entry; a read that gets none ends the run (default 500).",
      "type": "integer", "minimum": 0, "maximum": 4294967295, "default": 500
    },
    "batch": {
      "description": "Entries per read at most (default: as many as the host asks for).",
      "type": "integer", "minimum": 1, "maximum": 4294967295
    },
    "value": {
      "description": "What a record's value is: field payload, as redis-sink writes it (an entry without one is read as fields), or a JSON object of the entry's fields.",
      "enum": ["payload", "fields"], "default": "payload"
    }
  },
  "required": ["connection", "stream", "group"],
  "additionalProperties": false
}"##;

fn default_max_entries() -> u32 {
    10_000
}

fn default_wait_ms() -> u32 {
    500
}

/// What a record's value is made of.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Value {
    /// Field `payload`; an entry without one is read as [`Value::Fields`].
    #[default]
    Payload,
    /// A JSON object of the entry's fields.
    Fields,
}

/// The step's configuration.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The granted connection.
    pub connection: String,
    /// The stream's key.
    pub stream: String,
    /// The consumer group.
    pub group: String,
    /// Entries per run at most.
    #[serde(default = "default_max_entries")]
    pub max_entries: u32,
    /// Wait for a first entry, per read.
    #[serde(default = "default_wait_ms")]
    pub wait_ms: u32,
    /// Entries per read at most.
    #[serde(default)]
    pub batch: Option<u32>,
    /// What a record's value is.
    #[serde(default)]
    pub value: Value,
}

/// The source.
pub type RedisSource = MessageSource<Config>;

impl Origin for Config {
    const NAME: &'static str = "redis-source";
    const DESCRIPTION: &'static str = "Reads the entries of a Redis stream through a consumer \
        group (field payload as the value, or all fields as a JSON object); they are \
        acknowledged once the run has committed.";
    const SCHEMA: &'static str = CONFIG_SCHEMA;
    const CONSUMER: &'static str = "group";
    const MAX: &'static str = "max_entries";

    fn place(&self) -> Place<'_> {
        Place {
            connection: &self.connection,
            stream: &self.stream,
            consumer: &self.group,
            max_messages: self.max_entries,
            wait_ms: self.wait_ms,
            batch: self.batch,
        }
    }

    fn record(&self, message: Message) -> Record {
        if self.value == Value::Payload && !message.payload.is_empty() {
            return message.into_record();
        }
        fields_record(message)
    }
}

/// The record of an entry read as its fields: a JSON object of them (the host hands field
/// `payload` over apart, and the others as headers), keyed by field `autoflow-key`.
fn fields_record(message: Message) -> Record {
    let payload = (!message.payload.is_empty())
        .then(|| String::from_utf8_lossy(&message.payload).into_owned());
    let mut record = Message {
        payload: Vec::new(),
        ..message
    }
    .into_record();
    let mut fields: serde_json::Map<String, serde_json::Value> =
        std::mem::take(&mut record.headers)
            .into_iter()
            .map(|(k, v)| (k, serde_json::Value::String(v)))
            .collect();
    if let Some(p) = payload {
        fields.insert("payload".into(), serde_json::Value::String(p));
    }
    fields.sort_keys();
    record.value = serde_json::Value::Object(fields).to_string().into_bytes();
    record
}

autoflow_plugin_sdk::export_source!(RedisSource);

#[cfg(test)]
mod tests {
    use autoflow_plugin_sdk::messaging::KEY_HEADER;
    use autoflow_plugin_sdk::testing::{FakeMessaging, TestHost};
    use autoflow_plugin_sdk::{Error, Source, parse_config};

    use super::*;

    fn entry(id: &str, payload: &str, fields: &[(&str, &str)]) -> Message {
        Message {
            subject: "orders".into(),
            payload: payload.as_bytes().to_vec(),
            headers: fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            position: id.into(),
            delivered: 1,
            ack_id: format!("ack-{id}"),
        }
    }

    #[test]
    fn config_defaults_and_checks() {
        let c: Config =
            parse_config(r#"{"connection":"c","stream":"orders","group":"g"}"#).unwrap();
        assert_eq!(
            (c.max_entries, c.wait_ms, c.batch, c.value),
            (10_000, 500, None, Value::Payload)
        );
        let zero: Config =
            parse_config(r#"{"connection":"c","stream":"s","group":"g","max_entries":0}"#).unwrap();
        let e = RedisSource::open(zero, None).unwrap_err();
        assert!(
            matches!(&e, Error::InvalidConfig(m) if m.contains("max_entries")),
            "{e}"
        );
        let empty: Config = parse_config(r#"{"connection":"c","stream":"s","group":""}"#).unwrap();
        let e = RedisSource::open(empty, None).unwrap_err();
        assert!(
            matches!(&e, Error::InvalidConfig(m) if m.contains("group")),
            "{e}"
        );
        assert!(parse_config::<Config>(r#"{"connection":"c","stream":"s"}"#).is_err());
        assert!(
            parse_config::<Config>(r#"{"connection":"c","stream":"s","group":"g","value":"raw"}"#)
                .is_err()
        );
        let schema: serde_json::Value = serde_json::from_str(CONFIG_SCHEMA).unwrap();
        assert_eq!(
            schema["required"],
            serde_json::json!(["connection", "stream", "group"])
        );
    }

    #[test]
    fn entries_become_records_by_payload_or_by_fields() {
        let payload: Config =
            parse_config(r#"{"connection":"c","stream":"s","group":"g"}"#).unwrap();
        let fields: Config =
            parse_config(r#"{"connection":"c","stream":"s","group":"g","value":"fields"}"#)
                .unwrap();
        // What redis-sink wrote: payload, key, a header.
        let written = entry("1-0", r#"{"n":1}"#, &[(KEY_HEADER, "k1"), ("h", "v")]);
        let r = payload.record(written.clone());
        assert_eq!(r.value, br#"{"n":1}"#);
        assert_eq!(r.key.as_deref(), Some(&b"k1"[..]));
        assert_eq!(r.headers, [("h".to_string(), "v".to_string())]);
        let r = fields.record(written);
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&r.value).unwrap(),
            serde_json::json!({"h": "v", "payload": "{\"n\":1}"})
        );
        assert_eq!(r.key.as_deref(), Some(&b"k1"[..]));
        assert!(r.headers.is_empty());
        // An entry of plain fields (XADD s * order 7 sku a): its fields either way.
        let plain = entry("2-0", "", &[("order", "7"), ("sku", "a")]);
        for c in [&payload, &fields] {
            let r = c.record(plain.clone());
            assert_eq!(r.value, br#"{"order":"7","sku":"a"}"#);
            assert_eq!(r.key, None);
        }
    }

    #[test]
    fn a_run_reads_the_group_up_to_max_entries_and_acks_what_it_read() {
        let inbox = (1..=4)
            .map(|i| entry(&format!("{i}-0"), "", &[("n", &i.to_string())]))
            .collect();
        let mut host = TestHost::new().with_messaging(FakeMessaging {
            inbox,
            ..FakeMessaging::default()
        });
        let batches = host
            .source::<RedisSource>(
                r#"{"connection":"c","stream":"orders","group":"loaders","max_entries":3,"wait_ms":50}"#,
                None,
                2,
            )
            .unwrap();
        let sizes: Vec<_> = batches.iter().map(|b| b.records.len()).collect();
        assert_eq!(sizes, [2, 1]);
        assert_eq!(batches[1].cursor.as_deref(), Some("3-0"));
        assert_eq!(batches[0].records[1].value, br#"{"n":"2"}"#);
        let m = host.messaging.as_ref().unwrap();
        assert_eq!(m.acked, ["ack-1-0", "ack-2-0", "ack-3-0"]);
        assert_eq!(
            m.fetches[0],
            ("c".into(), "orders".into(), "loaders".into(), 2, 50)
        );
        assert_eq!(host.counters.get("messages_read"), Some(&3));
    }
}
