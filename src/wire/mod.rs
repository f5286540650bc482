//! The wire contract, a leaf of the crate (it uses nothing of Entry): the terminal protocol
//! (`protocol`, LAIN-compatible protobuf) and the types of the `/api/v1` JSON API (`api`),
//! shared by the gateway, the client and the CLI.
//!
//! Guarantees: what is here serialises exactly as the gateway has always sent it; a change of
//! these types is a change of the protocol or the API, seen by every client.

pub mod api;
pub mod containers;
pub mod protocol;
pub mod replay;
pub mod rules;
pub mod search;
pub mod shares;
pub mod signing;
