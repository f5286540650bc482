//! The bodies of recording downloads: the stored object as it is, or decompressed on the
//! fly.
//!
//! Guarantees: memory stays bounded whatever the recording's size or compression ratio (at
//! most one read of compressed bytes and one decoder step of text at a time), also when a
//! range of the text is cut out of it or its length is counted; a damaged or truncated object
//! ends the stream with an error, never with silently short text; a [`slice`] is exactly as
//! long as asked or ends with an error.

use std::io::Write;

use bytes::Bytes;
use flate2::write::MultiGzDecoder;
use futures::TryStreamExt;
use tokio::io::AsyncReadExt;

use crate::recorder::storage::ObjectReader;

/// Compressed bytes read from storage at a time.
const READ_CHUNK: usize = 64 * 1024;
/// Compressed bytes fed to the decoder at a time; bounds each decompressed chunk.
const DECODE_STEP: usize = 8 * 1024;

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

/// Decompresses a gzip stream (of one or more members) chunk by chunk.
struct Inflater {
    decoder: MultiGzDecoder<Vec<u8>>,
}

impl Inflater {
    fn new() -> Self {
        Self { decoder: MultiGzDecoder::new(Vec::new()) }
    }

    /// Feeds compressed bytes; returns how many were taken and the text decoded so far.
    fn feed(&mut self, input: &[u8]) -> std::io::Result<(usize, Vec<u8>)> {
        let step = &input[..input.len().min(DECODE_STEP)];
        let taken = self.decoder.write(step)?;
        if taken == 0 && !step.is_empty() {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "the gzip stream does not progress"));
        }
        self.decoder.flush()?;
        Ok((taken, std::mem::take(self.decoder.get_mut())))
    }

    /// Ends the stream: checks the last member's checksum; returns the rest of the text.
    fn finish(&mut self) -> std::io::Result<Vec<u8>> {
        self.decoder.try_finish()?;
        Ok(std::mem::take(self.decoder.get_mut()))
    }
}

/// The stored recording, decompressed; a damaged or truncated object ends the stream with
/// an error (the client sees an incomplete body).
pub(super) fn decompressed(reader: ObjectReader) -> impl futures::Stream<Item = std::io::Result<Bytes>> + Send {
    struct State {
        reader: Option<ObjectReader>,
        inflater: Inflater,
        pending: Bytes,
    }
    let state = State { reader: Some(reader), inflater: Inflater::new(), pending: Bytes::new() };
    futures::stream::try_unfold(state, |mut state| async move {
        loop {
            if !state.pending.is_empty() {
                let (taken, text) = state.inflater.feed(&state.pending)?;
                let _ = state.pending.split_to(taken);
                if !text.is_empty() {
                    return Ok(Some((Bytes::from(text), state)));
                }
                continue;
            }
            let Some(reader) = state.reader.as_mut() else { return Ok(None) };
            let mut buffer = Vec::with_capacity(READ_CHUNK);
            if reader.take(READ_CHUNK as u64).read_to_end(&mut buffer).await? > 0 {
                state.pending = Bytes::from(buffer);
                continue;
            }
            state.reader = None;
            let rest = state.inflater.finish()?;
            return Ok((!rest.is_empty()).then(|| (Bytes::from(rest), state)));
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

/// How many bytes `stream` yields (an error if it ends with one); holds one chunk at a time.
pub(super) async fn count<S>(stream: S) -> std::io::Result<u64>
where
    S: futures::Stream<Item = std::io::Result<Bytes>>,
{
    stream.try_fold(0u64, |total, chunk| async move { Ok(total + chunk.len() as u64) }).await
}

/// The asciicast of a session still being recorded, up to its last flush: read from its spool
/// (`None` when nothing is flushed yet or the spool is not here).
pub(super) async fn so_far(spool_dir: &std::path::Path, session_id: &str) -> Option<bytes::Bytes> {
    let spool = spool_dir.join(format!("{session_id}.cast.gz"));
    let text = tokio::task::spawn_blocking(move || crate::recorder::spool::recover_lines(&spool)).await.ok()?.ok()?;
    (!text.is_empty()).then(|| bytes::Bytes::from(text))
}

/// The answer carrying a partial recording: marked with `x-entry-recording: partial`. It
/// serves no byte ranges (a `Range` header is ignored: 200, no `Accept-Ranges`), since the
/// text grows between two requests.
pub(super) fn partial_response(session_id: &str, text: bytes::Bytes) -> axum::response::Response {
    use axum::http::header;
    use axum::response::IntoResponse;
    let headers = [
        (header::CONTENT_TYPE, "application/x-asciicast".to_owned()),
        (header::CACHE_CONTROL, "no-store".to_owned()),
        (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{session_id}.partial.cast\"")),
        (header::HeaderName::from_static("x-entry-recording"), "partial".to_owned()),
    ];
    (headers, text).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::Compression;
    use flate2::write::GzEncoder;
    use futures::StreamExt;

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
