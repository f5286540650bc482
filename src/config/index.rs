//! `[index]`: the command index and searchable output of sessions.

use serde::{Deserialize, Serialize};

use super::size::ByteSize;

/// The command index.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IndexConfig {
    /// Read commands and output text of sessions into the store, for search.
    pub enabled: bool,
    /// Output text indexed from the start of a session; past it, only the last `output_tail`
    /// is indexed, after a line saying how much was skipped (the recording keeps everything).
    pub output_head: ByteSize,
    /// Output text indexed from the end of a session that printed more than `output_head`.
    pub output_tail: ByteSize,
    /// Events a session may queue for its terminal model; when it is full the session waits.
    pub queue_capacity: usize,
}

impl Default for IndexConfig {
    fn default() -> Self {
        Self { enabled: true, output_head: ByteSize(256 << 10), output_tail: ByteSize(256 << 10), queue_capacity: 1024 }
    }
}

/// Segmented replay (the replay page, `entry play --from`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReplayConfig {
    /// A new segment starts after this much recording time…
    #[serde(with = "humantime_serde")]
    pub segment_every: std::time::Duration,
    /// …or after this much output, whichever comes first.
    pub segment_output: ByteSize,
    /// Plans of stored recordings kept in memory (each about 2 KiB per segment).
    pub plans_cached: usize,
}

impl Default for ReplayConfig {
    fn default() -> Self {
        Self { segment_every: std::time::Duration::from_secs(30), segment_output: ByteSize(2 << 20), plans_cached: 64 }
    }
}
