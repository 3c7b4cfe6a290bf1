//! The benchmark's child processes: the broker, the platform node and the load generator, each
//! a real process so that each one's CPU and memory are its own. A child is killed when its
//! handle is dropped, so an aborted benchmark leaves nothing running.

use super::BenchError;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A child process, killed on drop, whose stdout lines are kept by prefix (the newest line
/// starting with each word: `ready`, `stats`, `published`).
#[derive(Debug)]
pub struct BenchProc {
    pub name: &'static str,
    child: Child,
    lines: Arc<Mutex<HashMap<String, String>>>,
    log: PathBuf,
    /// Its stdin, when started with [`BenchProc::spawn_with_input`].
    input: Option<ChildStdin>,
}

impl Drop for BenchProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl BenchProc {
    /// Starts `command`, its stderr to `log`.
    pub fn spawn(name: &'static str, command: Command, log: PathBuf) -> Result<Self, BenchError> {
        Self::start(name, command, log, false)
    }

    /// Starts `command` as [`BenchProc::spawn`] does, with a pipe to its stdin for
    /// [`BenchProc::tell`].
    pub fn spawn_with_input(
        name: &'static str,
        command: Command,
        log: PathBuf,
    ) -> Result<Self, BenchError> {
        Self::start(name, command, log, true)
    }

    fn start(
        name: &'static str,
        mut command: Command,
        log: PathBuf,
        input: bool,
    ) -> Result<Self, BenchError> {
        let stderr = std::fs::File::create(&log).map_err(|source| BenchError::Io {
            what: format!("create {}", log.display()),
            source,
        })?;
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(stderr)
            .stdin(if input { Stdio::piped() } else { Stdio::null() })
            .spawn()
            .map_err(|source| BenchError::Io {
                what: format!("start the {name}"),
                source,
            })?;
        let lines = Arc::new(Mutex::new(HashMap::new()));
        if let Some(stdout) = child.stdout.take() {
            let lines = lines.clone();
            // Every stdout line is also kept beside the log, for `cistern bench --keep`.
            let mut copy = std::fs::File::create(log.with_extension("stdout")).ok();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    if let Some(f) = copy.as_mut() {
                        let _ = writeln!(f, "{line}");
                    }
                    let word = line.split_whitespace().next().unwrap_or("").to_owned();
                    lock(&lines).insert(word, line);
                }
            });
        }
        let input = child.stdin.take();
        Ok(Self {
            name,
            child,
            lines,
            log,
            input,
        })
    }

    /// Writes `line` (and a newline) to the process's stdin.
    pub fn tell(&mut self, line: &str) -> Result<(), BenchError> {
        let Some(input) = self.input.as_mut() else {
            return Err(self.failed("was started without a pipe to its stdin".into()));
        };
        let written = input
            .write_all(line.as_bytes())
            .and_then(|()| input.write_all(b"\n"))
            .and_then(|()| input.flush());
        written.map_err(|e| self.failed(format!("does not read its stdin: {e}")))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The newest stdout line starting with `word`, as its `key=value` fields.
    pub fn line(&self, word: &str) -> Option<HashMap<String, String>> {
        lock(&self.lines).get(word).map(|l| fields(l))
    }

    /// Waits for a stdout line starting with `word`; fails if the process exits first.
    pub fn wait_line(
        &mut self,
        word: &str,
        deadline: Duration,
    ) -> Result<HashMap<String, String>, BenchError> {
        let end = Instant::now() + deadline;
        loop {
            if let Some(l) = self.line(word) {
                return Ok(l);
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                // The reader thread may not have stored the last line yet.
                std::thread::park_timeout(Duration::from_millis(100));
                if let Some(l) = self.line(word) {
                    return Ok(l);
                }
                return Err(self.failed(format!("exited ({status}) before printing `{word}`")));
            }
            if Instant::now() >= end {
                return Err(self.failed(format!("printed no `{word}` line within {deadline:?}")));
            }
            std::thread::park_timeout(Duration::from_millis(50));
        }
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGKILL, and waits for the process to go.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM (an orderly stop), then waits up to `deadline` for the process to exit; past
    /// it, SIGKILL. Whether it stopped by itself.
    pub fn terminate(&mut self, deadline: Duration) -> bool {
        self.signal_term();
        self.wait_exit(deadline)
    }

    /// Sends SIGTERM (if the process still runs) without waiting.
    pub fn signal_term(&mut self) {
        if self.running() {
            let _ = Command::new("kill")
                .args(["-TERM", &self.pid().to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }

    /// Waits up to `deadline` for the process to exit; past it, SIGKILL. Whether it exited by
    /// itself.
    pub fn wait_exit(&mut self, deadline: Duration) -> bool {
        let end = Instant::now() + deadline;
        while Instant::now() < end {
            if !self.running() {
                return true;
            }
            std::thread::park_timeout(Duration::from_millis(50));
        }
        self.kill9();
        false
    }

    /// The error for this process, with the end of its log.
    pub fn failed(&self, why: String) -> BenchError {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        BenchError::Child {
            name: self.name,
            why,
            log: lines[lines.len().saturating_sub(20)..].join("\n"),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// `word k=v k=v ...` → the pairs.
pub fn fields(line: &str) -> HashMap<String, String> {
    line.split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// A free loopback port (bound then released; the broker binds it right after).
pub fn free_port() -> Result<u16, BenchError> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|source| BenchError::Io {
            what: "find a free port".into(),
            source,
        })
}

/// Debian's mosquitto, where it is installed.
pub fn mosquitto() -> Result<PathBuf, BenchError> {
    ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .ok_or(BenchError::NoBroker)
}

/// Starts mosquitto on a free loopback port with queues deep enough that a subscriber which
/// falls behind is buffered, not dropped (mosquitto's default keeps 1,000 messages).
pub fn start_broker(dir: &Path) -> Result<(BenchProc, SocketAddr), BenchError> {
    start_broker_on(dir, &[])
}

/// [`start_broker`], its loopback listener configured further by `listener_conf` (TLS).
pub fn start_broker_with(
    dir: &Path,
    listener_conf: &str,
) -> Result<(BenchProc, SocketAddr), BenchError> {
    start_broker_conf(dir, &[], listener_conf)
}

/// [`start_broker`], listening on the same port at the addresses `also` besides loopback
/// (`cistern bench failover`: the host's end of a network namespace's link). Persistent
/// sessions (clean session off) are kept while the broker runs, with all their queued messages.
pub fn start_broker_on(
    dir: &Path,
    also: &[std::net::IpAddr],
) -> Result<(BenchProc, SocketAddr), BenchError> {
    start_broker_conf(dir, also, "")
}

fn start_broker_conf(
    dir: &Path,
    also: &[std::net::IpAddr],
    listener_conf: &str,
) -> Result<(BenchProc, SocketAddr), BenchError> {
    let exe = mosquitto()?;
    let port = free_port()?;
    let conf = dir.join("mosquitto.conf");
    let mut listeners = format!("listener {port} 127.0.0.1\n{listener_conf}");
    for ip in also {
        listeners.push_str(&format!("listener {port} {ip}\n"));
    }
    std::fs::write(
        &conf,
        format!(
            "{listeners}allow_anonymous true\npersistence false\n\
             max_inflight_messages 0\nmax_queued_messages 0\nmax_queued_bytes 0\n\
             log_dest stderr\nlog_type error\nlog_type warning\nlog_type notice\n"
        ),
    )
    .map_err(|source| BenchError::Io {
        what: format!("write {}", conf.display()),
        source,
    })?;
    let mut command = Command::new(exe);
    command.arg("-c").arg(&conf);
    let proc = BenchProc::spawn("broker", command, dir.join("mosquitto.log"))?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let end = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        if Instant::now() >= end {
            return Err(proc.failed("did not listen within 10 s".into()));
        }
        std::thread::park_timeout(Duration::from_millis(50));
    }
    Ok((proc, addr))
}

/// CPU time (user + system) a process has used so far.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / clock_ticks())
}

/// The kernel's clock ticks per second for /proc times (USER_HZ: 100 on Linux).
fn clock_ticks() -> f64 {
    100.0
}

/// Peak resident memory of a process, bytes (VmHWM).
pub fn peak_rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
