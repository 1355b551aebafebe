//! The UDP relay (PROTOCOL.md §5.8 "Media path"): one task, one socket, one receive buffer.
//! Each datagram is judged by [`Calls::on_datagram`]; a valid bind gets its `bind_ack`, valid
//! audio goes on unchanged to the other participant, everything else is dropped without an
//! answer (an answer would tell a scanner the port is alive, or reflect traffic at a victim).
//! Nothing is allocated per packet and nothing is kept per sender, so a flood of bogus
//! datagrams costs a decode each and no memory.

use std::io::ErrorKind;
use std::sync::Arc;
use std::time::{Duration, Instant};

use natter_proto::media::{Packet, BIND_LEN, MAX_PACKET};
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

use super::{Calls, Verdict};

/// Receives and answers datagrams until `cancel` fires.
pub async fn serve(socket: UdpSocket, calls: Arc<Calls>, cancel: CancellationToken) {
    // One byte over the largest packet: a longer datagram arrives truncated to this size and is
    // refused as too long, instead of passing as a shorter, valid-looking one.
    let mut buf = vec![0u8; MAX_PACKET + 1];
    let mut ack = Vec::with_capacity(BIND_LEN);
    loop {
        let received = tokio::select! {
            _ = cancel.cancelled() => break,
            received = socket.recv_from(&mut buf) => received,
        };
        let (len, from) = match received {
            Ok(pair) => pair,
            // Some systems (Windows) report an ICMP "port unreachable" for an earlier send as
            // an error on the next receive; it concerns that one peer, not the socket.
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::ConnectionReset | ErrorKind::ConnectionRefused
                ) =>
            {
                continue
            }
            Err(e) => {
                tracing::warn!(error = %e, "relay receive failed");
                // Do not spin on an error that repeats.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let sent = match calls.on_datagram(&buf[..len], from, Instant::now()) {
            Verdict::Drop => continue,
            Verdict::Ack { role, token } => {
                ack.clear();
                Packet::BindAck { role, token }.encode(&mut ack);
                socket.send_to(&ack, from).await
            }
            Verdict::Forward(to) => socket.send_to(&buf[..len], to).await,
        };
        if let Err(e) = sent {
            // UDP is lossy anyway; the peer's next packet tries again.
            tracing::debug!(error = %e, "relay send failed");
        }
    }
}
