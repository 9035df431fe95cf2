//! Connections plugins use through the host: SQL databases and message services. A pipeline
//! declares them by name with a URL (credentials from secrets); a step is granted some; the
//! host connects (pools and clients shared by every run of the process) and plugins only name
//! them. Message acknowledgements are held until the run that received them has committed.
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;

pub mod messaging;
pub mod sql;

/// What kind of service a connection URL points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionKind {
    /// PostgreSQL (`postgres://`, `postgresql://`).
    Postgres,
    /// MySQL or MariaDB (`mysql://`, `mariadb://`).
    Mysql,
    /// SQLite (`sqlite:`).
    Sqlite,
    /// NATS with JetStream (`nats://`).
    Nats,
    /// Redis (`redis://`, `rediss://`).
    Redis,
}

impl ConnectionKind {
    /// Whether it is a SQL database.
    pub fn is_sql(self) -> bool {
        matches!(self, ConnectionKind::Postgres | ConnectionKind::Mysql | ConnectionKind::Sqlite)
    }
}

/// A connection URL as written in a pipeline: its kind and the secrets it refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionUrl {
    /// The service kind, from the scheme.
    pub kind: ConnectionKind,
    /// Names of the secrets in `${secrets.NAME}` placeholders, in order.
    pub secrets: Vec<String>,
}

const PLACEHOLDER: &str = "${secrets.";

impl ConnectionUrl {
    /// Parses `url`; the error says what is wrong with it.
    pub fn parse(url: &str) -> Result<Self, String> {
        let scheme = url.split_once(':').map(|(s, _)| s).unwrap_or_default().to_ascii_lowercase();
        let kind = match scheme.as_str() {
            "postgres" | "postgresql" => ConnectionKind::Postgres,
            "mysql" | "mariadb" => ConnectionKind::Mysql,
            "sqlite" => ConnectionKind::Sqlite,
            "nats" => ConnectionKind::Nats,
            "redis" | "rediss" => ConnectionKind::Redis,
            _ => {
                return Err(format!(
                    "unsupported URL {:?}: expected postgres://, mysql://, mariadb://, sqlite:, nats:// or redis://",
                    scheme_only(url)
                ));
            }
        };
        let mut secrets = Vec::new();
        for piece in pieces(url)? {
            if let Piece::Secret(name) = piece {
                if !crate::pipeline::is_valid_secret_name(name) {
                    return Err(format!("invalid secret name {name:?} in a ${{secrets.NAME}} placeholder"));
                }
                secrets.push(name.to_string());
            }
        }
        Ok(Self { kind, secrets })
    }

    /// For a SQLite URL, the file it opens (`None` for an in-memory database or another kind).
    pub fn sqlite_path<'u>(&self, url: &'u str) -> Option<&'u str> {
        if self.kind != ConnectionKind::Sqlite {
            return None;
        }
        let rest = url.split_once(':').map_or("", |(_, r)| r);
        let rest = rest.strip_prefix("//").unwrap_or(rest);
        let path = rest.split('?').next().unwrap_or_default();
        (!path.is_empty() && path != ":memory:").then_some(path)
    }
}

/// The scheme of `url` and no more: what an error may show of a URL that can hold credentials.
fn scheme_only(url: &str) -> String {
    match url.split_once(':') {
        Some((scheme, _)) => format!("{scheme}:..."),
        None => "(no scheme)".into(),
    }
}

/// A piece of a connection URL: text as written, or a `${secrets.NAME}` placeholder's name.
enum Piece<'a> {
    Text(&'a str),
    Secret(&'a str),
}

/// `url` cut at its `${secrets.NAME}` placeholders; an error for one left unclosed.
fn pieces(url: &str) -> Result<Vec<Piece<'_>>, String> {
    let mut out = Vec::new();
    let mut rest = url;
    while let Some(at) = rest.find(PLACEHOLDER) {
        out.push(Piece::Text(&rest[..at]));
        let after = &rest[at + PLACEHOLDER.len()..];
        let end = after.find('}').ok_or("unclosed ${secrets.NAME} placeholder")?;
        out.push(Piece::Secret(&after[..end]));
        rest = &after[end + 1..];
    }
    out.push(Piece::Text(rest));
    Ok(out)
}

/// `url` with each `${secrets.NAME}` replaced by the value of secret `NAME` (URL-encoded, so a
/// password may hold any character); an error names a missing secret.
pub fn expand(url: &str, secrets: &BTreeMap<String, String>) -> Result<String, String> {
    use std::fmt::Write;
    let mut out = String::with_capacity(url.len());
    for piece in pieces(url)? {
        match piece {
            Piece::Text(text) => out.push_str(text),
            Piece::Secret(name) => {
                let value = secrets.get(name).ok_or_else(|| format!("secret {name:?} is not set (PUT /v1/secrets/{name})"))?;
                for b in value.bytes() {
                    if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                        out.push(char::from(b));
                    } else {
                        let _ = write!(out, "%{b:02X}");
                    }
                }
            }
        }
    }
    Ok(out)
}

/// A connection granted to a step: its name in the pipeline and its URL, secrets expanded.
#[derive(Clone, PartialEq, Eq)]
pub struct Grant {
    /// The service kind.
    pub kind: ConnectionKind,
    /// The URL, credentials included: never shown.
    pub url: String,
}

impl std::fmt::Debug for Grant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Grant").field("kind", &self.kind).field("url", &scheme_only(&self.url)).finish()
    }
}

/// Acknowledgement ids of one connection.
pub type Acks = (Grant, Vec<String>);

/// Acknowledgements a run asked for, held until its checkpoints are committed.
#[derive(Debug, Clone, Default)]
pub struct PendingAcks(Arc<Mutex<Vec<Acks>>>);

impl PendingAcks {
    /// Holds `ids` of the service behind `grant`.
    pub fn hold(&self, grant: &Grant, ids: Vec<String>) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push((grant.clone(), ids));
    }

    /// Takes everything held.
    pub fn take(&self) -> Vec<Acks> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// How many acknowledgements are held.
    pub fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).iter().map(|(_, ids)| ids.len()).sum()
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
}

/// The clients of every connection used in this process, by URL; cheap to clone.
#[derive(Clone, Default)]
pub struct Integrations {
    clients: Arc<Mutex<HashMap<String, Arc<OnceCell<Client>>>>>,
    /// Non-public hosts and addresses the operator lets connections reach
    /// (`--egress-allow-private`, as for outbound HTTP).
    private: Arc<Vec<crate::engine::HostPattern>>,
}

/// Why a connection could not be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectError {
    /// The egress policy forbids its address: retrying will not help.
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

impl From<ConnectError> for crate::engine::bindings::PluginError {
    fn from(e: ConnectError) -> Self {
        match e {
            ConnectError::Refused(_) => Self::Fatal(e.to_string()),
            ConnectError::Failed(_) => Self::Retryable(e.to_string()),
        }
    }
}

/// The `host:port` endpoints a connection URL reaches over the network (none for SQLite); a
/// URL without a host (a Unix socket) counts as `localhost`.
fn endpoints(kind: ConnectionKind, url: &str) -> Vec<(String, u16)> {
    let default_port = match kind {
        ConnectionKind::Postgres => 5432,
        ConnectionKind::Mysql => 3306,
        ConnectionKind::Nats => 4222,
        ConnectionKind::Redis => 6379,
        ConnectionKind::Sqlite => return Vec::new(),
    };
    // NATS takes several servers, comma-separated: `nats://a:4222,nats://b:4222`.
    url.split(',')
        .map(|one| {
            let one = if one.contains("://") { one.to_string() } else { format!("nats://{one}") };
            match url::Url::parse(&one) {
                Ok(u) => {
                    let host = u.host_str().filter(|h| !h.is_empty()).unwrap_or("localhost");
                    (host.trim_matches(['[', ']']).to_ascii_lowercase(), u.port().unwrap_or(default_port))
                }
                Err(_) => ("localhost".to_string(), default_port),
            }
        })
        .collect()
}

/// Connections a SQL pool keeps open at most, per URL.
const SQL_POOL_SIZE: u32 = 8;

impl Integrations {
    /// Clients made under the operator's egress settings: a connection to a non-public address
    /// needs the host or address in `--egress-allow-private`, as outbound HTTP does.
    pub fn new(egress: &crate::engine::EgressSettings) -> Self {
        let (private, _) = crate::engine::parse_patterns(&egress.allow_private);
        Self { clients: Default::default(), private: Arc::new(private) }
    }

    /// The operator's `--egress-allow-private`, parsed: shared with every step's outbound HTTP.
    pub fn private_hosts(&self) -> Arc<Vec<crate::engine::HostPattern>> {
        self.private.clone()
    }

    /// Checks every endpoint of `grant` against the egress policy, as it resolves now.
    async fn check_egress(&self, grant: &Grant) -> Result<(), ConnectError> {
        for (host, port) in endpoints(grant.kind, &grant.url) {
            let addrs: Vec<std::net::SocketAddr> = match host.parse::<std::net::IpAddr>() {
                Ok(ip) => vec![std::net::SocketAddr::new(ip, port)],
                Err(_) => tokio::net::lookup_host((host.as_str(), port))
                    .await
                    .map_err(|e| ConnectError::Failed(format!("cannot resolve {host:?}: {e}")))?
                    .collect(),
            };
            if let Some(why) = crate::engine::refused_address(&host, port, &addrs, &self.private) {
                return Err(ConnectError::Refused(why));
            }
        }
        Ok(())
    }

    /// The cell of `grant`'s client, made on first use.
    fn cell(&self, grant: &Grant) -> Arc<OnceCell<Client>> {
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        clients.entry(grant.url.clone()).or_default().clone()
    }

    async fn connect(&self, grant: &Grant) -> Result<Client, ConnectError> {
        self.check_egress(grant).await?;
        let failed = |e: &dyn std::fmt::Display| ConnectError::Failed(format!("cannot connect to {}: {e}", scheme_only(&grant.url)));
        match grant.kind {
            ConnectionKind::Postgres | ConnectionKind::Mysql | ConnectionKind::Sqlite => {
                sqlx::any::install_default_drivers();
                let url = grant.url.replacen("mariadb:", "mysql:", 1);
                sqlx::any::AnyPoolOptions::new()
                    .max_connections(SQL_POOL_SIZE)
                    .acquire_timeout(std::time::Duration::from_secs(10))
                    .connect(&url)
                    .await
                    .map(Client::Sql)
                    .map_err(|e| failed(&e))
            }
            ConnectionKind::Nats => {
                let client = async_nats::connect(grant.url.as_str()).await.map_err(|e| failed(&e))?;
                Ok(Client::Nats(Box::new((client.clone(), async_nats::jetstream::new(client)))))
            }
            ConnectionKind::Redis => {
                let client = redis::Client::open(grant.url.as_str()).map_err(|e| failed(&e))?;
                client.get_multiplexed_async_connection().await.map(Client::Redis).map_err(|e| failed(&e))
            }
        }
    }

    /// The SQL pool of `grant`.
    pub async fn sql(&self, grant: &Grant) -> Result<sqlx::AnyPool, ConnectError> {
        match self.cell(grant).get_or_try_init(|| self.connect(grant)).await? {
            Client::Sql(pool) => Ok(pool.clone()),
            _ => Err(ConnectError::Failed("not a SQL connection".into())),
        }
    }

    /// The NATS client of `grant`, and its JetStream context.
    pub async fn nats(&self, grant: &Grant) -> Result<(async_nats::Client, async_nats::jetstream::Context), ConnectError> {
        match self.cell(grant).get_or_try_init(|| self.connect(grant)).await? {
            Client::Nats(both) => Ok((**both).clone()),
            _ => Err(ConnectError::Failed("not a NATS connection".into())),
        }
    }

    /// The Redis connection of `grant`.
    pub async fn redis(&self, grant: &Grant) -> Result<redis::aio::MultiplexedConnection, ConnectError> {
        match self.cell(grant).get_or_try_init(|| self.connect(grant)).await? {
            Client::Redis(c) => Ok(c.clone()),
            _ => Err(ConnectError::Failed("not a Redis connection".into())),
        }
    }

    /// Sends the acknowledgements a run held, now that what came of the messages is durable.
    /// A failure is logged: the service delivers those messages again, and the sinks'
    /// idempotence (upsert on a key) absorbs the repeat.
    pub async fn acknowledge(&self, acks: Vec<Acks>) {
        for (grant, ids) in acks {
            if let Err(e) = messaging::acknowledge(self, &grant, &ids).await {
                tracing::warn!("cannot acknowledge {} messages on {}: {e}", ids.len(), scheme_only(&grant.url));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_and_their_secrets_expanded() {
        let u = ConnectionUrl::parse("postgres://app:${secrets.pg-pass}@db/x").unwrap();
        assert_eq!(u.kind, ConnectionKind::Postgres);
        assert_eq!(u.secrets, vec!["pg-pass".to_string()]);
        let lite = "sqlite:///data/x.db?mode=ro";
        assert_eq!(ConnectionUrl::parse(lite).unwrap().sqlite_path(lite), Some("/data/x.db"));
        assert_eq!(ConnectionUrl::parse("sqlite::memory:").unwrap().sqlite_path("sqlite::memory:"), None);
        assert!(ConnectionUrl::parse("ftp://x").unwrap_err().contains("unsupported URL \"ftp:...\""));
        assert!(ConnectionUrl::parse("nats://${secrets.x").unwrap_err().contains("unclosed"));
        let values = BTreeMap::from([("pg-pass".to_string(), "p@ss/w:rd".to_string())]);
        assert_eq!(expand("postgres://app:${secrets.pg-pass}@db/x", &values).unwrap(), "postgres://app:p%40ss%2Fw%3Ard@db/x");
        assert!(expand("redis://${secrets.nope}@h", &values).unwrap_err().contains("\"nope\" is not set"));
        assert_eq!(endpoints(ConnectionKind::Postgres, "postgres://u:p@DB.internal/x"), [("db.internal".to_string(), 5432)]);
        assert_eq!(endpoints(ConnectionKind::Postgres, "postgres:///x?host=/run/pg"), [("localhost".to_string(), 5432)]);
        assert_eq!(
            endpoints(ConnectionKind::Nats, "nats://a:4000,nats://b"),
            [("a".to_string(), 4000), ("b".to_string(), 4222)]
        );
        assert_eq!(endpoints(ConnectionKind::Redis, "redis://[::1]:7000"), [("::1".to_string(), 7000)]);
        assert!(endpoints(ConnectionKind::Sqlite, "sqlite:///x.db").is_empty());
        assert!(!format!("{:?}", Grant { kind: ConnectionKind::Redis, url: "redis://:secret@h".into() }).contains("secret@"));
    }
}
