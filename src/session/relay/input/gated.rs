//! The input pump's side of command rules: each Enter of typed input goes through the
//! session's [`Gate`]; a matched command is notified (and runs), held for review (only Ctrl-C
//! is read meanwhile), blocked (the user is told, then the shell's line cleared), or ends the
//! session. Each hit leaves a marker in the recording and, when the command never ran, a
//! `blocked` command in the index.
//!
//! Guarantees: nothing of a held or blocked line reaches the shell after its Enter is held
//! (without a TTY, nothing of the line at all); keys typed while a command is held are not
//! passed on but are in the recording, as a marker; the user's verdict line is shown and recorded
//! before the shell is told anything; a held command is settled `ended` when the session ends.

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;
use tokio::sync::oneshot;

use super::{Flow, InputEvent, InputPump, StdinClosed};
use crate::rules::reviews::Settled;
use crate::rules::{Decision, Gate, GateHit};
use crate::runtime::InputSink;
use crate::session::events::SessionEvent;
use crate::wire::rules::{HitOutcome, RuleAction};

/// A command held for review: the hit, and the input typed after its Enter in the same message.
pub(super) struct Held {
    pub(super) hit: GateHit,
    pub(super) id: String,
    /// What goes on if it is approved: the Enter (without a TTY, the whole line and its feed).
    enter: Bytes,
    rest: Bytes,
    decision: Pin<Box<dyn Future<Output = Settled> + Send>>,
}

/// Resolves with the held command's decision; never while none is held.
pub(super) async fn decision(held: &mut Option<Held>) -> Settled {
    match held {
        Some(held) => (&mut held.decision).await,
        None => std::future::pending().await,
    }
}

/// A command as a marker's label shows it: one line, at most 200 characters.
fn shortened(command: &str) -> String {
    let line: String = command.chars().map(|c| if c.is_control() { ' ' } else { c }).take(200).collect();
    if command.chars().count() > 200 { format!("{line}…") } else { line }
}

impl InputPump {
    /// Typed input: passed on, each Enter first through the rules' gate when there is one.
    pub(super) async fn typed(
        &self,
        mut rest: Bytes,
        stdin: &mut InputSink,
        gate: Option<&mut Gate>,
        held: &mut Option<Held>,
    ) -> Result<Flow, StdinClosed> {
        let Some(gate) = gate else { return self.forward(rest, stdin).await };
        if !gate.holds_line() && !gate.active() {
            return self.forward(rest, stdin).await;
        }
        while !rest.is_empty() {
            let (before, enter) = match gate.next_enter(&rest) {
                Some(at) => {
                    let before = rest.split_to(at);
                    (before, rest.split_to(1))
                }
                None if gate.tty() => {
                    gate.passed();
                    return self.forward(rest, stdin).await;
                }
                None => {
                    // Without a TTY the line waits for its line feed, unless it grew too long.
                    if gate.hold(&std::mem::take(&mut rest)) {
                        return Ok(Flow::Go);
                    }
                    (Bytes::new(), Bytes::new())
                }
            };
            if gate.tty() && !before.is_empty() {
                gate.passed();
                if let Flow::Stop = self.forward(before, stdin).await? {
                    return Ok(Flow::Stop);
                }
            } else if !before.is_empty() {
                gate.hold(&before);
            }
            let decision = gate.check(gate.echo_wait()).await;
            // Without a TTY what goes on at the Enter is the whole line held for it.
            let enter = match gate.tty() {
                true => enter,
                false => [gate.take_line(), enter].concat().into(),
            };
            let hit = match decision {
                Decision::Pass => {
                    gate.entered();
                    match self.forward(enter, stdin).await? {
                        Flow::Go => continue,
                        Flow::Stop => return Ok(Flow::Stop),
                    }
                }
                Decision::Hit(hit) => hit,
                Decision::Unread(why) => {
                    tracing::warn!(%why, "an Enter was dropped: its line could not be checked against the rules");
                    self.marker("unchecked: Enter dropped".to_owned()).await;
                    let line = "\r\nEntry: this line could not be checked against the rules; press Enter again\r\n";
                    if let Flow::Stop = self.notice(line.to_owned()).await {
                        return Ok(Flow::Stop);
                    }
                    continue;
                }
            };
            let name = hit.rule.clone();
            let label = |what: &str| format!("{what}: {name}: {}", shortened(&hit.command));
            match hit.action {
                RuleAction::Notify => {
                    gate.record(&hit, HitOutcome::Notified).await;
                    self.marker(label("notify")).await;
                    gate.entered();
                    if let Flow::Stop = self.forward(enter, stdin).await? {
                        return Ok(Flow::Stop);
                    }
                }
                RuleAction::Block => {
                    gate.record(&hit, HitOutcome::Blocked).await;
                    self.marker(label("blocked")).await;
                    let line = format!("\r\nEntry: blocked by rule \"{name}\" (ask an admin)\r\n");
                    if let Flow::Stop = self.refuse(&hit, line, stdin, gate).await? {
                        return Ok(Flow::Stop);
                    }
                }
                RuleAction::Review => {
                    let id = gate.record(&hit, HitOutcome::Pending).await;
                    self.marker(label("review")).await;
                    let line = format!(
                        "\r\nEntry: rule \"{name}\" holds this command for review: waiting for approval (Ctrl-C to cancel)"
                    );
                    if let Flow::Stop = self.notice(line).await {
                        return Ok(Flow::Stop);
                    }
                    let decision = Box::pin(gate.decision(&id, hit.review_timeout));
                    *held = Some(Held { hit, id, enter, rest, decision });
                    return Ok(Flow::Go);
                }
                RuleAction::Kill => {
                    gate.record(&hit, HitOutcome::Killed).await;
                    self.marker(label("killed")).await;
                    gate.blocked(&hit.command).await;
                    let why = format!("the command matched rule \"{name}\", which ends the session");
                    self.tell(InputEvent::RuleKill(why)).await;
                    return Ok(Flow::Stop);
                }
            }
        }
        Ok(Flow::Go)
    }

    /// Without a TTY, at the end of stdin: a last line without its line feed is checked too; it
    /// goes on if no rule stops it, else it is dropped (nothing can be held after the end).
    pub(super) async fn last_line(&self, stdin: &mut InputSink, gate: Option<&mut Gate>) -> Flow {
        let Some(gate) = gate.filter(|g| !g.tty() && g.holds_line()) else { return Flow::Go };
        let decision = gate.check(gate.echo_wait()).await;
        let line = gate.take_line();
        let hit = match decision {
            Decision::Pass => return self.forward(line, stdin).await.unwrap_or(Flow::Go),
            Decision::Unread(_) => return Flow::Go,
            Decision::Hit(hit) if hit.action == RuleAction::Notify => {
                gate.record(&hit, HitOutcome::Notified).await;
                self.marker(format!("notify: {}: {}", hit.rule, shortened(&hit.command))).await;
                return self.forward(line, stdin).await.unwrap_or(Flow::Go);
            }
            Decision::Hit(hit) => hit,
        };
        let outcome = if hit.action == RuleAction::Kill { HitOutcome::Killed } else { HitOutcome::Blocked };
        gate.record(&hit, outcome).await;
        self.marker(format!("{}: {}: {}", outcome.as_str(), hit.rule, shortened(&hit.command))).await;
        gate.blocked(&hit.command).await;
        if outcome == HitOutcome::Killed {
            let why = format!("the command matched rule \"{}\", which ends the session", hit.rule);
            self.tell(InputEvent::RuleKill(why)).await;
            return Flow::Stop;
        }
        self.notice(format!("\r\nEntry: blocked by rule \"{}\" (ask an admin)\r\n", hit.rule)).await
    }

    /// Input while a command waits for review: Ctrl-C cancels it; other keys are not passed on.
    pub(super) async fn while_held(
        &self,
        review: Held,
        content: Bytes,
        stdin: &mut InputSink,
        gate: &mut Gate,
        held: &mut Option<Held>,
    ) -> Result<Flow, StdinClosed> {
        if !content.contains(&0x03) {
            // Not passed on, but on the record: the recording says what was typed meanwhile.
            let typed = shortened(&String::from_utf8_lossy(&content));
            self.marker(format!("not passed on while held: {typed}")).await;
            *held = Some(review);
            return Ok(Flow::Go);
        }
        let user = gate.user().to_owned();
        gate.settle(&review.id, HitOutcome::Cancelled, Some(&user)).await;
        self.marker(format!("cancelled: {}: {}", review.hit.rule, shortened(&review.hit.command))).await;
        gate.blocked(&review.hit.command).await;
        gate.entered();
        if let Flow::Stop = self.notice(" - cancelled".to_owned()).await {
            return Ok(Flow::Stop);
        }
        // The user's Ctrl-C reaches the shell, which drops the line and prompts again.
        self.forward(Bytes::from_static(b"\x03"), stdin).await
    }

    /// A held command's review is settled: its Enter goes on, or its line is cleared.
    pub(super) async fn decided(
        &self,
        review: Held,
        settled: Settled,
        stdin: &mut InputSink,
        gate: &mut Gate,
        held: &mut Option<Held>,
    ) -> Flow {
        let name = review.hit.rule.clone();
        let flow = match &settled {
            Settled::Approved(by) => {
                self.marker(format!("approved: {name} by {by}")).await;
                gate.entered();
                if let Flow::Stop = self.notice(format!(" - approved by {by}")).await {
                    return Flow::Stop;
                }
                self.forward(review.enter.clone(), stdin).await
            }
            Settled::Denied(by) => {
                self.marker(format!("denied: {name} by {by}")).await;
                self.refuse(&review.hit, format!(" - denied by {by}\r\n"), stdin, gate).await
            }
            Settled::TimedOut => {
                self.marker(format!("timed out: {name}")).await;
                self.refuse(&review.hit, " - nobody approved it in time\r\n".to_owned(), stdin, gate).await
            }
            Settled::Other(outcome) => {
                self.marker(format!("{}: {name}", outcome.as_str())).await;
                self.refuse(&review.hit, format!(" - {}\r\n", outcome.as_str()), stdin, gate).await
            }
        };
        match flow {
            Ok(Flow::Go) if !review.rest.is_empty() => {
                self.typed(review.rest, stdin, Some(gate), held).await.unwrap_or(Flow::Go)
            }
            Ok(flow) => flow,
            Err(StdinClosed) => Flow::Go,
        }
    }

    /// A matched command does not run: the user is told why, then the shell's line is cleared.
    async fn refuse(
        &self,
        hit: &GateHit,
        line: String,
        stdin: &mut InputSink,
        gate: &mut Gate,
    ) -> Result<Flow, StdinClosed> {
        gate.blocked(&hit.command).await;
        gate.entered();
        if let Flow::Stop = self.notice(line).await {
            return Ok(Flow::Stop);
        }
        // The gateway's keys, not the user's: not recorded as typed (the marker says why).
        // Without a TTY nothing of the line reached the program: there is nothing to clear.
        if gate.tty() {
            self.write(stdin, hit.cancel.as_bytes()).await?;
        }
        Ok(Flow::Go)
    }

    /// Shows `line` to the user (and records it as output), before anything else is done.
    async fn notice(&self, line: String) -> Flow {
        let (shown, sent) = oneshot::channel();
        self.tell(InputEvent::Notice(Bytes::from(line), shown)).await;
        match sent.await {
            Ok(()) => Flow::Go,
            Err(_) => Flow::Stop,
        }
    }

    /// A marker in the recording.
    async fn marker(&self, label: String) {
        let _ = self.consumers.emit(SessionEvent::Marker(&label)).await;
    }
}
