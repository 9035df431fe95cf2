//! A channel's configuration as `PUT /v1/channels/{name}` takes it and the store keeps it,
//! sealed: `{"type": "webhook", "url", "secret"?}` or `{"type": "slack", "url"}`.
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
}

/// What [`MasterKey::seal_bound`] seals channel configurations as.
const SEALED_KIND: &str = "channel";

impl ChannelConfig {
    /// `webhook` or `slack`.
    pub fn kind(&self) -> &'static str {
        match self {
            ChannelConfig::Webhook { .. } => "webhook",
            ChannelConfig::Slack { .. } => "slack",
        }
    }

    /// Its URL.
    pub fn url(&self) -> &str {
        match self {
            ChannelConfig::Webhook { url, .. } | ChannelConfig::Slack { url } => url,
        }
    }

    /// Where it posts, without the secrets a URL's path or query may hold: `scheme://host[:port]`;
    /// an error naming the problem when the URL is not an `http(s)` URL with a host.
    pub fn target(&self) -> Result<String, String> {
        let url = url::Url::parse(self.url()).map_err(|e| format!("url: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!(
                "url: the scheme must be http or https, not {:?}",
                url.scheme()
            ));
        }
        let host = url.host_str().ok_or("url: no host")?;
        Ok(match url.port() {
            Some(p) => format!("{}://{host}:{p}", url.scheme()),
            None => format!("{}://{host}", url.scheme()),
        })
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
}
