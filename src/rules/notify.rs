//! Sends rule hits out: a JSON POST to `notify.webhook` and a plain-text e-mail to
//! `notify.email_to` through `notify.smtp` (lettre; STARTTLS whenever the server offers it).
//!
//! Guarantees: never blocks a session (a hit is queued with `try_send`; a full queue drops it,
//! counted and logged, and the hit stays in `rule_hits`); each channel retries with doubling
//! backoff (1 s, 2 s, 4 s … at most 30 s) for `notify.attempts` tries; every delivery is a task
//! of the gateway's tracker and stops on shutdown; no secret (SMTP password, webhook URL) is
//! logged.

use std::sync::Arc;
use std::time::Duration;

use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{NotifyConfig, SmtpConfig};

/// Hits waiting to be sent, at most.
const QUEUE: usize = 256;
/// The longest wait between two tries.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How long one webhook call or SMTP exchange may take.
const SEND_TIMEOUT: Duration = Duration::from_secs(15);

/// What a notification says about a hit.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Notification {
    pub hit_id: String,
    pub rule: String,
    pub action: String,
    pub outcome: String,
    pub user: String,
    pub container: String,
    pub command: String,
    pub session_id: String,
    /// RFC 3339.
    pub at: String,
    /// The replay page at the hit's second.
    pub replay_url: String,
    pub node: String,
}

/// The sending end, shared by every session of the gateway.
#[derive(Clone)]
pub struct Notifier {
    queue: Option<mpsc::Sender<Notification>>,
    public_url: String,
}

impl Notifier {
    /// Starts the sender task (none when nothing is configured).
    pub fn start(
        config: &NotifyConfig,
        listen: std::net::SocketAddr,
        tracker: &TaskTracker,
        shutdown: &CancellationToken,
    ) -> Self {
        let public_url =
            config.public_url.clone().unwrap_or_else(|| format!("http://{listen}")).trim_end_matches('/').to_owned();
        let webhook = config.webhook.clone();
        let mail = match (&config.smtp, config.email_to.is_empty()) {
            (Some(smtp), false) => Some((smtp.clone(), config.email_to.clone())),
            (None, false) => {
                tracing::warn!("notify.email_to is set without notify.smtp: rule hits are not mailed");
                None
            }
            _ => None,
        };
        if webhook.is_none() && mail.is_none() {
            return Self { queue: None, public_url };
        }
        let (queue, hits) = mpsc::channel(QUEUE);
        let senders = Arc::new(Senders {
            webhook,
            mail,
            attempts: config.attempts.unwrap_or(6).max(1),
            http: reqwest::Client::new(),
        });
        tracker.spawn(run(hits, senders, tracker.clone(), shutdown.clone()));
        Self { queue: Some(queue), public_url }
    }

    /// The replay page of `session_id` at `offset` seconds.
    pub fn replay_url(&self, session_id: &str, offset: f64) -> String {
        format!("{}/sessions/{session_id}?t={}", self.public_url, offset.floor().max(0.0))
    }

    /// Queues a notification; never waits.
    pub fn send(&self, notification: Notification) {
        let Some(queue) = &self.queue else { return };
        if let Err(error) = queue.try_send(notification) {
            super::counters::notification("queue", "dropped");
            tracing::warn!(%error, "the notification queue is full; this hit is only in the alerts");
        }
    }
}

struct Senders {
    webhook: Option<String>,
    mail: Option<(SmtpConfig, Vec<String>)>,
    attempts: u32,
    http: reqwest::Client,
}

async fn run(
    mut hits: mpsc::Receiver<Notification>,
    senders: Arc<Senders>,
    tracker: TaskTracker,
    shutdown: CancellationToken,
) {
    loop {
        let hit = tokio::select! {
            _ = shutdown.cancelled() => return,
            hit = hits.recv() => match hit { Some(hit) => Arc::new(hit), None => return },
        };
        if senders.webhook.is_some() {
            let (senders, hit, shutdown) = (Arc::clone(&senders), Arc::clone(&hit), shutdown.clone());
            tracker.spawn(async move { retried("webhook", &senders, &hit, &shutdown).await });
        }
        if senders.mail.is_some() {
            let (senders, hit, shutdown) = (Arc::clone(&senders), Arc::clone(&hit), shutdown.clone());
            tracker.spawn(async move { retried("email", &senders, &hit, &shutdown).await });
        }
    }
}

/// Tries one channel until it succeeds, the tries run out or the gateway stops.
async fn retried(channel: &'static str, senders: &Senders, hit: &Notification, shutdown: &CancellationToken) {
    let mut backoff = Duration::from_secs(1);
    for attempt in 1..=senders.attempts {
        let sent = match channel {
            "webhook" => post(senders, hit).await,
            _ => mail(senders, hit).await,
        };
        match sent {
            Ok(()) => {
                super::counters::notification(channel, "sent");
                return tracing::info!(hit.id = %hit.hit_id, channel, attempt, "rule hit notified");
            }
            Err(error) if attempt == senders.attempts => {
                super::counters::notification(channel, "failed");
                return tracing::warn!(hit.id = %hit.hit_id, channel, attempt, %error, "giving up notifying a rule hit");
            }
            Err(error) => {
                tracing::info!(hit.id = %hit.hit_id, channel, attempt, %error, "notifying a rule hit failed; retrying")
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

async fn post(senders: &Senders, hit: &Notification) -> Result<(), String> {
    let Some(url) = &senders.webhook else { return Ok(()) };
    let response =
        senders.http.post(url).timeout(SEND_TIMEOUT).json(hit).send().await.map_err(|e| e.without_url().to_string())?;
    match response.status() {
        status if status.is_success() => Ok(()),
        status => Err(format!("the webhook answered {status}")),
    }
}

async fn mail(senders: &Senders, hit: &Notification) -> Result<(), String> {
    let Some((smtp, to)) = &senders.mail else { return Ok(()) };
    let from: Mailbox = smtp.from.parse().map_err(|e| format!("notify.smtp.from: {e}"))?;
    let mut message = Message::builder().from(from).subject(format!(
        "Entry: rule \"{}\" ({}) matched in {} by {}",
        hit.rule, hit.outcome, hit.container, hit.user
    ));
    for address in to {
        message = message.to(address.parse().map_err(|e| format!("notify.email_to {address:?}: {e}"))?);
    }
    let body = format!(
        "A command matched the rule \"{rule}\" ({action}) and was {outcome}.\n\n\
         User:      {user}\nContainer: {container}\nCommand:   {command}\nTime:      {at}\n\
         Session:   {session}\nGateway:   {node}\n\nReplay at that second:\n{replay}\n",
        rule = hit.rule,
        action = hit.action,
        outcome = hit.outcome.replace('_', " "),
        user = hit.user,
        container = hit.container,
        command = hit.command,
        at = hit.at,
        session = hit.session_id,
        node = hit.node,
        replay = hit.replay_url,
    );
    let message = message.body(body).map_err(|e| format!("building the message: {e}"))?;
    let mut tls = TlsParameters::builder(smtp.host.clone());
    if let Some(ca) = &smtp.ca {
        let pem = tokio::fs::read(ca).await.map_err(|e| format!("notify.smtp.ca {}: {e}", ca.display()))?;
        let roots = Certificate::from_pem(&pem).map_err(|e| format!("notify.smtp.ca {}: {e}", ca.display()))?;
        tls = tls.add_root_certificate(roots);
    }
    let tls = tls.build().map_err(|e| format!("TLS for {}: {e}", smtp.host))?;
    let tls = if smtp.require_tls { Tls::Required(tls) } else { Tls::Opportunistic(tls) };
    let mut transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host)
        .port(smtp.port)
        .tls(tls)
        .timeout(Some(SEND_TIMEOUT));
    if let (Some(user), Some(password)) = (&smtp.username, &smtp.password) {
        transport = transport.credentials(Credentials::new(user.clone(), password.clone()));
    }
    transport.build().send(message).await.map(|_| ()).map_err(|e| e.to_string())
}
