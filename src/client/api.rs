//! A client for a gateway's read-only session API (`/api/v1`), and the API's wire types,
//! shared with the gateway so both sides agree on them.
//!
//! Guarantees: the token goes only in the `Authorization` header (marked sensitive, never
//! logged); a session id is always one percent-encoded path segment; every non-2xx answer
//! becomes an [`ApiError::Api`] carrying the API's code and message when it sent them.

mod shares;
mod signing;

use std::time::Duration;

use bytes::Bytes;
use http::HeaderValue;
use reqwest::Url;
use serde::de::DeserializeOwned;

pub use crate::wire::api::{
    ErrorBody, HoldOutcome, HoldRequest, KillDelivery, KillOutcome, SessionPage, SessionQuery, SessionView,
};
use crate::wire::replay::{Segment, SegmentIndex};
use crate::wire::rules::{AlertQuery, ReviewDecision, RuleHitList, RuleList};
use crate::wire::search::{CommandList, SearchPage, SearchQuery};

/// How long connecting to the gateway may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a JSON request may take in all.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a recording download may wait for its next bytes.
const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// Why an API call failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("bad server URL {0:?}: use http(s)://host:port")]
    BadServer(String),
    #[error("the access token contains characters an HTTP header cannot carry")]
    BadToken,
    #[error("{0:?} is not a session id (a UUID)")]
    BadId(String),
    #[error("cannot reach the gateway at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("{message} ({code})")]
    Api { status: u16, code: String, message: String },
    #[error("the gateway answered HTTP {status}: {body}")]
    Unexpected { status: u16, body: String },
    #[error("the gateway's answer broke off (its log says why): {0}")]
    Body(String),
    #[error("the gateway's answer is not what the API returns: {0}")]
    Decode(serde_json::Error),
    #[error(transparent)]
    Ca(super::tls::CaError),
}

impl ApiError {
    /// The API's error code, when the gateway sent one.
    pub fn code(&self) -> Option<&str> {
        match self {
            ApiError::Api { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// A client of one gateway's API.
#[derive(Debug, Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    base: Url,
    authorization: Option<HeaderValue>,
}

/// A recording being downloaded.
pub struct Download {
    response: reqwest::Response,
}

impl Download {
    /// The next bytes; `None` at the end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, ApiError> {
        self.response.chunk().await.map_err(|e| ApiError::Body(describe(&e)))
    }
}

impl ApiClient {
    /// A client of the gateway at `server` (`http(s)://host:port[/prefix]`; `ws(s)://` is
    /// taken as its HTTP twin).
    pub fn new(server: &str, token: Option<&str>) -> Result<Self, ApiError> {
        Self::with_ca(server, token, None)
    }

    /// Like [`ApiClient::new`], also trusting the CA certificates of the PEM file `ca`.
    pub fn with_ca(server: &str, token: Option<&str>, ca: Option<&std::path::Path>) -> Result<Self, ApiError> {
        let bad = || ApiError::BadServer(server.to_owned());
        let mut base = Url::parse(server.trim()).map_err(|_| bad())?;
        let scheme = match base.scheme() {
            "http" | "ws" => "http",
            "https" | "wss" => "https",
            _ => return Err(bad()),
        };
        base.set_scheme(scheme).map_err(|_| bad())?;
        if base.cannot_be_a_base() || base.host().is_none() {
            return Err(bad());
        }
        base.set_query(None);
        base.set_fragment(None);
        let authorization = token
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(|t| {
                let mut value = HeaderValue::from_str(&format!("Bearer {t}")).map_err(|_| ApiError::BadToken)?;
                value.set_sensitive(true);
                Ok(value)
            })
            .transpose()?;
        let mut http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(READ_TIMEOUT)
            .user_agent(concat!("entry/", env!("CARGO_PKG_VERSION")));
        if let Some(ca) = ca {
            for cert in super::tls::ca_certificates(ca).map_err(ApiError::Ca)? {
                let cert = reqwest::Certificate::from_der(cert.as_ref()).map_err(|e| {
                    ApiError::Ca(super::tls::CaError::Refused { path: ca.to_owned(), reason: describe(&e) })
                })?;
                http = http.add_root_certificate(cert);
            }
        }
        let http = http.build().map_err(|e| ApiError::Unreachable { url: server.to_owned(), reason: describe(&e) })?;
        Ok(Self { http, base, authorization })
    }

    /// The URL of `/api/v1/<segments…>`, each segment percent-encoded.
    pub fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(["api", "v1"]).extend(segments);
        }
        url
    }

    /// The containers the caller may enter, on every engine, and which engines answered.
    pub async fn containers(&self) -> Result<crate::wire::containers::ContainerList, ApiError> {
        self.get_json(self.url(&["containers"])).await
    }

    /// One page of sessions.
    pub async fn sessions(&self, query: &SessionQuery) -> Result<SessionPage, ApiError> {
        self.get_json(self.sessions_url(query)).await
    }

    /// One session's row.
    pub async fn session(&self, id: &str) -> Result<SessionView, ApiError> {
        self.get_json(self.url(&["sessions", checked(id)?])).await
    }

    /// Kills a live session (admins only).
    pub async fn kill(&self, id: &str) -> Result<KillOutcome, ApiError> {
        self.post_json(self.url(&["sessions", checked(id)?, "kill"])).await
    }

    /// Puts an ended session on legal hold (auditors, admins).
    pub async fn hold(&self, id: &str, reason: &str) -> Result<HoldOutcome, ApiError> {
        let url = self.url(&["sessions", checked(id)?, "hold"]);
        let body = serde_json::to_vec(&HoldRequest { reason: reason.to_owned() }).map_err(ApiError::Decode)?;
        self.post(url, Some(body)).await
    }

    /// Releases a session's legal hold (auditors, admins).
    pub async fn release(&self, id: &str) -> Result<HoldOutcome, ApiError> {
        self.post_json(self.url(&["sessions", checked(id)?, "release"])).await
    }

    /// Starts downloading a session's recording: the asciicast text, or with `raw` the
    /// stored gzip bytes exactly as stored.
    pub async fn recording(&self, id: &str, raw: bool) -> Result<Download, ApiError> {
        let mut url = self.url(&["sessions", checked(id)?, "recording"]);
        if raw {
            url.query_pairs_mut().append_pair("raw", "true");
        }
        let response = self.send(self.request(url)).await?;
        Ok(Download { response })
    }

    /// The index of a session's segmented replay, times on the session's own timeline (no
    /// idle-time limit asked for).
    pub async fn segment_index(&self, id: &str) -> Result<SegmentIndex, ApiError> {
        self.get_json(self.url(&["sessions", checked(id)?, "segments"])).await
    }

    /// One segment of a segmented replay, at the `url` its index gave.
    pub async fn segment(&self, url: &str) -> Result<Segment, ApiError> {
        self.get_json_at(url).await
    }

    /// GETs the JSON at `path` (`/api/v1/…`, with its query if any), a path the gateway
    /// itself gave, used exactly as given. It always goes to this client's gateway, whatever
    /// `path` says: a path without the base URL's own path (`/bastion` of
    /// `https://host/bastion`) gets it in front.
    pub async fn get_json_at<T: DeserializeOwned>(&self, path: &str) -> Result<T, ApiError> {
        self.get_json(self.path_url(path)).await
    }

    /// One page of search hits across sessions (commands and output).
    pub async fn search(&self, query: &SearchQuery) -> Result<SearchPage, ApiError> {
        self.get_json(self.search_url(query)).await
    }

    /// The commands of one session.
    pub async fn commands(&self, id: &str) -> Result<CommandList, ApiError> {
        self.get_json(self.url(&["sessions", checked(id)?, "commands"])).await
    }

    /// One page of rule hits (alerts), newest first.
    pub async fn alerts(&self, query: &AlertQuery) -> Result<RuleHitList, ApiError> {
        let mut url = self.url(&["alerts"]);
        let pairs = [
            ("session", query.session.clone()),
            ("outcome", query.outcome.clone()),
            ("before", query.before.clone()),
            ("limit", query.limit.map(|n| n.to_string())),
        ];
        url.query_pairs_mut().extend_pairs(pairs.iter().filter_map(|(k, v)| v.as_ref().map(|v| (k, v))));
        if url.query() == Some("") {
            url.set_query(None);
        }
        self.get_json(url).await
    }

    /// The rules the gateway has loaded (admins only).
    pub async fn rules(&self) -> Result<RuleList, ApiError> {
        self.get_json(self.url(&["rules"])).await
    }

    /// Approves (`true`) or denies a command held for review (admins only).
    pub async fn decide(&self, hit_id: &str, approve: bool) -> Result<ReviewDecision, ApiError> {
        self.post_json(self.url(&["reviews", checked(hit_id)?, if approve { "approve" } else { "deny" }])).await
    }

    /// POSTs to `url` without a body; the answer's JSON.
    async fn post_json<T: DeserializeOwned>(&self, url: Url) -> Result<T, ApiError> {
        self.post(url, None).await
    }

    /// POSTs to `url`, with a JSON `body` if given; the answer's JSON.
    async fn post<T: DeserializeOwned>(&self, url: Url, body: Option<Vec<u8>>) -> Result<T, ApiError> {
        let mut request = self.http.post(url).timeout(REQUEST_TIMEOUT);
        if let Some(body) = body {
            request = request.header(http::header::CONTENT_TYPE, "application/json").body(body);
        }
        if let Some(value) = &self.authorization {
            request = request.header(http::header::AUTHORIZATION, value.clone());
        }
        let response = self.send(request).await?;
        let body = response.bytes().await.map_err(|e| ApiError::Body(describe(&e)))?;
        serde_json::from_slice(&body).map_err(ApiError::Decode)
    }

    /// The URL of `path` (`/api/v1/…[?query]`) on this gateway.
    fn path_url(&self, path: &str) -> Url {
        let path = path.split_once('#').map_or(path, |(path, _)| path);
        let (path, query) = match path.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (path, None),
        };
        let mut url = self.base.clone();
        let prefix = url.path().trim_end_matches('/').to_owned();
        let path = path.trim_start_matches('/');
        let under_prefix = path.strip_prefix(prefix.trim_start_matches('/')).is_some_and(|p| p.starts_with('/'));
        if prefix.is_empty() || under_prefix {
            url.set_path(&format!("/{path}"));
        } else {
            url.set_path(&format!("{prefix}/{path}"));
        }
        url.set_query(query);
        url
    }

    fn search_url(&self, query: &SearchQuery) -> Url {
        let mut url = self.url(&["search"]);
        url.query_pairs_mut().extend_pairs(query.pairs());
        if url.query() == Some("") {
            url.set_query(None);
        }
        url
    }

    fn sessions_url(&self, query: &SessionQuery) -> Url {
        let mut url = self.url(&["sessions"]);
        url.query_pairs_mut().extend_pairs(query.pairs());
        if url.query() == Some("") {
            url.set_query(None);
        }
        url
    }

    fn request(&self, url: Url) -> reqwest::RequestBuilder {
        let request = self.http.get(url);
        match &self.authorization {
            Some(value) => request.header(http::header::AUTHORIZATION, value.clone()),
            None => request,
        }
    }

    async fn get_json<T: DeserializeOwned>(&self, url: Url) -> Result<T, ApiError> {
        let request = self.request(url).timeout(REQUEST_TIMEOUT).header(http::header::ACCEPT, "application/json");
        let response = self.send(request).await?;
        let body = response.bytes().await.map_err(|e| ApiError::Body(describe(&e)))?;
        serde_json::from_slice(&body).map_err(ApiError::Decode)
    }

    /// Sends a request; a non-2xx answer becomes an error.
    async fn send(&self, request: reqwest::RequestBuilder) -> Result<reqwest::Response, ApiError> {
        let response = request.send().await.map_err(|e| ApiError::Unreachable {
            url: self.base.as_str().trim_end_matches('/').to_owned(),
            reason: describe(&e),
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body = response.bytes().await.unwrap_or_default();
        Err(match serde_json::from_slice::<ErrorBody>(&body) {
            Ok(error) => ApiError::Api { status: status.as_u16(), code: error.code, message: error.message },
            Err(_) => {
                let text = String::from_utf8_lossy(&body);
                let text: String = text.trim().chars().take(200).collect();
                ApiError::Unexpected { status: status.as_u16(), body: text }
            }
        })
    }
}

/// What went wrong, from the error's causes (reqwest's own message only repeats the URL).
fn describe(error: &reqwest::Error) -> String {
    let mut causes = Vec::new();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        causes.push(cause.to_string());
        source = cause.source();
    }
    if causes.is_empty() { error.to_string() } else { causes.join(": ") }
}

/// `id` if it is a UUID (so it never turns into another path).
fn checked(id: &str) -> Result<&str, ApiError> {
    match uuid::Uuid::try_parse(id) {
        Ok(_) => Ok(id),
        Err(_) => Err(ApiError::BadId(id.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let client = ApiClient::new("http://127.0.0.1:8080", None).unwrap();
        assert_eq!(client.url(&["sessions", "a/../b"]).as_str(), "http://127.0.0.1:8080/api/v1/sessions/a%2F..%2Fb");
        let prefixed = ApiClient::new("wss://entry.example/bastion/", Some("t")).unwrap();
        assert_eq!(prefixed.url(&["sessions"]).as_str(), "https://entry.example/bastion/api/v1/sessions");
        let query = SessionQuery {
            user: Some("a&b".into()),
            since: Some("5".into()),
            limit: Some("2".into()),
            ..Default::default()
        };
        assert_eq!(
            client.sessions_url(&query).as_str(),
            "http://127.0.0.1:8080/api/v1/sessions?user=a%26b&since=5&limit=2"
        );
        assert_eq!(client.sessions_url(&SessionQuery::default()).as_str(), "http://127.0.0.1:8080/api/v1/sessions");
        for bad in ["ftp://h", "127.0.0.1:8080", "", "mailto:x@y"] {
            assert!(matches!(ApiClient::new(bad, None), Err(ApiError::BadServer(_))), "{bad}");
        }
        assert!(matches!(ApiClient::new("http://h", Some("a\nb")), Err(ApiError::BadToken)));
        assert!(matches!(checked(".."), Err(ApiError::BadId(_))));
        assert!(checked("0190a0b0-c0d0-7e0f-8000-000000000001").is_ok());
    }

    #[test]
    fn search_urls() {
        let client = ApiClient::new("http://127.0.0.1:8080", None).unwrap();
        let query = SearchQuery {
            q: Some("rm -rf /&x".into()),
            kind: Some("commands".into()),
            limit: Some("5".into()),
            before: Some("17.1.4.s".into()),
            ..Default::default()
        };
        assert_eq!(
            client.search_url(&query).as_str(),
            "http://127.0.0.1:8080/api/v1/search?q=rm+-rf+%2F%26x&kind=commands&limit=5&before=17.1.4.s"
        );
        assert_eq!(
            client.url(&["sessions", "0190a0b0-c0d0-7e0f-8000-000000000001", "commands"]).as_str(),
            "http://127.0.0.1:8080/api/v1/sessions/0190a0b0-c0d0-7e0f-8000-000000000001/commands"
        );
    }

    #[test]
    fn path_urls_stay_on_the_gateway() {
        let client = ApiClient::new("http://127.0.0.1:8080", None).unwrap();
        let path = "/api/v1/sessions/0190a0b0-c0d0-7e0f-8000-000000000001/segments/3?upto=1234&member=5";
        assert_eq!(client.path_url(path).as_str(), format!("http://127.0.0.1:8080{path}"));
        assert_eq!(client.path_url("/api/v1/x#frag").as_str(), "http://127.0.0.1:8080/api/v1/x");
        // Another host or scheme in the path is only a path on this gateway.
        assert_eq!(client.path_url("//evil.example/api").as_str(), "http://127.0.0.1:8080/evil.example/api");
        assert_eq!(client.path_url("http://evil.example/x").host_str(), Some("127.0.0.1"));
        assert_eq!(client.path_url("/api/v1/../../x").as_str(), "http://127.0.0.1:8080/x");
        let prefixed = ApiClient::new("https://entry.example/bastion/", None).unwrap();
        let expected = "https://entry.example/bastion/api/v1/sessions/s/segments/0";
        assert_eq!(prefixed.path_url("/api/v1/sessions/s/segments/0").as_str(), expected);
        assert_eq!(prefixed.path_url("/bastion/api/v1/sessions/s/segments/0").as_str(), expected);
        assert_eq!(prefixed.path_url("/bastionx/api").as_str(), "https://entry.example/bastion/bastionx/api");
    }
}
