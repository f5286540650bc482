//! Session recording: asciicast v2 events, spooled and stored.

pub mod storage;
pub mod asciicast;
pub mod spool;
