//! `redis-sink`: appends every record as one entry to a Redis stream through a granted
//! connection (`XADD stream * payload <value>` plus one field per header); a batch is one
//! `publish` call, which returns once Redis stored all.
//!
//! Config: `{ "connection": "cache", "stream": "orders" }`. The entry's `payload` field is the
//! record's value, its key travels in field `autoflow-key`, its headers as fields
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
  "title": "redis-sink config",
  "type": "object",
  "properties": {
    "connection": {
      "description": "A Redis connection (redis://) granted to the step.",
      "type": "string", "minLength": 1
    },
    "stream": {
      "description": "The key of the stream every record is appended to (created by the first XADD).",
      "type": "string", "minLength": 1
    }
  },
  "required": ["connection", "stream"],
  "additionalProperties": false
}"##;

/// The step's configuration.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The granted connection.
    pub connection: String,
    /// The key of the stream to append to.
    pub stream: String,
}

/// The sink.
pub type RedisSink = MessageSink<Config>;

impl Destination for Config {
    const NAME: &'static str = "redis-sink";
    const DESCRIPTION: &'static str = "Appends each record as an entry to a Redis stream (field payload, key in field \
             autoflow-key, headers as fields); a batch is stored before the next.";
    const SCHEMA: &'static str = CONFIG_SCHEMA;

    fn connection(&self) -> &str {
        &self.connection
    }

    fn destination(&self) -> Cow<'_, str> {
        Cow::Borrowed(&self.stream)
    }

    fn check(&self) -> Result<(), Error> {
        if self.connection.is_empty() || self.stream.is_empty() {
            return Err(Error::InvalidConfig(
                "connection and stream must not be empty".into(),
            ));
        }
        Ok(())
    }
}

autoflow_plugin_sdk::export_sink!(RedisSink);

#[cfg(test)]
mod tests {
    use autoflow_plugin_sdk::testing::TestHost;
    use autoflow_plugin_sdk::{Error, Record, Sink, parse_config};

    use super::*;

    #[test]
    fn config() {
        let c: Config = parse_config(r#"{"connection":"q","stream":"a.b"}"#).unwrap();
        assert_eq!(
            c,
            Config {
                connection: "q".into(),
                stream: "a.b".into()
            }
        );
        assert!(parse_config::<Config>(r#"{"connection":"q"}"#).is_err());
        assert!(
            parse_config::<Config>(r#"{"connection":"q","stream":"s","subject":"x"}"#).is_err()
        );
        assert!(matches!(
            RedisSink::open(Config {
                connection: "q".into(),
                stream: String::new()
            }),
            Err(Error::InvalidConfig(_))
        ));
        let schema: serde_json::Value = serde_json::from_str(CONFIG_SCHEMA).unwrap();
        assert_eq!(
            schema["required"],
            serde_json::json!(["connection", "stream"])
        );
    }

    #[test]
    fn an_empty_batch_publishes_nothing_and_natively_publishing_fails() {
        let mut host = TestHost::new();
        host.sink::<RedisSink>(r#"{"connection":"q","stream":"s"}"#, Vec::new())
            .unwrap();
        let e = host
            .sink::<RedisSink>(r#"{"connection":"q","stream":"s"}"#, vec![Record::new("x")])
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
        host.sink::<RedisSink>(
            r#"{"connection":"q","stream":"orders"}"#,
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
