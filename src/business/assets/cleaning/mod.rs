//! Tank cleaning (水箱清洗, DOMAIN.md §8): every tank of the live fleet is cleaned and
//! disinfected every `interval_days` (182 by default — CJJ 140-2010's six months; a city sets
//! its own in `[cleaning]`, a tank its own through the API), with a water test after each
//! cleaning checked against GB 5749-2022 ([`water`]).
//!
//! The service ([`service::TankCleaning`]) keeps the cleaning records and each tank's settings
//! on the records port, rebuilds its schedule from them at start, and on a periodic sweep with
//! the node's clock: reminds the zone's on-call crew `remind_days` before a tank falls due,
//! creates one `tank_cleaning` work order per due date `order_days` ahead (through
//! [`crate::business::workorders::WorkOrders`], dispatched like any other), and tells each room
//! its tanks' last good cleaning, from which the room derives the `days_since_cleaning` fact the
//! `tank_cleaning_overdue` rule reads. A cleaning whose water fails the test is kept and flagged
//! but does not count: the tank stays due and a follow-up order is raised.

pub mod service;
pub mod water;

use crate::business::workorders::WorkOrdersError;
use crate::store::records::RecordsError;
use serde::Deserialize;
use std::time::Duration;

pub use service::{CleaningRecord, NewCleaning, TankCleaning, TankSchedule};

/// `[cleaning]`
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CleaningConfig {
    pub enabled: bool,
    /// Days between cleanings of a tank (a tank's own interval, set through the API, wins).
    pub interval_days: u32,
    /// The cleaning order is created this many days before the due date.
    pub order_days: u32,
    /// The zone's on-call crew is reminded this many days before the due date.
    pub remind_days: u32,
    /// How often the schedule is looked at.
    #[serde(with = "humantime_serde")]
    pub check_every: Duration,
    /// Local time of the due dates = UTC + this many minutes (Beijing: 480).
    pub utc_offset_minutes: i32,
}

impl Default for CleaningConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            interval_days: 182,
            order_days: 14,
            remind_days: 7,
            check_every: Duration::from_secs(3600),
            utc_offset_minutes: 480,
        }
    }
}

/// The longest interval a tank may be given, in days (a bad entry, not a schedule).
pub const MAX_INTERVAL_DAYS: u32 = 730;

/// Why the cleaning service refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum CleaningError {
    #[error("no tank {0} in the fleet")]
    UnknownTank(String),
    #[error("invalid cleaning record: {0}")]
    Invalid(String),
    #[error("interval must be 1 to {MAX_INTERVAL_DAYS} days, not {0}")]
    Interval(u32),
    #[error("concurrent writers kept changing {0}")]
    Busy(String),
    #[error("stored record does not decode: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Store(#[from] RecordsError),
    #[error(transparent)]
    WorkOrders(#[from] WorkOrdersError),
}
