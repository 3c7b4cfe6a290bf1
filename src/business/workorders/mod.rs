//! Work orders (工单): the loop from an alarm to a crew at the door and back (DOMAIN.md §7).
//!
//! - [`model`]: an order, its states and the commands that move it — who may do what, checked in
//!   one pure table.
//! - [`templates`]: what an order of a type and cause starts with (the built-in library covers
//!   the default rules; a rule names its template with `work_order = "…"`).
//! - [`teams`]: teams, on-call rosters and the dispatch decision.
//! - [`kpi`]: response, resolution, SLA compliance, first-time fix, backlog, repeat failures.
//! - [`knowledge`]: the knowledge base — failure class → problem → cause → remedy, ranked by
//!   how often each remedy closed orders in this fleet.
//! - [`store`]: orders on the records port, with the claim that keeps one open order per room
//!   and cause across writers and restarts.
//! - [`service`]: the service the API, the alarm intake and the escalation timer call.
//! - [`attachments`]: photos on an order, checked by content and size, stored beside it.
//! - [`positions`]: crews' last positions and each order's trail, from the phones (and the
//!   demo's crews) while an order is en route or on site.
//! - [`intake`]: annunciated alarms in, off the alarm path (a tap on the alarm store's event
//!   stream that never blocks), plus a reconciliation against the standing alarms at start and
//!   every minute, so that an event lost to a full queue or a crash still gets its order.

pub mod attachments;
pub mod export;
pub mod gauges;
pub mod intake;
pub mod knowledge;
pub mod kpi;
pub mod model;
pub mod positions;
pub mod service;
pub mod store;
pub mod teams;
pub mod templates;

pub use model::{OrderId, OrderState, OrderType, WorkOrder};
pub use service::WorkOrders;

use crate::store::records::RecordsError;
use cistern_rules::Severity;
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// What went wrong in the work-order service.
#[derive(Debug, thiserror::Error)]
pub enum WorkOrdersError {
    #[error(transparent)]
    Order(#[from] model::OrderError),
    #[error("no work order {0}")]
    UnknownOrder(String),
    #[error("no work-order template {0:?}")]
    UnknownTemplate(String),
    #[error("no room {0}")]
    UnknownRoom(String),
    #[error("no team {0:?}")]
    UnknownTeam(String),
    #[error("{0} kept changing under concurrent writers; try again")]
    Busy(&'static str),
    #[error("the knowledge base edit is refused: {0}")]
    InvalidKnowledge(String),
    #[error("stored work-order data is damaged: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Store(#[from] RecordsError),
    #[error(transparent)]
    Templates(#[from] templates::TemplateError),
    #[error(transparent)]
    Roster(#[from] teams::RosterError),
    #[error(transparent)]
    Attachment(#[from] attachments::AttachmentError),
    #[error(transparent)]
    Position(#[from] positions::PositionError),
}

/// Response and resolution targets of one priority.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Targets {
    /// Accepted within.
    #[serde(with = "humantime_serde")]
    pub response: Duration,
    /// Completed within.
    #[serde(with = "humantime_serde")]
    pub resolution: Duration,
}

/// `[workorders.sla]`: targets by priority (DOMAIN.md §7's engineering defaults).
#[derive(Clone, Copy, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Sla {
    #[serde(rename = "P1")]
    pub p1: Targets,
    #[serde(rename = "P2")]
    pub p2: Targets,
    #[serde(rename = "P3")]
    pub p3: Targets,
    /// "Next working day" is taken as 24 hours.
    #[serde(rename = "P4")]
    pub p4: Targets,
}

const MIN: u64 = 60;
const HOUR: u64 = 3_600;

impl Default for Sla {
    fn default() -> Self {
        let t = |response, resolution| Targets {
            response: Duration::from_secs(response),
            resolution: Duration::from_secs(resolution),
        };
        Self {
            p1: t(30 * MIN, 4 * HOUR),
            p2: t(2 * HOUR, 24 * HOUR),
            p3: t(8 * HOUR, 72 * HOUR),
            p4: t(24 * HOUR, 7 * 24 * HOUR),
        }
    }
}

impl Sla {
    pub fn of(&self, priority: Severity) -> Targets {
        [self.p1, self.p2, self.p3, self.p4][priority.index()]
    }
}

/// `[workorders]`
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct WorkOrdersConfig {
    pub enabled: bool,
    /// A site's template library (replacing the built-in one).
    pub templates: Option<PathBuf>,
    /// Local time of the rosters = UTC + this many minutes (Beijing: 480).
    pub utc_offset_minutes: i32,
    /// `YYYY-MM-DD` dates on which the `holiday` shifts run instead of the weekday's.
    pub holidays: Vec<String>,
    pub teams: Vec<teams::Team>,
    pub sla: Sla,
    /// How often overdue orders are looked for.
    #[serde(with = "humantime_serde")]
    pub check_every: Duration,
    /// How often the standing alarms are checked for an order they should have.
    #[serde(with = "humantime_serde")]
    pub reconcile_every: Duration,
    /// The largest photo accepted on an order, in bytes (8 MiB).
    pub max_attachment_bytes: u64,
}

impl Default for WorkOrdersConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            templates: None,
            utc_offset_minutes: 480,
            holidays: Vec::new(),
            teams: Vec::new(),
            sla: Sla::default(),
            check_every: Duration::from_secs(15),
            reconcile_every: Duration::from_secs(60),
            max_attachment_bytes: attachments::DEFAULT_MAX_BYTES,
        }
    }
}
