//! A real headless Chromium driven through chromedriver's W3C WebDriver HTTP protocol, for
//! the web UI's tests: open a page, run a script in it, find, click and type into elements,
//! take screenshots, at a desktop or a phone's window size.

use crate::support::{peer_call, temp_dir, wait_for, Proc};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// The key under which WebDriver returns an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

fn find_exe(names: &[&str]) -> PathBuf {
    names
        .iter()
        .map(Path::new)
        .find(|p| p.exists())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| {
            panic!(
                "none of {names:?} exists: the UI test needs Debian's chromium and \
                 chromium-driver (ops/test.sh installs them: apt-get install chromium chromium-driver)"
            )
        })
}

/// Narrower than this, a window is a phone's, emulated.
const PHONE_MAX_WIDTH: u32 = 600;

/// A chromedriver on a free port and one headless Chromium session through it.
pub struct Browser {
    pub base: String,
    session: String,
    _driver: Proc,
    /// The selector each element handed out by [`Browser::element`] was found by, so that a
    /// click on one the page has re-rendered meanwhile finds it again.
    found: std::sync::Mutex<std::collections::HashMap<String, String>>,
}

impl Browser {
    /// A desktop-sized window (1600×1000).
    pub fn start(name: &str) -> Self {
        Self::start_sized(name, 1600, 1000)
    }

    /// A window of `width`×`height` CSS pixels (390×844: a phone).
    pub fn start_sized(name: &str, width: u32, height: u32) -> Self {
        Self::launch(name, width, height, false)
    }

    /// A phone-sized window (390×844) that accepts a certificate of a private CA (an HTTPS
    /// test's pilot CA; the test checks the certificate itself with a verifying client).
    pub fn start_accepting_any_certificate(name: &str) -> Self {
        Self::launch(name, 390, 844, true)
    }

    fn launch(name: &str, width: u32, height: u32, insecure_certs: bool) -> Self {
        let chromium = find_exe(&["/usr/bin/chromium", "/usr/bin/chromium-browser"]);
        let chromedriver = find_exe(&["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]);
        let dir = temp_dir(name);
        let port = crate::support::free_port();
        let log = dir.join("chromedriver.log");
        let child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start chromedriver");
        let driver = Proc { child, log };
        let base = format!("http://127.0.0.1:{port}");
        wait_for("chromedriver to be ready", Duration::from_secs(30), || {
            let addr = format!("127.0.0.1:{port}").parse().unwrap();
            std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()?;
            let (status, v) = peer_call("GET", &format!("{base}/status"), None);
            (status == 200 && v["value"]["ready"] == true).then_some(())
        });
        let profile = dir.join("profile");
        let mut options = json!({
            "binary": chromium.to_str().unwrap(),
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync",
                format!("--user-data-dir={}", profile.display()),
                format!("--window-size={},{height}", width.max(PHONE_MAX_WIDTH)),
            ],
        });
        // A headless window is never narrower than about 500 px: a phone's viewport is
        // Chromium's device emulation (its width, a touch screen), as in its developer tools.
        if width < PHONE_MAX_WIDTH {
            options["mobileEmulation"] = json!({
                "deviceMetrics": {
                    "width": width, "height": height, "pixelRatio": 2.0, "mobile": true, "touch": true,
                },
            });
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "pageLoadStrategy": "normal",
            "acceptInsecureCerts": insecure_certs,
            "goog:chromeOptions": options,
        }}});
        let (status, v) = peer_call("POST", &format!("{base}/session"), Some(&caps));
        assert_eq!(
            status,
            200,
            "chromedriver could not start Chromium: {v}\n{}",
            driver.log_tail()
        );
        let session = v["value"]["sessionId"].as_str().unwrap().to_owned();
        Self {
            base,
            session,
            _driver: driver,
            found: Default::default(),
        }
    }

    pub fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let (status, v) = peer_call(method, &url, body.as_ref());
        assert_eq!(status, 200, "WebDriver {method} {path}: {v}");
        v["value"].clone()
    }

    pub fn goto(&self, url: &str) {
        self.call("POST", "/url", Some(json!({ "url": url })));
    }

    /// Runs `script` (a function body; `arguments` are `args`) in the page.
    pub fn js(&self, script: &str, args: Value) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            Some(json!({ "script": script, "args": args })),
        )
    }

    /// Sets a form field's value as a user would (its `input` and `change` events fire).
    pub fn set_value(&self, css: &str, value: &str) {
        self.js(
            "const e = document.querySelector(arguments[0]); e.value = arguments[1]; \
             e.dispatchEvent(new Event('input', { bubbles: true })); \
             e.dispatchEvent(new Event('change', { bubbles: true }));",
            json!([css, value]),
        );
    }

    /// The first element matching `css`, once there is one (within `deadline`).
    pub fn element(&self, css: &str, deadline: Duration) -> String {
        let element = wait_for(&format!("an element {css}"), deadline, || {
            let url = format!("{}/session/{}/elements", self.base, self.session);
            let body = json!({ "using": "css selector", "value": css });
            let (_, v) = peer_call("POST", &url, Some(&body));
            v["value"]
                .as_array()
                .and_then(|a| a.first())
                .and_then(|e| e[ELEMENT].as_str())
                .map(str::to_owned)
        });
        let mut found = self.found.lock().unwrap_or_else(|e| e.into_inner());
        found.insert(element.clone(), css.to_owned());
        element
    }

    /// No English word and no missing translation key on screen (a zh-CN page).
    pub fn assert_chinese_only(&self, at: &str) {
        assert_eq!(
            self.latin_words(),
            Vec::<String>::new(),
            "English on screen at {at}"
        );
        assert_eq!(
            self.missing_keys(),
            Vec::<String>::new(),
            "missing keys at {at}"
        );
    }

    /// Clicks an element. One the page re-rendered between finding and clicking it (a live
    /// update redrew its list: WebDriver's "stale element reference") is found again by its
    /// selector and clicked, for up to 10 s.
    pub fn click(&self, element: &str) {
        let url = |e: &str| format!("{}/session/{}/element/{e}/click", self.base, self.session);
        let (status, v) = peer_call("POST", &url(element), Some(&json!({})));
        if status == 200 {
            return;
        }
        let stale = v["value"]["error"] == "stale element reference";
        let css = (self.found.lock().unwrap_or_else(|e| e.into_inner()))
            .get(element)
            .cloned();
        let (true, Some(css)) = (stale, css) else {
            panic!("WebDriver POST /element/{element}/click: {status} {v}");
        };
        wait_for(
            &format!("a click on {css} (re-rendered)"),
            Duration::from_secs(10),
            || {
                let again = self.element(&css, Duration::from_secs(10));
                let (status, v) = peer_call("POST", &url(&again), Some(&json!({})));
                match status {
                    200 => Some(()),
                    _ if v["value"]["error"] == "stale element reference" => None,
                    _ => panic!("WebDriver POST /element/{again}/click: {status} {v}"),
                }
            },
        );
    }

    /// Replaces the text of an input.
    pub fn type_into(&self, element: &str, text: &str) {
        self.call(
            "POST",
            &format!("/element/{element}/clear"),
            Some(json!({})),
        );
        self.call(
            "POST",
            &format!("/element/{element}/value"),
            Some(json!({ "text": text })),
        );
    }

    /// Sends keys to an element without clearing it first (a file input takes a file's path).
    pub fn send_keys(&self, element: &str, text: &str) {
        self.call(
            "POST",
            &format!("/element/{element}/value"),
            Some(json!({ "text": text })),
        );
    }

    /// Waits until `script` returns something other than null/false; returns it.
    pub fn until(&self, what: &str, deadline: Duration, script: &str) -> Value {
        wait_for(what, deadline, || {
            let v = self.js(script, json!([]));
            (!v.is_null() && v != false).then_some(v)
        })
    }

    /// Opens the console at `base` in `lang` (`zh-CN` or `en`) and signs in as the admin;
    /// returns once the shell is shown.
    pub fn sign_in(&self, base: &str, lang: &str) {
        self.goto(&format!("{base}/?lang={lang}"));
        self.submit_sign_in("admin", crate::support::IT_ADMIN_PASSWORD);
        self.until(
            "the console after sign-in",
            Duration::from_secs(30),
            &format!(
                "return !document.getElementById('shell').hidden \
                   && document.documentElement.lang === '{lang}' || null;"
            ),
        );
    }

    /// Fills and submits the sign-in form once it is shown.
    pub fn submit_sign_in(&self, user: &str, password: &str) {
        self.until(
            "the sign-in form",
            Duration::from_secs(30),
            "return !document.getElementById('login').hidden || null;",
        );
        self.type_into(&self.element("#login-user", Duration::from_secs(5)), user);
        self.type_into(
            &self.element("#login-password", Duration::from_secs(5)),
            password,
        );
        self.click(&self.element("#login-submit", Duration::from_secs(5)));
    }

    /// Latin words (three letters or more) a reader of the page sees: in visible text (the
    /// options of a visible list included) and in the `title`, `placeholder` and `aria-label`
    /// of visible elements, less room ids (`XM-0003`), units, API (as in "API 令牌"), the names of standards (CJJ, NAMUR), and what is marked
    /// `translate="no"` (a user's name, a rule's id). In zh-CN this must be empty.
    pub fn latin_words(&self) -> Vec<String> {
        let v = self.js(
            "const allowed = /^(CISTERN|API|CJJ|NAMUR|MPa|kPa|kWh|NTU|CSV|xlsx|SHA|English)$/; \
             const words = new Set(); \
             const visible = (e) => e && e.checkVisibility({ checkOpacity: true, checkVisibilityCSS: true }); \
             const exempt = (e) => !!e.closest('[translate=no], script, style'); \
             const scan = (text, where) => { \
               const plain = String(text).replace(/\\b[A-Z]{2}-\\d{3,}\\b/g, ' '); \
               for (const w of plain.match(/[A-Za-z]{3,}/g) || []) \
                 if (!allowed.test(w)) words.add(`${where}: ${w} in ${JSON.stringify(String(text).trim().slice(0, 60))}`); }; \
             const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT); \
             for (let n = walker.nextNode(); n; n = walker.nextNode()) { \
               const e = n.parentElement; \
               if (!e || !n.textContent.trim() || exempt(e)) continue; \
               if (e.tagName === 'OPTION' ? !visible(e.closest('select')) : !visible(e)) continue; \
               scan(n.textContent, e.tagName.toLowerCase() + (e.id ? '#' + e.id : '')); } \
             for (const e of document.body.querySelectorAll('[title],[placeholder],[aria-label]')) { \
               if (!visible(e) || exempt(e)) continue; \
               for (const a of ['title', 'placeholder', 'aria-label']) \
                 if (e.hasAttribute(a)) scan(e.getAttribute(a), `${e.tagName.toLowerCase()}[${a}]`); } \
             scan(document.title, 'title'); \
             return [...words].sort();",
            json!([]),
        );
        serde_json::from_value(v).unwrap()
    }

    /// The elements wider than the window or reaching past its right edge (a phone layout
    /// must have none), with the page's own scroll width when it scrolls sideways.
    pub fn overflowing(&self) -> Vec<String> {
        let v = self.js(
            "const w = document.documentElement.clientWidth; \
             const out = []; \
             if (document.documentElement.scrollWidth > w) \
               out.push(`page scrolls sideways: ${document.documentElement.scrollWidth} > ${w}`); \
             for (const e of document.body.querySelectorAll('*')) { \
               const r = e.getBoundingClientRect(); \
               if (!r.width || e.closest('[hidden]')) continue; \
               let p = e.parentElement, clipped = false; \
               for (; p && p !== document.body; p = p.parentElement) { \
                 const o = getComputedStyle(p).overflowX; \
                 if (o === 'auto' || o === 'scroll' || o === 'hidden') { clipped = true; break; } } \
               if (!clipped && r.right > w + 1) \
                 out.push(`${e.tagName.toLowerCase()}${e.id ? '#' + e.id : ''}.${e.className.baseVal ?? e.className} right=${Math.round(r.right)}`); \
               if (out.length > 20) break; } \
             return out;",
            json!([]),
        );
        serde_json::from_value(v).unwrap()
    }

    /// The characters the page shows that no installed font draws (drawn as the empty box of
    /// a missing glyph: an emoji without an emoji font), with the text they are in. Each
    /// character outside ASCII in visible text is drawn on a canvas in its element's font and
    /// compared with a private-use character no font has.
    pub fn missing_glyphs(&self) -> Vec<String> {
        let v = self.js(
            "const canvas = document.createElement('canvas'); canvas.width = 48; canvas.height = 48; \
             const g = canvas.getContext('2d', { willReadFrequently: true }); \
             const draw = (ch, font) => { g.clearRect(0, 0, 48, 48); g.font = font; g.fillText(ch, 4, 32); \
               return g.getImageData(0, 0, 48, 48).data.join(','); }; \
             const seen = new Map(); const nones = new Map(); const out = []; \
             const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT); \
             for (let n = walker.nextNode(); n; n = walker.nextNode()) { \
               const e = n.parentElement; \
               if (!e || !/[^\\x00-\\x7f]/.test(n.textContent)) continue; \
               if (!(e.tagName === 'OPTION' ? e.closest('select') : e).checkVisibility({ checkVisibilityCSS: true })) continue; \
               const font = `16px ${getComputedStyle(e).fontFamily}`; \
               if (!nones.has(font)) nones.set(font, draw('\\u{10FFFD}', font)); \
               const none = nones.get(font); \
               for (const ch of new Set(n.textContent)) { \
                 if (ch.codePointAt(0) < 0x80 || /\\s/.test(ch)) continue; \
                 const key = ch + font; \
                 if (!seen.has(key)) seen.set(key, draw(ch, font) === none); \
                 if (seen.get(key)) out.push(`U+${ch.codePointAt(0).toString(16).toUpperCase()} in ${JSON.stringify(n.textContent.trim().slice(0, 40))}`); } } \
             return [...new Set(out)].sort();",
            json!([]),
        );
        serde_json::from_value(v).unwrap()
    }

    /// The catalogue keys the page looked up and did not find.
    pub fn missing_keys(&self) -> Vec<String> {
        let v = self.js(
            "return [...(window.cisternMissingKeys || [])].sort();",
            json!([]),
        );
        serde_json::from_value(v).unwrap()
    }

    /// A PNG of the viewport, written to `path`.
    pub fn screenshot(&self, path: &Path) {
        let b64 = self.call("GET", "/screenshot", None);
        let png = base64_decode(b64.as_str().unwrap());
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "a PNG");
        std::fs::write(path, png).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let url = format!("{}/session/{}", self.base, self.session);
        let _ = std::panic::catch_unwind(|| peer_call("DELETE", &url, None));
    }
}

/// Standard base64 (WebDriver's screenshots), without a crate for one call.
fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => (c - b'A') as u32,
            b'a'..=b'z' => (c - b'a') as u32 + 26,
            b'0'..=b'9' => (c - b'0') as u32 + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {c}"),
        }
    };
    let bytes: Vec<u8> = text
        .bytes()
        .filter(|c| !c.is_ascii_whitespace() && *c != b'=')
        .collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut acc = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            acc |= value(*c) << (18 - 6 * i);
        }
        let n = chunk.len() * 6 / 8;
        for i in 0..n {
            out.push((acc >> (16 - 8 * i)) as u8);
        }
    }
    out
}

#[test]
fn base64_decodes_what_webdriver_sends() {
    assert_eq!(base64_decode("aGVsbG8gd29ybGQ="), b"hello world");
    assert_eq!(base64_decode("iVBORw0KGgo="), b"\x89PNG\r\n\x1a\n");
}
