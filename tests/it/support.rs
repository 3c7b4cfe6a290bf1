//! Shared test support: the built binary as a child process, readiness polling with deadlines,
//! a small HTTP client, and a real mosquitto on a free loopback port.

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

/// GET a URL: status and JSON body.
pub fn get(url: &str) -> (u16, serde_json::Value) {
    let mut resp = agent()
        .get(url)
        .call()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = resp.status().as_u16();
    let body = resp.body_mut().read_to_string().unwrap();
    (
        status,
        serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body)),
    )
}

/// GET a URL as text (e.g. `/metrics`).
pub fn get_text(url: &str) -> String {
    agent()
        .get(url)
        .call()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
        .body_mut()
        .read_to_string()
        .unwrap()
}

/// POST raw bytes as JSON: status and JSON body.
pub fn post(url: &str, body: &str) -> (u16, serde_json::Value) {
    let mut resp = agent()
        .post(url)
        .header("content-type", "application/json")
        .send(body)
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
    )
}

/// One request with `token` as the bearer (none: anonymous): status and JSON body.
pub fn call_as(
    token: Option<&str>,
    method: &str,
    url: &str,
    body: Option<&str>,
) -> (u16, serde_json::Value) {
    let mut req = ureq::http::Request::builder()
        .method(method)
        .uri(url)
        .header("content-type", "application/json");
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let req = req.body(body.unwrap_or("").to_owned()).unwrap();
    let mut resp = agent()
        .run(req)
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
    )
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
             [mqtt]\nhost = \"127.0.0.1\"\nport = {}\nclient_id = \"cistern-it-{name}\"\n{extra}",
            broker.addr.port()
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
        let exe = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .expect("mosquitto is not installed: run ops/test.sh (it installs Debian's mosquitto)");
        let dir = temp_dir(name);
        let port = free_port();
        let conf = dir.join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n\
                 max_inflight_messages 20000\nmax_queued_messages 100000\nlog_dest stderr\n"
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
