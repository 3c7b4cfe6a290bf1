//! Parts lifecycle (DOMAIN.md §8, issue 21 items 3–5): the wearing parts of every room's
//! equipment as components ([`model`]), their install, replacement and failure events (from
//! the archive, completed work orders, by hand, or — in the demo only — a simulated history,
//! [`demo`]), the failure curves fitted per class and per vendor/model with the literature
//! curves as the fallback, each part's risk, the monthly replacement plan, preventive orders
//! raised ahead of it, the spare-parts forecast and the suppliers' comparison
//! ([`analysis`], pure), kept by the [`service::Lifecycle`] service.
//!
//! Why here and not in the archive: the archive says what is installed; the lifecycle says how
//! long it lasts. The archive's change feed calls [`service::Lifecycle::sync_room`].

pub mod analysis;
pub mod demo;
pub mod model;
pub mod service;
#[cfg(test)]
mod tests;

use model::ComponentClass;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// A planned replacement's and a failure's cost (any currency, same for all classes).
#[derive(Clone, Copy, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Cost {
    pub planned: f64,
    pub failure: f64,
}

/// The costs per class (`[lifecycle.costs]`); a class not given uses [`Costs::default`]'s.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(transparent)]
pub struct Costs(pub BTreeMap<ComponentClass, Cost>);

impl Default for Costs {
    fn default() -> Self {
        Self(
            ComponentClass::ALL
                .into_iter()
                .map(|c| (c, Self::built_in(c)))
                .collect(),
        )
    }
}

impl Costs {
    /// Planned part and labour versus an emergency call-out with the outage (yuan; a failed
    /// seal often takes the bearings with it).
    fn built_in(class: ComponentClass) -> Cost {
        let (planned, failure) = match class {
            ComponentClass::Pump => (12_000.0, 30_000.0),
            ComponentClass::Motor => (8_000.0, 20_000.0),
            ComponentClass::MechanicalSeal => (1_500.0, 8_000.0),
            ComponentClass::Bearing => (1_000.0, 6_000.0),
            ComponentClass::PressureTransducer => (800.0, 2_000.0),
            ComponentClass::ControlValve => (3_000.0, 6_000.0),
        };
        Cost { planned, failure }
    }

    pub fn of(&self, class: ComponentClass) -> Cost {
        self.0
            .get(&class)
            .copied()
            .unwrap_or_else(|| Self::built_in(class))
    }
}

/// `[lifecycle]`
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LifecycleConfig {
    pub enabled: bool,
    /// Running hours per calendar hour of a pump's parts when its room has no run-hours
    /// counter (transducers and valves always count calendar hours).
    pub duty: f64,
    /// Preventive replacement orders are raised (else the plan is only shown).
    pub preventive_orders: bool,
    /// Preventive orders are raised this many days before the planned replacement.
    pub lead_days: u32,
    /// The spare-parts forecast's horizon.
    pub horizon_days: u32,
    /// How often run hours are read and preventive orders looked for.
    #[serde(with = "humantime_serde")]
    pub check_every: Duration,
    pub costs: Costs,
}

impl Default for LifecycleConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            duty: 0.5,
            preventive_orders: true,
            lead_days: 14,
            horizon_days: 365,
            check_every: Duration::from_secs(3600),
            costs: Costs::default(),
        }
    }
}

/// What went wrong in the lifecycle.
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    #[error("unknown component {0}")]
    UnknownComponent(String),
    #[error("invalid: {0}")]
    Invalid(String),
    #[error(transparent)]
    Records(#[from] crate::store::records::RecordsError),
    #[error("encoding a record: {0}")]
    Encoding(#[from] serde_json::Error),
}
