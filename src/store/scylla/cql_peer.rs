//! A CQL peer for the ScyllaDB backend's smoke tests: kassandra (an in-memory, single-node CQL
//! engine) served over the real native protocol (v4) on 127.0.0.1, port 0, by this small
//! accept loop — frame in, kassandra, frame out. The driver under test is the real `scylla`
//! driver with its real connection set-up (OPTIONS, STARTUP, topology from `system.local` and
//! `system.peers`, REGISTER, USE, schema agreement), so what passes here passed over a socket.
//!
//! kassandra is faithful for: CREATE KEYSPACE/TABLE, USE, prepared INSERT, SELECT by a full
//! partition key (rows in clustering order), DELETE by a full primary key, paging, batches.
//! It parses a statement only up to what it understands and ignores the rest, so it silently
//! ignores clustering-key ranges, ORDER BY, LIMIT ?, USING TTL and IF conditions; a statement
//! with a bind marker in such a trailing part gets prepared metadata with fewer markers than the
//! driver sends values for, and the driver refuses to execute it. The smoke tests therefore use
//! only whole-partition reads (see the module doc of `tests`). The store writes its TTLs as
//! literals (`USING TTL 2592000`), so its INSERTs run here unchanged (the TTL ignored).
//!
//! What the driver needs at connection time and kassandra gets wrong, worked around here:
//! - the driver prepares `SELECT … FROM system.local WHERE key='local'`, whose literal kassandra
//!   counts as a bind marker; the peer prepares it without the condition ([`adapt_prepare`]).
//! - a driver restricted to some keyspaces (`keyspaces_to_fetch`) reads the schema tables with
//!   `WHERE keyspace_name IN ?`, which kassandra cannot parse, and then knows no data centre;
//!   the store does not restrict it (and fetches only the light schema metadata), so no
//!   workaround is needed. Everything else of the driver's start-up (OPTIONS, STARTUP,
//!   REGISTER, `system.peers`, `system_schema` reads, USE, schema agreement) works as is.

use futures::{SinkExt, StreamExt};
use kassandra::error::DbError;
use kassandra::frame::request::{Request, RequestOpcode};
use kassandra::frame::response::error::Error as KassandraError;
use kassandra::frame::response::Response;
use kassandra::frame::{request_stream, response_sink};
use kassandra::KassandraSession;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A running peer; dropping it stops the accept loop and its connections.
#[derive(Debug)]
pub struct CqlPeer {
    addr: SocketAddr,
    accept: JoinHandle<()>,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
    /// Requests received, by opcode: lets a test check what went over the wire.
    counts: Arc<Mutex<BTreeMap<RequestOpcode, usize>>>,
}

impl CqlPeer {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let engine = Arc::new(Mutex::new(KassandraSession::new()));
        let connections: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let counts: Arc<Mutex<BTreeMap<RequestOpcode, usize>>> = Arc::default();
        let tasks = connections.clone();
        let counted = counts.clone();
        let accept = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let task = tokio::spawn(serve(stream, engine.clone(), counted.clone()));
                tasks.lock().unwrap().push(task);
            }
        });
        Self {
            addr,
            accept,
            connections,
            counts,
        }
    }

    /// How many requests of this kind the peer has received so far.
    pub fn requests(&self, opcode: RequestOpcode) -> usize {
        self.counts
            .lock()
            .unwrap()
            .get(&opcode)
            .copied()
            .unwrap_or(0)
    }

    /// The contact point, `127.0.0.1:port`.
    pub fn node(&self) -> String {
        self.addr.to_string()
    }
}

impl Drop for CqlPeer {
    fn drop(&mut self) {
        self.accept.abort();
        if let Ok(tasks) = self.connections.lock() {
            for task in tasks.iter() {
                task.abort();
            }
        }
    }
}

/// One client connection: requests are answered in order, each with its stream id.
async fn serve(
    mut stream: TcpStream,
    engine: Arc<Mutex<KassandraSession>>,
    counts: Arc<Mutex<BTreeMap<RequestOpcode, usize>>>,
) {
    let (read, write) = stream.split();
    let mut requests = request_stream(read);
    let mut responses = response_sink(write);
    while let Some(Ok((frame, opcode, body))) = requests.next().await {
        *counts.lock().unwrap().entry(opcode).or_default() += 1;
        let body = if opcode == RequestOpcode::Prepare {
            adapt_prepare(body)
        } else {
            body
        };
        let response = match Request::deserialize(opcode, &body, frame.flags) {
            Ok(request) => answer(&engine, request),
            Err(error) => Response::Error(error),
        };
        if responses.send((response, frame.stream)).await.is_err() {
            break;
        }
    }
}

/// The driver prepares `SELECT … FROM system.local WHERE key='local'` to read the node's
/// topology; kassandra counts the literal as a bind marker, and the driver then refuses to run
/// the statement with no values. `system.local` has that one row only, so the peer prepares the
/// same read without the condition. Body of a v4 PREPARE: the statement as a `[long string]`.
fn adapt_prepare<B: AsRef<[u8]> + From<Vec<u8>>>(body: B) -> B {
    const LOCAL_ROW: &str = " WHERE key='local'";
    let text = body
        .as_ref()
        .get(4..)
        .and_then(|t| std::str::from_utf8(t).ok())
        .filter(|t| t.contains("FROM system.local") && t.contains(LOCAL_ROW));
    let Some(text) = text else {
        return body;
    };
    let text = text.replace(LOCAL_ROW, "");
    let mut out = Vec::with_capacity(4 + text.len());
    out.extend_from_slice(&(text.len() as i32).to_be_bytes());
    out.extend_from_slice(text.as_bytes());
    B::from(out)
}

fn answer(engine: &Mutex<KassandraSession>, request: Request<'_>) -> Response {
    let mut engine = engine.lock().unwrap();
    let result = match request {
        Request::StartUp(_) | Request::Register { .. } => return Response::Ready,
        Request::Options => return Response::options(),
        Request::Query(query) => engine.process(query),
        Request::Prepare(query) => engine.prepare(query),
        Request::Execute(execute) => engine.execute(execute),
        Request::Batch(batch) => engine.process_batch(batch),
        Request::AuthResponse => Err(KassandraError::new(
            DbError::ProtocolError,
            "authentication is not supported by this test peer",
        )),
    };
    match result {
        Ok(result) => Response::Result(result),
        Err(error) => Response::Error(error),
    }
}
