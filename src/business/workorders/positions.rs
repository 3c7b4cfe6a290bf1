//! Where the crews are: each crew member's last reported position (the fleet map's crew
//! markers) and each order's trail (the positions of its transitions plus the reports made
//! while it was en route). A phone reports only while its user has an order en route or on
//! site — nobody is tracked off the job — at most once per [`MIN_INTERVAL_MS`].
//!
//! Both live on the records port, so that a restart keeps them: kind `crew_position` (id: the
//! user, listed under `all`) and kind `work_order_trail` (id: the order, its reports, at most
//! [`MAX_TRAIL`], oldest dropped first). The last positions are also held in memory (a few
//! dozen crews), loaded at start.

use super::model::{OrderId, OrderState, Position, Transition, WorkOrder};
use super::WorkOrdersError;
use crate::store::records::{
    IndexEntry, IndexName, IndexRange, RecordId, RecordKind, RecordPut, Records, RecordsError,
};
use cistern_schemas::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The shortest time between two reports of one crew member.
pub const MIN_INTERVAL_MS: i64 = 4_000;
/// The most reports an order's trail keeps.
pub const MAX_TRAIL: usize = 500;
/// A position less precise than this says nothing useful about where a crew is.
pub const MAX_ACCURACY_M: f64 = 10_000.0;

/// Why a report was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PositionError {
    #[error(
        "position: lat within ±90, lon within ±180 (not both 0), accuracy 0 to {MAX_ACCURACY_M} m"
    )]
    Invalid,
    #[error("{user} has no order en route or on site: positions are taken only on the job")]
    NoActiveOrder { user: String },
    #[error("one position every {} s at most; the next in {retry_after_ms} ms", MIN_INTERVAL_MS / 1000)]
    TooFrequent { retry_after_ms: i64 },
}

/// Whether a reported position is usable: finite, on the globe, not the (0, 0) of a phone
/// without a fix, and an accuracy that means something.
pub fn valid(p: &Position) -> bool {
    p.lat.is_finite()
        && p.lon.is_finite()
        && (-90.0..=90.0).contains(&p.lat)
        && (-180.0..=180.0).contains(&p.lon)
        && !(p.lat == 0.0 && p.lon == 0.0)
        && p.accuracy_m
            .is_none_or(|a| a.is_finite() && (0.0..=MAX_ACCURACY_M).contains(&a))
}

/// A crew member's last position.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CrewPosition {
    pub user: String,
    #[serde(flatten)]
    pub position: Position,
    pub at: Timestamp,
    /// The order they were working.
    pub order: OrderId,
    /// Its state then (`en_route`, `on_site`).
    pub state: OrderState,
}

/// One point of an order's trail.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrailPoint {
    pub lat: f64,
    pub lon: f64,
    pub at: Timestamp,
    /// The transition recorded there (`on_site`); none for a report on the way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
}

/// Last positions and trails (see the module doc).
#[derive(Debug)]
pub struct Positions {
    records: Arc<dyn Records>,
    last_kind: RecordKind,
    trail_kind: RecordKind,
    all: IndexName,
    last: Mutex<HashMap<String, CrewPosition>>,
}

fn decode<T: for<'de> Deserialize<'de>>(what: &str, body: &[u8]) -> Result<T, WorkOrdersError> {
    serde_json::from_slice(body)
        .map_err(|e| WorkOrdersError::Corrupt(format!("{what} does not decode: {e}")))
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, WorkOrdersError> {
    serde_json::to_vec(value).map_err(|e| WorkOrdersError::Corrupt(e.to_string()))
}

/// The order a report belongs to: the caller's order en route, else on site.
pub fn active_order(orders: &[WorkOrder]) -> Option<&WorkOrder> {
    orders
        .iter()
        .find(|o| o.state == OrderState::EnRoute)
        .or_else(|| orders.iter().find(|o| o.state == OrderState::OnSite))
}

impl Positions {
    /// Reads the last positions from `records`.
    pub async fn load(records: Arc<dyn Records>) -> Result<Self, WorkOrdersError> {
        let p = Self {
            last_kind: RecordKind::new("crew_position")?,
            trail_kind: RecordKind::new("work_order_trail")?,
            all: IndexName::new("all")?,
            last: Mutex::new(HashMap::new()),
            records,
        };
        let stored = p
            .records
            .list_by_index(&p.last_kind, &p.all, IndexRange::value("crew"), 10_000)
            .await?;
        let mut last = HashMap::new();
        for r in stored {
            let c: CrewPosition = decode("a crew position", &r.body)?;
            last.insert(c.user.clone(), c);
        }
        *p.last.lock().unwrap_or_else(|e| e.into_inner()) = last;
        Ok(p)
    }

    /// Every crew member's last position, by name.
    pub fn last(&self) -> Vec<CrewPosition> {
        let mut all: Vec<CrewPosition> = self
            .last
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        all.sort_by(|a, b| a.user.cmp(&b.user));
        all
    }

    /// Refuses a report of `user` at `now` that comes too soon after the last one.
    pub fn check_rate(&self, user: &str, now: Timestamp) -> Result<(), PositionError> {
        let last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        match last.get(user) {
            Some(c) if now.as_millis() - c.at.as_millis() < MIN_INTERVAL_MS => {
                Err(PositionError::TooFrequent {
                    retry_after_ms: MIN_INTERVAL_MS - (now.as_millis() - c.at.as_millis()),
                })
            }
            _ => Ok(()),
        }
    }

    /// Records `report` as its user's last position (and on the order's trail while en
    /// route); durable when it returns.
    pub async fn record(&self, report: CrewPosition) -> Result<(), WorkOrdersError> {
        if report.state == OrderState::EnRoute {
            self.append_trail(&report).await?;
        }
        let id = RecordId::new(&report.user)?;
        let body = encode(&report)?;
        for _ in 0..8 {
            let expected = self
                .records
                .record(&self.last_kind, &id)
                .await?
                .map(|r| r.version);
            let put = RecordPut {
                kind: self.last_kind.clone(),
                id: id.clone(),
                expected,
                body: body.clone(),
                index: vec![IndexEntry::new(&self.all, "crew")],
            };
            match self.records.put_record(put).await {
                Ok(_) => {
                    self.last
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(report.user.clone(), report);
                    return Ok(());
                }
                Err(RecordsError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(WorkOrdersError::Busy("the crew position"))
    }

    async fn append_trail(&self, report: &CrewPosition) -> Result<(), WorkOrdersError> {
        let id = RecordId::new(report.order.as_str())?;
        let point = TrailPoint {
            lat: report.position.lat,
            lon: report.position.lon,
            at: report.at,
            action: None,
        };
        for _ in 0..8 {
            let current = self.records.record(&self.trail_kind, &id).await?;
            let (mut trail, expected): (Vec<TrailPoint>, _) = match &current {
                Some(r) => (decode("an order's trail", &r.body)?, Some(r.version)),
                None => (Vec::new(), None),
            };
            trail.push(point.clone());
            if trail.len() > MAX_TRAIL {
                let extra = trail.len() - MAX_TRAIL;
                trail.drain(..extra);
            }
            let put = RecordPut {
                kind: self.trail_kind.clone(),
                id: id.clone(),
                expected,
                body: encode(&trail)?,
                index: vec![],
            };
            match self.records.put_record(put).await {
                Ok(_) => return Ok(()),
                Err(RecordsError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(WorkOrdersError::Busy("the order's trail"))
    }

    /// The trail of `order`: its transitions' positions and the reports on the way, in time
    /// order.
    pub async fn trail(
        &self,
        order: &OrderId,
        transitions: &[Transition],
    ) -> Result<Vec<TrailPoint>, WorkOrdersError> {
        let id = RecordId::new(order.as_str())?;
        let mut trail: Vec<TrailPoint> = match self.records.record(&self.trail_kind, &id).await? {
            Some(r) => decode("an order's trail", &r.body)?,
            None => Vec::new(),
        };
        trail.extend(transitions.iter().filter_map(|t| {
            t.position.map(|p| TrailPoint {
                lat: p.lat,
                lon: p.lon,
                at: t.at,
                action: Some(t.action.as_str().to_owned()),
            })
        }));
        trail.sort_by_key(|p| p.at);
        Ok(trail)
    }
}

impl super::WorkOrders {
    /// A crew member's position from their phone (or the demo's crews): validated, rate
    /// limited, and recorded against their order en route or on site.
    pub async fn report_position(
        &self,
        user: &str,
        position: Position,
    ) -> Result<CrewPosition, WorkOrdersError> {
        if !valid(&position) {
            return Err(PositionError::Invalid.into());
        }
        let now = self.now();
        self.positions().check_rate(user, now)?;
        let mine = self
            .list(&super::store::OrderFilter {
                assignee: Some(user.to_owned()),
                open: Some(true),
                limit: 100,
                ..Default::default()
            })
            .await?;
        let order = active_order(&mine).ok_or_else(|| PositionError::NoActiveOrder {
            user: user.to_owned(),
        })?;
        let report = CrewPosition {
            user: user.to_owned(),
            position,
            at: now,
            order: order.id.clone(),
            state: order.state,
        };
        self.positions().record(report.clone()).await?;
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(lat: f64, lon: f64, accuracy_m: Option<f64>) -> Position {
        Position {
            lat,
            lon,
            accuracy_m,
        }
    }

    #[test]
    fn only_a_real_fix_is_a_position() {
        assert!(valid(&at(24.48, 118.09, Some(12.0))));
        assert!(valid(&at(-90.0, 180.0, None)));
        for bad in [
            at(90.1, 0.5, None),
            at(24.0, -180.5, None),
            at(f64::NAN, 118.0, None),
            at(24.0, f64::INFINITY, None),
            // A phone without a fix.
            at(0.0, 0.0, None),
            at(24.0, 118.0, Some(-1.0)),
            at(24.0, 118.0, Some(MAX_ACCURACY_M + 1.0)),
            at(24.0, 118.0, Some(f64::NAN)),
        ] {
            assert!(!valid(&bad), "{bad:?}");
        }
    }

    #[tokio::test]
    async fn reports_are_rate_limited_and_kept_across_a_restart_with_the_trail_en_route() {
        let d = std::env::temp_dir().join(format!("cistern-positions-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        let records: Arc<dyn Records> =
            Arc::new(crate::store::embedded::EmbeddedStore::open(&d).unwrap());
        let p = Positions::load(records.clone()).await.unwrap();
        let order = OrderId::from_sequence(7);
        let report = |ms: i64, state| CrewPosition {
            user: "crew-a".into(),
            position: at(24.4 + ms as f64 / 1e7, 118.0, Some(10.0)),
            at: Timestamp(ms),
            order: order.clone(),
            state,
        };
        p.record(report(1_000_000, OrderState::EnRoute))
            .await
            .unwrap();
        assert_eq!(
            p.check_rate("crew-a", Timestamp(1_003_000)),
            Err(PositionError::TooFrequent {
                retry_after_ms: 1_000
            })
        );
        assert_eq!(p.check_rate("crew-a", Timestamp(1_004_000)), Ok(()));
        assert_eq!(p.check_rate("crew-b", Timestamp(1_000_001)), Ok(()));
        p.record(report(1_010_000, OrderState::EnRoute))
            .await
            .unwrap();
        // On site: the last position moves, the trail does not grow (the on-site transition
        // has its own position).
        p.record(report(1_020_000, OrderState::OnSite))
            .await
            .unwrap();
        drop(p);
        let again = Positions::load(records).await.unwrap();
        let last = again.last();
        assert_eq!(last.len(), 1);
        assert_eq!(
            (last[0].at, last[0].state),
            (Timestamp(1_020_000), OrderState::OnSite)
        );
        let trail = again.trail(&order, &[]).await.unwrap();
        assert_eq!(
            trail.iter().map(|t| t.at.as_millis()).collect::<Vec<_>>(),
            [1_000_000, 1_010_000]
        );
        let _ = std::fs::remove_dir_all(&d);
    }
}
