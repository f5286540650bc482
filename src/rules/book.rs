//! A compiled set of command rules: one `RegexSet` over every pattern (a command is matched
//! against all rules in one pass), each rule's scope, and the verdict for a command.
//!
//! Guarantees: compiling refuses a bad pattern, a bad container glob, an empty or duplicate
//! name, naming the rule; of several matching rules in scope the strongest action decides
//! (kill, block, review, notify), the first in the file among equals; a command no rule in
//! scope matches gets no verdict; matching is bounded by the `regex` crate's linear time.

use std::collections::HashSet;
use std::time::Duration;

use regex::RegexSet;

use crate::auth::Patterns;
use crate::config::{RuleConfig, RuleOptions};
use crate::runtime::ContainerInfo;
use crate::wire::api::Role;
use crate::wire::rules::{RuleAction, RuleList, RuleView};

/// A rule that cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    #[error("rule {name:?}: bad pattern: {reason}")]
    Pattern { name: String, reason: String },
    #[error("rule {name:?}: {reason}")]
    Containers { name: String, reason: String },
    #[error("a rule has an empty name")]
    EmptyName,
    #[error("two rules are named {0:?}")]
    Duplicate(String),
    #[error("the rules together are too large to compile: {0}")]
    TooLarge(String),
    #[error("command rules read the command index: [index] enabled must be true when [[rules]] are set")]
    NoIndex,
}

/// Who and where a session is, as a rule's scope sees it.
#[derive(Debug, Clone)]
pub struct Subject {
    pub user: String,
    pub role: Role,
    pub container: ContainerInfo,
}

/// One compiled rule.
#[derive(Debug)]
pub struct Rule {
    pub config: RuleConfig,
    containers: Option<Patterns>,
}

impl Rule {
    /// Whether the rule applies to sessions of `subject`.
    pub fn applies_to(&self, subject: &Subject) -> bool {
        let config = &self.config;
        (config.roles.is_empty() || config.roles.contains(&subject.role))
            && (config.users.is_empty() || config.users.contains(&subject.user))
            && self.containers.as_ref().is_none_or(|p| p.allows(&subject.container))
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }

    pub fn action(&self) -> RuleAction {
        self.config.action
    }
}

/// The loaded rules.
#[derive(Debug)]
pub struct RuleBook {
    rules: Vec<Rule>,
    set: RegexSet,
    pub options: RuleOptions,
    /// When they were loaded (Unix milliseconds).
    pub loaded_at: i64,
}

/// What a command that matched gets: the deciding rule, and every rule in scope that matched.
#[derive(Debug)]
pub struct Verdict<'a> {
    pub rule: &'a Rule,
    pub matched: Vec<&'a Rule>,
}

impl RuleBook {
    /// Compiles `rules`; the first bad one is an error.
    pub fn compile(rules: &[RuleConfig], options: RuleOptions, loaded_at: i64) -> Result<Self, RuleError> {
        let mut names = HashSet::new();
        let mut compiled = Vec::with_capacity(rules.len());
        for config in rules {
            if config.name.trim().is_empty() {
                return Err(RuleError::EmptyName);
            }
            if !names.insert(config.name.as_str()) {
                return Err(RuleError::Duplicate(config.name.clone()));
            }
            // Each pattern alone first, so an error names its rule.
            regex::Regex::new(&config.pattern)
                .map_err(|e| RuleError::Pattern { name: config.name.clone(), reason: e.to_string() })?;
            let containers = match config.containers.is_empty() {
                true => None,
                false => Some(
                    Patterns::new(&config.containers)
                        .map_err(|e| RuleError::Containers { name: config.name.clone(), reason: e.to_string() })?,
                ),
            };
            compiled.push(Rule { config: config.clone(), containers });
        }
        let set =
            RegexSet::new(rules.iter().map(|r| r.pattern.as_str())).map_err(|e| RuleError::TooLarge(e.to_string()))?;
        Ok(Self { rules: compiled, set, options, loaded_at })
    }

    /// No rules at all.
    pub fn empty() -> Self {
        Self { rules: Vec::new(), set: RegexSet::empty(), options: RuleOptions::default(), loaded_at: 0 }
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Whether any rule applies to sessions of `subject` (else their Enters are never held).
    pub fn any_applies(&self, subject: &Subject) -> bool {
        self.rules.iter().any(|rule| rule.applies_to(subject))
    }

    /// The verdict on `command` typed in a session of `subject`; `None`: no rule in scope matches.
    pub fn check(&self, command: &str, subject: &Subject) -> Option<Verdict<'_>> {
        let text = normalised(command);
        let matched: Vec<&Rule> =
            self.set.matches(&text).into_iter().map(|i| &self.rules[i]).filter(|r| r.applies_to(subject)).collect();
        // The strongest action wins; `max_by_key` keeps the last of equals, so walk in reverse.
        let rule = matched.iter().rev().max_by_key(|r| r.action()).copied()?;
        Some(Verdict { rule, matched })
    }

    pub fn review_timeout(&self) -> Duration {
        self.options.review_timeout
    }

    /// The rules as the API shows them.
    pub fn view(&self) -> RuleList {
        RuleList {
            rules: self
                .rules
                .iter()
                .map(|r| RuleView {
                    name: r.config.name.clone(),
                    pattern: r.config.pattern.clone(),
                    action: r.config.action,
                    roles: r.config.roles.clone(),
                    users: r.config.users.clone(),
                    containers: r.config.containers.clone(),
                    notify: r.config.notify,
                })
                .collect(),
            review_timeout_secs: self.options.review_timeout.as_secs(),
            loaded_at: self.loaded_at,
        }
    }
}

/// The command as the shell will run it, for matching: a `\` line continuation joins its lines
/// (`rm -rf \` then `/data` is `rm -rf /data`), and other line breaks become spaces.
fn normalised(command: &str) -> String {
    command.replace("\\\n", "").replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::ComposeAddress;

    fn subject(user: &str, role: Role, container: &str) -> Subject {
        Subject {
            user: user.into(),
            role,
            container: ContainerInfo {
                engine: String::new(),
                state: "running".into(),
                id: "0".repeat(64),
                name: container.into(),
                image: "img".into(),
                running: true,
                compose: Some(ComposeAddress { project: "shop".into(), service: "web".into(), number: 1 }),
                labels: Default::default(),
                user: String::new(),
                hazards: Default::default(),
            },
        }
    }

    #[test]
    fn the_strongest_matching_rule_in_scope_decides() {
        let mut only_bank = RuleConfig::new("bank-kill", r"rm\s+-rf", RuleAction::Kill);
        only_bank.containers = vec!["bank-*".into()];
        let rules = [
            RuleConfig::new("rm-notify", r"\brm\b", RuleAction::Notify),
            RuleConfig::new("data-block", r"rm\s+-rf\s+/data", RuleAction::Block),
            RuleConfig::new("data-review", r"/data", RuleAction::Review),
            only_bank,
        ];
        let book = RuleBook::compile(&rules, RuleOptions::default(), 0).unwrap();
        let dev = subject("dev", Role::Developer, "shop-web-1");
        let verdict = book.check("rm -rf /data/x", &dev).unwrap();
        assert_eq!(verdict.rule.name(), "data-block");
        assert_eq!(verdict.matched.len(), 3);
        assert_eq!(book.check("rm notes", &dev).unwrap().rule.name(), "rm-notify");
        assert!(book.check("ls /tmp", &dev).is_none());
        // Out of scope, the kill rule does not match; in scope it decides.
        assert_eq!(
            book.check("rm -rf /data", &subject("dev", Role::Developer, "bank-db-1")).unwrap().rule.name(),
            "bank-kill"
        );
    }

    #[test]
    fn continuation_lines_are_matched_as_the_shell_joins_them() {
        let book = RuleBook::compile(
            &[RuleConfig::new("d", r"rm\s+-rf\s+/data", RuleAction::Block)],
            RuleOptions::default(),
            0,
        )
        .unwrap();
        let dev = subject("dev", Role::Developer, "shop-web-1");
        assert!(book.check("rm -rf \\\n/data", &dev).is_some());
        assert!(book.check("rm -rf\n/data", &dev).is_some());
    }

    #[test]
    fn scope_by_role_user_and_compose_address() {
        let mut scoped = RuleConfig::new("s", "danger", RuleAction::Block);
        scoped.roles = vec![Role::Developer];
        scoped.users = vec!["alice".into()];
        scoped.containers = vec!["shop.*".into()];
        let book = RuleBook::compile(&[scoped], RuleOptions::default(), 0).unwrap();
        assert!(book.any_applies(&subject("alice", Role::Developer, "x")));
        assert!(!book.any_applies(&subject("bob", Role::Developer, "x")));
        assert!(!book.any_applies(&subject("alice", Role::Admin, "x")));
        assert!(book.check("danger", &subject("alice", Role::Developer, "x")).is_some());
    }

    #[test]
    fn bad_rules_are_refused_with_their_name() {
        let bad = RuleBook::compile(&[RuleConfig::new("broken", "rm (", RuleAction::Block)], RuleOptions::default(), 0);
        assert!(matches!(bad, Err(RuleError::Pattern { ref name, .. }) if name == "broken"), "{bad:?}");
        let twice = [RuleConfig::new("a", "x", RuleAction::Block), RuleConfig::new("a", "y", RuleAction::Notify)];
        assert!(matches!(RuleBook::compile(&twice, RuleOptions::default(), 0), Err(RuleError::Duplicate(_))));
        assert!(matches!(
            RuleBook::compile(&[RuleConfig::new(" ", "x", RuleAction::Block)], RuleOptions::default(), 0),
            Err(RuleError::EmptyName)
        ));
        let mut glob = RuleConfig::new("g", "x", RuleAction::Block);
        glob.containers = vec!["a[".into()];
        assert!(matches!(RuleBook::compile(&[glob], RuleOptions::default(), 0), Err(RuleError::Containers { .. })));
    }
}
