//! A headless Chromium driven over WebDriver (chromedriver + fantoccini), for
//! end-to-end tests of the pages people open from their email.
//!
//! The browser is optional on a developer machine: without the binaries
//! [`Browser::start`] prints one `SKIPPED` line and returns `None` (CI installs them,
//! see `.ci/run`). When they are installed but do not work it panics, so a broken
//! browser never passes as a skipped test.
//!
//! ```no_run
//! # async fn demo() {
//! use assent_tests::browser::Browser;
//! use fantoccini::Locator;
//! let Some(browser) = Browser::start_with_language("ru").await else { return };
//! browser.client.goto("http://127.0.0.1:8080/").await.unwrap();
//! let h1 = browser.client.find(Locator::Css("h1")).await.unwrap();
//! println!("{}", h1.text().await.unwrap());
//! browser.close().await;
//! # }
//! ```

use fantoccini::wd::Capabilities;
use fantoccini::{Client, ClientBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tempfile::TempDir;

/// Overrides the chromedriver binary; a path that does not exist counts as absent.
pub const CHROMEDRIVER_ENV: &str = "ASSENT_CHROMEDRIVER";
/// Overrides the Chromium binary; a path that does not exist counts as absent.
pub const CHROMIUM_ENV: &str = "ASSENT_CHROMIUM";

/// From spawning chromedriver to an open session (a cold Chromium start included).
const STARTUP: Duration = Duration::from_secs(30);
/// How long the browser may take to load a page before WebDriver answers an error.
const PAGE_LOAD: Duration = Duration::from_secs(15);

/// A running chromedriver with one Chromium session. Dropping it kills both.
pub struct Browser {
    /// The WebDriver session; use it like any fantoccini client.
    pub client: Client,
    /// Held for its `Drop`; declared after `client` so the session goes first.
    _driver: Driver,
    /// The profile (`--user-data-dir`) and chromedriver's logs.
    dir: TempDir,
}

/// Owns chromedriver from the moment it is spawned, so a panic anywhere later
/// (a session that will not open, say) still kills it and its Chromium.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        kill_group(&mut self.0);
    }
}

impl Browser {
    /// A browser that prefers English, or `None` (after one line on stderr) when
    /// Chromium or chromedriver is not installed.
    pub async fn start() -> Option<Self> {
        Self::start_with_language("en").await
    }

    /// A browser whose UI language and `Accept-Language` are `lang` (e.g. `"ru"`).
    ///
    /// # Panics
    /// When the binaries exist but the browser does not start.
    pub async fn start_with_language(lang: &str) -> Option<Self> {
        let (Some(driver), Some(chromium)) = (
            find_binary(CHROMEDRIVER_ENV, &["chromedriver"]),
            find_binary(CHROMIUM_ENV, &["chromium", "chromium-browser"]),
        ) else {
            // Straight to stderr, not `eprintln!`: the test harness captures that,
            // and a skip must be seen in a plain `cargo test` run.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: browser tests need chromium and chromedriver (Debian packages \
                 chromium, chromium-driver; .ci/run installs them)"
            );
            return None;
        };
        let dir = tempfile::tempdir().expect("browser temp dir");
        let (mut driver, port) = spawn_driver(&driver, dir.path());
        let client = connect(port, &chromium, lang, dir.path()).await;
        if let Ok(Some(status)) = driver.0.try_wait() {
            panic!("chromedriver exited ({status}):\n{}", read_logs(dir.path()));
        }
        Some(Browser {
            client,
            _driver: driver,
            dir,
        })
    }

    /// Ends the WebDriver session (Chromium quits), then stops chromedriver.
    pub async fn close(self) {
        match tokio::time::timeout(Duration::from_secs(10), self.client.clone().close()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("closing the browser session failed: {e}"),
            Err(_) => panic!("closing the browser session took over 10 s"),
        }
    }

    /// chromedriver's own log, for failure messages.
    pub fn driver_log(&self) -> String {
        read_logs(self.dir.path())
    }
}

/// The binary named by `env`, else the first of `names` in /usr/bin or on PATH.
fn find_binary(env: &str, names: &[&str]) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(env) {
        let path = PathBuf::from(path);
        return path.is_file().then_some(path);
    }
    let dirs: Vec<PathBuf> = std::iter::once(PathBuf::from("/usr/bin"))
        .chain(
            std::env::var_os("PATH")
                .iter()
                .flat_map(std::env::split_paths),
        )
        .collect();
    names
        .iter()
        .flat_map(|name| dirs.iter().map(move |dir| dir.join(name)))
        .find(|path| path.is_file())
}

/// Starts chromedriver on a port it picks itself (`--port=0`, so no race for a free
/// port) and returns it with the port it reports on stdout.
fn spawn_driver(driver: &Path, dir: &Path) -> (Driver, u16) {
    let stderr = File::create(dir.join("chromedriver.stderr")).expect("chromedriver stderr");
    let child = Command::new(driver)
        .arg("--port=0")
        .arg(format!(
            "--log-path={}",
            dir.join("chromedriver.log").display()
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        // Its own process group: Drop kills chromedriver and every Chromium process
        // it started in one call, even when the session was never closed.
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", driver.display()));
    let mut child = Driver(child);

    // "ChromeDriver was started successfully on port 43233."; the thread then keeps
    // draining stdout so chromedriver never blocks on a full pipe.
    let stdout = child.0.stdout.take().expect("chromedriver stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains("started successfully")
                && let Some(port) = line
                    .rsplit(' ')
                    .next()
                    .and_then(|p| p.trim_end_matches('.').parse::<u16>().ok())
            {
                let _ = tx.send(port);
            }
        }
    });
    match rx.recv_timeout(Duration::from_secs(10)) {
        Ok(port) => (child, port),
        Err(_) => panic!(
            "chromedriver at {} did not report its port:\n{}",
            driver.display(),
            read_logs(dir)
        ),
    }
}

/// Opens a WebDriver session on the local chromedriver.
async fn connect(port: u16, chromium: &Path, lang: &str, dir: &Path) -> Client {
    let profile = dir.join("profile");
    let caps = json!({
        "goog:chromeOptions": {
            "binary": chromium,
            "args": [
                "--headless=new",
                // Chromium will not run its sandbox as root, and CI runs as root.
                "--no-sandbox",
                "--disable-gpu",
                // Without these Chromium keeps opening connections to Google's
                // services, which a closed network refuses; tests need none of them.
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                // Small /dev/shm in containers.
                "--disable-dev-shm-usage",
                format!("--user-data-dir={}", profile.display()),
                format!("--lang={lang}"),
            ],
            // --lang is the UI language; this pref is what it sends as Accept-Language.
            "prefs": { "intl.accept_languages": lang },
        },
        "timeouts": { "pageLoad": PAGE_LOAD.as_millis() as u64, "script": 5_000, "implicit": 0 },
    });
    let caps: Capabilities = serde_json::from_value(caps).expect("capabilities");
    let mut builder = ClientBuilder::new(HttpConnector::new());
    builder.capabilities(caps);
    let url = format!("http://127.0.0.1:{port}");
    match tokio::time::timeout(STARTUP, builder.connect(&url)).await {
        Ok(Ok(client)) => client,
        Ok(Err(e)) => panic!(
            "no browser session with {}: {e}\n{}",
            chromium.display(),
            read_logs(dir)
        ),
        Err(_) => panic!("no browser session within {STARTUP:?}:\n{}", read_logs(dir)),
    }
}

/// The tail of chromedriver's stderr and log.
fn read_logs(dir: &Path) -> String {
    ["chromedriver.stderr", "chromedriver.log"]
        .iter()
        .map(|name| {
            let text = std::fs::read_to_string(dir.join(name)).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(40).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            format!("--- {name} (last lines)\n{}", tail.join("\n"))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Kills chromedriver's process group (chromedriver and the Chromium it started) and
/// reaps chromedriver.
fn kill_group(child: &mut Child) {
    if let Ok(pgid) = libc::pid_t::try_from(child.id()) {
        // SAFETY: kill(2) with a negative pid signals that process group and touches
        // no memory; the group is the one `process_group(0)` made for this child.
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
    }
    let _ = child.wait();
}
