//! The share-link calls of [`ApiClient`]: share a finished session, list its links, revoke one.
//!
//! Guarantees: a created link's secret is returned to the caller only (never logged here); the
//! link printed is this client's gateway URL and the path the gateway gave, so it points where
//! the CLI was pointed; a link id is one percent-encoded path segment of letters and digits.

use reqwest::Url;
use serde::de::DeserializeOwned;

use super::{ApiClient, ApiError, REQUEST_TIMEOUT, checked, describe};
use crate::wire::shares::{CreatedShare, NewShare, ShareInfo};

impl ApiClient {
    /// Creates a share link to a finished session (auditors and admins).
    pub async fn share(&self, id: &str, request: &NewShare) -> Result<CreatedShare, ApiError> {
        self.post_body(self.url(&["sessions", checked(id)?, "shares"]), request).await
    }

    /// The share links of a session, without their secrets.
    pub async fn shares(&self, id: &str) -> Result<Vec<ShareInfo>, ApiError> {
        self.get_json(self.url(&["sessions", checked(id)?, "shares"])).await
    }

    /// Revokes a share link.
    pub async fn unshare(&self, link_id: &str) -> Result<ShareInfo, ApiError> {
        if link_id.is_empty() || !link_id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(ApiError::BadId(link_id.to_owned()));
        }
        self.post_json(self.url(&["shares", link_id, "revoke"])).await
    }

    /// The full link of `path` (`/share/#…`, as the gateway gave it) on this client's gateway.
    pub fn link(&self, path: &str) -> String {
        format!("{}{path}", self.base.as_str().trim_end_matches('/'))
    }

    /// POSTs `body` as JSON to `url`; the answer's JSON.
    async fn post_body<T: DeserializeOwned>(&self, url: Url, body: &impl serde::Serialize) -> Result<T, ApiError> {
        let mut request = self.http.post(url).timeout(REQUEST_TIMEOUT).json(body);
        if let Some(value) = &self.authorization {
            request = request.header(http::header::AUTHORIZATION, value.clone());
        }
        let response = self.send(request).await?;
        let body = response.bytes().await.map_err(|e| ApiError::Body(describe(&e)))?;
        serde_json::from_slice(&body).map_err(ApiError::Decode)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_and_link_ids() {
        let client = ApiClient::new("ws://127.0.0.1:8080/", Some("t")).unwrap();
        assert_eq!(client.link("/share/#shx.y"), "http://127.0.0.1:8080/share/#shx.y");
        let prefixed = ApiClient::new("https://entry.example/bastion", Some("t")).unwrap();
        assert_eq!(prefixed.link("/share/#a"), "https://entry.example/bastion/share/#a");
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        for bad in ["", "../tokens", "sh a", "sh/x"] {
            assert!(matches!(runtime.block_on(client.unshare(bad)), Err(ApiError::BadId(_))), "{bad:?}");
        }
    }
}
