//! The web page in a real browser: headless Chromium driven over the
//! WebDriver protocol (chromedriver) enrols two people from the page,
//! searches a photo of both, and checks the boxes, decisions and match
//! thumbnails it shows; the screenshot is written for a person to look at.
//!
//! Needs Debian's `chromium` and `chromium-driver`, so it is ignored in the
//! plain test run: `scripts/serve/browser_test.sh` installs them and runs it.
//! The screenshot goes to `$VISAGE_PAGE_SCREENSHOT` (default
//! `target/visage-serve-page.png`).

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use common::*;
use serde_json::{json, Value};

struct Driver {
    process: Child,
    url: String,
    agent: ureq::Agent,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

impl Driver {
    fn start() -> Self {
        let binary = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let process = Command::new(&binary)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{binary}: {e} (install Debian's chromium and chromium-driver: scripts/serve/browser_test.sh)"));
        let driver = Self { process, url: format!("http://127.0.0.1:{port}"), agent: agent() };
        let deadline = Instant::now() + Duration::from_secs(20);
        while send(driver.agent.get(&format!("{}/status", driver.url)), None).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        driver
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let request = self.agent.request(method, &format!("{}{path}", self.url)).set("Content-Type", "application/json");
        let body = body.map(|b| b.to_string());
        let reply = send(request, body.as_deref().map(str::as_bytes)).unwrap();
        let value = reply.json();
        assert!(reply.status == 200, "WebDriver {method} {path}: {value}");
        value["value"].clone()
    }
}

struct Session<'a> {
    driver: &'a Driver,
    id: String,
}

impl Session<'_> {
    fn path(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.id)
    }

    fn element(&self, css: &str) -> String {
        let found = self.driver.call("POST", &self.path("/element"), Some(json!({ "using": "css selector", "value": css })));
        found.as_object().unwrap().values().next().unwrap().as_str().unwrap().to_string()
    }

    fn type_into(&self, css: &str, text: &str) {
        let element = self.element(css);
        self.driver.call("POST", &self.path(&format!("/element/{element}/value")), Some(json!({ "text": text })));
    }

    fn click(&self, css: &str) {
        let element = self.element(css);
        self.driver.call("POST", &self.path(&format!("/element/{element}/click")), Some(json!({})));
    }

    fn script(&self, source: &str) -> Value {
        self.driver.call("POST", &self.path("/execute/sync"), Some(json!({ "script": source, "args": [] })))
    }

    /// Waits until the script returns something truthy; returns it.
    fn wait_for(&self, what: &str, source: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let value = self.script(source);
            if !(value.is_null() || value == json!(false) || value == json!("") || value == json!(0)) {
                return value;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}; page text: {}", self.script("return document.body.innerText"));
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

#[test]
#[ignore = "needs chromium + chromium-driver: scripts/serve/browser_test.sh"]
fn page_enrols_and_finds_two_people() {
    let server = TestServer::start("browser", |_| {});
    let driver = Driver::start();
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let capabilities = json!({ "capabilities": { "alwaysMatch": {
        "browserName": "chrome",
        "goog:chromeOptions": { "binary": chromium, "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1100"] }
    } } });
    let created = driver.call("POST", "/session", Some(capabilities));
    let session = Session { driver: &driver, id: created["sessionId"].as_str().unwrap().to_string() };
    session.driver.call("POST", &session.path("/url"), Some(json!({ "url": format!("{}/", server.url) })));

    // Without a key the page says what is missing.
    session.wait_for("the missing-key message", "return document.getElementById('gallery').innerText.includes('API key')");
    session.type_into("#key", &server.keys.write);
    session.click("#save-key");
    session.wait_for("the empty gallery", "return document.getElementById('gallery').innerText.includes('Nobody enrolled yet')");

    let photos = repo().join("examples/photos");
    for (name, file) in [("Barack Obama", "obama_1.jpg"), ("Joe Biden", "biden_1.jpg")] {
        session.script("document.getElementById('enrol-name').value = ''; document.getElementById('message').textContent = '';");
        session.type_into("#enrol-name", name);
        session.type_into("#enrol-file", &photos.join(file).canonicalize().unwrap().display().to_string());
        session.click("#enrol-button");
        let message = session.wait_for(
            "the enrolment",
            "const m = document.getElementById('message'); return m.innerText.startsWith('Enrolled') || m.querySelector('.error') ? m.innerText : ''",
        );
        assert!(message.as_str().unwrap().starts_with(&format!("Enrolled {name}")), "{message}");
    }
    session.wait_for("two people in the gallery", "return document.querySelectorAll('#gallery .person img').length === 2");

    session.type_into("#search-file", &photos.join("obama_and_biden.jpg").canonicalize().unwrap().display().to_string());
    session.wait_for("the search results", "return document.querySelectorAll('#results .face').length >= 2");
    // Match thumbnails are loaded (fetched with the key, shown as blob: images).
    session.wait_for(
        "match thumbnails",
        "return [...document.querySelectorAll('#results .match img')].filter(i => i.complete && i.naturalWidth > 0).length >= 4",
    );
    let decisions = session.script("return [...document.querySelectorAll('#results .decision')].map(e => e.textContent)");
    let decisions: Vec<&str> = decisions.as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert!(decisions.contains(&"Barack Obama") && decisions.contains(&"Joe Biden"), "{decisions:?}");
    // The boxes are drawn: the canvas holds the photo at its size (≤ 900 px wide) with green pixels of the known boxes.
    let canvas = session.script(
        "const c = document.getElementById('canvas'); const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; \
         let green = 0; for (let i = 0; i < d.length; i += 4) if (d[i] === 26 && d[i + 1] === 141 && d[i + 2] === 76) green++; \
         return [c.width, c.height, green];",
    );
    let (width, green) = (canvas[0].as_u64().unwrap(), canvas[2].as_u64().unwrap());
    assert!(width > 300 && green > 500, "canvas {canvas}");

    let screenshot = session.driver.call("GET", &session.path("/screenshot"), None);
    let png = base64::engine::general_purpose::STANDARD.decode(screenshot.as_str().unwrap()).unwrap();
    let picture = image::load_from_memory(&png).unwrap();
    assert!(picture.width() >= 1000, "{}×{}", picture.width(), picture.height());
    let path = std::env::var_os("VISAGE_PAGE_SCREENSHOT").map(PathBuf::from).unwrap_or_else(|| repo().join("target/visage-serve-page.png"));
    std::fs::write(&path, &png).unwrap();
    eprintln!("screenshot: {}", path.display());
    session.driver.call("DELETE", &session.path(""), None);
    server.stop();
}
