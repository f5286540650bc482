//! Who may enter which container: roles and container glob patterns.
//!
//! Guarantees: fail-closed — an auditor never enters, a pattern that does not compile matches
//! nothing, and a container matches only through its name or its Compose address. A pattern
//! with a `/` names an engine (`host-a/*`, `eu-*/shop.*`) and is matched only against
//! `engine/name` and `engine/address`; one without is matched only against the bare name and
//! address, on any engine, so an engine's name can never satisfy a container pattern.

use globset::{Glob, GlobMatcher};

use crate::runtime::ContainerInfo;

pub use crate::wire::api::Role;

/// A set of container patterns, e.g. `shop.*`, `shop-web-?`, `*`.
#[derive(Debug, Clone)]
pub struct Patterns {
    matchers: Vec<Matcher>,
}

#[derive(Debug, Clone)]
struct Matcher {
    glob: GlobMatcher,
    /// The pattern names an engine: it is matched against `engine/…`.
    qualified: bool,
}

impl Matcher {
    fn new(pattern: &str) -> Result<Self, globset::Error> {
        Ok(Self { glob: Glob::new(pattern)?.compile_matcher(), qualified: pattern.contains('/') })
    }
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
            .map(|p| Matcher::new(p).map_err(|e| PatternError { pattern: p.clone(), reason: e.kind().to_string() }))
            .collect::<Result<_, _>>()?;
        Ok(Self { matchers })
    }

    /// Compiles the patterns that compile, dropping the others (for stored rows, which were
    /// checked on creation; a dropped pattern only ever narrows access).
    pub fn lenient(patterns: &[String]) -> Self {
        let matchers = patterns.iter().filter_map(|p| Matcher::new(p).ok()).collect();
        Self { matchers }
    }

    /// Whether the container's name or Compose address, on its engine, matches a pattern.
    pub fn allows(&self, container: &ContainerInfo) -> bool {
        let compose = container.compose.as_ref().map(|c| c.to_string());
        self.matches_on(&container.engine, &container.name, compose.as_deref())
    }

    /// Whether a container's `name` or Compose `address` (`project.service.N`) matches a
    /// pattern that names no engine: [`Patterns::allows`] for a container known only by a
    /// session row of unknown engine.
    pub fn matches(&self, name: &str, address: Option<&str>) -> bool {
        self.matches_on("", name, address)
    }

    /// Whether a container's `name` or `address` on `engine` matches a pattern. An empty
    /// `engine` matches no engine-qualified pattern.
    pub fn matches_on(&self, engine: &str, name: &str, address: Option<&str>) -> bool {
        self.matchers.iter().any(|m| {
            if m.qualified {
                !engine.is_empty()
                    && (m.glob.is_match(format!("{engine}/{name}"))
                        || address.is_some_and(|address| m.glob.is_match(format!("{engine}/{address}"))))
            } else {
                m.glob.is_match(name) || address.is_some_and(|address| m.glob.is_match(address))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::ComposeAddress;

    fn container(name: &str, compose: Option<(&str, &str, u32)>) -> ContainerInfo {
        ContainerInfo {
            engine: String::new(),
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

    #[test]
    fn engine_patterns_match_only_engine_qualified_and_never_through_the_engine_name() {
        let on =
            |engine: &str, name: &str, compose| ContainerInfo { engine: engine.into(), ..container(name, compose) };
        let host_a = Patterns::new(&["host-a/*".into(), "eu-*/shop.*".into()]).unwrap();
        assert!(host_a.allows(&on("host-a", "db", None)));
        assert!(!host_a.allows(&on("host-b", "db", None)));
        assert!(host_a.allows(&on("eu-1", "x", Some(("shop", "web", 1)))));
        assert!(!host_a.allows(&on("us-1", "x", Some(("shop", "web", 1)))));
        // No engine known (a bare runtime): a qualified pattern matches nothing.
        assert!(!host_a.allows(&on("", "db", None)));
        assert!(!host_a.matches("host-a/db", None));
        // A bare pattern never matches through the engine's name.
        let web = Patterns::new(&["*web*".into()]).unwrap();
        assert!(!web.allows(&on("host-web", "db", None)));
        assert!(web.allows(&on("host-a", "web", None)));
        assert!(web.matches_on("host-b", "shop-web-1", None));
    }
}
