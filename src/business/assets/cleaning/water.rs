//! The water test after a tank cleaning, checked against GB 5749-2022 (生活饮用水卫生标准):
//! colour ≤ 15 度, turbidity ≤ 1 NTU, no odour, pH 6.5–8.5, free chlorine 0.05–2 mg/L (the
//! tap's range, DOMAIN.md §1), total coliforms not detected, total bacterial count ≤ 100 CFU/mL.
//! Pure: the service stores the verdict beside the readings, so a record says what it was
//! judged against.

use serde::{Deserialize, Serialize};

/// The readings of one post-cleaning test.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaterTest {
    /// Colour, 度 (platinum-cobalt units).
    pub colour: f64,
    /// Turbidity, NTU.
    pub turbidity_ntu: f64,
    /// Odour or taste noticed.
    pub odour: bool,
    pub ph: f64,
    /// Free chlorine, mg/L.
    pub free_chlorine_mg_l: f64,
    /// Total coliforms, MPN or CFU per 100 mL (0: not detected).
    pub coliforms_per_100ml: f64,
    /// Total bacterial count, CFU/mL.
    pub bacteria_cfu_ml: f64,
}

/// One limit of the standard.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Limit {
    /// The reading's field in [`WaterTest`].
    pub parameter: &'static str,
    pub unit: &'static str,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

/// The limits, in the test form's order (odour: none allowed; coliforms: not detected).
pub const LIMITS: [Limit; 7] = [
    Limit {
        parameter: "colour",
        unit: "度",
        min: None,
        max: Some(15.0),
    },
    Limit {
        parameter: "turbidity_ntu",
        unit: "NTU",
        min: None,
        max: Some(1.0),
    },
    Limit {
        parameter: "odour",
        unit: "",
        min: None,
        max: Some(0.0),
    },
    Limit {
        parameter: "ph",
        unit: "",
        min: Some(6.5),
        max: Some(8.5),
    },
    Limit {
        parameter: "free_chlorine_mg_l",
        unit: "mg/L",
        min: Some(0.05),
        max: Some(2.0),
    },
    Limit {
        parameter: "coliforms_per_100ml",
        unit: "MPN/100mL",
        min: None,
        max: Some(0.0),
    },
    Limit {
        parameter: "bacteria_cfu_ml",
        unit: "CFU/mL",
        min: None,
        max: Some(100.0),
    },
];

/// A reading outside its limit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    pub parameter: String,
    pub value: f64,
}

/// Why a test was refused before it was judged.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WaterTestError {
    #[error("{0} must be a finite number ≥ 0")]
    Invalid(&'static str),
    #[error("pH must be between 0 and 14")]
    Ph,
}

impl WaterTest {
    fn values(&self) -> [(&'static str, f64); 7] {
        [
            ("colour", self.colour),
            ("turbidity_ntu", self.turbidity_ntu),
            ("odour", if self.odour { 1.0 } else { 0.0 }),
            ("ph", self.ph),
            ("free_chlorine_mg_l", self.free_chlorine_mg_l),
            ("coliforms_per_100ml", self.coliforms_per_100ml),
            ("bacteria_cfu_ml", self.bacteria_cfu_ml),
        ]
    }

    /// Refuses readings that cannot be measurements (negative, not finite, pH off the scale).
    pub fn validate(&self) -> Result<(), WaterTestError> {
        for (name, v) in self.values() {
            if !v.is_finite() || v < 0.0 {
                return Err(WaterTestError::Invalid(name));
            }
        }
        if self.ph > 14.0 {
            return Err(WaterTestError::Ph);
        }
        Ok(())
    }

    /// The readings outside GB 5749-2022's limits (empty: the water passes).
    pub fn failures(&self) -> Vec<Failure> {
        self.values()
            .iter()
            .zip(LIMITS.iter())
            .filter(|((_, v), l)| l.min.is_some_and(|m| *v < m) || l.max.is_some_and(|m| *v > m))
            .map(|((name, v), _)| Failure {
                parameter: (*name).to_owned(),
                value: *v,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> WaterTest {
        WaterTest {
            colour: 5.0,
            turbidity_ntu: 0.3,
            odour: false,
            ph: 7.2,
            free_chlorine_mg_l: 0.4,
            coliforms_per_100ml: 0.0,
            bacteria_cfu_ml: 12.0,
        }
    }

    #[test]
    fn water_within_every_limit_passes_and_each_breach_is_named() {
        assert!(good().failures().is_empty());
        let edge = WaterTest {
            colour: 15.0,
            turbidity_ntu: 1.0,
            ph: 6.5,
            free_chlorine_mg_l: 2.0,
            bacteria_cfu_ml: 100.0,
            ..good()
        };
        assert!(edge.failures().is_empty(), "limits are inclusive");
        let cases: [(WaterTest, &str); 8] = [
            (
                WaterTest {
                    colour: 16.0,
                    ..good()
                },
                "colour",
            ),
            (
                WaterTest {
                    turbidity_ntu: 1.2,
                    ..good()
                },
                "turbidity_ntu",
            ),
            (
                WaterTest {
                    odour: true,
                    ..good()
                },
                "odour",
            ),
            (WaterTest { ph: 6.4, ..good() }, "ph"),
            (WaterTest { ph: 8.6, ..good() }, "ph"),
            (
                WaterTest {
                    free_chlorine_mg_l: 0.04,
                    ..good()
                },
                "free_chlorine_mg_l",
            ),
            (
                WaterTest {
                    coliforms_per_100ml: 1.0,
                    ..good()
                },
                "coliforms_per_100ml",
            ),
            (
                WaterTest {
                    bacteria_cfu_ml: 101.0,
                    ..good()
                },
                "bacteria_cfu_ml",
            ),
        ];
        for (test, name) in cases {
            let f = test.failures();
            assert_eq!(f.len(), 1, "{name}: {f:?}");
            assert_eq!(f[0].parameter, name);
        }
    }

    #[test]
    fn impossible_readings_are_refused() {
        assert!(good().validate().is_ok());
        assert_eq!(
            WaterTest {
                turbidity_ntu: -1.0,
                ..good()
            }
            .validate(),
            Err(WaterTestError::Invalid("turbidity_ntu"))
        );
        assert!(WaterTest {
            colour: f64::NAN,
            ..good()
        }
        .validate()
        .is_err());
        assert_eq!(
            WaterTest { ph: 15.0, ..good() }.validate(),
            Err(WaterTestError::Ph)
        );
    }
}
