//! Section 4, recording size: stored bytes / output bytes of text-heavy sessions on the
//! filesystem gateway, from the session row's `recording_size` and `bytes_out`: an `ls -lR /`
//! listing and a `top`-like redraw loop. The stored recording is also read back to split the
//! figure into asciicast framing (JSON escaping, timestamps) and compression, and recompressed
//! at other gzip levels to show what the level costs.

use std::io::{Read, Write};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use flate2::Compression;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;

use crate::client::Ws;
use crate::report::Goal;
use crate::{Bench, GatewayKind};

const SECTION: &str = "4. recording size";

pub async fn run(bench: &mut Bench) -> Result<()> {
    bench.ensure_gateway(GatewayKind::Fs).await?;
    let ls = format!("for i in $(seq {}); do ls -lR /; done 2>/dev/null; true", bench.config.ls_repeats);
    let top = format!(
        "i=0; while [ $i -lt {} ]; do clear; date; ps; cat /proc/meminfo; i=$((i+1)); done",
        bench.config.top_iterations
    );
    let mut worst: f64 = 0.0;
    for (key, label, script) in [("ls", "ls -lR /", ls), ("top", "top-like redraw loop", top)] {
        let measured = one(bench, &script).await.with_context(|| format!("recording size, {label}"))?;
        worst = worst.max(measured.stored_ratio);
        let report = &mut bench.report;
        report.add(
            SECTION,
            &format!("recording_output_bytes_{key}"),
            &format!("{label}: output"),
            measured.output as f64,
            "bytes",
        );
        report.add(SECTION, &format!("recording_session_s_{key}"), &format!("{label}: session"), measured.seconds, "s");
        let label_stored = format!("{label}: stored / output");
        report.add(SECTION, &format!("recording_size_ratio_{key}"), &label_stored, measured.stored_ratio, "x");
        let label_cast = format!("{label}: asciicast / output (framing)");
        report.add(SECTION, &format!("recording_cast_ratio_{key}"), &label_cast, measured.cast_ratio, "x");
        for (level, ratio) in measured.levels {
            let label = format!("{label}: stored / output if gzip -{level}");
            report.add(SECTION, &format!("recording_size_ratio_{key}_gzip{level}"), &label, ratio, "x");
        }
    }
    let label = "text-heavy stored / output (worst of the two)";
    bench.report.target(SECTION, "recording_size_ratio", label, worst, "x", Goal::AtMost(0.3));
    Ok(())
}

struct Measured {
    output: u64,
    seconds: f64,
    stored_ratio: f64,
    cast_ratio: f64,
    /// (gzip level, stored / output) of the same asciicast recompressed in one piece.
    levels: Vec<(u32, f64)>,
}

async fn one(bench: &mut Bench, script: &str) -> Result<Measured> {
    let container = bench.container.name.clone();
    let gateway = bench.gateway(GatewayKind::Fs)?;
    let session = Ws::connect(gateway, &container, Some(&["sh", "-c", script])).await?;
    let counted = session.read_to_close(Duration::from_secs(600)).await?;
    if !counted.exited_ok() {
        bail!("the session ended with {}", counted.ending());
    }
    let row = gateway.final_rows(1, Duration::from_secs(120)).await?.remove(0);
    if row.bytes_out as u64 != counted.bytes {
        bail!("the row says bytes_out {}, the client read {}", row.bytes_out, counted.bytes);
    }
    if let Some(error) = &row.recording_error {
        bench.report.note(format!("recording-size session: {error}"));
    }
    let size = row.recording_size.context("no recording_size on the row")? as f64;
    let location = row.recording_location.context("no recording_location on the row")?;
    let path = location.strip_prefix("file://").context("not a file:// location")?;
    let stored = std::fs::read(path).with_context(|| format!("reading {path}"))?;
    let mut cast = Vec::new();
    MultiGzDecoder::new(stored.as_slice()).read_to_end(&mut cast)?;
    let output = row.bytes_out.max(1) as f64;
    let mut levels = Vec::new();
    for level in [1, 6, 9] {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::new(level));
        encoder.write_all(&cast)?;
        levels.push((level, encoder.finish()?.len() as f64 / output));
    }
    Ok(Measured {
        output: row.bytes_out as u64,
        seconds: counted.elapsed.as_secs_f64(),
        stored_ratio: size / output,
        cast_ratio: cast.len() as f64 / output,
        levels,
    })
}
