//! `nats-sink`: publishes every record as one message to a NATS JetStream subject through a
//! granted connection; a batch is one `publish` call, which returns once the stream stored all.
//!
//! Config: `{ "connection": "events", "subject": "orders.paid" }`. The message payload is the
//! record's value, its key travels in header `autoflow-key`, its headers as headers
//! ([`autoflow_plugin_sdk::messaging::outgoing_from_record`]).
//!
//! This is `message-sink` under its old name, with the config it always had: the plugin's
//! code is `message-sink`'s (`plugins/message-sink/src/sink.rs`).
use autoflow_plugin_sdk::Error;
use serde::Deserialize;

#[path = "../../message-sink/src/sink.rs"]
mod sink;

use sink::{Cow, Destination, MessageSink};

/// JSON Schema (draft 2020-12) of [`Config`].
pub const CONFIG_SCHEMA: &str = r##"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "nats-sink config",
  "type": "object",
  "properties": {
    "connection": {
      "description": "A NATS connection (nats://) granted to the step.",
      "type": "string", "minLength": 1
    },
    "subject": {
      "description": "The subject every record is published to; a JetStream stream must capture it.",
      "type": "string", "minLength": 1
    }
  },
  "required": ["connection", "subject"],
  "additionalProperties": false
}"##;

/// The step's configuration.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The granted connection.
    pub connection: String,
    /// The subject to publish to.
    pub subject: String,
}

/// The sink.
pub type NatsSink = MessageSink<Config>;

impl Destination for Config {
    const NAME: &'static str = "nats-sink";
    const DESCRIPTION: &'static str = "Publishes each record as a message to a NATS JetStream subject (key in header \
             autoflow-key); a batch is acknowledged by the stream before the next.";
    const SCHEMA: &'static str = CONFIG_SCHEMA;

    fn connection(&self) -> &str {
        &self.connection
    }

    fn destination(&self) -> Cow<'_, str> {
        Cow::Borrowed(&self.subject)
    }

    fn check(&self) -> Result<(), Error> {
        if self.connection.is_empty() || self.subject.is_empty() {
            return Err(Error::InvalidConfig(
                "connection and subject must not be empty".into(),
            ));
        }
        Ok(())
    }
}

autoflow_plugin_sdk::export_sink!(NatsSink);

#[cfg(test)]
mod tests {
    use autoflow_plugin_sdk::testing::TestHost;
    use autoflow_plugin_sdk::{Error, Record, Sink, parse_config};

    use super::*;

    #[test]
    fn config() {
        let c: Config = parse_config(r#"{"connection":"q","subject":"a.b"}"#).unwrap();
        assert_eq!(
            c,
            Config {
                connection: "q".into(),
                subject: "a.b".into()
            }
        );
        assert!(parse_config::<Config>(r#"{"connection":"q"}"#).is_err());
        assert!(
            parse_config::<Config>(r#"{"connection":"q","subject":"s","stream":"x"}"#).is_err()
        );
        assert!(matches!(
            NatsSink::open(Config {
                connection: "q".into(),
                subject: String::new()
            }),
            Err(Error::InvalidConfig(_))
        ));
        let schema: serde_json::Value = serde_json::from_str(CONFIG_SCHEMA).unwrap();
        assert_eq!(
            schema["required"],
            serde_json::json!(["connection", "subject"])
        );
    }

    #[test]
    fn an_empty_batch_publishes_nothing_and_natively_publishing_fails() {
        let mut host = TestHost::new();
        host.sink::<NatsSink>(r#"{"connection":"q","subject":"s"}"#, Vec::new())
            .unwrap();
        let e = host
            .sink::<NatsSink>(
                r#"{"connection":"q","subject":"s"}"#,
                vec![Record::new("x")],
            )
            .unwrap_err();
        assert!(
            matches!(&e, Error::Fatal(m) if m.contains("not available in native tests")),
            "{e}"
        );
    }

    #[test]
    fn a_batch_is_one_publish() {
        use autoflow_plugin_sdk::messaging::KEY_HEADER;
        use autoflow_plugin_sdk::testing::FakeMessaging;
        let mut host = TestHost::new().with_messaging(FakeMessaging::default());
        let mut with_header = Record::new("b").with_key("k2");
        with_header.headers.push(("h".into(), "v".into()));
        host.sink::<NatsSink>(
            r#"{"connection":"q","subject":"orders"}"#,
            vec![Record::new("a"), with_header],
        )
        .unwrap();
        let m = host.messaging.as_ref().unwrap();
        assert_eq!(m.published.len(), 1);
        let (conn, messages) = &m.published[0];
        assert_eq!(conn, "q");
        assert_eq!(messages.len(), 2);
        assert!(messages.iter().all(|o| o.subject == "orders"));
        assert!(messages[0].headers.is_empty());
        assert_eq!(messages[1].payload, b"b");
        assert_eq!(
            messages[1].headers,
            [
                (KEY_HEADER.to_string(), "k2".to_string()),
                ("h".into(), "v".into())
            ]
        );
        assert_eq!(host.counters.get("messages_published"), Some(&2));
    }
}
