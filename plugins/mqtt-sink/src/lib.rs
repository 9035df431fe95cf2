//! `mqtt-sink`: publishes every record as one MQTT 5 message at QoS 1 to a topic through a
//! granted connection; a batch is one `publish` call, which returns once the broker
//! acknowledged every message (PUBACK).
//!
//! Config: `{ "connection": "broker", "topic": "orders/eu" }`. The payload is the record's
//! value, its key travels in user property `autoflow-key`, its headers as user properties
//! ([`autoflow_plugin_sdk::messaging::outgoing_from_record`]). A broker keeps a message only for
//! the sessions subscribed to its topic when it arrives (MQTT's rule). The plugin's code is
//! `message-sink`'s (`plugins/message-sink/src/sink.rs`).
use autoflow_plugin_sdk::Error;
use serde::Deserialize;

#[path = "../../message-sink/src/sink.rs"]
mod sink;

use sink::{Cow, Destination, MessageSink};

/// JSON Schema (draft 2020-12) of [`Config`].
pub const CONFIG_SCHEMA: &str = r##"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "mqtt-sink config",
  "type": "object",
  "properties": {
    "connection": {
      "description": "An MQTT connection (mqtt://user:password@host:1883) granted to the step.",
      "type": "string", "minLength": 1
    },
    "topic": {
      "description": "The topic every record is published to (no + or # wildcards).",
      "type": "string", "minLength": 1, "pattern": "^[^+#]*$"
    }
  },
  "required": ["connection", "topic"],
  "additionalProperties": false
}"##;

/// The step's configuration.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The granted connection.
    pub connection: String,
    /// The topic.
    pub topic: String,
}

/// The sink.
pub type MqttSink = MessageSink<Config>;

impl Destination for Config {
    const NAME: &'static str = "mqtt-sink";
    const DESCRIPTION: &'static str = "Publishes each record as an MQTT message at QoS 1 to a \
        topic (key and headers as user properties); a batch is acknowledged by the broker before \
        the next.";
    const SCHEMA: &'static str = CONFIG_SCHEMA;

    fn connection(&self) -> &str {
        &self.connection
    }

    fn destination(&self) -> Cow<'_, str> {
        Cow::Borrowed(&self.topic)
    }

    fn check(&self) -> Result<(), Error> {
        if self.connection.is_empty() || self.topic.is_empty() {
            return Err(Error::InvalidConfig(
                "connection and topic must not be empty".into(),
            ));
        }
        if self.topic.contains(['+', '#']) {
            return Err(Error::InvalidConfig(format!(
                "topic {:?} has a wildcard (+ or #): a message goes to one topic",
                self.topic
            )));
        }
        Ok(())
    }
}

autoflow_plugin_sdk::export_sink!(MqttSink);

#[cfg(test)]
mod tests {
    use autoflow_plugin_sdk::testing::{FakeMessaging, TestHost};
    use autoflow_plugin_sdk::{Error, Record, Sink, parse_config};

    use super::*;

    #[test]
    fn a_batch_is_one_publish_to_one_topic() {
        let mut host = TestHost::new().with_messaging(FakeMessaging::default());
        host.sink::<MqttSink>(
            r#"{"connection":"b","topic":"orders/eu"}"#,
            vec![Record::new("a"), Record::new("b")],
        )
        .unwrap();
        let m = host.messaging.as_ref().unwrap();
        assert_eq!(m.published.len(), 1);
        assert!(m.published[0].1.iter().all(|o| o.subject == "orders/eu"));
        let e = MqttSink::open(parse_config(r#"{"connection":"b","topic":"a/+"}"#).unwrap())
            .unwrap_err();
        assert!(
            matches!(&e, Error::InvalidConfig(m) if m.contains("wildcard")),
            "{e}"
        );
        assert!(parse_config::<Config>(r#"{"connection":"b"}"#).is_err());
    }
}
