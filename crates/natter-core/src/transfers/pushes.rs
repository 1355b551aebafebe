//! The server's file pushes: a new offer is recorded (once), an answer or a cancel updates the
//! record and stops its worker. They reach the manager on their own channel, not through the
//! lossy event broadcast.

use std::sync::Arc;

use natter_proto::{validate, FileKind, RangeSet, ServerMessage, Target};

use super::Transfers;
use crate::store::TransferRecord;
use crate::transfer::{Direction, TransferInfo, TransferState};

impl Transfers {
    pub(super) async fn push(self: &Arc<Self>, push: ServerMessage) {
        let Ok(store) = self.local_store() else {
            return;
        };
        let result = match push {
            ServerMessage::FileOffered { offer } => {
                let name = validate::sanitize_file_name(&offer.name)
                    .unwrap_or_else(|_| format!("file-{}", offer.file_id));
                let record = TransferRecord {
                    info: TransferInfo {
                        file_id: offer.file_id,
                        direction: Direction::Down,
                        kind: FileKind::File,
                        chat: Target::User {
                            username: offer.from.clone(),
                        },
                        peer: offer.from,
                        name,
                        size: offer.size,
                        sha256: offer.sha256,
                        state: TransferState::Offered,
                        done: 0,
                        rate: 0,
                        path: None,
                        accepted: false,
                        error: None,
                        ts: offer.ts,
                    },
                    chunk_size: 0,
                    ranges: RangeSet::default(),
                    message: None,
                };
                match store.insert_transfer(&record).await {
                    Ok(true) => {
                        self.emit(&record.info);
                        Ok(())
                    }
                    Ok(false) => Ok(()),
                    Err(e) => Err(e.into()),
                }
            }
            ServerMessage::FileAnswered { file_id, accepted } => {
                match store.transfer(&file_id).await {
                    // The upload may have met the deleted transfer (`not_found` → cancelled)
                    // before this push arrived: a "no" is the truer ending.
                    Ok(Some(mut t))
                        if !t.info.state.is_final()
                            || (!accepted && t.info.state == TransferState::Cancelled) =>
                    {
                        t.info.accepted = accepted;
                        if !accepted {
                            self.stop(&file_id);
                            t.info.state = TransferState::Rejected;
                            t.info.rate = 0;
                        } else if t.info.state == TransferState::Uploaded {
                            t.info.state = TransferState::Done;
                        }
                        self.save(&store, &t).await
                    }
                    Ok(_) => Ok(()),
                    Err(e) => Err(e.into()),
                }
            }
            ServerMessage::FileCancelled { file_id } => match store.transfer(&file_id).await {
                // A sent file counts as done once accepted; the receiver may still give up on
                // the download, and the sender should hear it did not arrive.
                Ok(Some(mut t))
                    if !t.info.state.is_final()
                        || (t.info.direction == Direction::Up
                            && t.info.state == TransferState::Done) =>
                {
                    self.stop(&file_id);
                    self.cancelled(&store, &mut t).await
                }
                Ok(_) => Ok(()),
                Err(e) => Err(e.into()),
            },
            _ => Ok(()),
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "cannot record a file push");
        }
    }
}
