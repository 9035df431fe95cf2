//! A pipeline's triggers besides its schedule and the API (`triggers: [{ webhook: { secret:
//! NAME } }]`): a webhook trigger starts a run from `POST /v1/hooks/{tenant}/{pipeline}`
//! signed with the tenant's secret `NAME`.
use serde::{Deserialize, Serialize};

/// One trigger: exactly one kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerSpec {
    /// Runs started by signed requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<WebhookTrigger>,
}

/// A webhook trigger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookTrigger {
    /// The tenant's secret (`PUT /v1/secrets/{name}`) requests are signed with.
    pub secret: String,
}

impl TriggerSpec {
    /// The trigger's own problems, `(field, message)`, its field relative to the trigger.
    pub fn problems(&self) -> Vec<(String, String)> {
        match &self.webhook {
            None => vec![(String::new(), "a trigger needs a kind (webhook)".into())],
            Some(w) if !super::is_valid_secret_name(&w.secret) => vec![(
                ".webhook.secret".into(),
                format!(
                    "invalid secret name {:?} (use a-z, A-Z, 0-9, -, _ and .)",
                    w.secret
                ),
            )],
            Some(_) => Vec::new(),
        }
    }
}
