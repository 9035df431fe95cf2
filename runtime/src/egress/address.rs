//! Egress addresses: `host[:port]` allow-list patterns, and which addresses are not public
//! (loopback, private, link-local, CGNAT, ...), IPv4 forms inside IPv6 ones included.
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One `host[:port]` entry of an allow-list: a name (a leading `*.` matches any subdomain), an
/// IPv4 address or a bracketed IPv6 address; no port = any port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    host: String,
    port: Option<u16>,
}

impl HostPattern {
    /// Parses `host`, `*.host`, `1.2.3.4`, `[::1]`, each optionally with `:port`.
    pub fn parse(entry: &str) -> Option<Self> {
        let entry = entry.trim();
        let (host, port) = if let Some(rest) = entry.strip_prefix('[') {
            let (addr, after) = rest.split_once(']')?;
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':')?.parse().ok()?),
            };
            (addr.parse::<Ipv6Addr>().ok()?.to_string(), port)
        } else {
            match entry.rsplit_once(':') {
                Some((h, p)) => (h.to_ascii_lowercase(), Some(p.parse().ok()?)),
                None => (entry.to_ascii_lowercase(), None),
            }
        };
        if host.is_empty() || port == Some(0) {
            return None;
        }
        Some(Self { host, port })
    }

    /// Whether `host` (lower case; an IPv6 address without brackets) and `port` match.
    pub fn matches(&self, host: &str, port: u16) -> bool {
        if self.port.is_some_and(|p| p != port) {
            return false;
        }
        match self.host.strip_prefix("*.") {
            Some(domain) => {
                host.len() > domain.len() + 1 && host.ends_with(domain) && {
                    host.as_bytes()[host.len() - domain.len() - 1] == b'.'
                }
            }
            None => self.host == host,
        }
    }
}

/// Parses a list of `host[:port]` entries, skipping (and reporting) invalid ones.
pub fn parse_patterns(entries: &[String]) -> (Vec<HostPattern>, Vec<String>) {
    let mut ok = Vec::new();
    let mut bad = Vec::new();
    for e in entries.iter().map(|e| e.trim()).filter(|e| !e.is_empty()) {
        match HostPattern::parse(e) {
            Some(p) => ok.push(p),
            None => bad.push(e.to_string()),
        }
    }
    (ok, bad)
}

/// What kind of non-public address `ip` is, if it is one.
pub fn non_public(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => non_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return non_public_v4(v4);
            }
            let s = v6.segments();
            if v6.is_loopback() {
                Some("loopback")
            } else if v6.is_unspecified() {
                Some("unspecified")
            } else if s[0] & 0xfe00 == 0xfc00 || s[0] & 0xffc0 == 0xfec0 {
                Some("private")
            } else if s[0] & 0xffc0 == 0xfe80 {
                Some("link-local")
            } else if s[0] & 0xff00 == 0xff00 {
                Some("multicast")
            } else if s[0..6] == [0, 0, 0, 0, 0, 0] || (s[0] == 0x64 && s[1] == 0xff9b) {
                // IPv4-compatible (::a.b.c.d) and NAT64 (64:ff9b::a.b.c.d): judge the IPv4 inside.
                let v4 =
                    Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
                non_public_v4(v4)
            } else if s[0] == 0x2002 {
                // 6to4: 2002:AABB:CCDD::/48 carries the IPv4 address AA.BB.CC.DD.
                let v4 =
                    Ipv4Addr::new((s[1] >> 8) as u8, s[1] as u8, (s[2] >> 8) as u8, s[2] as u8);
                non_public_v4(v4)
            } else {
                None
            }
        }
    }
}

fn non_public_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let o = ip.octets();
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_private() {
        Some("private")
    } else if ip.is_link_local() {
        Some("link-local")
    } else if o[0] == 0 {
        Some("unspecified")
    } else if ip.is_broadcast() {
        Some("broadcast")
    } else if o[0] == 100 && o[1] & 0xc0 == 64 {
        Some("shared (CGNAT)")
    } else if ip.is_multicast() {
        Some("multicast")
    } else if o[0] >= 240
        || (o[0] == 192 && o[1] == 0 && o[2] == 0)
        || (o[0] == 198 && o[1] & 0xfe == 18)
    {
        Some("reserved")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn patterns_match_hosts_and_ports() {
        let p = HostPattern::parse("*.example.com").unwrap();
        assert!(p.matches("api.example.com", 443));
        assert!(p.matches("a.b.example.com", 80));
        assert!(!p.matches("example.com", 443));
        assert!(!p.matches("badexample.com", 443));
        let p = HostPattern::parse("API.example.com:8080").unwrap();
        assert!(p.matches("api.example.com", 8080));
        assert!(!p.matches("api.example.com", 80));
        let p = HostPattern::parse("[::1]:80").unwrap();
        assert!(p.matches("::1", 80));
        assert!(HostPattern::parse("a:0").is_none());
        assert!(HostPattern::parse("").is_none());
    }

    #[test]
    fn non_public_addresses_are_named() {
        let kind = |s: &str| non_public(s.parse().unwrap());
        assert_eq!(kind("127.0.0.1"), Some("loopback"));
        assert_eq!(kind("10.1.2.3"), Some("private"));
        assert_eq!(kind("172.16.0.1"), Some("private"));
        assert_eq!(kind("192.168.1.1"), Some("private"));
        assert_eq!(kind("169.254.169.254"), Some("link-local"));
        assert_eq!(kind("100.64.0.1"), Some("shared (CGNAT)"));
        assert_eq!(kind("0.0.0.0"), Some("unspecified"));
        assert_eq!(kind("255.255.255.255"), Some("broadcast"));
        assert_eq!(kind("::1"), Some("loopback"));
        assert_eq!(kind("fd00::1"), Some("private"));
        assert_eq!(kind("fe80::1"), Some("link-local"));
        assert_eq!(kind("::ffff:127.0.0.1"), Some("loopback"));
        assert_eq!(kind("::ffff:169.254.169.254"), Some("link-local"));
        assert_eq!(kind("64:ff9b::a00:1"), Some("private"));
        assert_eq!(kind("2002:7f00:1::"), Some("loopback"));
        assert_eq!(kind("93.184.216.34"), None);
        assert_eq!(kind("2606:4700::1"), None);
    }
}
