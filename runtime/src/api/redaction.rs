//! What the API shows of plugin data (step state and cursors, dead letters) is redacted as log
//! lines and reports are: every value of a secret the pipeline's steps are granted reads
//! `[secret]`. The data itself is kept as the plugin wrote it, and handed back so.
use super::{ApiError, ApiResult, AppState};
use crate::secrets::Redactor;
use crate::store::checkpoints::Checkpoint;
use crate::store::dead_letters::DeadLetterRow;

/// The redactor of `pipeline`: the values of the tenant's secrets its newest version names, in
/// its steps' `secrets:` grants and in its connections' URLs.
pub async fn of_pipeline(state: &AppState, tenant: &str, pipeline: &str) -> ApiResult<Redactor> {
    let Some(version) = state.store.version(tenant, pipeline, None).await? else {
        return Ok(Redactor::default());
    };
    let parsed = version.pipeline()?;
    let mut names: Vec<String> = parsed
        .steps
        .iter()
        .flat_map(|s| s.secrets.iter().cloned())
        .collect();
    names.extend(
        parsed
            .connections
            .values()
            .filter_map(|c| crate::integrations::ConnectionUrl::parse(&c.url).ok())
            .flat_map(|u| u.secrets),
    );
    names.sort();
    names.dedup();
    if names.is_empty() {
        return Ok(Redactor::default());
    }
    let sealed = state.store.sealed_secrets(tenant, &names).await?;
    let values = state
        .master_key
        .open_all(tenant, sealed)
        .map_err(ApiError::internal)?;
    Ok(Redactor::new(values.into_values()))
}

/// `c` as a viewer sees it: its cursor and state values redacted.
pub fn checkpoint(redactor: &Redactor, mut c: Checkpoint) -> Checkpoint {
    if redactor.is_empty() {
        return c;
    }
    c.cursor = c.cursor.map(|t| redactor.apply(&t));
    c.state
        .values_mut()
        .for_each(|v| *v = redactor.apply_bytes(v));
    c
}

/// `d` as a viewer sees it: its reason and its record's key, value and headers redacted.
pub fn dead_letter(redactor: &Redactor, mut d: DeadLetterRow) -> DeadLetterRow {
    if redactor.is_empty() {
        return d;
    }
    d.reason = redactor.apply(&d.reason);
    d.record.key = d.record.key.map(|k| redactor.apply_bytes(&k));
    d.record.value = redactor.apply_bytes(&d.record.value);
    d.record.headers = d
        .record
        .headers
        .into_iter()
        .map(|(k, v)| (redactor.apply(&k), redactor.apply(&v)))
        .collect();
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Record;

    #[test]
    fn plugin_data_shows_no_secret_value() {
        let r = Redactor::new(["hunter2".to_string()]);
        let c = Checkpoint {
            step: "s".into(),
            cursor: Some("at hunter2".into()),
            state: [("k".to_string(), b"\x00hunter2\xff".to_vec())].into(),
            ..Checkpoint::default()
        };
        let shown = checkpoint(&r, c);
        assert_eq!(shown.cursor.as_deref(), Some("at [secret]"));
        assert_eq!(shown.state["k"], b"\x00[secret]\xff");
        let d = DeadLetterRow {
            id: 1,
            run_id: "r".into(),
            attempt: 1,
            step: "s".into(),
            digest: "d".into(),
            reason: "refused hunter2".into(),
            record: Record {
                key: Some(b"hunter2".to_vec()),
                value: br#"{"token":"hunter2"}"#.to_vec(),
                headers: vec![("hunter2".into(), "x hunter2".into())],
                timestamp: None,
            },
            created_at: 0,
            replay_run: None,
        };
        let shown = serde_json::to_string(&dead_letter(&r, d)).unwrap();
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains(r#""value":{"token":"[secret]"}"#), "{shown}");
        assert!(shown.contains(r#""reason":"refused [secret]""#), "{shown}");
    }
}
