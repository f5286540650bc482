//! Container addresses as users type them: an id, a name, or a Compose address
//! `project.service.N`; and LAIN's `app-name`/`proc-name`/`instance-no` triple; any of them
//! optionally qualified by an engine, `engine/container`. A Swarm service's slot is a name
//! `service.N` (or the Compose address of a stack's service), resolved by the fleet.
//!
//! Guarantees: every accepted address uses only the characters Docker allows in names and
//! ids, so it can never inject a path segment or a query into an Engine API URL.

use std::fmt;

/// The longest address accepted (Docker names are far shorter in practice).
const MAX_LEN: usize = 255;

/// What a client asked to enter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerAddress {
    /// A container id (or unique prefix) or name, possibly also a dotted name.
    Name(String),
    /// The N-th container of a Compose service; may also be a literal dotted name.
    Compose(ComposeAddress),
}

/// A container by its Compose labels.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ComposeAddress {
    pub project: String,
    pub service: String,
    pub number: u32,
}

/// An address, possibly on a named engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The engine the user named; `None`: whichever engine has it.
    pub engine: Option<String>,
    pub address: ContainerAddress,
}

impl Target {
    /// Parses `engine/container` or `container`.
    pub fn parse(text: &str) -> Result<Self, AddressError> {
        let text = text.trim();
        match text.split_once('/') {
            Some((engine, container)) => {
                validate(engine)?;
                Ok(Self { engine: Some(engine.to_owned()), address: ContainerAddress::parse(container)? })
            }
            None => Ok(Self { engine: None, address: ContainerAddress::parse(text)? }),
        }
    }

    /// An address on whichever engine has it.
    pub fn anywhere(address: ContainerAddress) -> Self {
        Self { engine: None, address }
    }

    /// The Swarm service and slot this address may name: `service.N` as a name, or the
    /// Compose address `stack.service.N` of a stack's service `stack_service`.
    pub fn swarm_slot(&self) -> Option<(String, u64)> {
        match &self.address {
            ContainerAddress::Name(name) => {
                let (service, slot) = name.rsplit_once('.')?;
                let slot: u64 = slot.parse().ok().filter(|n| *n > 0)?;
                (!service.is_empty() && !service.contains('.')).then(|| (service.to_owned(), slot))
            }
            ContainerAddress::Compose(compose) => {
                Some((format!("{}_{}", compose.project, compose.service), u64::from(compose.number)))
            }
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.engine {
            Some(engine) => write!(f, "{engine}/{}", self.address),
            None => self.address.fmt(f),
        }
    }
}

/// Why an address was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AddressError {
    #[error("no container named: send a `container` header (or app-name, proc-name, instance-no)")]
    Missing,
    #[error("container address {0:?} has characters Docker does not allow in names")]
    BadCharacters(String),
    #[error("container address is longer than {MAX_LEN} characters")]
    TooLong,
    #[error("instance-no {0:?} is not a positive number")]
    BadNumber(String),
}

impl ContainerAddress {
    /// Parses the `container` header: `a.b.N` with a numeric N is a Compose address,
    /// anything else a name or id.
    pub fn parse(text: &str) -> Result<Self, AddressError> {
        let text = text.trim();
        validate(text)?;
        let mut parts = text.splitn(2, '.');
        let (Some(project), Some(rest)) = (parts.next(), parts.next()) else {
            return Ok(Self::Name(text.to_owned()));
        };
        match rest.rsplit_once('.') {
            Some((service, number)) if !service.is_empty() && !project.is_empty() => {
                let digits = !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit());
                match number.parse::<u32>() {
                    Ok(number) if digits && number > 0 => Ok(Self::Compose(ComposeAddress {
                        project: project.to_owned(),
                        service: service.to_owned(),
                        number,
                    })),
                    _ => Ok(Self::Name(text.to_owned())),
                }
            }
            _ => Ok(Self::Name(text.to_owned())),
        }
    }

    /// Builds a Compose address from LAIN's headers.
    pub fn from_lain(app: &str, proc_name: &str, instance: &str) -> Result<Self, AddressError> {
        let (app, proc_name, instance) = (app.trim(), proc_name.trim(), instance.trim());
        validate(app)?;
        validate(proc_name)?;
        let number = instance
            .parse::<u32>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| AddressError::BadNumber(instance.to_owned()))?;
        Ok(Self::Compose(ComposeAddress { project: app.to_owned(), service: proc_name.to_owned(), number }))
    }
}

impl fmt::Display for ContainerAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Name(name) => f.write_str(name),
            Self::Compose(compose) => compose.fmt(f),
        }
    }
}

impl fmt::Display for ComposeAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.project, self.service, self.number)
    }
}

/// Whether `text` follows Docker's name grammar (engine names follow it too).
pub(super) fn valid_name(text: &str) -> Result<(), AddressError> {
    validate(text)
}

/// Docker's name grammar: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`.
fn validate(text: &str) -> Result<(), AddressError> {
    if text.is_empty() {
        return Err(AddressError::Missing);
    }
    if text.len() > MAX_LEN {
        return Err(AddressError::TooLong);
    }
    let mut bytes = text.bytes();
    let first_ok = bytes.next().is_some_and(|b| b.is_ascii_alphanumeric());
    if !first_ok || !bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')) {
        return Err(AddressError::BadCharacters(text.chars().take(64).collect()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compose(p: &str, s: &str, n: u32) -> ContainerAddress {
        ContainerAddress::Compose(ComposeAddress { project: p.into(), service: s.into(), number: n })
    }

    #[test]
    fn compose_and_names() {
        assert_eq!(ContainerAddress::parse("shop.web.1"), Ok(compose("shop", "web", 1)));
        assert_eq!(ContainerAddress::parse("shop.api.v2.12"), Ok(compose("shop", "api.v2", 12)));
        assert_eq!(ContainerAddress::parse("shop-web-1"), Ok(ContainerAddress::Name("shop-web-1".into())));
        assert_eq!(ContainerAddress::parse("a.b"), Ok(ContainerAddress::Name("a.b".into())));
        assert_eq!(ContainerAddress::parse("a.b.x"), Ok(ContainerAddress::Name("a.b.x".into())));
        assert_eq!(ContainerAddress::parse("a.b.0"), Ok(ContainerAddress::Name("a.b.0".into())));
        assert_eq!(ContainerAddress::parse("8ee746039f56"), Ok(ContainerAddress::Name("8ee746039f56".into())));
        assert_eq!(compose("shop", "web", 3).to_string(), "shop.web.3");
    }

    #[test]
    fn injection_is_refused() {
        for bad in ["../etc", "a/b", "a?b=c", "a b", "-rf", ".hidden", "a%2Fb", "名字", "a\r\nb"] {
            assert!(matches!(ContainerAddress::parse(bad), Err(AddressError::BadCharacters(_))), "{bad}");
        }
        assert_eq!(ContainerAddress::parse(""), Err(AddressError::Missing));
        assert_eq!(ContainerAddress::parse(&"a".repeat(300)), Err(AddressError::TooLong));
    }

    #[test]
    fn lain_headers() {
        assert_eq!(ContainerAddress::from_lain("shop", "web", "2"), Ok(compose("shop", "web", 2)));
        assert!(matches!(ContainerAddress::from_lain("shop", "web", "x"), Err(AddressError::BadNumber(_))));
        assert!(matches!(ContainerAddress::from_lain("shop", "w/b", "1"), Err(AddressError::BadCharacters(_))));
    }

    #[test]
    fn engine_qualified_targets() {
        let target = Target::parse("host-b/shop.web.1").unwrap();
        assert_eq!(target.engine.as_deref(), Some("host-b"));
        assert_eq!(target.address, compose("shop", "web", 1));
        assert_eq!(target.to_string(), "host-b/shop.web.1");
        assert_eq!(Target::parse("web").unwrap(), Target::anywhere(ContainerAddress::Name("web".into())));
        for bad in ["/web", "a//web", "a/b/c", "../x/web", "a b/web", "host-b/", "a/../b"] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn swarm_slots() {
        let slot = |text: &str| Target::parse(text).unwrap().swarm_slot();
        assert_eq!(slot("web.2"), Some(("web".into(), 2)));
        assert_eq!(slot("a/web.3"), Some(("web".into(), 3)));
        assert_eq!(slot("shop.web.1"), Some(("shop_web".into(), 1)));
        assert_eq!(slot("web"), None);
        assert_eq!(slot("web.0"), None);
        assert_eq!(slot("web.x"), None);
        assert_eq!(slot("a.b.c"), None);
    }
}
