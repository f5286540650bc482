//! `[retention]`: how long recorded sessions are kept, and how often expired ones are swept.
//!
//! Guarantees: without `keep`, a role override or a container rule nothing ever expires (the
//! default keeps everything forever); every period is a humantime duration checked by
//! [`super::Config::durations`] (none may be 0, so a typo cannot delete what just ended); the
//! period of a session is decided by one function, [`RetentionConfig::keep_for`]: the first
//! container rule that matches, else its role's override, else `keep`. The container rules'
//! globs are compiled (and a bad one refused at start) by the retention sweeper, with the
//! glob semantics of token `--allow` patterns.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::wire::api::Role;

/// `[retention]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionConfig {
    /// How long a session is kept after it ended (`"400d"`); `None`: forever.
    #[serde(with = "humantime_serde")]
    pub keep: Option<Duration>,
    /// Per-role overrides of `keep`: `roles = { developer = "90d" }`.
    pub roles: RoleKeeps,
    /// Per-container overrides, the first matching rule wins, before the role's and `keep`:
    /// `[[retention.containers]] containers = "shop.*", keep = "30d"`.
    pub containers: Vec<ContainerKeep>,
    /// How often the sweeper looks for expired sessions.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self { keep: None, roles: RoleKeeps::default(), containers: Vec::new(), interval: Duration::from_secs(3600) }
    }
}

/// How long sessions of each role are kept, where it differs from `keep`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RoleKeeps {
    #[serde(with = "humantime_serde")]
    pub developer: Option<Duration>,
    #[serde(with = "humantime_serde")]
    pub auditor: Option<Duration>,
    #[serde(with = "humantime_serde")]
    pub admin: Option<Duration>,
}

impl RoleKeeps {
    /// The override of `role`, if any.
    pub fn of(&self, role: Role) -> Option<Duration> {
        match role {
            Role::Developer => self.developer,
            Role::Auditor => self.auditor,
            Role::Admin => self.admin,
        }
    }
}

/// One per-container rule: sessions in a container whose name or Compose address matches the
/// glob `containers` are kept for `keep`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContainerKeep {
    /// A glob as in token `--allow` patterns (`shop.*`, `shop-web-?`).
    pub containers: String,
    #[serde(with = "humantime_serde")]
    pub keep: Duration,
}

/// Which setting decided a session's keep period (for the audit entry and logs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeepSource {
    /// `retention.containers`, the rule's glob.
    Container(String),
    /// `retention.roles.<role>`.
    Role(Role),
    /// `retention.keep`.
    Default,
}

impl std::fmt::Display for KeepSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeepSource::Container(glob) => write!(f, "retention.containers {glob:?}"),
            KeepSource::Role(role) => write!(f, "retention.roles.{}", role.as_str()),
            KeepSource::Default => f.write_str("retention.keep"),
        }
    }
}

impl RetentionConfig {
    /// Whether anything can expire: a keep period is set somewhere.
    pub fn enabled(&self) -> bool {
        self.keep.is_some()
            || [Role::Developer, Role::Auditor, Role::Admin].into_iter().any(|r| self.roles.of(r).is_some())
            || !self.containers.is_empty()
    }

    /// The keep period of a session of `role`, given which container rule matched it (the
    /// index into `containers` of the first rule whose glob matches, found by the caller,
    /// which compiles the globs); `None`: kept forever.
    pub fn keep_for(&self, first_container_rule: Option<usize>, role: Option<Role>) -> Option<(Duration, KeepSource)> {
        if let Some(rule) = first_container_rule.and_then(|i| self.containers.get(i)) {
            return Some((rule.keep, KeepSource::Container(rule.containers.clone())));
        }
        if let Some(keep) = role.and_then(|role| self.roles.of(role)) {
            return role.map(|role| (keep, KeepSource::Role(role)));
        }
        self.keep.map(|keep| (keep, KeepSource::Default))
    }

    /// Every period by key, for [`super::Config::durations`]: all are periods (0 refused).
    pub(super) fn durations(&self) -> Vec<(&'static str, Duration, bool)> {
        let mut all = vec![("retention.interval", self.interval, true)];
        all.extend(self.keep.map(|keep| ("retention.keep", keep, true)));
        all.extend(self.roles.developer.map(|keep| ("retention.roles.developer", keep, true)));
        all.extend(self.roles.auditor.map(|keep| ("retention.roles.auditor", keep, true)));
        all.extend(self.roles.admin.map(|keep| ("retention.roles.admin", keep, true)));
        all.extend(self.containers.iter().map(|rule| ("retention.containers.keep", rule.keep, true)));
        all
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail's closures return figment::Error.
mod tests {
    use super::*;
    use crate::config::Config;

    const DAY: u64 = 86_400;

    #[test]
    fn parsed_from_toml_with_overrides() {
        let config = Config::from_toml_str(
            "[retention]\nkeep = \"400d\"\ninterval = \"10m\"\nroles = { developer = \"90d\" }\n\
             [[retention.containers]]\ncontainers = \"shop.*\"\nkeep = \"30d\"\n\
             [[retention.containers]]\ncontainers = \"*\"\nkeep = \"1y\"\n",
        )
        .unwrap();
        let retention = config.retention;
        assert_eq!(retention.keep, Some(Duration::from_secs(400 * DAY)));
        assert_eq!(retention.interval, Duration::from_secs(600));
        assert_eq!(retention.roles.developer, Some(Duration::from_secs(90 * DAY)));
        assert_eq!((retention.roles.auditor, retention.roles.admin), (None, None));
        assert_eq!(retention.containers.len(), 2);
        assert_eq!(retention.containers[0].containers, "shop.*");
        assert_eq!(retention.containers[0].keep, Duration::from_secs(30 * DAY));
        assert!(retention.enabled());
    }

    #[test]
    fn the_default_keeps_forever() {
        let config = Config::from_toml_str("").unwrap();
        assert_eq!(config.retention, RetentionConfig::default());
        assert!(!config.retention.enabled());
        assert_eq!(config.retention.keep_for(None, Some(Role::Developer)), None);
        assert_eq!(config.retention.interval, Duration::from_secs(3600));
    }

    #[test]
    fn bad_settings_are_refused() {
        let refused = |text: &str| Config::from_toml_str(text).err().map(|e| e.to_string());
        assert_eq!(
            refused("[retention]\nkeep = \"0s\"\n").as_deref(),
            Some("invalid configuration: retention.keep must be more than 0")
        );
        assert_eq!(
            refused("[retention]\ninterval = \"0s\"\n").as_deref(),
            Some("invalid configuration: retention.interval must be more than 0")
        );
        assert_eq!(
            refused("[retention]\nroles = { admin = \"1000y\" }\n").as_deref(),
            Some("invalid configuration: retention.roles.admin must be at most 100 years")
        );
        assert!(refused("[retention]\nroles = { developper = \"1d\" }\n").is_some(), "a typo of a role");
        assert!(refused("[retention]\nkeep = \"soon\"\n").is_some());
        assert!(refused("[[retention.containers]]\ncontainers = \"a\"\n").is_some(), "a rule without keep");
    }

    #[test]
    fn container_rule_then_role_then_keep() {
        let retention = RetentionConfig {
            keep: Some(Duration::from_secs(400 * DAY)),
            roles: RoleKeeps { developer: Some(Duration::from_secs(90 * DAY)), ..RoleKeeps::default() },
            containers: vec![
                ContainerKeep { containers: "shop.*".into(), keep: Duration::from_secs(30 * DAY) },
                ContainerKeep { containers: "*".into(), keep: Duration::from_secs(7 * DAY) },
            ],
            interval: Duration::from_secs(60),
        };
        let days = |found: Option<(Duration, KeepSource)>| found.map(|(keep, source)| (keep.as_secs() / DAY, source));
        assert_eq!(
            days(retention.keep_for(Some(0), Some(Role::Developer))),
            Some((30, KeepSource::Container("shop.*".into())))
        );
        assert_eq!(days(retention.keep_for(Some(1), Some(Role::Admin))), Some((7, KeepSource::Container("*".into()))));
        assert_eq!(
            days(retention.keep_for(None, Some(Role::Developer))),
            Some((90, KeepSource::Role(Role::Developer)))
        );
        assert_eq!(days(retention.keep_for(None, Some(Role::Admin))), Some((400, KeepSource::Default)));
        assert_eq!(days(retention.keep_for(None, None)), Some((400, KeepSource::Default)), "an unknown role");
        let only_roles = RetentionConfig { keep: None, containers: vec![], ..retention };
        assert_eq!(days(only_roles.keep_for(None, Some(Role::Admin))), None, "no keep: forever");
        assert_eq!(KeepSource::Role(Role::Developer).to_string(), "retention.roles.developer");
    }

    #[test]
    fn from_the_environment() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("ENTRY_RETENTION__KEEP", "2d");
            jail.set_env("ENTRY_RETENTION__ROLES__AUDITOR", "5d");
            #[derive(Serialize)]
            struct NoFlags {}
            let config = Config::load(None, NoFlags {}).unwrap();
            assert_eq!(config.retention.keep, Some(Duration::from_secs(2 * DAY)));
            assert_eq!(config.retention.roles.auditor, Some(Duration::from_secs(5 * DAY)));
            Ok(())
        });
    }
}
