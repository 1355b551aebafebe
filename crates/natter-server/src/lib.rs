//! The Natter server.
//!
//! Shape (after tokio's mini-redis): [`server`] accepts sockets (plain and TLS) under a connection
//! cap → [`conn`] runs one task per connection → [`handlers`] apply one request each → [`store`]
//! holds all SQL, with chat messages going through the batching [`persist`] writer → [`hub`]
//! routes pushes to online sessions. Configuration is in [`config`], TLS in [`tls`], rate limits
//! in [`ratelimit`], file transfers' bytes, ranges, hash checks and fetch streaming in
//! [`transfer`], voice-call state and the UDP media relay in [`calls`].

pub mod calls;
pub mod cluster;
pub mod config;
pub mod conn;
pub mod handlers;
pub mod hub;
pub mod persist;
pub mod ratelimit;
pub mod server;
pub mod store;
pub mod tls;
pub mod transfer;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

pub use config::{Cli, Config};
pub use server::{run, Listeners, ServerError};

/// Shared state every connection task sees.
pub struct Ctx {
    /// Settings.
    pub config: Config,
    /// Database.
    pub store: store::Store,
    /// Online sessions.
    pub hub: Arc<hub::Hub>,
    /// Batched message writer.
    pub writer: persist::Writer,
    /// Per-IP rate limits.
    pub ip_limits: ratelimit::IpLimiter,
    /// File transfers' bytes and hash checks.
    pub transfers: transfer::Transfers,
    /// Calls in progress, shared with the relay.
    pub calls: Arc<calls::Calls>,
    /// The cluster, when this node is one of several.
    pub cluster: Option<cluster::Link>,
    /// Wall clock in milliseconds (replaceable in tests).
    pub clock: fn() -> i64,
    conn_ids: AtomicU64,
}

impl Ctx {
    /// A fresh, unique connection id.
    pub fn next_conn_id(&self) -> u64 {
        self.conn_ids.fetch_add(1, Ordering::Relaxed)
    }

    /// Deletes a user (erase, guest purge) with everything of theirs, including the bytes of
    /// their transfers; the other parties of those transfers who are online get
    /// `file_cancelled`.
    pub async fn delete_user(
        &self,
        id: store::UserId,
        erase_sent_queue: bool,
    ) -> store::StoreResult<()> {
        let removed = self.store.delete_user(id, erase_sent_queue).await?;
        transfer::discard(&self.transfers.blobs, &self.hub, &removed, Some(id)).await;
        Ok(())
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
