//! Random access into a stored recording. A recording is a multi-member gzip file (see
//! `spool`); a reader can start decompressing at any member's first byte, and only there. A
//! scan of the whole object finds where each member starts (compressed and decompressed
//! offsets) while it hands every asciicast line, with its decompressed offset, to the caller.
//!
//! Guarantees: bounded memory (one read buffer and one line, at most [`MAX_LINE`]); the offsets
//! are exact (the gzip reader consumes exactly one member before the next is looked at); a
//! damaged object is an error, never a panic.

use std::io::{self, BufRead, Read};

/// The longest asciicast line accepted.
pub const MAX_LINE: usize = 16 << 20;

/// Where members start: (compressed offset, decompressed offset), in order.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MemberMap {
    pub starts: Vec<(u64, u64)>,
    /// The decompressed length of the whole object.
    pub text_len: u64,
}

impl MemberMap {
    /// The member to start reading at for decompressed offset `offset`: its compressed offset
    /// and how many decompressed bytes to skip in it.
    pub fn locate(&self, offset: u64) -> (u64, u64) {
        let at = self.starts.partition_point(|(_, text)| *text <= offset);
        match at.checked_sub(1).and_then(|i| self.starts.get(i)) {
            Some((compressed, text)) => (*compressed, offset - text),
            None => (0, offset),
        }
    }
}

/// Counts what a gzip reader consumes of the bytes below it.
struct Counted<R> {
    inner: R,
    consumed: u64,
}

impl<R: BufRead> Read for Counted<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(out)?;
        self.consumed += n as u64;
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Counted<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, n: usize) {
        self.consumed += n as u64;
        self.inner.consume(n);
    }
}

/// Reads a whole recording object, calling `line(offset, text)` for each line of its
/// asciicast text (without the line feed; the header is line 0 at offset 0); returns where its
/// members start.
pub fn scan<R: Read>(object: R, mut line: impl FnMut(u64, &str)) -> io::Result<MemberMap> {
    let mut input = Counted { inner: io::BufReader::with_capacity(64 << 10, object), consumed: 0 };
    let mut map = MemberMap::default();
    let mut pending: Vec<u8> = Vec::new();
    let mut pending_at = 0u64;
    let mut chunk = vec![0u8; 64 << 10];
    while !input.fill_buf()?.is_empty() {
        map.starts.push((input.consumed, map.text_len));
        let mut member = flate2::bufread::GzDecoder::new(&mut input);
        loop {
            let n = member.read(&mut chunk)?;
            if n == 0 {
                break;
            }
            let mut rest = &chunk[..n];
            while let Some(end) = rest.iter().position(|b| *b == b'\n') {
                pending.extend_from_slice(&rest[..end]);
                line(pending_at, &String::from_utf8_lossy(&pending));
                pending_at += pending.len() as u64 + 1;
                pending.clear();
                rest = &rest[end + 1..];
            }
            pending.extend_from_slice(rest);
            if pending.len() > MAX_LINE {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "an asciicast line longer than 16 MiB"));
            }
            map.text_len += n as u64;
        }
    }
    if !pending.is_empty() {
        line(pending_at, &String::from_utf8_lossy(&pending));
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use flate2::Compression;
    use flate2::write::GzEncoder;

    use super::*;

    fn member(text: &str) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
        encoder.write_all(text.as_bytes()).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn every_line_and_member_start_is_found_and_reading_from_a_member_gives_the_text_there() {
        // Lines split across members, as flushes split them.
        let parts = [
            "{\"version\": 2}\n[0.1, \"o\", \"a",
            "b\"]\n[0.2, \"o\", \"c\"]\n",
            "[0.3, \"o\", \"d\"]\n[0.4,",
            " \"o\", \"e\"]\n",
        ];
        let object: Vec<u8> = parts.iter().flat_map(|p| member(p)).collect();
        let text: String = parts.concat();
        let mut lines = Vec::new();
        let map = scan(&object[..], |offset, line| lines.push((offset, line.to_owned()))).unwrap();
        assert_eq!(map.text_len, text.len() as u64);
        assert_eq!(map.starts.len(), 4);
        for (offset, line) in &lines {
            assert_eq!(&text[*offset as usize..*offset as usize + line.len()], line);
        }
        assert_eq!(lines.len(), 5);
        // From any line's offset, the member it lies in decodes to the same text.
        for (offset, line) in &lines {
            let (compressed, skip) = map.locate(*offset);
            let mut decoded = String::new();
            flate2::read::MultiGzDecoder::new(&object[compressed as usize..]).read_to_string(&mut decoded).unwrap();
            assert!(decoded[skip as usize..].starts_with(line.as_str()), "{offset}: {line}");
        }
    }

    #[test]
    fn a_spool_s_members_are_found_whether_bulk_or_typed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.cast.gz");
        let mut spool = crate::recorder::spool::SpoolWriter::create(&path).unwrap();
        let mut text = String::from("{\"version\": 2, \"width\": 80, \"height\": 24}\n");
        spool.write(text.as_bytes()).unwrap();
        for round in 0..6 {
            // A person typing (small batches), then a burst of output (a bulk member).
            for key in 0..5 {
                let line = format!("[{round}.{key}, \"i\", \"k\"]\n");
                spool.write(line.as_bytes()).unwrap();
                spool.flush().unwrap();
                text.push_str(&line);
            }
            let burst: String =
                (0..1500).map(|i| format!("[{round}.9, \"o\", \"line {i} of round {round}\\r\\n\"]\n")).collect();
            spool.write(burst.as_bytes()).unwrap();
            spool.flush().unwrap();
            text.push_str(&burst);
        }
        spool.finish().unwrap();
        let object = std::fs::read(&path).unwrap();
        let mut lines = 0;
        let map = scan(&object[..], |offset, line| {
            assert_eq!(&text[offset as usize..offset as usize + line.len()], line);
            lines += 1;
        })
        .unwrap();
        assert_eq!((lines, map.text_len), (text.lines().count(), text.len() as u64));
        assert!(map.starts.len() >= 12, "{:?}", map.starts);
        for (compressed, offset) in &map.starts {
            let mut decoded = Vec::new();
            flate2::read::MultiGzDecoder::new(&object[*compressed as usize..]).read_to_end(&mut decoded).unwrap();
            assert_eq!(&decoded[..], &text.as_bytes()[*offset as usize..]);
        }
    }

    #[test]
    fn a_damaged_object_is_an_error() {
        let mut object = member("{\"version\": 2}\n[0.1, \"o\", \"a\"]\n");
        let middle = object.len() / 2;
        object[middle] ^= 0xff;
        assert!(scan(&object[..], |_, _| {}).is_err());
        assert!(scan(&b"not gzip"[..], |_, _| {}).is_err());
    }
}
