//! The checks of one session's evidence against its signed manifest: the signature, the stored
//! object, the session row, the command index and the link to the node's previous manifest.
//! Pure: the caller fetches the evidence (`entry verify`, `entry export`), this judges it.
//!
//! Guarantees: nothing is judged from a manifest whose signature did not verify; every check
//! that could not be made says why (never a silent pass); each finding is one line.

use super::key::PublicKey;
use super::manifest::{IndexFacts, Manifest, SessionFacts, sha256_hex};
use crate::wire::api::SessionView;
use crate::wire::search::CommandEntry;

/// What one check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Ok(String),
    /// Evidence that something changed, or a signature that does not verify.
    Bad(String),
    /// Not checked, and why.
    Skipped(String),
}

impl Outcome {
    pub fn is_bad(&self) -> bool {
        matches!(self, Outcome::Bad(_))
    }

    /// One line: `ok …`, `BAD …` or `skipped …`.
    pub fn line(&self) -> String {
        match self {
            Outcome::Ok(text) => format!("ok {text}"),
            Outcome::Bad(text) => format!("BAD {text}"),
            Outcome::Skipped(text) => format!("skipped {text}"),
        }
    }
}

/// What was fetched of one session.
pub struct Evidence<'a> {
    pub manifest: &'a [u8],
    pub signature: &'a str,
    pub key: &'a PublicKey,
    /// The stored object's SHA-256 and size as downloaded, or why it could not be.
    pub object: Result<(String, u64), String>,
    /// The session row now (`Err`: why there is none, e.g. retention deleted it).
    pub row: Result<&'a SessionView, String>,
    /// The session's commands as the API lists them now.
    pub commands: Result<&'a [CommandEntry], String>,
    /// The bytes of the manifest the link names (`None`: this is the node's first).
    pub previous: Option<Result<Vec<u8>, String>>,
}

/// Judges `evidence`; returns the manifest when its signature verified.
pub fn check(evidence: &Evidence<'_>) -> (Option<Manifest>, Vec<Outcome>) {
    let mut outcomes = Vec::new();
    let comment = match evidence.key.verify(evidence.manifest, evidence.signature) {
        Ok(comment) => comment,
        Err(error) => {
            outcomes.push(Outcome::Bad(format!("signature of the manifest: {error}")));
            return (None, outcomes);
        }
    };
    let manifest = match Manifest::parse(evidence.manifest) {
        Ok(manifest) => manifest,
        Err(error) => {
            outcomes.push(Outcome::Bad(format!("manifest: {error}")));
            return (None, outcomes);
        }
    };
    if comment != manifest.trusted_comment() {
        outcomes.push(Outcome::Bad(format!("the signature's trusted comment {comment:?} is not this manifest's")));
    }
    outcomes.push(Outcome::Ok(format!(
        "signature: manifest signed by key {} (node {}, seq {})",
        evidence.key.key_id(),
        manifest.node,
        manifest.seq
    )));
    outcomes.push(recording(&manifest, &evidence.object));
    outcomes.push(row(&manifest, &evidence.row));
    outcomes.push(index(&manifest, &evidence.commands));
    outcomes.push(link(&manifest, evidence.previous.as_ref()));
    (Some(manifest), outcomes)
}

fn recording(manifest: &Manifest, object: &Result<(String, u64), String>) -> Outcome {
    let signed = &manifest.recording;
    match object {
        Err(why) => Outcome::Skipped(format!("recording: {why}")),
        Ok((sha256, size)) if sha256.eq_ignore_ascii_case(&signed.sha256) && *size == signed.size => {
            Outcome::Ok(format!("recording: sha256={sha256} size={size}, as signed"))
        }
        Ok((sha256, size)) => Outcome::Bad(format!(
            "recording: stored sha256={sha256} size={size}, signed sha256={} size={}",
            signed.sha256, signed.size
        )),
    }
}

fn row(manifest: &Manifest, row: &Result<&SessionView, String>) -> Outcome {
    let view = match row {
        Ok(view) => view,
        Err(why) => return Outcome::Skipped(format!("session row: {why}")),
    };
    let now = SessionFacts::of(view);
    let differences = manifest.session.differences(&now);
    let recording_moved = view.recording_sha256.as_deref().is_some_and(|sha| sha != manifest.recording.sha256);
    match (differences.is_empty(), recording_moved) {
        (true, false) => Outcome::Ok("session row: as signed".into()),
        (_, moved) => {
            let mut fields: Vec<&str> = differences;
            if moved {
                fields.push("recording_sha256");
            }
            Outcome::Bad(format!("session row: {} differ(s) from the signed manifest", fields.join(", ")))
        }
    }
}

fn index(manifest: &Manifest, commands: &Result<&[CommandEntry], String>) -> Outcome {
    let Some(signed) = &manifest.index else {
        return Outcome::Skipped("command index: none was signed (the gateway's index was off)".into());
    };
    match commands {
        Err(why) => Outcome::Skipped(format!("command index: {why}")),
        Ok(commands) => {
            let now = IndexFacts::of(commands);
            if now == *signed {
                Outcome::Ok(format!("command index: {} command(s), as signed", now.commands))
            } else {
                Outcome::Bad(format!(
                    "command index: {} command(s) with sha256 {} now, {} with sha256 {} signed",
                    now.commands, now.sha256, signed.commands, signed.sha256
                ))
            }
        }
    }
}

fn link(manifest: &Manifest, previous: Option<&Result<Vec<u8>, String>>) -> Outcome {
    match (&manifest.previous, previous) {
        (None, _) if manifest.seq == 1 => Outcome::Ok(format!("chain: the first manifest of node {}", manifest.node)),
        (None, _) => Outcome::Bad(format!("chain: seq {} names no previous manifest", manifest.seq)),
        (Some(link), None) => {
            Outcome::Skipped(format!("chain: the previous manifest ({}) was not fetched", link.session))
        }
        (Some(link), Some(Err(why))) => Outcome::Skipped(format!("chain: previous manifest ({}): {why}", link.session)),
        (Some(link), Some(Ok(bytes))) => {
            let sha256 = sha256_hex(bytes);
            if sha256 == link.sha256 {
                Outcome::Ok(format!(
                    "chain: previous manifest (session {}) has sha256 {sha256}, as linked",
                    link.session
                ))
            } else {
                Outcome::Bad(format!(
                    "chain: previous manifest (session {}) has sha256 {sha256}, the link says {}",
                    link.session, link.sha256
                ))
            }
        }
    }
}
