//! Sample quality: good, uncertain, bad or stale, always with a reason when not good.
//!
//! Quality travels with every value so that alarm rules can refuse to act on a failed sensor
//! (that is `bad_analog`'s job) and dashboards can grey out what they cannot trust.

use crate::catalog::{PointKind, PointSpec};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The OPC-style quality level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QualityLevel {
    Good,
    Uncertain,
    Bad,
    Stale,
}

/// A quality level and, when not good, why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quality {
    pub level: QualityLevel,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Quality {
    pub const GOOD: Quality = Quality {
        level: QualityLevel::Good,
        reason: None,
    };

    pub fn bad(reason: impl Into<String>) -> Self {
        Self {
            level: QualityLevel::Bad,
            reason: Some(reason.into()),
        }
    }

    pub fn uncertain(reason: impl Into<String>) -> Self {
        Self {
            level: QualityLevel::Uncertain,
            reason: Some(reason.into()),
        }
    }

    pub fn stale(reason: impl Into<String>) -> Self {
        Self {
            level: QualityLevel::Stale,
            reason: Some(reason.into()),
        }
    }

    pub fn is_good(&self) -> bool {
        self.level == QualityLevel::Good
    }
}

impl fmt::Display for Quality {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.level {
            QualityLevel::Good => "good",
            QualityLevel::Uncertain => "uncertain",
            QualityLevel::Bad => "bad",
            QualityLevel::Stale => "stale",
        };
        match &self.reason {
            Some(r) => write!(f, "{level} ({r})"),
            None => f.write_str(level),
        }
    }
}

/// Why a value could not be accepted at all (it is dropped and counted, never stored).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum ValueRejection {
    #[error("value is NaN or infinite")]
    NotFinite,
    #[error("digital value is neither 0 nor 1")]
    NotDigital,
    #[error("counter value is negative")]
    NegativeCounter,
}

impl ValueRejection {
    /// A bounded label for metrics.
    pub fn label(self) -> &'static str {
        match self {
            ValueRejection::NotFinite => "not_finite",
            ValueRejection::NotDigital => "not_digital",
            ValueRejection::NegativeCounter => "negative_counter",
        }
    }
}

/// Assesses a raw value against its point spec: rejects what cannot be a value of that point,
/// and grades the rest (NAMUR NE43 for 4-20 mA transmitters, range limits otherwise).
pub fn assess(spec: &PointSpec, value: f64) -> Result<Quality, ValueRejection> {
    if !value.is_finite() {
        return Err(ValueRejection::NotFinite);
    }
    match spec.kind {
        PointKind::Digital => {
            if value == 0.0 || value == 1.0 {
                Ok(Quality::GOOD)
            } else {
                Err(ValueRejection::NotDigital)
            }
        }
        PointKind::Counter if value < 0.0 => Err(ValueRejection::NegativeCounter),
        PointKind::Counter => Ok(Quality::GOOD),
        PointKind::Analog | PointKind::Event => {
            if let Some(ma) = spec.milliamps(value) {
                if ma < 3.6 {
                    return Ok(Quality::bad(format!(
                        "sensor failed: {ma:.2} mA < 3.6 mA (NE43)"
                    )));
                }
                if ma > 21.0 {
                    return Ok(Quality::bad(format!(
                        "sensor failed: {ma:.2} mA > 21 mA (NE43)"
                    )));
                }
                if !(3.8..=20.5).contains(&ma) {
                    return Ok(Quality::uncertain(format!("saturated at {ma:.2} mA")));
                }
                return Ok(Quality::GOOD);
            }
            if value < spec.lo || value > spec.hi {
                Ok(Quality::bad(format!(
                    "out of range [{}, {}] {}",
                    spec.lo, spec.hi, spec.unit
                )))
            } else {
                Ok(Quality::GOOD)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::DeviceKind;

    fn spec(kind: DeviceKind, name: &str) -> &'static PointSpec {
        &kind.points()[kind.point_index(name).unwrap()]
    }

    #[test]
    fn ne43_separates_failed_from_saturated() {
        let p = spec(DeviceKind::Room, "outlet_pressure");
        assert!(assess(p, 0.45).unwrap().is_good());
        let failed = assess(p, p.value_at_milliamps(3.0)).unwrap();
        assert_eq!(failed.level, QualityLevel::Bad);
        assert!(failed.reason.unwrap().contains("NE43"));
        let saturated = assess(p, p.value_at_milliamps(20.8)).unwrap();
        assert_eq!(saturated.level, QualityLevel::Uncertain);
        assert_eq!(
            assess(p, p.value_at_milliamps(22.0)).unwrap().level,
            QualityLevel::Bad
        );
    }

    #[test]
    fn impossible_values_are_rejected() {
        let freq = spec(DeviceKind::Pump, "frequency");
        assert_eq!(assess(freq, f64::NAN), Err(ValueRejection::NotFinite));
        assert_eq!(assess(freq, f64::INFINITY), Err(ValueRejection::NotFinite));
        assert_eq!(assess(freq, 80.0).unwrap().level, QualityLevel::Bad);
        let run = spec(DeviceKind::Pump, "running");
        assert_eq!(assess(run, 0.5), Err(ValueRejection::NotDigital));
        let hours = spec(DeviceKind::Pump, "run_hours");
        assert_eq!(assess(hours, -1.0), Err(ValueRejection::NegativeCounter));
    }
}
