//! A guest's stdout and stderr, captured in memory: the last bytes are kept (a panic message or
//! traceback is at the end), anything older is dropped, and a guest can never block on it.
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// A bounded tail of what a guest wrote; cheap to clone (all clones share the buffer).
#[derive(Clone, Debug)]
pub struct Capture {
    tail: Arc<Mutex<Vec<u8>>>,
    keep: usize,
}

impl Capture {
    /// Keeps at most the last `keep` bytes written.
    pub fn new(keep: usize) -> Self {
        Self {
            tail: Arc::new(Mutex::new(Vec::new())),
            keep,
        }
    }

    fn push(&self, bytes: &[u8]) {
        let Ok(mut tail) = self.tail.lock() else {
            return;
        };
        tail.extend_from_slice(bytes);
        if tail.len() > self.keep.saturating_mul(2) {
            let cut = tail.len() - self.keep;
            tail.drain(..cut);
        }
    }

    /// Takes what was captured since the last call (at most the last `keep` bytes), as text.
    pub fn take(&self) -> String {
        let Ok(mut tail) = self.tail.lock() else {
            return String::new();
        };
        let start = tail.len().saturating_sub(self.keep);
        let text = String::from_utf8_lossy(&tail[start..]).into_owned();
        tail.clear();
        text
    }
}

impl IsTerminal for Capture {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for Capture {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for Capture {
    async fn ready(&mut self) {}
}

impl OutputStream for Capture {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }
    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }
    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

impl tokio::io::AsyncWrite for Capture {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.push(buf);
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
