//! One session's gate: finds the Enters in what the user types, holds each one while the line
//! it would run is read (off the terminal model's screen, or the stdin line without a TTY) and
//! checked against the rules, and says what to do with it; records every hit (row, counters,
//! notification).
//!
//! What counts as an Enter: CR, LF and Ctrl-O (readline's operate-and-get-next) outside a
//! bracketed paste; without a TTY, LF, and the line itself is held until then (a pipe has no
//! line editor that could clear it), then passed on whole or dropped. The line is read once the shell has reacted to the last
//! key passed on (its echo, a tab completion) and gone quiet for [`QUIET`], or after
//! `rule_options.echo_wait` (keys never echoed, a password): then the keys typed are matched.
//!
//! Guarantees: a session no rule applies to has nothing held (the check is one pass over the
//! rules' scopes); the line is read after every output byte the relay saw, in order; a hit's
//! row is written before the command's fate is shown; a notification never waits.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use std::future::Future;

use bytes::{Bytes, BytesMut};

use super::book::Subject;
use super::notify::Notification;
use super::reviews::Settled;
use super::{Guard, RuleBook};
use crate::index::feed::IndexFeed;
use crate::index::model::UNECHOED;
use crate::store::{RuleHitRow, now_millis};
use crate::wire::rules::{HitOutcome, RuleAction};

/// How long the shell's output must have been quiet before the line is read.
const QUIET: Duration = Duration::from_millis(15);
/// Without a TTY, the longest line held for its line feed; a longer one is checked as it
/// stands and passed on (what follows is checked as a new line).
const MAX_LINE: usize = 64 * 1024;
/// How often the gate looks again while it waits for the echo.
const LOOK_AGAIN: Duration = Duration::from_millis(2);

const PASTE_START: &[u8] = b"\x1b[200~";
const PASTE_END: &[u8] = b"\x1b[201~";

/// When the shell last got a key and last printed, shared by the relay's two halves.
#[derive(Debug)]
pub struct EchoClock {
    start: Instant,
    key_micros: AtomicU64,
    output_micros: AtomicU64,
}

impl Default for EchoClock {
    fn default() -> Self {
        Self { start: Instant::now(), key_micros: AtomicU64::new(0), output_micros: AtomicU64::new(0) }
    }
}

impl EchoClock {
    fn now(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    /// Keys went to the shell.
    pub fn key(&self) {
        self.key_micros.store(self.now(), Ordering::Relaxed);
    }

    /// The shell printed.
    pub fn output(&self) {
        self.output_micros.store(self.now(), Ordering::Relaxed);
    }

    /// Whether the shell printed after the last key and has been quiet since for `quiet`.
    fn settled(&self, quiet: Duration) -> bool {
        let (key, output) = (self.key_micros.load(Ordering::Relaxed), self.output_micros.load(Ordering::Relaxed));
        output > key && self.now().saturating_sub(output) >= u64::try_from(quiet.as_micros()).unwrap_or(u64::MAX)
    }
}

/// A command that matched: what the deciding rule does, and what the hit row and the user get.
#[derive(Debug, Clone)]
pub struct GateHit {
    pub rule: String,
    pub action: RuleAction,
    pub command: String,
    /// Sent to the shell to clear a blocked line.
    pub cancel: String,
    notify: bool,
    /// Seconds from the session's start (the recording's clock).
    pub offset: f64,
    pub at: i64,
    pub review_timeout: Duration,
}

/// What the pump does with a held Enter.
#[derive(Debug)]
pub enum Decision {
    /// No rule matched: the Enter goes on.
    Pass,
    Hit(GateHit),
    /// The line could not be read: the Enter is dropped and the user asked to press it again.
    Unread(String),
}

/// Finds Enters in typed input, following bracketed pastes across messages.
struct Scanner {
    tty: bool,
    in_paste: bool,
}

impl Scanner {
    fn next_enter(&mut self, data: &[u8]) -> Option<usize> {
        let mut i = 0;
        while i < data.len() {
            let rest = &data[i..];
            if rest.starts_with(PASTE_START) {
                self.in_paste = true;
                i += PASTE_START.len();
                continue;
            }
            if rest.starts_with(PASTE_END) {
                self.in_paste = false;
                i += PASTE_END.len();
                continue;
            }
            let enter = match data[i] {
                b'\n' => true,
                b'\r' | 0x0f => self.tty,
                _ => false,
            };
            if enter && !self.in_paste {
                return Some(i);
            }
            i += 1;
        }
        None
    }
}

/// One session's gate.
pub struct Gate {
    guard: Arc<Guard>,
    subject: Subject,
    session_id: String,
    index: Arc<IndexFeed>,
    tty: bool,
    clock: Arc<EchoClock>,
    scanner: Scanner,
    /// Whether the rules last seen apply to this session.
    applies: Option<(Arc<RuleBook>, bool)>,
    /// Without a TTY: the stdin line held until its line feed.
    line: BytesMut,
}

impl Gate {
    pub fn new(guard: Arc<Guard>, subject: Subject, session_id: String, index: Arc<IndexFeed>, tty: bool) -> Self {
        Self {
            guard,
            subject,
            session_id,
            index,
            tty,
            clock: Arc::new(EchoClock::default()),
            scanner: Scanner { tty, in_paste: false },
            applies: None,
            line: BytesMut::new(),
        }
    }

    pub fn clock(&self) -> &Arc<EchoClock> {
        &self.clock
    }

    /// Whether any rule applies to this session now (else nothing is held).
    pub fn active(&mut self) -> bool {
        let book = self.guard.rules().current();
        match &self.applies {
            // The same rules as last asked: the same answer (asked at every message typed).
            Some((seen, applies)) if Arc::ptr_eq(seen, &book) => *applies,
            _ => {
                let applies = book.any_applies(&self.subject);
                self.applies = Some((book, applies));
                applies
            }
        }
    }

    /// Where the next Enter is in `data` (its index), noting paste brackets before it; `None`:
    /// no Enter, all of `data` passes.
    pub fn next_enter(&mut self, data: &[u8]) -> Option<usize> {
        self.scanner.next_enter(data)
    }

    /// `data` (with no Enter in it) went to the shell.
    pub fn passed(&mut self) {
        self.clock.key();
    }

    /// The Enter was passed on (or dropped).
    pub fn entered(&mut self) {
        self.clock.key();
    }

    /// Whether the session has a TTY (else its stdin is held a line at a time).
    pub fn tty(&self) -> bool {
        self.tty
    }

    /// Without a TTY: `data` (no line feed in it) joins the line held until its line feed.
    /// `false` when the line would pass [`MAX_LINE`]: the caller checks and passes what is held.
    pub fn hold(&mut self, data: &[u8]) -> bool {
        self.line.extend_from_slice(data);
        self.line.len() <= MAX_LINE
    }

    /// Without a TTY: the line held so far, taken.
    pub fn take_line(&mut self) -> Bytes {
        self.line.split().freeze()
    }

    /// Without a TTY: whether part of a line is held.
    pub fn holds_line(&self) -> bool {
        !self.line.is_empty()
    }

    /// Reads the line an Enter pressed now would run and checks it against the rules.
    pub async fn check(&mut self, echo_wait: Duration) -> Decision {
        if !self.active() {
            return Decision::Pass;
        }
        let book = self.guard.rules().current();
        let command = if self.tty {
            let deadline = Instant::now() + echo_wait;
            while !self.clock.settled(QUIET) && Instant::now() < deadline {
                tokio::time::sleep(LOOK_AGAIN).await;
            }
            match self.index.line().await {
                Ok(Some(line)) if line.unechoed => {
                    // Keys the terminal hid (a password, perhaps) are matched, never kept.
                    return self.decide(&book, &line.text, Some(UNECHOED));
                }
                Ok(Some(line)) => line.text,
                // A full-screen program: its keys are not commands.
                Ok(None) => return Decision::Pass,
                // Fail closed: a line that cannot be read is not run.
                Err(silent) => return Decision::Unread(silent.to_string()),
            }
        } else {
            String::from_utf8_lossy(&self.line).chars().filter(|c| !c.is_control()).collect()
        };
        self.decide(&book, &command, None)
    }

    /// The verdict on `command`; a hit records `shown` instead of it when given.
    fn decide(&self, book: &RuleBook, command: &str, shown: Option<&str>) -> Decision {
        let Some(verdict) = book.check(command, &self.subject) else { return Decision::Pass };
        let rule = verdict.rule;
        let cancel = rule.config.cancel.clone().unwrap_or_else(|| book.options.cancel.clone());
        let notify = verdict.matched.iter().any(|r| r.config.notify);
        Decision::Hit(GateHit {
            rule: rule.name().to_owned(),
            action: rule.action(),
            command: shown.unwrap_or(command).to_owned(),
            cancel,
            notify,
            offset: self.index.offset(),
            at: now_millis(),
            review_timeout: book.review_timeout(),
        })
    }

    /// Writes the hit's row with `outcome`, counts it and sends its notification; returns its id.
    /// A row the store does not take is logged: the recording's marker still shows the hit.
    pub async fn record(&self, hit: &GateHit, outcome: HitOutcome) -> String {
        let row = RuleHitRow {
            id: uuid::Uuid::now_v7().to_string(),
            session_id: self.session_id.clone(),
            at: hit.at,
            offset_ms: (hit.offset * 1000.0) as i64,
            rule: hit.rule.clone(),
            action: hit.action.as_str().to_owned(),
            command: hit.command.clone(),
            outcome: outcome.as_str().to_owned(),
            decided_by: None,
            decided_at: None,
            user_name: self.subject.user.clone(),
            container_name: self.subject.container.name.clone(),
            node_id: self.guard.node_id().to_owned(),
        };
        super::counters::hit(outcome);
        tracing::warn!(
            hit.id = %row.id, rule = %hit.rule, action = hit.action.as_str(), outcome = outcome.as_str(),
            user = %self.subject.user, container = %self.subject.container.name, command = %hit.command,
            "a command matched a rule"
        );
        if let Err(error) = self.guard.store().insert_hit(&row).await {
            tracing::error!(hit.id = %row.id, %error, "cannot write a rule hit");
        }
        if hit.notify {
            let notifier = self.guard.notifier();
            notifier.send(Notification {
                hit_id: row.id.clone(),
                rule: row.rule.clone(),
                action: row.action.clone(),
                outcome: row.outcome.clone(),
                user: row.user_name.clone(),
                container: row.container_name.clone(),
                command: row.command.clone(),
                session_id: row.session_id.clone(),
                at: chrono::DateTime::from_timestamp_millis(row.at).unwrap_or_default().to_rfc3339(),
                replay_url: notifier.replay_url(&row.session_id, hit.offset),
                node: row.node_id.clone(),
            });
        }
        row.id
    }

    /// Settles a held command's hit with `outcome` (the user's cancel, the session's end).
    pub async fn settle(&self, hit_id: &str, outcome: HitOutcome, by: Option<&str>) {
        match self.guard.store().settle_hit(hit_id, outcome.as_str(), by).await {
            Ok(Some((_, true))) => super::counters::hit(outcome),
            Ok(_) => {}
            Err(error) => tracing::warn!(hit.id = hit_id, %error, "cannot settle a held command's hit"),
        }
    }

    /// The decision on a held command, once taken (or the timeout passed).
    pub fn decision(&self, hit_id: &str, timeout: Duration) -> impl Future<Output = Settled> + Send + 'static {
        let (guard, hit_id) = (Arc::clone(&self.guard), hit_id.to_owned());
        async move {
            let settled = guard.reviews().wait(guard.store(), &hit_id, timeout).await;
            if settled == Settled::TimedOut {
                super::counters::hit(HitOutcome::TimedOut);
            }
            settled
        }
    }

    /// A matched command never ran: the command index says so.
    pub async fn blocked(&self, command: &str) {
        self.index.blocked(command).await;
    }

    /// How long to wait for the shell's echo before reading the line.
    pub fn echo_wait(&self) -> Duration {
        self.guard.rules().current().options.echo_wait
    }

    pub fn user(&self) -> &str {
        &self.subject.user
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Enters `next_enter` finds in `chunks`, as (chunk, index) pairs.
    fn enters(tty: bool, chunks: &[&[u8]]) -> Vec<(usize, usize)> {
        let mut scanner = Scanner { tty, in_paste: false };
        let mut found = Vec::new();
        for (n, chunk) in chunks.iter().enumerate() {
            let mut offset = 0;
            while let Some(at) = scanner.next_enter(&chunk[offset..]) {
                found.push((n, offset + at));
                offset += at + 1;
            }
        }
        found
    }

    #[test]
    fn enters_are_cr_lf_and_ctrl_o_outside_a_bracketed_paste() {
        assert_eq!(enters(true, &[b"ls\r", b"a\nb\x0fc"]), [(0, 2), (1, 1), (1, 3)]);
        // Inside a paste (even one split over messages) a line break is text.
        assert_eq!(enters(true, &[b"\x1b[200~rm -rf\r/x", b"\r\x1b[201~\r"]), [(1, 7)]);
        // Without a TTY only the line feed ends a line.
        assert_eq!(enters(false, &[b"a\rb\x0fc\n"]), [(0, 5)]);
    }

    #[test]
    fn the_echo_clock_waits_for_output_after_the_last_key_and_quiet() {
        let clock = EchoClock::default();
        std::thread::sleep(Duration::from_millis(1));
        clock.key();
        assert!(!clock.settled(Duration::ZERO));
        std::thread::sleep(Duration::from_millis(2));
        clock.output();
        assert!(clock.settled(Duration::ZERO));
        assert!(!clock.settled(Duration::from_secs(60)));
    }
}
