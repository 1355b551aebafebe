//! The pieces of the harness; `lib.rs` re-exports what scenarios use.

pub mod app;
pub mod calls;
pub mod cli;
pub mod client;
pub mod cluster;
pub mod core;
pub mod desktop;
pub mod files;
pub mod netns;
pub mod proxy;
pub mod pushes;
pub mod raw;
pub mod replies;
pub mod requests;
pub mod server;
pub mod tls;
pub mod world;
