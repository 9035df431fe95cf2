//! Connection URLs taken apart under the host's rules. A server's host and port come from the
//! URL's authority only, and the host must be a name or an IP address: no Unix socket, no URL
//! without a host (the drivers would pick a default, a socket among them). Query parameters are
//! allowed per scheme, and only those that change neither where a driver connects nor which
//! file of the host it reads: `host`, `hostaddr`, `port`, `socket`, certificate, key, service
//! and password files, SQLite's `vfs` are refused, naming the parameter. The drivers' options
//! are then built from the pieces kept here (`integrations::driver`), never from the URL as written.
use std::fmt::Write;

use super::ConnectionKind;

/// A network server of a connection: its host as written (lower case, an IPv6 address without
/// brackets) and its port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    /// The name or address the egress policy resolves and checks.
    pub host: String,
    /// The port (the scheme's default when the URL has none).
    pub port: u16,
}

/// A connection URL that passed the host's rules: what every driver's options are built from.
#[derive(Clone, PartialEq, Eq)]
pub struct Target {
    /// The service kind.
    pub kind: ConnectionKind,
    /// The servers: one for SQL, Redis and AMQP, one or more for NATS, none for SQLite.
    pub servers: Vec<Server>,
    /// SQLite: the file, percent-decoded and absolute; `None` for a database in memory.
    pub file: Option<String>,
    /// The user name (NATS: a token when there is no password), percent-decoded.
    pub user: Option<String>,
    /// The password, percent-decoded.
    pub password: Option<String>,
    /// PostgreSQL and MySQL: the database's name; Redis: its number; AMQP: the virtual host.
    pub database: Option<String>,
    /// The allowed query parameters, decoded, in the URL's order.
    pub params: Vec<(String, String)>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("kind", &self.kind)
            .field("servers", &self.servers)
            .field("file", &self.file)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "(hidden)"))
            .field("database", &self.database)
            .field("params", &self.params)
            .finish()
    }
}

const NO_HOST: &str = "the URL has no host: write the server's name or address (a Unix socket, or the driver's default host, is not allowed)";
const BAD_HOST: &str = "the URL's host must be a name or an IP address (a percent-encoded path, which a driver takes for a Unix socket, is not allowed)";
/// Why the SQL modes that verify the server's certificate are refused on a step's connection:
/// the driver connects to the address the egress policy checked and pinned, and would check
/// the certificate against that address instead of the server's name (and a private CA would
/// be a file of the host). `require` encrypts without that check.
const NO_SQL_VERIFY: &str = "verifies the server's certificate, which a step's connection cannot do yet: the driver connects to the address the egress policy pinned, not to the name";

impl Target {
    /// Takes `url` (a URL of `kind`, placeholders already replaced) apart; the error says what
    /// is refused, naming the query parameter, and never shows a value of the URL.
    pub fn parse(kind: ConnectionKind, url: &str) -> Result<Self, String> {
        let mut t = Target {
            kind,
            servers: Vec::new(),
            file: None,
            user: None,
            password: None,
            database: None,
            params: Vec::new(),
        };
        match kind {
            ConnectionKind::Sqlite => t.sqlite(url)?,
            // NATS takes several servers, comma-separated: `nats://a:4222,nats://b:4222`.
            ConnectionKind::Nats => {
                for one in url.split(',') {
                    let one = if one.contains("://") {
                        one.to_string()
                    } else {
                        format!("nats://{one}")
                    };
                    t.network(&one)?;
                }
            }
            _ => t.network(url)?,
        }
        Ok(t)
    }

    fn sqlite(&mut self, url: &str) -> Result<(), String> {
        let rest = url.split_once(':').map_or("", |(_, r)| r);
        let rest = rest.strip_prefix("//").unwrap_or(rest);
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let path = decode(path, "the file's path")?;
        if !path.is_empty() && path != ":memory:" {
            if !path.starts_with('/') {
                return Err(
                    "a SQLite file must be an absolute path (sqlite:///dir/file.db)".into(),
                );
            }
            self.file = Some(path);
        }
        for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
            self.param(&key, &value)?;
        }
        Ok(())
    }

    fn network(&mut self, url: &str) -> Result<(), String> {
        let u = url::Url::parse(url).map_err(|e| format!("not a valid URL: {e}"))?;
        let default_port = match (self.kind, u.scheme()) {
            (ConnectionKind::Postgres, "postgres" | "postgresql") => 5432,
            (ConnectionKind::Mysql, "mysql" | "mariadb") => 3306,
            (ConnectionKind::Redis, "redis") => 6379,
            (ConnectionKind::Redis, "rediss") => {
                return Err(
                    "rediss:// is not available: this host's Redis client is built without TLS"
                        .into(),
                );
            }
            (ConnectionKind::Nats, "nats") => 4222,
            (ConnectionKind::Amqp, "amqp") => 5672,
            (ConnectionKind::Mqtt, "mqtt") => 1883,
            (ConnectionKind::Mqtt, "mqtts") => {
                return Err(
                    "mqtts:// is not available: this host's MQTT client is built without TLS"
                        .into(),
                );
            }
            (ConnectionKind::Amqp, "amqps") => {
                return Err(
                    "amqps:// is not available: this host's AMQP client is built without TLS"
                        .into(),
                );
            }
            (_, "unix" | "redis+unix" | "valkey+unix") => return Err(NO_HOST.into()),
            (_, scheme) => {
                return Err(format!(
                    "scheme {scheme:?} is not allowed here (write nats://host:port)"
                ));
            }
        };
        if u.fragment().is_some() {
            return Err("a URL fragment (#...) is not allowed".into());
        }
        let host = match u.host() {
            Some(url::Host::Ipv4(a)) => a.to_string(),
            Some(url::Host::Ipv6(a)) => a.to_string(),
            Some(url::Host::Domain(d)) if !d.is_empty() => {
                if !d
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
                {
                    return Err(BAD_HOST.into());
                }
                d.to_ascii_lowercase()
            }
            _ => return Err(NO_HOST.into()),
        };
        let port = u.port().unwrap_or(default_port);
        if port == 0 {
            return Err("port 0 is not allowed".into());
        }
        self.servers.push(Server { host, port });
        // NATS: the first server that carries credentials gives them.
        if self.user.is_none() && self.password.is_none() {
            self.user = Some(decode(u.username(), "the user name")?).filter(|s| !s.is_empty());
            self.password = u
                .password()
                .map(|p| decode(p, "the password"))
                .transpose()?;
        }
        let path = u.path().trim_start_matches('/');
        match self.kind {
            ConnectionKind::Nats if !path.is_empty() => return Err("a NATS URL has no path".into()),
            ConnectionKind::Mqtt if !path.is_empty() => {
                return Err("an MQTT URL has no path".into());
            }
            ConnectionKind::Redis if !path.is_empty() => {
                path.parse::<i64>()
                    .map_err(|_| "the path of a Redis URL must be a database number")?;
                self.database = Some(path.to_string());
            }
            ConnectionKind::Postgres | ConnectionKind::Mysql if !path.is_empty() => {
                self.database = Some(decode(path, "the database name")?);
            }
            // The virtual host: `amqp://h`, `amqp://h/` and `amqp://h/%2f` are RabbitMQ's
            // default, `/`.
            ConnectionKind::Amqp => {
                let vhost = decode(path, "the virtual host")?;
                self.database = Some(if vhost.is_empty() { "/".into() } else { vhost });
            }
            _ => {}
        }
        for (key, value) in u.query_pairs() {
            self.param(&key, &value)?;
        }
        Ok(())
    }

    /// Keeps query parameter `key`, refuses it, or takes it into the target.
    fn param(&mut self, key: &str, value: &str) -> Result<(), String> {
        if let Some(why) = reaches_past(key) {
            return Err(format!("query parameter {key:?} is not allowed: {why}"));
        }
        if value.chars().any(char::is_control) {
            return Err(format!("query parameter {key:?} holds a control character"));
        }
        let one_of = |allowed: &[&str]| {
            if allowed.contains(&value.to_ascii_lowercase().as_str()) {
                Ok(())
            } else {
                Err(format!(
                    "query parameter {key:?} must be one of {}",
                    allowed.join(", ")
                ))
            }
        };
        let number = || {
            value
                .parse::<usize>()
                .map(drop)
                .map_err(|_| format!("query parameter {key:?} must be a number"))
        };
        match (self.kind, key) {
            (ConnectionKind::Postgres, "sslmode" | "ssl-mode") => {
                ssl_mode(
                    key,
                    value,
                    &["disable", "allow", "prefer", "require"],
                    &["verify-ca", "verify-full"],
                )?;
            }
            (ConnectionKind::Postgres, "application_name" | "options") => {}
            (ConnectionKind::Postgres, k) if k.starts_with("options[") && k.ends_with(']') => {}
            (ConnectionKind::Postgres | ConnectionKind::Mysql, "statement-cache-capacity") => {
                number()?
            }
            (ConnectionKind::Postgres, "dbname") => return self.take(Field::Database, value),
            (ConnectionKind::Postgres, "user") => return self.take(Field::User, value),
            (ConnectionKind::Postgres, "password") => return self.take(Field::Password, value),
            // libpq's; the driver has its own timeouts and ignores it.
            (ConnectionKind::Postgres, "connect_timeout") => return number(),
            (ConnectionKind::Mysql, "ssl-mode" | "sslmode") => {
                ssl_mode(
                    key,
                    value,
                    &["disabled", "preferred", "required"],
                    &["verify_ca", "verify_identity"],
                )?;
            }
            (ConnectionKind::Mysql, "charset" | "collation" | "timezone" | "time-zone") => {}
            (ConnectionKind::Sqlite, "mode") => one_of(&["ro", "rw", "rwc", "memory"])?,
            (ConnectionKind::Sqlite, "cache") => one_of(&["private", "shared"])?,
            (ConnectionKind::Sqlite, "immutable") => one_of(&["true", "false", "1", "0"])?,
            (ConnectionKind::Redis, "protocol") => one_of(&["2", "3", "resp2", "resp3"])?,
            (
                ConnectionKind::Amqp,
                "heartbeat" | "connection_timeout" | "channel_max" | "frame_max",
            ) => number()?,
            (kind, _) => {
                let allowed = allowed(kind);
                let takes = if allowed.is_empty() {
                    "none".to_string()
                } else {
                    allowed.join(", ")
                };
                return Err(format!(
                    "query parameter {key:?} is not allowed (a {} URL takes: {takes})",
                    kind.name()
                ));
            }
        }
        self.params.push((key.to_string(), value.to_string()));
        Ok(())
    }

    fn take(&mut self, field: Field, value: &str) -> Result<(), String> {
        let slot = match field {
            Field::User => &mut self.user,
            Field::Password => &mut self.password,
            Field::Database => &mut self.database,
        };
        *slot = Some(value.to_string());
        Ok(())
    }
}

/// A query parameter the host takes into its own fields.
enum Field {
    User,
    Password,
    Database,
}

/// The query parameters a URL of `kind` may carry.
pub fn allowed(kind: ConnectionKind) -> &'static [&'static str] {
    match kind {
        ConnectionKind::Postgres => &[
            "sslmode",
            "ssl-mode",
            "application_name",
            "options",
            "options[NAME]",
            "statement-cache-capacity",
            "dbname",
            "user",
            "password",
            "connect_timeout",
        ],
        ConnectionKind::Mysql => &[
            "ssl-mode",
            "sslmode",
            "charset",
            "collation",
            "timezone",
            "time-zone",
            "statement-cache-capacity",
        ],
        ConnectionKind::Sqlite => &["mode", "cache", "immutable"],
        ConnectionKind::Redis => &["protocol"],
        ConnectionKind::Nats | ConnectionKind::Mqtt => &[],
        ConnectionKind::Amqp => &[
            "heartbeat",
            "connection_timeout",
            "channel_max",
            "frame_max",
        ],
    }
}

/// Why parameter `key` is refused whatever the scheme, when it reaches past the server the
/// URL names: it changes where a driver connects, or makes it read a file of the host.
fn reaches_past(key: &str) -> Option<&'static str> {
    match key.to_ascii_lowercase().as_str() {
        "host"
        | "hostaddr"
        | "port"
        | "socket"
        | "unix_socket"
        | "unix-socket"
        | "service"
        | "target_session_attrs" => Some(
            "it changes where the driver connects (write the host and port in the URL's authority)",
        ),
        "sslrootcert" | "ssl-root-cert" | "sslca" | "ssl-ca" | "sslcert" | "ssl-cert"
        | "sslkey" | "ssl-key" | "sslcrl" | "sslcrldir" | "sslpassword" | "passfile"
        | "servicefile" => Some("it makes the driver read a file of the host"),
        "vfs" => Some("it chooses how SQLite opens files"),
        _ => None,
    }
}

/// Checks a TLS mode: one of `allowed`, or refused as verifying the certificate
/// ([`NO_SQL_VERIFY`]).
fn ssl_mode(key: &str, value: &str, allowed: &[&str], verify: &[&str]) -> Result<(), String> {
    let value = value.to_ascii_lowercase();
    if allowed.contains(&value.as_str()) {
        Ok(())
    } else if verify.contains(&value.as_str()) {
        Err(format!(
            "{key}={value} {NO_SQL_VERIFY} (use {})",
            allowed.join(", ")
        ))
    } else {
        Err(format!(
            "query parameter {key:?} must be one of {}",
            allowed.join(", ")
        ))
    }
}

/// `s` percent-decoded; an error (naming `what`) for a value that is not UTF-8 or holds a
/// control character (a NUL would end the string where a driver writes it).
pub fn decode(s: &str, what: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    let text = String::from_utf8(out).map_err(|_| format!("{what} is not valid UTF-8"))?;
    if text.chars().any(char::is_control) {
        return Err(format!("{what} holds a control character"));
    }
    Ok(text)
}

/// `s` percent-encoded but for unreserved characters (and `keep`).
pub fn encode(s: &str, keep: &[u8]) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || keep.contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ConnectionKind::{Amqp, Mqtt, Mysql, Nats, Postgres, Redis, Sqlite};

    fn refused(kind: ConnectionKind, url: &str) -> String {
        Target::parse(kind, url).expect_err(url)
    }

    #[test]
    fn parameters_that_move_the_driver_or_read_files_are_refused_for_every_scheme() {
        let moves =
            "it changes where the driver connects (write the host and port in the URL's authority)";
        let reads = "it makes the driver read a file of the host";
        let cases = [
            (
                Postgres,
                "postgres://u:p@db.example.com/db?host=127.0.0.1&port=6000",
                "host",
                moves,
            ),
            (
                Postgres,
                "postgres://u:p@db.example.com/db?hostaddr=127.0.0.1",
                "hostaddr",
                moves,
            ),
            (
                Postgres,
                "postgres://u:p@db.example.com/db?host=/run/postgresql",
                "host",
                moves,
            ),
            (
                Postgres,
                "postgres://u:p@db.example.com/db?port=6000",
                "port",
                moves,
            ),
            (
                Postgres,
                "postgresql://u@db.example.com/db?service=prod",
                "service",
                moves,
            ),
            (
                Postgres,
                "postgres://u@db.example.com/db?sslmode=prefer&sslrootcert=/etc/shadow",
                "sslrootcert",
                reads,
            ),
            (
                Postgres,
                "postgres://u@db.example.com/db?sslcert=/k.pem",
                "sslcert",
                reads,
            ),
            (
                Postgres,
                "postgres://u@db.example.com/db?sslkey=/k.pem",
                "sslkey",
                reads,
            ),
            (
                Postgres,
                "postgres://u@db.example.com/db?passfile=/root/.pgpass",
                "passfile",
                reads,
            ),
            (
                Postgres,
                "postgres://u@db.example.com/db?HOST=127.0.0.1",
                "HOST",
                moves,
            ),
            (
                Mysql,
                "mysql://u:p@db.example.com/db?socket=/run/mysqld/mysqld.sock",
                "socket",
                moves,
            ),
            (
                Mysql,
                "mariadb://u:p@db.example.com/db?ssl-ca=/etc/shadow",
                "ssl-ca",
                reads,
            ),
            (
                Mysql,
                "mysql://u:p@db.example.com/db?ssl-key=/k.pem",
                "ssl-key",
                reads,
            ),
            (
                Mysql,
                "mysql://u:p@db.example.com/db?host=127.0.0.1",
                "host",
                moves,
            ),
            (
                Sqlite,
                "sqlite:///data/x.db?vfs=unix-none",
                "vfs",
                "it chooses how SQLite opens files",
            ),
            (
                Redis,
                "redis://cache.example.com/0?host=127.0.0.1",
                "host",
                moves,
            ),
            (
                Redis,
                "redis://cache.example.com/?socket=/run/redis.sock",
                "socket",
                moves,
            ),
            (
                Nats,
                "nats://bus.example.com:4222?host=127.0.0.1",
                "host",
                moves,
            ),
            (
                Nats,
                "nats://a.example.com,nats://b.example.com?port=1",
                "port",
                moves,
            ),
        ];
        for (kind, url, param, why) in cases {
            assert_eq!(
                refused(kind, url),
                format!("query parameter {param:?} is not allowed: {why}"),
                "{url}"
            );
        }
    }

    #[test]
    fn each_scheme_takes_its_own_harmless_parameters() {
        let pg = Target::parse(
            Postgres,
            "postgres://u:p%40ss@DB.example.com:6543/shop?sslmode=disable&application_name=etl&options=-c%20search_path%3Dx\
             &options[statement_timeout]=5s&statement-cache-capacity=10&connect_timeout=3&user=v&dbname=other",
        )
        .unwrap();
        assert_eq!(
            pg.servers,
            [Server {
                host: "db.example.com".into(),
                port: 6543
            }]
        );
        assert_eq!(
            (
                pg.user.as_deref(),
                pg.password.as_deref(),
                pg.database.as_deref()
            ),
            (Some("v"), Some("p@ss"), Some("other"))
        );
        let keys: Vec<&str> = pg.params.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "sslmode",
                "application_name",
                "options",
                "options[statement_timeout]",
                "statement-cache-capacity"
            ]
        );
        assert!(!format!("{pg:?}").contains("p@ss"));
        let my = Target::parse(
            Mysql,
            "mariadb://root@[::1]/test?ssl-mode=PREFERRED&charset=utf8mb4&collation=utf8mb4_bin&timezone=%2B00:00",
        );
        let my = my.unwrap();
        assert_eq!(
            my.servers,
            [Server {
                host: "::1".into(),
                port: 3306
            }]
        );
        assert_eq!(my.params.len(), 4);
        let lite = Target::parse(
            Sqlite,
            "sqlite:///data/a%20b.db?mode=ro&cache=shared&immutable=1",
        )
        .unwrap();
        assert_eq!(
            (lite.file.as_deref(), lite.servers.len()),
            (Some("/data/a b.db"), 0)
        );
        assert_eq!(Target::parse(Sqlite, "sqlite::memory:").unwrap().file, None);
        assert_eq!(
            Target::parse(Sqlite, "sqlite://?mode=memory").unwrap().file,
            None
        );
        let redis = Target::parse(Redis, "redis://:secret@cache:7000/2?protocol=resp3").unwrap();
        assert_eq!(
            (
                redis.database.as_deref(),
                redis.password.as_deref(),
                redis.user
            ),
            (Some("2"), Some("secret"), None)
        );
        let nats = Target::parse(Nats, "nats://tok@a:4000,nats://b,c:5000").unwrap();
        let hosts: Vec<(&str, u16)> = nats
            .servers
            .iter()
            .map(|s| (s.host.as_str(), s.port))
            .collect();
        assert_eq!(hosts, [("a", 4000), ("b", 4222), ("c", 5000)]);
        assert_eq!(nats.user.as_deref(), Some("tok"));

        assert_eq!(
            refused(Postgres, "postgres://u@h/db?sslmode=verify-full"),
            "sslmode=verify-full verifies the server's certificate, which a step's connection cannot do yet: the driver \
             connects to the address the egress policy pinned, not to the name (use disable, allow, prefer, require)"
        );
        assert!(
            refused(Mysql, "mysql://u@h/db?ssl-mode=VERIFY_IDENTITY")
                .contains("use disabled, preferred, required")
        );
        assert!(Target::parse(Postgres, "postgres://u@h/db?sslmode=require").is_ok());
        assert!(Target::parse(Mysql, "mysql://u@h/db?ssl-mode=REQUIRED").is_ok());
        assert_eq!(
            refused(Postgres, "postgres://u@h/db?fallback_application_name=x"),
            "query parameter \"fallback_application_name\" is not allowed (a PostgreSQL URL takes: sslmode, ssl-mode, application_name, \
             options, options[NAME], statement-cache-capacity, dbname, user, password, connect_timeout)"
        );
        assert_eq!(
            refused(Nats, "nats://h?name=x"),
            "query parameter \"name\" is not allowed (a NATS URL takes: none)"
        );
        assert!(
            refused(Sqlite, "sqlite:///x.db?mode=w")
                .contains("\"mode\" must be one of ro, rw, rwc, memory")
        );
        assert!(refused(Redis, "redis://h/0?db=1").contains("(a Redis URL takes: protocol)"));
        assert!(
            refused(Postgres, "postgres://u@h/db?statement-cache-capacity=many")
                .contains("must be a number")
        );
    }

    #[test]
    fn sockets_hostless_urls_and_smuggling_hosts_are_refused() {
        for (kind, url) in [
            (Postgres, "postgres:///db"),
            (Postgres, "postgres:///db?host=/tmp"),
            (Redis, "redis+unix:///run/redis.sock"),
            (Redis, "unix:///run/redis.sock?db=1"),
            (Nats, "nats://"),
        ] {
            assert_eq!(refused(kind, url), NO_HOST, "{url}");
        }
        assert!(Target::parse(Mysql, "mysql://u:p@/db").is_err());
        for url in [
            "postgres://%2Ftmp/db",
            "postgres://u@%2Frun%2Fpostgresql:5432/db",
            "postgres://a%00b/db",
            "postgres://h%3Fhost=x/db",
        ] {
            assert_eq!(refused(Postgres, url), BAD_HOST, "{url}");
        }
        assert_eq!(refused(Mysql, "mysql://%2Ftmp%2Fmysqld.sock/db"), BAD_HOST);
        assert_eq!(
            refused(Redis, "rediss://cache/0"),
            "rediss:// is not available: this host's Redis client is built without TLS"
        );
        assert_eq!(
            refused(Redis, "redis://h/0#insecure"),
            "a URL fragment (#...) is not allowed"
        );
        assert_eq!(
            refused(Nats, "nats://a,tls://b"),
            "scheme \"tls\" is not allowed here (write nats://host:port)"
        );
        assert_eq!(refused(Nats, "nats://a/x"), "a NATS URL has no path");
        assert_eq!(
            refused(Redis, "redis://h/zero"),
            "the path of a Redis URL must be a database number"
        );
        assert_eq!(
            refused(Postgres, "postgres://u%00x@h/db"),
            "the user name holds a control character"
        );
        assert_eq!(
            refused(Postgres, "postgres://u:p%0A@h/db"),
            "the password holds a control character"
        );
        assert_eq!(
            refused(Postgres, "postgres://u@h/d%FFb"),
            "the database name is not valid UTF-8"
        );
        assert_eq!(
            refused(Postgres, "postgres://u@h:0/db"),
            "port 0 is not allowed"
        );
        assert_eq!(
            refused(Sqlite, "sqlite:data.db"),
            "a SQLite file must be an absolute path (sqlite:///dir/file.db)"
        );
        assert_eq!(
            refused(Sqlite, "sqlite://file:%2Fx.db"),
            "a SQLite file must be an absolute path (sqlite:///dir/file.db)"
        );
    }

    #[test]
    fn an_amqp_url_names_its_virtual_host_and_takes_only_timing_parameters() {
        let t = Target::parse(
            Amqp,
            "amqp://app:p%40ss@mq.example.com/orders%2Feu?heartbeat=30",
        )
        .unwrap();
        assert_eq!(
            t.servers,
            [Server {
                host: "mq.example.com".into(),
                port: 5672
            }]
        );
        assert_eq!(
            (t.user.as_deref(), t.password.as_deref()),
            (Some("app"), Some("p@ss"))
        );
        assert_eq!(t.database.as_deref(), Some("orders/eu"));
        assert_eq!(t.params, [("heartbeat".to_string(), "30".to_string())]);
        for default in ["amqp://h", "amqp://h/", "amqp://h/%2f", "amqp://h:5673/%2F"] {
            let t = Target::parse(Amqp, default).unwrap();
            assert_eq!(t.database.as_deref(), Some("/"), "{default}");
        }
        assert_eq!(
            refused(Amqp, "amqps://h"),
            "amqps:// is not available: this host's AMQP client is built without TLS"
        );
        assert!(refused(Amqp, "amqp://h?heartbeat=often").contains("must be a number"));
        assert_eq!(
            refused(Amqp, "amqp://h?auth_mechanism=external"),
            "query parameter \"auth_mechanism\" is not allowed (a AMQP URL takes: heartbeat, connection_timeout, channel_max, frame_max)"
        );
        assert_eq!(refused(Amqp, "amqp:///vhost"), NO_HOST);
        assert_eq!(
            super::super::ConnectionUrl::parse("amqp://${secrets.user}:${secrets.pw}@mq/v")
                .unwrap()
                .secrets,
            ["user", "pw"]
        );
    }

    #[test]
    fn an_mqtt_url_has_a_host_and_credentials_only() {
        let t = Target::parse(Mqtt, "mqtt://dev:p%40ss@broker.example.com").unwrap();
        assert_eq!(
            t.servers,
            [Server {
                host: "broker.example.com".into(),
                port: 1883
            }]
        );
        assert_eq!(
            (t.user.as_deref(), t.password.as_deref()),
            (Some("dev"), Some("p@ss"))
        );
        assert_eq!(refused(Mqtt, "mqtt://h/x"), "an MQTT URL has no path");
        assert_eq!(
            refused(Mqtt, "mqtts://h"),
            "mqtts:// is not available: this host's MQTT client is built without TLS"
        );
        assert_eq!(
            refused(Mqtt, "mqtt://h?clean=1"),
            "query parameter \"clean\" is not allowed (a MQTT URL takes: none)"
        );
    }

    #[test]
    fn percent_coding_round_trips() {
        assert_eq!(decode("a%2Fb%zz%4", "x").unwrap(), "a/b%zz%4");
        assert_eq!(encode("p@ss/w:rd é", b""), "p%40ss%2Fw%3Ard%20%C3%A9");
        assert_eq!(encode("/dir/a b.db", b"/"), "/dir/a%20b.db");
        assert_eq!(
            decode(&encode("p@ss/w:rd é", b""), "x").unwrap(),
            "p@ss/w:rd é"
        );
    }
}
