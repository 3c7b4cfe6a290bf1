//! Enrolled gateways: the platform's half of device identity (issue 24 item 2).
//!
//! A gateway (a pump room's DTU or edge controller) proves who it is to the broker with its
//! client certificate; the broker lets it publish only under its own name
//! (`cistern/v1/gw/{name}/telemetry/…`, `pattern write cistern/v1/gw/%u/#`). The platform then
//! takes a message only if that name is enrolled here, enabled, and enrolled for the room the
//! topic names ([`SenderCheck`]). Disabling a gateway revokes it at once, on every node of a
//! cluster (the records are identities, shared like users), without touching the broker.
//!
//! The record keeps the certificate's SHA-256 fingerprint as the archive's note of which
//! certificate was issued (`cistern pki issue` prints it); matching it against the
//! certificate presented is the broker's part (its CA and the name in the certificate).

use super::{encode, now_ms, valid_name, Auth, IdentityError, IdentityKind};
use crate::ingest::mqtt::{SenderCheck, SenderRefusal};
use cistern_schemas::RoomId;
use serde::{Deserialize, Serialize};

/// An enrolled gateway, as stored and listed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayRecord {
    /// Its name: the certificate's CN/SAN, the broker user name, the topic segment.
    pub id: String,
    /// The rooms it sends for.
    pub rooms: Vec<RoomId>,
    /// SHA-256 of its certificate (64 hex digits), when enrolled by certificate.
    #[serde(default)]
    pub fingerprint: Option<String>,
    /// False: revoked; its messages are refused and counted.
    pub enabled: bool,
    #[serde(default)]
    pub note: String,
    pub updated_at_ms: i64,
    pub updated_by: String,
}

/// An enrolment as an admin writes it (`PUT /api/v1/gateways/{id}`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayWrite {
    pub rooms: Vec<RoomId>,
    #[serde(default)]
    pub fingerprint: Option<String>,
    #[serde(default = "enabled")]
    pub enabled: bool,
    #[serde(default)]
    pub note: String,
}

fn enabled() -> bool {
    true
}

/// Why an enrolment was refused.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error(
        "invalid gateway name {0:?}: 1 to 64 characters of letters, digits, '.', '_', '-', '@'"
    )]
    Name(String),
    #[error("a gateway sends for at least one room and at most 64")]
    Rooms,
    #[error("the fingerprint is the certificate's SHA-256: 64 hex digits (`cistern pki fingerprint FILE`)")]
    Fingerprint,
    #[error("the note is at most 500 characters")]
    Note,
    #[error("no gateway {0}")]
    Unknown(String),
    #[error(transparent)]
    Identity(#[from] IdentityError),
}

impl GatewayWrite {
    fn validate(&self, id: &str) -> Result<(), GatewayError> {
        if !valid_name(id) {
            return Err(GatewayError::Name(id.into()));
        }
        if self.rooms.is_empty() || self.rooms.len() > 64 {
            return Err(GatewayError::Rooms);
        }
        if let Some(f) = &self.fingerprint {
            if f.len() != 64 || !f.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(GatewayError::Fingerprint);
            }
        }
        if self.note.chars().count() > 500 {
            return Err(GatewayError::Note);
        }
        Ok(())
    }
}

impl Auth {
    /// Every enrolled gateway, by name.
    pub fn gateways(&self) -> Vec<GatewayRecord> {
        self.read().gateways.values().cloned().collect()
    }

    /// Enrols gateway `id` (or replaces its enrolment).
    pub async fn put_gateway(
        &self,
        id: &str,
        write: GatewayWrite,
        by: &str,
    ) -> Result<GatewayRecord, GatewayError> {
        write.validate(id)?;
        let mut rooms = write.rooms;
        rooms.sort();
        rooms.dedup();
        let record = GatewayRecord {
            id: id.to_owned(),
            rooms,
            fingerprint: write.fingerprint.map(|f| f.to_ascii_lowercase()),
            enabled: write.enabled,
            note: write.note,
            updated_at_ms: now_ms(),
            updated_by: by.to_owned(),
        };
        let _one = self.changes.lock().await;
        self.persist(IdentityKind::Gateway, id, Some(encode(&record)?))
            .await?;
        self.write().gateways.insert(id.to_owned(), record.clone());
        Ok(record)
    }

    /// Removes gateway `id`'s enrolment: its messages are refused from now on.
    pub async fn delete_gateway(&self, id: &str) -> Result<GatewayRecord, GatewayError> {
        let _one = self.changes.lock().await;
        let record = self
            .read()
            .gateways
            .get(id)
            .cloned()
            .ok_or_else(|| GatewayError::Unknown(id.into()))?;
        self.persist(IdentityKind::Gateway, id, None).await?;
        self.write().gateways.remove(id);
        Ok(record)
    }
}

impl SenderCheck for Auth {
    fn check(&self, gateway: &str, room: &RoomId) -> Result<(), SenderRefusal> {
        let ids = self.read();
        let g = ids
            .gateways
            .get(gateway)
            .ok_or_else(|| SenderRefusal::Unknown(gateway.to_owned()))?;
        if !g.enabled {
            return Err(SenderRefusal::Disabled(gateway.to_owned()));
        }
        if g.rooms.binary_search(room).is_err() {
            return Err(SenderRefusal::NotItsRoom {
                gateway: gateway.to_owned(),
                room: room.to_string(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room(id: &str) -> RoomId {
        RoomId::new(id).unwrap()
    }

    #[tokio::test]
    async fn an_enrolled_gateway_sends_for_its_rooms_until_disabled() {
        let auth = Auth::new();
        assert!(matches!(
            auth.check("gw-1", &room("XM-0001")),
            Err(SenderRefusal::Unknown(_))
        ));
        let write = |enabled| GatewayWrite {
            rooms: vec![room("XM-0002"), room("XM-0001"), room("XM-0001")],
            fingerprint: Some("AB".repeat(32)),
            enabled,
            note: "泵房网关".into(),
        };
        let r = auth
            .put_gateway("gw-1", write(true), "admin")
            .await
            .unwrap();
        assert_eq!(r.rooms, [room("XM-0001"), room("XM-0002")]);
        assert_eq!(r.fingerprint.as_deref(), Some("ab".repeat(32).as_str()));
        assert_eq!(auth.check("gw-1", &room("XM-0002")), Ok(()));
        assert!(matches!(
            auth.check("gw-1", &room("XM-0003")),
            Err(SenderRefusal::NotItsRoom { .. })
        ));
        auth.put_gateway("gw-1", write(false), "admin")
            .await
            .unwrap();
        assert!(matches!(
            auth.check("gw-1", &room("XM-0001")),
            Err(SenderRefusal::Disabled(_))
        ));
        auth.delete_gateway("gw-1").await.unwrap();
        assert!(matches!(
            auth.check("gw-1", &room("XM-0001")),
            Err(SenderRefusal::Unknown(_))
        ));
        assert!(matches!(
            auth.delete_gateway("gw-1").await,
            Err(GatewayError::Unknown(_))
        ));
    }

    #[tokio::test]
    async fn bad_enrolments_are_refused() {
        let auth = Auth::new();
        let ok = || GatewayWrite {
            rooms: vec![room("XM-0001")],
            fingerprint: None,
            enabled: true,
            note: String::new(),
        };
        assert!(matches!(
            auth.put_gateway("gw/1", ok(), "a").await,
            Err(GatewayError::Name(_))
        ));
        let mut w = ok();
        w.rooms.clear();
        assert!(matches!(
            auth.put_gateway("gw-1", w, "a").await,
            Err(GatewayError::Rooms)
        ));
        let mut w = ok();
        w.fingerprint = Some("xyz".into());
        assert!(matches!(
            auth.put_gateway("gw-1", w, "a").await,
            Err(GatewayError::Fingerprint)
        ));
        assert!(auth.gateways().is_empty());
    }
}
