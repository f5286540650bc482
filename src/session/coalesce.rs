//! Output batching: under load, output chunks that are already waiting are joined into one
//! message, so a busy session sends (and records) fewer, larger frames; when idle a chunk
//! goes out alone and at once, so batching never adds latency.
//!
//! Guarantees: bytes and their order are kept, stdout and stderr are never mixed in one
//! chunk, an error or the end of the stream is passed on after the output before it, and a
//! joined chunk exceeds `max_bytes` only by the last chunk taken (which is never split).

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::BytesMut;
use futures::Stream;

use crate::runtime::{Output, OutputStream, RuntimeError};

type Item = Result<Output, RuntimeError>;

/// Joins ready output chunks of `inner` up to `max_bytes`.
pub struct Coalesce {
    inner: OutputStream,
    max_bytes: usize,
    /// An item read ahead that could not be joined; `Some(None)` is the end of the stream.
    pending: Option<Option<Item>>,
}

impl Coalesce {
    pub fn new(inner: OutputStream, max_bytes: usize) -> Self {
        Self { inner, max_bytes, pending: None }
    }
}

fn same_kind(a: &Output, b: &Output) -> bool {
    matches!((a, b), (Output::Stdout(_), Output::Stdout(_)) | (Output::Stderr(_), Output::Stderr(_)))
}

fn data(output: &Output) -> &[u8] {
    match output {
        Output::Stdout(data) | Output::Stderr(data) => data,
    }
}

impl Stream for Coalesce {
    type Item = Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Item>> {
        let this = &mut *self;
        let first = match this.pending.take() {
            Some(item) => item,
            None => match this.inner.as_mut().poll_next(cx) {
                Poll::Ready(item) => item,
                Poll::Pending => return Poll::Pending,
            },
        };
        let Some(Ok(first)) = first else { return Poll::Ready(first) };
        let mut joined: Option<BytesMut> = None;
        let mut size = data(&first).len();
        while size < this.max_bytes {
            match this.inner.as_mut().poll_next(cx) {
                Poll::Ready(Some(Ok(next))) if same_kind(&first, &next) => {
                    let buffer = joined.get_or_insert_with(|| BytesMut::from(data(&first)));
                    buffer.extend_from_slice(data(&next));
                    size = buffer.len();
                }
                // Pending registered the waker: the caller is woken when more comes.
                Poll::Pending => break,
                Poll::Ready(other) => {
                    this.pending = Some(other);
                    break;
                }
            }
        }
        let Some(buffer) = joined else { return Poll::Ready(Some(Ok(first))) };
        let buffer = buffer.freeze();
        Poll::Ready(Some(Ok(match first {
            Output::Stdout(_) => Output::Stdout(buffer),
            Output::Stderr(_) => Output::Stderr(buffer),
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use futures::StreamExt;

    fn out(text: &str) -> Item {
        Ok(Output::Stdout(Bytes::copy_from_slice(text.as_bytes())))
    }

    fn err(text: &str) -> Item {
        Ok(Output::Stderr(Bytes::copy_from_slice(text.as_bytes())))
    }

    fn show(item: &Item) -> String {
        match item {
            Ok(Output::Stdout(data)) => format!("o:{}", String::from_utf8_lossy(data)),
            Ok(Output::Stderr(data)) => format!("e:{}", String::from_utf8_lossy(data)),
            Err(error) => format!("error:{error}"),
        }
    }

    async fn collect(items: Vec<Item>, max: usize) -> Vec<String> {
        let inner: OutputStream = Box::pin(futures::stream::iter(items));
        Coalesce::new(inner, max).map(|item| show(&item)).collect().await
    }

    #[tokio::test]
    async fn ready_chunks_are_joined_per_stream_in_order() {
        let items = vec![out("a"), out("b"), err("c"), err("d"), out("e")];
        assert_eq!(collect(items, 1024).await, ["o:ab", "e:cd", "o:e"]);
    }

    #[tokio::test]
    async fn joining_stops_at_the_limit_and_never_splits_a_chunk() {
        let items = vec![out("aaaa"), out("bbbb"), out("cccc"), out("d")];
        assert_eq!(collect(items, 6).await, ["o:aaaabbbb", "o:ccccd"]);
    }

    #[tokio::test]
    async fn an_error_comes_after_the_output_before_it() {
        let items = vec![out("a"), out("b"), Err(RuntimeError::Unavailable("gone".into())), out("c")];
        let got = collect(items, 1024).await;
        assert_eq!(got[0], "o:ab");
        assert!(got[1].starts_with("error:"));
        assert_eq!(got[2], "o:c");
    }

    #[tokio::test]
    async fn a_chunk_that_is_alone_goes_out_at_once() {
        let (tx, rx) = futures::channel::mpsc::unbounded::<Item>();
        let mut stream = Coalesce::new(Box::pin(rx), 1024);
        tx.unbounded_send(out("prompt$ ")).unwrap();
        // Nothing else is waiting: the chunk is not held back for more.
        let first = tokio::time::timeout(std::time::Duration::from_secs(1), stream.next()).await.unwrap().unwrap();
        assert_eq!(show(&first), "o:prompt$ ");
        drop(tx);
        assert!(stream.next().await.is_none());
    }
}
