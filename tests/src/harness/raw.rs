//! A raw socket for bad-input tests: the test writes whatever bytes it likes and reads back
//! frames, with no protocol logic in between.

use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use bytes::{Bytes, BytesMut};
use natter_proto::frame::frame_bytes;
use natter_proto::{
    decode_server, encode, ClientMessage, ErrorCode, Frame, FrameCodec, ServerMessage,
    PROTOCOL_VERSION,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::codec::Decoder;

use super::client::{open_transport, Transport, PUSH_TIMEOUT};
use super::replies::show;
use super::server::TestServer;

/// What came back on a raw socket.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)] // read one at a time, never stored in bulk
pub enum RawRead {
    /// A decoded message.
    Message(ServerMessage),
    /// The server closed the connection (or reset it).
    Closed,
}

/// A connection the test drives byte by byte.
pub struct RawSocket {
    stream: Box<dyn Transport>,
    buf: BytesMut,
    codec: FrameCodec,
    eof: bool,
    probes: u32,
}

impl RawSocket {
    /// Opens a plain TCP connection.
    pub async fn connect(server: &TestServer) -> Result<RawSocket> {
        let (stream, _control) = open_transport(server.plain_addr(), None).await?;
        Ok(Self::over(stream))
    }

    /// Opens a TLS connection that trusts exactly the server's certificate.
    pub async fn connect_tls(server: &TestServer) -> Result<RawSocket> {
        let (stream, _control) =
            open_transport(server.tls_addr()?, Some(server.cert_der()?)).await?;
        Ok(Self::over(stream))
    }

    fn over(stream: Box<dyn Transport>) -> RawSocket {
        RawSocket {
            stream,
            buf: BytesMut::with_capacity(8192),
            codec: FrameCodec::default(),
            eof: false,
            probes: 0,
        }
    }

    /// Writes bytes as they are.
    pub async fn send_bytes(&mut self, bytes: &[u8]) -> Result<()> {
        self.stream
            .write_all(bytes)
            .await
            .context("while writing raw bytes")?;
        self.stream
            .flush()
            .await
            .context("while flushing raw bytes")
    }

    /// Writes a JSON frame with this payload (any bytes, valid or not).
    pub async fn send_payload(&mut self, payload: &[u8]) -> Result<()> {
        let frame = Frame::Json(Bytes::copy_from_slice(payload));
        self.send_bytes(&frame_bytes(&frame)).await
    }

    /// Writes a binary frame with this payload.
    pub async fn send_binary(&mut self, payload: &[u8]) -> Result<()> {
        let frame = Frame::Binary(Bytes::copy_from_slice(payload));
        self.send_bytes(&frame_bytes(&frame)).await
    }

    /// Writes a well-formed message.
    pub async fn send(&mut self, message: &ClientMessage) -> Result<()> {
        self.send_bytes(&frame_bytes(&encode(message))).await
    }

    /// Sends `hello` and expects `hello_ok`.
    pub async fn hello(&mut self) -> Result<()> {
        self.send(&ClientMessage::Hello {
            id: "hello".into(),
            version: PROTOCOL_VERSION,
            client: "natter-e2e raw".into(),
            presence: Default::default(),
        })
        .await?;
        match self.expect_message().await? {
            ServerMessage::HelloOk { id, .. } if id == "hello" => Ok(()),
            other => bail!("expected hello_ok, got {}", show(&other)),
        }
    }

    /// Closes the writing half (TCP FIN); the server sees end of stream.
    pub async fn shutdown_write(&mut self) -> Result<()> {
        self.stream
            .shutdown()
            .await
            .context("while shutting down the write half")
    }

    /// Reads the next frame or the end of the connection, at most `timeout`.
    pub async fn read(&mut self, timeout: Duration) -> Result<RawRead> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match self.codec.decode(&mut self.buf) {
                Ok(Some(Frame::Json(payload))) => {
                    let message = decode_server(&payload).map_err(|e| {
                        anyhow!(
                            "the server sent a frame the protocol cannot decode: {e}: {}",
                            String::from_utf8_lossy(&payload)
                        )
                    })?;
                    return Ok(RawRead::Message(message));
                }
                Ok(Some(Frame::Binary(b))) => {
                    bail!(
                        "the server sent an unannounced binary frame of {} bytes",
                        b.len()
                    )
                }
                Ok(None) => {}
                Err(e) => bail!("the server sent a malformed frame: {e}"),
            }
            if self.eof {
                if !self.buf.is_empty() {
                    bail!(
                        "the server closed the connection in the middle of a frame ({} bytes)",
                        self.buf.len()
                    );
                }
                return Ok(RawRead::Closed);
            }
            let read = tokio::time::timeout_at(deadline, self.stream.read_buf(&mut self.buf)).await;
            match read {
                Err(_) => bail!("nothing from the server within {timeout:?}"),
                Ok(Ok(0)) => self.eof = true,
                Ok(Ok(_)) => {}
                Ok(Err(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::ConnectionReset
                            | std::io::ErrorKind::ConnectionAborted
                            | std::io::ErrorKind::BrokenPipe
                            | std::io::ErrorKind::UnexpectedEof
                    ) =>
                {
                    self.eof = true;
                    self.buf.clear();
                }
                Ok(Err(e)) => return Err(e).context("while reading from the server"),
            }
        }
    }

    /// The next message that is not a server heartbeat; fails if the connection closes.
    pub async fn expect_message(&mut self) -> Result<ServerMessage> {
        loop {
            match self.read(PUSH_TIMEOUT).await? {
                RawRead::Message(ServerMessage::Heartbeat { .. }) => continue,
                RawRead::Message(message) => return Ok(message),
                RawRead::Closed => bail!("the server closed the connection instead of answering"),
            }
        }
    }

    /// The next message must be an `error` with `code`; returns its echoed id.
    pub async fn expect_error(&mut self, code: ErrorCode) -> Result<Option<String>> {
        match self.expect_message().await? {
            ServerMessage::Error {
                id, code: actual, ..
            } if actual == code => Ok(id),
            other => bail!("expected error `{code}`, got {}", show(&other)),
        }
    }

    /// Reads until the server closes the connection; returns what came before the close
    /// (heartbeats left out). Fails if the connection is still open after `timeout`.
    pub async fn expect_closed(&mut self, timeout: Duration) -> Result<Vec<ServerMessage>> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut before = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.read(left).await {
                Ok(RawRead::Closed) => return Ok(before),
                Ok(RawRead::Message(ServerMessage::Heartbeat { .. })) => {}
                Ok(RawRead::Message(message)) => before.push(message),
                Err(e) => {
                    let seen: Vec<String> = before.iter().map(show).collect();
                    return Err(e.context(format!(
                        "expected the server to close the connection (received before: {seen:?})"
                    )));
                }
            }
        }
    }

    /// Asserts the connection is still served: a `list_online` request gets a reply (its
    /// result or `not_authenticated`, depending on the state). `list_online` is only counted
    /// by the 1000-request bucket, so checking often never trips a rate limit.
    pub async fn assert_still_open(&mut self) -> Result<()> {
        self.probes += 1;
        let id = format!("still-open-{}", self.probes);
        self.send(&ClientMessage::ListOnline { id: id.clone() })
            .await?;
        match self.expect_message().await? {
            reply if reply.reply_id() == Some(id.as_str()) => match reply {
                ServerMessage::Error {
                    code: ErrorCode::RateLimited,
                    ..
                } => bail!("the probe {id} was rate limited: {}", show(&reply)),
                _ => Ok(()),
            },
            other => bail!("expected the reply to {id}, got {}", show(&other)),
        }
    }
}
