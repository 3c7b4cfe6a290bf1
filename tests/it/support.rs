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
        get(&format!("{}/api/v1/targets", self.base)).1
    }
}
