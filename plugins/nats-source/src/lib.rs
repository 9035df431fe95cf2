//! `nats-source`: reads the messages of a NATS JetStream stream through a durable pull
//! consumer, up to `max_messages` per run.
//!
//! Config: `{ "connection": "events", "stream": "ORDERS", "consumer": "autoflow-orders",
//! "max_messages": 10000, "wait_ms": 500, "batch": 500 }`. Each message becomes a record: value =
//! payload, key = header `autoflow-key`, the other headers as headers
//! ([`autoflow_plugin_sdk::messaging::Message::into_record`]). How it reads and acknowledges
//! is [`source`]'s, shared with `redis-source`; the cursor is the stream sequence of the
//! batch's last message.
use serde::Deserialize;

pub mod source;

pub use source::{MessageSource, Origin, Place, batch_of, fetch_size};

/// JSON Schema (draft 2020-12) of [`Config`].
pub const CONFIG_SCHEMA: &str = r##"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "nats-source config",
  "type": "object",
  "properties": {
    "connection": {
      "description": "A NATS connection (nats://) granted to the step.",
      "type": "string", "minLength": 1
    },
    "stream": {
      "description": "The JetStream stream to read.",
      "type": "string", "minLength": 1
    },
    "consumer": {
      "description": "The durable pull consumer that keeps this step's position (created on first use).",
      "type": "string", "minLength": 1
    },
    "max_messages": {
      "description": "Messages read per run at most (default 10000).",
      "type": "integer", "minimum": 1, "maximum": 4294967295, "default": 10000
    },
    "wait_ms": {
      "description": "How long a fetch waits for a first message; a fetch that gets none ends the run (default 500).",
      "type": "integer", "minimum": 0, "maximum": 4294967295, "default": 500
    },
    "batch": {
      "description": "Messages per fetch at most (default: as many as the host asks for).",
      "type": "integer", "minimum": 1, "maximum": 4294967295
    }
  },
  "required": ["connection", "stream", "consumer"],
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
    /// The stream.
    pub stream: String,
    /// The durable consumer.
    pub consumer: String,
    /// Messages per run at most.
    #[serde(default = "default_max_messages")]
    pub max_messages: u32,
    /// Wait for a first message, per fetch.
    #[serde(default = "default_wait_ms")]
    pub wait_ms: u32,
    /// Messages per fetch at most.
    #[serde(default)]
    pub batch: Option<u32>,
}

/// The source.
pub type NatsSource = MessageSource<Config>;

impl Origin for Config {
    const NAME: &'static str = "nats-source";
    const DESCRIPTION: &'static str = "Reads the messages of a NATS JetStream stream through a \
        durable consumer; they are acknowledged once the run has committed.";
    const SCHEMA: &'static str = CONFIG_SCHEMA;
    const CONSUMER: &'static str = "consumer";
    const MAX: &'static str = "max_messages";

    fn place(&self) -> Place<'_> {
        Place {
            connection: &self.connection,
            stream: &self.stream,
            consumer: &self.consumer,
            max_messages: self.max_messages,
            wait_ms: self.wait_ms,
            batch: self.batch,
        }
    }
}

autoflow_plugin_sdk::export_source!(NatsSource);

#[cfg(test)]
mod tests {
    use autoflow_plugin_sdk::messaging::{KEY_HEADER, Message};
    use autoflow_plugin_sdk::testing::TestHost;
    use autoflow_plugin_sdk::{Error, parse_config};

    use super::*;

    #[test]
    fn config_defaults_and_checks() {
        let c: Config = parse_config(r#"{"connection":"q","stream":"S","consumer":"c"}"#).unwrap();
        assert_eq!((c.max_messages, c.wait_ms, c.batch), (10_000, 500, None));
        source::check::<Config>(&c.place()).unwrap();
        let c: Config =
            parse_config(r#"{"connection":"q","stream":"S","consumer":"c","max_messages":0}"#)
                .unwrap();
        assert!(
            source::check::<Config>(&c.place())
                .unwrap_err()
                .contains("max_messages")
        );
        assert!(parse_config::<Config>(r#"{"connection":"q","stream":"S"}"#).is_err());
        assert!(
            parse_config::<Config>(r#"{"connection":"q","stream":"S","consumer":"c","group":"g"}"#)
                .is_err()
        );
        let schema: serde_json::Value = serde_json::from_str(CONFIG_SCHEMA).unwrap();
        assert_eq!(schema["properties"]["max_messages"]["default"], 10_000);
    }

    #[test]
    fn fetch_sizes() {
        assert_eq!(fetch_size(1024, 10_000, None), 1024);
        assert_eq!(fetch_size(1024, 10, None), 10);
        assert_eq!(fetch_size(1024, 10_000, Some(100)), 100);
    }

    #[test]
    fn messages_become_a_batch() {
        let m = |pos: &str, key: Option<&str>| Message {
            subject: "orders.paid".into(),
            payload: format!("{{\"p\":{pos}}}").into_bytes(),
            headers: key
                .map(|k| vec![(KEY_HEADER.to_string(), k.to_string())])
                .unwrap_or_default(),
            position: pos.into(),
            delivered: 1,
            ack_id: format!("ack-{pos}"),
        };
        let (batch, acks) = batch_of(vec![m("7", Some("k7")), m("9", None)], Message::into_record);
        assert_eq!(batch.cursor.as_deref(), Some("9"));
        assert_eq!(acks, ["ack-7", "ack-9"]);
        assert_eq!(batch.records[0].key.as_deref(), Some(&b"k7"[..]));
        assert!(batch.records[0].headers.is_empty());
        assert_eq!(batch.records[1].value, br#"{"p":9}"#);
        assert_eq!(batch.records[1].key, None);
        let (empty, none) = batch_of(Vec::new(), Message::into_record);
        assert_eq!((empty.cursor, none.len()), (None, 0));
    }

    #[test]
    fn natively_fetching_fails() {
        let e = TestHost::new()
            .source::<NatsSource>(
                r#"{"connection":"q","stream":"S","consumer":"c"}"#,
                None,
                10,
            )
            .unwrap_err();
        assert!(
            matches!(&e, Error::Fatal(m) if m.contains("not available in native tests")),
            "{e}"
        );
    }

    mod flow {
        //! Whole runs against the SDK's scripted message service.
        use autoflow_plugin_sdk::testing::{FakeMessaging, TestHost};

        use super::*;

        fn inbox(n: u32) -> FakeMessaging {
            FakeMessaging {
                inbox: (1..=n)
                    .map(|i| Message {
                        subject: "orders".into(),
                        payload: format!("{{\"n\":{i}}}").into_bytes(),
                        headers: vec![(KEY_HEADER.into(), format!("k{i}"))],
                        position: (100 + i).to_string(),
                        delivered: 1,
                        ack_id: format!("ack{i}"),
                    })
                    .collect(),
                ..FakeMessaging::default()
            }
        }

        #[test]
        fn a_run_stops_at_max_messages_and_acks_what_it_read() {
            let mut host = TestHost::new().with_messaging(inbox(5));
            let batches = host
                .source::<NatsSource>(
                    r#"{"connection":"q","stream":"ORDERS","consumer":"c","max_messages":3,"batch":2,"wait_ms":20}"#,
                    None,
                    100,
                )
                .unwrap();
            let sizes: Vec<_> = batches.iter().map(|b| b.records.len()).collect();
            assert_eq!(sizes, [2, 1]);
            assert_eq!(batches[1].cursor.as_deref(), Some("103"));
            assert_eq!(batches[0].records[1].key.as_deref(), Some(&b"k2"[..]));
            let m = host.messaging.as_ref().unwrap();
            assert_eq!(m.acked, ["ack1", "ack2", "ack3"]);
            assert_eq!(
                m.fetches,
                [
                    ("q".into(), "ORDERS".into(), "c".into(), 2, 20),
                    ("q".into(), "ORDERS".into(), "c".into(), 1, 20)
                ]
            );
            assert_eq!(m.inbox.len(), 2);
            assert_eq!(host.counters.get("messages_read"), Some(&3));
        }

        #[test]
        fn a_run_ends_when_a_fetch_gets_nothing() {
            let mut host = TestHost::new().with_messaging(inbox(3));
            let batches = host
                .source::<NatsSource>(r#"{"connection":"q","stream":"S","consumer":"c"}"#, None, 2)
                .unwrap();
            assert_eq!(batches.len(), 2);
            assert_eq!(host.messaging.as_ref().unwrap().fetches.len(), 3);
        }

        #[test]
        fn a_failed_fetch_keeps_its_kind() {
            let fake = FakeMessaging {
                fail_next: Some(Error::Retryable("no responders".into())),
                ..inbox(1)
            };
            let e = TestHost::new()
                .with_messaging(fake)
                .source::<NatsSource>(r#"{"connection":"q","stream":"S","consumer":"c"}"#, None, 2)
                .unwrap_err();
            assert_eq!(e, Error::Retryable("no responders".into()));
        }
    }
}
