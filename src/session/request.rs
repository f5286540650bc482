//! What a client asks for on `GET /enter`, read from the upgrade request's headers.
//!
//! Headers: `container` (id, name or `project.service.N`, optionally `engine/…`) or LAIN's `app-name`, `proc-name`,
//! `instance-no`; `access-token` or `Authorization: Bearer`; `term-type`; and Entry's own
//! `command`, `env` (JSON arrays of strings), `user`, `workdir`, `tty` (`false` for a session
//! without a TTY, like `docker exec -i`) and `entry-client` (`cli`, `web`, …).
//! Guarantees: every value is bounded and validated here; nothing unchecked reaches Docker. A
//! variable is set at most once, so what the record shows is what the exec got. Whether the
//! principal may run as that user or set those variables is decided later, by the exec policy
//! (`exec_policy`), before any exec exists.

use http::HeaderMap;

use crate::runtime::{AddressError, ContainerAddress, Target};

/// Longest accepted value of any one header.
const MAX_HEADER: usize = 8 * 1024;
/// Most command arguments or env entries accepted.
const MAX_ITEMS: usize = 256;

/// A parsed `/enter` request.
#[derive(Debug, Clone)]
pub struct EnterRequest {
    /// The container, on the engine the client named or on whichever has it.
    pub address: Target,
    /// The presented credential, if any; never logged.
    pub token: Option<String>,
    /// The browser sign-in cookie's secret (web terminal only); never logged.
    pub cookie: Option<String>,
    pub term: Option<String>,
    pub command: Option<Vec<String>>,
    pub env: Vec<String>,
    pub user: Option<String>,
    pub workdir: Option<String>,
    pub tty: bool,
    pub client: ClientKind,
}

/// Which kind of client opened the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientKind {
    Cli,
    Web,
    Other,
}

impl ClientKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ClientKind::Cli => "cli",
            ClientKind::Web => "web",
            ClientKind::Other => "other",
        }
    }
}

/// Why a request could not be parsed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RequestError {
    #[error(transparent)]
    Address(#[from] AddressError),
    #[error("header {0} is not valid text")]
    NotText(&'static str),
    #[error("header {0} is too long")]
    TooLong(&'static str),
    #[error("header {0} must be a JSON array of at most {MAX_ITEMS} strings")]
    BadList(&'static str),
    #[error("header {0} has an invalid value")]
    BadValue(&'static str),
    #[error("header env sets {0} more than once")]
    DuplicateEnv(String),
}

impl EnterRequest {
    /// Reads the request from the upgrade's headers.
    pub fn from_headers(headers: &HeaderMap) -> Result<Self, RequestError> {
        let address = match text(headers, "container")? {
            Some(container) => Target::parse(&container)?,
            None => match (text(headers, "app-name")?, text(headers, "proc-name")?, text(headers, "instance-no")?) {
                (Some(app), Some(proc_name), Some(instance)) => {
                    Target::anywhere(ContainerAddress::from_lain(&app, &proc_name, &instance)?)
                }
                _ => return Err(AddressError::Missing.into()),
            },
        };
        let token = match text(headers, "access-token")? {
            Some(token) => Some(token),
            None => text(headers, "authorization")?.and_then(|value| {
                let (scheme, rest) = value.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim().to_owned())
            }),
        };
        let term = text(headers, "term-type")?;
        if term.as_deref().is_some_and(|t| !t.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.+".contains(&b))) {
            return Err(RequestError::BadValue("term-type"));
        }
        let command = list(headers, "command")?;
        if command.as_ref().is_some_and(|c| c.is_empty() || c[0].is_empty()) {
            return Err(RequestError::BadValue("command"));
        }
        let env = list(headers, "env")?.unwrap_or_default();
        let mut names = std::collections::HashSet::new();
        for entry in &env {
            match entry.split_once('=') {
                Some((name, _)) if valid_env_key(name) => {
                    if !names.insert(name) {
                        return Err(RequestError::DuplicateEnv(name.to_owned()));
                    }
                }
                _ => return Err(RequestError::BadValue("env")),
            }
        }
        let user = text(headers, "user")?.filter(|u| !u.is_empty());
        if user.as_deref().is_some_and(|u| !valid_exec_user(u)) {
            return Err(RequestError::BadValue("user"));
        }
        let tty = match text(headers, "tty")?.as_deref() {
            None | Some("true") | Some("1") => true,
            Some("false") | Some("0") => false,
            Some(_) => return Err(RequestError::BadValue("tty")),
        };
        let client = match text(headers, "entry-client")?.as_deref() {
            Some(kind) if kind.starts_with("cli") => ClientKind::Cli,
            Some(kind) if kind.starts_with("web") => ClientKind::Web,
            _ => ClientKind::Other,
        };
        Ok(Self {
            address,
            token,
            cookie: None,
            term,
            command,
            env,
            user,
            workdir: text(headers, "workdir")?.filter(|w| !w.is_empty()),
            tty,
            client,
        })
    }
}

impl EnterRequest {
    /// A web terminal's request: the default shell with a TTY in `container`, authorised by
    /// the browser's sign-in cookie.
    pub fn web(container: &str, cookie: Option<String>, term: Option<&str>) -> Result<Self, RequestError> {
        let term = term.map(str::trim).filter(|t| !t.is_empty());
        if term.is_some_and(|t| t.len() > 64 || !t.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.+".contains(&b))) {
            return Err(RequestError::BadValue("term"));
        }
        Ok(Self {
            address: Target::parse(container)?,
            token: None,
            cookie,
            term: term.map(str::to_owned),
            command: None,
            env: Vec::new(),
            user: None,
            workdir: None,
            tty: true,
            client: ClientKind::Web,
        })
    }
}

/// The marker variable is Entry's alone; a client may not set or spoof it.
fn valid_env_key(key: &str) -> bool {
    !key.is_empty()
        && key != crate::runtime::SESSION_MARKER
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !key.as_bytes()[0].is_ascii_digit()
}

/// An exec user as `docker exec -u` takes it: `name`, `uid`, `name:group` or `uid:gid`, of
/// letters, digits, `.`, `_` and `-`.
pub(super) fn valid_exec_user(user: &str) -> bool {
    let part =
        |p: &str| !p.is_empty() && p.len() <= 64 && p.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    match user.split_once(':') {
        Some((name, group)) => part(name) && part(group),
        None => part(user),
    }
}

fn text(headers: &HeaderMap, name: &'static str) -> Result<Option<String>, RequestError> {
    let Some(value) = headers.get(name) else { return Ok(None) };
    if value.len() > MAX_HEADER {
        return Err(RequestError::TooLong(name));
    }
    let value = std::str::from_utf8(value.as_bytes()).map_err(|_| RequestError::NotText(name))?;
    Ok(Some(value.trim().to_owned()))
}

fn list(headers: &HeaderMap, name: &'static str) -> Result<Option<Vec<String>>, RequestError> {
    let Some(value) = text(headers, name)? else { return Ok(None) };
    let items: Vec<String> = serde_json::from_str(&value).map_err(|_| RequestError::BadList(name))?;
    if items.len() > MAX_ITEMS || items.iter().any(|i| i.contains('\0')) {
        return Err(RequestError::BadList(name));
    }
    Ok(Some(items))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        map
    }

    #[test]
    fn entry_headers() {
        let request = EnterRequest::from_headers(&headers(&[
            ("container", "shop.web.1"),
            ("authorization", "Bearer abc"),
            ("command", r#"["sh","-c","echo hi"]"#),
            ("env", r#"["A=1"]"#),
            ("tty", "false"),
            ("entry-client", "cli/0.1.0"),
        ]))
        .unwrap();
        assert_eq!(request.address.to_string(), "shop.web.1");
        assert_eq!(request.token.as_deref(), Some("abc"));
        assert_eq!(request.command.unwrap(), ["sh", "-c", "echo hi"]);
        assert!(!request.tty);
        assert_eq!(request.client, ClientKind::Cli);
        for user in ["0", "root", "root:root", "1000:1000", "www-data", "app.user_1"] {
            let request = EnterRequest::from_headers(&headers(&[("container", "c"), ("user", user)])).unwrap();
            assert_eq!(request.user.as_deref(), Some(user));
        }
    }

    #[test]
    fn lain_headers() {
        let request = EnterRequest::from_headers(&headers(&[
            ("app-name", "shop"),
            ("proc-name", "web"),
            ("instance-no", "2"),
            ("access-token", "t"),
            ("term-type", "xterm"),
        ]))
        .unwrap();
        assert_eq!(request.address.to_string(), "shop.web.2");
        assert_eq!((request.token.as_deref(), request.term.as_deref(), request.tty), (Some("t"), Some("xterm"), true));
    }

    #[test]
    fn bad_requests() {
        let bad = |pairs: &[(&'static str, &str)]| EnterRequest::from_headers(&headers(pairs)).unwrap_err();
        assert_eq!(bad(&[]), RequestError::Address(AddressError::Missing));
        assert!(matches!(bad(&[("container", "../x")]), RequestError::Address(_)));
        assert_eq!(bad(&[("container", "c"), ("command", "ls")]), RequestError::BadList("command"));
        assert_eq!(bad(&[("container", "c"), ("command", "[]")]), RequestError::BadValue("command"));
        assert_eq!(bad(&[("container", "c"), ("env", r#"["ENTRY_SESSION=x"]"#)]), RequestError::BadValue("env"));
        assert_eq!(bad(&[("container", "c"), ("term-type", "x;rm")]), RequestError::BadValue("term-type"));
        assert_eq!(bad(&[("container", "c"), ("tty", "maybe")]), RequestError::BadValue("tty"));
        assert_eq!(
            bad(&[("container", "c"), ("env", r#"["A=1","B=2","A=3"]"#)]),
            RequestError::DuplicateEnv("A".into())
        );
        for user in ["root root", "../x", "a:b:c", ":0", "0:", "$(id)"] {
            assert_eq!(bad(&[("container", "c"), ("user", user)]), RequestError::BadValue("user"), "{user}");
        }
    }
}
