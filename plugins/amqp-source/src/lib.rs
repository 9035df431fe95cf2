//! `amqp-source`: reads the messages of an AMQP 0-9-1 queue (RabbitMQ), up to `max_messages`
//! per run; what `amqp-sink` publishes, it reads back as the same records.
//!
//! Config: `{ "connection": "broker", "queue": "orders", "max_messages": 10000, "wait_ms": 500,
//! "batch": 500 }`. The queue is declared durable on first use if it does not exist (one that
//! exists keeps its own settings). Each message becomes a record: its body the value, header
//! `autoflow-key` the key, its other headers (as text) the headers. The readers of a queue
//! share its messages. How it reads and acknowledges is `nats-source`'s
//! (`plugins/nats-source/src/source.rs`): messages are acknowledged once the run has committed;
//! those a failed run read go back to the queue when it ends (and, when the process dies, when
//! its connection closes), to be delivered again.
use serde::Deserialize;

#[path = "../../nats-source/src/source.rs"]
mod source;

use source::{MessageSource, Origin, Place};

/// JSON Schema (draft 2020-12) of [`Config`].
pub const CONFIG_SCHEMA: &str = r##"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "amqp-source config",
  "type": "object",
  "properties": {
    "connection": {
      "description": "An AMQP connection (amqp://user:password@host:5672/vhost) granted to the step.",
      "type": "string", "minLength": 1
    },
    "queue": {
      "description": "The queue to read (declared durable on first use if it does not exist).",
      "type": "string", "minLength": 1, "maxLength": 255
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
  "required": ["connection", "queue"],
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
    /// The queue.
    pub queue: String,
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
pub type AmqpSource = MessageSource<Config>;

impl Origin for Config {
    const NAME: &'static str = "amqp-source";
    const DESCRIPTION: &'static str = "Reads the messages of an AMQP (RabbitMQ) queue (body as \
        the value, headers as headers); they are acknowledged once the run has committed, and \
        go back to the queue if it fails.";
    const SCHEMA: &'static str = CONFIG_SCHEMA;
    const STREAM: &'static str = "queue";
    const CONSUMER: &'static str = "queue";
    const MAX: &'static str = "max_messages";

    fn place(&self) -> Place<'_> {
        // The queue is the group too: its readers share its messages.
        Place {
            connection: &self.connection,
            stream: &self.queue,
            consumer: &self.queue,
            max_messages: self.max_messages,
            wait_ms: self.wait_ms,
            batch: self.batch,
        }
    }
}

autoflow_plugin_sdk::export_source!(AmqpSource);

#[cfg(test)]
mod tests {
    use autoflow_plugin_sdk::messaging::{KEY_HEADER, Message};
    use autoflow_plugin_sdk::testing::{FakeMessaging, TestHost};
    use autoflow_plugin_sdk::{Error, Source, parse_config};

    use super::*;

    fn message(tag: u32, body: &str) -> Message {
        Message {
            subject: "orders".into(),
            payload: body.as_bytes().to_vec(),
            headers: vec![
                (KEY_HEADER.into(), format!("k{tag}")),
                ("h".into(), "v".into()),
            ],
            position: tag.to_string(),
            delivered: 1,
            ack_id: format!("ack-{tag}"),
        }
    }

    #[test]
    fn config_defaults_and_checks() {
        let c: Config = parse_config(r#"{"connection":"b","queue":"orders"}"#).unwrap();
        assert_eq!((c.max_messages, c.wait_ms, c.batch), (10_000, 500, None));
        let zero: Config =
            parse_config(r#"{"connection":"b","queue":"q","max_messages":0}"#).unwrap();
        let e = AmqpSource::open(zero, None).unwrap_err();
        assert!(
            matches!(&e, Error::InvalidConfig(m) if m == "max_messages must be at least 1"),
            "{e}"
        );
        let empty: Config = parse_config(r#"{"connection":"b","queue":""}"#).unwrap();
        let e = AmqpSource::open(empty, None).unwrap_err();
        assert!(
            matches!(&e, Error::InvalidConfig(m) if m == "queue must not be empty"),
            "{e}"
        );
        assert!(parse_config::<Config>(r#"{"connection":"b"}"#).is_err());
        assert!(parse_config::<Config>(r#"{"connection":"b","queue":"q","group":"g"}"#).is_err());
        let schema: serde_json::Value = serde_json::from_str(CONFIG_SCHEMA).unwrap();
        assert_eq!(
            schema["required"],
            serde_json::json!(["connection", "queue"])
        );
    }

    #[test]
    fn a_run_reads_the_queue_up_to_max_messages_and_acks_what_it_read() {
        let inbox = (1..=4)
            .map(|i| message(i, &format!(r#"{{"n":{i}}}"#)))
            .collect();
        let mut host = TestHost::new().with_messaging(FakeMessaging {
            inbox,
            ..FakeMessaging::default()
        });
        let batches = host
            .source::<AmqpSource>(
                r#"{"connection":"b","queue":"orders","max_messages":3,"wait_ms":50}"#,
                None,
                2,
            )
            .unwrap();
        let sizes: Vec<_> = batches.iter().map(|b| b.records.len()).collect();
        assert_eq!(sizes, [2, 1]);
        let r = &batches[0].records[1];
        assert_eq!(r.value, br#"{"n":2}"#);
        assert_eq!(r.key.as_deref(), Some(&b"k2"[..]));
        assert_eq!(r.headers, [("h".to_string(), "v".to_string())]);
        let m = host.messaging.as_ref().unwrap();
        assert_eq!(m.acked, ["ack-1", "ack-2", "ack-3"]);
        assert_eq!(
            m.fetches[0],
            ("b".into(), "orders".into(), "orders".into(), 2, 50)
        );
        assert_eq!(host.counters.get("messages_read"), Some(&3));
    }
}
