//! The `autoflow:plugin/messaging` imports on AMQP 0-9-1 (RabbitMQ): publish with publisher
//! confirms (each message persistent, and mandatory, so one no queue takes is an error rather
//! than lost), fetch by `basic.get` from a queue (so a worker holds only what it read), and
//! acknowledgements held until the run commits. A message a run read and did not acknowledge
//! is given back (`basic.nack`, requeued) when the run ends; a process that dies gives back what
//! it held as its connection closes.
//!
//! A message's subject is where it goes: `EXCHANGE/ROUTING-KEY`, or a queue's name alone (the
//! default exchange routes to the queue of that name, declared durable on first use). Its
//! headers are the AMQP headers (string values), and its ack id names its delivery on this
//! process's connection.
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use lapin::options::{
    BasicAckOptions, BasicGetOptions, BasicNackOptions, BasicPublishOptions, ConfirmSelectOptions,
    QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection};

use crate::world::PluginError;
use crate::world::source::autoflow::plugin0_1_0::messaging::{Message, Outgoing};

/// How long an empty queue is polled at most between two `basic.get`s while a fetch waits.
const POLL_AT_MOST: Duration = Duration::from_millis(100);
/// AMQP's delivery mode of a message stored on disk.
const PERSISTENT: u8 = 2;

/// One AMQP connection of the process, with its two channels: one for reading and
/// acknowledging, one (in confirm mode) for publishing, so that a publish the broker refuses
/// (which closes its channel) never drops the deliveries a run holds.
pub struct AmqpClient {
    connection: Connection,
    read: tokio::sync::Mutex<Option<Channel>>,
    publish: tokio::sync::Mutex<Option<Channel>>,
    /// The deliveries handed to runs and not yet settled, by ack id.
    unsettled: Mutex<HashMap<String, lapin::Acker>>,
    next_id: AtomicU64,
    /// Queues known to exist.
    queues: Mutex<HashSet<String>>,
}

fn retryable(what: &str) -> impl Fn(lapin::Error) -> PluginError + '_ {
    move |e| {
        let text = e.to_string();
        if text.contains("NOT_FOUND") || text.contains("ACCESS_REFUSED") {
            PluginError::InvalidConfig(format!("amqp {what}: {text}"))
        } else {
            PluginError::Retryable(format!("amqp {what}: {text}"))
        }
    }
}

/// The exchange and routing key of `subject`: `EXCHANGE/KEY`, or a queue name alone (the
/// default exchange, `""`).
pub fn destination(subject: &str) -> (&str, &str) {
    subject.split_once('/').unwrap_or(("", subject))
}

impl AmqpClient {
    /// The client of `connection`, its channels opened when first needed.
    pub fn new(connection: Connection) -> Self {
        Self {
            connection,
            read: Default::default(),
            publish: Default::default(),
            unsettled: Default::default(),
            next_id: AtomicU64::new(1),
            queues: Default::default(),
        }
    }

    /// Whether the connection is still up (a client whose connection broke is made again).
    pub fn is_connected(&self) -> bool {
        self.connection.status().connected()
    }

    /// The channel in `slot`, opened again if it closed (`confirm` puts a new one in confirm
    /// mode).
    async fn channel(
        &self,
        slot: &tokio::sync::Mutex<Option<Channel>>,
        confirm: bool,
    ) -> Result<Channel, PluginError> {
        let mut slot = slot.lock().await;
        if let Some(ch) = slot.as_ref().filter(|ch| ch.status().connected()) {
            return Ok(ch.clone());
        }
        let ch = self
            .connection
            .create_channel()
            .await
            .map_err(retryable("channel"))?;
        if confirm {
            ch.confirm_select(ConfirmSelectOptions::default())
                .await
                .map_err(retryable("confirm.select"))?;
        }
        *slot = Some(ch.clone());
        Ok(ch)
    }

    /// Makes sure queue `name` exists: declared passively (it keeps whatever arguments it was
    /// made with), else made durable. Each declaration has a channel of its own, since a
    /// refused one closes its channel.
    async fn queue(&self, name: &str) -> Result<(), PluginError> {
        if self
            .queues
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(name)
        {
            return Ok(());
        }
        let declare = |options: QueueDeclareOptions| async move {
            let ch = self
                .connection
                .create_channel()
                .await
                .map_err(retryable("channel"))?;
            let declared = ch
                .queue_declare(name.into(), options, FieldTable::default())
                .await;
            if ch.status().connected() {
                let _ = ch.close(200, "done".into()).await;
            }
            Ok::<_, PluginError>(declared)
        };
        let passive = QueueDeclareOptions {
            passive: true,
            ..QueueDeclareOptions::default()
        };
        if let Err(e) = declare(passive).await? {
            if !e.to_string().contains("NOT_FOUND") {
                return Err(retryable("queue.declare")(e));
            }
            let durable = QueueDeclareOptions {
                durable: true,
                ..QueueDeclareOptions::default()
            };
            declare(durable)
                .await?
                .map_err(retryable("queue.declare"))?;
        }
        self.queues
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.to_string());
        Ok(())
    }

    /// Publishes `messages` in order and returns once the broker has confirmed every one.
    pub async fn publish(&self, messages: Vec<Outgoing>) -> Result<(), PluginError> {
        for m in &messages {
            if let ("", queue) = destination(&m.subject) {
                self.queue(queue).await?;
            }
        }
        let ch = self.channel(&self.publish, true).await?;
        let mut confirms = Vec::with_capacity(messages.len());
        for m in messages {
            let (exchange, key) = destination(&m.subject);
            let mut headers = FieldTable::default();
            for (k, v) in m.headers {
                headers.insert(k.into(), AMQPValue::LongString(v.into()));
            }
            let properties = BasicProperties::default()
                .with_delivery_mode(PERSISTENT)
                .with_headers(headers);
            let options = BasicPublishOptions {
                mandatory: true,
                ..BasicPublishOptions::default()
            };
            let confirm = ch
                .basic_publish(exchange.into(), key.into(), options, &m.payload, properties)
                .await
                .map_err(retryable("publish"))?;
            confirms.push((m.subject, confirm));
        }
        for (subject, confirm) in confirms {
            let confirmation = confirm.await.map_err(retryable("publish"))?;
            let nacked = confirmation.is_nack();
            if let Some(returned) = confirmation.take_message() {
                return Err(PluginError::InvalidConfig(format!(
                    "amqp publish to {subject:?}: the broker returned it ({} {}): no queue takes it",
                    returned.reply_code, returned.reply_text
                )));
            }
            if nacked {
                return Err(PluginError::Retryable(format!(
                    "amqp publish to {subject:?}: the broker could not store it"
                )));
            }
        }
        Ok(())
    }

    /// Takes up to `max` messages of `queue`, waiting up to `wait` for the first.
    pub async fn fetch(
        &self,
        queue: &str,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Message>, PluginError> {
        self.queue(queue).await?;
        let ch = self.channel(&self.read, false).await?;
        let deadline = Instant::now() + wait;
        let mut pause = Duration::from_millis(5);
        let mut out = Vec::new();
        while out.len() < max {
            let got = ch
                .basic_get(queue.into(), BasicGetOptions { no_ack: false })
                .await;
            match got {
                Ok(Some(m)) => out.push(self.message(m.delivery)),
                Ok(None) if out.is_empty() && Instant::now() < deadline => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    tokio::time::sleep(pause.min(left)).await;
                    pause = (pause * 2).min(POLL_AT_MOST);
                }
                Ok(None) => break,
                Err(e) => {
                    // What this fetch took goes back now: the step never sees it. (If that
                    // fails too, the channel is gone, and the broker requeued it.)
                    let ids = out
                        .into_iter()
                        .map(|m: Message| m.ack_id)
                        .collect::<Vec<_>>();
                    let _ = self.settle(&ids, false).await;
                    return Err(retryable("basic.get")(e));
                }
            }
        }
        Ok(out)
    }

    /// The message of `delivery`, its acker kept under a new ack id.
    fn message(&self, delivery: lapin::message::Delivery) -> Message {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed).to_string();
        let mut headers: Vec<(String, String)> = delivery
            .properties
            .headers()
            .iter()
            .flat_map(|t| t.inner().iter())
            .map(|(k, v)| (k.to_string(), header_text(v)))
            .collect();
        headers.sort();
        self.unsettled
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.clone(), delivery.acker);
        Message {
            subject: delivery.routing_key.to_string(),
            payload: delivery.data,
            headers,
            position: delivery.delivery_tag.to_string(),
            delivered: if delivery.redelivered { 2 } else { 1 },
            ack_id: id,
        }
    }

    /// Acknowledges (`ack`) or gives back, requeued, the deliveries `ids`; one this
    /// connection no longer holds (settled, or its channel closed and the broker requeued it)
    /// is skipped.
    pub async fn settle(&self, ids: &[String], ack: bool) -> Result<(), String> {
        let ackers: Vec<lapin::Acker> = {
            let mut unsettled = self.unsettled.lock().unwrap_or_else(|p| p.into_inner());
            ids.iter().filter_map(|id| unsettled.remove(id)).collect()
        };
        let mut failed = None;
        for acker in ackers {
            let done = if ack {
                acker.ack(BasicAckOptions::default()).await
            } else {
                acker
                    .nack(BasicNackOptions {
                        requeue: true,
                        ..BasicNackOptions::default()
                    })
                    .await
            };
            if let Err(e) = done {
                failed = Some(e.to_string());
            }
        }
        failed.map_or(Ok(()), Err)
    }
}

/// A header's value as text: strings as they are, other values as AMQP prints them.
fn header_text(v: &AMQPValue) -> String {
    match v {
        AMQPValue::LongString(s) => s.to_string(),
        AMQPValue::ShortString(s) => s.as_str().to_string(),
        AMQPValue::Boolean(b) => b.to_string(),
        AMQPValue::ShortShortInt(n) => n.to_string(),
        AMQPValue::ShortShortUInt(n) => n.to_string(),
        AMQPValue::ShortInt(n) => n.to_string(),
        AMQPValue::ShortUInt(n) => n.to_string(),
        AMQPValue::LongInt(n) => n.to_string(),
        AMQPValue::LongUInt(n) => n.to_string(),
        AMQPValue::LongLongInt(n) => n.to_string(),
        AMQPValue::Float(n) => n.to_string(),
        AMQPValue::Double(n) => n.to_string(),
        AMQPValue::Timestamp(n) => n.to_string(),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subject_names_an_exchange_and_key_or_a_queue() {
        assert_eq!(destination("orders"), ("", "orders"));
        assert_eq!(destination("events/orders.eu"), ("events", "orders.eu"));
        assert_eq!(destination("/orders"), ("", "orders"));
        assert_eq!(header_text(&AMQPValue::LongString("v".into())), "v");
        assert_eq!(header_text(&AMQPValue::LongInt(-3)), "-3");
    }
}
