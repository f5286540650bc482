//! The planner against stored recordings: multi-member objects as the spool writes them, read
//! in one pass or resumed member by member, and a live spool whose last member is still open.

use std::io::{Read, Write};

use super::*;
use crate::recorder::asciicast::{Event, EventKind, Header, encode_event, encode_header};
use crate::recorder::spool::SpoolWriter;
use crate::replay::timeline::IdleLimit;

fn member(text: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(text).unwrap();
    encoder.finish().unwrap()
}

/// A session of `rounds` rounds: typed keys (small flushes), then a burst of output.
fn spool_recording(dir: &std::path::Path, rounds: u32) -> (std::path::PathBuf, String, Vec<u64>) {
    let (path, text, flushed, _) = observed_spool_recording(dir, rounds, None);
    (path, text, flushed)
}

/// [`spool_recording`], with a [`WrittenPlanner`] of `limits` attached at round `observe.0`
/// (after as many keys as `observe.1` says): its planner.
fn observed_spool_recording(
    dir: &std::path::Path,
    rounds: u32,
    observe: Option<(u32, u32, SegmentLimits)>,
) -> (std::path::PathBuf, String, Vec<u64>, Option<Planner>) {
    let path = dir.join("s.cast.gz");
    let mut spool = SpoolWriter::create(&path).unwrap();
    let mut text = String::from_utf8(encode_header(&Header::new(80, 24))).unwrap();
    spool.write(text.as_bytes()).unwrap();
    let mut flushed = Vec::new();
    for round in 0..rounds {
        for key in 0..5 {
            if let Some((_, _, limits)) = observe.filter(|&(r, k, _)| (r, k) == (round, key)) {
                spool
                    .observe(|path, written| {
                        let mut planner = Planner::new(limits);
                        planner.catch_up(std::fs::File::open(path).unwrap().take(written)).unwrap();
                        assert_eq!(planner.resume_at(), written, "the spool holds whole members only");
                        Some(Box::new(WrittenPlanner::new(planner)))
                    })
                    .unwrap();
            }
            let mut line = Vec::new();
            let time = f64::from(round) * 7.0 + f64::from(key) * 0.1;
            encode_event(&Event { time, kind: EventKind::Input("k".into()) }, &mut line);
            spool.write(&line).unwrap();
            flushed.push(spool.flush().unwrap());
            text.push_str(std::str::from_utf8(&line).unwrap());
        }
        let mut burst = Vec::new();
        for i in 0..1500 {
            let data = format!("\x1b[3{}mline {i} of round {round}\x1b[m\r\n", i % 7);
            encode_event(&Event { time: f64::from(round) * 7.0 + 0.9, kind: EventKind::Output(data) }, &mut burst);
        }
        spool.write(&burst).unwrap();
        flushed.push(spool.flush().unwrap());
        text.push_str(std::str::from_utf8(&burst).unwrap());
    }
    let (_, observer) = spool.finish_observed().unwrap();
    let planner = observer.map(|observer| observer.into_any().downcast::<WrittenPlanner>().unwrap());
    (path, text, flushed, planner.map(|written| written.into_planner().unwrap()))
}

/// Segment `n`'s text read as the API reads it: from its member, up to its bound.
fn read_span(object: &[u8], span: Span) -> String {
    let end = span.bound.map_or(object.len(), |b| b as usize);
    let mut decoder = flate2::read::MultiGzDecoder::new(&object[span.member as usize..end]);
    std::io::copy(&mut (&mut decoder).take(span.skip), &mut std::io::sink()).unwrap();
    let mut text = String::new();
    decoder.take(span.len).read_to_string(&mut text).unwrap();
    text
}

#[test]
fn a_spool_is_planned_in_one_pass_and_each_segment_read_from_its_members_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (path, text, _) = spool_recording(dir.path(), 12);
    let object = std::fs::read(&path).unwrap();
    let limits = SegmentLimits { seconds: 20.0, output_bytes: 40_000 };
    let planned = plan(&object[..], limits).unwrap();
    assert_eq!(planned.text_len, text.len() as u64);
    assert!(planned.cuts.cuts.len() >= 5, "{}", planned.cuts.cuts.len());
    let mut documents = Vec::new();
    for n in 0..planned.cuts.cuts.len() {
        let span = planned.span(n, None).unwrap();
        let lines = read_span(&object, span);
        let from = planned.cuts.cuts[n].offset as usize;
        assert_eq!(lines, text[from..from + span.len as usize], "segment {n}");
        if let Some(bound) = span.bound {
            assert!(bound < object.len() as u64, "segment {n} reads less than the object");
        }
        let document = crate::replay::document::segment(&planned.cuts, n, &lines, IdleLimit::OFF).unwrap();
        documents.push(serde_json::to_value(document).unwrap());
    }
    let index = serde_json::to_value(crate::replay::document::index(&planned.cuts, IdleLimit::OFF, false, 0, |n| {
        n.to_string()
    }));
    crate::replay::segments::tests::assert_player_accepts(&index.unwrap(), &documents);
    assert!(plan(&b"not gzip"[..], limits).is_err());
    let mut damaged = object.clone();
    let middle = damaged.len() / 2;
    damaged[middle] ^= 0xff;
    assert!(plan(&damaged[..], limits).is_err());
}

#[test]
fn a_plan_resumed_at_every_flush_of_a_growing_spool_is_the_one_pass_plan() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _, flushed) = spool_recording(dir.path(), 8);
    let object = std::fs::read(&path).unwrap();
    let limits = SegmentLimits { seconds: 15.0, output_bytes: 60_000 };
    let whole = plan(&object[..], limits).unwrap();
    let mut planner = Planner::new(limits);
    let mut last = None;
    for end in flushed.iter().copied().chain([object.len() as u64]) {
        // What a reader of the live spool finds: the bytes written so far (the last member
        // may be open, without its trailer).
        let from = planner.resume_at() as usize;
        let view = planner.advance(&object[from..end as usize], end == object.len() as u64).unwrap();
        // Every cut of a view is a cut of the whole recording, and its text so far is whole lines.
        assert_eq!(view.cuts.cuts[..], whole.cuts.cuts[..view.cuts.cuts.len()]);
        assert_eq!(view.reads[..], whole.reads[..view.reads.len()]);
        last = Some(view);
    }
    let last = last.unwrap();
    assert_eq!(last.cuts, whole.cuts);
    assert_eq!(last.text_len, whole.text_len);
}

#[test]
fn an_open_member_adds_its_events_to_the_view_but_not_to_the_planner() {
    // Two whole members, then a third cut short (no trailer), as a spool being written is.
    let header = String::from_utf8(encode_header(&Header::new(80, 24))).unwrap();
    let first = format!("{header}[0.5, \"o\", \"a\"]\n");
    let second = "[1.0, \"r\", \"90x25\"]\n[2.0, \"o\", \"b\"]\n";
    let third = "[9.0, \"m\", \"later\"]\n[9.5, \"o\", \"c\"]\n";
    let mut object = member(first.as_bytes());
    object.extend(member(second.as_bytes()));
    let whole_len = object.len() as u64;
    let mut open = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    open.write_all(third.as_bytes()).unwrap();
    open.flush().unwrap();
    object.extend(open.get_ref());
    let mut planner = Planner::new(SegmentLimits::default());
    let view = planner.advance(&object[..], false).unwrap();
    assert_eq!(planner.resume_at(), whole_len, "resumes at the open member");
    assert_eq!(view.cuts.duration, 9.5);
    assert_eq!(view.text_len, (first.len() + second.len() + third.len()) as u64);
    let labels: Vec<&str> = view.cuts.timeline.markers.iter().map(|(_, l)| l.as_str()).collect();
    assert_eq!(labels, ["resize to 90x25", "later"]);
    // Once the member is whole, reading on from there gives the same plan as one pass.
    let mut complete = object[..whole_len as usize].to_vec();
    complete.extend(member(third.as_bytes()));
    let resumed = planner.advance(&complete[whole_len as usize..], true).unwrap();
    assert_eq!(resumed, plan(&complete[..], SegmentLimits::default()).unwrap());
}

#[test]
fn a_plan_fed_by_the_writer_is_the_plan_read_from_the_stored_spool() {
    let limits = SegmentLimits { seconds: 15.0, output_bytes: 60_000 };
    // Attached at the start, after a burst, and between typed keys.
    for observe in [(0, 0), (2, 0), (3, 3)] {
        let dir = tempfile::tempdir().unwrap();
        let (path, _, _, planner) = observed_spool_recording(dir.path(), 8, Some((observe.0, observe.1, limits)));
        let object = std::fs::read(&path).unwrap();
        let fed = planner.unwrap().advance(std::io::empty(), true).unwrap();
        assert_eq!(fed, plan(&object[..], limits).unwrap(), "attached at {observe:?}");
        assert!(fed.cuts.cuts.len() >= 4);
    }
}
