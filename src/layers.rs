//! The crate's layers, lowest first, and the test that keeps them: a module may use its own
//! layer's module and the modules of lower layers, never a higher one, so no cycle between
//! top-level modules can form. The client is a leaf for users of the API: it stands on the wire
//! contract alone, and only the commands use it.
//!
//! ```text
//! cmd                       the `entry` subcommands
//!  └ http                   router, API handlers, pages, TLS, health, metrics
//!     └ session             admission, relay and its event fan-out, live registry, kill, limits
//!        └ retention        the retention sweeper (deletes expired sessions, never held ones)
//!           └ rules  replay  signing   command rules (the gate on each Enter, reviews,
//!              │               notifications); segmented replay (plans beside recordings, segments
//!              │               on request); signed manifests of stored recordings and their chain
//!              └ auth  recorder  reaper  index
//!                 └ runtime  store  config  telemetry  client
//!                    └ wire  terminal protocol and API types (uses nothing of Entry)
//! ```

/// Top-level modules by layer, lowest first.
pub const LAYERS: &[&[&str]] = &[
    &["wire"],
    &["runtime", "store", "config", "telemetry", "client"],
    &["auth", "recorder", "reaper", "index"],
    &["rules", "replay", "signing"],
    &["retention"],
    &["session"],
    &["http"],
    &["cmd"],
];

/// The layer of a top-level module; `None` for one missing from [`LAYERS`].
pub fn layer(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

/// Whether `from` may use `to`.
pub fn may_use(from: &str, to: &str) -> bool {
    if from == to {
        return true;
    }
    if to == "client" && from != "cmd" {
        return false;
    }
    matches!((layer(from), layer(to)), (Some(a), Some(b)) if b < a)
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;

    /// The top-level modules a source file names: `crate::x`, `crate::{x, y::z}`, and
    /// `super::` paths that climb to the crate root.
    fn used_modules(source: &str, depth: usize) -> Vec<String> {
        let mut used = Vec::new();
        for line in source.lines() {
            let code = line.split("//").next().unwrap_or("");
            let mut rest = code;
            while let Some(at) = rest.find("crate::") {
                rest = &rest[at + "crate::".len()..];
                if let Some(group) = rest.strip_prefix('{') {
                    let group = group.split('}').next().unwrap_or("");
                    for item in group.split(',') {
                        let name: String =
                            item.trim().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                        if !name.is_empty() {
                            used.push(name);
                        }
                    }
                } else {
                    used.push(rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect());
                }
            }
            if depth > 0 {
                let climb = "super::".repeat(depth);
                let mut rest = code;
                while let Some(at) = rest.find(&climb) {
                    rest = &rest[at + climb.len()..];
                    if !rest.starts_with("super::") {
                        used.push(rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect());
                    }
                }
            }
        }
        used.retain(|name| !name.is_empty());
        used
    }

    fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                rust_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    /// Every use of one top-level module by another, as (file, from, to).
    fn uses() -> Vec<(String, String, String)> {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        let mut found = Vec::new();
        for file in files {
            let relative = file.strip_prefix(&src).unwrap();
            let parts: Vec<_> = relative.iter().map(|p| p.to_string_lossy().into_owned()).collect();
            if parts.len() == 1 && matches!(parts[0].as_str(), "lib.rs" | "main.rs" | "layers.rs") {
                continue;
            }
            let top = parts[0].trim_end_matches(".rs").to_owned();
            // How many `super::` reach the crate root from this file's module.
            let depth = parts.len() - usize::from(parts.last().is_some_and(|p| p == "mod.rs"));
            let source = std::fs::read_to_string(&file).unwrap();
            for to in used_modules(&source, depth) {
                if to != "self" {
                    found.push((relative.display().to_string(), top.clone(), to));
                }
            }
        }
        found
    }

    #[test]
    fn every_top_level_module_has_a_layer() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        for entry in std::fs::read_dir(&src).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().trim_end_matches(".rs").to_owned();
            if !matches!(name.as_str(), "lib" | "main" | "layers") {
                assert!(layer(&name).is_some(), "src/{name} is in no layer of src/layers.rs");
            }
        }
    }

    #[test]
    fn modules_use_only_lower_layers() {
        let mut wrong: Vec<_> = uses()
            .into_iter()
            .filter(|(_, from, to)| layer(to).is_some() && !may_use(from, to))
            .map(|(file, from, to)| format!("src/{file}: {from} uses {to}"))
            .collect();
        wrong.dedup();
        assert!(wrong.is_empty(), "uses against the layers (see src/layers.rs):\n{}", wrong.join("\n"));
    }

    #[test]
    fn the_check_sees_every_form_of_use() {
        let source = "use crate::http::Gateway;\nuse crate::{session::Engine, store};\nlet x = super::super::cmd::run();\n// crate::comment\n";
        assert_eq!(used_modules(source, 2), ["http", "session", "store", "cmd"]);
        assert!(!may_use("session", "http"), "an upward use is refused");
        assert!(!may_use("http", "client"), "only the commands use the client");
        assert!(may_use("cmd", "client") && may_use("session", "wire") && !may_use("wire", "store"));
    }
}
