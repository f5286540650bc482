//! Command rules: a regular expression on the command as the terminal displayed it, a scope
//! and an action (notify, review, block, kill), applied at the Enter that would run it.
//!
//! An input-layer guardrail with alerts, not a sandbox: what a rule never sees (a script, an
//! alias, a command built from encoded text, keys typed inside a full-screen program) runs;
//! the recording and the command index still show what was typed.
//!
//! The parts: `book` (the compiled rules and the verdict for a command), `gate` (one
//! session's side: holds each Enter, reads the line, acts, records the hit), `reviews` (a held
//! command waiting for an admin's decision, on any gateway), `notify` (the webhook and e-mail
//! sender) and `counters` (`/metrics`).
//!
//! Guarantees: the rules are swapped whole on SIGHUP (a session reads the current set at each
//! Enter, so a reload applies to running sessions, and a bad file keeps the old set); a
//! session no rule applies to never has an Enter held.

pub mod book;
pub mod counters;
pub mod gate;
pub mod notify;
pub mod reviews;

use std::sync::{Arc, RwLock};

pub use book::{Rule, RuleBook, RuleError, Subject, Verdict};
pub use gate::{Decision, Gate, GateHit};
pub use notify::{Notification, Notifier};
pub use reviews::Reviews;

use crate::config::Config;
use crate::store::Store;

/// The loaded rules, replaced whole by a reload.
#[derive(Clone)]
pub struct Rules {
    current: Arc<RwLock<Arc<RuleBook>>>,
    /// Whether sessions have a terminal model (the command index), which rules read.
    index: bool,
}

impl Rules {
    /// `index`: whether this gateway runs the command index, without which no rule can apply.
    pub fn new(book: RuleBook, index: bool) -> Self {
        Self { current: Arc::new(RwLock::new(Arc::new(book))), index }
    }

    /// The rules as they stand now.
    pub fn current(&self) -> Arc<RuleBook> {
        match self.current.read() {
            Ok(book) => Arc::clone(&book),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Compiles the rules of `config` and puts them in place; on error the old ones stay.
    pub fn reload(&self, config: &Config) -> Result<usize, RuleError> {
        let book = match config.rules.is_empty() || self.index {
            true => RuleBook::compile(&config.rules, config.rule_options.clone(), crate::store::now_millis()),
            false => Err(RuleError::NoIndex),
        };
        counters::reloaded(book.is_ok());
        let book = book?;
        let count = book.len();
        match self.current.write() {
            Ok(mut current) => *current = Arc::new(book),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(book),
        }
        Ok(count)
    }
}

/// What every session's gate shares: the rules, the notifier, pending reviews, the store.
pub struct Guard {
    rules: Rules,
    notifier: Notifier,
    reviews: Reviews,
    store: Store,
    node_id: String,
}

impl Guard {
    pub fn new(rules: Rules, notifier: Notifier, store: Store, node_id: String) -> Self {
        Self { rules, notifier, reviews: Reviews::default(), store, node_id }
    }

    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    pub fn reviews(&self) -> &Reviews {
        &self.reviews
    }

    pub fn notifier(&self) -> &Notifier {
        &self.notifier
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn node_id(&self) -> &str {
        &self.node_id
    }
}
