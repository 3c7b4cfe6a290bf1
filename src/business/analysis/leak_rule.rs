//! The nightly leak facts of a room and the rule that alarms on them.
//!
//! Each closed night gives a leak index ([`super::leakage::NightFlow`]); this module turns a
//! room's sequence of nightly indices into what its rule engine reads ([`LeakFacts`]: the night's
//! index, the room's own baseline, the recent nights) and runs the library rule
//! `night_flow_leak` over such a sequence in simulated time ([`alarm_nights`]) — the very Rhai
//! rule the room actors run, through the rules crate's engine, so `cistern bench analysis` and a
//! backtest measure what the field runs.
//!
//! The baseline of night *d* is the median of the room's unflagged indices among the
//! `baseline_nights` nights before *d* (at least `baseline_min_nights` of them), its spread
//! 1.4826 × their median absolute deviation (a robust standard deviation: how far the room's
//! index wanders night to night — a small compound's much more than a large one's); a night is
//! flagged when its index exceeds its own baseline by more than `flag_margin` or
//! `flag_spread_k` × the spread, so a leak that goes on is never absorbed into the norm it is
//! measured against. The rule compares the recent nights with the baseline by its own margin
//! and `spread_k` params (tunable, backtestable). The facts are a pure function
//! of the stored nightly indices, so a restart rebuilds them whole from the day records.

use super::leakage::LeakageConfig;
use cistern_rules::{
    AlarmKey, Discard, EventKind, RoomEngine, RoomFacts, RuleId, RuleSet, SandboxLimits, Touched,
};
use cistern_schemas::{Date, DeviceUnit, RoomId, Timestamp};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The library rule's id.
pub const RULE: &str = "night_flow_leak";

/// Why the leak rule could not be run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeakRuleError {
    #[error("the rule set has no rule `night_flow_leak`")]
    NoRule,
    #[error("the leak facts cannot be set: {0}")]
    Facts(String),
}

/// What a room's rule engine reads of one closed night.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LeakFacts {
    pub date: Date,
    /// The night's leak index (`None`: no data that night).
    pub index: Option<f64>,
    /// The room's baseline before this night (`None` until enough unflagged nights), and the
    /// robust spread of the nights behind it (1.4826 × their median absolute deviation).
    pub baseline: Option<f64>,
    pub spread: Option<f64>,
    /// The last `recent_nights` indices up to and including this night, oldest first.
    pub recent: Vec<Option<f64>>,
    /// The night is over its baseline by more than `flag_margin` or `flag_spread_k` × the
    /// spread (kept out of baselines).
    pub flagged: bool,
    /// Consecutive flagged nights ending with this one.
    pub nights_over: u32,
}

impl LeakFacts {
    /// Sets these facts on a room's facts (`leak_index`, `leak_baseline`, `leak_nights`) and
    /// marks them touched.
    pub fn apply(&self, facts: &mut RoomFacts, touched: &mut Touched) -> Result<(), LeakRuleError> {
        let err = |e: cistern_rules::facts::FactsError| LeakRuleError::Facts(e.to_string());
        facts.leak_index = self.index;
        facts.leak_baseline = self.baseline;
        facts.leak_spread = self.spread;
        facts.leak_nights = Some(self.recent.iter().map(|v| v.unwrap_or(f64::NAN)).collect());
        for name in ["leak_index", "leak_baseline", "leak_spread", "leak_nights"] {
            touched.fact(DeviceUnit::Room, name).map_err(err)?;
        }
        Ok(())
    }
}

/// The leak facts of each night of `history` (nightly indices by date, sorted; dates missing
/// between two entries are nights without data).
pub fn leak_facts(history: &[(Date, Option<f64>)], cfg: &LeakageConfig) -> Vec<LeakFacts> {
    let Some(first) = history.first().map(|(d, _)| *d) else {
        return Vec::new();
    };
    let last = history.last().map_or(first, |(d, _)| *d);
    let span = (last.days() - first.days()).max(0) as usize + 1;
    let mut nights: Vec<Option<f64>> = vec![None; span];
    for (d, v) in history {
        let i = (d.days() - first.days()).max(0) as usize;
        if let Some(slot) = nights.get_mut(i) {
            *slot = v.filter(|x| x.is_finite());
        }
    }
    let mut flagged = vec![false; span];
    let mut out = Vec::with_capacity(span);
    let mut run = 0u32;
    for i in 0..span {
        let lo = i.saturating_sub(cfg.baseline_nights as usize);
        let mut clean: Vec<f64> = (lo..i)
            .filter(|&j| !flagged[j])
            .filter_map(|j| nights[j])
            .collect();
        let (baseline, spread) = if clean.len() >= cfg.baseline_min_nights.max(1) as usize {
            let b = median(&mut clean);
            let mut dev: Vec<f64> = clean.iter().map(|x| (x - b).abs()).collect();
            (Some(b), Some(1.4826 * median(&mut dev)))
        } else {
            (None, None)
        };
        let index = nights[i];
        let over_by = cfg
            .flag_margin
            .max(cfg.flag_spread_k * spread.unwrap_or(0.0));
        let over = matches!((index, baseline), (Some(x), Some(b)) if x > b + over_by);
        flagged[i] = over;
        run = if over { run + 1 } else { 0 };
        let from = (i + 1).saturating_sub(cfg.recent_nights.max(1) as usize);
        out.push(LeakFacts {
            date: first.plus_days(i as i32),
            index,
            baseline,
            spread,
            recent: nights[from..=i].to_vec(),
            flagged: over,
            nights_over: run,
        });
    }
    out
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The built-in rule library (what a node without `[rules] dir` runs).
pub fn library_rules() -> Arc<RuleSet> {
    Arc::new(cistern_rules::library::load(SandboxLimits::default()).set)
}

/// Runs the rule `night_flow_leak` of `rules` over a room's closed nights in simulated time —
/// each night's facts set when its day closes (the next local midnight at
/// `utc_offset_minutes`) — and returns the nights on which it raised, in order.
pub fn alarm_nights(
    rules: &Arc<RuleSet>,
    room: &RoomId,
    nights: &[LeakFacts],
    utc_offset_minutes: i32,
) -> Result<Vec<Date>, LeakRuleError> {
    let id = RuleId::new(RULE).map_err(|_| LeakRuleError::NoRule)?;
    if rules.get(&id).is_none() {
        return Err(LeakRuleError::NoRule);
    }
    let key = AlarmKey::room(id);
    let mut engine = RoomEngine::new(
        room.clone(),
        rules.clone(),
        Arc::new(cistern_rules::EngineConfig::default()),
    );
    let mut facts = RoomFacts::new(room.clone(), 0, 0, 0);
    facts.online = true;
    let mut raised = Vec::new();
    for night in nights {
        let mut touched = Touched::none();
        night.apply(&mut facts, &mut touched)?;
        let now: Timestamp = night.date.plus_days(1).start(utc_offset_minutes);
        let events = engine.evaluate(&facts, &touched, now, &mut Discard);
        if events
            .iter()
            .any(|e| e.key == key && e.kind == EventKind::Raised)
        {
            raised.push(night.date);
        }
    }
    Ok(raised)
}

/// The first night on which the rule raises, if any.
pub fn first_alarm(
    rules: &Arc<RuleSet>,
    room: &RoomId,
    nights: &[LeakFacts],
    utc_offset_minutes: i32,
) -> Result<Option<Date>, LeakRuleError> {
    Ok(alarm_nights(rules, room, nights, utc_offset_minutes)?
        .first()
        .copied())
}

/// One night of a room as the leakage page shows it: the day's figures and the leak facts.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LeakNight {
    pub date: Date,
    pub mnf_m3h: Option<f64>,
    pub legit_m3h: Option<f64>,
    pub leak_index: Option<f64>,
    pub baseline: Option<f64>,
    pub spread: Option<f64>,
    /// The MNF the room's baseline stands for that night: legitimate use + baseline × the day's
    /// mean flow (the mean recovered from the night's own index).
    pub baseline_mnf_m3h: Option<f64>,
    pub flagged: bool,
    pub nights_over: u32,
    pub overflow_minutes: Option<f64>,
    /// Why the night has no index: `no_night_flow` (no MNF) or `day_incomplete` (an MNF but no
    /// index: the day's flow did not cover it, or it had none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gap: Option<&'static str>,
}

/// A room's nights from its days' figures (sorted by date).
pub fn nights(days: &[(Date, super::day::DayFigures)], cfg: &LeakageConfig) -> Vec<LeakNight> {
    let history: Vec<(Date, Option<f64>)> = days.iter().map(|(d, f)| (*d, f.leak_index)).collect();
    let facts = leak_facts(&history, cfg);
    facts
        .into_iter()
        .map(|f| {
            let fig = days
                .binary_search_by_key(&f.date, |(d, _)| *d)
                .ok()
                .and_then(|i| days.get(i))
                .map(|(_, fig)| fig.clone())
                .unwrap_or_default();
            let mean = match (fig.mnf_m3h, fig.legit_m3h, fig.leak_index) {
                (Some(m), Some(l), Some(x)) if x.abs() > 1e-6 => Some((m - l) / x),
                _ => None,
            };
            let baseline_mnf_m3h = match (fig.legit_m3h, f.baseline, mean) {
                (Some(l), Some(b), Some(mean)) if mean > 0.0 => Some(l + b * mean),
                _ => None,
            };
            let gap = match (fig.mnf_m3h, fig.leak_index) {
                (None, _) => Some("no_night_flow"),
                (Some(_), None) => Some("day_incomplete"),
                _ => None,
            };
            LeakNight {
                date: f.date,
                mnf_m3h: fig.mnf_m3h,
                legit_m3h: fig.legit_m3h,
                leak_index: f.index,
                baseline: f.baseline,
                spread: f.spread,
                baseline_mnf_m3h,
                flagged: f.flagged,
                nights_over: f.nights_over,
                overflow_minutes: fig.overflow_minutes,
                gap,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(n: i32) -> Date {
        Date::ymd(2026, 11, 1).unwrap().plus_days(n)
    }

    #[test]
    fn the_baseline_is_the_median_of_earlier_unflagged_nights() {
        let cfg = LeakageConfig {
            baseline_min_nights: 7,
            ..LeakageConfig::default()
        };
        // 10 clean nights around 0.15, then a leak of +0.03 from night 10 on.
        let history: Vec<(Date, Option<f64>)> = (0..16)
            .map(|i| {
                let clean = 0.15 + if i % 2 == 0 { 0.002 } else { -0.002 };
                (d(i), Some(clean + if i >= 10 { 0.03 } else { 0.0 }))
            })
            .collect();
        let f = leak_facts(&history, &cfg);
        assert_eq!(f.len(), 16);
        assert_eq!(f[6].baseline, None, "6 nights are too few");
        assert!((f[7].baseline.unwrap() - 0.15).abs() < 0.0021);
        // The leak's nights are flagged and stay out of the baseline.
        assert!(f[9].nights_over == 0 && !f[9].flagged);
        assert!(f[10].flagged && f[12].nights_over == 3);
        assert!(
            (f[15].baseline.unwrap() - 0.15).abs() < 0.0021,
            "{:?}",
            f[15]
        );
        assert_eq!(f[15].recent.len(), 7);
        assert_eq!(f[15].recent[6], history[15].1);
    }

    #[test]
    fn the_page_nights_carry_the_baseline_as_a_flow() {
        use crate::business::analysis::day::DayFigures;
        let cfg = LeakageConfig {
            baseline_min_nights: 7,
            ..LeakageConfig::default()
        };
        let fig = |index: f64| DayFigures {
            // A day of 10 m³/h: MNF = legit + index × 10.
            mnf_m3h: Some(0.5 + index * 10.0),
            legit_m3h: Some(0.5),
            leak_index: Some(index),
            overflow_minutes: Some(0.0),
            ..DayFigures::default()
        };
        let mut days: Vec<_> = (0..8).map(|i| (d(i), fig(0.2))).collect();
        days.push((d(8), DayFigures::default()));
        days.push((d(9), fig(0.25)));
        let n = nights(&days, &cfg);
        assert_eq!(n.len(), 10);
        assert_eq!(n[8].gap, Some("no_night_flow"));
        let last = &n[9];
        assert_eq!(last.baseline, Some(0.2));
        assert!((last.baseline_mnf_m3h.unwrap() - 2.5).abs() < 1e-9);
        assert!(last.flagged && last.nights_over == 1);
    }

    #[test]
    fn a_missing_night_is_a_gap_not_a_shift() {
        let cfg = LeakageConfig::default();
        let f = leak_facts(&[(d(0), Some(0.1)), (d(3), Some(0.2))], &cfg);
        assert_eq!(f.len(), 4);
        assert_eq!(f[3].recent, vec![Some(0.1), None, None, Some(0.2)]);
        assert_eq!(f[3].date, d(3));
        assert!(leak_facts(&[], &cfg).is_empty());
    }

    #[test]
    fn the_library_rule_raises_on_the_third_night_over_and_not_before() {
        let cfg = LeakageConfig::default();
        let rules = library_rules();
        let room = RoomId::new("XM-0001").unwrap();
        // 20 clean nights, then two nights over, one under, then a leak from night 24.
        let index = |i: i32| match i {
            20 | 21 => 0.19,
            24.. => 0.18,
            _ => 0.15 + f64::from(i % 3) * 0.001,
        };
        let history: Vec<(Date, Option<f64>)> = (0..30).map(|i| (d(i), Some(index(i)))).collect();
        let facts = leak_facts(&history, &cfg);
        let nights = alarm_nights(&rules, &room, &facts, 480).unwrap();
        assert_eq!(nights, vec![d(26)]);
        assert_eq!(
            first_alarm(&rules, &room, &facts, 480).unwrap(),
            Some(d(26))
        );
        // Clean nights only: never.
        let clean = leak_facts(&history[..20], &cfg);
        assert_eq!(first_alarm(&rules, &room, &clean, 480).unwrap(), None);
        // A rule set without the rule says so.
        let empty = Arc::new(RuleSet::empty(SandboxLimits::default()));
        assert_eq!(
            alarm_nights(&empty, &room, &facts, 480),
            Err(LeakRuleError::NoRule)
        );
    }
}
