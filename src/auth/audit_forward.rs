//! `[audit.forward]`: a copy of every audit entry for a central log store — syslog (RFC 5424
//! over UDP, or TCP with octet-counted framing, RFC 6587 §3.4.1) and/or a JSON-lines file.
//!
//! Recording never waits on a destination: each has a bounded queue fed with `try_send` and a
//! task of its own on the I/O runtime. A full queue drops the new entry; a destination that
//! fails is reconnected (reopened) with a growing pause, and the entry in hand is dropped after
//! a second failure. Drops are counted (`cistern_audit_forward_dropped_total{sink}`) and
//! logged at most once a minute per destination; deliveries are counted
//! (`cistern_audit_forwarded_total{sink}`). The store keeps every entry whatever happens here;
//! a copy elsewhere is what catches someone who rewrote the whole store (see
//! [`super::audit_chain`]).

use super::audit::{AuditEntry, AuditMetrics};
use super::audit_config::{AuditConfigError, ForwardConfig, SyslogFormat, SyslogTarget};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

/// The structured-data id of the entries (32473: the private enterprise number RFC 5612
/// reserves for documentation; a site with its own may change it when it matters).
pub const SD_ID: &str = "cistern@32473";

/// Longest UDP datagram sent (RFC 5424 §6.1 lets receivers truncate beyond 2048 anyway).
const UDP_MAX: usize = 8_192;
/// Network writes give up after this.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest pause between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Where entries go, started by [`super::AuditLog::forward_to`].
#[derive(Debug)]
pub struct Forwarder {
    sinks: Vec<Sink>,
}

#[derive(Debug)]
struct Sink {
    name: &'static str,
    tx: mpsc::Sender<AuditEntry>,
    metrics: AuditMetrics,
    last_warned_ms: Arc<AtomicI64>,
}

/// Logs a drop at most once a minute per destination.
fn warn_drop(name: &str, last: &AtomicI64, why: &str) {
    let now = cistern_schemas::Timestamp::now().as_millis();
    let before = last.load(Ordering::Relaxed);
    if now - before >= 60_000
        && last
            .compare_exchange(before, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        tracing::warn!(
            sink = name,
            "audit entries not forwarded: {why} (counted in cistern_audit_forward_dropped_total)"
        );
    }
}

impl Forwarder {
    /// Starts the configured destinations (none configured: `None`).
    pub fn start(
        config: &ForwardConfig,
        io: &tokio::runtime::Handle,
        metrics: AuditMetrics,
    ) -> Result<Option<Self>, AuditConfigError> {
        let target = config.syslog_target()?;
        let facility = config.facility_code()?;
        if config.queue == 0 {
            return Err(AuditConfigError::Queue);
        }
        let mut sinks = Vec::new();
        let mut sink = |name: &'static str| {
            let (tx, rx) = mpsc::channel(config.queue);
            let last_warned_ms = Arc::new(AtomicI64::new(i64::MIN / 2));
            sinks.push(Sink {
                name,
                tx,
                metrics: metrics.clone(),
                last_warned_ms: last_warned_ms.clone(),
            });
            (rx, last_warned_ms)
        };
        if let Some(target) = target {
            let (rx, warned) = sink("syslog");
            let syslog = Syslog {
                target,
                facility,
                app_name: printable(&config.app_name, 48),
                hostname: printable(&hostname(), 255),
                format: config.format,
            };
            io.spawn(deliver(
                Destination::Syslog(syslog),
                rx,
                metrics.clone(),
                warned,
            ));
        }
        if let Some(path) = &config.file {
            let (rx, warned) = sink("file");
            io.spawn(deliver(
                Destination::File(path.clone()),
                rx,
                metrics.clone(),
                warned,
            ));
        }
        Ok((!sinks.is_empty()).then_some(Self { sinks }))
    }

    /// Queues `e` for every destination (never waits).
    pub fn send(&self, e: &AuditEntry) {
        for s in &self.sinks {
            if let Err(err) = s.tx.try_send(e.clone()) {
                s.metrics.forward_dropped.with_label_values(&[s.name]).inc();
                let why = match err {
                    mpsc::error::TrySendError::Full(_) => "the queue is full",
                    mpsc::error::TrySendError::Closed(_) => "the forwarding task stopped",
                };
                warn_drop(s.name, &s.last_warned_ms, why);
            }
        }
    }
}

/// The machine's name for HOSTNAME (`-` when unknown).
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "-".to_owned())
}

/// A header field: printable US-ASCII without spaces, at most `max` characters (`-` if none).
fn printable(s: &str, max: usize) -> String {
    let out: String = s
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(max)
        .collect();
    if out.is_empty() {
        "-".to_owned()
    } else {
        out
    }
}

/// A structured-data parameter value (RFC 5424 §6.3.3: `"`, `\` and `]` escaped).
fn sd_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn rfc3339(ms: i64) -> String {
    let at = std::time::UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_millis(at).to_string()
}

/// How syslog messages are made and where they go.
#[derive(Debug, Clone)]
struct Syslog {
    target: SyslogTarget,
    facility: u8,
    app_name: String,
    hostname: String,
    format: SyslogFormat,
}

impl Syslog {
    /// One RFC 5424 message for `e`: notice (5) when it took effect, warning (4) when not.
    fn message(&self, e: &AuditEntry) -> String {
        let severity = if e.ok { 5 } else { 4 };
        let pri = u16::from(self.facility) * 8 + severity;
        let head = format!(
            "<{pri}>1 {} {} {} {} {}",
            rfc3339(e.at_ms),
            self.hostname,
            self.app_name,
            std::process::id(),
            printable(&e.action, 32),
        );
        match self.format {
            SyslogFormat::Json => {
                format!("{head} - {}", serde_json::to_string(e).unwrap_or_default())
            }
            SyslogFormat::Sd => {
                let params = [
                    ("seq", e.seq.map(|s| s.to_string()).unwrap_or_default()),
                    ("source", e.source.clone()),
                    ("user", e.user.clone()),
                    ("category", e.category.clone()),
                    ("action", e.action.clone()),
                    ("object", e.target.clone()),
                    ("result", e.result.clone()),
                    ("hash", e.hash.clone()),
                ];
                let sd: String = params
                    .iter()
                    .map(|(k, v)| format!(" {k}=\"{}\"", sd_value(v)))
                    .collect();
                // MSG in UTF-8 with its BOM (RFC 5424 §6.4).
                format!(
                    "{head} [{SD_ID}{sd}] \u{feff}{} {} {} {}: {}",
                    e.user, e.action, e.target, e.result, e.detail
                )
            }
        }
    }
}

/// An open destination.
enum Conn {
    Udp(tokio::net::UdpSocket),
    Tcp(tokio::net::TcpStream),
    File(tokio::fs::File),
}

impl Conn {
    async fn open(target: &SyslogTarget) -> std::io::Result<Self> {
        let timed = |r: Result<std::io::Result<Self>, tokio::time::error::Elapsed>| {
            r.unwrap_or_else(|_| {
                Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "syslog connect timed out",
                ))
            })
        };
        match target {
            SyslogTarget::Udp(addr) => timed(
                tokio::time::timeout(IO_TIMEOUT, async {
                    let peer = tokio::net::lookup_host(addr.as_str())
                        .await?
                        .next()
                        .ok_or_else(|| std::io::Error::other("no address"))?;
                    let local = if peer.is_ipv4() {
                        "0.0.0.0:0"
                    } else {
                        "[::]:0"
                    };
                    let s = tokio::net::UdpSocket::bind(local).await?;
                    s.connect(peer).await?;
                    Ok(Conn::Udp(s))
                })
                .await,
            ),
            SyslogTarget::Tcp(addr) => timed(
                tokio::time::timeout(IO_TIMEOUT, async {
                    let s = tokio::net::TcpStream::connect(addr.as_str()).await?;
                    s.set_nodelay(true)?;
                    Ok(Conn::Tcp(s))
                })
                .await,
            ),
        }
    }

    async fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let write = async {
            match self {
                Conn::Udp(s) => s.send(&bytes[..bytes.len().min(UDP_MAX)]).await.map(|_| ()),
                Conn::Tcp(s) => {
                    // Octet counting: "LEN SP MSG" (RFC 6587 §3.4.1).
                    let mut framed = format!("{} ", bytes.len()).into_bytes();
                    framed.extend_from_slice(bytes);
                    s.write_all(&framed).await
                }
                Conn::File(f) => {
                    f.write_all(bytes).await?;
                    f.flush().await
                }
            }
        };
        tokio::time::timeout(IO_TIMEOUT, write)
            .await
            .unwrap_or_else(|_| {
                Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "audit destination write timed out",
                ))
            })
    }
}

/// Where one queue's entries go.
#[derive(Debug, Clone)]
enum Destination {
    Syslog(Syslog),
    /// A JSON-lines file.
    File(std::path::PathBuf),
}

impl Destination {
    fn name(&self) -> &'static str {
        match self {
            Destination::Syslog(_) => "syslog",
            Destination::File(_) => "file",
        }
    }

    /// What is written for `e`.
    fn bytes(&self, e: &AuditEntry) -> Vec<u8> {
        match self {
            Destination::Syslog(s) => s.message(e).into_bytes(),
            Destination::File(_) => {
                let mut line = serde_json::to_vec(e).unwrap_or_default();
                line.push(b'\n');
                line
            }
        }
    }

    async fn open(&self) -> std::io::Result<Conn> {
        match self {
            Destination::Syslog(s) => Conn::open(&s.target).await,
            Destination::File(path) => tokio::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .await
                .map(Conn::File),
        }
    }
}

/// Sends each queued entry to `to`: (re)connecting with a growing pause, one retry on a fresh
/// connection, then the entry is dropped (counted, logged at most once a minute).
async fn deliver(
    to: Destination,
    mut rx: mpsc::Receiver<AuditEntry>,
    metrics: AuditMetrics,
    warned: Arc<AtomicI64>,
) {
    let name = to.name();
    let delivered = metrics.forwarded.with_label_values(&[name]);
    let dropped = metrics.forward_dropped.with_label_values(&[name]);
    let mut conn: Option<Conn> = None;
    let mut backoff = Duration::from_millis(200);
    while let Some(e) = rx.recv().await {
        let bytes = to.bytes(&e);
        let mut sent = false;
        for _attempt in 0..2 {
            if conn.is_none() {
                match to.open().await {
                    Ok(c) => {
                        conn = Some(c);
                        backoff = Duration::from_millis(200);
                    }
                    Err(error) => {
                        tracing::debug!(%error, sink = name, "audit destination unreachable");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                        continue;
                    }
                }
            }
            if let Some(c) = &mut conn {
                match c.send(&bytes).await {
                    Ok(()) => {
                        sent = true;
                        break;
                    }
                    Err(error) => {
                        tracing::debug!(%error, sink = name, "audit destination write failed; reconnecting");
                        conn = None;
                    }
                }
            }
        }
        if sent {
            delivered.inc();
        } else {
            dropped.inc();
            warn_drop(name, &warned, "the destination cannot be written");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_follow_rfc_5424() {
        let s = Syslog {
            target: SyslogTarget::Udp("127.0.0.1:514".into()),
            facility: 10,
            app_name: "cistern".into(),
            hostname: "host".into(),
            format: SyslogFormat::Sd,
        };
        let mut e = AuditEntry::now("op\"1", "alarm_ack", "XM-0001/a]b", "note", false);
        e.at_ms = 0;
        e.source = "10.0.0.9".into();
        let m = s.message(&e);
        // authpriv (10) × 8 + warning (4)
        assert!(
            m.starts_with("<84>1 1970-01-01T00:00:00.000Z host cistern "),
            "{m}"
        );
        assert!(
            m.contains(" alarm_ack [cistern@32473 seq=\"\" source=\"10.0.0.9\" user=\"op\\\"1\""),
            "{m}"
        );
        assert!(m.contains("object=\"XM-0001/a\\]b\""), "{m}");
        let json = Syslog {
            format: SyslogFormat::Json,
            ..s
        }
        .message(&e);
        let body = json.split_once(" - ").unwrap().1;
        assert_eq!(serde_json::from_str::<AuditEntry>(body).unwrap(), e);
    }
}
