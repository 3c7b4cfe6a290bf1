//! The benchmark's WebSocket clients: dashboards on the fleet summary and the alarm list, and
//! room screens on single rooms, each on a thread of its own reading as fast as it can. A room
//! client measures, for every delta, the time from its newest sample's timestamp (the gateway
//! stamps a reading when it publishes it) to the delta's arrival on the socket.

use super::BenchError;
use serde_json::{json, Value};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// What one client saw.
#[derive(Debug, Default)]
pub struct ClientTally {
    pub messages: u64,
    /// Publish-to-socket latency of each room delta (its newest sample), milliseconds.
    pub latencies_ms: Vec<u32>,
    /// Messages with a `seq` that did not follow the previous one of their subscription.
    pub gaps: u64,
    pub error: Option<String>,
}

/// Running clients; [`WsClients::stop`] ends them and sums what they saw.
#[derive(Debug)]
pub struct WsClients {
    stop: Arc<AtomicBool>,
    measuring: Arc<AtomicBool>,
    threads: Vec<JoinHandle<ClientTally>>,
}

/// Which screens the clients show.
#[derive(Clone, Debug)]
enum Screen {
    Dashboard,
    Room(String),
}

impl WsClients {
    /// Connects `clients` clients: 50 dashboards (or all of them when fewer), the rest on the
    /// first rooms of the fleet. Each is authenticated and subscribed before this returns.
    pub fn start(
        http: SocketAddr,
        tls: Option<Arc<rustls::ClientConfig>>,
        token: &str,
        clients: usize,
        rooms: &[String],
    ) -> Result<Self, BenchError> {
        let stop = Arc::new(AtomicBool::new(false));
        let measuring = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        for i in 0..clients {
            let screen = if i < DASHBOARDS || rooms.is_empty() {
                Screen::Dashboard
            } else {
                Screen::Room(rooms[(i - DASHBOARDS) % rooms.len()].clone())
            };
            let socket = connect(http, tls.clone(), token, &screen)?;
            let stop = stop.clone();
            let measuring = measuring.clone();
            threads.push(std::thread::spawn(move || {
                read_loop(socket, &stop, &measuring)
            }));
        }
        Ok(Self {
            stop,
            measuring,
            threads,
        })
    }

    /// From now on, count messages and latencies (the window starts).
    pub fn measure(&self) {
        self.measuring.store(true, Ordering::Relaxed);
    }

    /// Stops counting (the window ends), stops every client and returns their tallies.
    pub fn stop(self) -> Vec<ClientTally> {
        self.measuring.store(false, Ordering::Relaxed);
        self.stop.store(true, Ordering::Relaxed);
        self.threads
            .into_iter()
            .map(|t| {
                t.join().unwrap_or_else(|_| ClientTally {
                    error: Some("client thread panicked".into()),
                    ..ClientTally::default()
                })
            })
            .collect()
    }
}

/// Clients on the fleet summary and alarms (DOMAIN.md §6: 50 dashboards).
const DASHBOARDS: usize = 50;

type Socket = tungstenite::WebSocket<Conn>;

/// A client's connection: plain TCP, or TLS over it (`--tls`).
enum Conn {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Conn {
    fn tcp(&self) -> &TcpStream {
        match self {
            Self::Plain(s) => s,
            Self::Tls(s) => s.get_ref(),
        }
    }
}

impl std::io::Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Self::Plain(s) => s.read(buf),
            Self::Tls(s) => s.read(buf),
        }
    }
}

impl std::io::Write for Conn {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Self::Plain(s) => s.write(buf),
            Self::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Self::Plain(s) => s.flush(),
            Self::Tls(s) => s.flush(),
        }
    }
}

fn connect(
    http: SocketAddr,
    tls: Option<Arc<rustls::ClientConfig>>,
    token: &str,
    screen: &Screen,
) -> Result<Socket, BenchError> {
    let err = |what: &str, e: String| BenchError::WebSocket(format!("{what}: {e}"));
    let stream = TcpStream::connect_timeout(&http, Duration::from_secs(10))
        .map_err(|e| err("connect", e.to_string()))?;
    let _ = stream.set_nodelay(true);
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| err("configure", e.to_string()))?;
    let (conn, url) = match tls {
        Some(config) => {
            let name = rustls::pki_types::ServerName::IpAddress(http.ip().into());
            let session = rustls::ClientConnection::new(config, name)
                .map_err(|e| err("TLS", e.to_string()))?;
            (
                Conn::Tls(Box::new(rustls::StreamOwned::new(session, stream))),
                format!("wss://{http}/ws"),
            )
        }
        None => (Conn::Plain(stream), format!("ws://{http}/ws")),
    };
    let (mut socket, _) =
        tungstenite::client(url, conn).map_err(|e| err("upgrade", e.to_string()))?;
    let mut send = |v: Value| {
        socket
            .send(tungstenite::Message::Text(v.to_string()))
            .map_err(|e| err("send", e.to_string()))
    };
    send(json!({"type": "auth", "token": token}))?;
    let subscriptions = match screen {
        Screen::Dashboard => vec![
            json!({"type": "subscribe", "id": "fleet", "topic": "fleet", "filter": {}}),
            json!({"type": "subscribe", "id": "alarms", "topic": "alarms", "filter": {}}),
        ],
        Screen::Room(room) => vec![
            json!({"type": "subscribe", "id": "room", "topic": "room", "filter": {"room": room}}),
        ],
    };
    for s in &subscriptions {
        send(s.clone())?;
    }
    // auth_ok, then one snapshot per subscription.
    let mut snapshots = 0;
    while snapshots < subscriptions.len() {
        let msg = socket.read().map_err(|e| err("read", e.to_string()))?;
        let tungstenite::Message::Text(text) = msg else {
            continue;
        };
        let v: Value = serde_json::from_str(&text).map_err(|e| err("parse", e.to_string()))?;
        match v["type"].as_str() {
            Some("snapshot") => snapshots += 1,
            Some("error") => return Err(err("refused", text)),
            _ => {}
        }
    }
    socket
        .get_ref()
        .tcp()
        .set_read_timeout(Some(Duration::from_millis(200)))
        .map_err(|e| err("configure", e.to_string()))?;
    Ok(socket)
}

fn read_loop(mut socket: Socket, stop: &AtomicBool, measuring: &AtomicBool) -> ClientTally {
    let mut tally = ClientTally::default();
    let mut last_seq: std::collections::HashMap<String, u64> = Default::default();
    while !stop.load(Ordering::Relaxed) {
        let msg = match socket.read() {
            Ok(m) => m,
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(e) => {
                tally.error = Some(e.to_string());
                break;
            }
        };
        let now = cistern_schemas::Timestamp::now().0;
        let tungstenite::Message::Text(text) = msg else {
            continue;
        };
        let Ok(v) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        if let (Some(id), Some(seq)) = (v["id"].as_str(), v["seq"].as_u64()) {
            if let Some(prev) = last_seq.insert(id.to_owned(), seq) {
                if v["type"] == "delta" && seq != prev + 1 {
                    tally.gaps += 1;
                }
            }
        }
        if !measuring.load(Ordering::Relaxed) {
            continue;
        }
        tally.messages += 1;
        let data = &v["data"];
        let points = data["device"]["points"]
            .as_array()
            .or_else(|| data["room"]["points"].as_array());
        // The delta was sent for its newest sample: the device's other points may be older.
        let newest = points
            .into_iter()
            .flatten()
            .filter_map(|p| p["t"].as_i64())
            .max();
        if let Some(t) = newest {
            tally
                .latencies_ms
                .push((now - t).clamp(0, u32::MAX as i64) as u32);
        }
    }
    let _ = socket.close(None);
    tally
}
