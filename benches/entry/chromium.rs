//! Headless Chromium through chromedriver (WebDriver), for the sections that measure pages: a
//! fresh profile per browser, started as `tests/integration/common/browser.rs` starts it (which
//! a bench cannot import), plus the JS heap made measurable (`--enable-precise-memory-info`
//! for exact `performance.memory` figures, `--js-flags=--expose-gc` for `gc()`), sign-in through
//! the `/login` page as a person signs in, and DevTools commands (chromedriver's
//! `goog/cdp/execute`) to run a script in every new document before the page's own.
//!
//! Scripts given to [`Chromium::js`] are function bodies (`arguments` holds the arguments); a
//! returned promise is awaited by chromedriver, within [`SCRIPT_TIMEOUT`].

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use crate::gateway::free_port;

/// How long a script may run in the page (the old page's 100 MiB download and parse is one).
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(600);
/// How long a navigation may take until the page's load event.
const PAGE_LOAD_TIMEOUT: Duration = Duration::from_secs(120);

/// A headless Chromium with its own profile; end it with [`Chromium::close`].
pub struct Chromium {
    client: Client,
    driver: tokio::process::Child,
    /// Removed once the browser is closed.
    _profile: tempfile::TempDir,
}

impl Chromium {
    /// Starts chromedriver on a free port and a Chromium session on a new profile.
    pub async fn start() -> Result<Self> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let port = free_port()?;
        let mut driver = tokio::process::Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting chromedriver (apt-get install chromium chromium-driver)")?;
        let deadline = Instant::now() + Duration::from_secs(20);
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            if Instant::now() > deadline {
                let _ = driver.kill().await;
                bail!("chromedriver did not listen on port {port} within 20 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let profile = tempfile::Builder::new().prefix("entry-bench-chromium-").tempdir()?;
        // As the browser tests: off the network, root allowed; then the heap made measurable.
        let args = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1280,800",
            "--enable-precise-memory-info",
            "--js-flags=--expose-gc",
            &format!("--user-data-dir={}", profile.path().display()),
        ]
        .map(str::to_owned);
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("goog:chromeOptions".into(), json!({ "binary": "/usr/bin/chromium", "args": args }));
        let timeouts = json!({ "script": millis(SCRIPT_TIMEOUT), "pageLoad": millis(PAGE_LOAD_TIMEOUT) });
        capabilities.insert("timeouts".into(), timeouts);
        let connected = async {
            let client = ClientBuilder::rustls()?
                .capabilities(capabilities)
                .connect(&format!("http://127.0.0.1:{port}"))
                .await?;
            anyhow::Ok(client)
        };
        match connected.await {
            Ok(client) => Ok(Self { client, driver, _profile: profile }),
            Err(error) => {
                let _ = driver.kill().await;
                Err(error.context("starting a Chromium session"))
            }
        }
    }

    /// Ends the browser session (and Chromium with it), then chromedriver.
    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill().await;
    }

    /// Navigates to `url`; returns at the page's load event.
    pub async fn goto(&self, url: &str) -> Result<()> {
        self.client.goto(url).await.with_context(|| format!("opening {url}"))
    }

    /// The path of the current page.
    pub async fn path(&self) -> Result<String> {
        Ok(self.client.current_url().await?.path().to_owned())
    }

    /// Runs `script` (a function body) in the page; a returned promise is awaited.
    pub async fn js(&self, script: &str, args: Vec<Value>) -> Result<Value> {
        Ok(self.client.execute(script, args).await?)
    }

    /// Runs `source` in every document this tab opens from now on, before the page's scripts
    /// (DevTools `Page.addScriptToEvaluateOnNewDocument`).
    pub async fn on_new_document(&self, source: &str) -> Result<()> {
        let params = json!({ "source": source });
        let body = json!({ "cmd": "Page.addScriptToEvaluateOnNewDocument", "params": params }).to_string();
        self.client.issue_cmd(Cdp { body }).await.context("DevTools Page.addScriptToEvaluateOnNewDocument")?;
        Ok(())
    }

    /// Signs in through `{base}/login` with `token` as a person does, and waits to leave it.
    pub async fn sign_in(&self, base: &str, token: &str) -> Result<()> {
        self.goto(&format!("{base}/login")).await?;
        let input = self.client.wait().for_element(Locator::Css("#token")).await?;
        input.send_keys(token).await?;
        let submit = self.client.wait().for_element(Locator::Css("#login button[type=submit]")).await?;
        submit.click().await?;
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.path().await?.starts_with("/login") {
            if Instant::now() > deadline {
                let error = self.js("return document.getElementById('error')?.textContent ?? ''", vec![]).await?;
                bail!("still on the sign-in page after 20 s: {error}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    /// The page's JS heap (`performance.memory.usedJSHeapSize`) in bytes: as it is, and after a
    /// full garbage collection (what the page holds).
    pub async fn heap(&self) -> Result<(u64, u64)> {
        let script = "
            if (typeof gc !== 'function' || !performance.memory) return null;
            const before = performance.memory.usedJSHeapSize;
            gc();
            return [before, performance.memory.usedJSHeapSize];";
        let heap = self.js(script, vec![]).await?;
        match heap.as_array().map(|a| a.iter().filter_map(Value::as_u64).collect::<Vec<_>>()).as_deref() {
            Some(&[before, after]) => Ok((before, after)),
            _ => bail!("no performance.memory or gc() in the page (got {heap})"),
        }
    }
}

fn millis(duration: Duration) -> u64 {
    duration.as_millis() as u64
}

/// The error of parsing a URL (what `WebDriverCompatibleCommand` names).
type UrlError = <reqwest::Url as std::str::FromStr>::Err;

/// One DevTools command through chromedriver's `POST /session/{id}/goog/cdp/execute`.
#[derive(Debug)]
struct Cdp {
    /// `{"cmd": …, "params": …}`.
    body: String,
}

impl WebDriverCompatibleCommand for Cdp {
    fn endpoint(&self, base_url: &reqwest::Url, session_id: Option<&str>) -> Result<reqwest::Url, UrlError> {
        base_url.join(&format!("session/{}/goog/cdp/execute", session_id.unwrap_or_default()))
    }

    fn method_and_body(&self, _request_url: &reqwest::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(self.body.clone()))
    }
}
