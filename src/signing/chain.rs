//! Checks one gateway node's chain of manifests: every place from the first filled once, each
//! manifest readable, signed, the one its row says, and naming the SHA-256 of the one before.
//! Pure: the caller fetches and checks each manifest's signature, this judges the whole.
//!
//! Guarantees: every gap (a place no manifest fills: a session deleted with its manifest), fork
//! (two manifests at one place), broken link and unreadable or altered manifest is reported,
//! each once, in chain order; an empty report means the walked part of the chain is whole.

use super::manifest::Manifest;

/// One manifest of the chain, as the walk found it.
#[derive(Debug, Clone)]
pub struct Entry {
    pub session_id: String,
    /// Its place, as the manifests table says.
    pub seq: i64,
    /// The SHA-256 the manifests table recorded for it.
    pub recorded_sha256: String,
    /// Retention deleted its recording (the manifest stays).
    pub expired: bool,
    /// The manifest read from storage with a good signature, or why it could not be.
    pub read: Result<Read, Unread>,
}

/// Why a manifest of the chain could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unread {
    /// It is gone from storage: deleted outside Entry (retention keeps manifests).
    Missing,
    /// It cannot be fetched or read, or its signature does not verify.
    Bad(String),
}

/// A manifest read from storage and checked against its signature.
#[derive(Debug, Clone)]
pub struct Read {
    /// SHA-256 of its bytes as stored.
    pub sha256: String,
    pub manifest: Manifest,
}

/// Something wrong with the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// Places with no manifest: between `after` (none: the walk's start) and `next`.
    Gap { after: Option<(i64, String)>, next: (i64, String), missing: i64 },
    /// Several manifests claim one place.
    Fork { seq: i64, sessions: Vec<String> },
    /// The manifest is gone from storage while its row remains: its session was deleted outside
    /// Entry.
    Missing { seq: i64, session: String },
    /// The manifest cannot be read, or its signature does not verify.
    Unreadable { seq: i64, session: String, why: String },
    /// The manifest is not the one its row says (other bytes, place, node or session).
    Altered { seq: i64, session: String, why: String },
    /// The manifest names another predecessor than the one at the place before.
    Broken { seq: i64, session: String, expected: String, found: String },
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Finding::Gap { after: Some((seq, session)), next, missing } => write!(
                f,
                "GAP: {missing} manifest(s) missing between seq {seq} (session {session}) and seq {} (session {})",
                next.0, next.1
            ),
            Finding::Gap { after: None, next, missing } => {
                write!(f, "GAP: {missing} manifest(s) missing before seq {} (session {})", next.0, next.1)
            }
            Finding::Missing { seq, session } => write!(
                f,
                "GAP: the manifest at seq {seq} (session {session}) is gone from storage: deleted outside Entry"
            ),
            Finding::Fork { seq, sessions } => write!(f, "FORK: seq {seq} is claimed by {}", sessions.join(", ")),
            Finding::Unreadable { seq, session, why } => write!(f, "UNREADABLE: seq {seq} (session {session}): {why}"),
            Finding::Altered { seq, session, why } => write!(f, "ALTERED: seq {seq} (session {session}): {why}"),
            Finding::Broken { seq, session, expected, found } => write!(
                f,
                "BROKEN LINK: seq {seq} (session {session}) names previous sha256 {found}, the manifest before is {expected}"
            ),
        }
    }
}

/// Judges `entries` of node `node` (sorted by `seq`). `first_seq` is the place the walk should
/// begin at (1 from the chain's start; the one before a `--since` walk's first), so a missing
/// beginning is a gap too.
pub fn check(node: &str, entries: &[Entry], first_seq: Option<i64>) -> Vec<Finding> {
    let mut findings = Vec::new();
    for entry in entries {
        findings.extend(check_one(node, entry));
    }
    let places = places(entries);
    if let (Some(expected), Some(first)) = (first_seq, places.first()) {
        if first[0].seq > expected {
            let next = (first[0].seq, first[0].session_id.clone());
            findings.push(Finding::Gap { after: None, next, missing: first[0].seq - expected });
        }
    }
    for (index, place) in places.iter().enumerate() {
        let seq = place[0].seq;
        if place.len() > 1 {
            findings.push(Finding::Fork { seq, sessions: place.iter().map(|e| e.session_id.clone()).collect() });
        }
        let Some(before) = index.checked_sub(1).map(|i| &places[i]) else { continue };
        if seq - before[0].seq > 1 {
            let after = (before[0].seq, before[0].session_id.clone());
            let next = (seq, place[0].session_id.clone());
            findings.push(Finding::Gap { after: Some(after), next, missing: seq - before[0].seq - 1 });
            continue;
        }
        // A link is judged only against a single readable predecessor; a fork or an
        // unreadable manifest before is already reported.
        let [predecessor] = before.as_slice() else { continue };
        let Ok(previous) = &predecessor.read else { continue };
        for entry in place {
            let Ok(read) = &entry.read else { continue };
            let found = read.manifest.previous.as_ref().map(|link| link.sha256.clone()).unwrap_or_default();
            if found != previous.sha256 {
                let (session, expected) = (entry.session_id.clone(), previous.sha256.clone());
                let found = if found.is_empty() { "none".to_owned() } else { found };
                findings.push(Finding::Broken { seq, session, expected, found });
            }
        }
    }
    findings
}

/// What is wrong with one manifest on its own.
fn check_one(node: &str, entry: &Entry) -> Option<Finding> {
    let (seq, session) = (entry.seq, entry.session_id.clone());
    let read = match &entry.read {
        Ok(read) => read,
        Err(Unread::Missing) => return Some(Finding::Missing { seq, session }),
        Err(Unread::Bad(why)) => return Some(Finding::Unreadable { seq, session, why: why.clone() }),
    };
    let manifest = &read.manifest;
    let why = if read.sha256 != entry.recorded_sha256 {
        format!("its bytes have sha256 {}, its row recorded {}", read.sha256, entry.recorded_sha256)
    } else if manifest.session.id != entry.session_id {
        format!("it is the manifest of session {}", manifest.session.id)
    } else if manifest.seq != entry.seq {
        format!("it says seq {}", manifest.seq)
    } else if manifest.node != node {
        format!("it says node {}", manifest.node)
    } else if manifest.seq == 1 && manifest.previous.is_some() {
        "the first manifest names a previous one".to_owned()
    } else {
        return None;
    };
    Some(Finding::Altered { seq, session, why })
}

/// `entries` grouped by place.
fn places(entries: &[Entry]) -> Vec<Vec<&Entry>> {
    let mut places: Vec<Vec<&Entry>> = Vec::new();
    for entry in entries {
        match places.last_mut() {
            Some(place) if place[0].seq == entry.seq => place.push(entry),
            _ => places.push(vec![entry]),
        }
    }
    places
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::manifest::{ChainLink, Manifest, sha256_hex};

    /// A chain of `n` manifests on node n1, each linked to the one before.
    fn chain(n: i64) -> Vec<Entry> {
        let template = Manifest::parse(include_bytes!("testdata/manifest.json")).unwrap();
        let mut entries: Vec<Entry> = Vec::new();
        for seq in 1..=n {
            let mut manifest = template.clone();
            manifest.session.id = format!("s{seq}");
            manifest.seq = seq;
            manifest.previous = entries
                .last()
                .map(|before| ChainLink { session: before.session_id.clone(), sha256: before.recorded_sha256.clone() });
            let sha256 = sha256_hex(&manifest.to_bytes());
            entries.push(Entry {
                session_id: format!("s{seq}"),
                seq,
                recorded_sha256: sha256.clone(),
                expired: false,
                read: Ok(Read { sha256, manifest }),
            });
        }
        entries
    }

    #[test]
    fn a_whole_chain_has_no_findings() {
        assert_eq!(check("n1", &chain(5), Some(1)), vec![]);
        assert_eq!(check("n1", &chain(0), Some(1)), vec![]);
    }

    #[test]
    fn a_deleted_manifest_is_a_gap_and_a_missing_beginning_too() {
        let mut entries = chain(5);
        entries.remove(2);
        assert_eq!(
            check("n1", &entries, Some(1)),
            vec![Finding::Gap { after: Some((2, "s2".into())), next: (4, "s4".into()), missing: 1 }]
        );
        let entries = chain(5).split_off(2);
        assert_eq!(
            check("n1", &entries, Some(1)),
            vec![Finding::Gap { after: None, next: (3, "s3".into()), missing: 2 }]
        );
        assert_eq!(check("n1", &chain(5).split_off(2), Some(3)), vec![], "a walk from seq 3 on");
    }

    #[test]
    fn a_manifest_missing_from_storage_is_unreadable_and_its_successor_is_not_judged() {
        let mut entries = chain(4);
        entries[1].read = Err(Unread::Missing);
        let findings = check("n1", &entries, Some(1));
        assert_eq!(findings, vec![Finding::Missing { seq: 2, session: "s2".into() }]);
        assert!(findings[0].to_string().starts_with("GAP: the manifest at seq 2 (session s2) is gone"));
        entries[1].read = Err(Unread::Bad("signature: the signature does not match".into()));
        let findings = check("n1", &entries, Some(1));
        assert!(matches!(&findings[..], [Finding::Unreadable { seq: 2, .. }]), "{findings:?}");
    }

    #[test]
    fn two_manifests_at_one_place_are_a_fork() {
        let mut entries = chain(3);
        let mut twin = entries[1].clone();
        twin.session_id = "s2b".into();
        if let Ok(read) = &mut twin.read {
            read.manifest.session.id = "s2b".into();
        }
        entries.insert(2, twin);
        let findings = check("n1", &entries, Some(1));
        assert_eq!(findings, vec![Finding::Fork { seq: 2, sessions: vec!["s2".into(), "s2b".into()] }]);
    }

    #[test]
    fn a_link_to_another_predecessor_is_broken_and_edited_bytes_are_altered() {
        let mut entries = chain(3);
        if let Ok(read) = &mut entries[2].read {
            read.manifest.previous = Some(ChainLink { session: "s2".into(), sha256: "00".repeat(32) });
        }
        let findings = check("n1", &entries, Some(1));
        assert!(matches!(&findings[..], [Finding::Broken { seq: 3, .. }]), "{findings:?}");

        let mut entries = chain(3);
        entries[0].recorded_sha256 = "11".repeat(32);
        let findings = check("n1", &entries, Some(1));
        assert!(matches!(&findings[..], [Finding::Altered { seq: 1, .. }]), "{findings:?}");
        assert!(matches!(&check("n2", &chain(1), Some(1))[..], [Finding::Altered { .. }]));
    }
}
