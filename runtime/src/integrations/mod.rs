//! Connections plugins use through the host: SQL databases and message services. A pipeline
//! declares them by name with a URL (credentials from secrets); a step is granted some; the
//! host connects (pools and clients shared by every run of the process) and plugins only name
//! them. Message acknowledgements are held until the run that received them has committed.
//!
//! Each capability owns its state and implements its WIT interface on it ([`sql::SqlState`],
//! [`messaging::MessagingState`], as Spin's factors do); the engine holds one of each in a
//! step's store and links them through a projection of its data (`add_to_linker`).
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::OnceCell;

mod amqp;
mod driver;
mod grants;
pub mod messaging;
mod mqtt;
pub mod sql;

pub use grants::{Grant, Grants};

use crate::pipeline::connection::scheme_only;
use crate::pipeline::connection::target::{self, Target};
pub use crate::pipeline::connection::{ConnectionKind, ConnectionUrl, expand};

/// Acknowledgement ids of one connection.
pub type Acks = (Grant, Vec<String>);

/// Acknowledgements a run asked for, held until its checkpoints are committed; and, for
/// services that keep a delivery with the reader until it is settled (AMQP), what the run was
/// handed, to give back what it did not acknowledge.
#[derive(Debug, Clone, Default)]
pub struct PendingAcks(Arc<Mutex<Held>>);

#[derive(Debug, Default)]
struct Held {
    acknowledged: Vec<Acks>,
    delivered: Vec<Acks>,
}

impl PendingAcks {
    fn lock(&self) -> std::sync::MutexGuard<'_, Held> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Holds `ids` of the service behind `grant`.
    pub fn hold(&self, grant: &Grant, ids: Vec<String>) {
        self.lock().acknowledged.push((grant.clone(), ids));
    }

    /// Notes that `ids` of the service behind `grant` were handed to a step: those not
    /// acknowledged by the run's end are given back.
    pub fn delivered(&self, grant: &Grant, ids: Vec<String>) {
        self.lock().delivered.push((grant.clone(), ids));
    }

    /// Takes everything: the acknowledgements to send when the run `committed` (none
    /// otherwise), and the deliveries to give back.
    fn settle(&self, committed: bool) -> (Vec<Acks>, Vec<Acks>) {
        let Held {
            acknowledged,
            mut delivered,
        } = std::mem::take(&mut *self.lock());
        if !committed {
            return (Vec::new(), delivered);
        }
        let acked: std::collections::HashSet<(&str, &str)> = acknowledged
            .iter()
            .flat_map(|(g, ids)| ids.iter().map(|id| (g.url.as_str(), id.as_str())))
            .collect();
        for (grant, ids) in &mut delivered {
            ids.retain(|id| !acked.contains(&(grant.url.as_str(), id.as_str())));
        }
        delivered.retain(|(_, ids)| !ids.is_empty());
        (acknowledged, delivered)
    }

    /// How many acknowledgements are held.
    pub fn len(&self) -> usize {
        self.lock()
            .acknowledged
            .iter()
            .map(|(_, ids)| ids.len())
            .sum()
    }

    /// Whether none are held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One live client of a service.
enum Client {
    Sql(sqlx::AnyPool),
    Nats(Box<(async_nats::Client, async_nats::jetstream::Context)>),
    Redis(redis::aio::MultiplexedConnection),
    Amqp(Arc<amqp::AmqpClient>),
    Mqtt(Arc<mqtt::MqttClient>),
}

/// The clients of every connection used in this process, by URL; cheap to clone.
#[derive(Clone, Default)]
pub struct Integrations {
    clients: Arc<Mutex<HashMap<String, Arc<OnceCell<Client>>>>>,
    /// Where connections may go (the same policy as outbound HTTP's).
    egress: crate::egress::Policy,
}

/// How long resolving a connection's host may take.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a connection could not be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectError {
    /// The egress policy forbids its address, or its URL breaks the host's rules (checked
    /// again once its secrets are expanded): retrying will not help.
    Refused(String),
    /// The service did not answer or refused us: it may next time.
    Failed(String),
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectError::Refused(m) => write!(f, "connection refused by the egress policy: {m}"),
            ConnectError::Failed(m) => f.write_str(m),
        }
    }
}

impl From<ConnectError> for crate::world::PluginError {
    fn from(e: ConnectError) -> Self {
        match e {
            ConnectError::Refused(_) => Self::Fatal(e.to_string()),
            ConnectError::Failed(_) => Self::Retryable(e.to_string()),
        }
    }
}

impl Integrations {
    /// Clients made under the process's egress `policy`: a connection to a non-public address
    /// needs the host or address in `--egress-allow-private`, as outbound HTTP does.
    pub fn new(policy: crate::egress::Policy) -> Self {
        Self {
            clients: Default::default(),
            egress: policy,
        }
    }

    /// The egress policy connections obey (outbound HTTP obeys the same).
    pub fn egress(&self) -> &crate::egress::Policy {
        &self.egress
    }

    /// The addresses of every server of `target`, resolved once and checked by the egress
    /// policy: the driver then connects to these, never to the name again.
    async fn check_egress(&self, target: &Target) -> Result<Vec<Vec<SocketAddr>>, ConnectError> {
        use crate::egress::Denied;
        let mut checked = Vec::with_capacity(target.servers.len());
        for target::Server { host, port } in &target.servers {
            let addrs = self
                .egress
                .resolve(host, *port, RESOLVE_TIMEOUT)
                .await
                .map_err(|denied| match denied {
                    Denied::Refused(why) => ConnectError::Refused(why),
                    Denied::Lookup(e) => {
                        ConnectError::Failed(format!("cannot resolve {host:?}: {e}"))
                    }
                    Denied::Timeout => {
                        ConnectError::Failed(format!("cannot resolve {host:?}: timed out"))
                    }
                    Denied::NoAddress => {
                        ConnectError::Failed(format!("{host:?} resolves to no address"))
                    }
                })?;
            checked.push(addrs);
        }
        Ok(checked)
    }

    /// The cell of `grant`'s client, made on first use.
    fn cell(&self, grant: &Grant) -> Arc<OnceCell<Client>> {
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        clients.entry(grant.url.clone()).or_default().clone()
    }

    async fn connect(&self, grant: &Grant) -> Result<Client, ConnectError> {
        // Checked again as expanded: the rules hold whatever the secrets' values are.
        let target = Target::parse(grant.kind, &grant.url).map_err(ConnectError::Refused)?;
        let addrs = self.check_egress(&target).await?;
        let failed = |e: String| {
            ConnectError::Failed(format!(
                "cannot connect to {}: {e}",
                scheme_only(&grant.url)
            ))
        };
        match grant.kind {
            ConnectionKind::Postgres | ConnectionKind::Mysql | ConnectionKind::Sqlite => {
                let addrs = addrs.into_iter().flatten().collect::<Vec<_>>();
                driver::sql(&target, &addrs)
                    .await
                    .map(Client::Sql)
                    .map_err(failed)
            }
            ConnectionKind::Nats => {
                let client = driver::nats(&target, &addrs).await.map_err(failed)?;
                Ok(Client::Nats(Box::new((
                    client.clone(),
                    async_nats::jetstream::new(client),
                ))))
            }
            ConnectionKind::Redis => {
                let addrs = addrs.into_iter().flatten().collect::<Vec<_>>();
                driver::redis(&target, &addrs)
                    .await
                    .map(Client::Redis)
                    .map_err(failed)
            }
            ConnectionKind::Amqp => {
                let addrs = addrs.into_iter().flatten().collect::<Vec<_>>();
                driver::amqp(&target, &addrs)
                    .await
                    .map(|c| Client::Amqp(Arc::new(amqp::AmqpClient::new(c))))
                    .map_err(failed)
            }
            ConnectionKind::Mqtt => {
                let mut last = String::from("no address to connect to");
                for addr in addrs.into_iter().flatten() {
                    match mqtt::MqttClient::connect(target.clone(), addr).await {
                        Ok(c) => return Ok(Client::Mqtt(Arc::new(c))),
                        Err(e) => last = e,
                    }
                }
                Err(failed(last))
            }
        }
    }

    /// The SQL pool of `grant`.
    pub async fn sql(&self, grant: &Grant) -> Result<sqlx::AnyPool, ConnectError> {
        match self
            .cell(grant)
            .get_or_try_init(|| self.connect(grant))
            .await?
        {
            Client::Sql(pool) => Ok(pool.clone()),
            _ => Err(ConnectError::Failed("not a SQL connection".into())),
        }
    }

    /// The NATS client of `grant`, and its JetStream context.
    pub async fn nats(
        &self,
        grant: &Grant,
    ) -> Result<(async_nats::Client, async_nats::jetstream::Context), ConnectError> {
        match self
            .cell(grant)
            .get_or_try_init(|| self.connect(grant))
            .await?
        {
            Client::Nats(both) => Ok((**both).clone()),
            _ => Err(ConnectError::Failed("not a NATS connection".into())),
        }
    }

    /// The Redis connection of `grant`.
    pub async fn redis(
        &self,
        grant: &Grant,
    ) -> Result<redis::aio::MultiplexedConnection, ConnectError> {
        match self
            .cell(grant)
            .get_or_try_init(|| self.connect(grant))
            .await?
        {
            Client::Redis(c) => Ok(c.clone()),
            _ => Err(ConnectError::Failed("not a Redis connection".into())),
        }
    }

    /// The AMQP client of `grant`; one whose connection broke is made again (the broker has
    /// requeued what it held).
    async fn amqp(&self, grant: &Grant) -> Result<Arc<amqp::AmqpClient>, ConnectError> {
        let cell = self.cell(grant);
        if let Some(Client::Amqp(c)) = cell.get()
            && !c.is_connected()
        {
            let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
            if clients
                .get(&grant.url)
                .is_some_and(|c| Arc::ptr_eq(c, &cell))
            {
                clients.remove(&grant.url);
            }
        }
        match self
            .cell(grant)
            .get_or_try_init(|| self.connect(grant))
            .await?
        {
            Client::Amqp(c) => Ok(c.clone()),
            _ => Err(ConnectError::Failed("not an AMQP connection".into())),
        }
    }

    /// The MQTT clients of `grant`.
    async fn mqtt(&self, grant: &Grant) -> Result<Arc<mqtt::MqttClient>, ConnectError> {
        match self
            .cell(grant)
            .get_or_try_init(|| self.connect(grant))
            .await?
        {
            Client::Mqtt(c) => Ok(c.clone()),
            _ => Err(ConnectError::Failed("not an MQTT connection".into())),
        }
    }

    /// The MQTT clients of `grant` if this process has them.
    fn mqtt_if_open(&self, grant: &Grant) -> Option<Arc<mqtt::MqttClient>> {
        match self.cell(grant).get() {
            Some(Client::Mqtt(c)) => Some(c.clone()),
            _ => None,
        }
    }

    /// The AMQP client of `grant` if this process has one (what it handed out lives there).
    fn amqp_if_open(&self, grant: &Grant) -> Option<Arc<amqp::AmqpClient>> {
        match self.cell(grant).get() {
            Some(Client::Amqp(c)) => Some(c.clone()),
            _ => None,
        }
    }

    /// A Redis connection of `grant` of its own (not shared with steps): for a listener's
    /// blocking reads.
    pub async fn redis_of_its_own(
        &self,
        grant: &Grant,
    ) -> Result<redis::aio::MultiplexedConnection, ConnectError> {
        match self.connect(grant).await? {
            Client::Redis(c) => Ok(c),
            _ => Err(ConnectError::Failed("not a Redis connection".into())),
        }
    }

    /// Settles what a run held once its end is recorded: when it `committed` (its checkpoints
    /// are durable, so what came of its messages is), the acknowledgements it asked for are
    /// sent; the deliveries it did not acknowledge, or all of them when it did not commit, are
    /// given back (AMQP, MQTT; NATS and Redis deliver unacknowledged messages again by
    /// themselves).
    /// A failure is logged: the service delivers those messages again, and the sinks'
    /// idempotence (upsert on a key) absorbs the repeat.
    pub async fn settle(&self, acks: &PendingAcks, committed: bool) {
        let (acknowledge, give_back) = acks.settle(committed);
        for (grant, ids) in acknowledge {
            if let Err(e) = messaging::acknowledge(self, &grant, &ids).await {
                tracing::warn!(
                    "cannot acknowledge {} messages on {}: {e}",
                    ids.len(),
                    scheme_only(&grant.url)
                );
            }
        }
        for (grant, ids) in give_back {
            let given = match grant.kind {
                ConnectionKind::Amqp => match self.amqp_if_open(&grant) {
                    Some(client) => client.settle(&ids, false).await,
                    None => Ok(()),
                },
                ConnectionKind::Mqtt => match self.mqtt_if_open(&grant) {
                    Some(client) => client.settle(&ids, false).await,
                    None => Ok(()),
                },
                _ => Ok(()),
            };
            if let Err(e) = given {
                tracing::warn!(
                    "cannot give back {} messages on {}: {e}",
                    ids.len(),
                    scheme_only(&grant.url)
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn urls_are_checked_and_their_secrets_expanded() {
        let u = ConnectionUrl::parse("postgres://app:${secrets.pg-pass}@db/x").unwrap();
        assert_eq!(u.kind, ConnectionKind::Postgres);
        assert_eq!(u.secrets, vec!["pg-pass".to_string()]);
        let lite = ConnectionUrl::parse("sqlite:///data/x%20y.db?mode=ro").unwrap();
        assert_eq!(lite.sqlite_path(), Some("/data/x y.db"));
        assert_eq!(
            ConnectionUrl::parse("sqlite::memory:")
                .unwrap()
                .sqlite_path(),
            None
        );
        assert!(
            ConnectionUrl::parse("ftp://x")
                .unwrap_err()
                .contains("unsupported URL \"ftp:...\"")
        );
        assert!(
            ConnectionUrl::parse("nats://${secrets.x")
                .unwrap_err()
                .contains("unclosed")
        );
        let values = BTreeMap::from([("pg-pass".to_string(), "p@ss/w:rd".to_string())]);
        assert_eq!(
            expand("postgres://app:${secrets.pg-pass}@db/x", &values).unwrap(),
            "postgres://app:p%40ss%2Fw%3Ard@db/x"
        );
        assert!(
            expand("redis://${secrets.nope}@h", &values)
                .unwrap_err()
                .contains("\"nope\" is not set")
        );
        assert!(
            !format!(
                "{:?}",
                Grant {
                    kind: ConnectionKind::Redis,
                    url: "redis://:secret@h".into()
                }
            )
            .contains("secret@")
        );
    }

    #[test]
    fn a_url_is_checked_with_its_placeholders_standing_for_any_value() {
        let every_place = "postgres://${secrets.user}:${secrets.pw}@${secrets.host}:5432/${secrets.db}?application_name=${secrets.app}";
        assert!(ConnectionUrl::parse(every_place).is_ok());
        assert!(
            ConnectionUrl::parse("postgres://u@db/x?${secrets.opts}")
                .unwrap_err()
                .contains("is not allowed")
        );
        assert!(
            ConnectionUrl::parse("postgres://u@db/x?host=${secrets.h}")
                .unwrap_err()
                .starts_with("query parameter \"host\" is not allowed")
        );
        assert!(
            ConnectionUrl::parse("sqlite:///data/${secrets.f}.db")
                .unwrap_err()
                .contains("takes no ${secrets.NAME}")
        );
        assert!(
            ConnectionUrl::parse("redis+unix:///run/redis.sock")
                .unwrap_err()
                .starts_with("the URL has no host")
        );
        assert!(
            ConnectionUrl::parse("unix:///run/redis.sock")
                .unwrap_err()
                .starts_with("the URL has no host")
        );
        let stored = ConnectionUrl::read("postgres://${secrets.u}@db/x?host=/tmp").unwrap();
        assert_eq!(
            (stored.kind, stored.secrets),
            (ConnectionKind::Postgres, vec!["u".to_string()])
        );
        assert!(
            ConnectionUrl::parse("sqlite:///data/x.db?vfs=unix-none")
                .unwrap_err()
                .contains("\"vfs\"")
        );
    }

    #[tokio::test]
    async fn an_expanded_url_is_checked_again_before_anything_connects() {
        let integrations =
            Integrations::new(crate::egress::Policy::new(&crate::egress::EgressSettings {
                allow_private: vec!["127.0.0.1".into(), "localhost".into()],
            }));
        // A secret's value cannot make the host a socket directory: refused, not retried.
        let url = "postgres://u@${secrets.host}/db";
        assert!(ConnectionUrl::parse(url).is_ok());
        let secrets = BTreeMap::from([("host".to_string(), "/tmp/sockets".to_string())]);
        let grant = Grant {
            kind: ConnectionKind::Postgres,
            url: expand(url, &secrets).unwrap(),
        };
        assert_eq!(grant.url, "postgres://u@%2Ftmp%2Fsockets/db");
        match integrations.sql(&grant).await {
            Err(ConnectError::Refused(why)) => {
                assert!(why.contains("must be a name or an IP address"), "{why}")
            }
            other => panic!("{:?}", other.err()),
        }
        let grant = Grant {
            kind: ConnectionKind::Redis,
            url: "redis://h/0?socket=/run/redis.sock".into(),
        };
        assert!(
            matches!(integrations.redis(&grant).await, Err(ConnectError::Refused(why)) if why.contains("\"socket\""))
        );
    }
}
