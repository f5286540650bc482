//! The API types of signed recordings: the signing key and the chain of manifests of each
//! gateway node (`/api/v1/signing-key`, `/api/v1/manifests`).

/// `GET /api/v1/signing-key`: the public key every manifest is signed with.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct SigningKeyView {
    /// As minisign prints it (16 hex digits).
    pub key_id: String,
    /// The base64 line: `minisign -Vm manifest.json -P <public_key>`.
    pub public_key: String,
    /// The text of a minisign `.pub` file (`minisign -p <file>`).
    pub public_key_file: String,
}

/// One manifest's place in its node's chain.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ManifestEntry {
    pub session_id: String,
    pub node: String,
    /// From 1.
    pub seq: i64,
    /// SHA-256 of the manifest's bytes as stored.
    pub sha256: String,
    /// SHA-256 of the node's manifest before it (`null` for the first).
    pub previous_sha256: Option<String>,
    /// Unix milliseconds.
    pub signed_at: i64,
    /// When retention deleted the session's recording and row (the manifest stays).
    pub expired_at: Option<i64>,
}

/// `GET /api/v1/manifests`: a page of one node's chain, in chain order.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ManifestPage {
    pub node: String,
    pub manifests: Vec<ManifestEntry>,
    /// Pass as `after_seq` for the next page; `null` on the last.
    pub next_after_seq: Option<i64>,
}

/// `GET /api/v1/manifests` filters.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize, utoipa::IntoParams)]
pub struct ManifestQuery {
    /// The gateway node whose chain to list (required; `/api/v1/manifests/nodes` lists them).
    pub node: Option<String>,
    /// Only manifests signed at or after this time (Unix milliseconds).
    pub since: Option<String>,
    /// Only manifests after this place (pagination).
    pub after_seq: Option<String>,
    /// Manifests per page (1–1000, default 500).
    pub limit: Option<String>,
}

/// `GET /api/v1/manifests/nodes`: the gateway nodes that signed manifests.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ManifestNodes {
    pub nodes: Vec<String>,
}
