//! The deadline of a request's body: a client that trickles its body (a byte a second, say)
//! holds a connection and a task only until the deadline, then gets 408 and the connection is
//! closed. The deadline is for the whole body, from when the request's headers arrived.
use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use futures::StreamExt;
use tokio::time::{Duration, Instant};

/// The error a body past its deadline yields; [`super::read_body`] answers it with 408.
#[derive(Debug, thiserror::Error)]
#[error("the request's body did not arrive within {} s", .0.as_secs())]
pub struct BodyTooSlow(pub Duration);

/// The deadline's error, if that is what `err` (a body's error, wrapped by axum as many times
/// as the body was) is.
pub fn too_slow<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a BodyTooSlow> {
    let mut cause = Some(err);
    while let Some(e) = cause {
        if let Some(slow) = e.downcast_ref::<BodyTooSlow>() {
            return Some(slow);
        }
        cause = e.source();
    }
    None
}

/// Gives the request's body a deadline `limit` from now.
pub async fn limit(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    let deadline = Instant::now() + limit;
    let request = request.map(|body| {
        let chunks = body.into_data_stream();
        Body::from_stream(futures::stream::unfold(
            Some(chunks),
            move |chunks| async move {
                let mut chunks = chunks?;
                match tokio::time::timeout_at(deadline, chunks.next()).await {
                    Ok(Some(Ok(chunk))) => Some((Ok(chunk), Some(chunks))),
                    Ok(Some(Err(e))) => Some((Err(axum::BoxError::from(e)), None)),
                    Ok(None) => None,
                    Err(_) => Some((Err(axum::BoxError::from(BodyTooSlow(limit))), None)),
                }
            },
        ))
    });
    next.run(request).await
}
