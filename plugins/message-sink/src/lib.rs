//! `message-sink`: publishes every record as one message through a granted connection, to a
//! NATS JetStream subject or a Redis stream: the host picks the service from the connection's
//! URL (see [`sink`]). `nats-sink` and `redis-sink` are this plugin under their old names.
//!
//! Config: `{ "connection": "events", "subject": "orders.paid" }`, or with `stream` (the same
//! place in the words of Redis): `{ "connection": "cache", "stream": "orders" }`; one of them.
use autoflow_plugin_sdk::Error;
use serde::Deserialize;

pub mod sink;

pub use sink::{Cow, Destination, MessageSink};

/// JSON Schema (draft 2020-12) of [`Config`].
pub const CONFIG_SCHEMA: &str = r##"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "message-sink config",
  "type": "object",
  "properties": {
    "connection": {
      "description": "A NATS (nats://) or Redis (redis://) connection granted to the step.",
      "type": "string", "minLength": 1
    },
    "subject": {
      "description": "Where every record goes: a NATS subject (a JetStream stream must capture it) or a Redis stream's key.",
      "type": "string", "minLength": 1
    },
    "stream": {
      "description": "The same as subject, in the words of Redis: the key of the stream every record is appended to.",
      "type": "string", "minLength": 1
    }
  },
  "required": ["connection"],
  "oneOf": [{ "required": ["subject"] }, { "required": ["stream"] }],
  "additionalProperties": false
}"##;

/// The step's configuration.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The granted connection.
    pub connection: String,
    /// Where every record goes (a subject, or a stream's key).
    #[serde(default)]
    pub subject: Option<String>,
    /// The same as `subject`, as Redis calls it.
    #[serde(default)]
    pub stream: Option<String>,
}

impl Destination for Config {
    const NAME: &'static str = "message-sink";
    const DESCRIPTION: &'static str = "Publishes each record as a message through a NATS or \
        Redis connection: to a JetStream subject or onto a Redis stream, as the connection's URL \
        says (key in header autoflow-key); a batch is stored by the service before the next.";
    const SCHEMA: &'static str = CONFIG_SCHEMA;

    fn connection(&self) -> &str {
        &self.connection
    }

    fn destination(&self) -> Cow<'_, str> {
        Cow::Borrowed(
            self.subject
                .as_deref()
                .or(self.stream.as_deref())
                .unwrap_or_default(),
        )
    }

    fn check(&self) -> Result<(), Error> {
        match (&self.subject, &self.stream) {
            (Some(_), Some(_)) | (None, None) => Err(Error::InvalidConfig(
                "give one of subject (NATS) or stream (Redis)".into(),
            )),
            _ if self.connection.is_empty() || self.destination().is_empty() => Err(
                Error::InvalidConfig("connection and subject must not be empty".into()),
            ),
            _ => Ok(()),
        }
    }
}

autoflow_plugin_sdk::export_sink!(MessageSink<Config>);

#[cfg(test)]
mod tests {
    use autoflow_plugin_sdk::messaging::KEY_HEADER;
    use autoflow_plugin_sdk::testing::{FakeMessaging, TestHost};
    use autoflow_plugin_sdk::{Error, Record, Sink, parse_config};

    use super::*;

    #[test]
    fn config_names_one_destination() {
        let c: Config = parse_config(r#"{"connection":"q","subject":"a.b"}"#).unwrap();
        assert_eq!(c.destination(), "a.b");
        let c: Config = parse_config(r#"{"connection":"q","stream":"orders"}"#).unwrap();
        assert_eq!(c.destination(), "orders");
        assert!(parse_config::<Config>(r#"{"connection":"q","topic":"x"}"#).is_err());
        for both_or_none in [
            r#"{"connection":"q","subject":"a","stream":"b"}"#,
            r#"{"connection":"q"}"#,
        ] {
            let c: Config = parse_config(both_or_none).unwrap();
            assert!(
                matches!(MessageSink::open(c), Err(Error::InvalidConfig(m)) if m.contains("one of subject")),
                "{both_or_none}"
            );
        }
        let empty: Config = parse_config(r#"{"connection":"","stream":"s"}"#).unwrap();
        assert!(matches!(
            MessageSink::open(empty),
            Err(Error::InvalidConfig(_))
        ));
        let schema: serde_json::Value = serde_json::from_str(CONFIG_SCHEMA).unwrap();
        assert_eq!(schema["required"], serde_json::json!(["connection"]));
        assert_eq!(
            <MessageSink<Config> as Sink>::metadata().name,
            "message-sink"
        );
    }

    #[test]
    fn a_batch_is_one_publish_to_the_destination() {
        let mut host = TestHost::new().with_messaging(FakeMessaging::default());
        host.sink::<MessageSink<Config>>(
            r#"{"connection":"q","stream":"orders"}"#,
            vec![Record::new("a"), Record::new("b").with_key("k")],
        )
        .unwrap();
        let m = host.messaging.as_ref().unwrap();
        assert_eq!(m.published.len(), 1);
        let (conn, messages) = &m.published[0];
        assert_eq!(conn, "q");
        assert!(messages.iter().all(|o| o.subject == "orders"));
        assert_eq!(
            messages[1].headers,
            [(KEY_HEADER.to_string(), "k".to_string())]
        );
        assert_eq!(host.counters.get("messages_published"), Some(&2));
        host.sink::<MessageSink<Config>>(r#"{"connection":"q","subject":"s"}"#, Vec::new())
            .unwrap();
        assert_eq!(host.messaging.as_ref().unwrap().published.len(), 1);
    }
}
