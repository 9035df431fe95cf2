//! `Idempotency-Key` on the routes that queue a run (a trigger, a replay of dead letters). A
//! repeat of a request with the same key within 24 hours answers the run the first one queued
//! (202, the same body, `Idempotent-Replayed: true`) and queues nothing; the same key with
//! another request (another route, pipeline or body) is 422. The key is stored with the run, in
//! its transaction, unique per tenant: of simultaneous requests with one key, one queues the run
//! and the others, refused by the unique index, answer the winner's.
use axum::Json;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::{ApiError, ApiResult, AppState};
use crate::store::idempotency::Idempotency;
use crate::store::runs::RunRow;

/// The request header with the client's key.
pub const KEY_HEADER: &str = "idempotency-key";
/// The answer header that marks the answer of an earlier request with the key.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";
/// The longest key, in characters.
pub const MAX_KEY_LEN: usize = 255;

/// A request's key and the digest of what it asks.
#[derive(Debug, Clone)]
pub struct Key {
    key: String,
    request: String,
}

impl Key {
    /// The key as the store records it with the run.
    pub fn stored(&self) -> Idempotency<'_> {
        Idempotency {
            key: &self.key,
            request: &self.request,
        }
    }
}

/// The request's key, if it sent one (400 unless it is one header of 1 to [`MAX_KEY_LEN`]
/// printable ASCII characters), with the digest of `request`: the route, the pipeline and the
/// parsed body, which a repeat must match.
pub fn key(headers: &HeaderMap, request: &Value) -> ApiResult<Option<Key>> {
    let mut values = headers.get_all(KEY_HEADER).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(ApiError::BadRequest(
            "send one Idempotency-Key header".into(),
        ));
    }
    let bytes = value.as_bytes();
    if bytes.is_empty()
        || bytes.len() > MAX_KEY_LEN
        || !bytes.iter().all(|b| (b' '..=b'~').contains(b))
    {
        return Err(ApiError::BadRequest(format!(
            "Idempotency-Key: 1 to {MAX_KEY_LEN} printable ASCII characters"
        )));
    }
    let key = String::from_utf8_lossy(bytes).into_owned();
    let request = crate::registry::cache::digest_of(request.to_string().as_bytes());
    Ok(Some(Key { key, request }))
}

/// Answers a request that queues a run (`request`: what it asks, as for [`key`]) once per key:
/// a repeat answers the earlier request's run (`answer_of` it, 202, marked replayed) and
/// queues nothing; else `queue` runs with the key and its answer is 202, or, when it failed
/// because a simultaneous request with the key won, that request's run is answered.
pub async fn queue_once<A: serde::Serialize>(
    state: &AppState,
    tenant: &str,
    headers: &HeaderMap,
    request: &Value,
    answer_of: impl Fn(&RunRow) -> A,
    queue: impl AsyncFnOnce(Option<&Key>) -> ApiResult<A>,
) -> ApiResult<Response> {
    let key = key(headers, request)?;
    // Before anything else: a repeat finds the earlier request's effects done already.
    if let Some(key) = &key
        && let Some(run) = earlier(state, tenant, key).await?
    {
        return Ok(replayed(answer_of(&run)));
    }
    match queue(key.as_ref()).await {
        Ok(answer) => Ok((StatusCode::ACCEPTED, Json(answer)).into_response()),
        Err(e) => {
            let run = winner(state, tenant, key.as_ref(), e).await?;
            Ok(replayed(answer_of(&run)))
        }
    }
}

/// The run an earlier request with `key` queued: `None` if there is none within the window,
/// 422 if that request asked for something else.
async fn earlier(state: &AppState, tenant: &str, key: &Key) -> ApiResult<Option<RunRow>> {
    let Some(found) = state.store.keyed_run(tenant, &key.key).await? else {
        return Ok(None);
    };
    if found.request != key.request {
        return Err(ApiError::Invalid(
            "Idempotency-Key reused with a different request".into(),
        ));
    }
    let run = state.store.run(tenant, &found.run_id).await?;
    run.map(Some).ok_or_else(|| {
        ApiError::internal(format!(
            "run {} of an idempotency key is missing",
            found.run_id
        ))
    })
}

/// After queueing with `key` failed with `error`: the run of a simultaneous request with the
/// key that won (the unique index refused this one's), else `error`.
async fn winner(
    state: &AppState,
    tenant: &str,
    key: Option<&Key>,
    error: ApiError,
) -> ApiResult<RunRow> {
    if let Some(key) = key
        && let Some(run) = earlier(state, tenant, key).await?
    {
        tracing::debug!(
            "Idempotency-Key {:?}: a simultaneous request queued run {} ({error:?})",
            key.key,
            run.id
        );
        return Ok(run);
    }
    Err(error)
}

/// 202 with `body`, marked as the answer of an earlier request.
fn replayed(body: impl serde::Serialize) -> Response {
    (
        StatusCode::ACCEPTED,
        [(REPLAYED_HEADER, "true")],
        Json(body),
    )
        .into_response()
}
