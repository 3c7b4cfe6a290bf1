//! Rule metadata: the TOML header of a rule file.
//!
//! A rule file opens with `//!` comment lines that hold TOML; the Rhai body follows. Keeping
//! the metadata in comments means the whole file is still valid Rhai, so the script is compiled
//! from the file as is and compiler positions are the file's own lines and columns. Unknown keys
//! are refused (`deny_unknown_fields`): a misspelt `on_dealy` must not silently mean "no delay".
//! rules/README.md documents every key.

use crate::ids::RuleId;
use cistern_schemas::DeviceKind;
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// Alarm priority, P1 (critical) … P4 (low).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Severity {
    P1,
    P2,
    P3,
    P4,
}

impl Severity {
    pub const ALL: [Severity; 4] = [Severity::P1, Severity::P2, Severity::P3, Severity::P4];

    /// `steps` levels more urgent, saturating at P1.
    pub fn raised(self, steps: u8) -> Severity {
        let i = (self.index() as u8).saturating_sub(steps);
        Severity::ALL[usize::from(i)]
    }

    /// 0 for P1 … 3 for P4 (an index into per-severity tables).
    pub fn index(self) -> usize {
        match self {
            Severity::P1 => 0,
            Severity::P2 => 1,
            Severity::P3 => 2,
            Severity::P4 => 3,
        }
    }

    pub fn as_str(self) -> &'static str {
        ["P1", "P2", "P3", "P4"][self.index()]
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a boolean condition becomes an alarm (翻转, "flip"): while it holds, or on an edge.
///
/// Edge triggers are momentary: the alarm is raised at the edge and returns at once
/// (returned-unacknowledged, so it still needs an acknowledgement) unless it is latched.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// Active while the condition is true (the usual alarm).
    #[default]
    Level,
    /// Raised when the condition goes false → true.
    Rising,
    /// Raised when the condition goes true → false.
    Falling,
    /// Raised on any change of the condition.
    Change,
}

/// Hysteresis for threshold verdicts (`below`, `above`, `outside`): an alarm that is on stays
/// on until the value is back past the limit by this much.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Deadband {
    /// In the value's own unit (MPa, %, mg/L …).
    Absolute(f64),
    /// A percentage of the limit's magnitude: `"2%"`.
    PercentOfLimit(f64),
}

impl Deadband {
    /// The band in the value's unit for a given limit.
    pub fn width(self, limit: f64) -> f64 {
        match self {
            Deadband::Absolute(w) => w.abs(),
            Deadband::PercentOfLimit(p) => (p / 100.0 * limit).abs(),
        }
    }
}

impl<'de> Deserialize<'de> for Deadband {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Num(f64),
            Int(i64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Num(v) => Ok(Deadband::Absolute(v)),
            Raw::Int(v) => Ok(Deadband::Absolute(v as f64)),
            Raw::Text(t) => {
                let p = t
                    .trim()
                    .strip_suffix('%')
                    .and_then(|p| p.trim().parse::<f64>().ok())
                    .filter(|p| p.is_finite() && *p >= 0.0)
                    .ok_or_else(|| {
                        serde::de::Error::custom(format!(
                            "deadband {t:?} is neither a number nor a percentage like \"2%\""
                        ))
                    })?;
                Ok(Deadband::PercentOfLimit(p))
            }
        }
    }
}

fn one() -> u8 {
    1
}

/// One rung of an escalation ladder: unacknowledged for `after` since it was raised → severity
/// up by `raise` and a notification to `notify`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EscalationStep {
    #[serde(with = "humantime_serde")]
    pub after: Duration,
    pub notify: String,
    #[serde(default = "one")]
    pub raise: u8,
}

/// Escalation by recurrence: `count` activations within `window` → severity up one step for
/// that activation and a notification to `notify`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recurrence {
    pub count: u32,
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    pub notify: String,
}

/// Per-rule override of chatter detection (defaults in [`crate::EngineConfig`]).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatterOverride {
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub count: Option<u32>,
    #[serde(default, with = "humantime_serde")]
    pub window: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub shelve_for: Option<Duration>,
}

/// Something the host should do when the alarm is raised (carried on the `raised` event).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleAction {
    /// Bookmark the room's camera recordings around the event (intrusion).
    BookmarkVideo,
}

/// A rule parameter: a threshold or a constant the script reads by name.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ParamValue {
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
}

/// The metadata of one rule (the TOML header).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleMeta {
    pub id: RuleId,
    /// Which devices the rule is evaluated for: `room`, or once per pump / tank / camera.
    pub applies_to: DeviceKind,
    pub severity: Severity,
    /// Message template: `{value}`, `{limit}`, `{device}`, `{room}`, any input or param by
    /// name, with an optional precision: `{outlet_pressure:.2}`.
    pub message: String,
    /// The message in Chinese (zh-CN), with the same fields as `message`. Optional for a
    /// user's rule (alarms then carry the English text in `message_zh` too); every rule of the
    /// shipped library has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_zh: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// The description in Chinese (zh-CN); optional like `message_zh`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description_zh: Option<String>,
    /// The condition must hold this long before the alarm is raised.
    #[serde(default, with = "humantime_serde")]
    pub on_delay: Duration,
    /// The condition must be gone this long before the alarm clears.
    #[serde(default, with = "humantime_serde")]
    pub off_delay: Duration,
    /// Hysteresis applied to threshold verdicts.
    #[serde(default)]
    pub deadband: Option<Deadband>,
    #[serde(default)]
    pub trigger: Trigger,
    /// Invert the condition (normally-closed contacts).
    #[serde(default)]
    pub invert: bool,
    /// Stays active after the condition clears until a user resets it.
    #[serde(default)]
    pub latched: bool,
    /// Rules whose active alarm suppresses this one (same room).
    #[serde(default)]
    pub parents: Vec<RuleId>,
    /// The escalation ladder; absent = the engine's default ladder for the severity; `[]` = none.
    #[serde(default)]
    pub escalation: Option<Vec<EscalationStep>>,
    #[serde(default)]
    pub recurrence: Option<Recurrence>,
    #[serde(default)]
    pub chatter: Option<ChatterOverride>,
    /// The facts the script reads (`name`, or `name?` when the script copes with an unknown
    /// value). Anything else is a compile error.
    #[serde(default)]
    pub inputs: Vec<String>,
    /// Named constants available to the script.
    #[serde(default)]
    pub params: BTreeMap<String, ParamValue>,
    /// A quality/communications rule: it runs on bad or stale inputs (which read as `()`).
    #[serde(default)]
    pub quality_rule: bool,
    #[serde(default)]
    pub actions: Vec<RuleAction>,
    /// The work-order template an annunciated alarm of this rule dispatches a crew with
    /// (`pump_fault`); none: the alarm sends nobody by itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work_order: Option<String>,
}

impl RuleMeta {
    /// The Chinese message template, or the English one when the rule has none.
    pub fn chinese_message(&self) -> &str {
        self.message_zh.as_deref().unwrap_or(&self.message)
    }

    /// The Chinese description, or the English one when the rule has none.
    pub fn chinese_description(&self) -> Option<&str> {
        self.description_zh
            .as_deref()
            .or(self.description.as_deref())
    }
}

/// Where a problem in a rule file is: 1-based line and column (0 when unknown).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    pub line: u32,
    pub column: u32,
}

/// A header that could not be parsed.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct HeaderError {
    pub position: Position,
    pub message: String,
}

/// Splits the `//!` header off a rule file and parses it. The body is not touched.
pub fn parse_header(source: &str) -> Result<RuleMeta, HeaderError> {
    // Keep, for each header line, its 1-based line number in the file and the column its TOML
    // text starts at, to map TOML error spans back onto the file.
    let mut toml_text = String::new();
    let mut origins: Vec<(usize, u32, u32)> = Vec::new(); // (offset in toml_text, line, col)
    for (i, line) in source.lines().enumerate() {
        let trimmed = line.trim_start();
        if let Some(rest) = trimmed.strip_prefix("//!") {
            let indent = line.len() - trimmed.len();
            let text = rest.strip_prefix(' ').unwrap_or(rest);
            let col = (indent + 3 + (rest.len() - text.len())) as u32 + 1;
            origins.push((toml_text.len(), i as u32 + 1, col));
            toml_text.push_str(text);
            toml_text.push('\n');
        } else if trimmed.is_empty() {
            continue;
        } else {
            break;
        }
    }
    if origins.is_empty() {
        return Err(HeaderError {
            position: Position { line: 1, column: 1 },
            message: "missing metadata: a rule file starts with `//!` lines of TOML (id, \
                      applies_to, severity, message, …)"
                .into(),
        });
    }
    toml::from_str::<RuleMeta>(&toml_text).map_err(|e| {
        let position = e
            .span()
            .and_then(|span| {
                let (off, line, col) = origins
                    .iter()
                    .rev()
                    .find(|(off, _, _)| *off <= span.start)?;
                Some(Position {
                    line: *line,
                    column: col + (span.start - off) as u32,
                })
            })
            .unwrap_or(Position { line: 1, column: 1 });
        HeaderError {
            position,
            message: format!("metadata: {}", e.message()),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "//! id = \"x\"\n//! applies_to = \"pump\"\n//! severity = \"P2\"\n\
                          //! message = \"m\"\n//! on_delay = \"15s\"\n//! deadband = \"2%\"\nfault\n";

    #[test]
    fn header_parses() {
        let m = parse_header(HEADER).unwrap();
        assert_eq!(m.id.as_str(), "x");
        assert_eq!(m.applies_to, DeviceKind::Pump);
        assert_eq!(m.on_delay, Duration::from_secs(15));
        assert_eq!(m.deadband, Some(Deadband::PercentOfLimit(2.0)));
        assert_eq!(m.trigger, Trigger::Level);
        assert!(m.escalation.is_none());
    }

    #[test]
    fn header_errors_point_at_the_file() {
        let src = HEADER.replace("on_delay", "on_dealy");
        let e = parse_header(&src).unwrap_err();
        assert_eq!(e.position.line, 5, "{e:?}");
        assert_eq!(e.position.column, 5, "{e:?}");
        assert!(e.message.contains("on_dealy"), "{e:?}");
        let e = parse_header("fault\n").unwrap_err();
        assert!(e.message.contains("missing metadata"));
    }

    #[test]
    fn chinese_texts_are_optional() {
        let m = parse_header(HEADER).unwrap();
        assert_eq!((m.message_zh, m.description_zh), (None, None));
        let src = HEADER.replace(
            "//! on_delay",
            "//! message_zh = \"{device} 故障\"\n//! description_zh = \"水泵故障\"\n//! on_delay",
        );
        let m = parse_header(&src).unwrap();
        assert_eq!(m.message_zh.as_deref(), Some("{device} 故障"));
        assert_eq!(m.description_zh.as_deref(), Some("水泵故障"));
        assert_eq!(m.chinese_message(), "{device} 故障");
        let src = HEADER.replace(
            "//! on_delay",
            "//! description = \"Pump fault\"\n//! on_delay",
        );
        let m = parse_header(&src).unwrap();
        assert_eq!(m.chinese_message(), "m", "falls back to English");
        assert_eq!(m.chinese_description(), Some("Pump fault"));
    }

    #[test]
    fn severity_raises_saturate() {
        assert_eq!(Severity::P3.raised(1), Severity::P2);
        assert_eq!(Severity::P2.raised(5), Severity::P1);
        assert_eq!(Severity::P4.raised(0), Severity::P4);
    }
}
