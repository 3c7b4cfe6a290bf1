//! Online inspection (线上巡检, DOMAIN.md §8): templates of items (`templates.toml` beside this
//! module: a daily remote round and a monthly on-site one), a plan per room and template (due
//! `every_days` after the last finished inspection; due at once when there has been none),
//! inspections started by an inspector and walked item by item (ok or anomaly, with a note, a
//! value, a photo), an anomaly turned into an `inspection_anomaly` work order in one call, and
//! the figures read from the records: reports per inspection and per period, coverage (plans
//! inspected on time / due, per zone and overall) and per-inspector figures for staff
//! performance.
//!
//! Records: kind `inspection` (id `INS-<ms>-<seq>`), indexed `by_started = <ms>` (periods),
//! `by_room = <room>|<ms>`; kind `inspection_last` (id `<room>|<template>`: a plan's last
//! finished day, written when an inspection finishes), from which the plans are rebuilt at start
//! without reading every inspection ever made (a daily round of 2,100 rooms is 766,500 a year).

pub mod service;

use crate::business::workorders::WorkOrdersError;
use crate::store::records::RecordsError;
use serde::{Deserialize, Serialize};

pub use service::{Inspection, Inspections, ItemInput, ItemStatus};

/// What an item asks the inspector to check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemKind {
    /// A live value within `[min, max]`, checked from the live view and confirmed.
    LiveValue,
    /// A camera view looked at.
    Camera,
    /// Doors and intrusion points armed.
    Security,
    /// The tanks' levels plausible.
    TankLevel,
    /// A number read on site (`unit`, `[min, max]`).
    Reading,
    /// A photo taken on site.
    Photo,
}

/// One item of a template.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateItem {
    pub kind: ItemKind,
    pub text: String,
    pub text_zh: String,
    /// The room point a `live_value` reads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub point: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
}

/// An inspection template.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Template {
    pub id: String,
    pub name: String,
    pub name_zh: String,
    /// A room is due again this many days after its last inspection of this template.
    pub every_days: u32,
    /// Walked in the room (else from the console).
    pub on_site: bool,
    #[serde(rename = "item")]
    pub items: Vec<TemplateItem>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Library {
    template: Vec<Template>,
}

/// The built-in templates.
pub fn builtin_templates() -> Result<Vec<Template>, InspectionError> {
    let lib: Library = toml::from_str(include_str!("templates.toml"))
        .map_err(|e| InspectionError::Templates(e.to_string()))?;
    for t in &lib.template {
        if t.items.is_empty() || t.every_days == 0 {
            return Err(InspectionError::Templates(format!(
                "template {}: no items or no period",
                t.id
            )));
        }
    }
    Ok(lib.template)
}

/// The work-order template an anomaly raises.
pub const ORDER_TEMPLATE: &str = "inspection_anomaly";

/// Why the inspection service refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum InspectionError {
    #[error("inspection templates do not load: {0}")]
    Templates(String),
    #[error("no inspection template {0}")]
    UnknownTemplate(String),
    #[error("no room {0} in the fleet")]
    UnknownRoom(String),
    #[error("no inspection {0}")]
    UnknownInspection(String),
    #[error("inspection {0} has no item {1}")]
    UnknownItem(String, usize),
    #[error("inspection {0} is finished")]
    Finished(String),
    #[error("{0}")]
    Invalid(String),
    #[error("inspection {0} is {1}'s")]
    NotInspector(String, String),
    #[error("concurrent writers kept changing {0}")]
    Busy(String),
    #[error("no work orders on this node")]
    NoWorkOrders,
    #[error("stored record does not decode: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Store(#[from] RecordsError),
    #[error(transparent)]
    WorkOrders(#[from] WorkOrdersError),
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_builtin_templates_load_with_their_items() {
        let t = super::builtin_templates().unwrap();
        let ids: Vec<&str> = t.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(ids, ["daily_remote", "monthly_onsite"]);
        assert!(t.iter().all(|t| !t.items.is_empty()));
        assert!(t[0]
            .items
            .iter()
            .filter(|i| i.kind == super::ItemKind::LiveValue)
            .all(|i| i.point.is_some() && i.min.is_some() && i.max.is_some()));
    }
}
