//! The egress policy: where the host may connect on a plugin's behalf. Outbound HTTP (the
//! engine's `wasi:http`) and connections (SQL, NATS, Redis in [`crate::integrations`]) both ask
//! it: a name is resolved once, here; every address it resolves to must be public (loopback,
//! private, link-local, CGNAT, multicast, unspecified and reserved addresses are refused unless
//! the operator allowed that host or address with `--egress-allow-private`); the caller then
//! connects to the checked addresses, never to the name again.
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

mod address;

pub use address::{HostPattern, non_public, parse_patterns};

/// The operator's egress settings, shared by every step of a process.
#[derive(Debug, Clone, Default)]
pub struct EgressSettings {
    /// `host[:port]` entries (names or addresses) whose non-public addresses steps may reach
    /// (`--egress-allow-private`); a step must still list the host in its `allow_hosts`.
    pub allow_private: Vec<String>,
}

/// The policy of a process: the operator's allowances, parsed once; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    private: Arc<Vec<HostPattern>>,
}

/// Why a destination may not be reached.
#[derive(Debug)]
pub enum Denied {
    /// The name did not resolve in time.
    Timeout,
    /// The resolver failed.
    Lookup(std::io::Error),
    /// The name resolves to no address.
    NoAddress,
    /// An address is not public and the operator did not allow it: the reason, naming the
    /// address and the flag that would allow it.
    Refused(String),
}

impl Policy {
    /// The policy of `settings` (entries that do not parse allow nothing; the CLI refused
    /// them before).
    pub fn new(settings: &EgressSettings) -> Self {
        let (private, _) = parse_patterns(&settings.allow_private);
        Self {
            private: Arc::new(private),
        }
    }

    /// The addresses `host`:`port` resolves to (an address literal is itself), without
    /// repeats, once each was checked: the caller connects to these, never to the name again.
    pub async fn resolve(
        &self,
        host: &str,
        port: u16,
        timeout: Duration,
    ) -> Result<Vec<SocketAddr>, Denied> {
        let mut addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => tokio::time::timeout(timeout, tokio::net::lookup_host((host, port)))
                .await
                .map_err(|_| Denied::Timeout)?
                .map_err(Denied::Lookup)?
                .collect(),
        };
        let mut seen = std::collections::HashSet::new();
        addrs.retain(|a| seen.insert(*a));
        if addrs.is_empty() {
            return Err(Denied::NoAddress);
        }
        match self.refused(host, port, &addrs) {
            Some(why) => Err(Denied::Refused(why)),
            None => Ok(addrs),
        }
    }

    /// Why the host may not reach `addrs` (what `host`:`port` resolved to): the first
    /// non-public address the operator did not allow, by the name or the address. `None` when
    /// every address may be reached.
    pub fn refused(&self, host: &str, port: u16, addrs: &[SocketAddr]) -> Option<String> {
        let operator_named = self.private.iter().any(|p| p.matches(host, port));
        for addr in addrs {
            let Some(kind) = non_public(addr.ip()) else {
                continue;
            };
            let ip = addr.ip().to_canonical();
            let by_address = self
                .private
                .iter()
                .any(|p| p.matches(&ip.to_string(), port));
            if operator_named || by_address {
                continue;
            }
            let named = if ip.to_string() == host {
                String::new()
            } else {
                format!(" ({host})")
            };
            let article = if kind.starts_with(['a', 'e', 'i', 'o', 'u']) {
                "an"
            } else {
                "a"
            };
            return Some(format!(
                "{ip}{named} is {article} {kind} address; the operator can allow it with --egress-allow-private {}:{port}",
                host_for_flag(host)
            ));
        }
        None
    }
}

/// How an operator writes `host` in `--egress-allow-private`.
fn host_for_flag(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

/// The certificate roots outbound TLS trusts: the platform's (as `SSL_CERT_FILE` and the
/// system store give them), else the web PKI's when the platform has none; read once.
pub async fn tls_roots() -> std::sync::Arc<rustls::RootCertStore> {
    static ROOTS: tokio::sync::OnceCell<std::sync::Arc<rustls::RootCertStore>> =
        tokio::sync::OnceCell::const_new();
    ROOTS
        .get_or_init(|| async {
            let mut roots = rustls::RootCertStore::empty();
            if let Ok(Ok(native)) =
                tokio::task::spawn_blocking(rustls_native_certs::load_native_certs).await
            {
                roots.add_parsable_certificates(native);
            }
            if roots.is_empty() {
                roots.roots = webpki_roots::TLS_SERVER_ROOTS.into();
            }
            std::sync::Arc::new(roots)
        })
        .await
        .clone()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn a_non_public_address_is_refused_unless_the_operator_allows_it() {
        let closed = Policy::default();
        let t = Duration::from_secs(5);
        match closed.resolve("127.0.0.1", 80, t).await {
            Err(Denied::Refused(why)) => assert_eq!(
                why,
                "127.0.0.1 is a loopback address; the operator can allow it with --egress-allow-private 127.0.0.1:80"
            ),
            other => panic!("{other:?}"),
        }
        let by_name = Policy::new(&EgressSettings {
            allow_private: vec!["localhost".into()],
        });
        let addrs = by_name.resolve("localhost", 8080, t).await.unwrap();
        assert!(
            addrs
                .iter()
                .all(|a| a.port() == 8080 && a.ip().is_loopback())
        );
        let by_address = Policy::new(&EgressSettings {
            allow_private: vec!["10.0.0.1:5432".into()],
        });
        assert!(by_address.resolve("10.0.0.1", 5432, t).await.is_ok());
        assert!(matches!(
            by_address.resolve("10.0.0.1", 5433, t).await,
            Err(Denied::Refused(_))
        ));
        let v6 = closed.refused("::1", 443, &["[::1]:443".parse().unwrap()]);
        assert!(v6.unwrap().ends_with("--egress-allow-private [::1]:443"));
    }
}
