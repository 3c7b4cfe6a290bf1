//! Golden cases: an input series → the expected alarm transitions.
//!
//! A case (`rules/cases/<name>.toml`) starts from a healthy room ([`RoomFacts::nominal`]),
//! applies timed changes of facts, qualities, operator commands and external conditions, runs
//! the engine in simulated time (it jumps from one timer deadline to the next, as a paused
//! clock would) and compares the transitions of the watched rules with the expected ones,
//! exactly and in order. A mismatch is shown side by side. rules/README.md documents the format.

use crate::engine::{Command, CommandAction, EngineConfig, RoomEngine};
use crate::event::{AlarmEvent, AlarmState, EventKind};
use crate::facts::{split_path, RoomFacts, Touched};
use crate::ids::{AlarmKey, RuleId};
use crate::meta::Severity;
use crate::notify::Notification;
use crate::ruleset::{Diagnostic, RuleSet};
use cistern_schemas::{DeviceUnit, QualityLevel, RoomId, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The start of every case's simulated time (2023-11-14T22:13:20Z).
pub const CASE_EPOCH: Timestamp = Timestamp(1_700_000_000_000);

/// A golden case file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub description: String,
    #[serde(default)]
    pub room: RoomShape,
    /// Rules whose events are compared; default: the rules of the expected events.
    #[serde(default)]
    pub watch: Vec<RuleId>,
    /// Run until this offset (default: one second after the last step or expectation).
    #[serde(default, with = "humantime_serde")]
    pub end: Option<Duration>,
    /// Engine settings for this case (chatter, escalation ladders …).
    #[serde(default)]
    pub config: Option<EngineConfig>,
    /// Extra rules for this case only: id → source (flip/inversion examples, sandbox tests).
    #[serde(default)]
    pub extra_rules: BTreeMap<String, String>,
    /// Changes applied before the start.
    #[serde(default)]
    pub initial: Changes,
    #[serde(default, rename = "step")]
    pub steps: Vec<Step>,
    #[serde(default, rename = "expect")]
    pub expected: Vec<Expected>,
}

impl Case {
    /// The rules the case's outcome is compared on: the watched rules and the rules of the
    /// expected events — the rules it exercises.
    pub fn covers(&self) -> Vec<RuleId> {
        let mut out: Vec<RuleId> = self.watch.clone();
        for e in &self.expected {
            if !out.contains(&e.key.rule) {
                out.push(e.key.rule.clone());
            }
        }
        out
    }
}

/// The equipment of the case's room.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RoomShape {
    pub pumps: u8,
    pub tanks: u8,
    pub cameras: u8,
}

impl Default for RoomShape {
    fn default() -> Self {
        Self {
            pumps: 3,
            tanks: 2,
            cameras: 2,
        }
    }
}

/// Changes of facts.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Changes {
    /// Values by path (`outlet_pressure`, `P1.fault`, `T1.level_pct`, `room_online`); booleans
    /// are 0/1. A point set this way becomes good and fresh. A series fact (`leak_nights`) takes
    /// an array of numbers (`nan` = a night without data).
    #[serde(default)]
    pub set: BTreeMap<String, toml::Value>,
    /// Points that turn bad (value kept).
    #[serde(default)]
    pub bad: Vec<String>,
    /// Points that turn stale.
    #[serde(default)]
    pub stale: Vec<String>,
    /// Points that turn good and fresh again.
    #[serde(default)]
    pub good: Vec<String>,
    /// Points that become unknown (never received).
    #[serde(default)]
    pub missing: Vec<String>,
    /// Seconds a point has been flat.
    #[serde(default)]
    pub flat_s: BTreeMap<String, f64>,
}

/// A timed step.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    #[serde(with = "humantime_serde")]
    pub at: Duration,
    #[serde(flatten)]
    pub changes: Changes,
    #[serde(default)]
    pub command: Option<CaseCommand>,
    /// Set an external condition: `{ id = "zone_event", active = true }`.
    #[serde(default)]
    pub external: Option<External>,
}

/// An operator command in a case.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseCommand {
    pub key: AlarmKey,
    /// ack, shelve, unshelve, remove_from_service, return_to_service, reset.
    pub action: String,
    #[serde(default = "default_user")]
    pub user: String,
    #[serde(default)]
    pub comment: String,
    /// Shelve duration.
    #[serde(default, rename = "for", with = "humantime_serde")]
    pub duration: Option<Duration>,
    #[serde(default)]
    pub reason: String,
    /// The command is expected to be refused.
    #[serde(default)]
    pub expect_error: bool,
}

fn default_user() -> String {
    "operator".into()
}

/// An external condition change.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct External {
    pub id: RuleId,
    pub active: bool,
}

/// One expected transition; unset optional fields are not compared.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expected {
    #[serde(with = "humantime_serde")]
    pub at: Duration,
    pub key: AlarmKey,
    pub kind: EventKind,
    #[serde(default)]
    pub to: Option<AlarmState>,
    #[serde(default)]
    pub severity: Option<Severity>,
    #[serde(default)]
    pub parent: Option<AlarmKey>,
    #[serde(default)]
    pub first_out: Option<bool>,
    #[serde(default)]
    pub step: Option<u8>,
    #[serde(default)]
    pub notify: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
    /// A substring of the message.
    #[serde(default)]
    pub message: Option<String>,
    /// A substring of the Chinese message.
    #[serde(default)]
    pub message_zh: Option<String>,
    /// The event asks the host to bookmark video.
    #[serde(default)]
    pub bookmark_video: Option<bool>,
}

/// The outcome of one case.
#[derive(Clone, Debug)]
pub struct CaseResult {
    pub name: String,
    pub description: String,
    pub passed: bool,
    /// A readable diff, empty when passed.
    pub diff: String,
    /// The first transition that differs, when the case ran and failed.
    pub difference: Option<CaseDifference>,
    /// Why the case could not run (a command refused, a bad path), when it could not.
    pub error: Option<String>,
    /// Every event the case produced (watched or not).
    pub events: Vec<AlarmEvent>,
    pub notifications: Vec<Notification>,
    /// Rules the case's expectations cover.
    pub covers: Vec<RuleId>,
}

/// The first transition of a failed case that is not as expected, in the words of the diff:
/// `expected` is what the case asks for, `got` what the rules did (`None`: no transition there).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CaseDifference {
    /// 1 for the first transition of the watched rules.
    pub transition: usize,
    pub expected: Option<String>,
    pub got: Option<String>,
}

impl fmt::Display for CaseResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.passed {
            writeln!(f, "ok     {}", self.name)
        } else {
            writeln!(f, "FAILED {}: {}", self.name, self.description)?;
            f.write_str(&self.diff)
        }
    }
}

/// A case that could not be run at all.
#[derive(Debug, thiserror::Error)]
pub enum CaseError {
    #[error("{file}: {message}")]
    Invalid { file: PathBuf, message: String },
    #[error("cannot read {file}: {source}")]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
}

/// Parses a case file.
pub fn load_case(path: &Path) -> Result<Case, CaseError> {
    let text = std::fs::read_to_string(path).map_err(|source| CaseError::Read {
        file: path.to_owned(),
        source,
    })?;
    parse_case(&text, path)
}

/// Parses the text of a case; `file` names it in the error.
pub fn parse_case(text: &str, file: &Path) -> Result<Case, CaseError> {
    toml::from_str(text).map_err(|e| CaseError::Invalid {
        file: file.to_owned(),
        message: e.to_string(),
    })
}

fn ms(d: Duration) -> i64 {
    d.as_millis() as i64
}

fn offset(t: Timestamp) -> String {
    let d = Duration::from_millis(t.0.saturating_sub(CASE_EPOCH.0).max(0) as u64);
    if d.is_zero() {
        "0s".into()
    } else {
        humantime::format_duration(d).to_string()
    }
}

fn value_of(v: &toml::Value) -> Option<f64> {
    match v {
        toml::Value::Float(f) => Some(*f),
        toml::Value::Integer(i) => Some(*i as f64),
        toml::Value::Boolean(b) => Some(f64::from(u8::from(*b))),
        _ => None,
    }
}

/// Applies changes; returns what they touched.
fn apply_changes(facts: &mut RoomFacts, c: &Changes) -> Result<Touched, String> {
    let mut touched = Touched::none();
    let touch = |t: &mut Touched, path: &str| -> Result<(), String> {
        let (unit, name) = split_path(path).map_err(|e| e.to_string())?;
        if unit == DeviceUnit::Room {
            t.fact(unit, name).map_err(|e| e.to_string())?;
        } else {
            t.device(unit);
        }
        Ok(())
    };
    for (path, v) in &c.set {
        if let toml::Value::Array(items) = v {
            let values = items
                .iter()
                .map(value_of)
                .collect::<Option<Vec<f64>>>()
                .ok_or_else(|| format!("{path}: every item must be a number"))?;
            facts.set_series(path, values).map_err(|e| e.to_string())?;
            touch(&mut touched, path)?;
            continue;
        }
        let v = value_of(v).ok_or_else(|| format!("{path}: value must be a number or a bool"))?;
        facts.set_path(path, v).map_err(|e| e.to_string())?;
        touch(&mut touched, path)?;
    }
    let mut requality =
        |paths: &[String], f: &dyn Fn(&mut crate::facts::PointFact)| -> Result<(), String> {
            for path in paths {
                let (unit, name) = split_path(path).map_err(|e| e.to_string())?;
                let points = facts.points_mut(unit).map_err(|e| e.to_string())?;
                match points.get_mut(name).map_err(|e| e.to_string())? {
                    Some(p) => f(p),
                    None => return Err(format!("{path}: no value to change the quality of")),
                }
                touch(&mut touched, path)?;
            }
            Ok(())
        };
    requality(&c.bad, &|p| p.quality = QualityLevel::Bad)?;
    requality(&c.stale, &|p| p.stale = true)?;
    requality(&c.good, &|p| {
        p.quality = QualityLevel::Good;
        p.stale = false;
    })?;
    for (path, s) in &c.flat_s {
        let (unit, name) = split_path(path).map_err(|e| e.to_string())?;
        let points = facts.points_mut(unit).map_err(|e| e.to_string())?;
        if let Some(p) = points.get_mut(name).map_err(|e| e.to_string())? {
            p.flat_s = *s;
        }
        touch(&mut touched, path)?;
    }
    for path in &c.missing {
        let (unit, name) = split_path(path).map_err(|e| e.to_string())?;
        let points = facts.points_mut(unit).map_err(|e| e.to_string())?;
        let i = unit
            .kind()
            .point_index(name)
            .ok_or_else(|| format!("{path}: not a point"))?;
        points.set_index(i, None);
        touch(&mut touched, path)?;
    }
    facts.derive_pump_status();
    Ok(touched)
}

fn command_of(c: &CaseCommand, now: Timestamp) -> Result<Command, String> {
    let action = match c.action.as_str() {
        "ack" => CommandAction::Ack,
        "shelve" => CommandAction::Shelve {
            until: now + c.duration.ok_or("shelve needs `for`")?,
            reason: c.reason.clone(),
        },
        "unshelve" => CommandAction::Unshelve,
        "remove_from_service" => CommandAction::RemoveFromService,
        "return_to_service" => CommandAction::ReturnToService,
        "reset" => CommandAction::Reset,
        other => return Err(format!("unknown command action `{other}`")),
    };
    Ok(Command {
        key: c.key.clone(),
        action,
        user: c.user.clone(),
        comment: c.comment.clone(),
    })
}

/// Runs one case against a rule set. `sources` are the library's (file, source) pairs, needed
/// only when the case adds rules of its own.
pub fn run_case(
    name: &str,
    case: &Case,
    rules: &Arc<RuleSet>,
    sources: &[(PathBuf, String)],
) -> CaseResult {
    let mut result = CaseResult {
        name: name.to_owned(),
        description: case.description.clone(),
        passed: false,
        diff: String::new(),
        difference: None,
        error: None,
        events: Vec::new(),
        notifications: Vec::new(),
        covers: Vec::new(),
    };
    match simulate(case, rules, sources) {
        Ok((events, notes)) => {
            result.events = events;
            result.notifications = notes;
        }
        Err(e) => {
            result.diff = format!("  case error: {e}\n");
            result.error = Some(e);
            return result;
        }
    }
    let watch = case.covers();
    result.covers = watch.clone();
    let actual: Vec<&AlarmEvent> = result
        .events
        .iter()
        .filter(|e| watch.contains(&e.rule))
        .collect();
    let n = actual.len().max(case.expected.len());
    let mut ok = actual.len() == case.expected.len();
    let mut rows = Vec::new();
    for i in 0..n {
        let exp = case.expected.get(i);
        let act = actual.get(i).copied();
        let matched = match (exp, act) {
            (Some(x), Some(a)) => matches(x, a),
            _ => false,
        };
        ok &= matched;
        rows.push((
            matched,
            exp.map(describe_expected),
            act.map(describe_actual),
        ));
    }
    result.passed = ok;
    result.difference = rows
        .iter()
        .position(|(m, _, _)| !m)
        .filter(|_| !ok)
        .map(|i| CaseDifference {
            transition: i + 1,
            expected: rows[i].1.clone(),
            got: rows[i].2.clone(),
        });
    if !ok {
        let w = rows
            .iter()
            .map(|(_, e, _)| e.as_ref().map_or(6, String::len))
            .max()
            .unwrap_or(8)
            .max(8);
        let _ = writeln!(result.diff, "    #  {:<w$}  actual", "expected");
        for (i, (m, e, a)) in rows.iter().enumerate() {
            let _ = writeln!(
                result.diff,
                "  {} {:>2} {:<w$}  {}",
                if *m { ' ' } else { '!' },
                i + 1,
                e.as_deref().unwrap_or("(none)"),
                a.as_deref().unwrap_or("(none)"),
            );
        }
    }
    result
}

fn matches(x: &Expected, a: &AlarmEvent) -> bool {
    a.time == CASE_EPOCH + x.at
        && a.key == x.key
        && a.kind == x.kind
        && x.to.is_none_or(|t| t == a.to)
        && x.severity.is_none_or(|s| s == a.severity)
        && x.parent
            .as_ref()
            .is_none_or(|p| Some(p) == a.parent.as_ref())
        && x.first_out.is_none_or(|f| f == a.first_out)
        && x.step.is_none_or(|s| Some(s) == a.escalation_step)
        && x.notify
            .as_ref()
            .is_none_or(|n| Some(n) == a.notify.as_ref())
        && x.user.as_ref().is_none_or(|u| Some(u) == a.user.as_ref())
        && x.message
            .as_ref()
            .is_none_or(|m| a.message.contains(m.as_str()))
        && x.message_zh
            .as_ref()
            .is_none_or(|m| a.message_zh.contains(m.as_str()))
        && x.bookmark_video
            .is_none_or(|b| b == a.actions.contains(&crate::meta::RuleAction::BookmarkVideo))
}

fn describe_expected(x: &Expected) -> String {
    let mut s = format!("{} {} {}", offset(CASE_EPOCH + x.at), x.key, x.kind);
    if let Some(t) = x.to {
        let _ = write!(s, " →{t}");
    }
    if let Some(v) = x.severity {
        let _ = write!(s, " {v}");
    }
    if let Some(p) = &x.parent {
        let _ = write!(s, " parent={p}");
    }
    if let Some(f) = x.first_out {
        let _ = write!(s, " first_out={f}");
    }
    if let Some(st) = x.step {
        let _ = write!(s, " step={st}");
    }
    if let Some(n) = &x.notify {
        let _ = write!(s, " notify={n}");
    }
    if let Some(m) = &x.message {
        let _ = write!(s, " msg~{m:?}");
    }
    if let Some(m) = &x.message_zh {
        let _ = write!(s, " msg_zh~{m:?}");
    }
    s
}

fn describe_actual(a: &AlarmEvent) -> String {
    let mut s = format!(
        "{} {} {} →{} {}",
        offset(a.time),
        a.key,
        a.kind,
        a.to,
        a.severity
    );
    if let Some(p) = &a.parent {
        let _ = write!(s, " parent={p}");
    }
    if a.first_out {
        s.push_str(" first_out");
    }
    if let Some(st) = a.escalation_step {
        let _ = write!(s, " step={st}");
    }
    if let Some(n) = &a.notify {
        let _ = write!(s, " notify={n}");
    }
    if !a.message.is_empty() {
        let _ = write!(s, " {:?}", a.message);
    }
    if !a.message_zh.is_empty() && a.message_zh != a.message {
        let _ = write!(s, " {:?}", a.message_zh);
    }
    s
}

type Simulated = (Vec<AlarmEvent>, Vec<Notification>);

fn simulate(
    case: &Case,
    rules: &Arc<RuleSet>,
    sources: &[(PathBuf, String)],
) -> Result<Simulated, String> {
    let rules = if case.extra_rules.is_empty() {
        rules.clone()
    } else {
        let mut all: Vec<(PathBuf, String)> = sources.to_vec();
        for (id, src) in &case.extra_rules {
            all.push((PathBuf::from(format!("{id}.rhai")), src.clone()));
        }
        let out = RuleSet::from_sources(all, rules.limits().clone());
        let errors: Vec<String> = out
            .diagnostics
            .iter()
            .filter(|d| d.level == crate::ruleset::DiagLevel::Error)
            .map(Diagnostic::to_string)
            .collect();
        if !errors.is_empty() {
            return Err(errors.join("; "));
        }
        Arc::new(out.set)
    };
    let room = RoomId::new("XM-0001").map_err(|e| e.to_string())?;
    let mut facts = RoomFacts::nominal(
        room.clone(),
        case.room.pumps,
        case.room.tanks,
        case.room.cameras,
    );
    apply_changes(&mut facts, &case.initial)?;
    let config = Arc::new(case.config.clone().unwrap_or_default());
    let mut engine = RoomEngine::new(room, rules, config);
    let mut events = Vec::new();
    let mut notes: Vec<Notification> = Vec::new();
    events.extend(engine.evaluate_all(&facts, CASE_EPOCH, &mut notes));
    let mut steps: Vec<&Step> = case.steps.iter().collect();
    steps.sort_by_key(|s| s.at);
    let last = steps
        .iter()
        .map(|s| s.at)
        .chain(case.expected.iter().map(|e| e.at))
        .max()
        .unwrap_or_default();
    let end = CASE_EPOCH + case.end.unwrap_or(last + Duration::from_secs(1));
    let advance = |engine: &mut RoomEngine,
                   until: Timestamp,
                   events: &mut Vec<AlarmEvent>,
                   notes: &mut Vec<Notification>| {
        while let Some(d) = engine.next_deadline().filter(|d| *d <= until) {
            events.extend(engine.tick(d, notes));
        }
    };
    for step in steps {
        let now = CASE_EPOCH + step.at;
        if now.0 < CASE_EPOCH.0 + ms(Duration::ZERO) {
            return Err("negative step time".into());
        }
        advance(&mut engine, now, &mut events, &mut notes);
        let touched = apply_changes(&mut facts, &step.changes)?;
        if !touched.is_empty() {
            events.extend(engine.evaluate(&facts, &touched, now, &mut notes));
        }
        if let Some(x) = &step.external {
            events.extend(engine.set_external(x.id.clone(), x.active, now, &mut notes));
        }
        if let Some(c) = &step.command {
            let cmd = command_of(c, now)?;
            match engine.apply(&cmd, now, &mut notes) {
                Ok(ev) if !c.expect_error => events.extend(ev),
                Ok(_) => {
                    return Err(format!(
                        "command {} on {} was expected to fail",
                        c.action, c.key
                    ))
                }
                Err(e) if c.expect_error => {
                    let _ = e;
                }
                Err(e) => return Err(format!("command {} on {} failed: {e}", c.action, c.key)),
            }
        }
    }
    advance(&mut engine, end, &mut events, &mut notes);
    Ok((events, notes))
}
