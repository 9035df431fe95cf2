//! The message source itself, whatever name it runs under: reads a stream through a durable
//! consumer (NATS JetStream), a consumer group (Redis) or from a queue (AMQP), up to a number
//! of messages per run, and makes each message a record. The host picks the service from the
//! connection's URL.
//!
//! The messages of a batch are acknowledged as soon as they are read: the host holds the
//! acknowledgements back until the run has committed (and drops them if it fails, so the
//! service delivers them again; AMQP's go back to their queue). The run ends when a fetch waits `wait_ms` for nothing, or
//! after the quota. The cursor is the position of the batch's last message, for information
//! only (the consumer keeps the position).
//!
//! `nats-source` compiles this file as a module, and so do `redis-source` and `amqp-source`,
//! each with its own config.
use autoflow_plugin_sdk::messaging::{self, Message};
use autoflow_plugin_sdk::{Batch, Error, Metadata, Record, Source, host};
use serde::de::DeserializeOwned;

/// Where a source reads, and how much per run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place<'a> {
    /// The granted connection.
    pub connection: &'a str,
    /// The stream (a JetStream stream's name, or a Redis stream's key).
    pub stream: &'a str,
    /// The durable consumer (NATS) or consumer group (Redis) that keeps the position.
    pub consumer: &'a str,
    /// Messages per run at most.
    pub max_messages: u32,
    /// Wait for a first message, per fetch.
    pub wait_ms: u32,
    /// Messages per fetch at most.
    pub batch: Option<u32>,
}

/// A config of the message source: where it reads, and what it says about itself.
pub trait Origin: DeserializeOwned + Sized + 'static {
    /// The plugin's name.
    const NAME: &'static str;
    /// What `describe` says it does.
    const DESCRIPTION: &'static str;
    /// JSON Schema (draft 2020-12) of the config.
    const SCHEMA: &'static str;
    /// What the config calls the stream (`stream`, or an AMQP `queue`), for its errors.
    const STREAM: &'static str = "stream";
    /// What the config calls the consumer (`consumer`, `group`, or the `queue` again), for its
    /// errors.
    const CONSUMER: &'static str;
    /// What the config calls the per-run maximum (`max_messages` or `max_entries`).
    const MAX: &'static str;

    /// Where it reads.
    fn place(&self) -> Place<'_>;

    /// The record `message` carries (by default [`Message::into_record`]).
    fn record(&self, message: Message) -> Record {
        message.into_record()
    }
}

/// Checks what every source's schema says, for hosts that did not, naming the fields as `C`
/// calls them.
pub fn check<C: Origin>(place: &Place<'_>) -> Result<(), String> {
    for (what, v) in [
        ("connection", place.connection),
        (C::STREAM, place.stream),
        (C::CONSUMER, place.consumer),
    ] {
        if v.is_empty() {
            return Err(format!("{what} must not be empty"));
        }
    }
    if place.max_messages == 0 {
        return Err(format!("{} must be at least 1", C::MAX));
    }
    if place.batch == Some(0) {
        return Err("batch must be at least 1".into());
    }
    Ok(())
}

/// How many messages to fetch: what the host asks for, what is left of the run's quota, and
/// the configured batch, whichever is least.
pub fn fetch_size(max: u32, left: u32, batch: Option<u32>) -> u32 {
    max.min(left).min(batch.unwrap_or(u32::MAX))
}

/// The batch made of `messages`, each made a record by `record`, with the last one's position
/// as cursor; and the ack ids to acknowledge.
pub fn batch_of(
    messages: Vec<Message>,
    mut record: impl FnMut(Message) -> Record,
) -> (Batch, Vec<String>) {
    let cursor = messages.last().map(|m| m.position.clone());
    let mut ack_ids = Vec::with_capacity(messages.len());
    let records = messages
        .into_iter()
        .map(|mut m| {
            ack_ids.push(std::mem::take(&mut m.ack_id));
            record(m)
        })
        .collect();
    (Batch { records, cursor }, ack_ids)
}

/// The source under config `C`.
#[derive(Debug)]
pub struct MessageSource<C> {
    config: C,
    left: u32,
}

impl<C: Origin> Source for MessageSource<C> {
    type Config = C;

    fn metadata() -> Metadata {
        Metadata::new(C::NAME, env!("CARGO_PKG_VERSION"), C::DESCRIPTION).config_schema(C::SCHEMA)
    }

    fn open(config: C, _cursor: Option<String>) -> Result<Self, Error> {
        let place = config.place();
        check::<C>(&place).map_err(Error::InvalidConfig)?;
        let left = place.max_messages;
        Ok(Self { config, left })
    }

    fn next(&mut self, max: u32) -> Result<Option<Batch>, Error> {
        if self.left == 0 {
            return Ok(None);
        }
        let p = self.config.place();
        let n = fetch_size(max, self.left, p.batch);
        if n == 0 {
            return Ok(Some(Batch::default()));
        }
        let messages = messaging::fetch(p.connection, p.stream, p.consumer, n, p.wait_ms)?;
        if messages.is_empty() {
            self.left = 0;
            return Ok(None);
        }
        let (batch, ack_ids) = batch_of(messages, |m| self.config.record(m));
        messaging::ack(p.connection, &ack_ids)?;
        let got = u32::try_from(batch.records.len()).unwrap_or(u32::MAX);
        self.left = self.left.saturating_sub(got);
        host::count("messages_read", u64::from(got));
        Ok(Some(batch))
    }
}
