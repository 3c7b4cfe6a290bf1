//! Rule ids and alarm keys.
//!
//! A rule id is the file stem of its script (`rules/library/pump_fault.rhai` → `pump_fault`).
//! One rule yields one alarm per device it applies to, so an alarm is keyed by rule and device
//! unit within a room: `pump_fault@P1`, `mains_loss@room`. The room itself is implicit (every
//! [`crate::RoomEngine`] belongs to one room) and is carried by each event's source.

use cistern_schemas::DeviceUnit;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

/// Why a rule id or alarm key was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RuleIdError {
    #[error("rule id {0:?} must be 1-64 characters of a-z, 0-9 and '_', starting with a letter")]
    BadRuleId(String),
    #[error("alarm key {0:?} is not `<rule>@<unit>` (unit: room, P1, T1, C1 …)")]
    BadKey(String),
}

/// A rule id: `[a-z][a-z0-9_]{0,63}`, the stem of the rule's file.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RuleId(Arc<str>);

impl RuleId {
    /// Validates and wraps a rule id.
    pub fn new(s: &str) -> Result<Self, RuleIdError> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.as_bytes()[0].is_ascii_lowercase()
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if ok {
            Ok(Self(Arc::from(s)))
        } else {
            Err(RuleIdError::BadRuleId(s.chars().take(80).collect()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A built-in id known to be valid (`chattering`, `zone_event`).
    pub(crate) fn builtin(s: &'static str) -> Self {
        Self(Arc::from(s))
    }
}

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RuleId({:?})", &*self.0)
    }
}

impl FromStr for RuleId {
    type Err = RuleIdError;
    fn from_str(s: &str) -> Result<Self, RuleIdError> {
        Self::new(s)
    }
}

impl Serialize for RuleId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for RuleId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::new(&s).map_err(serde::de::Error::custom)
    }
}

/// One alarm of a room: a rule applied to one device unit. Displays as `pump_fault@P1`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AlarmKey {
    pub rule: RuleId,
    pub unit: DeviceUnit,
}

impl AlarmKey {
    pub fn new(rule: RuleId, unit: DeviceUnit) -> Self {
        Self { rule, unit }
    }

    /// The key of a room-level alarm.
    pub fn room(rule: RuleId) -> Self {
        Self {
            rule,
            unit: DeviceUnit::Room,
        }
    }
}

impl fmt::Display for AlarmKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.rule, self.unit)
    }
}

impl fmt::Debug for AlarmKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AlarmKey({self})")
    }
}

impl FromStr for AlarmKey {
    type Err = RuleIdError;
    fn from_str(s: &str) -> Result<Self, RuleIdError> {
        let bad = || RuleIdError::BadKey(s.chars().take(80).collect());
        let (rule, unit) = s.split_once('@').ok_or_else(bad)?;
        Ok(Self {
            rule: RuleId::new(rule).map_err(|_| bad())?,
            unit: unit.parse().map_err(|_| bad())?,
        })
    }
}

impl Serialize for AlarmKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for AlarmKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_through_text() {
        for s in [
            "pump_fault@P1",
            "mains_loss@room",
            "tank_low@T2",
            "camera_fault@C1",
        ] {
            let k: AlarmKey = s.parse().unwrap();
            assert_eq!(k.to_string(), s);
            let json = serde_json::to_string(&k).unwrap();
            assert_eq!(serde_json::from_str::<AlarmKey>(&json).unwrap(), k);
        }
        assert!("pump_fault".parse::<AlarmKey>().is_err());
        assert!("Pump@P1".parse::<AlarmKey>().is_err());
        assert!("pump@Q1".parse::<AlarmKey>().is_err());
        assert!(RuleId::new("1abc").is_err());
        assert!(RuleId::new("").is_err());
    }
}
