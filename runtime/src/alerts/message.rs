//! What an alert says on each kind of channel: the webhook's JSON document and a Slack
//! incoming webhook's blocks (pipeline, run, step, error and a link to the run).
use serde_json::{Value, json};

use crate::store::alerts::AlertRow;

/// The webhook body of `alert` of `tenant`, `link` the run's URL.
pub fn webhook(alert: &AlertRow, tenant: &str, link: &str) -> Value {
    json!({
        "id": alert.id,
        "type": format!("alert.{}", alert.state),
        "state": alert.state,
        "incident": alert.incident_id,
        "rule": alert.rule,
        "severity": alert.severity,
        "tenant": tenant,
        "pipeline": alert.pipeline,
        "version": alert.version,
        "run": { "id": alert.run_id, "url": link },
        "step": alert.step,
        "error": alert.error,
        "summary": alert.summary,
        "at": alert.created_at,
    })
}

/// The Slack incoming-webhook body of `alert`, `link` the run's URL.
pub fn slack(alert: &AlertRow, link: &str) -> Value {
    let icon = match alert.state.as_str() {
        "resolved" => ":white_check_mark:",
        "test" => ":bell:",
        _ => ":rotating_light:",
    };
    let mut fields = vec![
        json!({ "type": "mrkdwn", "text": format!("*Pipeline*\n{} (v{})", alert.pipeline, alert.version) }),
        json!({ "type": "mrkdwn", "text": format!("*Run*\n<{link}|{}>", alert.run_id) }),
        json!({ "type": "mrkdwn", "text": format!("*Rule*\n{} ({})", alert.rule, alert.severity) }),
    ];
    if let Some(step) = &alert.step {
        fields.push(json!({ "type": "mrkdwn", "text": format!("*Step*\n{step}") }));
    }
    let mut blocks = vec![
        json!({ "type": "header", "text": { "type": "plain_text", "text": format!("{} {}", alert.state.to_uppercase(), alert.summary) } }),
        json!({ "type": "section", "fields": fields }),
    ];
    if let Some(error) = &alert.error {
        blocks.push(json!({ "type": "section", "text": { "type": "mrkdwn", "text": format!("*Error*\n```{error}```") } }));
    }
    blocks.push(json!({ "type": "actions", "elements": [
        { "type": "button", "text": { "type": "plain_text", "text": "Open the run" }, "url": link }
    ] }));
    json!({ "text": format!("{icon} {}", alert.summary), "blocks": blocks })
}
