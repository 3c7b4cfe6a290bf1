//! The wire types of the WebSocket protocol (schemas/json/ws/PROTOCOL.md): what clients send,
//! what the server sends. Client messages are parsed strictly (unknown fields are errors) so
//! that a misspelt field never passes silently; the server's messages are pinned by the JSON
//! Schemas in schemas/json/ws/ and by the golden frames beside them (see the tests). Every
//! frame is a serde type: no JSON is assembled by hand.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::sync::Arc;
use std::time::Duration;

/// Every message a client may send.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMessage {
    Auth {
        token: String,
        #[serde(default)]
        resume: Option<String>,
    },
    Subscribe {
        id: String,
        topic: String,
        #[serde(default)]
        filter: serde_json::Value,
        #[serde(default)]
        since: Option<u64>,
    },
    Unsubscribe {
        id: String,
    },
    Ping {
        #[serde(default)]
        id: Option<String>,
    },
    /// An alarm command (`alarm`, `comment`, `reason`, `for`, `until`) or a set-point write
    /// (`command: "setpoint"`, `room`, `writes`); the session refuses a mix of the two.
    Command {
        id: String,
        command: String,
        #[serde(default)]
        alarm: Option<String>,
        #[serde(default)]
        room: Option<String>,
        #[serde(default)]
        writes: Option<Vec<crate::api::setpoints::SetpointWrite>>,
        #[serde(default)]
        comment: String,
        #[serde(default)]
        reason: Option<String>,
        #[serde(default, rename = "for", with = "humantime_serde")]
        duration: Option<Duration>,
        #[serde(default)]
        until: Option<i64>,
    },
}

impl ClientMessage {
    /// Parses a text frame of an authenticated session; a frame that is not a client message
    /// gives the `bad_message` error to answer, with the frame's `id` when it had one (to say
    /// which request failed).
    pub fn parse(text: &str) -> Result<Self, ServerMessage> {
        serde_json::from_str::<ClientMessage>(text).map_err(|e| {
            let id = serde_json::from_str::<serde_json::Value>(text)
                .ok()
                .and_then(|v| v.get("id").and_then(|i| i.as_str()).map(str::to_owned));
            ServerMessage::error(id.as_deref(), "bad_message", e.to_string())
        })
    }

    /// The client's id of the message, echoed in an error about it.
    pub fn id(&self) -> Option<&str> {
        match self {
            ClientMessage::Auth { .. } => None,
            ClientMessage::Subscribe { id, .. }
            | ClientMessage::Unsubscribe { id }
            | ClientMessage::Command { id, .. } => Some(id),
            ClientMessage::Ping { id } => id.as_deref(),
        }
    }
}

/// The limits a client is told at authentication.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Limits {
    pub max_message_bytes: usize,
    pub max_subscriptions: usize,
    pub replay: usize,
    pub resume_window_ms: u64,
}

/// A subscription a resumed session holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HeldSubscription {
    pub id: String,
    pub topic: &'static str,
    pub seq: u64,
}

/// The server's messages that are built whole, once per recipient (answers and errors).
/// Snapshots and deltas are [`SubscriptionFrame`]s instead, written around data serialised
/// once for every subscriber.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    AuthOk {
        user: String,
        role: crate::auth::Role,
        session: String,
        resumed: bool,
        subscriptions: Vec<HeldSubscription>,
        limits: Limits,
    },
    Unsubscribed {
        id: String,
    },
    Pong {
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        time: i64,
    },
    Result {
        id: String,
        ok: bool,
        data: serde_json::Value,
    },
    Error {
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        code: &'static str,
        message: String,
    },
}

impl ServerMessage {
    pub fn error(id: Option<&str>, code: &'static str, message: impl Into<String>) -> Self {
        ServerMessage::Error {
            id: id.map(str::to_owned),
            code,
            message: message.into(),
        }
    }

    /// The message as a text frame.
    pub fn to_text(&self) -> String {
        to_text(self)
    }
}

/// A subscription's `data`, serialised once and shared by every subscriber's frames (the hub
/// fans one change out to many sessions; only the envelope is written per session).
pub type Data = Arc<RawValue>;

/// Serialises a topic's data (see [`super::topics`] for the shapes) once, for sharing.
pub fn data(value: &impl Serialize) -> Data {
    match serde_json::value::to_raw_value(value) {
        Ok(raw) => Arc::from(raw),
        Err(error) => {
            // Only a map with non-string keys or a failing custom impl can get here: the
            // types of topics.rs have neither. Logged, and `null` keeps the frame valid JSON.
            tracing::error!(%error, "websocket data could not be serialised");
            Arc::from(RawValue::NULL.to_owned())
        }
    }
}

/// The frames of a subscription: its snapshot and its deltas (PROTOCOL.md §2-3). The envelope
/// is per session (its id, its `seq`); `data` is the shared, pre-serialised [`Data`].
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SubscriptionFrame<'a> {
    Snapshot {
        id: &'a str,
        topic: &'static str,
        seq: u64,
        resync: bool,
        data: &'a RawValue,
    },
    Delta {
        id: &'a str,
        seq: u64,
        key: &'a str,
        conflated: u32,
        data: &'a RawValue,
    },
}

impl SubscriptionFrame<'_> {
    /// The frame as a text frame.
    pub fn to_text(&self) -> String {
        to_text(self)
    }
}

fn to_text(message: &impl Serialize) -> String {
    // Serialising these types cannot fail (string keys, no maps with non-string keys, raw
    // values already checked); an empty object is the harmless fallback.
    serde_json::to_string(message).unwrap_or_else(|error| {
        tracing::error!(%error, "websocket frame could not be serialised");
        "{}".to_owned()
    })
}

/// Close codes (RFC 6455 and the application range).
pub mod close {
    pub const NORMAL: u16 = 1000;
    pub const GOING_AWAY: u16 = 1001;
    pub const POLICY: u16 = 1008;
    pub const TOO_BIG: u16 = 1009;
    pub const INTERNAL: u16 = 1011;
    pub const TRY_AGAIN: u16 = 1013;
    /// The client stopped reading.
    pub const STALLED: u16 = 4000;
}
