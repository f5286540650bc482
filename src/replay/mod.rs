//! Segmented replay: any recording, of any size, opens at once in asciinema-player 3.18's
//! `format: "segmented"` and seeks anywhere without reading what comes before.
//!
//! A recording's *plan* ([`planner`]) cuts it into segments every 30 s or 2 MiB of output
//! ([`segments`]), each with a snapshot of the screen where it starts (from [`screen`], which
//! skips emulating plain bulk output where that provably changes nothing), and notes where in the
//! stored gzip object each segment's text begins (its members: [`members`]). The plan is kept
//! beside the recording (`<id>.segments.json.gz`, fs and S3) and read by [`plans`]; the
//! segments themselves are made on request from the stored recording's bytes
//! ([`document`]), with an idle-time limit applied on the server ([`timeline`]). The canonical
//! `.cast.gz` and its SHA-256 stay what download and `entry verify` use.

pub mod document;
pub mod members;
pub mod planner;
pub mod plans;
pub mod screen;
pub mod segments;
pub mod timeline;
