//! What an alert says on each kind of channel: the webhook's JSON document, a Slack
//! incoming webhook's blocks, and an e-mail with a plain-text and an HTML part (pipeline, run,
//! step, error and a link to the run).
use base64::Engine as _;
use serde_json::{Value, json};

use super::channel::EmailConfig;

use crate::store::alerts::AlertRow;

/// The webhook body of `alert` of `tenant`, `link` the run's URL.
pub fn webhook(alert: &AlertRow, tenant: &str, link: &str) -> Value {
    json!({
        "id": alert.id,
        "type": format!("alert.{}", alert.state),
        "state": alert.state,
        "incident": alert.incident_id,
        "rule": alert.rule,
        "rule_name": alert.rule_name,
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

/// The facts of `alert` an e-mail lists, as (label, text) pairs.
fn facts(alert: &AlertRow, tenant: &str, link: &str) -> Vec<(&'static str, String)> {
    let mut facts = vec![
        (
            "Pipeline",
            format!("{} (v{})", alert.pipeline, alert.version),
        ),
        ("Tenant", tenant.to_string()),
        ("Run", format!("{} {link}", alert.run_id)),
        ("Rule", format!("{} ({})", alert.rule, alert.severity)),
    ];
    if let Some(step) = &alert.step {
        facts.push(("Step", step.clone()));
    }
    if let Some(error) = &alert.error {
        facts.push(("Error", error.clone()));
    }
    facts
}

/// The whole e-mail (RFC 5322, MIME `multipart/alternative`) of `alert` of `tenant` to `mail`'s
/// recipients, as delivery `delivery`; `link` the run's URL.
pub fn email(
    alert: &AlertRow,
    tenant: &str,
    link: &str,
    mail: &EmailConfig,
    delivery: &str,
) -> Vec<u8> {
    let state = alert.state.to_uppercase();
    let subject = format!("[Autoflow] {state}: {}", alert.summary);
    let facts = facts(alert, tenant, link);
    let mut text = format!("{state}: {}\n\n", alert.summary);
    for (label, value) in &facts {
        text.push_str(&format!("{label}: {value}\n"));
    }
    text.push_str(&format!("\nOpen the run: {link}\n"));
    let mut html = format!(
        "<!doctype html><html><body><h2>{state}: {}</h2><table>",
        escape(&alert.summary)
    );
    for (label, value) in &facts {
        let value = if *label == "Run" {
            format!("<a href=\"{}\">{}</a>", escape(link), escape(&alert.run_id))
        } else if *label == "Error" {
            format!("<pre>{}</pre>", escape(value))
        } else {
            escape(value)
        };
        html.push_str(&format!(
            "<tr><th align=\"left\">{label}</th><td>{value}</td></tr>"
        ));
    }
    html.push_str(&format!(
        "</table><p><a href=\"{}\">Open the run</a></p></body></html>",
        escape(link)
    ));
    let boundary = format!("autoflow-{delivery}");
    let mut m = String::new();
    let mut header = |name: &str, value: &str| m.push_str(&format!("{name}: {value}\r\n"));
    header("From", &mail.from);
    header("To", &mail.to.join(", "));
    header("Subject", &encoded_word(&subject));
    header("Date", &chrono::Utc::now().to_rfc2822());
    header("Message-ID", &format!("<{delivery}.{}@autoflow>", alert.id));
    header("MIME-Version", "1.0");
    header("Autoflow-Alert", &alert.id);
    header("Autoflow-Delivery", delivery);
    header(
        "Content-Type",
        &format!("multipart/alternative; boundary=\"{boundary}\""),
    );
    m.push_str("\r\n");
    for (kind, body) in [("text/plain", text), ("text/html", html)] {
        m.push_str(&format!(
            "--{boundary}\r\nContent-Type: {kind}; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        ));
        m.push_str(&base64_lines(body.as_bytes()));
    }
    m.push_str(&format!("--{boundary}--\r\n"));
    m.into_bytes()
}

/// A header value as is when it is plain printable ASCII, else an RFC 2047 encoded word (a
/// line break in it can never start a header of its own).
fn encoded_word(value: &str) -> String {
    if value.chars().all(|c| c.is_ascii() && !c.is_ascii_control()) {
        value.to_string()
    } else {
        let b64 = base64::engine::general_purpose::STANDARD.encode(value.as_bytes());
        format!("=?utf-8?b?{b64}?=")
    }
}

/// `bytes` in base64, lines of 76 characters, each ending CRLF.
fn base64_lines(bytes: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
    let mut out = String::with_capacity(b64.len() + b64.len() / 38 + 2);
    for chunk in b64.as_bytes().chunks(76) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push_str("\r\n");
    }
    out
}

/// `text` safe inside HTML.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_with_a_line_break_or_non_ascii_is_one_encoded_word() {
        assert_eq!(encoded_word("run failed"), "run failed");
        let w = encoded_word("x\r\nBcc: eve@example.com");
        assert!(w.starts_with("=?utf-8?b?") && !w.contains('\n'), "{w}");
        assert!(encoded_word("déjà").starts_with("=?utf-8?b?"));
        assert_eq!(
            escape("<a href=\"x\">&</a>"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&lt;/a&gt;"
        );
        assert!(base64_lines(&[7u8; 200]).lines().all(|l| l.len() <= 76));
    }
}
