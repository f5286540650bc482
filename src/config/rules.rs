//! `[[rules]]`, `[rule_options]` and `[notify]`: command rules (a regular expression on the
//! command as the terminal displayed it, a scope, an action) and where their hits are sent.
//!
//! Guarantees: the rules are only read here; they are compiled (and a bad pattern, glob or
//! duplicate name refused with the rule's name) by [`crate::rules::RuleBook::compile`], both at
//! start-up and on SIGHUP, so a reload with a bad rule keeps the rules already loaded. The SMTP
//! password and the webhook's URL (which may carry a secret) never appear in `Debug`.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::redact_url;
use crate::wire::api::Role;
use crate::wire::rules::RuleAction;

/// One `[[rules]]` entry.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Shown to the user, in alerts and in the recording's marker.
    pub name: String,
    /// A Rust `regex` matched anywhere in the command as displayed (`(?i)` for any case).
    pub pattern: String,
    pub action: RuleAction,
    /// Roles the rule applies to; empty or absent: every role.
    #[serde(default)]
    pub roles: Vec<Role>,
    /// Users the rule applies to; empty or absent: every user.
    #[serde(default)]
    pub users: Vec<String>,
    /// Container globs (name or Compose address) the rule applies to; empty: every container.
    #[serde(default)]
    pub containers: Vec<String>,
    /// Send hits to `[notify]` (default: true).
    #[serde(default = "yes")]
    pub notify: bool,
    /// What clears a blocked line in the shell, instead of `rule_options.cancel`.
    #[serde(default)]
    pub cancel: Option<String>,
}

fn yes() -> bool {
    true
}

impl RuleConfig {
    /// A rule as a TOML entry with only `name`, `pattern` and `action` gives it: every role,
    /// user and container, notified, the default cancel sequence.
    pub fn new(name: &str, pattern: &str, action: RuleAction) -> Self {
        Self {
            name: name.to_owned(),
            pattern: pattern.to_owned(),
            action,
            roles: Vec::new(),
            users: Vec::new(),
            containers: Vec::new(),
            notify: true,
            cancel: None,
        }
    }
}

/// `[rule_options]`: how rules act.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuleOptions {
    /// How long a command held for review waits for an admin's decision before it is blocked.
    #[serde(with = "humantime_serde")]
    pub review_timeout: Duration,
    /// Sent to the shell to clear a blocked line: Ctrl-E Ctrl-U (end of line, erase it) by
    /// default; `"\u0003"` (Ctrl-C) for shells whose line editor has no Ctrl-U.
    pub cancel: String,
    /// How long the gateway waits for the shell to echo what was typed before it reads the
    /// line at an Enter (keys the terminal never echoes, a password, wait this long).
    #[serde(with = "humantime_serde")]
    pub echo_wait: Duration,
}

impl Default for RuleOptions {
    fn default() -> Self {
        Self {
            review_timeout: Duration::from_secs(120),
            cancel: "\u{5}\u{15}".to_owned(),
            echo_wait: Duration::from_millis(300),
        }
    }
}

/// `[notify]`: where rule hits go. Nothing is sent while neither a webhook nor an address is set.
#[derive(Clone, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct NotifyConfig {
    /// A URL that gets each hit as a JSON POST.
    pub webhook: Option<String>,
    /// Addresses that get each hit by e-mail (needs `smtp`).
    pub email_to: Vec<String>,
    pub smtp: Option<SmtpConfig>,
    /// The gateway's address as users reach it, for the replay links in notifications;
    /// default `http://<listen>`.
    pub public_url: Option<String>,
    /// Attempts per notification before it is given up (default 6: about a minute of backoff).
    pub attempts: Option<u32>,
}

impl std::fmt::Debug for NotifyConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotifyConfig")
            .field("webhook", &self.webhook.as_deref().map(redact_webhook))
            .field("email_to", &self.email_to)
            .field("smtp", &self.smtp)
            .field("public_url", &self.public_url)
            .field("attempts", &self.attempts)
            .finish()
    }
}

/// A webhook URL without its path and query, which often carry the hook's secret.
fn redact_webhook(url: &str) -> String {
    let url = redact_url(url);
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let host = rest.split(['/', '?']).next().unwrap_or_default();
            format!("{scheme}://{host}/***")
        }
        None => "***".to_owned(),
    }
}

/// The SMTP server rule hits are mailed through. STARTTLS is used whenever the server offers it.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    pub host: String,
    /// Default 25.
    #[serde(default = "smtp_port")]
    pub port: u16,
    /// Refuse to send unless the server offers STARTTLS (default: use it when offered).
    #[serde(default)]
    pub require_tls: bool,
    /// PEM file of CA certificates to trust for the server's certificate, besides the usual ones.
    #[serde(default)]
    pub ca: Option<std::path::PathBuf>,
    pub username: Option<String>,
    pub password: Option<String>,
    /// The sender address.
    pub from: String,
}

fn smtp_port() -> u16 {
    25
}

impl std::fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("require_tls", &self.require_tls)
            .field("ca", &self.ca)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("from", &self.from)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_stay_out_of_debug() {
        let notify = NotifyConfig {
            webhook: Some("https://hooks.example.com/services/T0/B0/secret-part?token=abc".into()),
            smtp: Some(SmtpConfig {
                host: "mail".into(),
                port: 587,
                require_tls: false,
                ca: None,
                username: Some("entry".into()),
                password: Some("hunter2".into()),
                from: "entry@example.com".into(),
            }),
            ..NotifyConfig::default()
        };
        let shown = format!("{notify:?}");
        assert!(!shown.contains("hunter2") && !shown.contains("secret-part") && !shown.contains("abc"), "{shown}");
        assert!(shown.contains("hooks.example.com"), "{shown}");
    }
}
