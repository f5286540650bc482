//! Session recording: asciicast v2 events, spooled and stored.

pub mod asciicast;
pub mod spool;
pub mod storage;
