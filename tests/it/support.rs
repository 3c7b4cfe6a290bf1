//! Shared test support: the built binary as a child process ([`Cistern`] starts it, [`Node`]
//! is the running node), readiness polling with deadlines, a small HTTP client, and a real
//! mosquitto on a free loopback port.
//!
//! Starting the binary: `Cistern::demo("name").rooms(4).modbus_rooms(0).start()`,
//! `Cistern::run("name", &config).start()`, `Cistern::simulate("name", broker).start()` or
//! `Cistern::command("name", args)`; `.output()` instead of `.start()` runs a command to its
//! end. Every child gets the same environment (the admin's password, the log filter), binds
//! loopback port 0 and is killed when its handle is dropped; [`Node`] parses the `ready` line,
//! captures stdout and stderr to files, and can be killed (`kill9`), stopped (`terminate`) and
//! started again on the same data directory (`restart`).
//!
//! Authentication: every child starts with `CISTERN_ADMIN_PASSWORD` = [`IT_ADMIN_PASSWORD`],
//! and the HTTP helpers ([`get`], [`post`], [`put`], [`delete`], ...) log in as `admin` once per
//! base URL and send its bearer token. Tests about authentication itself use [`login`],
//! [`call_as`] (any token, or none) and [`call_raw`] (any headers).

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::io::{BufRead, BufReader, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
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
    /// The child's stderr so far, for failure messages: every distinct warning and error (the
    /// first of each, with how often it came; the cause of a failure is often far from the end
    /// of the log), then the last 40 lines, a run of one repeated line shown once with its
    /// count.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        log_digest(&text, 40)
    }
}

/// See [`Proc::log_tail`]. A line's timestamp (its first word) is ignored when lines are
/// compared.
fn log_digest(text: &str, tail: usize) -> String {
    let message = |line: &str| {
        line.split_once(' ')
            .map_or(line, |(_, rest)| rest)
            .to_owned()
    };
    let mut notable: Vec<(String, &str, usize)> = Vec::new();
    for line in text.lines() {
        let m = message(line);
        if !(m.starts_with("WARN") || m.starts_with("ERROR")) {
            continue;
        }
        if let Some(entry) = notable.iter_mut().find(|(seen, _, _)| *seen == m) {
            entry.2 += 1;
        } else if notable.len() < 30 {
            notable.push((m, line, 1));
        }
    }
    let lines: Vec<&str> = text.lines().collect();
    let mut last: Vec<(String, &str, usize)> = Vec::new();
    for line in lines.iter().rev() {
        let m = message(line);
        if let Some(entry) = last.last_mut().filter(|entry| entry.0 == m) {
            entry.2 += 1;
        } else if last.len() == tail {
            break;
        } else {
            last.push((m, line, 1));
        }
    }
    last.reverse();
    let show = |(_, line, n): &(String, &str, usize)| {
        if *n > 1 {
            format!("{line}   [×{n}]")
        } else {
            (*line).to_owned()
        }
    };
    let mut out = String::from("--- warnings and errors (first of each) ---\n");
    out += &notable.iter().map(show).collect::<Vec<_>>().join("\n");
    out += "\n--- the log's end ---\n";
    out += &last.iter().map(show).collect::<Vec<_>>().join("\n");
    out
}

/// A fresh temporary directory.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cistern-it-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The log filter of every child unless a test sets its own ([`Cistern::log_filter`]).
const IT_LOG_FILTER: &str = "info,rumqttd=warn,rumqttc=warn";

/// How a test runs the `cistern` binary: a subcommand, its arguments, and the environment
/// every test child shares (the admin's password, the log filter, no backtraces).
/// [`Cistern::start`] waits for the `ready` line and gives a [`Node`]; [`Cistern::output`]
/// runs a command to its end.
#[derive(Clone, Debug)]
pub struct Cistern {
    name: String,
    args: Vec<OsString>,
    env: Vec<(String, String)>,
    current_dir: Option<PathBuf>,
    ready_within: Duration,
}

impl Cistern {
    /// `cistern ARGS`, any subcommand. `name` names the test's temporary directories.
    pub fn command<S: AsRef<OsStr>>(name: &str, args: impl IntoIterator<Item = S>) -> Self {
        Self {
            name: name.to_owned(),
            args: args.into_iter().map(|a| a.as_ref().to_owned()).collect(),
            env: vec![
                ("RUST_LOG".into(), IT_LOG_FILTER.into()),
                ("CISTERN_ADMIN_PASSWORD".into(), IT_ADMIN_PASSWORD.into()),
                ("RUST_BACKTRACE".into(), "0".into()),
            ],
            current_dir: None,
            ready_within: Duration::from_secs(60),
        }
    }

    /// `cistern demo` with HTTP and the embedded broker on loopback port 0 and a fresh data
    /// directory (`NAME-data`, kept across [`Node::restart`]). The demo's own defaults hold
    /// for the rest (100 rooms, 4 of them over Modbus), but for `--manual-crews`: say what the
    /// test needs.
    pub fn demo(name: &str) -> Self {
        let data = temp_dir(&format!("{name}-data"));
        Self::command(
            name,
            ["demo", "--http", "127.0.0.1:0", "--mqtt", "127.0.0.1:0"],
        )
        .arg("--data")
        .arg(data)
        // Work orders wait for the test's own crews (the simulated crew is tested by itself).
        .arg("--manual-crews")
        // No simulated past for the analysis (its own tests ask for one): it costs CPU.
        .args(["--history-days", "0"])
    }

    /// `cistern run --config CONFIG` (a site from [`run_site`] or written by the test).
    pub fn run(name: &str, config: &Path) -> Self {
        Self::command(name, ["run", "--config"]).arg(config)
    }

    /// `cistern simulate --mqtt BROKER`: the simulated fleet's gateways publishing to a broker.
    pub fn simulate(name: &str, broker: SocketAddr) -> Self {
        Self::command(name, ["simulate", "--mqtt"]).arg(broker.to_string())
    }

    /// One more argument.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    /// More arguments.
    pub fn args<S: AsRef<OsStr>>(mut self, args: impl IntoIterator<Item = S>) -> Self {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// `--rooms N` (demo, simulate).
    pub fn rooms(self, n: usize) -> Self {
        self.arg("--rooms").arg(n.to_string())
    }

    /// `--modbus-rooms N` (demo): rooms polled over Modbus TCP instead of publishing over MQTT.
    pub fn modbus_rooms(self, n: usize) -> Self {
        self.arg("--modbus-rooms").arg(n.to_string())
    }

    /// `--seed N` (demo, simulate).
    pub fn seed(self, n: u64) -> Self {
        self.arg("--seed").arg(n.to_string())
    }

    /// `--rules DIR` (demo): the rule directory, hot-reloaded.
    pub fn rules(self, dir: &Path) -> Self {
        self.arg("--rules").arg(dir)
    }

    /// `RUST_LOG` of the child (default: info, the MQTT crates at warn).
    pub fn log_filter(self, filter: &str) -> Self {
        self.env("RUST_LOG", filter)
    }

    /// An environment variable of the child (replacing a default one of the same name).
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// The child's working directory (default: the test's).
    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.current_dir = Some(dir.as_ref().to_owned());
        self
    }

    /// How long [`Cistern::start`] waits for the `ready` line (default 60 s).
    pub fn ready_within(mut self, deadline: Duration) -> Self {
        self.ready_within = deadline;
        self
    }

    fn command_line(&self) -> Command {
        // A benchmark may run a release build (`CISTERN_IT_BIN=target/release/cistern`).
        let exe = std::env::var_os("CISTERN_IT_BIN")
            .unwrap_or_else(|| env!("CARGO_BIN_EXE_cistern").into());
        let mut cmd = Command::new(exe);
        cmd.args(&self.args);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        if let Some(dir) = &self.current_dir {
            cmd.current_dir(dir);
        }
        cmd
    }

    /// Runs the command to its end: exit status, stdout and stderr.
    pub fn output(self) -> Output {
        self.command_line()
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run cistern {:?}: {e}", self.args))
    }

    /// Starts the binary and waits for its `ready key=value ...` line.
    pub fn start(self) -> Node {
        let logs = temp_dir(&format!("{}-proc", self.name));
        let (proc, ready) = self.launch(&logs, 1);
        Node {
            launch: self,
            logs,
            runs: 1,
            proc,
            ready,
        }
    }

    /// One process: stderr to `stderr-RUN.log`, stdout (read to its end, so the child never
    /// writes to a closed pipe) to `stdout-RUN.log`, up to its `ready` line parsed.
    fn launch(&self, logs: &Path, run: u32) -> (Proc, HashMap<String, String>) {
        let log = logs.join(format!("stderr-{run}.log"));
        let mut child = self
            .command_line()
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("cannot start the cistern binary");
        let stdout = child.stdout.take().unwrap();
        let mut copy = std::fs::File::create(logs.join(format!("stdout-{run}.log"))).unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = writeln!(copy, "{line}");
                let _ = tx.send(line);
            }
        });
        let proc = Proc { child, log };
        let (args, deadline) = (&self.args, self.ready_within);
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
}

/// A running `cistern` (from [`Cistern::start`]), killed when dropped: the addresses of its
/// `ready` line, its captured log, and the admin's session for the HTTP helpers.
pub struct Node {
    launch: Cistern,
    logs: PathBuf,
    runs: u32,
    proc: Proc,
    ready: HashMap<String, String>,
}

impl Node {
    /// A field of the `ready` line (`http`, `mqtt`, `rooms`, `online`, ...).
    pub fn ready_field(&self, key: &str) -> &str {
        self.ready.get(key).unwrap_or_else(|| {
            panic!(
                "cistern {:?} announced no `{key}` in its ready line: {:?}",
                self.launch.args, self.ready
            )
        })
    }

    /// The HTTP base URL, `http://127.0.0.1:PORT`.
    pub fn http(&self) -> &str {
        self.ready_field("http")
    }

    /// The MQTT broker's address, `127.0.0.1:PORT` (the demo's embedded broker, or the one a
    /// simulator publishes to).
    pub fn mqtt(&self) -> &str {
        self.ready_field("mqtt")
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.http())
    }

    /// GET `path` as the admin (logged in on first use, again after a restart): status and
    /// JSON body.
    pub fn get(&self, path: &str) -> (u16, serde_json::Value) {
        get(&self.url(path))
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.proc.child.id()
    }

    /// Everything the current process wrote to stderr so far (its log).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.proc.log).unwrap_or_default()
    }

    /// The last 40 lines of the current process's log (for failure messages).
    pub fn log_tail(&self) -> String {
        self.proc.log_tail()
    }

    /// SIGKILL, and waits for the process to go.
    pub fn kill9(&mut self) {
        self.proc.child.kill().unwrap();
        self.proc.child.wait().unwrap();
    }

    /// SIGTERM (an orderly stop, as systemd asks), and waits for the process to exit.
    pub fn terminate(&mut self) -> ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -TERM {}", self.pid());
        self.proc.child.wait().unwrap()
    }

    /// Starts the same command again (same arguments, so the same data directory) once the
    /// process has stopped ([`Node::kill9`], [`Node::terminate`]), and waits for its `ready`
    /// line. Its log starts afresh; the addresses are new.
    pub fn restart(&mut self) {
        let running = self.proc.child.try_wait().unwrap().is_none();
        assert!(
            !running,
            "restart: stop the node first (kill9 or terminate)"
        );
        self.runs += 1;
        let (proc, ready) = self.launch.launch(&self.logs, self.runs);
        self.proc = proc;
        self.ready = ready;
    }

    /// The process and its `ready` fields, for the older helpers.
    fn into_parts(self) -> (Proc, HashMap<String, String>) {
        (self.proc, self.ready)
    }
}

/// Starts `cistern ARGS` and waits (up to `deadline`) for its `ready key=value ...` line.
///
/// Prefer `Cistern::command(name, args).start()` (or `Cistern::demo`, `Cistern::run`), whose
/// [`Node`] can also kill, stop and restart the process and read its log.
#[allow(dead_code)]
pub fn spawn_cistern(
    name: &str,
    args: &[&str],
    deadline: Duration,
) -> (Proc, HashMap<String, String>) {
    Cistern::command(name, args)
        .ready_within(deadline)
        .start()
        .into_parts()
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

/// Polls `f` until it returns true or the deadline passes; says which. For a test that
/// reports what it saw when the wait ran out.
#[allow(clippy::disallowed_methods)]
pub fn try_wait_for(deadline: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while !f() {
        if start.elapsed() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    true
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

/// An answer read by [`call_from`]: the status, the headers (names lower-case) and the body.
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: serde_json::Value,
}

impl Answer {
    /// A header's value, if the answer has it.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One request sent from the loopback address `from` (127.0.0.2, 127.0.0.3, ... all reach a
/// node listening on 127.0.0.1): as clients at different addresses are seen by the node, which
/// takes the TCP peer for the client's address. `headers` are sent as given, the body as JSON.
pub fn call_from(
    from: &str,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Answer {
    use std::io::{Read, Write};
    let rest = url.trim_start_matches("http://");
    let (addr, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let target: SocketAddr = addr.parse().unwrap();
    let local: SocketAddr = format!("{from}:0").parse().unwrap();
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.bind(&local.into())
        .unwrap_or_else(|e| panic!("bind {local}: {e}"));
    sock.connect_timeout(&target.into(), Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("connect {target} from {from}: {e}"));
    let mut stream: TcpStream = sock.into();
    stream
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    let body = body.unwrap_or("");
    let mut head = format!(
        "{method} {} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-length: {}\r\n",
        if path.is_empty() { "/" } else { path },
        body.len()
    );
    if !body.is_empty() {
        head.push_str("content-type: application/json\r\n");
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body.as_bytes()).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let text = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {text:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect::<Vec<_>>();
    // Chunked answers are not expected (actix sends a length for JSON bodies).
    Answer {
        status,
        headers,
        body: json_of(body.to_owned()),
    }
}

/// A GET of `path` with `token`, marked as a background refresh (`X-Cistern-Background`: no
/// use of the session): status and JSON body.
pub fn call_background(base: &str, path: &str, token: &str) -> (u16, serde_json::Value) {
    let a = call_from(
        "127.0.0.1",
        "GET",
        &format!("{base}{path}"),
        &[
            ("authorization", &format!("Bearer {token}")),
            ("x-cistern-background", "1"),
        ],
        None,
    );
    (a.status, a.body)
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

/// A `cistern run` site in a fresh directory with storage (`data`), two generated rooms and no
/// ingest; `extra` sections appended (`[auth]` settings, say). Returns the configuration file.
pub fn storage_site(name: &str, extra: &str) -> PathBuf {
    let dir = temp_dir(name);
    std::fs::write(
        dir.join("inventory.toml"),
        toml::to_string(&cistern::lab::sim::generate_fleet(2, 3)).unwrap(),
    )
    .unwrap();
    let config = dir.join("cistern.toml");
    std::fs::write(
        &config,
        format!(
            "[http]\nlisten = \"127.0.0.1:0\"\n[inventory]\nfile = \"inventory.toml\"\n\
             [store]\ndata_dir = \"data\"\n{extra}\n"
        ),
    )
    .unwrap();
    config
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
        Self::with_conf(
            name,
            port,
            &format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n\
                 max_inflight_messages {inflight}\nmax_queued_messages 100000\nlog_dest stderr\n"
            ),
        )
    }

    /// A broker on `port` with the configuration `conf` (which must listen on that port of
    /// 127.0.0.1); its log is [`Mosquitto::log`].
    pub fn with_conf(name: &str, port: u16, conf_text: &str) -> Self {
        let exe = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .expect("mosquitto is not installed: run ops/test.sh (it installs Debian's mosquitto)");
        let dir = temp_dir(name);
        let conf = dir.join("mosquitto.conf");
        std::fs::write(&conf, conf_text).unwrap();
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

    /// What the broker logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self._proc.log).unwrap_or_default()
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

/// Runs `program` with `args`, `stdin` fed to it, to its end: its status, stdout and stderr.
pub fn run_piped(program: impl AsRef<OsStr>, args: &[&str], stdin: Option<&str>) -> Output {
    use std::io::Write as _;
    let program = program.as_ref();
    let mut child = Command::new(program)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.to_string_lossy()));
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    child.wait_with_output().unwrap()
}

/// Runs promtool with `args`, `stdin` fed to it: success, and stdout + stderr.
pub fn promtool(args: &[&str], stdin: Option<&str>) -> (bool, String) {
    let out = run_piped(prometheus_tool("promtool"), args, stdin);
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

/// The node's rooms by zone (`GET /api/v1/rooms`), each zone's rooms in id order.
pub fn rooms_by_zone(base: &str) -> std::collections::BTreeMap<String, Vec<String>> {
    let (status, rooms) = get(&format!("{base}/api/v1/rooms"));
    assert_eq!(status, 200, "{rooms}");
    let mut by_zone: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for r in rooms["rooms"].as_array().unwrap() {
        by_zone
            .entry(r["zone"].as_str().unwrap().to_owned())
            .or_default()
            .push(r["id"].as_str().unwrap().to_owned());
    }
    for ids in by_zone.values_mut() {
        ids.sort();
    }
    by_zone
}

/// The zone of `room`.
pub fn zone_of(base: &str, room: &str) -> String {
    rooms_by_zone(base)
        .into_iter()
        .find(|(_, ids)| ids.iter().any(|id| id == room))
        .map(|(zone, _)| zone)
        .unwrap_or_else(|| panic!("no room {room}"))
}

/// A crew member's last reported position (`GET /api/v1/crews`), if any.
pub fn crew_position(base: &str, user: &str) -> Option<serde_json::Value> {
    let (status, crews) = get(&format!("{base}/api/v1/crews"));
    assert_eq!(status, 200, "{crews}");
    crews["crews"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["user"] == user)
        .cloned()
}

/// Publishes one telemetry record of `device` stamped `t`, QoS 1, with the named values (the
/// device's other points left out), as its gateway would.
pub fn publish_record(
    client: &rumqttc::Client,
    device: &str,
    t: cistern_schemas::Timestamp,
    values: &[(&str, f64)],
) {
    use cistern_schemas::{telemetry, DeviceId};
    let device: DeviceId = device.parse().unwrap();
    let kind = device.unit.kind();
    let mut v = vec![f64::NAN; kind.points().len()];
    for (name, x) in values {
        v[kind.point_index(name).unwrap()] = *x;
    }
    let payload = telemetry::encode(kind, &[(t, &v)], false);
    client
        .publish(
            telemetry::topic(&device),
            rumqttc::QoS::AtLeastOnce,
            false,
            payload,
        )
        .unwrap();
}
