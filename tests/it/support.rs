//! Shared test support: the built binary as a child process, readiness polling with deadlines,
//! a small HTTP client, and a real mosquitto on a free loopback port.
//!
//! Authentication: every child starts with `CISTERN_ADMIN_PASSWORD` = [`IT_ADMIN_PASSWORD`],
//! and the HTTP helpers ([`get`], [`post`], [`put`], [`delete`], ...) log in as `admin` once per
//! base URL and send its bearer token. Tests about authentication itself use [`login`],
//! [`call_as`] (any token, or none) and [`call_raw`] (any headers).

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A child process killed when dropped.
pub struct Proc {
    pub child: Child,
    pub log: PathBuf,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    /// The child's stderr so far (for failure messages).
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

/// A fresh temporary directory.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cistern-it-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Starts `cistern ARGS` and waits (up to `deadline`) for its `ready key=value ...` line.
pub fn spawn_cistern(
    name: &str,
    args: &[&str],
    deadline: Duration,
) -> (Proc, HashMap<String, String>) {
    let log = temp_dir(&format!("{name}-proc")).join("stderr.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_cistern"))
        .args(args)
        .env("RUST_LOG", "info,rumqttd=warn,rumqttc=warn")
        .env("CISTERN_ADMIN_PASSWORD", IT_ADMIN_PASSWORD)
        .env("RUST_BACKTRACE", "0")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("cannot start the cistern binary");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let proc = Proc { child, log };
    let start = Instant::now();
    loop {
        let left = deadline.checked_sub(start.elapsed()).unwrap_or_else(|| {
            panic!(
                "cistern {args:?} not ready within {deadline:?}\n{}",
                proc.log_tail()
            )
        });
        match rx.recv_timeout(left) {
            Ok(line) if line.starts_with("ready ") => {
                let fields = line[6..]
                    .split_whitespace()
                    .filter_map(|kv| kv.split_once('='))
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect();
                return (proc, fields);
            }
            Ok(_) => {}
            Err(_) => panic!(
                "cistern {args:?} exited or was not ready\n{}",
                proc.log_tail()
            ),
        }
    }
}

/// Polls `f` until it returns `Some` or the deadline passes. For blocking tests that watch a
/// child process: there is no runtime to yield to here.
#[allow(clippy::disallowed_methods)]
pub fn wait_for<T>(what: &str, deadline: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            start.elapsed() < deadline,
            "timed out after {deadline:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .http_status_as_error(false)
        .build()
        .into()
}

/// The first admin's password in every test process and in-process node.
pub const IT_ADMIN_PASSWORD: &str = "it-admin-password";

/// `scheme://host:port` of a URL.
pub fn base_of(url: &str) -> String {
    let after = url.find("://").map_or(0, |i| i + 3);
    match url[after..].find('/') {
        Some(i) => url[..after + i].to_owned(),
        None => url.to_owned(),
    }
}

fn tokens() -> &'static std::sync::Mutex<HashMap<String, String>> {
    static TOKENS: std::sync::OnceLock<std::sync::Mutex<HashMap<String, String>>> =
        std::sync::OnceLock::new();
    TOKENS.get_or_init(Default::default)
}

/// `POST {base}/api/v1/auth/login`: status and JSON body.
pub fn login(base: &str, user: &str, password: &str) -> (u16, serde_json::Value) {
    call_as(
        None,
        "POST",
        &format!("{base}/api/v1/auth/login"),
        Some(&serde_json::json!({ "user": user, "password": password }).to_string()),
    )
}

/// Logs in as `user` and returns the session token (panics unless the login succeeds).
pub fn token_for(base: &str, user: &str, password: &str) -> String {
    let (status, body) = login(base, user, password);
    assert_eq!(status, 200, "login as {user} at {base}: {body}");
    body["token"]
        .as_str()
        .unwrap_or_else(|| panic!("no token in {body}"))
        .to_owned()
}

/// The admin's session token for the server at `url` (logged in once per base URL; `fresh`
/// logs in again, after the server restarted and forgot its sessions).
pub fn admin_token(url: &str, fresh: bool) -> String {
    let base = base_of(url);
    let mut cache = tokens().lock().unwrap_or_else(|e| e.into_inner());
    if !fresh {
        if let Some(t) = cache.get(&base) {
            return t.clone();
        }
    }
    let token = token_for(&base, "admin", IT_ADMIN_PASSWORD);
    cache.insert(base, token.clone());
    token
}

/// One request with any headers: status and body text. Never panics on a refusal.
pub fn call_raw(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> (u16, String) {
    send(&agent(), method, url, headers, body)
}

fn send(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> (u16, String) {
    let result = match (method, body) {
        ("GET", _) => {
            let mut r = agent.get(url);
            for (k, v) in headers {
                r = r.header(*k, *v);
            }
            r.call()
        }
        ("DELETE", _) => {
            let mut r = agent.delete(url);
            for (k, v) in headers {
                r = r.header(*k, *v);
            }
            r.call()
        }
        (m, b) => {
            let mut r = match m {
                "POST" => agent.post(url),
                "PUT" => agent.put(url),
                "PATCH" => agent.patch(url),
                other => panic!("call_raw: method {other} not supported"),
            };
            for (k, v) in headers {
                r = r.header(*k, *v);
            }
            r.header("content-type", "application/json")
                .send(b.unwrap_or(""))
        }
    };
    let mut resp = result.unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = resp.status().as_u16();
    let text = resp
        .body_mut()
        .with_config()
        // WebDriver screenshots are base64 PNGs of a few MB.
        .limit(64 * 1024 * 1024)
        .read_to_string()
        .unwrap_or_default();
    (status, text)
}

/// Sends `head` (request line and headers, as raw bytes, without the final blank line) over a
/// plain TCP connection to `base` and returns the status and body: for requests no HTTP
/// client would send (bytes that are not text in a header). Reads until the server closes.
pub fn raw_http(base: &str, head: &[u8]) -> (u16, String) {
    use std::io::{Read, Write};
    let addr = base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(head).unwrap();
    stream.write_all(b"\r\nconnection: close\r\n\r\n").unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map_or(String::new(), |(_, b)| b.to_owned());
    (status, body)
}

fn json_of(text: String) -> serde_json::Value {
    serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text))
}

/// One request with `token` as the bearer (none: anonymous): status and JSON body.
pub fn call_as(
    token: Option<&str>,
    method: &str,
    url: &str,
    body: Option<&str>,
) -> (u16, serde_json::Value) {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth
        .as_deref()
        .map(|a| vec![("authorization", a)])
        .unwrap_or_default();
    let (status, text) = call_raw(method, url, &headers, body);
    (status, json_of(text))
}

/// One request as the admin: status and JSON body. A 401 means the server forgot the session
/// (it restarted on the same address): log in again and send once more.
pub fn call(method: &str, url: &str, body: Option<&str>) -> (u16, serde_json::Value) {
    let token = admin_token(url, false);
    let (status, v) = call_as(Some(&token), method, url, body);
    if status != 401 {
        return (status, v);
    }
    let token = admin_token(url, true);
    call_as(Some(&token), method, url, body)
}

/// GET a URL as the admin: status and JSON body.
pub fn get(url: &str) -> (u16, serde_json::Value) {
    call("GET", url, None)
}

/// GET a URL as text, without a token (e.g. `/metrics`, public).
pub fn get_text(url: &str) -> String {
    let (status, text) = call_raw("GET", url, &[], None);
    assert_eq!(status, 200, "GET {url}: {text}");
    text
}

/// The value of the first `/metrics` line that starts with `line_start` (0 when absent).
pub fn metric(base: &str, line_start: &str) -> f64 {
    get_text(&format!("{base}/metrics"))
        .lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// POST raw bytes as JSON, as the admin: status and JSON body.
pub fn post(url: &str, body: &str) -> (u16, serde_json::Value) {
    call("POST", url, Some(body))
}

/// PUT raw bytes as JSON, as the admin: status and JSON body.
pub fn put(url: &str, body: &str) -> (u16, serde_json::Value) {
    call("PUT", url, Some(body))
}

/// PATCH raw bytes as JSON, as the admin: status and JSON body.
pub fn patch(url: &str, body: &str) -> (u16, serde_json::Value) {
    call("PATCH", url, Some(body))
}

/// DELETE a URL as the admin: status and JSON body.
pub fn delete(url: &str) -> (u16, serde_json::Value) {
    call("DELETE", url, None)
}

/// Identity for an in-process node: in memory, with the first admin's password set to
/// [`IT_ADMIN_PASSWORD`] (as the child processes have), so the HTTP helpers work against it.
pub async fn it_security() -> cistern::auth::Security {
    let security = cistern::auth::Security::default();
    security
        .bootstrap(Some(IT_ADMIN_PASSWORD))
        .await
        .expect("bootstrap the test admin");
    security
}

/// A free loopback port (bound then released: the child binds it right after).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until something accepts TCP connections on `addr`.
pub fn wait_listening(addr: SocketAddr, deadline: Duration) {
    wait_for(&format!("{addr} to accept connections"), deadline, || {
        TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()
    });
}

/// A site for `cistern run` in a fresh directory: `inventory`, HTTP on a free port, MQTT from
/// `broker` (client id `cistern-it-NAME`), and `extra` configuration. Returns the
/// configuration file.
pub fn run_site(
    name: &str,
    inventory: &cistern_schemas::inventory::Inventory,
    broker: &Mosquitto,
    extra: &str,
) -> PathBuf {
    run_site_on_port(name, inventory, broker.addr.port(), extra)
}

/// [`run_site`] with MQTT on `port` of 127.0.0.1, whether a broker listens there yet or not.
pub fn run_site_on_port(
    name: &str,
    inventory: &cistern_schemas::inventory::Inventory,
    port: u16,
    extra: &str,
) -> PathBuf {
    let dir = temp_dir(name);
    std::fs::write(
        dir.join("inventory.toml"),
        toml::to_string(inventory).unwrap(),
    )
    .unwrap();
    let config = dir.join("cistern.toml");
    std::fs::write(
        &config,
        format!(
            "[http]\nlisten = \"127.0.0.1:0\"\n[inventory]\nfile = \"inventory.toml\"\n\
             [mqtt]\nhost = \"127.0.0.1\"\nport = {port}\nclient_id = \"cistern-it-{name}\"\n{extra}",
        ),
    )
    .unwrap();
    config
}

/// A real mosquitto broker on a free loopback port.
pub struct Mosquitto {
    pub addr: SocketAddr,
    _proc: Proc,
}

impl Mosquitto {
    pub fn start(name: &str) -> Self {
        Self::start_on(name, free_port())
    }

    /// A broker on `port` (one a node was told to use before the broker existed).
    pub fn start_on(name: &str, port: u16) -> Self {
        Self::launch(name, port, 20_000)
    }

    /// A broker that lets each client have at most `inflight` QoS 1 messages unacknowledged:
    /// with 1, a subscriber receives a message only once it has acknowledged the one before.
    pub fn start_with_inflight(name: &str, inflight: u32) -> Self {
        Self::launch(name, free_port(), inflight)
    }

    fn launch(name: &str, port: u16, inflight: u32) -> Self {
        let exe = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .expect("mosquitto is not installed: run ops/test.sh (it installs Debian's mosquitto)");
        let dir = temp_dir(name);
        let conf = dir.join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n\
                 max_inflight_messages {inflight}\nmax_queued_messages 100000\nlog_dest stderr\n"
            ),
        )
        .unwrap();
        let log = dir.join("mosquitto.log");
        let child = Command::new(exe)
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("cannot start mosquitto");
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let proc = Proc { child, log };
        wait_listening(addr, Duration::from_secs(10));
        Self { addr, _proc: proc }
    }
}

/// A JSON call to a real peer that is not Cistern (chromedriver's WebDriver endpoint): no
/// Cistern token is attached, and the timeout is long (starting a browser session on a loaded
/// machine takes a while). Status and JSON body.
pub fn peer_call(
    method: &str,
    url: &str,
    body: Option<&serde_json::Value>,
) -> (u16, serde_json::Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(90)))
        .http_status_as_error(false)
        .build()
        .into();
    let body = body.map(|b| b.to_string());
    let (status, text) = send(&agent, method, url, &[], body.as_deref().or(Some("{}")));
    (status, json_of(text))
}

/// GET a URL with query parameters (encoded here): status and JSON body.
pub fn get_with_query(url: &str, params: &[(&str, &str)]) -> (u16, serde_json::Value) {
    let mut req = agent().get(url);
    for (k, v) in params {
        req = req.query(*k, *v);
    }
    let mut resp = req
        .call()
        .unwrap_or_else(|e| panic!("GET {url} {params:?}: {e}"));
    let status = resp.status().as_u16();
    let body = resp.body_mut().read_to_string().unwrap();
    (
        status,
        serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body)),
    )
}

/// Where Debian's `prometheus` package puts an executable (`promtool`, `prometheus`).
pub fn prometheus_tool(name: &str) -> PathBuf {
    ["/usr/bin", "/usr/local/bin", "/usr/sbin"]
        .iter()
        .map(|d| std::path::Path::new(d).join(name))
        .find(|p| p.exists())
        .unwrap_or_else(|| {
            panic!("{name} is not installed: run ops/test.sh (it installs Debian's prometheus)")
        })
}

/// Runs promtool with `args`, `stdin` fed to it: success, and stdout + stderr.
pub fn promtool(args: &[&str], stdin: Option<&str>) -> (bool, String) {
    use std::io::Write as _;
    let mut child = Command::new(prometheus_tool("promtool"))
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start promtool");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// A real Prometheus server on a free loopback port with a temporary data directory.
pub struct Prometheus {
    pub base: String,
    proc: Proc,
}

impl Prometheus {
    /// Starts Prometheus with `config` (YAML; files it names are resolved in its directory)
    /// and waits until it is ready.
    pub fn start(name: &str, config: &str, extra_files: &[(&str, &str)]) -> Self {
        let exe = prometheus_tool("prometheus");
        let dir = temp_dir(name);
        std::fs::write(dir.join("prometheus.yml"), config).unwrap();
        for (file, text) in extra_files {
            std::fs::write(dir.join(file), text).unwrap();
        }
        let port = free_port();
        let log = dir.join("prometheus.log");
        let child = Command::new(exe)
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .current_dir(&dir)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("cannot start prometheus");
        let proc = Proc { child, log };
        let base = format!("http://127.0.0.1:{port}");
        let ready = format!("{base}/-/ready");
        wait_for("prometheus to be ready", Duration::from_secs(30), || {
            agent()
                .get(&ready)
                .call()
                .ok()
                .filter(|r| r.status().as_u16() == 200)
        });
        Self { base, proc }
    }

    /// An instant PromQL query through the HTTP API: the `data.result` vector.
    pub fn query(&self, promql: &str) -> Vec<serde_json::Value> {
        let (status, body) =
            get_with_query(&format!("{}/api/v1/query", self.base), &[("query", promql)]);
        assert_eq!(status, 200, "{promql}: {body}\n{}", self.proc.log_tail());
        assert_eq!(body["status"], "success", "{promql}: {body}");
        body["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// The targets' scrape health (`/api/v1/targets`).
    pub fn targets(&self) -> serde_json::Value {
        get_with_query(&format!("{}/api/v1/targets", self.base), &[]).1
    }
}
