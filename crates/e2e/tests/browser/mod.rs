//! Headless Chromium driven over the DevTools protocol (a websocket of JSON messages), for
//! tests of pages: load a page, wait for a condition in its DOM, take a screenshot, and
//! collect every console error, uncaught exception and browser-logged error on the way.
//!
//! Chromium is Debian's `chromium`: when it is missing, [`Browser::launch`] installs it with
//! apt-get (saying so); where that cannot be done it returns why, and the test is skipped.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};
use tungstenite::{Message, WebSocket};

/// A running headless Chromium with a fresh profile.
pub struct Browser {
    child: Child,
    port: u16,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The chromium binary, installing Debian's package when it is missing; `Err`: why there is
/// none (the caller skips).
pub fn chromium() -> Result<PathBuf, String> {
    let find = || {
        ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
            .iter()
            .map(PathBuf::from)
            .find(|path| path.exists())
    };
    if let Some(path) = find() {
        return Ok(path);
    }
    eprintln!(
        "chromium is missing: installing Debian's chromium \
         (apt-get install -y --no-install-recommends chromium)"
    );
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends", "chromium"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(Stdio::null())
            .status()
    };
    let installed = match install() {
        Ok(status) if status.success() => true,
        Ok(_) => {
            // The package lists may be missing or old.
            let updated = Command::new("apt-get")
                .args(["update", "-q"])
                .stdout(Stdio::null())
                .status();
            updated.is_ok_and(|s| s.success()) && install().is_ok_and(|s| s.success())
        }
        Err(error) => return Err(format!("no apt-get to install chromium with ({error})")),
    };
    match find() {
        Some(path) if installed => Ok(path),
        _ => Err("apt-get could not install chromium (not root, or no package source)".into()),
    }
}

impl Browser {
    /// Starts headless Chromium (`width` × `height` window); `Err`: why it cannot run.
    pub fn launch(width: u32, height: u32) -> Result<Browser, String> {
        let binary = chromium()?;
        let profile = tempfile::tempdir().map_err(|e| e.to_string())?;
        let child = Command::new(&binary)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                "--hide-scrollbars",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                &format!("--window-size={width},{height}"),
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let mut browser = Browser {
            child,
            port: 0,
            _profile: profile,
        };
        // Chromium writes the port it chose into the profile once it listens.
        let port_file = browser._profile.path().join("DevToolsActivePort");
        let deadline = Instant::now() + Duration::from_secs(60);
        while browser.port == 0 {
            if let Some(port) = std::fs::read_to_string(&port_file)
                .ok()
                .and_then(|text| text.lines().next()?.trim().parse().ok())
            {
                browser.port = port;
            } else if Instant::now() > deadline {
                return Err("chromium did not open its DevTools port within 60 s".into());
            } else if let Ok(Some(status)) = browser.child.try_wait() {
                return Err(format!("chromium exited at start: {status}"));
            } else {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        Ok(browser)
    }

    /// The first page (tab), connected.
    pub fn page(&self) -> Page {
        let list: Value = serde_json::from_str(&http_get(self.port, "/json/list")).unwrap();
        let url = list
            .as_array()
            .and_then(|targets| targets.iter().find(|t| t["type"] == "page"))
            .and_then(|t| t["webSocketDebuggerUrl"].as_str())
            .unwrap_or_else(|| panic!("no page target in {list}"))
            .to_string();
        let stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        let (socket, _) = tungstenite::client(url.as_str(), stream).unwrap();
        socket
            .get_ref()
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut page = Page {
            socket,
            next_id: 0,
            errors: Vec::new(),
        };
        for domain in ["Runtime.enable", "Log.enable", "Page.enable"] {
            page.call(domain, json!({}));
        }
        page
    }
}

/// `GET path` on the DevTools HTTP port: the body (its length as the header says; the
/// connection may stay open).
fn http_get(port: u16, path: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = Vec::new();
    let mut buffer = [0; 8192];
    loop {
        let text = String::from_utf8_lossy(&answer).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head.lines().find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse::<usize>().ok())?
            });
            if length.is_some_and(|n| body.len() >= n) {
                return body.to_string();
            }
        }
        match stream.read(&mut buffer) {
            Ok(0) => {
                return text
                    .split_once("\r\n\r\n")
                    .map(|(_, b)| b.to_string())
                    .unwrap_or_default()
            }
            Ok(n) => answer.extend_from_slice(&buffer[..n]),
            Err(error) => panic!("GET {path} from chromium: {error}"),
        }
    }
}

/// One tab.
pub struct Page {
    socket: WebSocket<TcpStream>,
    next_id: u64,
    /// Console errors, uncaught exceptions and errors the browser logged (failed loads,
    /// policy violations), in order.
    pub errors: Vec<String>,
}

impl Page {
    /// Sends a command and waits for its answer (events meanwhile are looked at).
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let message = json!({"id": id, "method": method, "params": params}).to_string();
        self.socket.send(Message::text(message)).unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            assert!(Instant::now() < deadline, "no answer to {method}");
            let Some(message) = self.receive() else {
                continue;
            };
            if message["id"] == id {
                assert!(message.get("error").is_none(), "{method} failed: {message}");
                return message["result"].clone();
            }
        }
    }

    /// Reads one message (`None` after 200 ms without one), noting errors among events.
    fn receive(&mut self) -> Option<Value> {
        let message = match self.socket.read() {
            Ok(Message::Text(text)) => serde_json::from_str::<Value>(text.as_str()).unwrap(),
            Ok(_) => return None,
            Err(tungstenite::Error::Io(e))
                if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
            {
                return None
            }
            Err(error) => panic!("the DevTools connection failed: {error}"),
        };
        let params = &message["params"];
        match message["method"].as_str() {
            Some("Runtime.consoleAPICalled")
                if matches!(params["type"].as_str(), Some("error" | "assert")) =>
            {
                self.errors
                    .push(format!("console.error: {}", params["args"]));
            }
            Some("Runtime.exceptionThrown") => self.errors.push(format!(
                "uncaught: {}",
                params["exceptionDetails"]["exception"]["description"]
            )),
            Some("Log.entryAdded") if params["entry"]["level"] == "error" => {
                self.errors.push(format!(
                    "browser log: {} ({})",
                    params["entry"]["text"], params["entry"]["url"]
                ))
            }
            _ => {}
        }
        Some(message)
    }

    /// Loads `url`.
    pub fn navigate(&mut self, url: &str) {
        self.call("Page.navigate", json!({"url": url}));
    }

    /// The value of a JavaScript expression.
    pub fn evaluate(&mut self, expression: &str) -> Value {
        let result = self.call(
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true}),
        );
        result["result"]["value"].clone()
    }

    /// Evaluates `expression` until it is true (then true) or `timeout` passes (false),
    /// reading events meanwhile.
    pub fn wait_for(&mut self, expression: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.evaluate(expression) == Value::Bool(true) {
                return true;
            }
            let pause = Instant::now() + Duration::from_millis(250);
            while Instant::now() < pause {
                self.receive();
            }
        }
        false
    }

    /// A PNG of the whole page (the viewport stretched to its height), written to `path`.
    pub fn screenshot(&mut self, path: &Path, width: u32) {
        let height = self
            .evaluate("document.documentElement.scrollHeight")
            .as_u64()
            .unwrap_or(1000);
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": false}),
        );
        let shot = self.call("Page.captureScreenshot", json!({"format": "png"}));
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap())
            .unwrap();
        std::fs::write(path, png).unwrap();
    }
}
