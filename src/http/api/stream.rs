//! The bodies of recording downloads: the stored object as it is, or decompressed on the
//! fly.
//!
//! Guarantees: memory stays bounded whatever the recording's size or compression ratio (at
//! most `TEXT_CHUNK` of text per chunk, `QUEUED_CHUNKS` chunks queued, and the decoder's
//! state), also when a range of the text is cut out of it or its length is counted, and also
//! for a live session's spool; decompression runs on a blocking thread, never on the
//! runtime's workers, and stops when the body is dropped; a damaged or truncated object ends
//! the stream with an error, never with silently short text; a [`slice`] is exactly as long
//! as asked or ends with an error.

use std::io::Read;

use bytes::Bytes;
use flate2::read::MultiGzDecoder;
use futures::{StreamExt, TryStreamExt};
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;

use super::replays::ReplaySlot;
use crate::recorder::storage::ObjectReader;

/// Compressed bytes read from storage at a time.
const READ_CHUNK: usize = 64 * 1024;
/// Decompressed bytes per chunk of a body.
const TEXT_CHUNK: usize = 64 * 1024;
/// Chunks decoded ahead of the client: the decoder thread waits when they are not taken.
const QUEUED_CHUNKS: usize = 4;

/// The stored bytes, as they are.
pub(super) fn raw(reader: ObjectReader) -> impl futures::Stream<Item = std::io::Result<Bytes>> + Send {
    futures::stream::try_unfold(reader, |mut reader| async move {
        let mut buffer = Vec::with_capacity(READ_CHUNK);
        let n = (&mut reader).take(READ_CHUNK as u64).read_to_end(&mut buffer).await?;
        Ok((n > 0).then(|| (Bytes::from(buffer), reader)))
    })
}

/// The stored bytes, which must be exactly `len` (the recorded size, sent as Content-Length):
/// an object that is shorter, or longer, ends the stream with an error before its last chunk
/// is yielded, so that a client never gets a complete-looking body of other bytes.
pub(super) fn raw_exact(reader: ObjectReader, len: u64) -> impl futures::Stream<Item = std::io::Result<Bytes>> + Send {
    futures::stream::try_unfold((Some(reader), len), |(reader, left)| async move {
        let Some(mut reader) = reader else { return Ok(None) };
        let mut buffer = Vec::with_capacity(READ_CHUNK);
        let n = (&mut reader).take(left.min(READ_CHUNK as u64)).read_to_end(&mut buffer).await? as u64;
        if n == 0 && left > 0 {
            let message = format!("the stored object is {left} bytes shorter than its recorded size");
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, message));
        }
        if n < left {
            return Ok(Some((Bytes::from(buffer), (Some(reader), left - n))));
        }
        if reader.read(&mut [0]).await? > 0 {
            let message = "the stored object is longer than its recorded size";
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, message));
        }
        Ok((n > 0).then(|| (Bytes::from(buffer), (None, 0))))
    })
}

/// An [`ObjectReader`] read from a blocking thread: each read waits on the runtime.
struct BlockingReader {
    reader: ObjectReader,
    runtime: tokio::runtime::Handle,
}

impl std::io::Read for BlockingReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.runtime.block_on(self.reader.read(buf))
    }
}

/// The chunks `produce` sends, produced on a blocking thread through a queue of
/// `QUEUED_CHUNKS`; `produce` learns that the body is gone when a send fails.
fn on_blocking_thread<F>(produce: F) -> impl futures::Stream<Item = std::io::Result<Bytes>> + Send
where
    F: FnOnce(&mpsc::Sender<std::io::Result<Bytes>>) + Send + 'static,
{
    let (tx, rx) = mpsc::channel(QUEUED_CHUNKS);
    drop(tokio::task::spawn_blocking(move || produce(&tx)));
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) })
}

/// The stored recording, decompressed (a gzip stream of one or more members); a damaged or
/// truncated object ends the stream with an error (the client sees an incomplete body).
pub(super) fn decompressed(reader: ObjectReader) -> impl futures::Stream<Item = std::io::Result<Bytes>> + Send {
    let source = BlockingReader { reader, runtime: tokio::runtime::Handle::current() };
    on_blocking_thread(move |tx| {
        let mut decoder = MultiGzDecoder::new(source);
        loop {
            let mut buffer = vec![0u8; TEXT_CHUNK];
            let item = match decoder.read(&mut buffer) {
                Ok(0) => return,
                Ok(n) => {
                    buffer.truncate(n);
                    Ok(Bytes::from(buffer))
                }
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(error) => Err(error),
            };
            let failed = item.is_err();
            if tx.blocking_send(item).is_err() || failed {
                return;
            }
        }
    })
}

/// Bytes `skip..skip + len` of `stream`, without holding more than one of its chunks; an
/// error if `stream` ends before. Stops reading `stream` once they are out.
pub(super) fn slice<S>(stream: S, skip: u64, len: u64) -> impl futures::Stream<Item = std::io::Result<Bytes>> + Send
where
    S: futures::Stream<Item = std::io::Result<Bytes>> + Send,
{
    let state = (Box::pin(stream), skip, len);
    futures::stream::try_unfold(state, |(mut stream, mut skip, left)| async move {
        loop {
            if left == 0 {
                return Ok(None);
            }
            let Some(mut chunk) = stream.try_next().await? else {
                let message = format!("the recording ended {left} bytes before the end of the range");
                return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, message));
            };
            let size = chunk.len() as u64;
            if skip >= size {
                skip -= size;
                continue;
            }
            // Both fit in the chunk's usize length: skip < size, and take <= size - skip.
            let _ = chunk.split_to(skip as usize);
            let take = left.min(size - skip);
            chunk.truncate(take as usize);
            return Ok(Some((chunk, (stream, 0, left - take))));
        }
    })
}

/// `stream`, which must yield exactly `len` bytes (the recorded length, sent as
/// Content-Length) and then end without error: a shorter or longer stream, or one whose end is
/// an error, ends with an error before its last chunk is yielded, so that a client never gets
/// a complete-looking body of other text. Holds one chunk at a time.
pub(super) fn exact<S>(stream: S, len: u64) -> impl futures::Stream<Item = std::io::Result<Bytes>> + Send
where
    S: futures::Stream<Item = std::io::Result<Bytes>> + Send,
{
    futures::stream::try_unfold((Box::pin(stream), len, false), |(mut stream, left, done)| async move {
        if done {
            return Ok(None);
        }
        let longer = || std::io::Error::new(std::io::ErrorKind::InvalidData, "the text is longer than recorded");
        let Some(chunk) = stream.try_next().await? else {
            if left == 0 {
                return Ok(None);
            }
            let message = format!("the text is {left} bytes shorter than recorded");
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, message));
        };
        let size = chunk.len() as u64;
        if size > left {
            return Err(longer());
        }
        if size < left {
            return Ok(Some((chunk, (stream, left - size, false))));
        }
        // The last chunk: yielded only once the stream is seen to end cleanly.
        while let Some(next) = stream.try_next().await? {
            if !next.is_empty() {
                return Err(longer());
            }
        }
        Ok(Some((chunk, (stream, 0, true))))
    })
}

/// How many bytes `stream` yields (an error if it ends with one); holds one chunk at a time.
pub(super) async fn count<S>(stream: S) -> std::io::Result<u64>
where
    S: futures::Stream<Item = std::io::Result<Bytes>>,
{
    stream.try_fold(0u64, |total, chunk| async move { Ok(total + chunk.len() as u64) }).await
}

/// The asciicast of a session still being recorded, up to its last flush, as it is read
/// from its spool: its first chunk of whole lines, and the rest.
pub(super) struct SoFar {
    first: Bytes,
    rest: std::pin::Pin<Box<dyn futures::Stream<Item = std::io::Result<Bytes>> + Send>>,
}

/// The asciicast of a session still being recorded, up to its last flush: streamed from its
/// spool, whole lines only, the file read up to its length when opened (`None` when no whole
/// line is flushed yet or the spool is not here).
pub(super) async fn so_far(spool_dir: &std::path::Path, session_id: &str) -> Option<SoFar> {
    let spool = spool_dir.join(format!("{session_id}.cast.gz"));
    let mut rest = Box::pin(on_blocking_thread(move |tx| {
        let opened = std::fs::File::open(&spool).and_then(|file| Ok((file.metadata()?.len(), file)));
        let (flushed, file) = match opened {
            Ok(opened) => opened,
            Err(error) => {
                let _ = tx.blocking_send(Err(error));
                return;
            }
        };
        let sent = crate::recorder::spool::read_whole_lines(file.take(flushed), |chunk| {
            Ok(tx.blocking_send(Ok(Bytes::from(chunk))).is_ok())
        });
        if let Err(error) = sent {
            let _ = tx.blocking_send(Err(error));
        }
    }));
    let first = rest.try_next().await.ok()??;
    Some(SoFar { first, rest })
}

/// The answer carrying a partial recording: marked with `x-entry-recording: partial`. It
/// serves no byte ranges (a `Range` header is ignored: 200, no `Accept-Ranges`), since the
/// text grows between two requests. `slot` is held until the body is sent or dropped.
pub(super) fn partial_response(session_id: &str, text: SoFar, slot: ReplaySlot) -> axum::response::Response {
    use axum::http::header;
    use axum::response::IntoResponse;
    let headers = [
        (header::CONTENT_TYPE, "application/x-asciicast".to_owned()),
        (header::CACHE_CONTROL, "no-store".to_owned()),
        (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{session_id}.partial.cast\"")),
        (header::HeaderName::from_static("x-entry-recording"), "partial".to_owned()),
    ];
    let body = futures::stream::once(async move { Ok(text.first) }).chain(text.rest);
    (headers, axum::body::Body::from_stream(holding(slot, body))).into_response()
}

/// `stream`, holding `slot` until it ends or is dropped.
pub(super) fn holding<S>(slot: ReplaySlot, stream: S) -> impl futures::Stream<Item = std::io::Result<Bytes>> + Send
where
    S: futures::Stream<Item = std::io::Result<Bytes>> + Send,
{
    stream.map(move |item| {
        let _held = &slot;
        item
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::Compression;
    use flate2::write::GzEncoder;
    use std::io::Write;

    fn gzip(text: &[u8]) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(text).unwrap();
        encoder.finish().unwrap()
    }

    async fn inflate(compressed: Vec<u8>) -> std::io::Result<Vec<u8>> {
        let reader: ObjectReader = Box::pin(std::io::Cursor::new(compressed));
        let chunks: Vec<Bytes> = decompressed(reader).try_collect().await?;
        Ok(chunks.concat())
    }

    #[tokio::test]
    async fn decompresses_large_and_multi_member_recordings() {
        let text: Vec<u8> =
            (0..200_000u32).flat_map(|i| format!("[{i}.0, \"o\", \"line {i}\"]\n").into_bytes()).collect();
        assert_eq!(inflate(gzip(&text)).await.unwrap(), text);
        let mut two = gzip(b"first\n");
        two.extend(gzip(b"second\n"));
        assert_eq!(inflate(two).await.unwrap(), b"first\nsecond\n");
    }

    #[tokio::test]
    async fn a_damaged_recording_is_an_error() {
        let compressed = gzip(&b"some text that is long enough to compress\n".repeat(100));
        let truncated = compressed[..compressed.len() - 6].to_vec();
        assert!(inflate(truncated).await.is_err());
        let mut flipped = compressed.clone();
        let last = flipped.len() - 5;
        flipped[last] ^= 0xff;
        assert!(inflate(flipped).await.is_err());
        assert!(inflate(b"not gzip at all".to_vec()).await.is_err());
        assert!(inflate(Vec::new()).await.is_err());
    }

    #[tokio::test]
    async fn slices_and_counts_the_text_across_chunks() {
        let text: Vec<u8> =
            (0..50_000u32).flat_map(|i| format!("[{i}.0, \"o\", \"line {i}\"]\n").into_bytes()).collect();
        let total = text.len() as u64;
        let stream = || decompressed(Box::pin(std::io::Cursor::new(gzip(&text))));
        assert_eq!(count(stream()).await.unwrap(), total);
        for (skip, len) in [(0, 1), (0, total), (1, total - 1), (total - 1, 1), (100_000, 300_000), (5, 0)] {
            let chunks: Vec<Bytes> = slice(stream(), skip, len).try_collect().await.unwrap();
            assert_eq!(chunks.concat(), &text[skip as usize..(skip + len) as usize], "{skip}+{len}");
        }
        // Past the end, it is an error, never a short body.
        assert!(slice(stream(), total - 1, 2).try_collect::<Vec<Bytes>>().await.is_err());
        assert!(slice(stream(), total + 10, 1).try_collect::<Vec<Bytes>>().await.is_err());
        let reader: ObjectReader = Box::pin(std::io::Cursor::new(b"0123456789".to_vec()));
        let chunks: Vec<Bytes> = slice(raw(reader), 2, 5).try_collect().await.unwrap();
        assert_eq!(chunks.concat(), b"23456");
    }

    #[tokio::test]
    async fn exact_refuses_other_text_before_its_last_chunk() {
        let text: Vec<u8> =
            (0..50_000u32).flat_map(|i| format!("[{i}.0, \"o\", \"line {i}\"]\n").into_bytes()).collect();
        let total = text.len() as u64;
        let compressed = gzip(&text);
        let exact_of = |compressed: Vec<u8>, len: u64| async move {
            let stream = exact(decompressed(Box::pin(std::io::Cursor::new(compressed))), len);
            let mut stream = std::pin::pin!(stream);
            let (mut sent, mut failed) = (Vec::new(), false);
            while let Some(item) = stream.next().await {
                match item {
                    Ok(chunk) => sent.extend_from_slice(&chunk),
                    Err(_) => failed = true,
                }
            }
            (sent, failed)
        };
        assert_eq!(exact_of(compressed.clone(), total).await, (text.clone(), false));
        assert_eq!(exact_of(gzip(b""), 0).await, (Vec::new(), false));
        for len in [0, 1, total - 1, total + 1, total + 100_000] {
            let (sent, failed) = exact_of(compressed.clone(), len).await;
            assert!(failed && (sent.len() as u64) < len.max(1), "{len}: {} bytes sent", sent.len());
        }
        // A damaged trailer (CRC) is found before the last chunk goes out.
        let mut flipped = compressed.clone();
        let crc = flipped.len() - 6;
        flipped[crc] ^= 0xff;
        let (sent, failed) = exact_of(flipped, total).await;
        assert!(failed && (sent.len() as u64) < total, "{} bytes sent", sent.len());
    }

    #[tokio::test]
    async fn counting_a_damaged_recording_is_an_error() {
        let compressed = gzip(&b"some text that is long enough to compress\n".repeat(100));
        let truncated = compressed[..compressed.len() - 6].to_vec();
        assert!(count(decompressed(Box::pin(std::io::Cursor::new(truncated)))).await.is_err());
    }

    #[tokio::test]
    async fn raw_exact_refuses_another_size() {
        let exact = |bytes: &[u8], len: u64| {
            let reader: ObjectReader = Box::pin(std::io::Cursor::new(bytes.to_vec()));
            raw_exact(reader, len).try_collect::<Vec<Bytes>>()
        };
        let bytes: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        for len in [0, 1, 65_536, 131_072, 200_000] {
            assert_eq!(exact(&bytes[..len], len as u64).await.unwrap().concat(), &bytes[..len]);
        }
        for (size, len) in [(0, 1), (100, 101), (200_000, 200_001), (1, 0), (101, 100), (131_073, 131_072)] {
            assert!(exact(&bytes[..size], len).await.is_err(), "an object of {size} bytes sent as {len}");
        }
        // The error comes instead of the last chunk: what came before is short of `len`.
        let reader: ObjectReader = Box::pin(std::io::Cursor::new(bytes.clone()));
        let mut stream = std::pin::pin!(raw_exact(reader, 100_000));
        let mut sent = 0;
        while let Some(Ok(chunk)) = stream.next().await {
            sent += chunk.len();
        }
        assert!(sent < 100_000, "{sent}");
    }

    #[tokio::test]
    async fn raw_is_byte_exact() {
        let bytes: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let reader: ObjectReader = Box::pin(std::io::Cursor::new(bytes.clone()));
        let chunks: Vec<Bytes> = raw(reader).try_collect().await.unwrap();
        assert_eq!(chunks.concat(), bytes);
    }
}
