//! The client side of a session (`entry enter`): connects to a gateway's `/enter`, relays the
//! local stdin to the shell and its output to the local stdout/stderr, and returns the exit
//! code the session ended with.
//!
//! Guarantees: the terminal is restored on every way out; stdin never blocks output; a
//! gateway silent for `SERVER_TIMEOUT` is treated as lost (exit 255, like ssh); a session
//! that ended without a shell exit code exits 125 (like `docker exec` when the daemon fails).

pub mod api;
mod terminal;
pub mod tls;

pub use terminal::RawMode;

use std::io::IsTerminal;
use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use http::HeaderValue;
use prost::Message as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::wire::protocol::{CloseReason, RequestMessage, ResponseMessage, ResponseType, Utf8Carry, encode};

/// Exit code when the session ended without the shell's own exit code.
pub const EXIT_NO_CODE: i32 = 125;
/// Exit code when the connection to the gateway was lost.
pub const EXIT_LOST: i32 = 255;
/// A gateway that sends nothing (not even its 10 s PING) for this long is gone.
const SERVER_TIMEOUT: Duration = Duration::from_secs(45);

/// What to enter and how.
#[derive(Debug, Clone)]
pub struct EnterOptions {
    /// Gateway base URL, `http(s)://host:port` or `ws(s)://…`.
    pub server: String,
    pub token: Option<String>,
    pub container: String,
    pub command: Option<Vec<String>>,
    pub user: Option<String>,
    pub workdir: Option<String>,
    pub env: Vec<String>,
    /// Allocate a TTY (default: when stdin is a terminal).
    pub tty: bool,
    /// A PEM file of CA certificates trusted besides the web PKI's (`wss://` only).
    pub ca: Option<std::path::PathBuf>,
}

/// Why a session could not run.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("bad server URL {0:?}: use http(s):// or ws(s)://")]
    BadServer(String),
    #[error("bad header value for {0}")]
    BadHeader(&'static str),
    #[error("cannot connect to {url}: {source}")]
    Connect { url: String, source: Box<tokio_tungstenite::tungstenite::Error> },
    #[error(transparent)]
    Ca(#[from] tls::CaError),
}

/// The `/enter` URL for a server base URL.
pub fn enter_url(server: &str) -> Result<String, ClientError> {
    let server = server.trim_end_matches('/');
    let rest = server
        .strip_prefix("http://")
        .map(|r| format!("ws://{r}"))
        .or_else(|| server.strip_prefix("https://").map(|r| format!("wss://{r}")))
        .or_else(|| (server.starts_with("ws://") || server.starts_with("wss://")).then(|| server.to_owned()))
        .ok_or_else(|| ClientError::BadServer(server.to_owned()))?;
    Ok(format!("{rest}/enter"))
}

/// Runs one session to its end; returns the exit code for the process.
pub async fn enter(options: EnterOptions) -> Result<i32, ClientError> {
    let url = enter_url(&options.server)?;
    let mut request = url.as_str().into_client_request().map_err(|_| ClientError::BadServer(options.server.clone()))?;
    let headers = request.headers_mut();
    let mut set = |name: &'static str, value: &str| -> Result<(), ClientError> {
        headers.insert(name, HeaderValue::from_bytes(value.as_bytes()).map_err(|_| ClientError::BadHeader(name))?);
        Ok(())
    };
    set("container", &options.container)?;
    set("entry-client", concat!("cli/", env!("CARGO_PKG_VERSION")))?;
    set("tty", if options.tty { "true" } else { "false" })?;
    if let Some(token) = &options.token {
        set("authorization", &format!("Bearer {token}"))?;
    }
    if options.tty {
        let term = std::env::var("TERM").unwrap_or_else(|_| "xterm-256color".into());
        set("term-type", &term)?;
    }
    if let Some(command) = &options.command {
        set("command", &json_list(command))?;
    }
    if !options.env.is_empty() {
        set("env", &json_list(&options.env))?;
    }
    if let Some(user) = &options.user {
        set("user", user)?;
    }
    if let Some(workdir) = &options.workdir {
        set("workdir", workdir)?;
    }
    let connector = match &options.ca {
        Some(ca) => Some(tokio_tungstenite::Connector::Rustls(tls::client_config(ca)?)),
        None => None,
    };
    let (socket, _) = tokio_tungstenite::connect_async_tls_with_config(request, None, false, connector)
        .await
        .map_err(|source| ClientError::Connect { url: url.clone(), source: Box::new(source) })?;
    Ok(relay(socket, options.tty).await)
}

fn json_list(items: &[String]) -> String {
    // serde_json cannot fail on a list of strings.
    serde_json::to_string(items).unwrap_or_else(|_| "[]".into())
}

/// What ended the session, from the client's side.
enum End {
    Closed(ResponseMessage),
    Lost(String),
}

async fn relay<S>(socket: tokio_tungstenite::WebSocketStream<S>, tty: bool) -> i32
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (mut sink, mut stream) = socket.split();
    let mut raw = if tty && std::io::stdin().is_terminal() { Some(RawMode::enter()) } else { None };
    let (input_tx, mut input) = mpsc::channel::<RequestMessage>(16);
    let stdin_task = tokio::spawn(read_stdin(input_tx, tty));
    let mut winch = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change()).ok();
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    if tty {
        if let Some(size) = terminal::size() {
            let _ = sink.send(Message::Binary(encode(&RequestMessage::winch(size)))).await;
        }
    }
    let mut stdout = tokio::io::stdout();
    let mut stderr = tokio::io::stderr();
    let mut input_open = true;
    let end = loop {
        tokio::select! {
            frame = tokio::time::timeout(SERVER_TIMEOUT, stream.next()) => {
                let message = match frame {
                    Err(_) => break End::Lost("the gateway stopped answering".into()),
                    Ok(None) => break End::Lost("the gateway closed the connection without a reason".into()),
                    Ok(Some(Err(error))) => break End::Lost(format!("connection lost: {error}")),
                    Ok(Some(Ok(Message::Binary(bytes)))) => bytes,
                    Ok(Some(Ok(Message::Close(_)))) => break End::Lost("the gateway closed the connection without a reason".into()),
                    Ok(Some(Ok(_))) => continue,
                };
                let Ok(response) = ResponseMessage::decode(message) else {
                    break End::Lost("the gateway sent a malformed message".into());
                };
                match response.kind() {
                    Some(ResponseType::Stdout) => {
                        if stdout.write_all(&response.content).await.is_err() || stdout.flush().await.is_err() {
                            break End::Lost("cannot write to stdout".into());
                        }
                    }
                    Some(ResponseType::Stderr) => {
                        let _ = stderr.write_all(&response.content).await;
                        let _ = stderr.flush().await;
                    }
                    Some(ResponseType::Close) => break End::Closed(response),
                    Some(ResponseType::Ping | ResponseType::Resize) | None => {}
                }
            }
            message = input.recv(), if input_open => match message {
                Some(message) => {
                    if sink.send(Message::Binary(encode(&message))).await.is_err() {
                        break End::Lost("connection lost while sending".into());
                    }
                }
                None => input_open = false,
            },
            Some(()) = recv(&mut winch) => {
                if let Some(size) = terminal::size() {
                    let _ = sink.send(Message::Binary(encode(&RequestMessage::winch(size)))).await;
                }
            }
            Some(()) = recv(&mut hangup) => break End::Lost("hung up".into()),
            Some(()) = recv(&mut terminate) => break End::Lost("terminated".into()),
        }
    };
    stdin_task.abort();
    if let Some(raw) = raw.as_mut() {
        raw.restore();
    }
    let _ = sink.send(Message::Close(None)).await;
    match end {
        End::Closed(close) => {
            let reason = close.reason();
            let line = String::from_utf8_lossy(&close.content);
            // A script's own exit needs no comment; everything else does.
            if !line.is_empty() && (tty || reason != CloseReason::Exited) {
                eprintln!("{line}");
            }
            match (close.exit_code, reason) {
                (Some(code), _) => code,
                (None, CloseReason::Exited) => 0,
                (None, _) => EXIT_NO_CODE,
            }
        }
        End::Lost(why) => {
            eprintln!("entry: {why}");
            EXIT_LOST
        }
    }
}

async fn recv(signal: &mut Option<tokio::signal::unix::Signal>) -> Option<()> {
    match signal {
        Some(signal) => signal.recv().await,
        None => std::future::pending().await,
    }
}

/// Reads stdin into PLAIN messages that never end inside a UTF-8 character; at end of input
/// sends what is held and STDIN_EOF (a TTY session sends no EOF: there, ^D is an ordinary
/// byte for the shell).
async fn read_stdin(messages: mpsc::Sender<RequestMessage>, tty: bool) {
    let mut stdin = tokio::io::stdin();
    let mut buffer = vec![0u8; 32 * 1024];
    let mut carry = Utf8Carry::new();
    loop {
        match stdin.read(&mut buffer).await {
            Ok(0) | Err(_) => {
                let rest = carry.finish();
                if !rest.is_empty() {
                    let _ = messages.send(RequestMessage::plain(rest)).await;
                }
                if !tty {
                    let _ = messages.send(RequestMessage::stdin_eof()).await;
                }
                return;
            }
            Ok(n) => {
                let data = carry.push(Bytes::copy_from_slice(&buffer[..n]));
                if !data.is_empty() && messages.send(RequestMessage::plain(data)).await.is_err() {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(enter_url("http://127.0.0.1:8080").unwrap(), "ws://127.0.0.1:8080/enter");
        assert_eq!(enter_url("https://entry.example/").unwrap(), "wss://entry.example/enter");
        assert_eq!(enter_url("ws://h:1").unwrap(), "ws://h:1/enter");
        assert!(enter_url("ftp://h").is_err());
    }
}
