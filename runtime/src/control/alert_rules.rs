//! A tenant's own alert rules ([`crate::store::alert_rules`]): a rule set through the API is
//! checked as a pipeline's are (its fields, and every channel it names exists), and the
//! pipelines it selects are names or prefixes ending in `*`.
use serde_json::Value;

use super::{ControlError, ControlResult, Core};
use crate::pipeline::{AlertRule, is_valid_name};
use crate::store::alert_rules::TenantRule;
use crate::store::audit::NewAudit;

/// The most pipelines (names or prefixes) one rule may select.
pub const MAX_SELECTED: usize = 100;

/// Sets the tenant's rule `name` from `doc` (an alert rule's fields, as in a pipeline's
/// `alerts:`, and `pipelines`: names or `prefix*`, default every pipeline), recording
/// `audit`; the rule set and whether one by that name existed before.
pub async fn put(
    core: &Core,
    tenant: &str,
    name: &str,
    mut doc: Value,
    audit: &NewAudit<'_>,
) -> ControlResult<(TenantRule, bool)> {
    if !is_valid_name(name) {
        return Err(ControlError::BadRequest(format!(
            "invalid rule name {name:?} (use a-z, 0-9, - and _, at most 63 characters)"
        )));
    }
    let selected = doc.as_object_mut().and_then(|o| o.remove("pipelines"));
    let pipelines = selection(selected)?;
    let rule: AlertRule = serde_path_to_error::deserialize(doc).map_err(|e| {
        let at = e.path().to_string();
        let at = if at == "." {
            String::new()
        } else {
            format!("{at}: ")
        };
        ControlError::Invalid(format!("{at}{}", e.into_inner()))
    })?;
    let problems: Vec<String> = rule
        .problems()
        .into_iter()
        .map(|(field, message)| format!("{field}: {message}"))
        .collect();
    if !problems.is_empty() {
        return Err(ControlError::Problems(problems));
    }
    super::pipelines::check_channels(core, tenant, std::slice::from_ref(&rule), |_| String::new())
        .await?;
    let now = crate::store::now_ms();
    let rule = TenantRule {
        name: name.to_string(),
        pipelines,
        rule,
        created_at: now,
        updated_at: now,
        updated_by: Some(audit.actor.to_string()),
    };
    Ok(core.store.put_alert_rule(tenant, &rule, audit).await?)
}

/// `pipelines` of a rule's body: absent is every pipeline; else a list of names, or prefixes
/// ending in `*`.
fn selection(value: Option<Value>) -> ControlResult<Vec<String>> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    let bad = |why: String| ControlError::Problems(vec![format!("pipelines: {why}")]);
    let Value::Array(items) = value else {
        return Err(bad(format!("{value} is not a list of pipeline names")));
    };
    if items.len() > MAX_SELECTED {
        return Err(bad(format!("at most {MAX_SELECTED}, got {}", items.len())));
    }
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let text = item.as_str().unwrap_or_default();
        let stem = text.strip_suffix('*').unwrap_or(text);
        let prefix_ok = text.ends_with('*') && (stem.is_empty() || is_valid_name(stem));
        if !(is_valid_name(text) || prefix_ok) {
            return Err(ControlError::Problems(vec![format!(
                "pipelines[{i}]: {item} is not a pipeline name or a prefix ending in *"
            )]));
        }
        out.push(text.to_string());
    }
    Ok(out)
}
