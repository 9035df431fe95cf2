//! Listings in pages: a route reads one row more than the page holds, answers the page as the
//! JSON array it always was, and names the cursor of the next page in the
//! [`NEXT_AFTER_HEADER`] when there are more.
use axum::Json;
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::wire::NEXT_AFTER_HEADER;

/// How many rows to read for a page of `limit`: one more, to know whether another page follows.
pub fn to_read(limit: i64) -> i64 {
    limit.saturating_add(1)
}

/// The answer of a page of at most `limit` of `rows` (read with [`to_read`]); `cursor` is the
/// value of a row that `?after=` takes.
pub fn page<T: Serialize>(mut rows: Vec<T>, limit: i64, cursor: impl Fn(&T) -> i64) -> Response {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next = rows.last().filter(|_| more).map(&cursor);
    let mut response = Json(rows).into_response();
    if let Some(next) = next
        && let Ok(value) = HeaderValue::from_str(&next.to_string())
    {
        response.headers_mut().insert(NEXT_AFTER_HEADER, value);
    }
    response
}
