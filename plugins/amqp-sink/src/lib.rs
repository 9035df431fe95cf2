//! `amqp-sink`: publishes every record as one persistent message through a granted AMQP 0-9-1
//! connection (RabbitMQ), to a queue or to an exchange with a routing key; a batch is one
//! `publish` call, which returns once the broker confirmed every message.
//!
//! Config: `{ "connection": "broker", "queue": "orders" }` (the default exchange, which routes
//! to the queue of that name, declared durable on first use), or `{ "connection": "broker",
//! "exchange": "events", "routing_key": "orders.eu" }`. Messages are published mandatory: one
//! that no queue takes fails the batch instead of vanishing. The body is the record's value, its
//! key travels in header `autoflow-key`, its headers as headers
//! ([`autoflow_plugin_sdk::messaging::outgoing_from_record`]).
//!
//! The plugin's code is `message-sink`'s (`plugins/message-sink/src/sink.rs`); the host reads
//! the destination `EXCHANGE/ROUTING-KEY` (or a queue's name alone).
use autoflow_plugin_sdk::Error;
use serde::Deserialize;

#[path = "../../message-sink/src/sink.rs"]
mod sink;

use sink::{Cow, Destination, MessageSink};

/// JSON Schema (draft 2020-12) of [`Config`].
pub const CONFIG_SCHEMA: &str = r##"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "amqp-sink config",
  "type": "object",
  "properties": {
    "connection": {
      "description": "An AMQP connection (amqp://user:password@host:5672/vhost) granted to the step.",
      "type": "string", "minLength": 1
    },
    "queue": {
      "description": "The queue every record goes to, through the default exchange (declared durable on first use).",
      "type": "string", "minLength": 1, "maxLength": 255
    },
    "exchange": {
      "description": "The exchange every record is published to (it must exist), with routing_key.",
      "type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[^/]*$"
    },
    "routing_key": {
      "description": "The routing key, with exchange.",
      "type": "string", "maxLength": 255
    }
  },
  "required": ["connection"],
  "oneOf": [
    { "required": ["queue"], "not": { "anyOf": [{ "required": ["exchange"] }, { "required": ["routing_key"] }] } },
    { "required": ["exchange", "routing_key"], "not": { "required": ["queue"] } }
  ],
  "additionalProperties": false
}"##;

/// The step's configuration.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The granted connection.
    pub connection: String,
    /// The queue (through the default exchange).
    #[serde(default)]
    pub queue: Option<String>,
    /// The exchange, with `routing_key`.
    #[serde(default)]
    pub exchange: Option<String>,
    /// The routing key, with `exchange`.
    #[serde(default)]
    pub routing_key: Option<String>,
}

/// The sink.
pub type AmqpSink = MessageSink<Config>;

impl Config {
    /// Where the host publishes (`EXCHANGE/ROUTING-KEY`, or the queue's name), or why the
    /// config says nowhere.
    fn resolve(&self) -> Result<String, String> {
        match (&self.queue, &self.exchange, &self.routing_key) {
            (Some(q), None, None) if !q.is_empty() => Ok(q.clone()),
            (Some(_), None, None) => Err("queue must not be empty".into()),
            (None, Some(e), Some(k)) if !e.is_empty() && !e.contains('/') => Ok(format!("{e}/{k}")),
            (None, Some(_), Some(_)) => {
                Err("exchange must not be empty and must not contain '/'".into())
            }
            (None, Some(_), None) => Err("exchange needs routing_key".into()),
            (None, None, Some(_)) => Err("routing_key needs exchange".into()),
            (None, None, None) => Err("give queue, or exchange and routing_key".into()),
            (Some(_), _, _) => Err("give queue, or exchange and routing_key, not both".into()),
        }
    }
}

impl Destination for Config {
    const NAME: &'static str = "amqp-sink";
    const DESCRIPTION: &'static str = "Publishes each record as a persistent message to an AMQP \
        (RabbitMQ) queue, or to an exchange with a routing key (key in header autoflow-key); a \
        batch is confirmed by the broker before the next.";
    const SCHEMA: &'static str = CONFIG_SCHEMA;

    fn connection(&self) -> &str {
        &self.connection
    }

    fn destination(&self) -> Cow<'_, str> {
        // Checked when the step opened.
        Cow::Owned(self.resolve().unwrap_or_default())
    }

    fn check(&self) -> Result<(), Error> {
        if self.connection.is_empty() {
            return Err(Error::InvalidConfig("connection must not be empty".into()));
        }
        self.resolve().map(drop).map_err(Error::InvalidConfig)
    }
}

autoflow_plugin_sdk::export_sink!(AmqpSink);

#[cfg(test)]
mod tests {
    use autoflow_plugin_sdk::messaging::KEY_HEADER;
    use autoflow_plugin_sdk::testing::{FakeMessaging, TestHost};
    use autoflow_plugin_sdk::{Error, Record, Sink, parse_config};

    use super::*;

    fn opened(config: &str) -> Result<AmqpSink, Error> {
        AmqpSink::open(parse_config::<Config>(config)?)
    }

    #[test]
    fn a_queue_or_an_exchange_with_its_routing_key() {
        for (config, why) in [
            (
                r#"{"connection":"b"}"#,
                "give queue, or exchange and routing_key",
            ),
            (
                r#"{"connection":"b","queue":""}"#,
                "queue must not be empty",
            ),
            (
                r#"{"connection":"b","exchange":"e"}"#,
                "exchange needs routing_key",
            ),
            (
                r#"{"connection":"b","routing_key":"k"}"#,
                "routing_key needs exchange",
            ),
            (
                r#"{"connection":"b","queue":"q","exchange":"e","routing_key":"k"}"#,
                "give queue, or exchange and routing_key, not both",
            ),
            (
                r#"{"connection":"b","exchange":"a/b","routing_key":"k"}"#,
                "exchange must not be empty and must not contain '/'",
            ),
        ] {
            let e = opened(config).unwrap_err();
            assert!(
                matches!(&e, Error::InvalidConfig(m) if m == why),
                "{config}: {e}"
            );
        }
        assert!(parse_config::<Config>(r#"{"connection":"b","queue":"q","stream":"s"}"#).is_err());
        let schema: serde_json::Value = serde_json::from_str(CONFIG_SCHEMA).unwrap();
        assert_eq!(schema["required"], serde_json::json!(["connection"]));
    }

    #[test]
    fn a_batch_is_one_publish_to_the_queue_or_the_exchange() {
        for (config, destination) in [
            (r#"{"connection":"b","queue":"orders"}"#, "orders"),
            (
                r#"{"connection":"b","exchange":"events","routing_key":"orders.eu"}"#,
                "events/orders.eu",
            ),
            (
                r#"{"connection":"b","exchange":"fan","routing_key":""}"#,
                "fan/",
            ),
        ] {
            let mut host = TestHost::new().with_messaging(FakeMessaging::default());
            host.sink::<AmqpSink>(
                config,
                vec![Record::new("a"), Record::new("b").with_key("k2")],
            )
            .unwrap();
            let m = host.messaging.as_ref().unwrap();
            assert_eq!(m.published.len(), 1, "{config}");
            let (conn, messages) = &m.published[0];
            assert_eq!(conn, "b");
            assert!(
                messages.iter().all(|o| o.subject == destination),
                "{config}"
            );
            assert_eq!(messages[1].payload, b"b");
            assert_eq!(
                messages[1].headers,
                [(KEY_HEADER.to_string(), "k2".to_string())]
            );
            assert_eq!(host.counters.get("messages_published"), Some(&2));
        }
    }
}
