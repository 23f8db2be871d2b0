//! The RPC codec: CBOR messages behind a 4-byte length prefix
//! (`meshwork_protocol::wire::frame`). The length is checked before a byte
//! of the body is read, so an oversized or lying frame costs nothing and
//! fails with an error that says what happened.

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::request_response;
use libp2p::StreamProtocol;
use meshwork_protocol::wire::{frame, from_cbor, to_cbor, Request, Response};
use serde::{de::DeserializeOwned, Serialize};
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Codec of [`meshwork_protocol::wire::RPC_PROTOCOL`] with a message size limit.
#[derive(Clone, Debug)]
pub struct RpcCodec {
    max_message: usize,
    /// Inbound messages refused (shared by every connection's copy).
    /// libp2p does not report read errors of requests it never numbered,
    /// so the codec counts them itself.
    refused: Arc<AtomicU64>,
}

impl RpcCodec {
    /// A codec refusing messages larger than `max_message` bytes, both ways.
    pub fn new(max_message: usize) -> RpcCodec {
        RpcCodec { max_message, refused: Arc::default() }
    }

    /// Inbound messages refused so far (malformed, truncated, oversized).
    pub fn refused(&self) -> Arc<AtomicU64> {
        self.refused.clone()
    }

    async fn read_counted<T, M>(&self, io: &mut T) -> io::Result<M>
    where
        T: AsyncRead + Unpin + Send,
        M: DeserializeOwned,
    {
        let read = self.read(io).await;
        if let Err(e) = &read {
            self.refused.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(error = %e, "refused an RPC message");
        }
        read
    }

    async fn read<T, M>(&self, io: &mut T) -> io::Result<M>
    where
        T: AsyncRead + Unpin + Send,
        M: DeserializeOwned,
    {
        let mut header = [0u8; frame::HEADER_LEN];
        io.read_exact(&mut header).await?;
        let len = frame::body_len(header, self.max_message).map_err(invalid)?;
        let mut body = vec![0u8; len];
        io.read_exact(&mut body).await?;
        from_cbor(&body).map_err(invalid)
    }

    async fn write<T, M>(&self, io: &mut T, message: &M) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
        M: Serialize,
    {
        // Encode fully first: the future must be Send and the size known.
        let framed = frame::encode(&to_cbor(message), self.max_message).map_err(invalid)?;
        io.write_all(&framed).await?;
        io.flush().await
    }
}

fn invalid(e: impl std::error::Error + Send + Sync + 'static) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

impl request_response::Codec for RpcCodec {
    type Protocol = StreamProtocol;
    type Request = Request;
    type Response = Response;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Request>
    where
        T: AsyncRead + Unpin + Send,
    {
        self.read_counted(io).await
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Response>
    where
        T: AsyncRead + Unpin + Send,
    {
        self.read_counted(io).await
    }

    async fn write_request<T>(&mut self, _: &StreamProtocol, io: &mut T, req: Request) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        self.write(io, &req).await
    }

    async fn write_response<T>(&mut self, _: &StreamProtocol, io: &mut T, res: Response) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        self.write(io, &res).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::io::Cursor;
    use request_response::Codec;

    fn proto() -> StreamProtocol {
        StreamProtocol::new(meshwork_protocol::wire::RPC_PROTOCOL)
    }

    #[tokio::test]
    async fn round_trip() {
        let mut c = RpcCodec::new(1024);
        let mut buf = Cursor::new(Vec::new());
        c.write_request(&proto(), &mut buf, Request::Status).await.unwrap();
        buf.set_position(0);
        assert_eq!(c.read_request(&proto(), &mut buf).await.unwrap(), Request::Status);
    }

    #[tokio::test]
    async fn oversized_frames_are_refused_before_reading_the_body() {
        let mut c = RpcCodec::new(16);
        let mut buf = Cursor::new(vec![0x00, 0x10, 0x00, 0x00]);
        let err = c.read_request(&proto(), &mut buf).await.unwrap_err();
        assert_eq!(err.to_string(), "message of 1048576 bytes exceeds the limit of 16 bytes");
        let big = Request::Cancel(meshwork_protocol::wire::CancelRequest {
            job: meshwork_protocol::JobId(1),
            pieces: Some((0..100).collect()),
        });
        let err = c.write_request(&proto(), &mut Cursor::new(Vec::new()), big).await.unwrap_err();
        assert!(err.to_string().contains("exceeds the limit of 16 bytes"), "{err}");
    }

    #[tokio::test]
    async fn garbage_and_truncated_frames_are_errors() {
        let mut c = RpcCodec::new(1024);
        let mut garbage = Cursor::new(vec![0, 0, 0, 3, 0xff, 0xfe, 0xfd]);
        assert!(c.read_request(&proto(), &mut garbage).await.unwrap_err().to_string().contains("malformed CBOR"));
        let mut truncated = Cursor::new(vec![0, 0, 0, 9, 0xa0]);
        assert_eq!(c.read_request(&proto(), &mut truncated).await.unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
    }
}
