//! `mqtt-source`: reads MQTT 5 messages through a persistent session, up to `max_messages` per
//! run; what `mqtt-sink` publishes, it reads back as the same records.
//!
//! Config: `{ "connection": "broker", "topic": "sensors/+/temperature", "group": "loaders",
//! "max_messages": 10000, "wait_ms": 500, "batch": 500 }`. The group is the MQTT client id of a
//! session the broker keeps between runs (clean start off), subscribed at QoS 1 to the topic
//! filter at its first run: messages published before that are not kept (MQTT's rule). Each
//! message becomes a record: its payload the value, user property `autoflow-key` the key, its
//! other user properties the headers. How it reads and acknowledges is `nats-source`'s
//! (`plugins/nats-source/src/source.rs`): the PUBACKs are sent once the run has committed; when a
//! run fails, the host drops the group's connection and the broker sends the messages again at
//! the next run.
use serde::Deserialize;

#[path = "../../nats-source/src/source.rs"]
mod source;

use source::{MessageSource, Origin, Place};

/// JSON Schema (draft 2020-12) of [`Config`].
pub const CONFIG_SCHEMA: &str = r##"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "mqtt-source config",
  "type": "object",
  "properties": {
    "connection": {
      "description": "An MQTT connection (mqtt://user:password@host:1883) granted to the step.",
      "type": "string", "minLength": 1
    },
    "topic": {
      "description": "The topic filter subscribed to (+ and # wildcards allowed).",
      "type": "string", "minLength": 1
    },
    "group": {
      "description": "The MQTT client id of the session that keeps this step's subscription and unread messages between runs (one reader at a time).",
      "type": "string", "minLength": 1, "maxLength": 128
    },
    "max_messages": {
      "description": "Messages read per run at most (default 10000).",
      "type": "integer", "minimum": 1, "maximum": 4294967295, "default": 10000
    },
    "wait_ms": {
      "description": "How long a read waits for a first message; a read that gets none ends the run (default 500).",
      "type": "integer", "minimum": 0, "maximum": 4294967295, "default": 500
    },
    "batch": {
      "description": "Messages per read at most (default: as many as the host asks for).",
      "type": "integer", "minimum": 1, "maximum": 4294967295
    }
  },
  "required": ["connection", "topic", "group"],
  "additionalProperties": false
}"##;

fn default_max_messages() -> u32 {
    10_000
}

fn default_wait_ms() -> u32 {
    500
}

/// The step's configuration.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The granted connection.
    pub connection: String,
    /// The topic filter.
    pub topic: String,
    /// The session's client id.
    pub group: String,
    /// Messages per run at most.
    #[serde(default = "default_max_messages")]
    pub max_messages: u32,
    /// Wait for a first message, per read.
    #[serde(default = "default_wait_ms")]
    pub wait_ms: u32,
    /// Messages per read at most.
    #[serde(default)]
    pub batch: Option<u32>,
}

/// The source.
pub type MqttSource = MessageSource<Config>;

impl Origin for Config {
    const NAME: &'static str = "mqtt-source";
    const DESCRIPTION: &'static str = "Reads MQTT messages of a topic filter through a persistent \
        session (payload as the value, user properties as headers); they are acknowledged once \
        the run has committed, and sent again if it fails.";
    const SCHEMA: &'static str = CONFIG_SCHEMA;
    const STREAM: &'static str = "topic";
    const CONSUMER: &'static str = "group";
    const MAX: &'static str = "max_messages";

    fn place(&self) -> Place<'_> {
        Place {
            connection: &self.connection,
            stream: &self.topic,
            consumer: &self.group,
            max_messages: self.max_messages,
            wait_ms: self.wait_ms,
            batch: self.batch,
        }
    }
}

autoflow_plugin_sdk::export_source!(MqttSource);

#[cfg(test)]
mod tests {
    use autoflow_plugin_sdk::messaging::{KEY_HEADER, Message};
    use autoflow_plugin_sdk::testing::{FakeMessaging, TestHost};
    use autoflow_plugin_sdk::{Error, Source, parse_config};

    use super::*;

    #[test]
    fn config_defaults_checks_and_a_run() {
        let c: Config = parse_config(r#"{"connection":"b","topic":"s/+","group":"g"}"#).unwrap();
        assert_eq!((c.max_messages, c.wait_ms, c.batch), (10_000, 500, None));
        let e = MqttSource::open(
            parse_config(r#"{"connection":"b","topic":"","group":"g"}"#).unwrap(),
            None,
        )
        .unwrap_err();
        assert!(
            matches!(&e, Error::InvalidConfig(m) if m == "topic must not be empty"),
            "{e}"
        );
        assert!(parse_config::<Config>(r#"{"connection":"b","topic":"t"}"#).is_err());
        let inbox = (1..=3)
            .map(|i| Message {
                subject: format!("s/{i}"),
                payload: format!(r#"{{"n":{i}}}"#).into_bytes(),
                headers: vec![(KEY_HEADER.into(), format!("k{i}"))],
                position: i.to_string(),
                delivered: 1,
                ack_id: format!("a{i}"),
            })
            .collect();
        let mut host = TestHost::new().with_messaging(FakeMessaging {
            inbox,
            ..FakeMessaging::default()
        });
        let batches = host
            .source::<MqttSource>(
                r#"{"connection":"b","topic":"s/+","group":"g","wait_ms":5}"#,
                None,
                2,
            )
            .unwrap();
        let records: Vec<_> = batches.iter().flat_map(|b| b.records.iter()).collect();
        assert_eq!(records.len(), 3);
        assert_eq!(records[2].key.as_deref(), Some(&b"k3"[..]));
        let m = host.messaging.as_ref().unwrap();
        assert_eq!(m.acked, ["a1", "a2", "a3"]);
        assert_eq!(m.fetches[0], ("b".into(), "s/+".into(), "g".into(), 2, 5));
        let schema: serde_json::Value = serde_json::from_str(CONFIG_SCHEMA).unwrap();
        assert_eq!(
            schema["required"],
            serde_json::json!(["connection", "topic", "group"])
        );
    }
}
