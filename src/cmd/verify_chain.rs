//! `entry verify --chain [--node N] [--since T]`: walks gateway nodes' chains of manifests through
//! the API (auditors and admins), checks each manifest's signature and bytes, and reports gaps (a
//! session deleted with its manifest), forks, broken links, and altered or unreadable manifests.
//!
//! Guarantees: every manifest walked is fetched and checked against the public key (none is
//! trusted from the table alone); a walk from `--since` also checks the link into its first
//! manifest; the exit status is 0 only when every walked chain is whole.

use anyhow::Context;

use super::verify::KeyArgs;
use crate::client::api::ApiClient;
use crate::signing::PublicKey;
use crate::signing::chain::{Entry, Read, Unread, check};
use crate::signing::manifest::{Manifest, sha256_hex};
use crate::wire::signing::ManifestEntry;

/// Walks the chains; prints a summary line per node and a line per finding. True when whole.
pub async fn verify_chains(
    client: &ApiClient,
    node: Option<&str>,
    since: Option<i64>,
    key: &KeyArgs,
) -> anyhow::Result<bool> {
    let (public_key, source) = key.key(client).await?;
    println!("using {source}");
    let nodes = match node {
        Some(node) => vec![node.to_owned()],
        None => client.manifest_nodes().await.context("listing the nodes that signed manifests")?.nodes,
    };
    if nodes.is_empty() {
        println!("no manifests yet");
    }
    let mut whole = true;
    for node in nodes {
        whole &= verify_node(client, &node, since, &public_key).await?;
    }
    Ok(whole)
}

async fn verify_node(client: &ApiClient, node: &str, since: Option<i64>, key: &PublicKey) -> anyhow::Result<bool> {
    let mut listed = list(client, node, since.unwrap_or(0), 0).await?;
    let Some(first) = listed.first().map(|entry| entry.seq) else {
        println!("node {node}: no manifests{}", if since.is_some() { " in that time" } else { "" });
        return Ok(true);
    };
    // From `--since`, the manifest before the first is fetched too, to check the link into it.
    let first_seq = match since {
        Some(_) if first > 1 => {
            let before = client.manifest_chain(node, 0, first - 2).await?.manifests;
            if let Some(entry) = before.into_iter().next().filter(|entry| entry.seq == first - 1) {
                listed.insert(0, entry);
            }
            first - 1
        }
        _ => 1,
    };
    let mut entries = Vec::with_capacity(listed.len());
    for entry in listed {
        entries.push(read(client, key, entry).await);
    }
    let findings = check(node, &entries, Some(first_seq));
    let (low, high) = (entries.first().map_or(0, |e| e.seq), entries.last().map_or(0, |e| e.seq));
    let expired = entries.iter().filter(|entry| entry.expired).count();
    let state = if findings.is_empty() { "whole" } else { "NOT WHOLE" };
    println!("node {node}: {} manifest(s), seq {low}-{high} ({expired} of expired sessions): {state}", entries.len());
    for finding in &findings {
        println!("{finding}");
    }
    Ok(findings.is_empty())
}

/// Every entry of `node`'s chain after `after_seq` signed at or after `since`, page by page.
async fn list(client: &ApiClient, node: &str, since: i64, after_seq: i64) -> anyhow::Result<Vec<ManifestEntry>> {
    let mut entries = Vec::new();
    let mut after = after_seq;
    loop {
        let page = client.manifest_chain(node, since, after).await.with_context(|| format!("listing node {node}"))?;
        entries.extend(page.manifests);
        match page.next_after_seq {
            Some(next) if next > after => after = next,
            _ => return Ok(entries),
        }
    }
}

/// Fetches one manifest and its signature and checks them.
async fn read(client: &ApiClient, key: &PublicKey, entry: ManifestEntry) -> Entry {
    let unread = |error: crate::client::api::ApiError| match error.code() {
        Some("manifest_missing") => Unread::Missing,
        _ => Unread::Bad(error.to_string()),
    };
    let read = async {
        let bytes = client.manifest(&entry.session_id).await.map_err(unread)?;
        let signature = client.manifest_signature(&entry.session_id).await.map_err(unread)?;
        let signature = String::from_utf8_lossy(&signature);
        key.verify(&bytes, &signature).map_err(|e| Unread::Bad(format!("signature: {e}")))?;
        let manifest = Manifest::parse(&bytes).map_err(|e| Unread::Bad(e.to_string()))?;
        Ok(Read { sha256: sha256_hex(&bytes), manifest })
    };
    Entry {
        read: read.await,
        session_id: entry.session_id,
        seq: entry.seq,
        recorded_sha256: entry.sha256,
        expired: entry.expired_at.is_some(),
    }
}
