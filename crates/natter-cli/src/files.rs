//! Files from the command line: `send-file`, `send-image` (wait until the upload is done) and
//! `receive` (accept every offer into a directory, without overwriting).

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use natter_core::{Client, Direction, Event, TransferInfo, TransferState};
use natter_proto::{FileKind, Target};
use tokio::sync::broadcast;

use crate::chat::drain_outbox;
use crate::{on_events, Out};

type Events = broadcast::Receiver<Event>;

/// `send-file`: offers the file and waits until the server holds all of it.
pub(crate) async fn send_file(
    client: &Client,
    out: &Out,
    events: &mut Events,
    to: &str,
    path: &Path,
) -> Result<()> {
    let sent = client.send_file(to, path).await?;
    out.event(&Event::Transfer(sent.clone()));
    wait_transfer(out, events, &sent.file_id, |s| {
        matches!(s, TransferState::Uploaded | TransferState::Done)
    })
    .await?;
    drain_outbox(client).await;
    Ok(())
}

/// `send-image`: uploads the image and waits until its message can go.
pub(crate) async fn send_image(
    client: &Client,
    out: &Out,
    events: &mut Events,
    to: Target,
    path: &Path,
) -> Result<()> {
    let sent = client.send_image(to, path).await?;
    wait_transfer(out, events, &sent.file_id, |s| s == TransferState::Done).await?;
    drain_outbox(client).await;
    Ok(())
}

/// `receive`: accepts every file offered, now and for `for_secs`, into `dir`.
pub(crate) async fn receive(
    client: &Client,
    out: &Out,
    events: &mut Events,
    dir: &Path,
    for_secs: Option<u64>,
) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let accept = |t: &TransferInfo| {
        t.direction == Direction::Down
            && t.kind == FileKind::File
            && t.state == TransferState::Offered
    };
    for t in client.transfers().await? {
        if accept(&t) {
            client
                .accept_file(&t.file_id, &free_path(dir, &t.name))
                .await?;
        }
    }
    on_events(events, for_secs, async |event| {
        if let Event::Transfer(t) = event {
            out.event(&Event::Transfer(t.clone()));
            if accept(&t) {
                client
                    .accept_file(&t.file_id, &free_path(dir, &t.name))
                    .await?;
            }
        }
        Ok(())
    })
    .await
}

/// `dir/name`, or `dir/name (2)` … when that exists (names were sanitised by natter-core).
fn free_path(dir: &Path, name: &str) -> PathBuf {
    let first = dir.join(name);
    if !first.exists() {
        return first;
    }
    let (stem, ext) = match name.rsplit_once('.') {
        Some((s, e)) if !s.is_empty() => (s.to_owned(), format!(".{e}")),
        _ => (name.to_owned(), String::new()),
    };
    (2..)
        .map(|n| dir.join(format!("{stem} ({n}){ext}")))
        .find(|p| !p.exists())
        .unwrap_or(first)
}

/// Prints a transfer's progress until `done` says its state is the end (or it fails).
async fn wait_transfer(
    out: &Out,
    events: &mut tokio::sync::broadcast::Receiver<Event>,
    file_id: &str,
    done: impl Fn(TransferState) -> bool,
) -> Result<()> {
    loop {
        match events.recv().await {
            Ok(Event::Transfer(t)) if t.file_id == file_id => {
                out.event(&Event::Transfer(t.clone()));
                if done(t.state) {
                    return Ok(());
                }
                if t.state.is_final() {
                    bail!(
                        "the transfer ended {:?}: {}",
                        t.state,
                        t.error.unwrap_or_default()
                    );
                }
            }
            Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
            Err(_) => bail!("the client stopped"),
        }
    }
}
