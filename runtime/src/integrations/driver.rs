//! Each driver's options built from a checked [`Target`] and the addresses the egress policy
//! checked for it. A driver is handed IP addresses, never the name again: a DNS answer that
//! changes between the check and the connect (or at a later reconnect) cannot redirect it.
//!
//! TLS: sqlx encrypts when the URL asks (`sslmode=require`), without checking the certificate;
//! the modes that check it are refused with the URL, since the driver would check it against
//! the pinned address. Redis is built without TLS (`rediss://` is refused). NATS speaks TLS when
//! its server asks for it: the certificate is then verified against the name the address was
//! resolved from ([`PinnedNames`]), so pinning the address does not weaken the verification
//! (the name is not sent as SNI, which rustls sends for names only).
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

use super::ConnectionKind;
use crate::pipeline::connection::target::{Target, encode};

/// Connections a SQL pool keeps open at most, per URL.
const SQL_POOL_SIZE: u32 = 8;

/// `host:port` of `addr` as a URL authority writes it (IPv6 in brackets).
fn authority(addr: SocketAddr) -> String {
    addr.to_string()
}

/// The URL sqlx is given for `t`, connecting to `addr` (`None` for SQLite): every piece
/// percent-encoded from the checked target, so the driver reads back exactly what was checked.
/// PostgreSQL always gets a `password` (empty when the URL has none), so that the driver never
/// takes the server process's own `PGPASSWORD` or `~/.pgpass` instead.
pub fn sql_url(t: &Target, addr: Option<SocketAddr>) -> String {
    let mut url = match (t.kind, &t.file) {
        (ConnectionKind::Sqlite, Some(file)) => format!("sqlite://{}", encode(file, b"/")),
        (ConnectionKind::Sqlite, None) => "sqlite::memory:".to_string(),
        (kind, _) => {
            let scheme = if kind == ConnectionKind::Mysql {
                "mysql"
            } else {
                "postgres"
            };
            let mut url = format!("{scheme}://");
            // PostgreSQL's password goes in a parameter (below).
            let password = t
                .password
                .as_deref()
                .filter(|_| kind == ConnectionKind::Mysql);
            if t.user.is_some() || password.is_some() {
                url.push_str(&encode(t.user.as_deref().unwrap_or_default(), b""));
                if let Some(password) = password {
                    url.push(':');
                    url.push_str(&encode(password, b""));
                }
                url.push('@');
            }
            url.push_str(&addr.map(authority).unwrap_or_default());
            url.push('/');
            url.push_str(&encode(t.database.as_deref().unwrap_or_default(), b""));
            url
        }
    };
    let mut params: Vec<(&str, &str)> = Vec::new();
    if t.kind == ConnectionKind::Postgres {
        params.push(("password", t.password.as_deref().unwrap_or_default()));
    }
    params.extend(t.params.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    for (i, (k, v)) in params.iter().enumerate() {
        url.push(if i == 0 { '?' } else { '&' });
        url.push_str(&encode(k, b"[]"));
        url.push('=');
        url.push_str(&encode(v, b""));
    }
    url
}

/// A pool for SQL target `t`, on the first of `addrs` that answers (none for SQLite).
pub async fn sql(t: &Target, addrs: &[SocketAddr]) -> Result<sqlx::AnyPool, String> {
    sqlx::any::install_default_drivers();
    let connect = |url: String| async move {
        sqlx::any::AnyPoolOptions::new()
            .max_connections(SQL_POOL_SIZE)
            .acquire_timeout(std::time::Duration::from_secs(10))
            .connect(&url)
            .await
            .map_err(|e| e.to_string())
    };
    if t.kind == ConnectionKind::Sqlite {
        return connect(sql_url(t, None)).await;
    }
    let mut last = String::from("no address to connect to");
    for addr in addrs {
        match connect(sql_url(t, Some(*addr))).await {
            Ok(pool) => return Ok(pool),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// The Redis client options for `t` at `addr`.
pub fn redis_info(t: &Target, addr: SocketAddr) -> redis::ConnectionInfo {
    let resp3 = t
        .params
        .iter()
        .any(|(k, v)| k == "protocol" && matches!(v.to_ascii_lowercase().as_str(), "3" | "resp3"));
    redis::ConnectionInfo {
        addr: redis::ConnectionAddr::Tcp(addr.ip().to_string(), addr.port()),
        redis: redis::RedisConnectionInfo {
            db: t
                .database
                .as_deref()
                .and_then(|d| d.parse().ok())
                .unwrap_or(0),
            username: t.user.clone(),
            password: t.password.clone(),
            protocol: if resp3 {
                redis::ProtocolVersion::RESP3
            } else {
                redis::ProtocolVersion::RESP2
            },
        },
    }
}

/// A Redis connection for `t`, to the first of `addrs` that answers.
pub async fn redis(
    t: &Target,
    addrs: &[SocketAddr],
) -> Result<redis::aio::MultiplexedConnection, String> {
    let mut last = String::from("no address to connect to");
    for addr in addrs {
        let client = redis::Client::open(redis_info(t, *addr)).map_err(|e| e.to_string())?;
        match client.get_multiplexed_async_connection().await {
            Ok(c) => return Ok(c),
            Err(e) => last = e.to_string(),
        }
    }
    Err(last)
}

/// The URL the AMQP client is given for `t`, connecting to `addr`: every piece
/// percent-encoded from the checked target (the virtual host too, so `/` is `%2F`).
pub fn amqp_url(t: &Target, addr: SocketAddr) -> String {
    let mut url = String::from("amqp://");
    if t.user.is_some() || t.password.is_some() {
        url.push_str(&encode(t.user.as_deref().unwrap_or_default(), b""));
        if let Some(password) = &t.password {
            url.push(':');
            url.push_str(&encode(password, b""));
        }
        url.push('@');
    }
    url.push_str(&authority(addr));
    url.push('/');
    url.push_str(&encode(t.database.as_deref().unwrap_or("/"), b""));
    for (i, (k, v)) in t.params.iter().enumerate() {
        url.push(if i == 0 { '?' } else { '&' });
        url.push_str(&encode(k, b""));
        url.push('=');
        url.push_str(&encode(v, b""));
    }
    url
}

/// An AMQP connection for `t`, to the first of `addrs` that answers.
pub async fn amqp(t: &Target, addrs: &[SocketAddr]) -> Result<lapin::Connection, String> {
    let mut last = String::from("no address to connect to");
    for addr in addrs {
        let properties =
            lapin::ConnectionProperties::default().with_connection_name("autoflow".into());
        match lapin::Connection::connect(&amqp_url(t, *addr), properties).await {
            Ok(c) => return Ok(c),
            Err(e) => last = e.to_string(),
        }
    }
    Err(last)
}

/// Addresses and the names they were resolved from.
type Names = Vec<(IpAddr, String)>;

/// The NATS servers of `t`, each checked address of each server (`addrs`, in server order),
/// and the name each address was resolved from (for TLS).
pub fn nats_servers(
    t: &Target,
    addrs: &[Vec<SocketAddr>],
) -> Result<(Vec<async_nats::ServerAddr>, Names), String> {
    let mut servers = Vec::new();
    let mut names = Vec::new();
    for (server, addrs) in t.servers.iter().zip(addrs) {
        for addr in addrs {
            let one: async_nats::ServerAddr = format!("nats://{}", authority(*addr))
                .parse()
                .map_err(|e| format!("{e}"))?;
            servers.push(one);
            if server.host.parse::<IpAddr>().is_err() {
                names.push((addr.ip(), server.host.clone()));
            }
        }
    }
    Ok((servers, names))
}

/// A NATS client for `t` on the checked `addrs` of its servers. Servers a NATS server announces
/// (`connect_urls`) are ignored: they were not checked.
pub async fn nats(t: &Target, addrs: &[Vec<SocketAddr>]) -> Result<async_nats::Client, String> {
    let (servers, names) = nats_servers(t, addrs)?;
    let options = match (&t.user, &t.password) {
        (Some(user), Some(password)) => {
            async_nats::ConnectOptions::with_user_and_password(user.clone(), password.clone())
        }
        (Some(token), None) => async_nats::ConnectOptions::with_token(token.clone()),
        _ => async_nats::ConnectOptions::new(),
    };
    options
        .ignore_discovered_servers()
        .tls_client_config(nats_tls(names).await?)
        .connect(servers)
        .await
        .map_err(|e| e.to_string())
}

/// The TLS settings of a NATS client on pinned addresses: the platform's roots (as async-nats
/// uses by default; the web PKI's when the platform has none), certificates verified against
/// the names in `names`.
async fn nats_tls(names: Names) -> Result<rustls::ClientConfig, String> {
    let roots = crate::egress::tls_roots().await;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = PinnedNames::new(roots, provider.clone(), names)?;
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth())
}

/// Verifies a server's certificate, reached at a pinned address, against the name that address
/// was resolved from (an address the URL itself named is verified as an address).
#[derive(Debug)]
pub struct PinnedNames {
    inner: Arc<rustls::client::WebPkiServerVerifier>,
    names: Vec<(IpAddr, ServerName<'static>)>,
}

impl PinnedNames {
    /// Verifies with the web PKI's rules under `roots`, an address in `names` as its name.
    fn new(
        roots: Arc<rustls::RootCertStore>,
        provider: Arc<rustls::crypto::CryptoProvider>,
        names: Names,
    ) -> Result<Self, String> {
        let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(roots, provider)
            .build()
            .map_err(|e| format!("TLS: {e}"))?;
        let names = names
            .into_iter()
            .filter_map(|(ip, name)| Some((ip, ServerName::try_from(name).ok()?)))
            .collect();
        Ok(Self { inner, names })
    }
}

impl ServerCertVerifier for PinnedNames {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let ip = match server_name {
            ServerName::IpAddress(ip) => Some(IpAddr::from(*ip)),
            _ => None,
        };
        let mut last = None;
        for (_, name) in self.names.iter().filter(|(a, _)| Some(*a) == ip) {
            match self
                .inner
                .verify_server_cert(end_entity, intermediates, name, ocsp_response, now)
            {
                Ok(ok) => return Ok(ok),
                Err(e) => last = Some(e),
            }
        }
        match last {
            Some(e) => Err(e),
            None => self.inner.verify_server_cert(
                end_entity,
                intermediates,
                server_name,
                ocsp_response,
                now,
            ),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_drivers_are_given_the_checked_address_and_nothing_else() {
        let url =
            "postgres://etl:p%40ss@db.example.com:6543/shop?application_name=etl&sslmode=disable";
        let t = Target::parse(ConnectionKind::Postgres, url).unwrap();
        let url = sql_url(&t, Some(addr("203.0.113.7:6543")));
        assert_eq!(
            url,
            "postgres://etl@203.0.113.7:6543/shop?password=p%40ss&application_name=etl&sslmode=disable"
        );
        let pg = sqlx::postgres::PgConnectOptions::from_str(&url).unwrap();
        assert_eq!(
            (pg.get_host(), pg.get_port(), pg.get_socket()),
            ("203.0.113.7", 6543, None)
        );
        assert_eq!(
            (
                pg.get_username(),
                pg.get_database(),
                pg.get_application_name()
            ),
            ("etl", Some("shop"), Some("etl"))
        );
        // No password in the URL: an empty one, never the process's PGPASSWORD or ~/.pgpass.
        let t = Target::parse(ConnectionKind::Postgres, "postgres://etl@db/shop").unwrap();
        assert_eq!(
            sql_url(&t, Some(addr("[2001:db8::1]:5432"))),
            "postgres://etl@[2001:db8::1]:5432/shop?password="
        );

        let t = Target::parse(
            ConnectionKind::Mysql,
            "mariadb://root:p%3Aw@db.example.com/test?charset=utf8mb4",
        )
        .unwrap();
        let url = sql_url(&t, Some(addr("203.0.113.7:3306")));
        assert_eq!(
            url,
            "mysql://root:p%3Aw@203.0.113.7:3306/test?charset=utf8mb4"
        );
        let my = sqlx::mysql::MySqlConnectOptions::from_str(&url).unwrap();
        assert_eq!(
            (
                my.get_host(),
                my.get_port(),
                my.get_socket(),
                my.get_database()
            ),
            ("203.0.113.7", 3306, None, Some("test"))
        );

        let t = Target::parse(
            ConnectionKind::Sqlite,
            "sqlite:///data/a%3Fb%20c.db?mode=ro",
        )
        .unwrap();
        let url = sql_url(&t, None);
        assert_eq!(url, "sqlite:///data/a%3Fb%20c.db?mode=ro");
        let lite = sqlx::sqlite::SqliteConnectOptions::from_str(&url).unwrap();
        assert_eq!(lite.get_filename(), std::path::Path::new("/data/a?b c.db"));
        assert_eq!(
            sql_url(
                &Target::parse(ConnectionKind::Sqlite, "sqlite::memory:").unwrap(),
                None
            ),
            "sqlite::memory:"
        );

        let t = Target::parse(
            ConnectionKind::Redis,
            "redis://app:pw@cache.example.com:7000/3?protocol=resp3",
        )
        .unwrap();
        let info = redis_info(&t, addr("203.0.113.8:7000"));
        assert!(
            matches!(&info.addr, redis::ConnectionAddr::Tcp(h, 7000) if h == "203.0.113.8"),
            "{:?}",
            info.addr
        );
        assert_eq!(
            (
                info.redis.db,
                info.redis.username.as_deref(),
                info.redis.password.as_deref()
            ),
            (3, Some("app"), Some("pw"))
        );
        assert_eq!(info.redis.protocol, redis::ProtocolVersion::RESP3);

        let t = Target::parse(
            ConnectionKind::Nats,
            "nats://a.example.com:4000,nats://198.51.100.1",
        )
        .unwrap();
        let addrs = [
            vec![addr("203.0.113.9:4000"), addr("[2001:db8::9]:4000")],
            vec![addr("198.51.100.1:4222")],
        ];
        let (servers, names) = nats_servers(&t, &addrs).unwrap();
        let servers: Vec<String> = servers
            .iter()
            .map(|s| format!("{}:{}", s.host(), s.port()))
            .collect();
        assert_eq!(
            servers,
            ["203.0.113.9:4000", "2001:db8::9:4000", "198.51.100.1:4222"]
        );
        assert_eq!(
            names,
            [
                (addr("203.0.113.9:4000").ip(), "a.example.com".into()),
                (addr("[2001:db8::9]:4000").ip(), "a.example.com".into())
            ]
        );
    }

    #[test]
    fn the_amqp_client_gets_the_checked_address_and_every_piece_encoded() {
        let t = Target::parse(
            ConnectionKind::Amqp,
            "amqp://app:p%2Fw@mq.example.com:5673/orders%2Feu?heartbeat=30",
        )
        .unwrap();
        assert_eq!(
            amqp_url(&t, addr("203.0.113.7:5673")),
            "amqp://app:p%2Fw@203.0.113.7:5673/orders%2Feu?heartbeat=30"
        );
        let t = Target::parse(ConnectionKind::Amqp, "amqp://mq").unwrap();
        assert_eq!(
            amqp_url(&t, addr("[2001:db8::9]:5672")),
            "amqp://[2001:db8::9]:5672/%2F"
        );
    }

    #[test]
    fn nats_tls_verifies_the_name_a_pinned_address_was_resolved_from() {
        // A test CA and a certificate for a.example.com it signed (valid 2026 to 2126).
        let ca = CertificateDer::from(&include_bytes!("testdata/ca.der")[..]);
        let leaf = CertificateDer::from(&include_bytes!("testdata/a.example.com.der")[..]);
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca).unwrap();
        let roots = Arc::new(roots);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let pinned: IpAddr = "203.0.113.9".parse().unwrap();
        let verifier = |name: &str| {
            PinnedNames::new(
                roots.clone(),
                provider.clone(),
                vec![(pinned, name.to_string())],
            )
            .unwrap()
        };
        let at = |ip: IpAddr| ServerName::IpAddress(ip.into());
        let now = UnixTime::since_unix_epoch(std::time::Duration::from_secs(1_900_000_000)); // 2030
        let verify = |v: &PinnedNames, server: &ServerName<'_>| {
            v.verify_server_cert(&leaf, &[], server, &[], now)
        };
        assert!(
            verify(&verifier("a.example.com"), &at(pinned)).is_ok(),
            "the address a.example.com resolved to"
        );
        assert!(
            verify(&verifier("b.example.com"), &at(pinned)).is_err(),
            "the certificate is not b.example.com's"
        );
        assert!(
            verify(
                &verifier("a.example.com"),
                &at("203.0.113.10".parse().unwrap())
            )
            .is_err(),
            "no name led to this address"
        );
        assert!(
            verify(
                &verifier("a.example.com"),
                &ServerName::try_from("a.example.com").unwrap()
            )
            .is_ok()
        );
    }
}
