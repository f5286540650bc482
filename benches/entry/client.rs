//! The bench's Entry clients: a WebSocket client that speaks the wire protocol as `entry
//! enter` does (same headers, `connect_async` like the CLI) and counts bytes to CLOSE, and
//! the real `entry enter -t` CLI as a process.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use entry::wire::protocol::{CloseReason, RequestMessage, ResponseMessage, ResponseType, WindowSize, encode};
use futures::{SinkExt, StreamExt};
use prost::Message as _;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::gateway::{ENTRY, Gateway};

/// Everything a session put out, counted.
#[derive(Debug, Default)]
pub struct Counted {
    pub bytes: u64,
    pub messages: u64,
    pub pings: u64,
    /// From connecting until CLOSE (or the end of the connection).
    pub elapsed: Duration,
    /// From connecting until the first output byte.
    pub first_output: Option<Duration>,
    pub close: Option<ResponseMessage>,
}

impl Counted {
    /// Whether the session ended with its shell exiting 0.
    pub fn exited_ok(&self) -> bool {
        self.close.as_ref().is_some_and(|c| c.reason() == CloseReason::Exited && c.exit_code == Some(0))
    }

    /// The CLOSE as text, for error messages.
    pub fn ending(&self) -> String {
        match &self.close {
            Some(c) => format!("{} ({:?}): {}", c.reason().code(), c.exit_code, String::from_utf8_lossy(&c.content)),
            None => "no CLOSE".into(),
        }
    }
}

/// One session on a gateway's `/enter`.
pub struct Ws {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    started: Instant,
}

impl Ws {
    /// Opens a TTY session in `container` running `command` (the default shell when `None`),
    /// with the headers `entry enter -t` sends, then a WINCH of 80x24 as the CLI sends first.
    pub async fn connect(gateway: &Gateway, container: &str, command: Option<&[&str]>) -> Result<Self> {
        let started = Instant::now();
        let mut request = gateway.enter_url().into_client_request()?;
        let headers = request.headers_mut();
        headers.insert("container", container.parse()?);
        headers.insert("authorization", format!("Bearer {}", gateway.token).parse()?);
        headers.insert("entry-client", "cli/bench".parse()?);
        headers.insert("tty", "true".parse()?);
        headers.insert("term-type", "xterm-256color".parse()?);
        if let Some(command) = command {
            headers.insert("command", serde_json::to_string(command)?.parse()?);
        }
        let (ws, _) = tokio_tungstenite::connect_async(request).await.context("connecting to /enter")?;
        let mut session = Self { ws, started };
        session.send(RequestMessage::winch(WindowSize { cols: 80, rows: 24 })).await?;
        Ok(session)
    }

    pub async fn send(&mut self, message: RequestMessage) -> Result<()> {
        self.ws.send(Message::Binary(encode(&message))).await?;
        Ok(())
    }

    /// Types bytes (one PLAIN message).
    pub async fn plain(&mut self, bytes: &[u8]) -> Result<()> {
        self.send(RequestMessage::plain(Bytes::copy_from_slice(bytes))).await
    }

    /// The next protocol message; `None` when the connection ended.
    pub async fn next(&mut self) -> Result<Option<ResponseMessage>> {
        loop {
            match self.ws.next().await {
                None | Some(Ok(Message::Close(_))) => return Ok(None),
                Some(Err(error)) => return Err(error.into()),
                Some(Ok(Message::Binary(bytes))) => return Ok(Some(ResponseMessage::decode(bytes)?)),
                Some(Ok(_)) => continue,
            }
        }
    }

    /// Waits for the first output bytes.
    pub async fn first_output(&mut self, within: Duration) -> Result<()> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let message = tokio::time::timeout_at(deadline, self.next()).await.context("waiting for output")??;
            match message {
                None => bail!("the session ended before any output"),
                Some(m) if m.kind() == Some(ResponseType::Close) => {
                    bail!("session closed: {}", String::from_utf8_lossy(&m.content))
                }
                Some(m) if !m.content.is_empty() && m.kind() == Some(ResponseType::Stdout) => return Ok(()),
                Some(_) => {}
            }
        }
    }

    /// Reads STDOUT until it contains `needle`; returns the bytes read.
    pub async fn read_until(&mut self, needle: u8, within: Duration) -> Result<u64> {
        let mut read = 0u64;
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let message = tokio::time::timeout_at(deadline, self.next()).await.context("waiting for output")??;
            let Some(message) = message else { bail!("the session ended while waiting for output") };
            match message.kind() {
                Some(ResponseType::Stdout | ResponseType::Stderr) => {
                    read += message.content.len() as u64;
                    if message.content.contains(&needle) {
                        return Ok(read);
                    }
                }
                Some(ResponseType::Close) => bail!("session closed: {}", String::from_utf8_lossy(&message.content)),
                _ => {}
            }
        }
    }

    /// Reads to CLOSE (then the end of the connection), counting output bytes.
    pub async fn read_to_close(mut self, within: Duration) -> Result<Counted> {
        let mut counted = Counted::default();
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let message = tokio::time::timeout_at(deadline, self.next()).await.context("waiting for CLOSE")??;
            let Some(message) = message else { break };
            match message.kind() {
                Some(ResponseType::Stdout | ResponseType::Stderr) => {
                    if counted.first_output.is_none() && !message.content.is_empty() {
                        counted.first_output = Some(self.started.elapsed());
                    }
                    counted.bytes += message.content.len() as u64;
                    counted.messages += 1;
                }
                Some(ResponseType::Ping) => counted.pings += 1,
                Some(ResponseType::Close) => {
                    counted.elapsed = self.started.elapsed();
                    counted.close = Some(message);
                    // Finish the closing handshake as the CLI does.
                    let _ = self.ws.send(Message::Close(None)).await;
                    break;
                }
                _ => {}
            }
        }
        if counted.close.is_none() {
            counted.elapsed = self.started.elapsed();
        }
        Ok(counted)
    }
}

/// `entry enter -t <container> -- <cmd…> > /dev/null` (`-T` when not `tty`) with stdin not
/// a terminal, timed as a process.
pub async fn cli_enter(gateway: &Gateway, container: &str, cmd: &[&str], tty: bool) -> Result<Duration> {
    let mut command = tokio::process::Command::new(ENTRY);
    command.args(["enter", if tty { "-t" } else { "-T" }, container, "--"]).args(cmd);
    command.env("ENTRY_SERVER", &gateway.url).env("ENTRY_TOKEN", &gateway.token);
    crate::sys::timed_quiet(command, &format!("entry enter (tty {tty}) {cmd:?}")).await
}
