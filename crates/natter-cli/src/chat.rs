//! Sending text from the command line: wait for the server's answer (or say it is queued), and
//! give the outbox a moment before the process exits.

use std::time::Duration;

use anyhow::{bail, Result};
use natter_core::{Client, ConnectionState, Event, FailedMessage, SentMessage};
use natter_proto::Target;
use serde_json::json;

use crate::Out;

pub(crate) async fn send_and_wait(
    client: &Client,
    out: &Out,
    to: Target,
    text: &str,
) -> Result<()> {
    let mut events = client.events();
    let queued = client.send_text(to, text).await?;
    let wait = if client.connection_state() == ConnectionState::Online {
        10
    } else {
        0
    };
    let deadline = tokio::time::sleep(Duration::from_secs(wait));
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            _ = &mut deadline => {
                out.print(json!({"event": "queued", "client_msg_id": queued.client_msg_id}), || {
                    "-- queued: it will be sent when the server is reachable".to_owned()
                });
                return Ok(());
            }
            event = events.recv() => match event {
                Ok(e) => {
                    let (Event::Sent(SentMessage { client_msg_id, .. }) | Event::Failed(FailedMessage { client_msg_id, .. })) = &e else {
                        continue;
                    };
                    if *client_msg_id == queued.client_msg_id {
                        out.event(&e);
                        if matches!(e, Event::Failed(_)) {
                            bail!("the server refused the message");
                        }
                        return Ok(());
                    }
                }
                Err(_) => bail!("the client stopped"),
            }
        }
    }
}

/// Gives messages that a login just flushed from the outbox a moment to be stored by the server
/// before the process exits (they would go with the next run otherwise, never twice).
pub(crate) async fn drain_outbox(client: &Client) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while client.connection_state() == ConnectionState::Online
        && tokio::time::Instant::now() < deadline
    {
        match client.outbox_len().await {
            Ok(0) | Err(_) => return,
            Ok(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}
