//! Request and response bodies of outbound HTTP, capped at [`MAX_HTTP_BODY_BYTES`]; the
//! response's also fails when the server goes quiet for too long.
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use wasmtime_wasi_http::WasiBody;
use wasmtime_wasi_http::p2::bindings::http::types::ErrorCode;

use super::{MAX_HTTP_BODY_BYTES, Refusals};

/// The guest's request body, failing past [`MAX_HTTP_BODY_BYTES`].
pub(super) struct CappedRequest {
    inner: WasiBody,
    sent: u64,
    log: Refusals,
    host: String,
}

impl CappedRequest {
    /// `inner`, going to `host`; overflows are written to `log`.
    pub(super) fn new(inner: WasiBody, log: Refusals, host: String) -> Self {
        Self {
            inner,
            sent: 0,
            log,
            host,
        }
    }
}

impl Body for CappedRequest {
    type Data = Bytes;
    type Error = ErrorCode;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ErrorCode>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.sent += data.len() as u64;
                    if this.sent > MAX_HTTP_BODY_BYTES {
                        this.log.warn(format!(
                            "egress: request body to \"{}\" exceeds the cap of {MAX_HTTP_BODY_BYTES} bytes",
                            this.host
                        ));
                        return Poll::Ready(Some(Err(ErrorCode::HttpRequestBodySize(Some(
                            this.sent,
                        )))));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                Poll::Ready(Some(Err(ErrorCode::InternalError(Some(e.to_string())))))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The response body, failing past [`MAX_HTTP_BODY_BYTES`] or when the server goes quiet.
pub(super) struct CappedResponse {
    inner: hyper::body::Incoming,
    read: u64,
    between: Duration,
    timer: Pin<Box<tokio::time::Sleep>>,
    log: Refusals,
    host: String,
}

impl CappedResponse {
    /// `inner`, from `host`, failing after `between` without data; overflows go to `log`.
    pub(super) fn new(
        inner: hyper::body::Incoming,
        between: Duration,
        log: Refusals,
        host: String,
    ) -> Self {
        let between = between.max(Duration::from_millis(1));
        Self {
            inner,
            read: 0,
            between,
            timer: Box::pin(tokio::time::sleep(between)),
            log,
            host,
        }
    }
}

impl Body for CappedResponse {
    type Data = Bytes;
    type Error = wasmtime_wasi_http::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, wasmtime_wasi_http::Error>>> {
        use wasmtime_wasi_http::Error as E;
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.read += data.len() as u64;
                    if this.read > MAX_HTTP_BODY_BYTES {
                        this.log.warn(format!(
                            "egress: response body from \"{}\" exceeds the cap of {MAX_HTTP_BODY_BYTES} bytes",
                            this.host
                        ));
                        return Poll::Ready(Some(Err(E::HttpResponseBodySize(Some(this.read)))));
                    }
                }
                let deadline = tokio::time::Instant::now() + this.between;
                this.timer.as_mut().reset(deadline);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) if e.is_timeout() => {
                Poll::Ready(Some(Err(E::HttpResponseTimeout)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(E::Hyper(e)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match this.timer.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(E::ConnectionReadTimeout))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
