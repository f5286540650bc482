//! The client's calls for signed recordings: the gateway's signing key, a session's manifest and
//! signature (as stored, byte for byte), and the nodes' manifest chains.

use bytes::Bytes;

use super::{ApiClient, ApiError, REQUEST_TIMEOUT, checked, describe};
use crate::wire::signing::{ManifestNodes, ManifestPage, SigningKeyView};

impl ApiClient {
    /// The public key the gateway signs manifests with.
    pub async fn signing_key(&self) -> Result<SigningKeyView, ApiError> {
        self.get_json(self.url(&["signing-key"])).await
    }

    /// A session's manifest, exactly as stored.
    pub async fn manifest(&self, id: &str) -> Result<Bytes, ApiError> {
        self.get_bytes(self.url(&["sessions", checked(id)?, "manifest"])).await
    }

    /// The minisign signature of a session's manifest, exactly as stored.
    pub async fn manifest_signature(&self, id: &str) -> Result<Bytes, ApiError> {
        self.get_bytes(self.url(&["sessions", checked(id)?, "manifest", "signature"])).await
    }

    /// The gateway nodes that signed manifests.
    pub async fn manifest_nodes(&self) -> Result<ManifestNodes, ApiError> {
        self.get_json(self.url(&["manifests", "nodes"])).await
    }

    /// A page of `node`'s chain: manifests after `after_seq`, signed at or after `since`.
    pub async fn manifest_chain(&self, node: &str, since: i64, after_seq: i64) -> Result<ManifestPage, ApiError> {
        let mut url = self.url(&["manifests"]);
        url.query_pairs_mut()
            .append_pair("node", node)
            .append_pair("since", &since.to_string())
            .append_pair("after_seq", &after_seq.to_string());
        self.get_json(url).await
    }

    async fn get_bytes(&self, url: reqwest::Url) -> Result<Bytes, ApiError> {
        let response = self.send(self.request(url).timeout(REQUEST_TIMEOUT)).await?;
        response.bytes().await.map_err(|e| ApiError::Body(describe(&e)))
    }
}
