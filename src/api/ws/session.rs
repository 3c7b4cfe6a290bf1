//! One socket: authentication, then a reader and a writer running side by side.
//!
//! The reader parses client messages strictly and answers every bad one with an `error` (only
//! a failed authentication or an oversized frame closes the socket). The writer takes frames
//! from the session's queue ([`Client`]) and sends them; when the socket accepts nothing for
//! `stall_timeout`, or the client answers no ping for that long, it gives up and the socket is
//! closed with code 4000 `stalled`. Neither ever blocks the hub or another client: a slow
//! socket only makes its own session's updates conflate.

use super::client::{Client, Refused};
use super::hub::{HubCommand, HubHandle};
use super::inbound::{Inbound, InboundError, InboundStream};
use super::protocol::{close, ClientMessage, Limits, ServerMessage};
use super::topics;
use crate::api::alarms::{execute, CommandRequest};
use crate::api::setpoints;
use crate::api::ApiState;
use crate::auth::{Principal, Role};
use actix_ws::{CloseCode, CloseReason, Session};
use cistern_schemas::RoomId;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How long a close frame may take to leave.
const CLOSE_WAIT: Duration = Duration::from_secs(1);
/// The longest subscription id.
const MAX_ID: usize = 64;

/// Why a socket ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Normal,
    Auth,
    TooLarge,
    Stalled,
    Error,
    Shutdown,
    /// A newer socket resumed the session.
    Replaced,
    /// The credential it authenticated with ended meanwhile (a login session idle, expired,
    /// ended or its user changed; an API token expired or revoked): the API error code, which
    /// is also the close frame's reason.
    Ended(&'static str),
}

impl End {
    fn label(self) -> &'static str {
        match self {
            End::Normal | End::Replaced => "normal",
            End::Auth | End::Ended(_) => "auth",
            End::TooLarge => "too_large",
            End::Stalled => "stalled",
            End::Error => "error",
            End::Shutdown => "shutdown",
        }
    }

    fn close(self) -> CloseReason {
        let (code, text) = match self {
            End::Normal => (CloseCode::Normal, "normal"),
            End::Replaced => (CloseCode::Normal, "session resumed elsewhere"),
            End::Auth => (CloseCode::Policy, "unauthorized"),
            End::Ended(code) => (CloseCode::Policy, code),
            End::TooLarge => (CloseCode::Size, "too_large"),
            End::Stalled => (CloseCode::Other(close::STALLED), "stalled"),
            End::Error => (CloseCode::Protocol, "protocol error"),
            End::Shutdown => (CloseCode::Away, "server shutting down"),
        };
        CloseReason {
            code,
            description: Some(text.to_owned()),
        }
    }
}

/// Serves one upgraded socket until it ends.
pub async fn run(
    hub: HubHandle,
    api: Arc<ApiState>,
    mut session: Session,
    stream: InboundStream,
    mut shutdown: watch::Receiver<bool>,
) {
    if !hub.admit() {
        let msg = ServerMessage::error(
            None,
            "too_many_clients",
            "the server holds its maximum of clients; try again later",
        );
        let _ = tokio::time::timeout(CLOSE_WAIT, session.text(msg.to_text())).await;
        let reason = CloseReason {
            code: CloseCode::Again,
            description: Some("too_many_clients".into()),
        };
        let _ = tokio::time::timeout(CLOSE_WAIT, session.close(Some(reason))).await;
        hub.metrics.disconnect("too_many_clients");
        return;
    }
    let end = tokio::select! {
        end = serve(&hub, &api, session.clone(), stream) => end,
        _ = shutdown.wait_for(|s| *s) => End::Shutdown,
    };
    hub.release();
    hub.metrics.disconnect(end.label());
    tracing::debug!(reason = end.label(), "websocket closed");
    let _ = tokio::time::timeout(CLOSE_WAIT, session.close(Some(end.close()))).await;
}

async fn serve(
    hub: &HubHandle,
    api: &Arc<ApiState>,
    mut session: Session,
    mut stream: InboundStream,
) -> End {
    let (principal, resume, token) = match authenticate(hub, api, &mut stream, &mut session).await {
        Ok(ok) => ok,
        Err((end, msg)) => {
            if let Some(msg) = msg {
                let _ = tokio::time::timeout(CLOSE_WAIT, session.text(msg.to_text())).await;
            }
            return end;
        }
    };
    let held = resume.and_then(|id| hub.sessions.get(&id).map(|c| c.clone()));
    if held.as_ref().is_some_and(|c| c.user != principal.user) {
        // Only its owner resumes a session (PROTOCOL.md §4): the same answer as a bad token,
        // which never says which part was wrong.
        tracing::warn!(user = %principal.user, "refused the resume of another user's session");
        if let Some(msg) = unauthorized().1 {
            let _ = tokio::time::timeout(CLOSE_WAIT, session.text(msg.to_text())).await;
        }
        return End::Auth;
    }
    let (client, resumed) = match held {
        Some(c) => (c, true),
        None => {
            let id = format!("s-{:016x}", rand::random::<u64>());
            let c = Arc::new(Client::new(
                id.clone(),
                principal.user.clone(),
                hub.config.queue_keys,
                hub.config.replay,
                hub.metrics.clone(),
            ));
            hub.sessions.insert(id, c.clone());
            (c, false)
        }
    };
    let epoch = client.attach();
    let ok = ServerMessage::AuthOk {
        user: principal.user.clone(),
        role: principal.role,
        session: client.session.clone(),
        resumed,
        subscriptions: client.held(),
        limits: Limits {
            max_message_bytes: hub.config.max_message_bytes,
            max_subscriptions: hub.config.max_subscriptions,
            replay: hub.config.replay,
            resume_window_ms: hub.config.resume_window.as_millis() as u64,
        },
    };
    hub.metrics.messages_out.inc();
    if session.text(ok.to_text()).await.is_err() {
        client.detach(epoch);
        return End::Normal;
    }
    let last_inbound = Arc::new(std::sync::Mutex::new(Instant::now()));
    let mut reader = Reader {
        hub,
        api,
        client: &client,
        principal: &principal,
        token: &token,
        session: session.clone(),
        last_inbound: last_inbound.clone(),
    };
    let credential = Credential { api, token: &token };
    let end = tokio::select! {
        end = reader.run(&mut stream) => end,
        end = write(hub, &client, epoch, session.clone(), last_inbound, credential) => end,
    };
    if end == End::TooLarge {
        let msg = too_large(hub.config.max_message_bytes);
        let _ = tokio::time::timeout(CLOSE_WAIT, session.text(msg.to_text())).await;
    }
    client.detach(epoch);
    end
}

type AuthFailure = (End, Option<ServerMessage>);

fn unauthorized() -> AuthFailure {
    (
        End::Auth,
        Some(ServerMessage::error(
            None,
            "unauthorized",
            crate::auth::AuthError::Unauthorized.to_string(),
        )),
    )
}

/// The token a socket authenticated with, checked again while the socket lives: a session
/// that ends (idle, expired, ended by an admin or its user, its user's password or role
/// changed) or a token that expires or is revoked closes the socket within a heartbeat.
#[derive(Clone, Copy)]
struct Credential<'a> {
    api: &'a Arc<ApiState>,
    token: &'a str,
}

impl Credential<'_> {
    /// None while the credential holds; else the error to send before closing.
    fn ended(&self) -> Option<(ServerMessage, End)> {
        let e = self.api.security.auth.verify_bearer(self.token).err()?;
        let code = crate::api::error::ApiError::from(e.clone()).code.as_str();
        Some((
            ServerMessage::error(None, code, e.to_string()),
            End::Ended(code),
        ))
    }
}

/// Waits for the `auth` message and checks its token; answers pings meanwhile.
async fn authenticate(
    hub: &HubHandle,
    api: &ApiState,
    stream: &mut InboundStream,
    session: &mut Session,
) -> Result<(Principal, Option<String>, String), AuthFailure> {
    let deadline = tokio::time::Instant::now() + hub.config.auth_timeout;
    loop {
        let msg = match tokio::time::timeout_at(deadline, stream.recv()).await {
            Err(_) => return Err(unauthorized()),
            Ok(None) => return Err((End::Normal, None)),
            Ok(Some(Err(InboundError::TooLarge { max }))) => {
                return Err((End::TooLarge, Some(too_large(max))))
            }
            Ok(Some(Err(_))) => return Err((End::Error, None)),
            Ok(Some(Ok(m))) => m,
        };
        let text = match msg {
            Inbound::Text(t) => t,
            Inbound::Ping(payload) => {
                if !pong(session, &payload).await {
                    return Err((End::Normal, None));
                }
                continue;
            }
            Inbound::Pong => continue,
            Inbound::Close => return Err((End::Normal, None)),
            Inbound::Binary(_) => return Err(unauthorized()),
        };
        hub.metrics.messages_in.inc();
        return match serde_json::from_str::<ClientMessage>(&text) {
            Ok(ClientMessage::Auth { token, resume }) => api
                .security
                .auth
                .verify_bearer(&token)
                .map(|p| (p, resume, token))
                .map_err(|_| unauthorized()),
            _ => Err(unauthorized()),
        };
    }
}

/// Sends the session's frames; ends when the socket closes, stalls, or is replaced.
async fn write(
    hub: &HubHandle,
    client: &Client,
    epoch: u64,
    mut session: Session,
    last_inbound: Arc<std::sync::Mutex<Instant>>,
    credential: Credential<'_>,
) -> End {
    let stall = hub.config.stall_timeout;
    let mut heartbeat = tokio::time::interval(hub.config.heartbeat);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        while let Some(frame) = client.next_frame_for(epoch) {
            match tokio::time::timeout(stall, session.text(frame.to_string())).await {
                Err(_) => return End::Stalled,
                Ok(Err(_)) => return End::Normal,
                Ok(Ok(())) => hub.metrics.messages_out.inc(),
            }
        }
        if client.epoch() != epoch {
            // The wake-up this writer may have taken was meant for the new socket's writer.
            client.wake.notify_one();
            return End::Replaced;
        }
        tokio::select! {
            _ = client.wake.notified() => {}
            _ = heartbeat.tick() => {
                if let Some((msg, end)) = credential.ended() {
                    let _ = tokio::time::timeout(CLOSE_WAIT, session.text(msg.to_text())).await;
                    return end;
                }
                let quiet = last_inbound.lock().map(|t| t.elapsed()).unwrap_or_default();
                if quiet > stall {
                    return End::Stalled;
                }
                match tokio::time::timeout(stall, session.ping(b"")).await {
                    Err(_) => return End::Stalled,
                    Ok(Err(_)) => return End::Normal,
                    Ok(Ok(())) => {}
                }
            }
        }
    }
}

/// Answers a WebSocket Ping with a Pong carrying its payload (RFC 6455 §5.5.2: keep-alives of
/// libraries such as Python's `websockets` drop a connection whose pings go unanswered);
/// false once the socket is gone.
async fn pong(session: &mut Session, payload: &[u8]) -> bool {
    session.pong(payload).await.is_ok()
}

/// The `too_large` error (sent before close 1009).
fn too_large(max: usize) -> ServerMessage {
    ServerMessage::error(
        None,
        "too_large",
        format!("a message is limited to {max} bytes"),
    )
}

struct Reader<'a> {
    hub: &'a HubHandle,
    api: &'a Arc<ApiState>,
    client: &'a Arc<Client>,
    principal: &'a Principal,
    /// The token the socket authenticated with (checked again before each message).
    token: &'a str,
    /// For the Pongs: control frames go straight to the socket, not through the queue.
    session: Session,
    last_inbound: Arc<std::sync::Mutex<Instant>>,
}

impl Reader<'_> {
    fn reply(&self, msg: ServerMessage) {
        self.client.send_control(msg.to_text());
    }

    async fn run(&mut self, stream: &mut InboundStream) -> End {
        loop {
            let msg = match stream.recv().await {
                None => return End::Normal,
                Some(Err(InboundError::TooLarge { .. })) => return End::TooLarge,
                Some(Err(e)) => {
                    tracing::debug!(error = %e, "websocket protocol error");
                    return End::Error;
                }
                Some(Ok(m)) => m,
            };
            if let Ok(mut t) = self.last_inbound.lock() {
                *t = Instant::now();
            }
            match msg {
                Inbound::Text(text) => {
                    self.hub.metrics.messages_in.inc();
                    let credential = Credential {
                        api: self.api,
                        token: self.token,
                    };
                    if let Some((msg, end)) = credential.ended() {
                        let _ = tokio::time::timeout(CLOSE_WAIT, self.session.text(msg.to_text()))
                            .await;
                        return end;
                    }
                    self.message(&text).await;
                }
                Inbound::Binary(_) => {
                    self.hub.metrics.messages_in.inc();
                    self.reply(ServerMessage::error(
                        None,
                        "bad_message",
                        "binary frames are not part of the protocol; send JSON text",
                    ));
                }
                // actix-ws does not answer pings: unanswered, they cost every keep-alive
                // client its connection.
                Inbound::Ping(payload) => {
                    if !pong(&mut self.session, &payload).await {
                        return End::Normal;
                    }
                }
                Inbound::Pong => {}
                Inbound::Close => return End::Normal,
            }
        }
    }

    async fn message(&self, text: &str) {
        let msg = match ClientMessage::parse(text) {
            Ok(m) => m,
            Err(refusal) => {
                self.reply(refusal);
                return;
            }
        };
        match msg {
            ClientMessage::Auth { .. } => self.reply(ServerMessage::error(
                None,
                "bad_message",
                "already authenticated",
            )),
            ClientMessage::Ping { id } => self.reply(ServerMessage::Pong {
                id,
                time: cistern_schemas::Timestamp::now().as_millis(),
            }),
            ClientMessage::Unsubscribe { id } => {
                self.client.unclaim(&id);
                self.to_hub(HubCommand::Unsubscribe {
                    client: self.client.clone(),
                    id,
                })
                .await;
            }
            ClientMessage::Subscribe {
                id,
                topic,
                filter,
                since,
            } => self.subscribe(id, topic, filter, since).await,
            ClientMessage::Command {
                id,
                command,
                alarm,
                room,
                writes,
                comment,
                reason,
                duration,
                until,
            } => {
                if let Err(e) = self.principal.require(Role::Operator) {
                    let code = crate::api::error::ApiError::from(e.clone()).code.as_str();
                    self.reply(ServerMessage::error(Some(&id), code, e.to_string()));
                    return;
                }
                // A command is the user at work: the session's idle timeout starts again.
                if let Some(id) = &self.principal.session {
                    self.api.security.auth.touch(id);
                }
                if command == "setpoint" {
                    let alarm_fields = alarm.is_some()
                        || !comment.is_empty()
                        || reason.is_some()
                        || duration.is_some()
                        || until.is_some();
                    if alarm_fields {
                        self.reply(ServerMessage::error(
                            Some(&id),
                            "bad_message",
                            "a setpoint command takes `room` and `writes` only",
                        ));
                        return;
                    }
                    self.setpoint(id, room, writes);
                    return;
                }
                if room.is_some() || writes.is_some() {
                    self.reply(ServerMessage::error(
                        Some(&id),
                        "bad_message",
                        format!(
                            "`room` and `writes` belong to the setpoint command, not {command:?}"
                        ),
                    ));
                    return;
                }
                let Some(alarm) = alarm else {
                    self.reply(ServerMessage::error(
                        Some(&id),
                        "bad_message",
                        format!("the {command:?} command needs `alarm`"),
                    ));
                    return;
                };
                let Some((source, key)) = alarm.split_once('/') else {
                    self.reply(ServerMessage::error(
                        Some(&id),
                        "unknown_alarm",
                        format!("{alarm:?} is not an alarm id (`<room>/<rule>@<unit>`)"),
                    ));
                    return;
                };
                let req = CommandRequest {
                    source: source.to_owned(),
                    key: key.to_owned(),
                    reason: reason.or_else(|| {
                        (command == "shelve" && !comment.trim().is_empty()).then(|| comment.clone())
                    }),
                    action: command,
                    comment,
                    duration,
                    until: until.map(cistern_schemas::Timestamp::from_millis),
                };
                let (api, client, who) = (
                    self.api.clone(),
                    self.client.clone(),
                    self.principal.clone(),
                );
                // Off the reader: a command may wait on its room for seconds.
                actix_web::rt::spawn(crate::auth::audit::carry_source(async move {
                    let msg = match execute(&api, &who, req).await {
                        Ok(outcome) => ServerMessage::Result {
                            id,
                            ok: true,
                            data: serde_json::to_value(outcome).unwrap_or_default(),
                        },
                        Err(e) => ServerMessage::error(Some(&id), e.code.as_str(), e.message),
                    };
                    client.send_control(msg.to_text());
                }));
            }
        }
    }

    /// A set-point write: the REST code path ([`setpoints::execute`]: role, limits, read-back,
    /// audit), answered with the REST body as `data`, its refusals with the REST codes.
    fn setpoint(
        &self,
        id: String,
        room: Option<String>,
        writes: Option<Vec<setpoints::SetpointWrite>>,
    ) {
        let (Some(room), Some(writes)) = (room, writes) else {
            self.reply(ServerMessage::error(
                Some(&id),
                "bad_message",
                "a setpoint command needs `room` and `writes`",
            ));
            return;
        };
        let room = match RoomId::new(&room) {
            Ok(r) => r,
            Err(e) => {
                self.reply(ServerMessage::error(
                    Some(&id),
                    "invalid_room",
                    e.to_string(),
                ));
                return;
            }
        };
        let (api, client, who) = (
            self.api.clone(),
            self.client.clone(),
            self.principal.clone(),
        );
        // Off the reader: each write waits for the controller's read-back.
        actix_web::rt::spawn(crate::auth::audit::carry_source(async move {
            let msg = match setpoints::execute(&api, &who, &room, &writes).await {
                Ok(written) => ServerMessage::Result {
                    id,
                    ok: true,
                    data: setpoints::answer(&room, &written),
                },
                Err(e) => ServerMessage::error(Some(&id), e.code.as_str(), e.message),
            };
            client.send_control(msg.to_text());
        }));
    }

    async fn subscribe(
        &self,
        id: String,
        topic: String,
        filter: serde_json::Value,
        since: Option<u64>,
    ) {
        let config = &self.hub.config;
        if id.is_empty() || id.len() > MAX_ID {
            self.reply(ServerMessage::error(
                Some(&id),
                "bad_message",
                format!("a subscription id has 1 to {MAX_ID} characters"),
            ));
            return;
        }
        let spec = match topics::parse(&topic, &filter, &self.hub.registry, config.max_points) {
            Ok(spec) => spec,
            Err(e) => {
                self.reply(ServerMessage::error(Some(&id), e.code(), e.to_string()));
                return;
            }
        };
        // Counted here, in message order, before the hub has it: pipelined subscribes all
        // pass this reader before the hub adds the first.
        match self.client.claim(&id, config.max_subscriptions) {
            Ok(()) => {}
            Err(Refused::Duplicate) => {
                self.reply(duplicate(&id));
                return;
            }
            Err(Refused::TooMany) => {
                self.reply(ServerMessage::error(
                    Some(&id),
                    "too_many_subscriptions",
                    format!(
                        "a connection holds at most {} subscriptions",
                        config.max_subscriptions
                    ),
                ));
                return;
            }
        }
        let filter = if filter.is_null() {
            serde_json::json!({})
        } else {
            filter
        };
        let claimed = id.clone();
        if !self
            .to_hub(HubCommand::Subscribe {
                client: self.client.clone(),
                id,
                spec,
                filter,
                since,
            })
            .await
        {
            self.client.unclaim(&claimed);
        }
    }

    /// Hands a command to the hub; false (and an `internal` error) when it is not running.
    async fn to_hub(&self, cmd: HubCommand) -> bool {
        if self.hub.tx.send(cmd).await.is_err() {
            self.reply(ServerMessage::error(
                None,
                "internal",
                "the live hub is not running",
            ));
            return false;
        }
        true
    }
}

fn duplicate(id: &str) -> ServerMessage {
    ServerMessage::error(
        Some(id),
        "duplicate_id",
        format!("subscription {id:?} is already live on this connection"),
    )
}
