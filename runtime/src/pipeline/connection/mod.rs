//! Connections as a pipeline declares them: the kind of service a URL names, the secrets its
//! `${secrets.NAME}` placeholders refer to, and the host's rules for where a URL may lead
//! ([`target`]); the integrations connect to what these rules checked.
use std::collections::BTreeMap;

pub mod target;

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
    /// Redis (`redis://`; `rediss://` is refused: the client is built without TLS).
    Redis,
    /// AMQP 0-9-1, as RabbitMQ speaks it (`amqp://`; `amqps://` is refused: the client is
    /// built without TLS).
    Amqp,
    /// MQTT 5 (`mqtt://`; `mqtts://` is refused: the client is built without TLS).
    Mqtt,
}

impl ConnectionKind {
    /// Whether it is a SQL database.
    pub fn is_sql(self) -> bool {
        matches!(
            self,
            ConnectionKind::Postgres | ConnectionKind::Mysql | ConnectionKind::Sqlite
        )
    }

    /// Its name in messages.
    pub fn name(self) -> &'static str {
        match self {
            ConnectionKind::Postgres => "PostgreSQL",
            ConnectionKind::Mysql => "MySQL",
            ConnectionKind::Sqlite => "SQLite",
            ConnectionKind::Nats => "NATS",
            ConnectionKind::Redis => "Redis",
            ConnectionKind::Amqp => "AMQP",
            ConnectionKind::Mqtt => "MQTT",
        }
    }
}

/// A connection URL as written in a pipeline: its kind and the secrets it refers to. Through
/// [`ConnectionUrl::parse`], the URL passed the host's rules (no query parameter that moves the
/// driver elsewhere or makes it read a file of the host, no Unix socket) with any values of its
/// secrets; the host checks it again with their values when it connects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionUrl {
    /// The service kind, from the scheme.
    pub kind: ConnectionKind,
    /// Names of the secrets in `${secrets.NAME}` placeholders, in order.
    pub secrets: Vec<String>,
    /// For SQLite, the file it opens, percent-decoded (`None` in memory or for another kind).
    sqlite_file: Option<String>,
}

const PLACEHOLDER: &str = "${secrets.";

impl ConnectionUrl {
    /// Parses `url`; the error says what is wrong with it, naming a refused query parameter.
    pub fn parse(url: &str) -> Result<Self, String> {
        let (mut u, shape) = Self::read_shape(url)?;
        if u.kind == ConnectionKind::Sqlite && !u.secrets.is_empty() {
            return Err("a SQLite URL takes no ${secrets.NAME}: its file is checked against the mount roots as written".into());
        }
        u.sqlite_file = target::Target::parse(u.kind, &shape)?.file;
        Ok(u)
    }

    /// The kind and secrets of `url`, without the host's rules: for a pipeline stored before a
    /// rule existed, whose connection is still granted, and refused, naming the rule, when the
    /// host connects.
    pub fn read(url: &str) -> Result<Self, String> {
        Self::read_shape(url).map(|(u, _)| u)
    }

    /// The kind and secrets of `url`, and `url` with each placeholder replaced by a value that
    /// stands for any: once expanded (URL-encoded), a secret cannot add a delimiter, so the
    /// expanded URL keeps the shape of this one.
    fn read_shape(url: &str) -> Result<(Self, String), String> {
        let scheme = url
            .split_once(':')
            .map(|(s, _)| s)
            .unwrap_or_default()
            .to_ascii_lowercase();
        let kind = match scheme.as_str() {
            "postgres" | "postgresql" => ConnectionKind::Postgres,
            "mysql" | "mariadb" => ConnectionKind::Mysql,
            "sqlite" => ConnectionKind::Sqlite,
            "nats" => ConnectionKind::Nats,
            "redis" | "rediss" | "redis+unix" | "unix" => ConnectionKind::Redis,
            "amqp" | "amqps" => ConnectionKind::Amqp,
            "mqtt" | "mqtts" => ConnectionKind::Mqtt,
            _ => {
                return Err(format!(
                    "unsupported URL {:?}: expected postgres://, mysql://, mariadb://, sqlite:, nats://, redis://, amqp:// or mqtt://",
                    scheme_only(url)
                ));
            }
        };
        let mut secrets = Vec::new();
        let mut shape = String::with_capacity(url.len());
        for piece in pieces(url)? {
            match piece {
                Piece::Text(text) => shape.push_str(text),
                Piece::Secret(name) => {
                    if !super::is_valid_secret_name(name) {
                        return Err(format!(
                            "invalid secret name {name:?} in a ${{secrets.NAME}} placeholder"
                        ));
                    }
                    secrets.push(name.to_string());
                    shape.push('1');
                }
            }
        }
        Ok((
            Self {
                kind,
                secrets,
                sqlite_file: None,
            },
            shape,
        ))
    }

    /// For a SQLite URL, the file it opens, percent-decoded (`None` for an in-memory database
    /// or another kind): the path the driver opens, to check against the mount roots.
    pub fn sqlite_path(&self) -> Option<&str> {
        self.sqlite_file.as_deref()
    }
}

/// The scheme of `url` and no more: what an error may show of a URL that can hold credentials.
pub fn scheme_only(url: &str) -> String {
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
        let end = after
            .find('}')
            .ok_or("unclosed ${secrets.NAME} placeholder")?;
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
                let value = secrets.get(name).ok_or_else(|| {
                    format!("secret {name:?} is not set (PUT /v1/secrets/{name})")
                })?;
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
