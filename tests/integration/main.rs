//! Every integration suite of Entry in one test binary: one module per suite (`faults`,
//! `recording`, `security`, …), so `cargo test` links once and writes one ~350 MB binary
//! instead of ~29 of them. Test names carry their suite as a prefix (`faults::…`), so one
//! suite runs with `cargo test --test integration -- faults::`, one test with its full name
//! and `--exact`.
//!
//! The shared harness is [`common`]: the in-process gateway, test containers, the WebSocket
//! client, the `entry serve` process, the PostgreSQL and S3 servers and the browsers. The data
//! files the suites read (`tests/images/`, `tests/lain/`, `tests/recording/`) stay where they
//! were, beside this directory.

mod common;

mod api;
mod api_roles;
mod auth;
mod cli;
mod commands;
mod disk;
mod enter;
mod exec_policy;
mod faults;
mod fleet;
mod fuzz_smoke;
mod hostile_client;
mod kill;
mod lain;
mod limits;
mod load;
mod login;
mod operations;
mod pages;
mod play_from;
mod range;
mod reaper;
mod recording;
mod replay_memory;
mod replay_page;
mod retention;
mod revoke;
mod rules;
mod rules_cli;
mod s3;
mod search;
mod search_cli;
mod security;
mod segments;
mod share_links;
mod signing;
mod source_address;
mod store;
mod terminal;
mod tls_links;
mod watch;
mod wire;
