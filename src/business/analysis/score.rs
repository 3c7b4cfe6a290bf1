//! The room score (泵房评分, issue 22 item 5, DOMAIN.md §9): a configurable multi-dimensional
//! model whose every score explains itself down to the facts behind it.
//!
//! There is no published model; vendors weigh equipment condition about 30 % and safety and
//! security about 25 %, then water quality, energy efficiency, operations & maintenance
//! compliance and data completeness. The weights and rules are data ([`DEFAULT_MODEL`], the
//! shipped `score.toml`, overridable by `[analysis.score] model = "path"`), so an operator
//! tunes them without a release.
//!
//! **Explanation adds up.** A room's score is `Σ dimension share × dimension score` and a
//! dimension's score is `Σ rule share × points`, so every fact's contribution to the room's
//! score is `dimension share × rule share × points` and the contributions add up to the score
//! exactly ([`RoomScore::explained_total`]); [`shown`] rounds them to tenths so that the
//! rounded figures still add up to the rounded score.
//!
//! **Missing facts** are left out, never guessed: a rule without its fact drops out and its
//! weight goes to the dimension's other rules; a dimension without any fact drops out and its
//! weight goes to the other dimensions (its `share` is 0 and the explanation names what was
//! missing). A neutral score would reward a room for sending nothing; leaving it out scores a
//! room on what is known and says what is not. A room with no fact at all has no score.

use super::day::DayFigures;
use cistern_schemas::{Date, RoomId, ZoneId};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

/// The model shipped as the default.
pub const DEFAULT_MODEL: &str = include_str!("score.toml");

/// `[analysis.score]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScoreConfig {
    /// A score model file replacing the shipped one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<PathBuf>,
}

/// Why a score model was refused.
#[derive(Debug, thiserror::Error)]
pub enum ScoreError {
    #[error("score model {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("score model: {0}")]
    Parse(#[from] toml::de::Error),
    #[error("score model: {0}")]
    Invalid(String),
}

/// A fact a rule scores. The names are the model file's and the API's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fact {
    /// The room's worst component failure probability over the horizon (lifecycle), 0..1.
    LifecycleRisk,
    /// Pump fault alarms raised in the window.
    PumpFaults,
    /// Run-time-weighted pump efficiency from the curves, 0..1 (window mean).
    PumpEfficiency,
    /// Share of the pumps' run time inside 70-120 % of BEP, 0..1 (window mean).
    PorShare,
    /// Share of minutes supplying at set-point, 0..1 (window mean).
    Availability,
    /// Security alarms (intrusion, forced door, denied access) in the window.
    SecurityAlarms,
    /// Environment alarms (flooding, smoke, temperature, humidity) in the window.
    EnvironmentAlarms,
    /// Share of water-quality samples inside the limits, 0..1 (window mean).
    QualityCompliance,
    /// Pump-set efficiency 278 / kWh per 1,000 m³·MPa, 0..1 (window mean).
    SetEfficiency,
    /// Leak index (MNF − legitimate) / mean daily flow (window mean).
    LeakIndex,
    /// Inspections done / due in the window, 0..1.
    InspectionsDone,
    /// Days since the room's tank was last cleaned (its oldest tank).
    DaysSinceCleaning,
    /// Work orders closed within their SLA in the window, 0..1.
    OrderSla,
    /// Samples received / expected, 0..1 (window mean).
    Completeness,
}

impl Fact {
    /// Every fact, in the order of the declaration.
    pub const ALL: &'static [Fact] = &[
        Fact::LifecycleRisk,
        Fact::PumpFaults,
        Fact::PumpEfficiency,
        Fact::PorShare,
        Fact::Availability,
        Fact::SecurityAlarms,
        Fact::EnvironmentAlarms,
        Fact::QualityCompliance,
        Fact::SetEfficiency,
        Fact::LeakIndex,
        Fact::InspectionsDone,
        Fact::DaysSinceCleaning,
        Fact::OrderSla,
        Fact::Completeness,
    ];
}

/// A room's known facts; a fact without data is absent (never NaN).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Facts(pub BTreeMap<Fact, f64>);

impl Facts {
    /// Sets a fact when it is known and finite.
    pub fn set(&mut self, fact: Fact, value: Option<f64>) {
        match value.filter(|v| v.is_finite()) {
            Some(v) => {
                self.0.insert(fact, v);
            }
            None => {
                self.0.remove(&fact);
            }
        }
    }

    pub fn get(&self, fact: Fact) -> Option<f64> {
        self.0.get(&fact).copied()
    }

    /// The facts the daily ledger gives: the means over `days` of each figure a day had.
    pub fn from_figures<'a>(days: impl IntoIterator<Item = &'a DayFigures>) -> Self {
        let mut sums: BTreeMap<Fact, (f64, u32)> = BTreeMap::new();
        let mut add = |fact: Fact, v: Option<f64>| {
            if let Some(v) = v.filter(|v| v.is_finite()) {
                let e = sums.entry(fact).or_insert((0.0, 0));
                e.0 += v;
                e.1 += 1;
            }
        };
        for d in days {
            add(Fact::PumpEfficiency, d.pump_efficiency);
            add(Fact::PorShare, d.por_share);
            add(Fact::Availability, d.availability);
            add(Fact::QualityCompliance, d.quality_compliance);
            add(Fact::SetEfficiency, d.set_efficiency);
            add(Fact::LeakIndex, d.leak_index);
            add(Fact::Completeness, d.completeness);
        }
        let mut facts = Facts::default();
        for (fact, (sum, n)) in sums {
            facts.set(fact, Some(sum / f64::from(n)));
        }
        facts
    }
}

/// One rule: a fact mapped to points by linear interpolation between `(value, points)` pairs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub fact: Fact,
    pub weight: f64,
    pub points: Vec<[f64; 2]>,
}

impl Rule {
    /// The points `value` earns (0..100).
    pub fn points_for(&self, value: f64) -> f64 {
        let p = &self.points;
        let (Some(first), Some(last)) = (p.first(), p.last()) else {
            return 0.0;
        };
        if value <= first[0] {
            return first[1];
        }
        if value >= last[0] {
            return last[1];
        }
        for w in p.windows(2) {
            let ([x0, y0], [x1, y1]) = (w[0], w[1]);
            if value <= x1 {
                return y0 + (y1 - y0) * (value - x0) / (x1 - x0);
            }
        }
        last[1]
    }
}

/// One dimension of the score: its weight and rules.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dimension {
    /// `equipment`, `safety`, `water_quality`, `energy`, `operations`, `data` (the console's
    /// catalogue words `score.dim.<key>`).
    pub key: String,
    pub weight: f64,
    pub rules: Vec<Rule>,
}

/// The score model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoreModel {
    /// The days of the ledger the window facts are means over.
    pub window_days: u32,
    pub dimensions: Vec<Dimension>,
}

impl ScoreModel {
    /// The shipped model.
    pub fn shipped() -> Result<Self, ScoreError> {
        Self::parse(DEFAULT_MODEL)
    }

    /// The model `[analysis.score]` names, or the shipped one.
    pub fn load(config: &ScoreConfig) -> Result<Self, ScoreError> {
        match &config.model {
            None => Self::shipped(),
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ScoreError::Read {
                    path: path.display().to_string(),
                    source,
                })?;
                Self::parse(&text)
            }
        }
    }

    /// Parses and checks a model.
    pub fn parse(text: &str) -> Result<Self, ScoreError> {
        let model: ScoreModel = toml::from_str(text)?;
        model.validate()?;
        Ok(model)
    }

    fn validate(&self) -> Result<(), ScoreError> {
        let bad = |m: String| Err(ScoreError::Invalid(m));
        if self.window_days == 0 || self.window_days > 366 {
            return bad("window_days must be 1..=366".into());
        }
        if self.dimensions.is_empty() {
            return bad("no dimension".into());
        }
        let mut keys = std::collections::HashSet::new();
        for d in &self.dimensions {
            if d.key.is_empty() || !keys.insert(d.key.as_str()) {
                return bad(format!("dimension key {:?} empty or repeated", d.key));
            }
            if !(d.weight.is_finite() && d.weight > 0.0) {
                return bad(format!("dimension {}: weight must be > 0", d.key));
            }
            if d.rules.is_empty() {
                return bad(format!("dimension {}: no rule", d.key));
            }
            for r in &d.rules {
                if !(r.weight.is_finite() && r.weight > 0.0) {
                    return bad(format!(
                        "dimension {}: {:?} weight must be > 0",
                        d.key, r.fact
                    ));
                }
                if r.points.is_empty() {
                    return bad(format!("dimension {}: {:?} has no points", d.key, r.fact));
                }
                for [x, y] in &r.points {
                    if !x.is_finite() || !(0.0..=100.0).contains(y) {
                        return bad(format!(
                            "dimension {}: {:?} points must be finite values to 0..100",
                            d.key, r.fact
                        ));
                    }
                }
                if r.points.windows(2).any(|w| w[1][0] <= w[0][0]) {
                    return bad(format!(
                        "dimension {}: {:?} values must increase",
                        d.key, r.fact
                    ));
                }
            }
        }
        Ok(())
    }

    /// Scores a room's facts, with the explanation.
    pub fn score(&self, room: &RoomId, facts: &Facts) -> RoomScore {
        let mut dims: Vec<DimensionScore> = self
            .dimensions
            .iter()
            .map(|d| {
                let known: f64 = d
                    .rules
                    .iter()
                    .filter(|r| facts.get(r.fact).is_some())
                    .map(|r| r.weight)
                    .sum();
                let mut out = DimensionScore {
                    key: d.key.clone(),
                    weight: d.weight,
                    share: 0.0,
                    score: None,
                    contribution: 0.0,
                    facts: Vec::new(),
                    missing: Vec::new(),
                };
                let mut total = 0.0;
                for r in &d.rules {
                    match facts.get(r.fact) {
                        Some(value) if known > 0.0 => {
                            let points = r.points_for(value);
                            let share = r.weight / known;
                            total += share * points;
                            out.facts.push(FactScore {
                                fact: r.fact,
                                value,
                                points,
                                weight: r.weight,
                                share,
                                contribution: 0.0,
                            });
                        }
                        _ => out.missing.push(r.fact),
                    }
                }
                if known > 0.0 {
                    out.score = Some(total);
                }
                out
            })
            .collect();
        let known: f64 = dims
            .iter()
            .filter(|d| d.score.is_some())
            .map(|d| d.weight)
            .sum();
        let mut score = None;
        if known > 0.0 {
            let mut total = 0.0;
            for d in &mut dims {
                if let Some(s) = d.score {
                    d.share = d.weight / known;
                    d.contribution = d.share * s;
                    for f in &mut d.facts {
                        f.contribution = d.share * f.share * f.points;
                    }
                    total += d.contribution;
                }
            }
            score = Some(total);
        }
        let missing = dims
            .iter()
            .flat_map(|d| d.missing.iter().copied())
            .collect();
        RoomScore {
            room: room.clone(),
            score,
            dimensions: dims,
            missing,
        }
    }
}

/// One fact's part of a score.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FactScore {
    pub fact: Fact,
    pub value: f64,
    /// The points the rule gave the value (0..100).
    pub points: f64,
    /// The rule's configured weight and its share of its dimension among the known facts.
    pub weight: f64,
    pub share: f64,
    /// Its part of the room's score: dimension share × share × points.
    pub contribution: f64,
}

/// One dimension's part of a score.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DimensionScore {
    pub key: String,
    /// The configured weight and the share of the room's score it carries (0 when left out).
    pub weight: f64,
    pub share: f64,
    /// 0..100; `None`: none of its facts is known (left out).
    pub score: Option<f64>,
    /// Its part of the room's score: share × score.
    pub contribution: f64,
    pub facts: Vec<FactScore>,
    /// Its facts without data.
    pub missing: Vec<Fact>,
}

/// A room's score with its explanation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoomScore {
    pub room: RoomId,
    /// 0..100; `None`: no fact at all.
    pub score: Option<f64>,
    pub dimensions: Vec<DimensionScore>,
    /// Every fact without data.
    pub missing: Vec<Fact>,
}

impl RoomScore {
    /// The sum of the facts' contributions (equals `score` up to rounding).
    pub fn explained_total(&self) -> f64 {
        self.dimensions
            .iter()
            .flat_map(|d| d.facts.iter())
            .map(|f| f.contribution)
            .sum()
    }

    /// The dimension with the lowest score among those scored.
    pub fn weakest(&self) -> Option<&DimensionScore> {
        self.dimensions
            .iter()
            .filter_map(|d| d.score.map(|s| (s, d)))
            .min_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, d)| d)
    }
}

/// Rounds `parts` to tenths so that they add up to their rounded total (largest remainder):
/// what the console shows next to a score.
pub fn shown(parts: &[f64]) -> Vec<f64> {
    let total: f64 = parts.iter().sum();
    let target = (total * 10.0).round() as i64;
    let mut tenths: Vec<i64> = parts.iter().map(|p| (p * 10.0).floor() as i64).collect();
    let mut order: Vec<usize> = (0..parts.len()).collect();
    order.sort_by(|&a, &b| {
        let ra = parts[a] * 10.0 - tenths[a] as f64;
        let rb = parts[b] * 10.0 - tenths[b] as f64;
        rb.total_cmp(&ra)
    });
    let mut left = target - tenths.iter().sum::<i64>();
    for i in order.iter().cycle().take(parts.len().max(1) * 2) {
        if left == 0 || parts.is_empty() {
            break;
        }
        if left > 0 {
            tenths[*i] += 1;
            left -= 1;
        } else {
            tenths[*i] -= 1;
            left += 1;
        }
    }
    tenths.into_iter().map(|t| t as f64 / 10.0).collect()
}

/// A room's place in the rankings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ranked {
    pub room: RoomId,
    pub zone: ZoneId,
    pub score: Option<f64>,
    /// 1-based ranks (ties share the better rank); `None` for a room without a score.
    pub fleet_rank: Option<u32>,
    pub zone_rank: Option<u32>,
    /// How many scored rooms the fleet and the room's zone have.
    pub fleet_of: u32,
    pub zone_of: u32,
}

/// Ranks rooms by score within the fleet and their zones, best first; rooms without a score
/// come last, unranked.
pub fn rank(rooms: &[(RoomId, ZoneId, Option<f64>)]) -> Vec<Ranked> {
    let mut sorted: Vec<&(RoomId, ZoneId, Option<f64>)> = rooms.iter().collect();
    sorted.sort_by(|a, b| match (a.2, b.2) {
        (Some(x), Some(y)) => y.total_cmp(&x).then_with(|| a.0.cmp(&b.0)),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.0.cmp(&b.0),
    });
    let fleet_of = rooms.iter().filter(|r| r.2.is_some()).count() as u32;
    let mut zone_of: HashMap<&ZoneId, u32> = HashMap::new();
    for r in rooms.iter().filter(|r| r.2.is_some()) {
        *zone_of.entry(&r.1).or_default() += 1;
    }
    let mut fleet_seen = 0u32;
    let mut fleet_last: Option<(f64, u32)> = None;
    // Per zone: rooms seen so far and the last (score, rank) given.
    type Seen = (u32, Option<(f64, u32)>);
    let mut zone_seen: HashMap<&ZoneId, Seen> = HashMap::new();
    sorted
        .into_iter()
        .map(|(room, zone, score)| {
            let (fleet_rank, zone_rank) = match score {
                Some(s) => {
                    fleet_seen += 1;
                    let fr = match fleet_last {
                        Some((ls, lr)) if ls == *s => lr,
                        _ => fleet_seen,
                    };
                    fleet_last = Some((*s, fr));
                    let z = zone_seen.entry(zone).or_insert((0, None));
                    z.0 += 1;
                    let zr = match z.1 {
                        Some((ls, lr)) if ls == *s => lr,
                        _ => z.0,
                    };
                    z.1 = Some((*s, zr));
                    (Some(fr), Some(zr))
                }
                None => (None, None),
            };
            Ranked {
                room: room.clone(),
                zone: zone.clone(),
                score: *score,
                fleet_rank,
                zone_rank,
                fleet_of,
                zone_of: zone_of.get(zone).copied().unwrap_or(0),
            }
        })
        .collect()
}

/// A zone's weakest dimension: the one with the lowest mean score over its scored rooms.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ZoneWeakest {
    pub zone: ZoneId,
    pub dimension: String,
    pub mean: f64,
    /// Rooms the mean is over.
    pub rooms: u32,
    /// The zone's mean room score.
    pub zone_score: Option<f64>,
}

/// The weakest dimension of each zone (zones in id order; a zone none of whose rooms has a
/// scored dimension is left out).
pub fn weakest_by_zone(scores: &[(ZoneId, &RoomScore)]) -> Vec<ZoneWeakest> {
    let mut by_zone: BTreeMap<&ZoneId, Vec<&RoomScore>> = BTreeMap::new();
    for (z, s) in scores {
        by_zone.entry(z).or_default().push(s);
    }
    by_zone
        .into_iter()
        .filter_map(|(zone, rooms)| {
            let mut dims: BTreeMap<&str, (f64, u32)> = BTreeMap::new();
            for r in &rooms {
                for d in &r.dimensions {
                    if let Some(s) = d.score {
                        let e = dims.entry(d.key.as_str()).or_insert((0.0, 0));
                        e.0 += s;
                        e.1 += 1;
                    }
                }
            }
            let scored: Vec<f64> = rooms.iter().filter_map(|r| r.score).collect();
            let zone_score =
                (!scored.is_empty()).then(|| scored.iter().sum::<f64>() / scored.len() as f64);
            dims.into_iter()
                .map(|(k, (sum, n))| (k, sum / f64::from(n), n))
                .min_by(|a, b| a.1.total_cmp(&b.1))
                .map(|(k, mean, n)| ZoneWeakest {
                    zone: zone.clone(),
                    dimension: k.to_string(),
                    mean,
                    rooms: n,
                    zone_score,
                })
        })
        .collect()
}

/// One day's score of a room: the trend's point (the records port keeps one per room-day).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScoreDay {
    pub date: Date,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    /// Each dimension's score that day (`None`: left out).
    pub dimensions: Vec<(String, Option<f64>)>,
}

impl ScoreDay {
    pub fn of(date: Date, s: &RoomScore) -> Self {
        Self {
            date,
            score: s.score,
            dimensions: s
                .dimensions
                .iter()
                .map(|d| (d.key.clone(), d.score))
                .collect(),
        }
    }
}

/// A room's score trend: for each day of `days` (ascending, one `DayFigures` per ledger day),
/// the score over the window ending that day, with `extra` (the services' current facts)
/// added. Days before the ledger's first give windows of what there is.
pub fn trend(
    model: &ScoreModel,
    room: &RoomId,
    days: &[(Date, DayFigures)],
    extra: &Facts,
    from: Date,
) -> Vec<ScoreDay> {
    let w = model.window_days as i32;
    days.iter()
        .filter(|(d, _)| *d >= from)
        .map(|(date, _)| {
            let lo = date.plus_days(1 - w);
            let mut facts = Facts::from_figures(
                days.iter()
                    .filter(|(d, _)| *d >= lo && d <= date)
                    .map(|x| &x.1),
            );
            for (f, v) in &extra.0 {
                facts.set(*f, Some(*v));
            }
            ScoreDay::of(*date, &model.score(room, &facts))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room(s: &str) -> RoomId {
        RoomId::new(s).unwrap()
    }
    fn zone(s: &str) -> ZoneId {
        ZoneId::new(s).unwrap()
    }

    fn full_facts(k: f64) -> Facts {
        let mut f = Facts::default();
        f.set(Fact::LifecycleRisk, Some(0.3 * k));
        f.set(Fact::PumpFaults, Some(2.0 * k));
        f.set(Fact::PumpEfficiency, Some(0.62));
        f.set(Fact::Availability, Some(0.995));
        f.set(Fact::SecurityAlarms, Some(1.0 * k));
        f.set(Fact::EnvironmentAlarms, Some(0.0));
        f.set(Fact::QualityCompliance, Some(0.99));
        f.set(Fact::SetEfficiency, Some(0.5));
        f.set(Fact::LeakIndex, Some(0.01 * k));
        f.set(Fact::InspectionsDone, Some(0.95));
        f.set(Fact::DaysSinceCleaning, Some(150.0 + 40.0 * k));
        f.set(Fact::OrderSla, Some(0.92));
        f.set(Fact::Completeness, Some(0.97));
        f
    }

    #[test]
    fn the_shipped_model_parses_and_weighs_equipment_and_safety_first() {
        let m = ScoreModel::shipped().unwrap();
        let total: f64 = m.dimensions.iter().map(|d| d.weight).sum();
        assert_eq!(m.dimensions[0].key, "equipment");
        assert!((m.dimensions[0].weight / total - 0.30).abs() < 1e-9);
        assert!((m.dimensions[1].weight / total - 0.25).abs() < 1e-9);
    }

    #[test]
    fn rules_interpolate_between_their_points_and_hold_the_ends() {
        let r = Rule {
            fact: Fact::PumpFaults,
            weight: 1.0,
            points: vec![[0.0, 100.0], [2.0, 60.0], [4.0, 0.0]],
        };
        assert_eq!(r.points_for(-1.0), 100.0);
        assert_eq!(r.points_for(1.0), 80.0);
        assert_eq!(r.points_for(3.0), 30.0);
        assert_eq!(r.points_for(9.0), 0.0);
    }

    #[test]
    fn every_explanation_adds_up_to_its_score_for_every_room() {
        let m = ScoreModel::shipped().unwrap();
        let mut checked = 0;
        for i in 0..200 {
            let k = f64::from(i) / 50.0;
            let mut facts = full_facts(k);
            // Knock out facts in a pattern so that rules and whole dimensions go missing.
            for (j, f) in Fact::ALL.iter().enumerate() {
                if (i + j as u32).is_multiple_of(5) || (i % 7 == 0 && j < 5) {
                    facts.set(*f, None);
                }
            }
            let s = m.score(&room("XM-0001"), &facts);
            let Some(score) = s.score else { continue };
            assert!((0.0..=100.0).contains(&score), "{score}");
            assert!((s.explained_total() - score).abs() < 1e-9, "room {i}");
            let dims: f64 = s.dimensions.iter().map(|d| d.contribution).sum();
            assert!((dims - score).abs() < 1e-9);
            let shares: f64 = s.dimensions.iter().map(|d| d.share).sum();
            assert!((shares - 1.0).abs() < 1e-9);
            // The rounded figures the console shows add up to the rounded score.
            let parts: Vec<f64> = s
                .dimensions
                .iter()
                .flat_map(|d| d.facts.iter().map(|f| f.contribution))
                .collect();
            let shown_sum: f64 = shown(&parts).iter().sum();
            let total: f64 = parts.iter().sum();
            assert!(
                (shown_sum - (total * 10.0).round() / 10.0).abs() < 1e-6,
                "{shown_sum} {score} {parts:?}"
            );
            assert!((shown_sum - score).abs() <= 0.05 + 1e-6);
            checked += 1;
        }
        assert!(checked > 150, "{checked}");
    }

    #[test]
    fn a_dimension_without_facts_is_left_out_and_its_weight_redistributed() {
        let m = ScoreModel::shipped().unwrap();
        let mut facts = full_facts(0.0);
        facts.set(Fact::SecurityAlarms, None);
        facts.set(Fact::EnvironmentAlarms, None);
        let s = m.score(&room("XM-0001"), &facts);
        let safety = s.dimensions.iter().find(|d| d.key == "safety").unwrap();
        assert_eq!(safety.score, None);
        assert_eq!(safety.share, 0.0);
        assert_eq!(
            safety.missing,
            vec![Fact::SecurityAlarms, Fact::EnvironmentAlarms]
        );
        let eq = s.dimensions.iter().find(|d| d.key == "equipment").unwrap();
        assert!((eq.share - 30.0 / 75.0).abs() < 1e-9, "{}", eq.share);
        assert!(s.missing.contains(&Fact::SecurityAlarms));
        // No fact at all: no score, not 0 and not NaN.
        let none = m.score(&room("XM-0001"), &Facts::default());
        assert_eq!(none.score, None);
        assert_eq!(none.explained_total(), 0.0);
        assert_eq!(
            none.missing.len(),
            m.dimensions.iter().map(|d| d.rules.len()).sum::<usize>()
        );
    }

    #[test]
    fn a_better_room_scores_higher_and_non_finite_facts_are_refused() {
        let m = ScoreModel::shipped().unwrap();
        let good = m.score(&room("A"), &full_facts(0.0)).score.unwrap();
        let bad = m.score(&room("B"), &full_facts(2.0)).score.unwrap();
        assert!(good > bad, "{good} {bad}");
        let mut f = Facts::default();
        f.set(Fact::Completeness, Some(f64::NAN));
        assert!(f.0.is_empty());
    }

    #[test]
    fn bad_models_are_refused_with_a_reason() {
        let bad = [
            "window_days = 30\ndimensions = []",
            "window_days = 30\n[[dimensions]]\nkey='a'\nweight=0\n[[dimensions.rules]]\nfact='completeness'\nweight=1\npoints=[[0,0]]",
            "window_days = 30\n[[dimensions]]\nkey='a'\nweight=1\n[[dimensions.rules]]\nfact='completeness'\nweight=1\npoints=[[1,0],[0,100]]",
            "window_days = 30\n[[dimensions]]\nkey='a'\nweight=1\n[[dimensions.rules]]\nfact='completeness'\nweight=1\npoints=[[0,120]]",
            "window_days = 30\n[[dimensions]]\nkey='a'\nweight=1\n[[dimensions.rules]]\nfact='no_such_fact'\nweight=1\npoints=[[0,1]]",
        ];
        for t in bad {
            assert!(ScoreModel::parse(t).is_err(), "{t}");
        }
        let missing = ScoreConfig {
            model: Some(PathBuf::from("/nonexistent/score.toml")),
        };
        assert!(matches!(
            ScoreModel::load(&missing),
            Err(ScoreError::Read { .. })
        ));
    }

    #[test]
    fn rankings_within_fleet_and_zone_share_ties_and_leave_unscored_rooms_unranked() {
        let rooms = vec![
            (room("A"), zone("z1"), Some(80.0)),
            (room("B"), zone("z2"), Some(90.0)),
            (room("C"), zone("z1"), Some(80.0)),
            (room("D"), zone("z1"), None),
            (room("E"), zone("z1"), Some(70.0)),
        ];
        let r = rank(&rooms);
        let get = |id: &str| r.iter().find(|x| x.room.as_str() == id).unwrap();
        assert_eq!(r[0].room.as_str(), "B");
        assert_eq!(
            (get("B").fleet_rank, get("B").zone_rank),
            (Some(1), Some(1))
        );
        assert_eq!(
            (get("A").fleet_rank, get("A").zone_rank),
            (Some(2), Some(1))
        );
        assert_eq!(
            (get("C").fleet_rank, get("C").zone_rank),
            (Some(2), Some(1))
        );
        assert_eq!(
            (get("E").fleet_rank, get("E").zone_rank),
            (Some(4), Some(3))
        );
        assert_eq!(get("D").fleet_rank, None);
        assert_eq!(r.last().unwrap().room.as_str(), "D");
        assert_eq!((get("A").fleet_of, get("A").zone_of), (4, 3));
    }

    #[test]
    fn the_weakest_dimension_of_a_zone_is_its_lowest_mean() {
        let m = ScoreModel::shipped().unwrap();
        let mut f1 = full_facts(0.0);
        f1.set(Fact::Completeness, Some(0.8));
        let mut f2 = full_facts(0.0);
        f2.set(Fact::Completeness, Some(0.85));
        let a = m.score(&room("A"), &f1);
        let b = m.score(&room("B"), &f2);
        let c = m.score(&room("C"), &full_facts(2.0));
        let w = weakest_by_zone(&[(zone("z1"), &a), (zone("z1"), &b), (zone("z2"), &c)]);
        assert_eq!(w.len(), 2);
        assert_eq!(w[0].dimension, "data");
        assert_eq!(w[0].rooms, 2);
        assert_eq!(a.weakest().unwrap().key, "data");
        assert_eq!(w[1].dimension, c.weakest().unwrap().key);
    }

    #[test]
    fn the_trend_scores_each_day_over_its_window() {
        let m = ScoreModel::parse(&DEFAULT_MODEL.replace("window_days = 30", "window_days = 2"))
            .unwrap();
        let d0 = Date::ymd(2026, 2, 27).unwrap();
        let days: Vec<(Date, DayFigures)> = (0..4)
            .map(|i| {
                let f = DayFigures {
                    completeness: Some(if i < 2 { 1.0 } else { 0.8 }),
                    ..DayFigures::default()
                };
                (d0.plus_days(i), f)
            })
            .collect();
        let t = trend(&m, &room("A"), &days, &Facts::default(), d0.plus_days(1));
        assert_eq!(t.len(), 3);
        // Leap-free February → March: the days follow.
        assert_eq!(t[1].date, Date::ymd(2026, 3, 1).unwrap());
        assert_eq!(t[0].score, Some(100.0));
        assert_eq!(t[1].score, Some(m.dimensions[5].rules[0].points_for(0.9)));
        assert_eq!(t[2].score, Some(0.0));
    }
}
