//! Messages: sending (stored first, then the outbox), retrying, local and merged history pages,
//! the window around a search hit, and search. Every page size goes through [`page_limit`].

use natter_proto::{validate, MessageBody, MsgId, ServerMessage, Target};
use serde::Serialize;

use super::{unexpected, Client};
use crate::engine::request_id as id;
use crate::{now_ms, store, ClientError, ClientMessage, LocalMessage, SearchHit, Unread};

/// Most messages (or search hits) one local page holds.
pub const MAX_PAGE: u32 = 500;

/// Most messages one server `history` page holds (the protocol allows 1–200).
pub const MAX_SERVER_PAGE: u32 = 200;

/// The page size actually used for a requested `limit`: at least one, at most `max`.
fn page_limit(limit: u32, max: u32) -> u32 {
    limit.clamp(1, max)
}

/// Messages around a search hit, for jumping to it.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct HistoryWindow {
    /// The hit and the messages before it, oldest first.
    pub older: Vec<LocalMessage>,
    /// Messages after the hit, oldest first.
    pub newer: Vec<LocalMessage>,
}

impl Client {
    /// Queues a text message. It is in local history and the outbox when this returns, and is
    /// sent now or as soon as the connection is back — also after an app restart.
    pub async fn send_text(&self, to: Target, text: &str) -> Result<LocalMessage, ClientError> {
        validate::text_body(text)?;
        let store = self.local_store()?;
        let entry = store::OutboxEntry {
            client_msg_id: id(),
            to,
            body: MessageBody::Text {
                text: text.to_owned(),
            },
        };
        let message = store.enqueue(&entry, now_ms()).await?;
        self.flush_outbox().await;
        Ok(message)
    }

    /// How many messages wait in the outbox (sent once the server has stored them).
    pub async fn outbox_len(&self) -> Result<usize, ClientError> {
        Ok(self.local_store()?.outbox().await?.len())
    }

    /// Sends a failed message again.
    pub async fn retry(&self, client_msg_id: &str) -> Result<(), ClientError> {
        let store = self.local_store()?;
        store.retry(client_msg_id, now_ms()).await?;
        self.flush_outbox().await;
        Ok(())
    }

    /// Searches local history across every conversation, newest first; Chinese and English,
    /// terms of any length, case- and accent-insensitive. Works offline.
    pub async fn search(&self, query: &str, limit: u32) -> Result<Vec<SearchHit>, ClientError> {
        Ok(self
            .local_store()?
            .search(query, page_limit(limit, MAX_PAGE))
            .await?)
    }

    /// Conversations with unread messages, from the local store (offline too).
    pub async fn unread(&self) -> Result<Vec<Unread>, ClientError> {
        Ok(self.local_store()?.unread().await?)
    }

    /// Marks everything stored in a conversation as read; the mark survives restarts. Returns
    /// the newest message now read (0 if none).
    pub async fn mark_read(&self, with: &Target) -> Result<MsgId, ClientError> {
        Ok(self.local_store()?.mark_read(with).await?)
    }

    /// Local history only: answers at once, offline too.
    pub async fn local_history(
        &self,
        with: &Target,
        before: Option<MsgId>,
        limit: u32,
    ) -> Result<Vec<LocalMessage>, ClientError> {
        let limit = page_limit(limit, MAX_PAGE);
        Ok(self.local_store()?.history(with, before, limit).await?)
    }

    /// Local messages newer than `after`, oldest first (paging forward from a search hit).
    pub async fn local_history_after(
        &self,
        with: &Target,
        after: MsgId,
        limit: u32,
    ) -> Result<Vec<LocalMessage>, ClientError> {
        let limit = page_limit(limit, MAX_PAGE);
        Ok(self
            .local_store()?
            .history_after(with, after, limit)
            .await?)
    }

    /// Local messages around `msg_id` (a search hit), for jumping to it: the hit and up to
    /// `limit` before it, and up to `limit` after it.
    pub async fn history_around(
        &self,
        with: &Target,
        msg_id: MsgId,
        limit: u32,
    ) -> Result<HistoryWindow, ClientError> {
        let older = self
            .local_history(with, Some(msg_id.saturating_add(1)), limit)
            .await?;
        let newer = self.local_history_after(with, msg_id, limit).await?;
        Ok(HistoryWindow { older, newer })
    }

    /// History merged with the server's: fetches the page from the server (when online), stores
    /// what the local store lacks, and returns the merged local page in server order. A page
    /// holds at most [`MAX_SERVER_PAGE`] messages.
    pub async fn history(
        &self,
        with: &Target,
        before: Option<MsgId>,
        limit: u32,
    ) -> Result<Vec<LocalMessage>, ClientError> {
        let limit = page_limit(limit, MAX_SERVER_PAGE);
        let store = self.local_store()?;
        let message = ClientMessage::History {
            id: id(),
            with: with.clone(),
            before,
            limit: Some(limit),
        };
        match self.request(message).await {
            Ok(ServerMessage::HistoryPage { messages, .. }) => {
                for m in &messages {
                    store.save_incoming(m).await?;
                }
            }
            Ok(other) => return Err(unexpected(other)),
            Err(ClientError::Offline | ClientError::Timeout) => {}
            Err(e) => return Err(e),
        }
        Ok(store.history(with, before, limit).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_holds_at_least_one_and_at_most_the_maximum() {
        assert_eq!(page_limit(0, MAX_PAGE), 1);
        assert_eq!(page_limit(50, MAX_PAGE), 50);
        assert_eq!(page_limit(10_000, MAX_PAGE), MAX_PAGE);
        assert_eq!(page_limit(500, MAX_SERVER_PAGE), MAX_SERVER_PAGE);
    }
}
