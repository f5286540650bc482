//! `spool`: reading recordings back — the crash recovery of a spool
//! ([`spool::recover_lines`]) and the decompression of a stored recording
//! ([`spool::decompress`]).
//!
//! Checks: arbitrary bytes as a spool file give whole lines or nothing, never a panic; as a
//! stored recording, text or an error. The same bytes as a recording's text, compressed as
//! the spool writer does (gzip, a sync flush part-way) and cut anywhere by a crash: recovery
//! gives a prefix of the text that ends at a line's end, and keeps every line that was
//! complete when the last flush before the cut was made.

use std::io::Write;
use std::path::PathBuf;

use entry::recorder::spool;
use flate2::Compression;
use flate2::write::GzEncoder;

pub fn check(data: &[u8]) {
    let recovered = recover(data);
    assert!(recovered.is_empty() || recovered.ends_with(b"\n"), "recovered a partial line");
    let _ = spool::decompress(data);

    let split = data.first().map_or(0, |b| usize::from(*b)).min(data.len());
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    encoder.write_all(&data[..split]).expect("writing to memory");
    encoder.flush().expect("flushing to memory");
    let flushed = encoder.get_ref().len();
    encoder.write_all(&data[split..]).expect("writing to memory");
    let compressed = encoder.finish().expect("finishing in memory");

    let whole_lines = |text: &[u8]| text.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let cut_at = data.last().map_or(0, |b| usize::from(*b) * compressed.len() / 255);
    for cut in [compressed.len(), flushed, cut_at, flushed + (compressed.len() - flushed) / 2] {
        let recovered = recover(&compressed[..cut]);
        assert!(data.starts_with(&recovered), "recovered text that was never written");
        assert_eq!(recovered.len(), whole_lines(&recovered), "recovered a partial line");
        if cut >= flushed {
            assert!(
                recovered.len() >= whole_lines(&data[..split]),
                "lost a flushed line (cut {cut} of {})",
                compressed.len()
            );
        }
    }
    assert_eq!(recover(&compressed).len(), whole_lines(data), "lost a line of a complete spool");
}

/// `recover_lines` of a spool file holding `bytes`.
fn recover(bytes: &[u8]) -> Vec<u8> {
    let path = scratch_file();
    std::fs::write(&path, bytes).expect("writing the scratch spool");
    let recovered = spool::recover_lines(&path).expect("the scratch spool can be opened");
    let _ = std::fs::remove_file(&path);
    recovered
}

/// One scratch file per process and thread.
fn scratch_file() -> PathBuf {
    let thread = format!("{:?}", std::thread::current().id()).replace(|c: char| !c.is_ascii_alphanumeric(), "");
    std::env::temp_dir().join(format!("entry-fuzz-spool-{}-{thread}.cast.gz", std::process::id()))
}
