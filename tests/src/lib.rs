//! Cross-process end-to-end harness for Natter: each scenario starts the real `natter-server`
//! binary as a child process ([`TestServer`]) on ephemeral ports with its own data directory,
//! and drives it over real sockets with protocol clients ([`TestClient`]) or raw bytes
//! ([`RawSocket`]).
//!
//! Rules the suites follow (STYLE.md §11):
//! - scenarios are named in the user's words and start from a world built in a few lines
//!   ([`alice_and_bob`], `server.user("carol")`, [`befriend`]);
//! - nothing sleeps to synchronise: tests wait for the event they expect, with a timeout that
//!   fails loudly and lists what did arrive. A short bounded wait appears only to show that
//!   something does *not* happen ([`TestClient::assert_no_push_matching`]);
//! - each test owns its server, so tests run in parallel;
//! - the cast is alice, bob, carol, dave and the guest visitor. Usernames have at least four
//!   characters, so bob's is `bobby`.
//!
//! Environment: `NATTER_SERVER_BIN` picks the server binary (otherwise it is built with cargo
//! once per test process, `NATTER_E2E_NO_BUILD` skips that when a binary exists);
//! `NATTER_E2E_KEEP_DIR` keeps each server's data directory and log; `RUST_LOG` is passed on to
//! the server. Harness failures (a missing reply or push, a connection that should have closed)
//! quote the tail of the server's log; a panicking test prints it when its server is dropped.
//!
//! Map: `harness::server` (the child process), `harness::client` (connection, reply routing),
//! `harness::requests` (one method per request), `harness::pushes` (waiting for pushes),
//! `harness::replies` (typed replies and refusals), `harness::raw` (byte-level socket),
//! `harness::world` (world builders), `harness::tls` (trusting exactly the server's cert);
//! `bench_report` (the generated sections of docs/BENCHMARKS.md the bench binaries write).

pub mod bench_report;
pub mod harness;

pub use harness::client::{
    KeepAlive, PendingReply, TestClient, PUSH_TIMEOUT, QUIET_WINDOW, REPLY_TIMEOUT,
};
pub use harness::cluster::TestCluster;
pub use harness::raw::{RawRead, RawSocket};
pub use harness::replies::{
    accepted_reply, expect_refusal, new_client_msg_id, password_for, server_error, show, text,
    text_of, user, Accepted, FriendList, HelloOk, HistoryPage, LoginOk, Receipt, Reply,
    ServerError, UsernameStatus,
};
pub use harness::server::{ReadyFile, TestServer};
pub use harness::world::{alice_and_bob, befriend};
pub use natter_proto::{
    ChatMessage, ClientMessage, ErrorCode, FileKind, MessageBody, PresenceScope, ServerMessage,
    Target,
};
