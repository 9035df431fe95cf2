//! The `autoflow:plugin/messaging` imports on MQTT 5 (Mosquitto, ...): publish at QoS 1, each
//! message acknowledged by the broker before the call returns, with the message's headers as
//! user properties; fetch from a persistent session (clean start off) named by the group, which
//! holds the subscription to the topic filter between runs; acknowledgements (PUBACK) held until
//! the run commits. MQTT has no negative acknowledgement: a run that ends without acknowledging
//! what it read drops the group's connection, and the broker sends those messages again when the
//! session resumes at the next fetch (so does a process that dies).
//!
//! The group is the MQTT client id: one reader per group at a time (a second connection with
//! the same id takes the session over). Messages published while no session has subscribed to
//! their topic are not kept (MQTT's rule): a reader's first run subscribes.
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use rumqttc::Outgoing;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{Packet, PubAckReason, Publish, PublishProperties};
use rumqttc::v5::{AsyncClient, Event, EventLoop, MqttOptions};
use tokio::sync::{Mutex, mpsc};

use crate::pipeline::connection::target::Target;
use crate::world::PluginError;
use crate::world::source::autoflow::plugin0_1_0::messaging::{
    Message, Outgoing as OutgoingMessage,
};

/// How long a broker may take to acknowledge a publish or a subscription.
const ACK_WITHIN: Duration = Duration::from_secs(30);
/// How long a fetch that has messages waits for more before it returns them.
const QUIET: Duration = Duration::from_millis(20);
/// How long a session the broker keeps for a group without a connection (seconds).
const SESSION_EXPIRY: u32 = 7 * 24 * 3600;
/// Requests queued to a client's event loop at most.
const CAPACITY: usize = 1024;

fn retryable(what: &str, e: impl std::fmt::Display) -> PluginError {
    PluginError::Retryable(format!("mqtt {what}: {e}"))
}

/// The MQTT clients of one connection: a publisher, and a reader per group.
pub struct MqttClient {
    target: Target,
    addr: SocketAddr,
    publisher: Mutex<Option<Publisher>>,
    readers: Mutex<HashMap<String, Arc<Reader>>>,
}

/// A client whose event loop runs on a task of its own, forwarding what the caller waits for.
struct Publisher {
    client: AsyncClient,
    events: mpsc::Receiver<Result<PubEvent, String>>,
    task: tokio::task::JoinHandle<()>,
}

enum PubEvent {
    Sent(u16),
    Acked(u16, PubAckReason),
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A group's session: the messages the broker sent, and those handed to runs until settled.
struct Reader {
    client: AsyncClient,
    inbox: Mutex<mpsc::Receiver<Publish>>,
    task: tokio::task::JoinHandle<()>,
    broken: Arc<AtomicBool>,
    subscribed: Mutex<Vec<String>>,
    subacks: Mutex<mpsc::Receiver<bool>>,
    unsettled: std::sync::Mutex<HashMap<u64, Publish>>,
    next_id: AtomicU64,
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// An MQTT acknowledgement: the group and the delivery's number in this process.
#[derive(serde::Serialize, serde::Deserialize)]
struct MqttAck(String, u64);

impl MqttClient {
    /// The clients of `target` at `addr` (checked by the egress policy), connecting first to
    /// see that the broker answers.
    pub async fn connect(target: Target, addr: SocketAddr) -> Result<Self, String> {
        let client = Self {
            target,
            addr,
            publisher: Mutex::new(None),
            readers: Mutex::new(HashMap::new()),
        };
        let publisher = client.publisher().await.map_err(|e| e.to_string())?;
        *client.publisher.lock().await = Some(publisher);
        Ok(client)
    }

    fn options(&self, id: &str) -> MqttOptions {
        let mut o = MqttOptions::new(id, self.addr.ip().to_string(), self.addr.port());
        o.set_keep_alive(Duration::from_secs(30));
        if let Some(user) = &self.target.user {
            o.set_credentials(
                user.clone(),
                self.target.password.clone().unwrap_or_default(),
            );
        }
        o
    }

    /// A connected event loop of `options`: the first poll must answer CONNACK.
    async fn connected(options: MqttOptions) -> Result<(AsyncClient, EventLoop), String> {
        let (client, mut events) = AsyncClient::new(options, CAPACITY);
        loop {
            match tokio::time::timeout(ACK_WITHIN, events.poll()).await {
                Ok(Ok(Event::Incoming(Packet::ConnAck(_)))) => return Ok((client, events)),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Err(e.to_string()),
                Err(_) => return Err("the broker did not answer CONNECT".into()),
            }
        }
    }

    async fn publisher(&self) -> Result<Publisher, PluginError> {
        let id = format!("autoflow-publish-{:016x}", rand_u64());
        let (client, mut events) = Self::connected(self.options(&id))
            .await
            .map_err(|e| retryable("connect", e))?;
        let (tx, rx) = mpsc::channel(CAPACITY);
        let task = tokio::spawn(async move {
            loop {
                let forwarded = match events.poll().await {
                    Ok(Event::Outgoing(Outgoing::Publish(pkid))) => Ok(PubEvent::Sent(pkid)),
                    Ok(Event::Incoming(Packet::PubAck(ack))) => {
                        Ok(PubEvent::Acked(ack.pkid, ack.reason))
                    }
                    Ok(_) => continue,
                    Err(e) => Err(e.to_string()),
                };
                let failed = forwarded.is_err();
                if tx.send(forwarded).await.is_err() || failed {
                    return;
                }
            }
        });
        Ok(Publisher {
            client,
            events: rx,
            task,
        })
    }

    /// Publishes `messages` at QoS 1 in order, returning once the broker acknowledged each.
    pub async fn publish(&self, messages: Vec<OutgoingMessage>) -> Result<(), PluginError> {
        let mut slot = self.publisher.lock().await;
        if slot.is_none() {
            *slot = Some(self.publisher().await?);
        }
        let Some(p) = slot.as_mut() else {
            return Err(retryable("publish", "no client"));
        };
        let result = publish_on(p, messages).await;
        if result.is_err() {
            *slot = None; // made again at the next publish
        }
        result
    }

    /// The reader of `group`, connected (again, when its connection broke or was dropped).
    async fn reader(&self, group: &str) -> Result<Arc<Reader>, PluginError> {
        let mut readers = self.readers.lock().await;
        if let Some(r) = readers
            .get(group)
            .filter(|r| !r.broken.load(Ordering::Relaxed))
        {
            return Ok(r.clone());
        }
        readers.remove(group);
        let mut options = self.options(group);
        options
            .set_clean_start(false)
            .set_session_expiry_interval(Some(SESSION_EXPIRY))
            .set_receive_maximum(Some(u16::MAX))
            .set_manual_acks(true);
        let (client, mut events) = Self::connected(options)
            .await
            .map_err(|e| retryable("connect", e))?;
        let (tx, rx) = mpsc::channel(usize::from(u16::MAX));
        let (sub_tx, sub_rx) = mpsc::channel(16);
        let broken = Arc::new(AtomicBool::new(false));
        let flag = broken.clone();
        let task = tokio::spawn(async move {
            loop {
                match events.poll().await {
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        if tx.send(p).await.is_err() {
                            break;
                        }
                    }
                    Ok(Event::Incoming(Packet::SubAck(ack))) => {
                        let ok = ack.return_codes.iter().all(|c| {
                            matches!(
                                c,
                                rumqttc::v5::mqttbytes::v5::SubscribeReasonCode::Success(_)
                            )
                        });
                        let _ = sub_tx.send(ok).await;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::debug!("mqtt reader: {e}");
                        break;
                    }
                }
            }
            // Not reconnected here: a new reader resumes the session, and the broker sends
            // what this one held again.
            flag.store(true, Ordering::Relaxed);
        });
        let reader = Arc::new(Reader {
            client,
            inbox: Mutex::new(rx),
            task,
            broken,
            subscribed: Mutex::new(Vec::new()),
            subacks: Mutex::new(sub_rx),
            unsettled: Default::default(),
            next_id: AtomicU64::new(1),
        });
        readers.insert(group.to_string(), reader.clone());
        Ok(reader)
    }

    /// Takes up to `max` messages of `group`'s session on topic filter `topic`, waiting up to
    /// `wait` for the first.
    pub async fn fetch(
        &self,
        topic: &str,
        group: &str,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Message>, PluginError> {
        let reader = self.reader(group).await?;
        {
            let mut subscribed = reader.subscribed.lock().await;
            if !subscribed.iter().any(|t| t == topic) {
                reader
                    .client
                    .subscribe(topic, QoS::AtLeastOnce)
                    .await
                    .map_err(|e| retryable("subscribe", e))?;
                let ok = tokio::time::timeout(ACK_WITHIN, reader.subacks.lock().await.recv())
                    .await
                    .map_err(|_| retryable("subscribe", "no SUBACK"))?;
                if ok != Some(true) {
                    return Err(PluginError::InvalidConfig(format!(
                        "mqtt subscribe: the broker refused topic filter {topic:?}"
                    )));
                }
                subscribed.push(topic.to_string());
            }
        }
        let mut inbox = reader.inbox.lock().await;
        let mut got = Vec::new();
        let mut window = wait;
        while got.len() < max {
            match tokio::time::timeout(window, inbox.recv()).await {
                Ok(Some(p)) => {
                    got.push(p);
                    window = QUIET;
                }
                Ok(None) | Err(_) => break,
            }
        }
        if got.is_empty() && reader.broken.load(Ordering::Relaxed) {
            return Err(retryable("fetch", "the connection to the broker broke"));
        }
        let mut unsettled = reader.unsettled.lock().unwrap_or_else(|p| p.into_inner());
        Ok(got
            .into_iter()
            .map(|p| {
                let n = reader.next_id.fetch_add(1, Ordering::Relaxed);
                let message = Message {
                    subject: String::from_utf8_lossy(&p.topic).into_owned(),
                    payload: p.payload.to_vec(),
                    headers: p
                        .properties
                        .as_ref()
                        .map(|props| props.user_properties.clone())
                        .unwrap_or_default(),
                    position: p.pkid.to_string(),
                    delivered: if p.dup { 2 } else { 1 },
                    ack_id: serde_json::to_string(&MqttAck(group.to_string(), n))
                        .unwrap_or_default(),
                };
                unsettled.insert(n, p);
                message
            })
            .collect())
    }

    /// Acknowledges (`ack`) the deliveries `ids`, or gives them back: MQTT cannot refuse one
    /// message, so their groups' connections are dropped, and the broker sends what they held
    /// again when the session resumes.
    pub async fn settle(&self, ids: &[String], ack: bool) -> Result<(), String> {
        let mut by_group: HashMap<String, Vec<u64>> = HashMap::new();
        for id in ids {
            let MqttAck(group, n) =
                serde_json::from_str(id).map_err(|_| format!("not an MQTT ack id: {id:?}"))?;
            by_group.entry(group).or_default().push(n);
        }
        let mut readers = self.readers.lock().await;
        for (group, ns) in by_group {
            let Some(reader) = readers.get(&group).cloned() else {
                continue; // that connection is gone: the broker sends them again
            };
            let taken: Vec<Publish> = {
                let mut unsettled = reader.unsettled.lock().unwrap_or_else(|p| p.into_inner());
                ns.iter().filter_map(|n| unsettled.remove(n)).collect()
            };
            if ack {
                for p in &taken {
                    reader.client.ack(p).await.map_err(|e| e.to_string())?;
                }
            } else if !taken.is_empty() {
                readers.remove(&group);
                let _ = reader.client.disconnect().await;
            }
        }
        Ok(())
    }
}

async fn publish_on(p: &mut Publisher, messages: Vec<OutgoingMessage>) -> Result<(), PluginError> {
    let n = messages.len();
    for m in messages {
        let properties = PublishProperties {
            user_properties: m.headers,
            ..PublishProperties::default()
        };
        p.client
            .publish_with_properties(m.subject, QoS::AtLeastOnce, false, m.payload, properties)
            .await
            .map_err(|e| retryable("publish", e))?;
    }
    let mut sent = std::collections::HashSet::new();
    let mut acked = 0;
    let mut sent_count = 0;
    let mut early: std::collections::HashSet<u16> = std::collections::HashSet::new();
    while acked < n {
        let event = tokio::time::timeout(ACK_WITHIN, p.events.recv())
            .await
            .map_err(|_| retryable("publish", "the broker did not acknowledge in time"))?
            .ok_or_else(|| retryable("publish", "the connection closed"))?
            .map_err(|e| retryable("publish", e))?;
        match event {
            PubEvent::Sent(pkid) if sent_count < n => {
                sent_count += 1;
                if early.remove(&pkid) {
                    acked += 1;
                } else {
                    sent.insert(pkid);
                }
            }
            PubEvent::Sent(_) => {}
            PubEvent::Acked(pkid, reason) => {
                if !matches!(
                    reason,
                    PubAckReason::Success | PubAckReason::NoMatchingSubscribers
                ) {
                    return Err(PluginError::Fatal(format!(
                        "mqtt publish: the broker refused a message: {reason:?}"
                    )));
                }
                if sent.remove(&pkid) {
                    acked += 1;
                } else {
                    early.insert(pkid);
                }
            }
        }
    }
    Ok(())
}

/// A random number for a publisher's client id.
fn rand_u64() -> u64 {
    let mut b = [0u8; 8];
    let _ = getrandom::fill(&mut b);
    u64::from_le_bytes(b)
}
