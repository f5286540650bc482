//! LAIN-style console authorisation: a configured URL is asked whether a token may enter a
//! container.
//!
//! Protocol: `POST <url>` with JSON `{"token": …, "container": "<address>"}`. A 2xx answer
//! whose body is JSON `{"user": "<name>"}` or a plain user name allows; anything else — another
//! status, an empty or unparsable body, a connection error, a timeout — denies (fail-closed).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::WebhookConfig;

/// A client for the console webhook.
#[derive(Clone, Debug)]
pub struct Webhook {
    client: reqwest::Client,
    url: String,
}

/// Why the console did not allow the request.
#[derive(Debug, thiserror::Error)]
pub enum WebhookDenial {
    #[error("console refused with HTTP {0}")]
    Refused(u16),
    #[error("console answered without a user name")]
    NoUser,
    #[error("console unreachable: {0}")]
    Unreachable(String),
}

#[derive(Serialize)]
struct Question<'a> {
    token: &'a str,
    container: &'a str,
}

#[derive(Deserialize)]
struct Answer {
    user: String,
}

impl Webhook {
    /// A client with the configured timeout.
    pub fn new(config: &WebhookConfig) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(5)))
            .build()?;
        Ok(Self { client, url: config.url.clone() })
    }

    /// Asks the console; returns the user name it vouches for.
    pub async fn ask(&self, token: &str, container: &str) -> Result<String, WebhookDenial> {
        let response = self
            .client
            .post(&self.url)
            .json(&Question { token, container })
            .send()
            .await
            .map_err(|e| WebhookDenial::Unreachable(e.without_url().to_string()))?;
        let status = response.status();
        if !status.is_success() {
            return Err(WebhookDenial::Refused(status.as_u16()));
        }
        let body = response.text().await.map_err(|e| WebhookDenial::Unreachable(e.without_url().to_string()))?;
        let user = match serde_json::from_str::<Answer>(&body) {
            Ok(answer) => answer.user,
            Err(_) => body.trim().to_owned(),
        };
        let valid = !user.is_empty() && user.len() <= 128 && !user.chars().any(|c| c.is_control() || c == '{');
        valid.then_some(user).ok_or(WebhookDenial::NoUser)
    }
}
