//! One session from the upgraded socket to its CLOSE: authorise, start the recording, write
//! the session row, start the exec, relay, and record how it ended.
//!
//! Guarantees: a request that is not authorised, or whose exec user or environment the exec
//! policy refuses, creates neither an exec nor a row; the row and the recording's header
//! carry what shaped the exec (user asked and effective, workdir, environment); no exec is
//! created unless the session's row could be written (a bastion that cannot audit does not
//! admit), nor, in strict recording mode, unless its recording could start; the row says
//! `finalising` until the recorder has stored the recording and written the final status; a
//! session that ends while the store is unreachable gets its CLOSE at once and its final row
//! once the store answers again (the store keeps and retries those writes).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::ws::WebSocket;
use futures::StreamExt;
use tracing::Instrument;

use super::admit::Refusal;
use super::events::{Consumers, EventSink, NoRecorder, SessionEvent};
use super::exec_policy::{self, ExecShape};
use super::live::OutputTap;
use super::relay::{Ending, Exec, SessionStats};
use super::request::{EnterRequest, RequestError};
use super::{Engine, close};
use crate::index::feed::IndexFeed;
use crate::index::model::OutputCaps;
use crate::recorder::{RecordingMeta, SessionRecorder, final_status};
use crate::rules::{Gate, Subject};
use crate::store::{NewSession, SessionEnd, SessionStatus, now_millis};
use crate::wire::protocol::CloseReason;

impl Engine {
    /// Runs one session on an upgraded WebSocket; the caller tracks it as a task of
    /// [`Engine::tracker`].
    pub async fn session(&self, socket: WebSocket, request: Result<EnterRequest, RequestError>, peer: SocketAddr) {
        let session_id = uuid::Uuid::now_v7().to_string();
        let span = tracing::info_span!("session", session.id = %session_id, peer = %peer, node = %self.node_id);
        async move {
            let (mut sink, stream) = socket.split();
            match self.run(&mut sink, stream, request, peer, &session_id).await {
                Ok(()) => {}
                Err((refusal, stream)) => {
                    super::counters::session_refused(refusal.reason);
                    tracing::info!(reason = refusal.reason.code(), "refused: {}", refusal.line);
                    close(&mut sink, Some(stream), &Ending::from(refusal).message()).await;
                }
            }
        }
        .instrument(span)
        .await
    }

    async fn run(
        &self,
        sink: &mut futures::stream::SplitSink<WebSocket, axum::extract::ws::Message>,
        stream: futures::stream::SplitStream<WebSocket>,
        request: Result<EnterRequest, RequestError>,
        peer: SocketAddr,
        session_id: &str,
    ) -> Result<(), (Refusal, futures::stream::SplitStream<WebSocket>)> {
        // Final row writes that find the store unreachable are retried by this task.
        self.store.start_catch_up(&self.tracker, &self.shutdown);
        let request = match request {
            Err(error) => return Err((Refusal::new(CloseReason::BadRequest, format!("bad request: {error}")), stream)),
            Ok(_) if self.shutdown.is_cancelled() => {
                return Err((Refusal::new(CloseReason::Shutdown, "gateway shutting down"), stream));
            }
            Ok(request) => request,
        };
        let begun = std::time::Instant::now();
        // Admission, the exec's start and the ending run boxed: a session's task then holds, while
        // it relays, only the relay's state rather than the largest of these (sized into it).
        let super::admit::Admission { principal, engine, container, slot: _slot } =
            match Box::pin(self.authorise(&request, peer.ip())).await {
                Ok(admitted) => admitted,
                Err(refusal) => return Err((refusal, stream)),
            };
        // Who the exec runs as and what environment it gets are decided before it exists.
        let shape = match exec_policy::check(&self.config.exec, &request, (&principal).into(), &container) {
            Ok(shape) => shape,
            Err(refused) => return Err((refused.into(), stream)),
        };
        // Admitted: of the principal the session keeps who it is, not its compiled container
        // patterns (several KiB of regex per session, for a check that is done).
        let principal = Admitted::from(principal);
        // A full recording disk takes the store and every recording with it: no new sessions.
        if let Some(recorder) = &self.recorder {
            if let Some(line) = Box::pin(recorder.disk_low()).await {
                return Err((Refusal::new(CloseReason::RecordingFailed, line), stream));
            }
        }
        let started_at = now_millis();
        let command = self.command_of(&request);
        let (recorder, recording_problem) =
            match self.start_recording(&request, session_id, started_at, &principal.user, &container.name, &shape) {
                Ok(recorder) => (recorder, None),
                Err(refusal) if self.recording_required() => return Err((refusal, stream)),
                Err(refusal) => {
                    tracing::warn!("session goes on unrecorded: {}", refusal.line);
                    (None, Some(refusal.line))
                }
            };
        let row = NewSession {
            id: session_id.to_owned(),
            user: principal.user.clone(),
            role: principal.role.as_str().to_owned(),
            token_id: principal.token_id.clone(),
            source_addr: peer.to_string(),
            client_kind: request.client.as_str().to_owned(),
            engine: engine.name.clone(),
            container_id: container.id.clone(),
            container_name: container.name.clone(),
            container_image: container.image.clone(),
            container_address: container.compose.as_ref().map(ToString::to_string),
            command,
            tty: request.tty,
            exec_user: shape.user_asked.clone(),
            exec_user_effective: shape.user_effective.clone(),
            workdir: shape.workdir.clone(),
            exec_env: shape.env.clone(),
            node_id: self.node_id.clone(),
            exec_id: String::new(),
            started_at,
        };
        let stats = Arc::new(SessionStats::default());
        let live = self.live.insert(session_id, principal.token_id.clone(), Arc::clone(&stats));
        let _live = LiveGuard { live: &self.live, id: session_id };
        let index = self.start_index(session_id, request.tty, recorder.as_deref());
        if let Some(index) = &index {
            live.tap.set_model(Arc::clone(index));
        }
        let consumers = self.consumers(recorder.as_ref(), index.as_ref(), &stats, &live.tap);
        let prepared = begun.elapsed();
        // A session that cannot be audited is not started, whatever the recording mode.
        if let Err(error) = Box::pin(self.store.insert_session(&row)).await {
            if let Some(recorder) = &recorder {
                recorder.finish(None, SessionStatus::Failed).await;
            }
            let line = format!("cannot write the session's audit row, so it is not started: {error}");
            return Err((Refusal::new(CloseReason::Internal, line), stream));
        }
        if let Some(problem) = &recording_problem {
            self.note_recording_error(session_id, problem).await;
        }
        let audited = begun.elapsed();
        match Box::pin(self.start_exec(&request, &engine, &container, session_id)).await {
            Err(refusal) => {
                let ending = Ending::from(refusal);
                self.end(session_id, &ending, &stats, recorder.is_some(), index.as_deref(), &consumers).await;
                tracing::info!(reason = ending.reason.code(), "session failed to start: {}", ending.line);
                close(sink, Some(stream), &ending.message()).await;
            }
            Ok(started) => {
                tracing::info!(
                    user = %principal.user,
                    engine = %engine.name,
                    container = %container.name,
                    container.id = %container.id,
                    exec.id = %started.exec_id,
                    command = ?started.command,
                    client = request.client.as_str(),
                    "session started"
                );
                let exec_started = begun.elapsed();
                if let Err(error) = Box::pin(self.store.set_exec(session_id, &started.exec_id, &started.command)).await
                {
                    tracing::warn!(%error, "cannot record the exec id");
                }
                tracing::debug!(?prepared, ?audited, ?exec_started, relaying = ?begun.elapsed(), "session start phases");
                let exec_id = started.exec_id.clone();
                let exec = Exec {
                    id: started.exec_id,
                    runtime: Arc::clone(&engine.runtime),
                    output: started.io.output,
                    input: started.io.input,
                };
                let gate = index.as_ref().map(|index| {
                    let subject =
                        Subject { user: principal.user.clone(), role: principal.role, container: container.clone() };
                    Gate::new(Arc::clone(&self.guard), subject, session_id.to_owned(), Arc::clone(index), request.tty)
                });
                let (ending, stream) =
                    self.relay(sink, stream, exec, recorder.clone(), consumers.clone(), live.stop, gate).await;
                Box::pin(self.end(session_id, &ending, &stats, recorder.is_some(), index.as_deref(), &consumers)).await;
                tracing::info!(reason = ending.reason.code(), exit_code = ?ending.exit_code, "session ended: {}", ending.line);
                // The client hears why at once; the shell is reaped meanwhile.
                let reap = async {
                    if ending.reason != CloseReason::Exited {
                        let outcome = self.reaper.reap(&engine.name, &container.id, &exec_id, session_id).await;
                        let (status, killed, detail) = (outcome.status.as_str(), outcome.killed, outcome.detail);
                        if let Err(error) = self.store.set_reap(session_id, status, killed, &detail).await {
                            tracing::warn!(%error, "cannot record the reap");
                        }
                    }
                };
                let message = ending.message();
                Box::pin(async { tokio::join!(close(sink, stream, &message), reap) }).await;
            }
        }
        Ok(())
    }

    fn recording_required(&self) -> bool {
        self.recorder.as_ref().is_some_and(|r| r.required())
    }
}

/// Removes a session from this node's live set when dropped (on every way out).
struct LiveGuard<'a> {
    live: &'a super::LiveSessions,
    id: &'a str,
}

impl Drop for LiveGuard<'_> {
    fn drop(&mut self) {
        self.live.remove(self.id);
    }
}

impl Engine {
    fn start_recording(
        &self,
        request: &EnterRequest,
        session_id: &str,
        started_at: i64,
        user: &str,
        container: &str,
        shape: &ExecShape,
    ) -> Result<Option<Arc<SessionRecorder>>, Refusal> {
        let Some(recorder) = &self.recorder else { return Ok(None) };
        let meta = RecordingMeta {
            session_id: session_id.to_owned(),
            started_at,
            user: user.to_owned(),
            container: container.to_owned(),
            command: self.command_of(request),
            term: self.term_of(request),
            tty: request.tty,
            exec_user: shape.user_asked.clone(),
            exec_user_effective: shape.user_effective.clone(),
            workdir: shape.workdir.clone(),
            env: shape.env.clone(),
        };
        recorder
            .start(meta)
            .map(|r| Some(Arc::new(r)))
            .map_err(|e| Refusal::new(CloseReason::RecordingFailed, format!("recording cannot start: {e}")))
    }

    /// The terminal model of the command index, when indexing is on.
    fn start_index(&self, session_id: &str, tty: bool, recorder: Option<&SessionRecorder>) -> Option<Arc<IndexFeed>> {
        let config = &self.config.index;
        if !config.enabled {
            return None;
        }
        let caps = OutputCaps {
            head: usize::try_from(config.output_head.0).unwrap_or(usize::MAX),
            tail: usize::try_from(config.output_tail.0).unwrap_or(usize::MAX),
        };
        let store = self.store.clone();
        let started = recorder.map_or_else(std::time::Instant::now, SessionRecorder::started);
        let done = recorder.map(|r| Box::new(r.hold_final_row()) as Box<dyn Send>);
        let feed = IndexFeed::start(
            started,
            store,
            session_id.to_owned(),
            tty,
            caps,
            config.queue_capacity,
            done,
            &self.tracker,
            &self.shutdown,
        );
        Some(Arc::new(feed))
    }

    /// The consumers of this session's events, in the order they get each: the watchers (who
    /// see output without waiting on the recorder's queue), the recorder (input it cannot take
    /// goes no further), the terminal model (which so reads only input passed on), the
    /// session's counters (which so count only input passed on).
    fn consumers(
        &self,
        recorder: Option<&Arc<SessionRecorder>>,
        index: Option<&Arc<IndexFeed>>,
        stats: &Arc<SessionStats>,
        tap: &Arc<OutputTap>,
    ) -> Consumers {
        let mut consumers = Consumers::default();
        consumers.register(Arc::clone(tap) as Arc<dyn EventSink>);
        match recorder {
            Some(recorder) => consumers.register(Arc::clone(recorder) as Arc<dyn EventSink>),
            None if self.recorder.is_some() => {
                consumers.register(Arc::new(NoRecorder("its recording could not start".to_owned())))
            }
            None => {}
        }
        if let Some(index) = index {
            consumers.register(Arc::clone(index) as Arc<dyn EventSink>);
        }
        consumers.register(Arc::clone(stats) as Arc<dyn EventSink>);
        consumers
    }

    /// Writes how the session ended, tells the terminal model (which writes its last index
    /// rows while the recorder holds the final row for it), then the other consumers (the
    /// recorder stores the recording and finalises the row, the counters count the session).
    async fn end(
        &self,
        session_id: &str,
        ending: &Ending,
        stats: &SessionStats,
        recorded: bool,
        index: Option<&IndexFeed>,
        consumers: &Consumers,
    ) {
        let status = final_status(ending.reason);
        let end = SessionEnd {
            ended_at: now_millis(),
            exit_code: ending.exit_code.map(i64::from),
            close_reason: ending.reason.code().to_owned(),
            close_detail: ending.line.clone(),
            initial_size: stats.initial_size(),
            last_size: stats.last_size(),
            bytes_in: stats.bytes_in(),
            bytes_out: stats.bytes_out(),
        };
        let row_status = if recorded { SessionStatus::Finalising } else { status };
        match self.store.finish_session(session_id, &end, row_status).await {
            Ok(()) => {}
            // Kept by the store and written once it answers again.
            Err(error) if error.is_unreachable() => tracing::warn!(%error, "the session's end waits for the store"),
            Err(error) => tracing::error!(%error, "cannot write how the session ended"),
        }
        if let Some(index) = index {
            index.end().await;
        }
        let _ = consumers.emit(SessionEvent::End(ending)).await;
    }

    async fn note_recording_error(&self, session_id: &str, problem: &str) {
        if let Err(error) = self.store.set_recording_error(session_id, problem).await {
            tracing::warn!(%error, "cannot note the recording problem");
        }
    }
}

/// Who runs an admitted session.
struct Admitted {
    user: String,
    role: crate::auth::Role,
    token_id: Option<String>,
}

impl From<crate::auth::Principal> for Admitted {
    /// Takes the identity and drops the rest here (fields left in a partly moved binding would
    /// live until its scope ends: the whole session).
    fn from(principal: crate::auth::Principal) -> Self {
        Self { user: principal.user, role: principal.role, token_id: principal.token_id }
    }
}
