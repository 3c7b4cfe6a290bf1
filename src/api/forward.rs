//! Any node serves the whole fleet (a cluster node): a REST request about a room that another
//! node acts for is sent on to that node, and its answer returned as it came, with
//! `X-Cistern-Served-By: <owner>`. One middleware ([`forward`]), installed by `Node::start`
//! inside the authentication gate, so that handlers never know about it.
//!
//! - Room-scoped routes ([`room_of`]: a room's view, its set-points, a room's alarm and its
//!   commands) are sent on before any handler runs when this node does not act for the room's
//!   shard and another live node holds its claim. Zone alarms (`zone:<zone>/...`) stay here:
//!   a supply zone's correlation runs on each node for the zone's rooms it supervises.
//! - Any other request whose handler answers that the room is not run here (503
//!   `room_unavailable`, [`NotHere`] in the response) is sent on the same way, if it had no
//!   body or a small one.
//! - The request keeps its method, path, query, body, `Authorization`, `Content-Type` and
//!   `Accept-Language`, and gains `X-Cistern-Forwarded-By: <this node>`. The owner checks the
//!   caller's own token (identity is shared), so its audit log names the real user. A request
//!   that already carries that header is never sent on again: it is answered 503
//!   `room_unavailable` with `Retry-After: 1` (ownership is moving; the client tries again).
//! - An owner that does not accept the connection within [`FORWARD_CONNECT_TIMEOUT`] (2 s),
//!   or does not answer a read within [`FORWARD_READ_TIMEOUT`] (10 s) or a command (a
//!   set-point batch, an alarm command) within [`FORWARD_COMMAND_TIMEOUT`] (60 s), is 503
//!   `room_unavailable` naming it; a command timed out may still have been carried out (the
//!   owner's audit log has its outcome), and the message says so. Every attempt is counted:
//!   `cistern_cluster_forwarded_total{result}`.

use super::error::{ApiError, ErrorCode, NotHere};
use super::ApiState;
use crate::cluster::peer::{self, Forwarded, PeerRequest, FORWARDED_BY, SERVED_BY};
use crate::cluster::{ClusterView, Peer};
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::{header, Method, StatusCode};
use actix_web::web::{Bytes, BytesMut};
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use cistern_actors::registry::shard_of;
use cistern_schemas::RoomId;
use futures::StreamExt as _;
use std::sync::Arc;
use std::time::Duration;

/// How long the owner has to accept the connection.
pub const FORWARD_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long the owner has to answer a read.
pub const FORWARD_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the owner has to answer a command: a set-point batch is written and read back
/// point by point over Modbus (each step within `[modbus]` timeouts), so a slow controller
/// takes several seconds; a command must not be reported unavailable while it is carried out.
pub const FORWARD_COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a request sent on may take to be answered: reads [`FORWARD_READ_TIMEOUT`],
/// commands [`FORWARD_COMMAND_TIMEOUT`].
pub fn answer_timeout(method: &Method) -> Duration {
    if matches!(*method, Method::GET | Method::HEAD) {
        FORWARD_READ_TIMEOUT
    } else {
        FORWARD_COMMAND_TIMEOUT
    }
}
/// The largest body kept to be sent on (the API's JSON bodies are at most 16 KB).
const MAX_FORWARD_BODY: usize = 64 * 1024;
/// Request headers sent on with the request.
const SENT_ON: [&str; 3] = ["authorization", "content-type", "accept-language"];

/// The room a room-scoped route is about (see the module doc); None for other routes and for
/// zone alarms.
pub fn room_of(method: &Method, path: &str) -> Option<RoomId> {
    let rest = path.strip_prefix("/api/v1/")?;
    let parts: Vec<&str> = rest.split('/').collect();
    let room = match (method.as_str(), parts.as_slice()) {
        ("GET", ["rooms", id]) | ("POST", ["rooms", id, "setpoints"]) => *id,
        ("GET", ["alarms", source, _key]) | ("POST", ["alarms", source, _key, _]) => {
            let lower = source.to_ascii_lowercase();
            if lower.starts_with("zone:") || lower.starts_with("zone%3a") {
                return None;
            }
            *source
        }
        _ => return None,
    };
    RoomId::new(room).ok()
}

/// Where a request about a room's shard goes.
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    /// This node answers.
    Here,
    /// Sent on to the owner.
    To(Peer),
    /// It would have to be sent on a second time: refused.
    Loop(Peer),
}

/// Decides where a request about `shard` goes: here when this node acts for it or no other
/// live node holds its claim; to the owner otherwise, unless the request was forwarded already.
pub fn route(cluster: &dyn ClusterView, shard: u32, forwarded: bool) -> Route {
    if cluster.acts_for(shard) {
        return Route::Here;
    }
    match cluster.owner(shard) {
        None => Route::Here,
        Some(owner) if forwarded => Route::Loop(owner),
        Some(owner) => Route::To(owner),
    }
}

fn unavailable(message: String) -> HttpResponse {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::RoomUnavailable,
        message,
    )
    .retry_after(Duration::from_secs(1))
    .error_response()
}

/// Reads the request's body (at most [`MAX_FORWARD_BODY`]) and puts it back for the handler.
/// None when it is larger: such a request is not sent on.
async fn keep_body(req: &mut ServiceRequest) -> Result<Option<Bytes>, actix_web::Error> {
    let mut payload = req.parts_mut().1.take();
    let mut buf = BytesMut::new();
    let mut whole = true;
    while let Some(chunk) = payload.next().await {
        let chunk = chunk?;
        buf.extend_from_slice(&chunk);
        whole &= buf.len() <= MAX_FORWARD_BODY;
    }
    let bytes = buf.freeze();
    req.set_payload(Payload::from(bytes.clone()));
    Ok(whole.then_some(bytes))
}

/// Sends `req` on to `owner` and answers with what it answered.
async fn send_on(
    cluster: &Arc<dyn ClusterView>,
    req: &HttpRequest,
    room: &str,
    owner: &Peer,
    body: Option<Bytes>,
) -> HttpResponse {
    let path = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.path().to_owned(), |p| p.as_str().to_owned());
    let mut headers: Vec<(String, String)> = SENT_ON
        .iter()
        .filter_map(|h| {
            let v = req.headers().get(*h)?.to_str().ok()?;
            Some(((*h).to_owned(), v.to_owned()))
        })
        .collect();
    headers.push((FORWARDED_BY.to_owned(), cluster.node_id()));
    let call = PeerRequest {
        method: req.method().as_str().to_owned(),
        url: format!("{}{path}", owner.http.trim_end_matches('/')),
        headers,
        body: body.filter(|b| !b.is_empty()).map(|b| b.to_vec()),
        timeout: answer_timeout(req.method()),
        connect_timeout: FORWARD_CONNECT_TIMEOUT,
    };
    match peer::call(call).await {
        Ok(answer) => {
            cluster.count_forward(Forwarded::Ok);
            let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::BAD_GATEWAY);
            let mut resp = HttpResponse::build(status);
            for (k, v) in &answer.headers {
                resp.insert_header((k.as_str(), v.as_str()));
            }
            resp.insert_header((SERVED_BY, owner.node.as_str()));
            resp.body(answer.body)
        }
        Err(error) => {
            cluster.count_forward(Forwarded::Unreachable);
            tracing::warn!(%room, owner = %owner.node, %error, "cannot reach the node that supervises the room");
            let command = !matches!(*req.method(), Method::GET | Method::HEAD);
            unavailable(format!(
                "room {room} is supervised by node {}, which did not answer: {error}{}",
                owner.node,
                if command {
                    " (the command may still have been carried out: see the room and the audit log before sending it again)"
                } else {
                    ""
                }
            ))
        }
    }
}

/// The middleware (install with `actix_web::middleware::from_fn(forward)`, inside the
/// authentication gate). Does nothing outside a cluster.
pub async fn forward(
    mut req: ServiceRequest,
    next: actix_web::middleware::Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody + 'static>>, actix_web::Error> {
    let cluster = (req.app_data::<web::Data<ApiState>>()).and_then(|s| s.cluster.clone());
    let Some(cluster) = cluster else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body);
    };
    let forwarded = req.headers().contains_key(FORWARDED_BY);
    let room = room_of(req.method(), req.path());
    let bodyless = matches!(*req.method(), Method::GET | Method::HEAD | Method::DELETE);
    // Only a room-scoped command's body is kept (small JSON); other requests with a body are
    // not sent on after the fact.
    let body = if room.is_some() && !bodyless && !forwarded {
        keep_body(&mut req).await?
    } else {
        None
    };
    if let Some(room) = &room {
        match route(cluster.as_ref(), shard_of(room), forwarded) {
            Route::Here => {}
            Route::To(owner) => {
                if bodyless || body.is_some() {
                    let resp = send_on(&cluster, req.request(), room.as_str(), &owner, body).await;
                    return Ok(req.into_response(resp).map_into_right_body());
                }
            }
            Route::Loop(owner) => {
                cluster.count_forward(Forwarded::Refused);
                let resp = unavailable(format!(
                    "room {room} is supervised by node {}; this request was forwarded to this node already and is not sent on again",
                    owner.node
                ));
                return Ok(req.into_response(resp).map_into_right_body());
            }
        }
    }
    let mut res = next.call(req).await?;
    let not_here = res.response().extensions().get::<NotHere>().cloned();
    let Some(NotHere(room)) = not_here else {
        return Ok(res.map_into_left_body());
    };
    res.headers_mut()
        .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
    let owner = RoomId::new(&room)
        .ok()
        .and_then(|id| cluster.owner(shard_of(&id)));
    match owner {
        Some(owner) if !forwarded && (bodyless || body.is_some()) => {
            let resp = send_on(&cluster, res.request(), &room, &owner, body).await;
            Ok(res.into_response(resp).map_into_right_body())
        }
        _ => Ok(res.map_into_left_body()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::ClusterView;

    #[test]
    fn room_scoped_routes_name_their_room_and_zone_alarms_stay_here() {
        let get = Method::GET;
        let post = Method::POST;
        let room = |m: &Method, p: &str| room_of(m, p).map(|r| r.to_string());
        assert_eq!(
            room(&get, "/api/v1/rooms/XM-0003").as_deref(),
            Some("XM-0003")
        );
        assert_eq!(
            room(&post, "/api/v1/rooms/XM-0003/setpoints").as_deref(),
            Some("XM-0003")
        );
        assert_eq!(
            room(&get, "/api/v1/alarms/XM-0003/pump_fault@P1").as_deref(),
            Some("XM-0003")
        );
        assert_eq!(
            room(&post, "/api/v1/alarms/XM-0003/pump_fault@P1/ack").as_deref(),
            Some("XM-0003")
        );
        assert_eq!(
            room(&post, "/api/v1/alarms/zone:Z01/zone_event@room/ack"),
            None
        );
        assert_eq!(
            room(&get, "/api/v1/alarms/zone%3AZ01/zone_event@room"),
            None
        );
        assert_eq!(room(&get, "/api/v1/rooms"), None);
        assert_eq!(room(&post, "/api/v1/rooms/XM-0003"), None);
        assert_eq!(room(&get, "/api/v1/rooms/XM-0003/setpoints"), None);
        assert_eq!(room(&get, "/api/v1/alarms"), None);
    }

    /// A set-point batch to a slow controller takes seconds on its owner: a command sent on
    /// waits for it far longer than a read, and a dead owner is found by the connect timeout.
    #[test]
    fn a_command_sent_on_is_given_time_to_be_carried_out() {
        assert_eq!(answer_timeout(&Method::GET), FORWARD_READ_TIMEOUT);
        assert_eq!(answer_timeout(&Method::POST), FORWARD_COMMAND_TIMEOUT);
        assert_eq!(answer_timeout(&Method::PUT), FORWARD_COMMAND_TIMEOUT);
        assert!(FORWARD_COMMAND_TIMEOUT >= Duration::from_secs(30));
        assert!(FORWARD_CONNECT_TIMEOUT < FORWARD_READ_TIMEOUT);
    }

    /// A member that acts for shard 1, knows node-b as the owner of shard 2 and of no other.
    #[derive(Debug)]
    struct Member;

    impl ClusterView for Member {
        fn status_json(&self) -> serde_json::Value {
            serde_json::Value::Null
        }
        fn ready(&self) -> bool {
            true
        }
        fn acts_for(&self, shard: u32) -> bool {
            shard == 1
        }
        fn owner(&self, shard: u32) -> Option<Peer> {
            (shard == 2).then(|| Peer {
                node: "node-b".into(),
                http: "http://127.0.0.1:1".into(),
            })
        }
    }

    #[test]
    fn a_request_goes_to_the_owner_once_and_never_a_second_time() {
        let b = Peer {
            node: "node-b".into(),
            http: "http://127.0.0.1:1".into(),
        };
        assert_eq!(route(&Member, 1, false), Route::Here);
        assert_eq!(route(&Member, 1, true), Route::Here);
        assert_eq!(route(&Member, 2, false), Route::To(b.clone()));
        assert_eq!(route(&Member, 2, true), Route::Loop(b));
        // No live owner: the registry here answers (the room shows unavailable).
        assert_eq!(route(&Member, 3, false), Route::Here);
    }
}
