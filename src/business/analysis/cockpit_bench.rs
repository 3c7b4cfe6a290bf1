//! The score's and the cockpit's budgets measured (issue 22 Performance): a room's score with
//! its explanation and trend (< 50 ms) and the board's computation at 2,100 rooms over a ledger
//! of a year (part of the cockpit's first paint, < 1 s). `#[ignore]`d: run explicitly, e.g.
//! `cargo test -p cistern --release --lib cockpit_bench -- --ignored --nocapture`; they print
//! their figures and assert nothing about time.

use super::cockpit::{IndicatorId, Scope, CATALOGUE};
use super::cockpit_live::{Gather, Live, LiveFacts, Periods};
use super::day::DayFigures;
use super::score::{self, Facts, ScoreModel};
use cistern_schemas::inventory::RoomSpec;
use cistern_schemas::{Date, DeviceUnit, RoomId};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

fn figures(i: usize, d: i32) -> DayFigures {
    let x = ((i * 7919 + d as usize * 104_729) % 1000) as f64 / 1000.0;
    DayFigures {
        kwh: Some(300.0 + 100.0 * x),
        m3: Some(800.0 + 200.0 * x),
        kwh_per_m3: Some(0.4),
        set_efficiency: Some(0.45 + 0.1 * x),
        pump_efficiency: Some(0.6 + 0.1 * x),
        por_share: Some(0.7 + 0.2 * x),
        leak_index: Some(0.01 * x),
        quality_compliance: Some(0.98 + 0.02 * x),
        completeness: Some(0.95 + 0.05 * x),
        availability: Some(0.99 + 0.01 * x),
        ..DayFigures::default()
    }
}

fn live_of(i: usize) -> LiveFacts {
    let mut l = LiveFacts {
        orders_known: true,
        open_orders: (i % 4) as u32,
        sla_met: 8,
        sla_judged: 10,
        days_since_cleaning: Some((i % 200) as f64),
        ..LiveFacts::default()
    };
    l.add_alarm("intrusion", None, i.is_multiple_of(9), true);
    l.add_risk(DeviceUnit::Pump(1), (i % 10) as f64 / 20.0);
    l
}

#[test]
#[ignore = "a measurement: run explicitly with --ignored --nocapture"]
fn measure_a_rooms_score_with_its_explanation_and_trend() {
    let model = ScoreModel::shipped().unwrap();
    let room = RoomId::new("XM-0001").unwrap();
    let to = Date::ymd(2026, 12, 7).unwrap();
    // What the API reads: the trend's 30 days plus the window before the first.
    let days: Vec<(Date, DayFigures)> = (0..60)
        .map(|k| (to.plus_days(k - 59), figures(1, k)))
        .collect();
    let mut extra = Facts::default();
    live_of(1).score_facts(&mut extra);
    let n = 200;
    let t = Instant::now();
    let mut total = 0.0;
    for _ in 0..n {
        let first = to.plus_days(-29);
        let mut facts = Facts::from_figures(days.iter().skip(30).map(|x| &x.1));
        for (f, v) in &extra.0 {
            facts.set(*f, Some(*v));
        }
        let s = model.score(&room, &facts);
        let trend = score::trend(&model, &room, &days, &extra, first);
        let parts: Vec<f64> = s
            .dimensions
            .iter()
            .flat_map(|d| d.facts.iter().map(|f| f.contribution))
            .collect();
        let shown = score::shown(&parts);
        total += s.score.unwrap_or(0.0) + trend.len() as f64 + shown.len() as f64;
        assert!((s.explained_total() - s.score.unwrap()).abs() < 1e-9);
    }
    let per = t.elapsed().as_secs_f64() * 1000.0 / f64::from(n);
    println!(
        "room score + explanation + 30-day trend: {per:.3} ms per room ({n} runs, {total:.0})"
    );
}

#[test]
#[ignore = "a measurement: run explicitly with --ignored --nocapture"]
fn measure_the_board_at_2100_rooms_over_a_year_of_ledger() {
    let inv = crate::lab::sim::generate_fleet(2100, 7);
    let rooms: Vec<Arc<RoomSpec>> = inv.rooms.into_iter().map(Arc::new).collect();
    let zone_names: BTreeMap<_, _> = inv
        .zones
        .iter()
        .map(|z| (z.id.clone(), z.name.clone()))
        .collect();
    let to = Date::ymd(2026, 12, 7).unwrap();
    // The ledger as the service keeps it: per room, a year of days.
    let ledger: BTreeMap<RoomId, BTreeMap<Date, DayFigures>> = rooms
        .iter()
        .enumerate()
        .map(|(i, r)| {
            (
                r.id.clone(),
                (0..365)
                    .map(|k| (to.plus_days(k - 364), figures(i, k)))
                    .collect(),
            )
        })
        .collect();
    let live = Live {
        rooms: rooms
            .iter()
            .enumerate()
            .map(|(i, r)| (r.id.clone(), live_of(i)))
            .collect::<HashMap<_, _>>(),
        ..Live::default()
    };
    let model = ScoreModel::shipped().unwrap();
    for (name, from) in [("day", to), ("month", Date::ymd(2026, 12, 1).unwrap())] {
        let runs = 5;
        let t = Instant::now();
        let mut tiles = 0;
        for _ in 0..runs {
            let periods = Periods {
                from,
                to,
                window_from: to.plus_days(1 - model.window_days as i32),
                window_to: to,
                spark_from: to.plus_days(-13),
                live: Some((to, 0.5)),
            };
            let mut g = Gather::new(periods);
            let (first, last) = (g.first_day(), g.last_day());
            for (room, days) in &ledger {
                for (d, f) in days.range(first..=last) {
                    g.day(room, *d, f);
                }
            }
            let (snapshot, scores) = g.finish(&model, &rooms, zone_names.clone(), &live);
            for i in CATALOGUE {
                let v = snapshot.value(i.id, &Scope::Fleet).unwrap();
                let s = g.sparkline(i.id);
                tiles += usize::from(v.is_some()) + s.len();
            }
            let d = snapshot
                .drill(IndicatorId::EnergyIntensity, &Scope::Fleet)
                .unwrap();
            let ranked = score::rank(
                &scores
                    .iter()
                    .map(|(z, s)| (s.room.clone(), z.clone(), s.score))
                    .collect::<Vec<_>>(),
            );
            assert_eq!(ranked.len(), 2100);
            assert!(!d.rows.is_empty());
        }
        let per = t.elapsed().as_secs_f64() * 1000.0 / f64::from(runs);
        println!(
            "board ({name}) at 2,100 rooms, a year of ledger: {per:.1} ms per board \
             (every indicator's fleet figure and sparkline, every room scored and ranked, \
             a fleet drill-down; {runs} runs, {tiles})"
        );
    }
}
