//! Session recording: asciicast v2 events, spooled and stored.

pub mod storage;
