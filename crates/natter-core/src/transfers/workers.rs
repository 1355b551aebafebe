//! One worker task per moving transfer: started on demand and after every login, parked while
//! offline, retried after transient errors, stopped by pause, cancel, logout and shutdown.

use std::sync::Arc;
use std::time::Duration;

use natter_proto::ErrorCode;
use tokio_util::sync::CancellationToken;

use super::{is_transient, Transfers};
use crate::transfer::{Direction, TransferState};
use crate::{ClientError, ConnectionState};

impl Transfers {
    /// Starts workers for every transfer that should be moving (after a login or reconnect).
    pub(crate) async fn resume_all(self: &Arc<Self>) {
        let Ok(store) = self.local_store() else {
            return;
        };
        match store.transfers().await {
            Ok(all) => {
                for t in all {
                    if matches!(
                        t.info.state,
                        TransferState::Uploading
                            | TransferState::Downloading
                            | TransferState::Uploaded
                    ) {
                        self.spawn(&t.info.file_id);
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot list transfers"),
        }
    }

    pub(super) fn spawn(self: &Arc<Self>, file_id: &str) {
        let cancel = CancellationToken::new();
        let generation = self
            .generation
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        {
            let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
            if running.contains_key(file_id) {
                return;
            }
            running.insert(file_id.to_owned(), (generation, cancel.clone()));
        }
        let this = self.clone();
        let file_id = file_id.to_owned();
        tokio::spawn(async move {
            tokio::select! {
                _ = cancel.cancelled() => {}
                _ = this.work(&file_id, &cancel) => {}
            }
            let mut running = this.running.lock().unwrap_or_else(|p| p.into_inner());
            if running.get(&file_id).is_some_and(|(g, _)| *g == generation) {
                running.remove(&file_id);
            }
        });
    }

    pub(super) fn stop(&self, file_id: &str) {
        if let Some((_, cancel)) = self
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(file_id)
        {
            cancel.cancel();
        }
    }

    /// Stops every worker (logout, shutdown); their transfers resume at the next login.
    pub(crate) fn stop_all(&self) {
        for (_, (_, cancel)) in self
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain()
        {
            cancel.cancel();
        }
    }

    pub(super) async fn wait_online(&self) {
        let mut state = self.state.clone();
        let _ = state.wait_for(|s| *s == ConnectionState::Online).await;
    }

    pub(super) async fn work(&self, file_id: &str, cancel: &CancellationToken) {
        let mut protocol_errors = 0;
        loop {
            self.wait_online().await;
            let Ok(store) = self.local_store() else {
                return;
            };
            let t = match store.transfer(file_id).await {
                Ok(Some(t)) => t,
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(error = %e, file_id, "cannot read a transfer");
                    return;
                }
            };
            let result = match (t.info.direction, t.info.state) {
                (Direction::Up, TransferState::Uploading | TransferState::Uploaded) => {
                    self.upload(&store, t, cancel).await
                }
                (Direction::Down, TransferState::Downloading) => {
                    self.download(&store, t, cancel).await
                }
                _ => return,
            };
            let error = match result {
                Ok(()) => return,
                Err(e) if is_transient(&e) => {
                    tracing::debug!(error = %e, file_id, "transfer interrupted; resuming");
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    continue;
                }
                Err(e @ ClientError::Protocol(_)) if protocol_errors < 3 => {
                    protocol_errors += 1;
                    tracing::warn!(error = %e, file_id, "transfer hiccup; resuming");
                    continue;
                }
                Err(e) => e,
            };
            let Ok(Some(mut t)) = store.transfer(file_id).await else {
                return;
            };
            t.info.rate = 0;
            if error.code() == Some(ErrorCode::NotFound) {
                // Cancelled, rejected or expired while we were away.
                let _ = self.cancelled(&store, &mut t).await;
            } else {
                tracing::warn!(error = %error, file_id, "transfer failed");
                self.failed(file_id, &error);
                t.info.state = TransferState::Failed;
                t.info.error = Some(error.to_string());
                let _ = self.save(&store, &t).await;
            }
            return;
        }
    }
}
