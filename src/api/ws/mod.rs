//! The WebSocket push API, `GET /ws` (protocol: schemas/json/ws/PROTOCOL.md).
//!
//! ```text
//! actors ──LiveFeed (never blocks)──▶ HubFeed ──drain──▶ hub task ──push──▶ Client queue ──▶ writer ──▶ socket
//!                                                          ▲                                 reader ◀── socket
//!                                            subscribe/unsubscribe (bounded channel) ─────────┘
//! ```
//!
//! - [`feed`]: the actors' port adapter; conflates by key, wakes the hub.
//! - [`hub`]: one task owning the dashboards' model (fleet summary, alarm mirror, watched rooms,
//!   recent events) and every route; snapshots and deltas are made there, in order.
//! - [`client`]: a session's subscriptions, sequence numbers, replay rings and its bounded,
//!   conflating outgoing queue; survives its socket for the resume window.
//! - [`session`]: one socket's reader and writer; stalls and bad input end there.
//! - [`inbound`]: the client's frames as messages, fragments joined under the size limit.
//! - [`topics`], [`protocol`]: the wire shapes, all serde types (no JSON assembled by hand).
//!
//! Backpressure, edge by edge: actors → feed: a map insert under a short lock, never a wait
//! (latest value per key wins; alarm events bounded, overflow counted and re-snapshotted).
//! Feed → hub: drained in batches. Hub → client: a map insert, never a wait; a full queue drops
//! that subscription's pending updates (counted) and re-snapshots it (`resync: true`). Client
//! → socket: the writer waits on its own socket only, at most `stall_timeout`.

pub mod client;
pub mod feed;
pub mod hub;
pub mod inbound;
pub mod metrics;
pub mod protocol;
pub mod session;
pub mod topics;

#[cfg(test)]
mod tests;

pub use feed::HubFeed;
pub use hub::HubHandle;
pub use metrics::WsMetrics;

use super::ApiState;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use std::time::Duration;
use tokio::sync::watch;

/// `[ws]`: the WebSocket API's limits.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct WsConfig {
    /// Sockets the node holds at most; more are refused (close 1013).
    pub max_clients: usize,
    /// Subscriptions per connection.
    pub max_subscriptions: usize,
    /// The largest client message; a larger frame closes the socket (1009).
    pub max_message_bytes: usize,
    /// Points in one `points` subscription.
    pub max_points: usize,
    /// Pending (unsent) updates per client before a subscription is re-snapshotted.
    pub queue_keys: usize,
    /// Sent deltas kept per subscription for a resume.
    pub replay: usize,
    /// How long a session outlives its socket (for a resume).
    #[serde(with = "humantime_serde")]
    pub resume_window: Duration,
    /// A socket that accepts nothing (or answers no ping) this long is closed (4000 stalled).
    #[serde(with = "humantime_serde")]
    pub stall_timeout: Duration,
    /// The first message (`auth`) must arrive within this.
    #[serde(with = "humantime_serde")]
    pub auth_timeout: Duration,
    /// WebSocket-level pings this often.
    #[serde(with = "humantime_serde")]
    pub heartbeat: Duration,
}

impl Default for WsConfig {
    fn default() -> Self {
        Self {
            max_clients: 1000,
            max_subscriptions: 64,
            max_message_bytes: 64 * 1024,
            max_points: 256,
            queue_keys: 4096,
            replay: 512,
            resume_window: Duration::from_secs(120),
            stall_timeout: Duration::from_secs(30),
            auth_timeout: Duration::from_secs(10),
            heartbeat: Duration::from_secs(15),
        }
    }
}

/// What `GET /ws` needs: the hub, and a signal that closes every socket at shutdown.
#[derive(Debug, Clone)]
pub struct WsApi {
    pub hub: HubHandle,
    pub shutdown: watch::Receiver<bool>,
}

/// `GET /ws`: upgrades and hands the socket to its own task.
pub async fn upgrade(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, actix_web::Error> {
    let Some(ws) = state.ws.clone() else {
        return Ok(HttpResponse::NotFound().json(serde_json::json!({
            "error": {"code": "not_found", "message": "this node serves no WebSocket API"}
        })));
    };
    let (response, session, stream) = actix_ws::handle(&req, body)?;
    let stream = inbound::InboundStream::new(stream, ws.hub.config.max_message_bytes);
    // What the socket's commands audit comes from this peer.
    let source = req
        .peer_addr()
        .map_or_else(|| "unknown".to_owned(), |a| a.ip().to_string());
    actix_web::rt::spawn(crate::auth::audit::REQUEST_SOURCE.scope(
        source,
        session::run(ws.hub, state.into_inner(), session, stream, ws.shutdown),
    ));
    Ok(response)
}
