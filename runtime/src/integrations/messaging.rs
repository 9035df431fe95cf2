//! The `autoflow:plugin/messaging` imports on NATS JetStream, Redis streams, AMQP queues
//! (`super::amqp`) and MQTT sessions (`super::mqtt`): publish (each message stored before the call returns), fetch for a durable
//! consumer, a consumer group or from a queue, and acknowledgements held until the run has
//! committed (see [`super::PendingAcks`]). The capability's state is [`MessagingState`], one
//! per step.
use std::time::Duration;

use futures::StreamExt;
use wasmtime::component::{HasData, Linker};

use super::{ConnectionKind, Grant, Grants, Integrations, PendingAcks};
use crate::world::PluginError;
use crate::world::source::autoflow::plugin0_1_0::messaging::{self as wit, Message, Outgoing};

/// Messages one fetch returns at most.
pub const MAX_FETCH: u32 = 10_000;
/// The longest a fetch waits for its first message.
pub const MAX_WAIT: Duration = Duration::from_secs(30);
/// The consumer name Autoflow reads Redis consumer groups as.
const REDIS_CONSUMER: &str = "autoflow";
/// How long a Redis entry read and not acknowledged waits before a fetch takes it again (the
/// counterpart of a NATS consumer's ack wait).
pub const REDIS_REDELIVER_AFTER: Duration = Duration::from_secs(30);

fn retryable(what: &str) -> impl Fn(&dyn std::fmt::Display) -> PluginError + '_ {
    move |e| PluginError::Retryable(format!("{what}: {e}"))
}

/// The messaging capability of one step: the connections granted to it, the process's clients,
/// and where its acknowledgements wait for the run's commit (shared by the run's steps).
pub struct MessagingState {
    grants: Grants,
    clients: Integrations,
    acks: PendingAcks,
}

impl MessagingState {
    /// The messaging capability of a step granted `grants`, connecting through `clients`,
    /// holding acknowledgements in `acks`.
    pub fn new(grants: Grants, clients: Integrations, acks: PendingAcks) -> Self {
        Self {
            grants,
            clients,
            acks,
        }
    }
}

/// Projects a step's store data to its [`MessagingState`] in the linker.
struct HasMessaging;

impl HasData for HasMessaging {
    type Data<'a> = &'a mut MessagingState;
}

/// Links the `autoflow:plugin/messaging` imports, implemented on the [`MessagingState`] that
/// `get` finds in a store's data.
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut MessagingState,
) -> wasmtime::Result<()> {
    wit::add_to_linker::<T, HasMessaging>(linker, get)
}

impl wit::Host for MessagingState {
    async fn publish(
        &mut self,
        connection: String,
        messages: Vec<Outgoing>,
    ) -> wasmtime::Result<Result<(), PluginError>> {
        let grant = match self.grants.granted(&connection, false) {
            Ok(g) => g,
            Err(e) => return Ok(Err(e)),
        };
        let integrations = self.clients.clone();
        Ok(match grant.kind {
            ConnectionKind::Nats => publish_nats(&integrations, &grant, messages).await,
            ConnectionKind::Amqp => match integrations.amqp(&grant).await {
                Ok(client) => client.publish(messages).await,
                Err(e) => Err(e.into()),
            },
            ConnectionKind::Mqtt => match integrations.mqtt(&grant).await {
                Ok(client) => client.publish(messages).await,
                Err(e) => Err(e.into()),
            },
            _ => publish_redis(&integrations, &grant, messages).await,
        })
    }

    async fn fetch(
        &mut self,
        connection: String,
        stream: String,
        group: String,
        max: u32,
        wait_ms: u32,
    ) -> wasmtime::Result<Result<Vec<Message>, PluginError>> {
        let grant = match self.grants.granted(&connection, false) {
            Ok(g) => g,
            Err(e) => return Ok(Err(e)),
        };
        let max = max.clamp(1, MAX_FETCH) as usize;
        let wait = Duration::from_millis(u64::from(wait_ms)).min(MAX_WAIT);
        let integrations = self.clients.clone();
        Ok(match grant.kind {
            ConnectionKind::Nats => {
                fetch_nats(&integrations, &grant, &stream, &group, max, wait).await
            }
            // AMQP: the queue is the group, its readers share its messages. MQTT: the group
            // is the session that holds the subscription to topic filter `stream`.
            ConnectionKind::Amqp | ConnectionKind::Mqtt => {
                let fetched = if grant.kind == ConnectionKind::Amqp {
                    match integrations.amqp(&grant).await {
                        Ok(client) => client.fetch(&stream, max, wait).await,
                        Err(e) => Err(e.into()),
                    }
                } else {
                    match integrations.mqtt(&grant).await {
                        Ok(client) => client.fetch(&stream, &group, max, wait).await,
                        Err(e) => Err(e.into()),
                    }
                };
                if let Ok(messages) = &fetched {
                    let ids = messages.iter().map(|m| m.ack_id.clone()).collect();
                    self.acks.delivered(&grant, ids);
                }
                fetched
            }
            _ => fetch_redis(&integrations, &grant, &stream, &group, max, wait).await,
        })
    }

    async fn ack(
        &mut self,
        connection: String,
        ack_ids: Vec<String>,
    ) -> wasmtime::Result<Result<(), PluginError>> {
        Ok(self
            .grants
            .granted(&connection, false)
            .map(|grant| self.acks.hold(&grant, ack_ids)))
    }
}

async fn publish_nats(
    integrations: &Integrations,
    grant: &Grant,
    messages: Vec<Outgoing>,
) -> Result<(), PluginError> {
    let (_, js) = integrations.nats(grant).await.map_err(PluginError::from)?;
    let mut stored = Vec::with_capacity(messages.len());
    for m in messages {
        let mut headers = async_nats::HeaderMap::new();
        for (k, v) in &m.headers {
            headers.append(k.as_str(), v.as_str());
        }
        let ack = js
            .publish_with_headers(m.subject, headers, m.payload.into())
            .await
            .map_err(|e| retryable("nats publish")(&e))?;
        stored.push(ack);
    }
    for ack in stored {
        ack.await.map_err(|e| {
            use async_nats::jetstream::context::PublishErrorKind as K;
            match e.kind() {
                K::StreamNotFound => PluginError::InvalidConfig(format!(
                    "nats publish: {e} (no stream takes this subject)"
                )),
                _ => PluginError::Retryable(format!("nats publish: {e}")),
            }
        })?;
    }
    Ok(())
}

async fn fetch_nats(
    integrations: &Integrations,
    grant: &Grant,
    stream: &str,
    group: &str,
    max: usize,
    wait: Duration,
) -> Result<Vec<Message>, PluginError> {
    use async_nats::jetstream::consumer::{AckPolicy, pull};
    let (_, js) = integrations.nats(grant).await.map_err(PluginError::from)?;
    let stream = js
        .get_stream(stream)
        .await
        .map_err(|e| PluginError::InvalidConfig(format!("nats stream {stream:?}: {e}")))?;
    // Acks are held until a run commits: let a run hold as many as it reads (`max_messages`).
    let config = pull::Config {
        durable_name: Some(group.to_string()),
        ack_policy: AckPolicy::Explicit,
        max_ack_pending: -1,
        ..Default::default()
    };
    let consumer = stream
        .get_or_create_consumer(group, config)
        .await
        .map_err(|e| retryable("nats consumer")(&e))?;
    // A pull can wait on the server (its max_ack_pending reached, say): it ends at `wait` past
    // the last message with what it has.
    let mut out = Vec::new();
    let batch = consumer
        .fetch()
        .max_messages(max)
        .messages()
        .await
        .map_err(|e| retryable("nats fetch")(&e))?;
    collect_until_quiet(batch, &mut out, wait.max(Duration::from_millis(100))).await?;
    if out.is_empty() && !wait.is_zero() {
        let batch = consumer
            .batch()
            .max_messages(max)
            .expires(wait)
            .messages()
            .await
            .map_err(|e| retryable("nats fetch")(&e))?;
        collect_until_quiet(batch, &mut out, wait + Duration::from_millis(100)).await?;
    }
    Ok(out)
}

/// Takes messages from `batch` into `out` until it ends or none comes for `quiet`.
async fn collect_until_quiet<S, E>(
    mut batch: S,
    out: &mut Vec<Message>,
    quiet: Duration,
) -> Result<(), PluginError>
where
    S: futures::Stream<Item = Result<async_nats::jetstream::Message, E>> + Unpin,
    E: std::fmt::Display,
{
    while let Ok(Some(m)) = tokio::time::timeout(quiet, batch.next()).await {
        out.push(nats_message(m.map_err(|e| retryable("nats fetch")(&e))?)?);
    }
    Ok(())
}

fn nats_message(m: async_nats::jetstream::Message) -> Result<Message, PluginError> {
    let info = m.info().map_err(|e| {
        PluginError::Retryable(format!("nats: a message without JetStream metadata: {e}"))
    })?;
    let (position, delivered) = (
        info.stream_sequence.to_string(),
        u32::try_from(info.delivered).unwrap_or(u32::MAX),
    );
    let headers = m
        .message
        .headers
        .iter()
        .flat_map(|h| h.iter())
        .flat_map(|(name, values)| {
            values
                .iter()
                .map(move |v| (name.to_string(), v.to_string()))
        })
        .collect();
    let ack_id = m
        .message
        .reply
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_default();
    Ok(Message {
        subject: m.message.subject.to_string(),
        payload: m.message.payload.to_vec(),
        headers,
        position,
        delivered,
        ack_id,
    })
}

async fn publish_redis(
    integrations: &Integrations,
    grant: &Grant,
    messages: Vec<Outgoing>,
) -> Result<(), PluginError> {
    let mut conn = integrations.redis(grant).await.map_err(PluginError::from)?;
    let mut pipe = redis::pipe();
    for m in messages {
        let cmd = pipe
            .cmd("XADD")
            .arg(&m.subject)
            .arg("*")
            .arg("payload")
            .arg(m.payload);
        for (k, v) in m.headers {
            cmd.arg(k).arg(v);
        }
        cmd.ignore();
    }
    pipe.query_async::<()>(&mut conn)
        .await
        .map_err(|e| retryable("redis XADD")(&e))
}

/// A Redis acknowledgement: the stream, the group and the entry id.
#[derive(serde::Serialize, serde::Deserialize)]
struct RedisAck(String, String, String);

async fn fetch_redis(
    integrations: &Integrations,
    grant: &Grant,
    stream: &str,
    group: &str,
    max: usize,
    wait: Duration,
) -> Result<Vec<Message>, PluginError> {
    use redis::streams::{StreamReadOptions, StreamReadReply};
    let mut conn = integrations.redis(grant).await.map_err(PluginError::from)?;
    let created: redis::RedisResult<()> = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(stream)
        .arg(group)
        .arg("0")
        .arg("MKSTREAM")
        .query_async(&mut conn)
        .await;
    if let Err(e) = created
        && e.code() != Some("BUSYGROUP")
    {
        return Err(retryable("redis XGROUP CREATE")(&e));
    }
    // Entries a failed or killed run read and never acknowledged come back first, once idle.
    let reclaimed: redis::streams::StreamAutoClaimReply = redis::cmd("XAUTOCLAIM")
        .arg(stream)
        .arg(group)
        .arg(REDIS_CONSUMER)
        .arg(u64::try_from(REDIS_REDELIVER_AFTER.as_millis()).unwrap_or(u64::MAX))
        .arg("0-0")
        .arg("COUNT")
        .arg(max)
        .query_async(&mut conn)
        .await
        .map_err(|e| retryable("redis XAUTOCLAIM")(&e))?;
    let mut out: Vec<Message> = reclaimed
        .claimed
        .iter()
        .map(|e| redis_message(stream, group, e))
        .collect();
    if out.len() < max {
        let mut options = StreamReadOptions::default()
            .group(group, REDIS_CONSUMER)
            .count(max - out.len());
        if out.is_empty() && !wait.is_zero() {
            options = options.block(usize::try_from(wait.as_millis()).unwrap_or(usize::MAX));
        }
        let reply: Option<StreamReadReply> =
            redis::AsyncCommands::xread_options(&mut conn, &[stream], &[">"], &options)
                .await
                .map_err(|e| retryable("redis XREADGROUP")(&e))?;
        for key in reply.map(|r| r.keys).unwrap_or_default() {
            out.extend(key.ids.iter().map(|e| redis_message(&key.key, group, e)));
        }
    }
    Ok(out)
}

/// A stream entry as a message: field `payload` is the payload, the others are headers.
fn redis_message(stream: &str, group: &str, entry: &redis::streams::StreamId) -> Message {
    let mut payload = Vec::new();
    let mut headers = Vec::new();
    for (field, value) in &entry.map {
        let bytes: Vec<u8> = redis::FromRedisValue::from_redis_value(value).unwrap_or_default();
        if field == "payload" {
            payload = bytes;
        } else {
            headers.push((field.clone(), String::from_utf8_lossy(&bytes).into_owned()));
        }
    }
    headers.sort();
    let ack = RedisAck(stream.to_string(), group.to_string(), entry.id.clone());
    Message {
        subject: stream.to_string(),
        payload,
        headers,
        position: entry.id.clone(),
        delivered: 1,
        ack_id: serde_json::to_string(&ack).unwrap_or_default(),
    }
}

/// Acknowledges `ids` on the service of `grant`.
pub(super) async fn acknowledge(
    integrations: &Integrations,
    grant: &Grant,
    ids: &[String],
) -> Result<(), String> {
    match grant.kind {
        ConnectionKind::Nats => {
            let (client, _) = integrations.nats(grant).await.map_err(|e| e.to_string())?;
            for reply in ids.iter().filter(|r| !r.is_empty()) {
                client
                    .publish(reply.clone(), "+ACK".into())
                    .await
                    .map_err(|e| e.to_string())?;
            }
            client.flush().await.map_err(|e| e.to_string())
        }
        ConnectionKind::Amqp => match integrations.amqp_if_open(grant) {
            Some(client) => client.settle(ids, true).await,
            // No connection: the broker requeued what the old one held.
            None => Ok(()),
        },
        ConnectionKind::Mqtt => match integrations.mqtt_if_open(grant) {
            Some(client) => client.settle(ids, true).await,
            None => Ok(()),
        },
        _ => {
            let mut conn = integrations.redis(grant).await.map_err(|e| e.to_string())?;
            let mut pipe = redis::pipe();
            for id in ids {
                let RedisAck(stream, group, entry) =
                    serde_json::from_str(id).map_err(|_| format!("not a Redis ack id: {id:?}"))?;
                pipe.cmd("XACK").arg(stream).arg(group).arg(entry).ignore();
            }
            pipe.query_async::<()>(&mut conn)
                .await
                .map_err(|e| e.to_string())
        }
    }
}
