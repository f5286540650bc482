//! LAIN-style console authorisation: a configured URL is asked whether a token may enter a
//! container.
//!
//! Protocol: `POST <url>` with JSON `{"token": …, "container": "<address>"}`. Only a 2xx
//! answer with `Content-Type: application/json` (parameters such as `charset` allowed) whose
//! body, at most [`MAX_BODY`] bytes, is a JSON object with a non-empty printable `user` string
//! of at most [`MAX_USER`] bytes allows. Everything else denies (fail-closed): another status,
//! a redirect (never followed), another content type, a body that is not such an object, a
//! connection error, a timeout.
//!
//! Guarantees: every denial is logged at `warn` with its reason and the URL without userinfo
//! or query (either may hold a secret); `Debug` of [`Webhook`] and of its configuration shows
//! the URL the same way; the token never appears in a log or an error.

use std::time::Duration;

use serde::Serialize;

use crate::config::WebhookConfig;

/// The largest answer read; a console's answer is one small object.
pub const MAX_BODY: usize = 64 * 1024;
/// The longest user name accepted, in bytes.
pub const MAX_USER: usize = 128;
/// The longest part of a console's content type repeated in a denial.
const MAX_SHOWN_TYPE: usize = 64;

/// A client for the console webhook (its `Debug` shows only the redacted URL).
#[derive(Clone)]
pub struct Webhook {
    client: reqwest::Client,
    url: String,
    /// The URL as logs show it.
    redacted: String,
}

/// Why the console did not allow the request. The text goes to the client.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WebhookDenial {
    #[error("console unreachable: {0}")]
    Unreachable(String),
    #[error("console refused with HTTP {0}")]
    Refused(u16),
    #[error("console redirected with HTTP {0}; redirects are not followed")]
    Redirected(u16),
    #[error("console answered with content type {0:?}, not application/json")]
    NotJson(String),
    #[error("console answer is larger than {MAX_BODY} bytes")]
    TooLarge,
    #[error("console answer is not valid JSON")]
    Unparsable,
    #[error("console answer is not a JSON object")]
    NotAnObject,
    #[error("console answer has no user")]
    UserMissing,
    #[error("console answer's user is not a string")]
    UserNotString,
    #[error("console answer's user is empty")]
    UserEmpty,
    #[error("console answer's user is not printable text of at most {MAX_USER} bytes")]
    UserInvalid,
}

#[derive(Serialize)]
struct Question<'a> {
    token: &'a str,
    container: &'a str,
}

impl Webhook {
    /// A client with the configured timeout that never follows a redirect.
    pub fn new(config: &WebhookConfig) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(5)))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self { client, redacted: redact(&config.url), url: config.url.clone() })
    }

    /// Asks the console; returns the user name it vouches for. Denials are logged here.
    pub async fn ask(&self, token: &str, container: &str) -> Result<String, WebhookDenial> {
        let answer = self.ask_once(token, container).await;
        if let Err(denial) = &answer {
            tracing::warn!(webhook.url = %self.redacted, container, reason = %denial, "console webhook denied");
        }
        answer
    }

    async fn ask_once(&self, token: &str, container: &str) -> Result<String, WebhookDenial> {
        let mut response = self
            .client
            .post(&self.url)
            .json(&Question { token, container })
            .send()
            .await
            .map_err(|e| WebhookDenial::Unreachable(e.without_url().to_string()))?;
        let status = response.status();
        if status.is_redirection() {
            return Err(WebhookDenial::Redirected(status.as_u16()));
        }
        if !status.is_success() {
            return Err(WebhookDenial::Refused(status.as_u16()));
        }
        let content_type = response.headers().get(reqwest::header::CONTENT_TYPE).map(|v| v.as_bytes().to_vec());
        check_content_type(content_type.as_deref())?;
        let mut body = Vec::new();
        while let Some(chunk) =
            response.chunk().await.map_err(|e| WebhookDenial::Unreachable(e.without_url().to_string()))?
        {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(WebhookDenial::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        user_of(&body)
    }
}

/// Accepts `application/json` with any parameters, in any letter case.
fn check_content_type(value: Option<&[u8]>) -> Result<(), WebhookDenial> {
    let text = String::from_utf8_lossy(value.unwrap_or_default()).into_owned();
    let essence = text.split(';').next().unwrap_or_default().trim();
    if essence.eq_ignore_ascii_case("application/json") {
        return Ok(());
    }
    let shown: String = essence.chars().filter(|c| !c.is_control()).take(MAX_SHOWN_TYPE).collect();
    Err(WebhookDenial::NotJson(if value.is_none() { "none".into() } else { shown }))
}

/// The `user` of a JSON object body, checked.
fn user_of(body: &[u8]) -> Result<String, WebhookDenial> {
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|_| WebhookDenial::Unparsable)?;
    let object = value.as_object().ok_or(WebhookDenial::NotAnObject)?;
    let user = object.get("user").ok_or(WebhookDenial::UserMissing)?;
    let user = user.as_str().ok_or(WebhookDenial::UserNotString)?;
    if user.is_empty() {
        return Err(WebhookDenial::UserEmpty);
    }
    let printable = user.len() <= MAX_USER && !user.chars().any(char::is_control) && user.trim() == user;
    printable.then(|| user.to_owned()).ok_or(WebhookDenial::UserInvalid)
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook").field("url", &self.redacted).finish_non_exhaustive()
    }
}

impl std::fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookConfig").field("url", &redact(&self.url)).field("timeout", &self.timeout).finish()
    }
}

/// `scheme://host:port/path`: the URL without userinfo, query or fragment.
fn redact(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(parsed) => {
            let host = parsed.host_str().unwrap_or_default();
            let port = parsed.port_or_known_default().map(|p| format!(":{p}")).unwrap_or_default();
            format!("{}://{host}{port}{}", parsed.scheme(), parsed.path())
        }
        Err(_) => "<unparsable URL>".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_object_with_a_printable_user_string_allows() {
        assert_eq!(user_of(br#"{"user":"carol","extra":1}"#), Ok("carol".into()));
        for (body, denial) in [
            (&b"null"[..], WebhookDenial::NotAnObject),
            (b"\"name\"", WebhookDenial::NotAnObject),
            (b"[]", WebhookDenial::NotAnObject),
            (b"false", WebhookDenial::NotAnObject),
            (b"denied", WebhookDenial::Unparsable),
            (b"<html><body>Sign in</body></html>", WebhookDenial::Unparsable),
            (b"", WebhookDenial::Unparsable),
            (b"{}", WebhookDenial::UserMissing),
            (br#"{"user":null}"#, WebhookDenial::UserNotString),
            (br#"{"user":["a"]}"#, WebhookDenial::UserNotString),
            (br#"{"user":""}"#, WebhookDenial::UserEmpty),
            (br#"{"user":"a\nb"}"#, WebhookDenial::UserInvalid),
            (br#"{"user":" a"}"#, WebhookDenial::UserInvalid),
        ] {
            assert_eq!(user_of(body), Err(denial), "{}", String::from_utf8_lossy(body));
        }
        let long = format!(r#"{{"user":"{}"}}"#, "a".repeat(MAX_USER + 1));
        assert_eq!(user_of(long.as_bytes()), Err(WebhookDenial::UserInvalid));
    }

    #[test]
    fn only_application_json_is_read() {
        for ok in ["application/json", "application/json; charset=utf-8", "Application/JSON;charset=UTF-8"] {
            assert_eq!(check_content_type(Some(ok.as_bytes())), Ok(()), "{ok}");
        }
        for bad in ["text/plain", "text/html; charset=utf-8", "application/jsonp", "application/problem+json", ""] {
            assert!(matches!(check_content_type(Some(bad.as_bytes())), Err(WebhookDenial::NotJson(_))), "{bad}");
        }
        assert_eq!(check_content_type(None), Err(WebhookDenial::NotJson("none".into())));
    }

    #[test]
    fn logged_urls_drop_userinfo_query_and_fragment() {
        assert_eq!(
            redact("https://entry:s3cret@console.example/entry/check?key=abc#frag"),
            "https://console.example:443/entry/check"
        );
        assert_eq!(redact("http://127.0.0.1:9000/check"), "http://127.0.0.1:9000/check");
        assert_eq!(redact("not a url"), "<unparsable URL>");
        let config =
            WebhookConfig { url: "https://u:pw@console.example/c?k=v".into(), timeout: Duration::from_secs(3) };
        assert_eq!(format!("{config:?}"), r#"WebhookConfig { url: "https://console.example:443/c", timeout: 3s }"#);
    }
}
