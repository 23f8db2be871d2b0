//! A guest's stdout and stderr: bytes in memory, at most a cap. A write past
//! the cap traps the guest. (wasmtime's `MemoryOutputPipe` instead reports a
//! closed stream once full, which a guest that ignores write errors answers
//! by writing again, for ever.)

use bytes::{Bytes, BytesMut};
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError, StreamResult};

/// An in-memory output of at most `cap` bytes (clones share it).
#[derive(Clone, Debug)]
pub(super) struct CappedPipe {
    cap: usize,
    buffer: Arc<Mutex<BytesMut>>,
}

impl CappedPipe {
    pub(super) fn new(cap: usize) -> CappedPipe {
        CappedPipe { cap, buffer: Arc::default() }
    }

    /// Everything written so far.
    pub(super) fn contents(&self) -> Vec<u8> {
        self.buffer.lock().expect("pipe lock").to_vec()
    }

    fn room(&self) -> usize {
        self.cap - self.buffer.lock().expect("pipe lock").len()
    }

    fn overflow(&self) -> StreamError {
        StreamError::trap(&format!("output over its {}-byte limit", self.cap))
    }
}

impl OutputStream for CappedPipe {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        let mut buffer = self.buffer.lock().expect("pipe lock");
        if bytes.len() > self.cap - buffer.len() {
            drop(buffer);
            return Err(self.overflow());
        }
        buffer.extend_from_slice(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        match self.room() {
            0 => Err(self.overflow()),
            room => Ok(room),
        }
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for CappedPipe {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for CappedPipe {
    fn poll_write(self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let mut buffer = self.buffer.lock().expect("pipe lock");
        if buf.len() > self.cap - buffer.len() {
            return Poll::Ready(Err(io::Error::other(format!("output over its {}-byte limit", self.cap))));
        }
        buffer.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl IsTerminal for CappedPipe {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CappedPipe {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}
