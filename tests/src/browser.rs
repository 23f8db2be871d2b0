//! A real browser for tests: headless Chromium driven through chromedriver
//! over the W3C WebDriver protocol. The protocol is a handful of JSON
//! requests (a session, a URL, a script, a click, a screenshot), so this
//! speaks it with `ureq` rather than pulling in a WebDriver crate and its
//! HTTP stack for the five calls the dashboard test makes.
//!
//! Debian's `chromium` and `chromium-driver` packages provide the two
//! programs; [`Browser::start`] says so when either is missing.

use anyhow::{bail, Context};
use base64::Engine as _;
use serde_json::{json, Value};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The window the page is shown in: the size the issue asks to be readable at.
pub const WINDOW: (u32, u32) = (1280, 800);

/// A chromedriver process and one headless Chromium session.
pub struct Browser {
    driver: Child,
    session: String,
    agent: ureq::Agent,
    base: String,
}

/// The first of `names` found on `PATH` or as an absolute path.
fn find(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    names.iter().find_map(|n| {
        let n = Path::new(n);
        if n.is_absolute() {
            return n.is_file().then(|| n.to_path_buf());
        }
        std::env::split_paths(&path).map(|d| d.join(n)).find(|p| p.is_file())
    })
}

impl Browser {
    /// Starts chromedriver on a free loopback port and opens a headless
    /// Chromium session in a 1280×800 window. `--no-sandbox`: CI runs as
    /// root, where Chromium's sandbox refuses to start.
    pub fn start() -> anyhow::Result<Browser> {
        let driver = find(&["chromedriver", "/usr/lib/chromium/chromedriver"])
            .context("chromedriver not found: install the Debian package `chromium-driver`")?;
        let chromium = find(&["chromium", "/usr/lib/chromium/chromium", "chromium-browser"])
            .context("chromium not found: install the Debian package `chromium`")?;
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let child = Command::new(&driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", driver.display()))?;
        let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(60)).build();
        let mut browser =
            Browser { driver: child, session: String::new(), agent, base: format!("http://127.0.0.1:{port}") };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let status = browser.agent.get(&format!("{}/status", browser.base)).call().ok();
            match status.and_then(|r| r.into_json::<Value>().ok()) {
                Some(v) if v["value"]["ready"] == true => break,
                _ if Instant::now() > deadline => bail!("chromedriver did not answer on port {port} within 20 s"),
                // A poll step of a wait with a deadline.
                _ => std::thread::sleep(Duration::from_millis(50)),
            }
        }
        let (w, h) = WINDOW;
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         format!("--window-size={w},{h}"), "--hide-scrollbars", "--force-device-scale-factor=1"],
            },
        }}});
        let session = browser.request("POST", "/session", Some(caps)).context("creating a Chromium session")?;
        browser.session = session["sessionId"].as_str().context("no session id")?.to_string();
        Ok(browser)
    }

    /// A WebDriver command: its `value`, or the driver's error.
    fn request(&self, method: &str, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.base);
        let answer = match body {
            Some(b) => self.agent.request(method, &url).send_json(b),
            None => self.agent.request(method, &url).call(),
        };
        let value: Value = match answer {
            Ok(r) => r.into_json()?,
            Err(ureq::Error::Status(code, r)) => {
                let v: Value = r.into_json().unwrap_or_default();
                bail!("WebDriver {method} {path}: {code}: {}", v["value"]["message"]);
            }
            Err(e) => return Err(e.into()),
        };
        Ok(value["value"].clone())
    }

    fn session(&self, method: &str, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        self.request(method, &format!("/session/{}{path}", self.session), body)
    }

    /// Opens `url`.
    pub fn goto(&self, url: &str) -> anyhow::Result<()> {
        self.session("POST", "/url", Some(json!({ "url": url }))).map(|_| ())
    }

    /// Runs `script` (a function body: `return ...`) in the page; what it returned.
    pub fn eval(&self, script: &str) -> anyhow::Result<Value> {
        self.session("POST", "/execute/sync", Some(json!({ "script": script, "args": [] })))
    }

    /// Runs `script` until it returns something other than `null` or
    /// `false`, and returns that; fails after `timeout`, saying `what`
    /// and what the script last returned.
    pub fn wait(&self, what: &str, timeout: Duration, script: &str) -> anyhow::Result<Value> {
        let start = Instant::now();
        loop {
            let v = self.eval(script)?;
            if !v.is_null() && v != Value::Bool(false) {
                return Ok(v);
            }
            if start.elapsed() > timeout {
                bail!("timed out after {timeout:?} waiting for {what} in the page");
            }
            // A poll step of a wait with a deadline.
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Clicks the element `css` selects, as a user would (the browser's
    /// own pointer events). Retried until `timeout` while it is missing or
    /// was replaced (the page redraws its tables every second).
    pub fn click(&self, css: &str, timeout: Duration) -> anyhow::Result<()> {
        let start = Instant::now();
        loop {
            let found = self.session("POST", "/element", Some(json!({"using": "css selector", "value": css})));
            let clicked = found.and_then(|e| {
                let id = e.as_object().and_then(|o| o.values().next()).and_then(Value::as_str).context("element id")?;
                self.session("POST", &format!("/element/{id}/click"), Some(json!({}))).map(|_| ())
            });
            match clicked {
                Ok(()) => return Ok(()),
                Err(e) if start.elapsed() > timeout => return Err(e.context(format!("clicking {css}"))),
                // A poll step of a wait with a deadline.
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// Resizes the window to `width` × `height` CSS pixels.
    pub fn window(&self, width: u32, height: u32) -> anyhow::Result<()> {
        self.session("POST", "/window/rect", Some(json!({ "width": width, "height": height }))).map(|_| ())
    }

    /// Saves a PNG of the window to `path`.
    pub fn screenshot(&self, path: &Path) -> anyhow::Result<()> {
        let png = self.session("GET", "/screenshot", None)?;
        let bytes = base64::engine::general_purpose::STANDARD.decode(png.as_str().context("base64 PNG")?)?;
        std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self.request("DELETE", &format!("/session/{}", self.session), None);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Where a test binary's screenshots go: `<target dir>/dashboard-shots`
/// (the target directory of the running test binary), created.
pub fn shots_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let target = exe.ancestors().nth(3).expect("<target>/<profile>/deps/<test>").to_path_buf();
    let dir = target.join("dashboard-shots");
    std::fs::create_dir_all(&dir).expect("creating the screenshot directory");
    dir
}
