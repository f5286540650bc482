//! Compiles `proto/` with protox (pure Rust), so a build needs no `protoc` on the machine, and
//! points the embedded web pages at `player/dist/`; when `npm run build` has not filled it,
//! the gateway serves a page saying the pages were not built. A plain
//! `cargo build` therefore always works, with or without Node.js.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "proto/entry/v1/message.proto";
    println!("cargo:rerun-if-changed={proto}");
    let descriptors = protox::compile([proto], ["proto"])?;
    prost_build::Config::new().bytes(["."]).compile_fds(descriptors)?;
    pages()
}

fn pages() -> Result<(), Box<dyn std::error::Error>> {
    let dist = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("player/dist");
    // An empty dist/ (git-ignored) stands for "not built", so cargo can watch one folder that
    // always exists: a build of the pages then makes cargo embed the new files.
    let folder = match std::fs::create_dir_all(&dist) {
        Ok(()) => dist,
        // A read-only source tree: embed nothing.
        Err(_) => {
            let empty = PathBuf::from(std::env::var("OUT_DIR")?).join("no-pages");
            std::fs::create_dir_all(&empty)?;
            empty
        }
    };
    println!("cargo:rerun-if-changed={}", folder.display());
    if !folder.join("sessions.html").is_file() {
        println!(
            "cargo:warning=the web pages are not built (npm --prefix player ci && npm --prefix player run build): the gateway will serve a page saying so"
        );
    }
    println!("cargo:rustc-env=ENTRY_PAGES_DIR={}", folder.display());
    Ok(())
}
