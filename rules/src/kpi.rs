//! ISA-18.2 / EEMUA 191 alarm KPIs over a list of events (a backtest, or a day of history).
//!
//! Counted as *annunciated*: `raised` events (what an operator sees arrive). Suppressed
//! activations are counted apart: they are the load the correlation saved. Figures are for
//! whatever events are passed: pass one console's rooms for per-operator KPIs.

use crate::event::{AlarmEvent, EventKind};
use crate::ids::RuleId;
use crate::meta::Severity;
use crate::ruleset::CHATTERING;
use cistern_schemas::Timestamp;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::time::Duration;

/// KPI thresholds (EEMUA 191 defaults).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct KpiConfig {
    /// Rate window: 10 min.
    pub window: Duration,
    /// Flood starts above this many annunciated alarms in a window …
    pub flood_start: usize,
    /// … and ends below this many.
    pub flood_end: usize,
    /// Active longer than this is stale.
    pub stale_after: Duration,
}

impl Default for KpiConfig {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(600),
            flood_start: 10,
            flood_end: 5,
            stale_after: Duration::from_secs(24 * 3600),
        }
    }
}

/// The KPIs of a period.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct KpiReport {
    pub from: Timestamp,
    pub to: Timestamp,
    pub annunciated: usize,
    pub suppressed: usize,
    pub alarms_per_10_min: f64,
    pub max_per_10_min: usize,
    /// Alarms auto-shelved for chattering.
    pub chattering: usize,
    /// Active longer than `stale_after` (ended so, or still active at `to`).
    pub stale: usize,
    pub time_in_flood: Duration,
    pub flood_pct: f64,
    /// The ten most frequent alarms: (source/key, count, share of load %).
    pub top10: Vec<(String, usize, f64)>,
    pub top10_pct: f64,
    pub per_rule: BTreeMap<RuleId, usize>,
    /// Annunciated by severity at raise, P1..P4.
    pub priority_mix: [usize; 4],
}

/// Computes the KPIs of `events` over `[from, to]`.
pub fn compute(
    events: &[AlarmEvent],
    from: Timestamp,
    to: Timestamp,
    cfg: &KpiConfig,
) -> KpiReport {
    let span = to.since(from);
    let mut raises: Vec<Timestamp> = Vec::new();
    let mut suppressed = 0;
    let mut chattering = 0;
    let mut per_rule: BTreeMap<RuleId, usize> = BTreeMap::new();
    let mut per_alarm: HashMap<String, usize> = HashMap::new();
    let mut mix = [0usize; 4];
    let mut active_since: HashMap<String, Timestamp> = HashMap::new();
    let mut stale = 0;
    let mut sorted: Vec<&AlarmEvent> = events
        .iter()
        .filter(|e| e.time >= from && e.time <= to)
        .collect();
    sorted.sort_by_key(|e| e.time);
    for e in &sorted {
        let id = format!("{}:{}", e.source, e.key);
        match e.kind {
            EventKind::Raised => {
                raises.push(e.time);
                if e.rule.as_str() != CHATTERING {
                    *per_rule.entry(e.rule.clone()).or_default() += 1;
                    *per_alarm.entry(id.clone()).or_default() += 1;
                } else {
                    *per_rule.entry(e.rule.clone()).or_default() += 1;
                }
                if let Some(m) = mix.get_mut(e.severity.index()) {
                    *m += 1;
                }
                active_since.entry(id).or_insert(e.time);
            }
            EventKind::Suppressed => suppressed += 1,
            EventKind::ChatterShelved => chattering += 1,
            EventKind::Cleared | EventKind::Reset | EventKind::RuleRemoved => {
                if let Some(since) = active_since.remove(&id) {
                    if e.time.since(since) > cfg.stale_after {
                        stale += 1;
                    }
                }
            }
            _ => {}
        }
    }
    stale += active_since
        .values()
        .filter(|since| to.since(**since) > cfg.stale_after)
        .count();

    // Flood: a sweep over raise (+1) and expiry (-1, one window later) instants.
    let mut marks: Vec<(Timestamp, i32)> = Vec::with_capacity(raises.len() * 2);
    for r in &raises {
        marks.push((*r, 1));
        marks.push((*r + cfg.window, -1));
    }
    marks.sort_by_key(|(t, d)| (*t, *d)); // expiries before raises at the same instant
    let (mut count, mut max_count, mut flood_since, mut in_flood) =
        (0i64, 0i64, None, Duration::ZERO);
    for (t, d) in marks {
        if t > to {
            break;
        }
        count += i64::from(d);
        max_count = max_count.max(count);
        match flood_since {
            None if count > cfg.flood_start as i64 => flood_since = Some(t),
            Some(s) if count < cfg.flood_end as i64 => {
                in_flood += t.since(s);
                flood_since = None;
            }
            _ => {}
        }
    }
    if let Some(s) = flood_since {
        in_flood += to.since(s);
    }

    let annunciated = raises.len();
    let mut top: Vec<(String, usize)> = per_alarm.into_iter().collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    top.truncate(10);
    let share = |n: usize| {
        if annunciated == 0 {
            0.0
        } else {
            100.0 * n as f64 / annunciated as f64
        }
    };
    let top10: Vec<(String, usize, f64)> = top.into_iter().map(|(k, n)| (k, n, share(n))).collect();
    let top10_pct = share(top10.iter().map(|t| t.1).sum());
    let windows = span.as_secs_f64() / cfg.window.as_secs_f64();
    KpiReport {
        from,
        to,
        annunciated,
        suppressed,
        alarms_per_10_min: if windows > 0.0 {
            annunciated as f64 / windows
        } else {
            0.0
        },
        max_per_10_min: max_count.max(0) as usize,
        chattering,
        stale,
        time_in_flood: in_flood,
        flood_pct: if span.is_zero() {
            0.0
        } else {
            100.0 * in_flood.as_secs_f64() / span.as_secs_f64()
        },
        top10,
        top10_pct,
        per_rule,
        priority_mix: mix,
    }
}

impl fmt::Display for KpiReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let span = self.to.since(self.from);
        writeln!(f, "Alarm KPIs over {}", humantime::format_duration(span))?;
        writeln!(
            f,
            "  annunciated          {:>8}   (target ~1 per 10 min per operator)",
            self.annunciated
        )?;
        writeln!(f, "  suppressed           {:>8}", self.suppressed)?;
        writeln!(
            f,
            "  alarms per 10 min    {:>8.2}   max {}",
            self.alarms_per_10_min, self.max_per_10_min
        )?;
        writeln!(
            f,
            "  chattering           {:>8}   (target 0)",
            self.chattering
        )?;
        writeln!(f, "  stale (> 24 h)       {:>8}", self.stale)?;
        writeln!(
            f,
            "  time in flood        {:>8}   {:.2} % (target < 1 %)",
            humantime::format_duration(Duration::from_secs(self.time_in_flood.as_secs()))
                .to_string(),
            self.flood_pct
        )?;
        let total: usize = self.priority_mix.iter().sum();
        let pct = |n: usize| {
            if total == 0 {
                0.0
            } else {
                100.0 * n as f64 / total as f64
            }
        };
        write!(f, "  priority mix        ")?;
        for (s, n) in Severity::ALL.iter().zip(self.priority_mix) {
            write!(f, " {s} {n} ({:.0} %)", pct(n))?;
        }
        writeln!(f, "   (target ~5 / 15 / 80 % high / medium / low)")?;
        writeln!(
            f,
            "  top 10 ({:.1} % of load; target 1-5 %):",
            self.top10_pct
        )?;
        for (k, n, p) in &self.top10 {
            writeln!(f, "    {n:>6}  {p:>5.1} %  {k}")?;
        }
        writeln!(f, "  per rule:")?;
        for (r, n) in &self.per_rule {
            writeln!(f, "    {n:>6}  {r}")?;
        }
        Ok(())
    }
}
