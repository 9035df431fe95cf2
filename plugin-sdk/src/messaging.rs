//! Messages on the connections granted to the step (`autoflow:plugin/messaging`): NATS
//! JetStream and Redis streams. Publish, fetch for a durable consumer (NATS) or consumer group
//! (Redis), and acknowledge.
//!
//! Records travel as messages with [`outgoing_from_record`] and come back with
//! [`Message::into_record`]: the value is the payload, the key rides in the header
//! [`KEY_HEADER`] (`autoflow-key`), the other headers as they are; the event time is not
//! carried.
//!
//! Acknowledgements are held back by the host until the run that received the messages has
//! committed its checkpoints (and dropped if it fails), so a source acknowledges what it read
//! right away.
//!
//! In native unit tests (not wasm) [`publish`], [`fetch`] and [`ack`] go to the
//! [`crate::testing::FakeMessaging`] of the current [`crate::testing::TestHost`], if it has
//! one, and otherwise return [`Error::Fatal`] ("not available in native tests").
use crate::{Error, Record, Result};

/// The header that carries a record's key.
pub const KEY_HEADER: &str = "autoflow-key";

/// A message to publish.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Outgoing {
    /// NATS: the subject. Redis: the stream's key.
    pub subject: String,
    /// The payload.
    pub payload: Vec<u8>,
    /// Headers (NATS headers; Redis stream fields besides `payload`).
    pub headers: Vec<(String, String)>,
}

/// A message received.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Message {
    /// The subject (NATS) or stream key (Redis) it came from.
    pub subject: String,
    /// The payload.
    pub payload: Vec<u8>,
    /// Its headers.
    pub headers: Vec<(String, String)>,
    /// Its position: the stream sequence (NATS) or entry id (Redis).
    pub position: String,
    /// How many times it has been delivered, when the service says (1 the first time).
    pub delivered: u32,
    /// What to pass to [`ack`] once it is handled.
    pub ack_id: String,
}

impl Message {
    /// The record this message carries: value = payload, key = the first [`KEY_HEADER`]
    /// header (if any), headers = the others, in order; no timestamp.
    pub fn into_record(self) -> Record {
        let mut key = None;
        let mut headers = Vec::with_capacity(self.headers.len());
        for (name, value) in self.headers {
            if name == KEY_HEADER {
                if key.is_none() {
                    key = Some(value.into_bytes());
                }
            } else {
                headers.push((name, value));
            }
        }
        Record {
            key,
            value: self.payload,
            headers,
            timestamp: None,
        }
    }
}

/// The message that carries `record` to `subject`: payload = value, the key (which must be
/// UTF-8 text) in header [`KEY_HEADER`] first, then the record's headers (a header of its own
/// named [`KEY_HEADER`] is dropped: the name is reserved for the key). The timestamp is not
/// carried.
pub fn outgoing_from_record(subject: &str, record: Record) -> Result<Outgoing, String> {
    let mut headers = Vec::with_capacity(record.headers.len() + 1);
    if let Some(key) = record.key {
        let key = String::from_utf8(key)
            .map_err(|_| "its key is not UTF-8 text, which a message header needs".to_string())?;
        headers.push((KEY_HEADER.to_string(), key));
    }
    headers.extend(
        record
            .headers
            .into_iter()
            .filter(|(name, _)| name != KEY_HEADER),
    );
    Ok(Outgoing {
        subject: subject.to_string(),
        payload: record.value,
        headers,
    })
}

/// The messages that carry `records` to `subject` ([`outgoing_from_record`]); a record that
/// cannot be carried is an [`Error::Fatal`] naming its index in the batch.
pub fn outgoing_from_records(subject: &str, records: Vec<Record>) -> Result<Vec<Outgoing>> {
    records
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            outgoing_from_record(subject, r)
                .map_err(|e| Error::Fatal(format!("batch index {i}: {e}")))
        })
        .collect()
}

/// Publishes `records` to `subject` on `connection` in one [`publish`] call (nothing when
/// empty); returns how many were published.
pub fn publish_records(connection: &str, subject: &str, records: Vec<Record>) -> Result<usize> {
    let messages = outgoing_from_records(subject, records)?;
    if !messages.is_empty() {
        publish(connection, &messages)?;
    }
    Ok(messages.len())
}

#[cfg(target_arch = "wasm32")]
mod imp {
    use super::{Message, Outgoing};
    use crate::Result;
    use crate::bindings::source::autoflow::plugin0_1_0::messaging as wit;

    pub fn publish(connection: &str, messages: &[Outgoing]) -> Result<()> {
        let messages: Vec<wit::Outgoing> = messages
            .iter()
            .map(|m| wit::Outgoing {
                subject: m.subject.clone(),
                payload: m.payload.clone(),
                headers: m.headers.clone(),
            })
            .collect();
        Ok(wit::publish(connection, &messages)?)
    }

    pub fn fetch(
        connection: &str,
        stream: &str,
        group: &str,
        max: u32,
        wait_ms: u32,
    ) -> Result<Vec<Message>> {
        Ok(wit::fetch(connection, stream, group, max, wait_ms)?
            .into_iter()
            .map(|m| Message {
                subject: m.subject,
                payload: m.payload,
                headers: m.headers,
                position: m.position,
                delivered: m.delivered,
                ack_id: m.ack_id,
            })
            .collect())
    }

    pub fn ack(connection: &str, ack_ids: &[String]) -> Result<()> {
        Ok(wit::ack(connection, ack_ids)?)
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod imp {
    //! Natively, the calls go to the current test's [`FakeMessaging`]; without one, they fail.
    use super::{Message, Outgoing};
    use crate::testing::{FakeMessaging, try_with_host};
    use crate::{Error, Result};

    fn with_fake<T>(what: &str, f: impl FnOnce(&mut FakeMessaging) -> T) -> Result<T> {
        try_with_host(|h| {
            h.messaging.as_mut().map(|m| match m.fail_next.take() {
                Some(e) => Err(e),
                None => Ok(f(m)),
            })
        })
        .flatten()
        .unwrap_or_else(|| {
            Err(Error::Fatal(format!(
                "messaging::{what} is not available in native tests (give the TestHost a FakeMessaging)"
            )))
        })
    }

    pub fn publish(connection: &str, messages: &[Outgoing]) -> Result<()> {
        with_fake("publish", |m| {
            m.published.push((connection.into(), messages.to_vec()))
        })
    }
    pub fn fetch(c: &str, s: &str, g: &str, max: u32, wait_ms: u32) -> Result<Vec<Message>> {
        with_fake("fetch", |m| {
            m.fetches.push((c.into(), s.into(), g.into(), max, wait_ms));
            let n = m.inbox.len().min(max as usize);
            m.inbox.drain(..n).collect()
        })
    }
    pub fn ack(_: &str, ack_ids: &[String]) -> Result<()> {
        with_fake("ack", |m| m.acked.extend_from_slice(ack_ids))
    }
}

/// Publishes `messages` in order on `connection`; returns once the service stored every one.
pub fn publish(connection: &str, messages: &[Outgoing]) -> Result<()> {
    imp::publish(connection, messages)
}

/// Takes up to `max` messages of `stream` for the durable consumer (NATS) or consumer group
/// (Redis) `group`, created on first use; waits up to `wait_ms` for the first one. Messages
/// not acknowledged are delivered again later.
pub fn fetch(
    connection: &str,
    stream: &str,
    group: &str,
    max: u32,
    wait_ms: u32,
) -> Result<Vec<Message>> {
    imp::fetch(connection, stream, group, max, wait_ms)
}

/// Acknowledges messages by their [`Message::ack_id`]. The host holds the acknowledgements
/// back until the run has committed its checkpoints, and drops them if it fails.
pub fn ack(connection: &str, ack_ids: &[String]) -> Result<()> {
    imp::ack(connection, ack_ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(n: &str, v: &str) -> (String, String) {
        (n.to_string(), v.to_string())
    }

    #[test]
    fn record_to_message_and_back() {
        let record = Record {
            key: Some(b"order-7".to_vec()),
            value: br#"{"id":7}"#.to_vec(),
            headers: vec![
                h("trace", "abc"),
                h(KEY_HEADER, "spoofed"),
                h("trace", "def"),
            ],
            timestamp: Some(1_700_000_000_000),
        };
        let out = outgoing_from_record("orders", record.clone()).unwrap();
        assert_eq!(out.subject, "orders");
        assert_eq!(out.payload, record.value);
        assert_eq!(
            out.headers,
            vec![
                h(KEY_HEADER, "order-7"),
                h("trace", "abc"),
                h("trace", "def")
            ]
        );
        let message = Message {
            subject: out.subject,
            payload: out.payload,
            headers: out.headers,
            position: "12".into(),
            delivered: 1,
            ack_id: "a".into(),
        };
        let back = message.into_record();
        assert_eq!(back.key.as_deref(), Some(&b"order-7"[..]));
        assert_eq!(back.value, record.value);
        assert_eq!(back.headers, vec![h("trace", "abc"), h("trace", "def")]);
        assert_eq!(back.timestamp, None);
    }

    #[test]
    fn a_record_without_key_has_no_key_header() {
        let out = outgoing_from_record("s", Record::new("v").with_key(Vec::new())).unwrap();
        assert_eq!(out.headers, vec![h(KEY_HEADER, "")]);
        let out = outgoing_from_record("s", Record::new("v")).unwrap();
        assert!(out.headers.is_empty());
        let back = Message {
            payload: b"v".to_vec(),
            ..Message::default()
        }
        .into_record();
        assert_eq!(back, Record::new("v"));
    }

    #[test]
    fn a_key_that_is_not_utf8_is_refused_with_its_index() {
        let records = vec![
            Record::new("a"),
            Record::new("b").with_key(vec![0xff, 0xfe]),
        ];
        let e = outgoing_from_records("s", records).unwrap_err();
        assert!(
            matches!(&e, Error::Fatal(m) if m.starts_with("batch index 1:")),
            "{e}"
        );
    }

    #[test]
    fn the_first_key_header_wins() {
        let m = Message {
            headers: vec![h("x", "1"), h(KEY_HEADER, "k1"), h(KEY_HEADER, "k2")],
            ..Message::default()
        };
        let r = m.into_record();
        assert_eq!(r.key.as_deref(), Some(&b"k1"[..]));
        assert_eq!(r.headers, vec![h("x", "1")]);
    }

    #[test]
    fn native_calls_say_they_are_unavailable() {
        assert!(matches!(publish("q", &[]), Err(Error::Fatal(m)) if m.contains("native tests")));
        assert!(fetch("q", "s", "g", 1, 0).is_err());
        assert!(ack("q", &["x".to_string()]).is_err());
        assert_eq!(publish_records("q", "s", Vec::new()).ok(), Some(0));
    }

    #[test]
    fn a_fake_service_answers_and_records() {
        use crate::testing::{FakeMessaging, TestHost};
        let inbox = (1..=3)
            .map(|i| Message {
                position: i.to_string(),
                ack_id: format!("a{i}"),
                ..Message::default()
            })
            .collect();
        let mut host = TestHost::new().with_messaging(FakeMessaging {
            inbox,
            ..FakeMessaging::default()
        });
        host.run(|| {
            assert_eq!(fetch("q", "S", "g", 2, 10).unwrap().len(), 2);
            assert_eq!(fetch("q", "S", "g", 5, 10).unwrap()[0].position, "3");
            assert!(fetch("q", "S", "g", 5, 10).unwrap().is_empty());
            ack("q", &["a1".to_string()]).unwrap();
            assert_eq!(
                publish_records("q", "subj", vec![Record::new("x").with_key("k")]).unwrap(),
                1
            );
        });
        let m = host.messaging.as_ref().unwrap();
        assert_eq!(m.fetches.len(), 3);
        assert_eq!(m.acked, ["a1"]);
        assert_eq!(m.published.len(), 1);
        assert_eq!(m.published[0].1[0].headers, vec![h(KEY_HEADER, "k")]);
        let mut failing = TestHost::new().with_messaging(FakeMessaging {
            fail_next: Some(Error::Retryable("down".into())),
            ..FakeMessaging::default()
        });
        assert_eq!(
            failing.run(|| ack("q", &[])),
            Err(Error::Retryable("down".into()))
        );
        assert_eq!(failing.run(|| ack("q", &[])), Ok(()));
    }
}
