//! Headless Chromium (through chromedriver) and Firefox (through geckodriver), driven over
//! WebDriver, for end-to-end tests of the pages against a real gateway. Needs Debian's
//! `chromium`, `chromium-driver` and `firefox-esr`, and geckodriver from crates.io, which
//! `.ci/run` installs.

use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

/// Declares a test per browser for each scenario `async fn scenario(engine: Engine)` of the
/// test file: `chromium::scenario` and `firefox::scenario`.
macro_rules! in_both_browsers {
    ($($scenario:ident),* $(,)?) => {
        mod chromium {
            $(#[tokio::test(flavor = "multi_thread")]
            async fn $scenario() {
                super::$scenario($crate::common::browser::Engine::Chromium).await
            })*
        }
        mod firefox {
            $(#[tokio::test(flavor = "multi_thread")]
            async fn $scenario() {
                super::$scenario($crate::common::browser::Engine::Firefox).await
            })*
        }
    };
}
pub(crate) use in_both_browsers;

/// Which browser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Chromium,
    Firefox,
}

/// A browser with its own profile; call [`Browser::close`] at the end of the test.
pub struct Browser {
    pub client: Client,
    driver: tokio::process::Child,
    profile: tempfile::TempDir,
}

impl Browser {
    pub async fn start(engine: Engine) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let (driver, install) = match engine {
            Engine::Chromium => ("chromedriver", "apt-get install chromium chromium-driver"),
            Engine::Firefox => ("geckodriver", "apt-get install firefox-esr; cargo install geckodriver"),
        };
        let driver = tokio::process::Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("{driver}: {e} ({install})"));
        let deadline = Instant::now() + Duration::from_secs(20);
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            assert!(Instant::now() < deadline, "the WebDriver server did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let profile = tempfile::tempdir().unwrap();
        let profile_path = profile.path().display().to_string();
        let mut capabilities = serde_json::Map::new();
        match engine {
            Engine::Chromium => {
                // The flags keep Chromium off the network (this machine has none) and let it
                // run as root.
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
                    &format!("--user-data-dir={profile_path}"),
                ]
                .map(str::to_owned);
                let options = json!({ "binary": "/usr/bin/chromium", "args": args });
                capabilities.insert("goog:chromeOptions".into(), options);
            }
            Engine::Firefox => {
                let args = ["-headless", "--width=1280", "--height=800", "-profile", &profile_path].map(str::to_owned);
                let options = json!({ "binary": "/usr/bin/firefox-esr", "args": args });
                capabilities.insert("moz:firefoxOptions".into(), options);
            }
        }
        let client = ClientBuilder::rustls()
            .unwrap()
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .unwrap_or_else(|e| panic!("start a {engine:?} session: {e}"));
        Self { client, driver, profile }
    }

    /// Ends the browser session (and the browser with it).
    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill().await;
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap();
    }

    /// The path and query of the current page.
    pub async fn path(&self) -> String {
        let url = self.client.current_url().await.unwrap();
        match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        }
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the page.
    pub async fn js(&self, script: &str, args: Vec<Value>) -> Value {
        self.client.execute(script, args).await.unwrap()
    }

    /// The text of the first element matching `selector` ("" when there is none).
    pub async fn text(&self, selector: &str) -> String {
        let script = "const e = document.querySelector(arguments[0]); return e ? e.textContent : '';";
        self.js(script, vec![json!(selector)]).await.as_str().unwrap_or_default().to_owned()
    }

    /// Waits until `condition` holds of the page, polling; panics with `what` after `within`.
    pub async fn wait_until<F, Fut>(&self, what: &str, within: Duration, condition: F)
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = Instant::now() + within;
        loop {
            if condition().await {
                return;
            }
            if Instant::now() > deadline {
                let path = self.path().await;
                let body = self.text("body").await;
                panic!("waited {within:?} for {what} on {path}; the page says:\n{body}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the element `selector` contains `needle`; returns its text.
    pub async fn wait_for_text(&self, selector: &str, needle: &str, within: Duration) -> String {
        self.wait_until(&format!("{needle:?} in {selector}"), within, || async {
            self.text(selector).await.contains(needle)
        })
        .await;
        self.text(selector).await
    }

    /// Everything in the page's xterm.js terminal (`window.entryTerminal`), scrollback included,
    /// one line per terminal line; lines the terminal wrapped are joined again.
    pub async fn terminal_text(&self) -> String {
        let script = "
            const buffer = window.entryTerminal.buffer.active;
            let text = '';
            for (let i = 0; i < buffer.length; i++) {
                const line = buffer.getLine(i);
                const next = buffer.getLine(i + 1);
                if (i > 0 && !line.isWrapped) text += '\\n';
                text += line.translateToString(!(next && next.isWrapped));
            }
            return text;";
        self.js(script, vec![]).await.as_str().unwrap_or_default().to_owned()
    }

    /// Waits (at most `within`) until the page's terminal shows `needle`; returns all it shows.
    pub async fn wait_for_terminal(&self, needle: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let text = self.terminal_text().await;
            if text.contains(needle) {
                return text;
            }
            assert!(Instant::now() < deadline, "waited {within:?} for {needle:?} in the terminal:\n{text}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits for an element and clicks it.
    pub async fn click(&self, selector: &str) {
        let element = self.client.wait().for_element(Locator::Css(selector)).await.unwrap();
        element.click().await.unwrap();
    }

    /// Signs in through the sign-in page with `token`, then waits to leave the page.
    pub async fn sign_in(&self, base: &str, token: &str) {
        self.goto(&format!("{base}/login")).await;
        let input = self.client.wait().for_element(Locator::Css("#token")).await.unwrap();
        input.send_keys(token).await.unwrap();
        self.click("#login button[type=submit]").await;
        self.wait_until("leaving the sign-in page", Duration::from_secs(10), || async {
            !self.path().await.starts_with("/login")
        })
        .await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // A test that panicked never called close(): end its browser by its profile path.
        let _ = std::process::Command::new("pkill").args(["-f", &self.profile.path().display().to_string()]).status();
    }
}
