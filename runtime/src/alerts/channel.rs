//! A channel's configuration as `PUT /v1/channels/{name}` takes it and the store keeps it,
//! sealed: `{"type": "webhook", "url", "secret"?}`, `{"type": "slack", "url"}`, or
//! `{"type": "email", "host", "port"?, "tls"?, "username"?, "password"?, "from", "to", "ca_cert"?}`.
use serde::{Deserialize, Serialize};

use crate::secrets::MasterKey;

/// What a channel is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum ChannelConfig {
    /// A generic webhook: a signed JSON POST.
    Webhook {
        /// `http(s)://...`.
        url: String,
        /// The signing secret (made up by the server when not given).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        secret: Option<String>,
    },
    /// A Slack-compatible incoming webhook: a POST of blocks.
    Slack {
        /// The incoming webhook's URL (itself a secret).
        url: String,
    },
    /// E-mail through an SMTP server (a plain-text and an HTML part).
    Email(EmailConfig),
}

/// Where and how an e-mail channel sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// The SMTP server's name or address.
    pub host: String,
    /// Its port (default: 587 with `starttls`, 465 with `tls`, 25 with `none`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// How the connection is encrypted (default `starttls`).
    #[serde(default)]
    pub tls: SmtpTls,
    /// The user to authenticate as (AUTH PLAIN or LOGIN); none: no authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// That user's password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// The sender's address.
    pub from: String,
    /// The recipients' addresses.
    pub to: Vec<String>,
    /// A PEM CA certificate trusted for this server besides the system's roots (a private CA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_cert: Option<String>,
}

/// How an SMTP connection is encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain at first, then `STARTTLS` (refused if the server does not offer it).
    #[default]
    Starttls,
    /// TLS from the first byte (SMTPS).
    Tls,
    /// No encryption (a relay on a trusted network; no authentication then).
    None,
}

impl EmailConfig {
    /// The port it connects to.
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(match self.tls {
            SmtpTls::Starttls => 587,
            SmtpTls::Tls => 465,
            SmtpTls::None => 25,
        })
    }

    /// What is wrong with it, naming the field.
    fn problem(&self) -> Option<String> {
        if self.host.is_empty() || self.host.contains(['/', ' ', '@']) {
            return Some(format!(
                "host: {:?} is not a host name or address",
                self.host
            ));
        }
        if let Some(why) = address_problem(&self.from) {
            return Some(format!("from: {why}"));
        }
        if self.to.is_empty() {
            return Some("to: needs at least one address".into());
        }
        for (i, to) in self.to.iter().enumerate() {
            if let Some(why) = address_problem(to) {
                return Some(format!("to[{i}]: {why}"));
            }
        }
        match (&self.username, &self.password) {
            (None, Some(_)) => return Some("password: given without a username".into()),
            (Some(_), None) => return Some("password: needed with a username".into()),
            (Some(_), Some(_)) if self.tls == SmtpTls::None => {
                return Some("tls: a password is not sent unencrypted; use starttls or tls".into());
            }
            _ => {}
        }
        if let Some(pem) = &self.ca_cert
            && crate::alerts::smtp::certificates(pem).is_err()
        {
            return Some("ca_cert: not a PEM certificate".into());
        }
        None
    }
}

/// Why `a` is not a bare e-mail address (`local@domain`, no spaces, brackets or line breaks).
fn address_problem(a: &str) -> Option<String> {
    let bad = a
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || "<>,;\"".contains(c));
    match a.split_once('@') {
        Some((local, domain))
            if !bad && !local.is_empty() && !domain.is_empty() && !domain.contains('@') =>
        {
            None
        }
        _ => Some(format!("{a:?} is not an e-mail address (local@domain)")),
    }
}

/// What [`MasterKey::seal_bound`] seals channel configurations as.
const SEALED_KIND: &str = "channel";

impl ChannelConfig {
    /// `webhook`, `slack` or `email`.
    pub fn kind(&self) -> &'static str {
        match self {
            ChannelConfig::Webhook { .. } => "webhook",
            ChannelConfig::Slack { .. } => "slack",
            ChannelConfig::Email(_) => "email",
        }
    }

    /// Where it sends, without the secrets a URL's path or query may hold:
    /// `scheme://host[:port]` (`smtp://host:port` for e-mail); an error naming the field when
    /// the configuration is not one that can be sent to.
    pub fn target(&self) -> Result<String, String> {
        let (scheme, host, port) = self.endpoint()?;
        Ok(match port {
            Some(p) => format!("{scheme}://{host}:{p}"),
            None => format!("{scheme}://{host}"),
        })
    }

    /// The host and port a delivery connects to (whose addresses the egress policy checks).
    pub fn address(&self) -> Result<(String, u16), String> {
        let (scheme, host, port) = self.endpoint()?;
        let port = port.unwrap_or(if scheme == "https" { 443 } else { 80 });
        Ok((
            host.trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            port,
        ))
    }

    /// The scheme, host and explicit port of where it sends.
    fn endpoint(&self) -> Result<(&'static str, String, Option<u16>), String> {
        let url = match self {
            ChannelConfig::Webhook { url, .. } | ChannelConfig::Slack { url } => url,
            ChannelConfig::Email(mail) => {
                if let Some(why) = mail.problem() {
                    return Err(why);
                }
                return Ok(("smtp", mail.host.clone(), Some(mail.port())));
            }
        };
        let url = url::Url::parse(url).map_err(|e| format!("url: {e}"))?;
        let scheme = match url.scheme() {
            "http" => "http",
            "https" => "https",
            other => {
                return Err(format!(
                    "url: the scheme must be http or https, not {other:?}"
                ));
            }
        };
        let host = url.host_str().ok_or("url: no host")?;
        Ok((scheme, host.to_string(), url.port()))
    }

    /// Sealed for channel `name` of `tenant`.
    pub fn seal(&self, key: &MasterKey, tenant: &str, name: &str) -> anyhow::Result<Vec<u8>> {
        let plain = serde_json::to_vec(self)?;
        key.seal_bound(SEALED_KIND, &[tenant, name], &plain)
    }

    /// Opens what [`ChannelConfig::seal`] sealed.
    pub fn open(key: &MasterKey, tenant: &str, name: &str, sealed: &[u8]) -> Result<Self, String> {
        let plain = key
            .open_bound(SEALED_KIND, &[tenant, name], sealed)
            .ok_or_else(|| {
                format!("channel {name:?} does not open with this server's master key")
            })?;
        serde_json::from_slice(&plain).map_err(|e| format!("channel {name:?}: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_read_by_type_and_refuse_unknown_fields() {
        let w: ChannelConfig =
            serde_json::from_str(r#"{"type":"webhook","url":"https://h:8443/x?k=1","secret":"s"}"#)
                .unwrap();
        assert_eq!(w.target().unwrap(), "https://h:8443");
        let s: ChannelConfig =
            serde_json::from_str(r#"{"type":"slack","url":"https://hooks.slack.com/T/B/X"}"#)
                .unwrap();
        assert_eq!(s.target().unwrap(), "https://hooks.slack.com");
        assert!(
            serde_json::from_str::<ChannelConfig>(r#"{"type":"slack","url":"x","secret":"s"}"#)
                .is_err()
        );
        assert!(serde_json::from_str::<ChannelConfig>(r#"{"type":"pager","url":"x"}"#).is_err());
        let ftp: ChannelConfig =
            serde_json::from_str(r#"{"type":"slack","url":"ftp://h/x"}"#).unwrap();
        assert!(ftp.target().is_err());
    }

    #[test]
    fn email_configs_name_the_field_that_is_wrong() {
        let mail = |extra: &str| {
            let mut c: serde_json::Value = serde_json::from_str(
                r#"{"type":"email","host":"mail.example.com","from":"a@example.com","to":["b@example.com"]}"#,
            )
            .unwrap();
            if !extra.is_empty() {
                let more: serde_json::Value =
                    serde_json::from_str(&format!("{{{}}}", &extra[1..])).unwrap();
                for (k, v) in more.as_object().unwrap() {
                    c[k] = v.clone();
                }
            }
            serde_json::from_value::<ChannelConfig>(c).unwrap()
        };
        assert_eq!(mail("").target().unwrap(), "smtp://mail.example.com:587");
        assert_eq!(
            mail(r#","tls":"tls""#).address().unwrap(),
            ("mail.example.com".to_string(), 465)
        );
        let problem = |extra: &str| mail(extra).target().unwrap_err();
        assert!(problem(r#","to":[]"#).starts_with("to: needs"));
        assert!(problem(r#","to":["ok@x.y","Bob <b@x.y>"]"#).starts_with("to[1]: "));
        assert!(problem(r#","from":"nobody""#).starts_with("from: "));
        assert!(problem(r#","password":"p""#).starts_with("password: given without"));
        assert!(problem(r#","username":"u","password":"p","tls":"none""#).starts_with("tls: "));
        assert!(problem(r#","ca_cert":"not pem""#).starts_with("ca_cert: "));
        assert!(
            serde_json::from_str::<ChannelConfig>(
                r#"{"type":"email","host":"h","from":"a@b","to":["c@d"],"url":"x"}"#
            )
            .is_err()
        );
    }
}
