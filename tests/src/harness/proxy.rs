//! A network path that can fail silently: a [`Proxy`] between a natter-core device and the
//! server, for the resilience scenarios.

use std::sync::Arc;

use anyhow::{Context, Result};
use natter_core::ServerAddr;
use natter_proto::ErrorCode;
use tokio::io::AsyncWriteExt;

/// A TCP relay between a client and the server. [`Proxy::blackhole`] makes the connections it
/// carries at that moment go silent — bytes in both directions vanish, yet neither side sees
/// a close — as when a phone walks out of Wi-Fi range. Later connections are relayed normally.
/// [`Proxy::fail_next_resume`] turns the server's next `login_ok` for a resumed session into an
/// error, as a server in trouble would answer.
pub struct Proxy {
    port: u16,
    generation: Arc<tokio::sync::watch::Sender<u64>>,
    fault: Arc<std::sync::Mutex<Option<ErrorCode>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Relays 127.0.0.1:<port> to `upstream`.
    pub async fn start(upstream: std::net::SocketAddr) -> Result<Proxy> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("while binding the proxy")?;
        let port = listener.local_addr()?.port();
        let (generation, _) = tokio::sync::watch::channel(0u64);
        let generation = Arc::new(generation);
        let fault = Arc::new(std::sync::Mutex::new(None));
        let shared = generation.clone();
        let shared_fault = fault.clone();
        let task = tokio::spawn(async move {
            let mut links = tokio::task::JoinSet::new();
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = tokio::net::TcpStream::connect(upstream).await else {
                    continue;
                };
                let born = *shared.borrow();
                let (client_rx, client_tx) = client.into_split();
                let (server_rx, server_tx) = server.into_split();
                links.spawn(relay_bytes(client_rx, server_tx, shared.subscribe(), born));
                links.spawn(relay_frames(
                    server_rx,
                    client_tx,
                    shared.subscribe(),
                    born,
                    shared_fault.clone(),
                ));
            }
        });
        Ok(Proxy {
            port,
            generation,
            fault,
            task,
        })
    }

    /// The port clients dial.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// natter-core's address for the proxy (plain TCP).
    pub fn server_addr(&self) -> ServerAddr {
        ServerAddr {
            host: "127.0.0.1".into(),
            port: self.port,
            tls: false,
        }
    }

    /// Every connection open now goes silent for good; new ones are relayed.
    pub fn blackhole(&self) {
        self.generation.send_modify(|g| *g += 1);
    }

    /// The next `login_ok` with `resumed: true` reaches the client as an `error` with `code`
    /// (same request id) instead; the server itself considers the session resumed.
    pub fn fail_next_resume(&self, code: ErrorCode) {
        *self.fault.lock().unwrap_or_else(|p| p.into_inner()) = Some(code);
    }

    /// Whether the armed fault has been used.
    pub fn fault_used(&self) -> bool {
        self.fault
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_none()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn relay_bytes(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    generation: tokio::sync::watch::Receiver<u64>,
    born: u64,
) {
    use tokio::io::AsyncReadExt;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if *generation.borrow() != born {
            continue; // Swallowed: the path is dead, but nobody is told.
        }
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    end_of_relay(to, generation, born).await
}

async fn relay_frames(
    from: tokio::net::tcp::OwnedReadHalf,
    to: tokio::net::tcp::OwnedWriteHalf,
    generation: tokio::sync::watch::Receiver<u64>,
    born: u64,
    fault: Arc<std::sync::Mutex<Option<ErrorCode>>>,
) {
    use futures::{SinkExt, StreamExt};
    use natter_proto::{decode_server, encode, Frame, FrameCodec, ServerMessage};
    let mut reader = tokio_util::codec::FramedRead::new(from, FrameCodec::default());
    let mut writer = tokio_util::codec::FramedWrite::new(to, FrameCodec::default());
    while let Some(Ok(mut frame)) = reader.next().await {
        if *generation.borrow() != born {
            continue;
        }
        if let Frame::Json(payload) = &frame {
            if let Ok(ServerMessage::LoginOk {
                id, resumed: true, ..
            }) = decode_server(payload)
            {
                let armed = fault.lock().unwrap_or_else(|p| p.into_inner()).take();
                if let Some(code) = armed {
                    frame = encode(&ServerMessage::error(
                        Some(&id),
                        code,
                        "injected by the test proxy",
                    ));
                }
            }
        }
        if writer.send(frame).await.is_err() {
            break;
        }
    }
    end_of_relay(writer.into_inner(), generation, born).await
}

async fn end_of_relay(
    mut to: tokio::net::tcp::OwnedWriteHalf,
    generation: tokio::sync::watch::Receiver<u64>,
    born: u64,
) {
    if *generation.borrow() == born {
        let _ = to.shutdown().await;
    } else {
        // A dead path never reports a close either.
        std::future::pending::<()>().await;
    }
}
