//! `POST /v1/hooks/{tenant}/{pipeline}`: a pipeline's webhook trigger. No bearer token: the
//! request is signed with the tenant's secret the trigger names (`Autoflow-Signature:
//! t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, as alert webhooks are signed). A
//! good signature queues a run of the newest version through the control layer's door (202
//! once committed), its body the run's input (a JSON document, an array of them or JSON
//! lines, fed to the pipeline's `trigger-source` step; a body that is none of these is 422);
//! a bad or missing signature is 401 and queues nothing. The signature covers the body only,
//! so the run's parameters take their defaults. `Autoflow-Delivery` (or
//! `Idempotency-Key`) names the delivery: a replay of it answers the first run and queues
//! nothing.
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::Response;

use super::{ApiError, ApiResult, ApiRouter, AppState, idempotency, read_body};
use crate::alerts::sign;
use crate::control::input;
use crate::control::runs::{self, Queue};
use crate::status::RunStatus;
use crate::wire::Queued;

/// The header naming a delivery (the sender's id for it, the same on its retries).
pub const DELIVERY_HEADER: &str = "autoflow-delivery";

/// The hook routes.
pub fn routes() -> ApiRouter {
    ApiRouter::new().post(
        "/v1/hooks/{tenant}/{pipeline}",
        None,
        "Webhook trigger: a request signed with the trigger's secret (Autoflow-Signature) queues a run; Autoflow-Delivery makes it idempotent",
        hook,
    )
}

fn unauthorized(why: impl Into<String>) -> ApiError {
    ApiError::Unauthorized(why.into())
}

async fn hook(
    State(state): State<AppState>,
    Path((tenant, pipeline)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let bytes = read_body(body, state.settings.max_pipeline_bytes).await?;
    let not_found = || {
        ApiError::NotFound(format!(
            "no webhook trigger of pipeline {pipeline:?} in tenant {tenant:?}"
        ))
    };
    let tenant_row = state
        .store
        .tenant_by_name(&tenant)
        .await?
        .ok_or_else(not_found)?;
    let tenant_id = tenant_row.id.as_str();
    let r = runs::runnable(&state, tenant_id, &pipeline, None)
        .await
        .map_err(|_| not_found())?;
    let secret = r
        .pipeline
        .triggers
        .iter()
        .find_map(|t| t.webhook.as_ref())
        .map(|w| w.secret.clone())
        .ok_or_else(not_found)?;
    let sealed = state
        .store
        .sealed_secrets(tenant_id, std::slice::from_ref(&secret))
        .await?;
    let values = state
        .master_key
        .open_all(tenant_id, sealed)
        .map_err(ApiError::internal)?;
    let value = values
        .get(&secret)
        .ok_or_else(|| unauthorized(format!("the trigger's secret {secret:?} is not set")))?;
    let signature = headers
        .get(sign::SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| unauthorized(format!("no {} header", sign::SIGNATURE_HEADER)))?;
    sign::verify(
        value.as_bytes(),
        signature,
        &bytes,
        crate::store::now_ms() / 1000,
    )
    .map_err(unauthorized)?;
    // The delivery id is the idempotency key; the request is the route and the pipeline (a
    // sender's retry may sign the same body at another time).
    let mut keyed = HeaderMap::new();
    if let Some(id) = headers
        .get(DELIVERY_HEADER)
        .or_else(|| headers.get(idempotency::KEY_HEADER))
    {
        let key = format!("hook:{}", String::from_utf8_lossy(id.as_bytes()));
        let value = HeaderValue::from_str(&key)
            .map_err(|_| ApiError::BadRequest("Autoflow-Delivery: printable ASCII".into()))?;
        keyed.insert(idempotency::KEY_HEADER, value);
    }
    // The body is the run's input: it must read as records before anything is queued.
    let records = input::records_of(&bytes).map_err(ApiError::Invalid)?;
    let sealed = input::seal(&state.master_key, tenant_id, &pipeline, &records)
        .map_err(ApiError::internal)?;
    let request = serde_json::json!({ "route": "hook", "pipeline": pipeline });
    idempotency::queue_once(
        &state,
        tenant_id,
        &keyed,
        &request,
        |run| answer(&run.id, &run.pipeline, run.version, run.status),
        async |key| {
            let q = Queue {
                tenant: tenant_id,
                created_by: "webhook",
                trigger: crate::status::Trigger::Webhook,
                replay: None,
                idempotency: key.map(idempotency::Key::stored),
                input: Some(&sealed),
                // The signature covers the body only: parameters take their defaults.
                params: None,
            };
            let id = runs::queue(&state, &r, q).await?;
            Ok(answer(&id, &pipeline, r.version.version, RunStatus::Queued))
        },
    )
    .await
}

fn answer(id: &str, pipeline: &str, version: i64, status: RunStatus) -> Queued {
    Queued {
        id: id.to_string(),
        pipeline: pipeline.to_string(),
        version,
        status,
    }
}
