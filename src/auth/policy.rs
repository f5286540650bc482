//! Who may enter which container: roles and container glob patterns.
//!
//! Guarantees: fail-closed — an auditor never enters, a pattern that does not compile matches
//! nothing, and a container matches only through its name or its Compose address.

use globset::{Glob, GlobMatcher};

use crate::runtime::ContainerInfo;

pub use crate::wire::api::Role;

/// A set of container patterns, e.g. `shop.*`, `shop-web-?`, `*`.
#[derive(Debug, Clone)]
pub struct Patterns {
    matchers: Vec<GlobMatcher>,
}

/// A pattern that does not compile.
#[derive(Debug, thiserror::Error)]
#[error("bad container pattern {pattern:?}: {reason}")]
pub struct PatternError {
    pub pattern: String,
    pub reason: String,
}

impl Patterns {
    /// Compiles every pattern; the first bad one is an error.
    pub fn new(patterns: &[String]) -> Result<Self, PatternError> {
        let matchers = patterns
            .iter()
            .map(|p| {
                Glob::new(p)
                    .map(|g| g.compile_matcher())
                    .map_err(|e| PatternError { pattern: p.clone(), reason: e.kind().to_string() })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { matchers })
    }

    /// Compiles the patterns that compile, dropping the others (for stored rows, which were
    /// checked on creation; a dropped pattern only ever narrows access).
    pub fn lenient(patterns: &[String]) -> Self {
        let matchers = patterns.iter().filter_map(|p| Glob::new(p).ok()).map(|g| g.compile_matcher()).collect();
        Self { matchers }
    }

    /// Whether the container's name or Compose address matches a pattern.
    pub fn allows(&self, container: &ContainerInfo) -> bool {
        let compose = container.compose.as_ref().map(|c| c.to_string());
        self.matches(&container.name, compose.as_deref())
    }

    /// Whether a container's `name` or Compose `address` (`project.service.N`) matches a
    /// pattern: [`Patterns::allows`] for a container known only by a session row.
    pub fn matches(&self, name: &str, address: Option<&str>) -> bool {
        self.matchers.iter().any(|m| m.is_match(name) || address.is_some_and(|address| m.is_match(address)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::ComposeAddress;

    fn container(name: &str, compose: Option<(&str, &str, u32)>) -> ContainerInfo {
        ContainerInfo {
            state: "running".into(),
            id: "0".repeat(64),
            name: name.into(),
            image: "img".into(),
            running: true,
            compose: compose.map(|(p, s, n)| ComposeAddress { project: p.into(), service: s.into(), number: n }),
            labels: Default::default(),
            user: String::new(),
            hazards: Default::default(),
        }
    }

    #[test]
    fn matches_name_or_compose_address() {
        let shop = Patterns::new(&["shop.*".into()]).unwrap();
        assert!(shop.allows(&container("shop-web-1", Some(("shop", "web", 1)))));
        assert!(!shop.allows(&container("shop-web-1", None)));
        assert!(shop.allows(&container("shop.legacy", None)));
        assert!(!shop.allows(&container("bank-web-1", Some(("bank", "web", 1)))));
        let none = Patterns::new(&[]).unwrap();
        assert!(!none.allows(&container("x", None)));
        assert!(Patterns::new(&["a[".into()]).is_err());
        assert!(!Patterns::lenient(&["a[".into()]).allows(&container("a[", None)));
    }
}
