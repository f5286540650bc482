//! The exec policy: which user an exec may run as and which variables a client may add to its
//! environment, decided before any exec exists; and the shape of the exec as the record keeps
//! it.
//!
//! Guarantees:
//! - A developer (or console-vouched user) runs as the container's configured user, or as a
//!   user its token names (`--exec-user`), compared as exact strings: a grant of `root` does
//!   not admit `0` or `root:root`. Admins may run as any user. Every refusal names the user.
//! - No one sets a variable of `exec.env_deny`; a token with an env allow-list sets only the
//!   names it lists. Every refusal names the variable.
//! - The recorded environment holds every variable the client added, with the values of those
//!   whose names match `exec.secret_env` replaced by [`REDACTED`].

use std::collections::BTreeMap;

use crate::auth::{Principal, Role};
use crate::config::{EnvPattern, ExecConfig};
use crate::runtime::ContainerInfo;
use crate::store::TokenGrants;
use crate::wire::protocol::CloseReason;

use super::admit::Refusal;
use super::request::EnterRequest;

/// What a secret value is recorded as.
pub const REDACTED: &str = "[redacted]";

/// What shaped an exec, as the session row and the recording keep it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecShape {
    /// The user the client asked for (`-u`), if any.
    pub user_asked: Option<String>,
    /// The user the exec runs as: the asked one, else the container's configured user (`""`:
    /// the image default, root).
    pub user_effective: String,
    /// The working directory the client asked for, if any.
    pub workdir: Option<String>,
    /// The variables the client added, secret values redacted.
    pub env: BTreeMap<String, String>,
}

/// Why the policy refused an exec. The text goes to the client.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PolicyError {
    #[error("forbidden: {user} may not run as {asked} in {container} (allowed: {allowed})")]
    User { user: String, asked: String, container: String, allowed: String },
    #[error("forbidden: {user} may not set {name}: the gateway refuses it (exec.env_deny)")]
    EnvDenied { user: String, name: String },
    #[error("forbidden: {user} may not set {name}: the token allows only {allowed}")]
    EnvNotAllowed { user: String, name: String, allowed: String },
}

impl From<PolicyError> for Refusal {
    fn from(error: PolicyError) -> Self {
        Refusal::new(CloseReason::Forbidden, error.to_string())
    }
}

/// Who asks for the exec: what of a [`Principal`] the policy reads.
#[derive(Debug, Clone, Copy)]
pub struct Asker<'a> {
    pub user: &'a str,
    pub role: Role,
    pub grants: &'a TokenGrants,
}

impl<'a> From<&'a Principal> for Asker<'a> {
    fn from(principal: &'a Principal) -> Self {
        Self { user: &principal.user, role: principal.role, grants: &principal.grants }
    }
}

/// Checks `request` against the policy for `principal` in `container`; returns what the
/// record keeps of the exec.
pub fn check(
    config: &ExecConfig,
    request: &EnterRequest,
    principal: Asker<'_>,
    container: &ContainerInfo,
) -> Result<ExecShape, PolicyError> {
    let user_effective = match &request.user {
        Some(asked) => {
            check_user(asked, principal, container)?;
            asked.clone()
        }
        None => container.user.clone(),
    };
    let mut env = BTreeMap::new();
    for entry in &request.env {
        let (name, value) = entry.split_once('=').unwrap_or((entry, ""));
        check_env(config, principal, name)?;
        let recorded = if is_secret(config, name) { REDACTED } else { value };
        env.insert(name.to_owned(), recorded.to_owned());
    }
    Ok(ExecShape { user_asked: request.user.clone(), user_effective, workdir: request.workdir.clone(), env })
}

/// Whether `name`'s value is kept out of the record.
pub fn is_secret(config: &ExecConfig, name: &str) -> bool {
    config.secret_env.iter().any(|pattern| pattern.matches_ignoring_case(name))
}

fn check_user(asked: &str, principal: Asker<'_>, container: &ContainerInfo) -> Result<(), PolicyError> {
    if principal.role == Role::Admin
        || asked == container.user
        || principal.grants.exec_users.iter().any(|granted| granted == asked)
    {
        return Ok(());
    }
    let configured = if container.user.is_empty() {
        "the container's user, root (image default)".to_owned()
    } else {
        format!("the container's user {}", container.user)
    };
    let granted = principal.grants.exec_users.iter().filter(|u| **u != container.user).cloned();
    let allowed = std::iter::once(configured).chain(granted).collect::<Vec<_>>();
    Err(PolicyError::User {
        user: principal.user.to_owned(),
        asked: asked.to_owned(),
        container: container.name.clone(),
        allowed: allowed.join(", "),
    })
}

fn check_env(config: &ExecConfig, principal: Asker<'_>, name: &str) -> Result<(), PolicyError> {
    if config.env_deny.iter().any(|pattern| pattern.matches(name)) {
        return Err(PolicyError::EnvDenied { user: principal.user.to_owned(), name: name.to_owned() });
    }
    let Some(allow) = &principal.grants.env_allow else { return Ok(()) };
    // Stored allow-lists were checked when the token was made; one that no longer parses
    // allows nothing.
    let allowed = allow.iter().filter_map(|p| EnvPattern::new(p).ok()).any(|pattern| pattern.matches(name));
    if allowed {
        Ok(())
    } else {
        let listed = if allow.is_empty() { "no variables".to_owned() } else { allow.join(", ") };
        Err(PolicyError::EnvNotAllowed { user: principal.user.to_owned(), name: name.to_owned(), allowed: listed })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Who {
        role: Role,
        grants: TokenGrants,
    }

    impl Who {
        fn asker(&self) -> Asker<'_> {
            Asker { user: "alice", role: self.role, grants: &self.grants }
        }
    }

    fn principal(role: Role, grants: TokenGrants) -> Who {
        Who { role, grants }
    }

    fn container(user: &str) -> ContainerInfo {
        ContainerInfo {
            engine: String::new(),
            id: "c0ffee".into(),
            name: "shop-web-1".into(),
            image: "shop".into(),
            running: true,
            state: "running".into(),
            compose: None,
            labels: BTreeMap::new(),
            user: user.into(),
            hazards: crate::runtime::Hazards::default(),
        }
    }

    fn request(user: Option<&str>, env: &[&str]) -> EnterRequest {
        let mut request = EnterRequest::web("shop-web-1", None, None).unwrap();
        request.user = user.map(str::to_owned);
        request.env = env.iter().map(|e| e.to_string()).collect();
        request
    }

    fn users(list: &[&str]) -> TokenGrants {
        TokenGrants { exec_users: list.iter().map(|u| u.to_string()).collect(), ..TokenGrants::default() }
    }

    fn env_allow(list: &[&str]) -> TokenGrants {
        TokenGrants { env_allow: Some(list.iter().map(|u| u.to_string()).collect()), ..TokenGrants::default() }
    }

    #[test]
    fn exec_users() {
        let config = ExecConfig::default();
        let check = |user: Option<&str>, who: &Who, configured: &str| {
            check(&config, &request(user, &[]), who.asker(), &container(configured)).map(|s| s.user_effective)
        };
        let plain = principal(Role::Developer, TokenGrants::default());
        assert_eq!(check(None, &plain, "app"), Ok("app".into()));
        assert_eq!(check(None, &plain, ""), Ok("".into()));
        assert_eq!(check(Some("app"), &plain, "app"), Ok("app".into()));
        assert_eq!(
            check(Some("0"), &plain, "app").unwrap_err().to_string(),
            "forbidden: alice may not run as 0 in shop-web-1 (allowed: the container's user app)"
        );
        assert!(check(Some("root"), &plain, "").is_err(), "root is not the same string as the image default");
        let granted = principal(Role::Developer, users(&["root", "app", "app:app"]));
        assert_eq!(check(Some("root"), &granted, "app"), Ok("root".into()));
        assert_eq!(check(Some("app:app"), &granted, "app"), Ok("app:app".into()));
        for other in ["0", "root:root", "ROOT", "0:0"] {
            assert_eq!(
                check(Some(other), &granted, "app").unwrap_err().to_string(),
                format!(
                    "forbidden: alice may not run as {other} in shop-web-1 (allowed: the container's user app, root, app:app)"
                )
            );
        }
        let admin = principal(Role::Admin, TokenGrants::default());
        assert_eq!(check(Some("0"), &admin, "app"), Ok("0".into()));
    }

    #[test]
    fn the_deny_list_applies_to_everyone() {
        let config = ExecConfig::default();
        let admin = principal(Role::Admin, TokenGrants::default());
        let allowing = principal(Role::Developer, env_allow(&["BASH_ENV", "LD_*", "PATH"]));
        for entry in ["BASH_ENV=/tmp/x", "LD_PRELOAD=/x.so", "LD_LIBRARY_PATH=/x", "PROMPT_COMMAND=x", "PS1=x", "PS4=x"]
            .into_iter()
            .chain(["PATH=/tmp", "IFS=x", "SHELLOPTS=xtrace", "TERM=dumb", "ENTRY_X=1", "BASH_FUNC_ls=x", "HOME=/t"])
            .chain(["PYTHONSTARTUP=/x", "PERL5OPT=-Mx", "NODE_OPTIONS=-r/x", "ENV=/x", "INPUTRC=/x"])
        {
            let name = entry.split_once('=').unwrap().0;
            for who in [&admin, &allowing] {
                let error = check(&config, &request(None, &[entry]), who.asker(), &container("")).unwrap_err();
                assert_eq!(error, PolicyError::EnvDenied { user: "alice".into(), name: name.into() });
                assert!(error.to_string().contains(name));
            }
        }
        let plain = principal(Role::Developer, TokenGrants::default());
        for fine in ["FOO=bar", "OLD_PWD=x", "ld_preload=x", "TERMINAL=x", "PS=x", "XENTRY_Y=1"] {
            assert!(check(&config, &request(None, &[fine]), plain.asker(), &container("")).is_ok(), "{fine}");
        }
    }

    #[test]
    fn a_configured_deny_list_replaces_the_default() {
        let config = ExecConfig { env_deny: vec![EnvPattern::new("FOO*").unwrap()], ..ExecConfig::default() };
        let plain = principal(Role::Developer, TokenGrants::default());
        assert!(check(&config, &request(None, &["PATH=/tmp"]), plain.asker(), &container(""),).is_ok());
        assert!(check(&config, &request(None, &["FOOD=1"]), plain.asker(), &container("")).is_err());
    }

    #[test]
    fn allow_lists() {
        let config = ExecConfig::default();
        let who = principal(Role::Developer, env_allow(&["FOO", "APP_*"]));
        let run = |env: &[&str]| check(&config, &request(None, env), who.asker(), &container(""));
        assert!(run(&["FOO=1", "APP_MODE=x", "APP_=y"]).is_ok());
        assert_eq!(
            run(&["FOO=1", "BAR=1"]).unwrap_err().to_string(),
            "forbidden: alice may not set BAR: the token allows only FOO, APP_*"
        );
        assert!(run(&["FOOD=1"]).is_err() && run(&["XAPP_A=1"]).is_err() && run(&["foo=1"]).is_err());
        let none = principal(Role::Developer, env_allow(&[]));
        let error = check(&config, &request(None, &["A=1"]), none.asker(), &container("")).unwrap_err();
        assert_eq!(error.to_string(), "forbidden: alice may not set A: the token allows only no variables");
        assert!(check(&config, &request(None, &[]), none.asker(), &container("")).is_ok());
    }

    #[test]
    fn secrets_are_redacted_in_the_record() {
        let config = ExecConfig::default();
        let plain = principal(Role::Developer, TokenGrants::default());
        let env = ["DB_PASSWORD=hunter2", "api_key=k", "GITHUB_TOKEN=t", "MODE=debug", "EMPTY=", "EQ=a=b"];
        let shape = check(&config, &request(Some("app"), &env), plain.asker(), &container("app")).unwrap();
        let expected: BTreeMap<String, String> = [
            ("DB_PASSWORD", REDACTED),
            ("api_key", REDACTED),
            ("GITHUB_TOKEN", REDACTED),
            ("MODE", "debug"),
            ("EMPTY", ""),
            ("EQ", "a=b"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        assert_eq!(shape.env, expected);
        assert_eq!((shape.user_asked.as_deref(), shape.user_effective.as_str()), (Some("app"), "app"));
    }
}
