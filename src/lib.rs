//! Entry: a session-recording audit bastion for containers.
//!
//! `entry enter shop.web.1` opens a shell in a running Docker container through the Entry
//! gateway, which authenticates the user, runs `docker exec` with a TTY and relays the
//! terminal over a WebSocket in LAIN Entry's protobuf protocol.

// Outside tests a failure is an error the caller sees, never a panic (`cargo clippy` enforces it).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod auth;
pub mod client;
pub mod cmd;
pub mod config;
pub mod http;
pub mod index;
pub mod layers;
pub mod reaper;
pub mod recorder;
pub mod replay;
pub mod retention;
pub mod rules;
pub mod runtime;
pub mod session;
pub mod signing;
pub mod store;
pub mod telemetry;
pub mod wire;
