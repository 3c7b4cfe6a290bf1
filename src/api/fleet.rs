//! Fleet-wide lists on a cluster node: `GET /api/v1/rooms` and `GET /api/v1/alarms` gather
//! every live member's part and merge them, so that any node lists the whole fleet.
//!
//! A member called with `X-Cistern-Scope: local` answers only its own part: the rooms it runs
//! (those of the shards it holds), and their alarms (filters applied there). The called node
//! asks every other live member at once (with the cluster's service token, [`PEER_TIMEOUT`]
//! each) and merges: rooms and alarms by id, counts recomputed, each room with the `node` that
//! supervises it and `supervised: true`. The fleet's rooms that no answering member runs are
//! listed from this node's inventory, offline, with `supervised: false`. A member that does not
//! answer in time leaves `"partial": true, "missing": ["<node>"]`: the answer still comes.

use super::ApiState;
use crate::cluster::peer::{self, PeerRequest, SCOPE};
use crate::cluster::ClusterView;
use actix_web::http::header;
use actix_web::HttpRequest;
use cistern_actors::registry::SHARDS;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

/// How long a member has to answer with its part.
pub const PEER_TIMEOUT: Duration = Duration::from_secs(2);

/// Whether the request asks for this node's own part only (`X-Cistern-Scope: local`). Any
/// other value is refused (400 `invalid_header`) rather than read as "the whole fleet", so that
/// a misspelt scope does not silently fan out to every member.
pub fn local_scope(req: &HttpRequest) -> Result<bool, super::error::ApiError> {
    let Some(value) = req.headers().get(SCOPE) else {
        return Ok(false);
    };
    match value.to_str().map(str::trim) {
        Ok(v) if v.eq_ignore_ascii_case("local") => Ok(true),
        _ => Err(super::error::ApiError::bad_request(
            super::error::ErrorCode::InvalidHeader,
            format!("{SCOPE} must be `local` (or left out for the whole fleet)"),
        )),
    }
}

/// The parts of every other live member: (node, JSON) of those that answered, and the nodes
/// that did not.
async fn gather(
    cluster: &Arc<dyn ClusterView>,
    req: &HttpRequest,
) -> (Vec<(String, Value)>, Vec<String>) {
    let path = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.path().to_owned(), |p| p.as_str().to_owned());
    let authorization = match cluster.service_token() {
        Some(t) => Some(format!("Bearer {t}")),
        None => req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    };
    let peers = cluster.peers();
    let calls = peers.iter().map(|p| {
        let mut headers = vec![(SCOPE.to_owned(), "local".to_owned())];
        if let Some(a) = &authorization {
            headers.push((header::AUTHORIZATION.as_str().to_owned(), a.clone()));
        }
        peer::call(PeerRequest {
            method: "GET".into(),
            url: format!("{}{path}", p.http.trim_end_matches('/')),
            headers,
            body: None,
            timeout: PEER_TIMEOUT,
            connect_timeout: PEER_TIMEOUT,
        })
    });
    let answers = futures::future::join_all(calls).await;
    let mut parts = Vec::new();
    let mut missing = Vec::new();
    for (p, answer) in peers.into_iter().zip(answers) {
        match answer {
            Ok(a) if a.status == 200 => match serde_json::from_slice::<Value>(&a.body) {
                Ok(v) => parts.push((p.node, v)),
                Err(error) => {
                    tracing::warn!(node = %p.node, %error, "a member's part of a list is not JSON");
                    missing.push(p.node);
                }
            },
            Ok(a) => {
                tracing::warn!(node = %p.node, status = a.status, "a member refused its part of a list");
                missing.push(p.node);
            }
            Err(error) => {
                tracing::warn!(node = %p.node, %error, "a member did not answer with its part of a list");
                missing.push(p.node);
            }
        }
    }
    (parts, missing)
}

/// Every room of the inventory this node knows (running here or parked), as an offline line.
fn fleet_lines(state: &ApiState, except: &BTreeSet<String>) -> Vec<Value> {
    let registry = &state.registry;
    (0..SHARDS)
        .flat_map(|s| registry.known_rooms_of_shard(s))
        .filter(|id| !except.contains(id.as_str()))
        .filter_map(|id| {
            let line = registry.unsupervised_summary(&id)?;
            serde_json::to_value(line).ok()
        })
        .collect()
}

/// Merges the members' room lists (see the module doc). `unsupervised` gives the lines of the
/// fleet's rooms not in any part.
pub fn merge_rooms(
    parts: &[(String, Value)],
    missing: &[String],
    zones: Value,
    unsupervised: impl FnOnce(&BTreeSet<String>) -> Vec<Value>,
) -> Value {
    let mut rooms: BTreeMap<String, Value> = BTreeMap::new();
    for (node, part) in parts {
        for r in part["rooms"].as_array().into_iter().flatten() {
            let Some(id) = r["id"].as_str() else { continue };
            let mut r = r.clone();
            if let Some(o) = r.as_object_mut() {
                o.insert("node".into(), node.clone().into());
                o.insert("supervised".into(), true.into());
            }
            rooms.entry(id.to_owned()).or_insert(r);
        }
    }
    let seen: BTreeSet<String> = rooms.keys().cloned().collect();
    for mut r in unsupervised(&seen) {
        let Some(id) = r["id"].as_str().map(str::to_owned) else {
            continue;
        };
        if let Some(o) = r.as_object_mut() {
            o.insert("node".into(), Value::Null);
            o.insert("supervised".into(), false.into());
        }
        rooms.entry(id).or_insert(r);
    }
    let online = rooms.values().filter(|r| r["online"] == true).count();
    serde_json::json!({
        "count": rooms.len(),
        "online": online,
        "offline": rooms.len() - online,
        "zones": zones,
        "rooms": rooms.into_values().collect::<Vec<_>>(),
        "partial": !missing.is_empty(),
        "missing": missing,
    })
}

/// Merges the members' alarm lists: by id (a zone's alarm raised on two nodes is listed once),
/// most severe first, then newest first, as one node lists them.
pub fn merge_alarms(parts: &[(String, Value)], missing: &[String]) -> Value {
    let mut alarms: BTreeMap<String, Value> = BTreeMap::new();
    for (_, part) in parts {
        for a in part["alarms"].as_array().into_iter().flatten() {
            let Some(id) = a["id"].as_str() else { continue };
            alarms.entry(id.to_owned()).or_insert_with(|| a.clone());
        }
    }
    let mut list: Vec<Value> = alarms.into_values().collect();
    list.sort_by(|a, b| {
        let sev = |v: &Value| v["severity"].as_str().unwrap_or("P9").to_owned();
        let raised = |v: &Value| v["raised_at"].as_i64().unwrap_or(i64::MIN);
        sev(a)
            .cmp(&sev(b))
            .then(raised(b).cmp(&raised(a)))
            .then(a["id"].as_str().cmp(&b["id"].as_str()))
    });
    let mut by_severity = serde_json::Map::new();
    for s in ["P1", "P2", "P3", "P4"] {
        let n = list.iter().filter(|v| v["severity"] == s).count();
        by_severity.insert(s.into(), n.into());
    }
    serde_json::json!({
        "count": list.len(),
        "by_severity": by_severity,
        "alarms": list,
        "partial": !missing.is_empty(),
        "missing": missing,
    })
}

/// `GET /api/v1/rooms` on a cluster node: `local` is this node's own part.
pub async fn rooms(
    state: &ApiState,
    cluster: &Arc<dyn ClusterView>,
    req: &HttpRequest,
    local: Value,
) -> Value {
    let (mut parts, missing) = gather(cluster, req).await;
    let zones = local["zones"].clone();
    parts.insert(0, (cluster.node_id(), local));
    merge_rooms(&parts, &missing, zones, |seen| fleet_lines(state, seen))
}

/// `GET /api/v1/alarms` on a cluster node: `local` is this node's own part.
pub async fn alarms(cluster: &Arc<dyn ClusterView>, req: &HttpRequest, local: Value) -> Value {
    let (mut parts, missing) = gather(cluster, req).await;
    parts.insert(0, (cluster.node_id(), local));
    merge_alarms(&parts, &missing)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rooms_are_merged_by_id_with_their_node_and_the_rest_listed_unsupervised() {
        let a = json!({"rooms": [
            {"id": "XM-0001", "online": true},
            {"id": "XM-0002", "online": false},
        ]});
        let b = json!({"rooms": [{"id": "XM-0003", "online": true}]});
        let parts = vec![("node-a".to_owned(), a), ("node-b".to_owned(), b)];
        let merged = merge_rooms(&parts, &["node-c".to_owned()], json!([]), |seen| {
            assert_eq!(seen.len(), 3);
            ["XM-0001", "XM-0004"]
                .iter()
                .filter(|id| !seen.contains(**id))
                .map(|id| json!({"id": id, "online": false}))
                .collect()
        });
        assert_eq!(merged["count"], 4);
        assert_eq!(merged["online"], 2);
        assert_eq!(merged["offline"], 2);
        assert_eq!(merged["partial"], true);
        assert_eq!(merged["missing"], json!(["node-c"]));
        let rooms = merged["rooms"].as_array().unwrap();
        let ids: Vec<&str> = rooms.iter().map(|r| r["id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["XM-0001", "XM-0002", "XM-0003", "XM-0004"]);
        assert_eq!(rooms[2]["node"], "node-b");
        assert_eq!(rooms[2]["supervised"], true);
        assert_eq!(rooms[3]["node"], Value::Null);
        assert_eq!(rooms[3]["supervised"], false);
    }

    #[test]
    fn alarms_are_merged_once_each_most_severe_then_newest_first() {
        let a = json!({"alarms": [
            {"id": "XM-0001/pump_fault@P1", "severity": "P2", "raised_at": 10},
            {"id": "zone:Z1/zone_event@room", "severity": "P1", "raised_at": 5},
        ]});
        let b = json!({"alarms": [
            {"id": "XM-0003/low_level@T1", "severity": "P2", "raised_at": 20},
            {"id": "zone:Z1/zone_event@room", "severity": "P1", "raised_at": 5},
        ]});
        let merged = merge_alarms(&[("a".into(), a), ("b".into(), b)], &[]);
        assert_eq!(merged["count"], 3);
        assert_eq!(merged["partial"], false);
        assert_eq!(
            merged["by_severity"],
            json!({"P1": 1, "P2": 2, "P3": 0, "P4": 0})
        );
        let ids: Vec<&str> = (merged["alarms"].as_array().unwrap().iter())
            .map(|a| a["id"].as_str().unwrap())
            .collect();
        assert_eq!(
            ids,
            [
                "zone:Z1/zone_event@room",
                "XM-0003/low_level@T1",
                "XM-0001/pump_fault@P1"
            ]
        );
    }
}
