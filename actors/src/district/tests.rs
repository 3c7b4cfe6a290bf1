//! Unit tests of the district logic: no runtime, slots as arguments.

use super::*;
use cistern_schemas::{DeviceUnit, RoomId};

fn tank_id(n: usize) -> cistern_schemas::DeviceId {
    cistern_schemas::DeviceId::new(
        RoomId::new(&format!("XM-{n:04}")).unwrap(),
        DeviceUnit::Tank(1),
    )
}

/// A weekday profile with a morning and an evening peak, m³/h.
fn profile(slot: u32) -> f64 {
    let h = (slot % 96) as f64 / 4.0;
    let bump = |c: f64, w: f64| (-((h - c) / w).powi(2)).exp();
    10.0 + 12.0 * bump(7.0, 1.0) + 15.0 * bump(19.5, 1.5)
}

fn spec(fire: f64) -> TankSpec {
    TankSpec {
        area_m2: 40.0,
        max_level_m: 3.3,
        hard_min_m: 0.4,
        fire_reserve_m: fire,
        age_limit_h: 48.0,
        inlet_capacity_m3h: 60.0,
    }
}

/// Every day a weekday, so that a fortnight teaches every slot.
fn weekdays() -> Calendar {
    Calendar::default()
}

fn trained_planner(n: usize, fire: f64, level: f64) -> TankPlanner {
    let mut p = TankPlanner::new(
        tank_id(n),
        spec(fire),
        TankPlannerConfig::default(),
        weekdays(),
    );
    // Two weeks, weekends excluded from the check by observing only weekdays' slots.
    for slot in 0..14 * 96 {
        p.observe(slot, Some(profile(slot)), Some(level));
    }
    p
}

#[test]
fn the_forecaster_learns_a_profile_despite_outliers_and_gaps() {
    let mut f = DemandForecaster::new(ForecastConfig::default(), weekdays());
    let mut spikes = 0;
    for slot in 0..21 * 96u32 {
        // A two-day comms gap, and every 7th sample lost.
        if (5 * 96..7 * 96).contains(&slot) || slot % 7 == 0 {
            continue;
        }
        let truth = profile(slot);
        // Deterministic ±5 % wiggle, a 1-in-50 meter spike ×8, a negative reading now and then.
        let wiggle = 1.0 + 0.05 * ((slot * 7919 % 13) as f64 / 6.0 - 1.0);
        let reading = if slot % 50 == 3 {
            spikes += 1;
            truth * 8.0
        } else if slot % 97 == 5 {
            -1.0
        } else {
            truth * wiggle
        };
        f.observe(slot, reading);
    }
    assert!(spikes > 30);
    assert!(f.rejected() > 0, "negative readings are refused");
    assert!(f.is_warm());
    let forecast = f.forecast(21 * 96, 96);
    let mut tight = 0;
    for (k, s) in forecast.slots.iter().enumerate() {
        let truth = profile(k as u32);
        let err = (s.median - truth).abs() / truth;
        assert!(
            err < 0.10,
            "slot {k}: forecast {:.2} vs truth {truth:.2}",
            s.median
        );
        assert!(s.lower <= s.median && s.median <= s.upper);
        // The band covers the ±5 % wiggle; a slot whose very first sample was a spike keeps a
        // wider (conservative) band for a while.
        assert!(
            s.upper - s.median < 0.6 * truth,
            "band too wide at slot {k}: {s:?}"
        );
        if s.upper - s.median < 0.2 * truth {
            tight += 1;
        }
    }
    assert!(tight >= 90, "{tight} of 96 slots with a tight band");
}

#[test]
fn holidays_use_and_teach_the_sunday_profile() {
    let cal = Calendar { holidays: vec![9] };
    assert_eq!(cal.day_type(9 * 96 + 10), DayType::Sunday);
    assert_eq!(cal.day_type(8 * 96), DayType::Weekday);
    assert_eq!(cal.day_type(5 * 96), DayType::Saturday);
    let mut f = DemandForecaster::new(ForecastConfig::default(), cal);
    for slot in 0..14 * 96u32 {
        let sunday_like = matches!(slot / 96 % 7, 5 | 6) || slot / 96 == 9;
        f.observe(slot, if sunday_like { 5.0 } else { 20.0 });
    }
    // Day 16 is a Wednesday: weekday profile; day 13 was a Sunday.
    let weekday = f.forecast(16 * 96 + 40, 1).slots[0].median;
    let sunday = f.forecast(20 * 96 + 40, 1).slots[0].median;
    assert!((weekday - 20.0).abs() < 1.5, "{weekday}");
    assert!((sunday - 5.0).abs() < 1.5, "{sunday}");
}

/// Runs one round for `planners` under `constraints` with a flat direct demand.
fn round(
    planners: &mut [TankPlanner],
    constraints: DistrictConstraints,
    direct: f64,
    slot0: u32,
    reachable: &[bool],
    previous: Option<DistrictCoordinator>,
) -> (DistrictCoordinator, Vec<FillGranted>, Vec<PlanConfirmed>) {
    let mut c = previous.unwrap_or_else(|| {
        let mut c = DistrictCoordinator::new(constraints, CoordinatorConfig::default(), weekdays());
        for slot in 0..14 * 96 {
            c.observe_direct(slot, Some(direct));
        }
        c
    });
    let r = c.open_round(slot0);
    for (p, &ok) in planners.iter_mut().zip(reachable) {
        if ok {
            if let Some(bid) = p.on_round_opened(&r) {
                c.receive_bid(bid).unwrap();
            }
        }
    }
    let grants = c.grant().unwrap();
    let mut confirmed = Vec::new();
    for g in &grants {
        let p = planners.iter_mut().find(|p| p.tank() == &g.tank).unwrap();
        let conf = p.on_granted(g).unwrap();
        c.receive_confirmation(conf.clone()).unwrap();
        confirmed.push(conf);
    }
    assert_eq!(c.phase(), CoordinatorPhase::Idle);
    (c, grants, confirmed)
}

fn constraints(main: f64) -> DistrictConstraints {
    DistrictConstraints {
        main_capacity_m3h: main,
        peak_windows: vec![(26, 36), (70, 86)],
        tariff: Tariff::three_tier(),
    }
}

#[test]
fn a_tank_never_plans_below_its_minimum_and_fire_reserve() {
    // Low tanks (one at its fire reserve), a main barely big enough: hard needs still come first.
    let mut planners: Vec<TankPlanner> = (0..6)
        .map(|i| trained_planner(i, if i % 2 == 0 { 0.6 } else { 0.0 }, 1.0 + 0.1 * i as f64))
        .collect();
    let n = planners.len();
    let (_, grants, _) = round(
        &mut planners,
        constraints(400.0),
        150.0,
        14 * 96 + 60,
        &vec![true; n],
        None,
    );
    for (g, p) in grants.iter().zip(&planners) {
        let forecast = p.forecaster().forecast(g.slot0, g.volumes.len());
        let spec = p.spec();
        let start_level = 1.0 + 0.1 * g.tank.room.as_str()[3..].parse::<f64>().unwrap();
        let mut volume = spec.volume_m3(start_level);
        for (t, v) in g.volumes.iter().enumerate() {
            volume += v - forecast.slots[t].median * 0.25;
            assert!(
                spec.level_m(volume) > spec.floor_level_m(),
                "{}: slot {t} planned {:.3} m, floor {:.3} m",
                g.tank,
                spec.level_m(volume),
                spec.floor_level_m()
            );
            assert!(*v <= spec.inlet_capacity_m3h * 0.25 + 1e-9);
        }
    }
}

#[test]
fn coordination_respects_the_mains_capacity() {
    let mut planners: Vec<TankPlanner> = (0..10).map(|i| trained_planner(i, 0.0, 2.0)).collect();
    let main = 300.0;
    let direct = 120.0;
    let (c, grants, _) = round(
        &mut planners,
        constraints(main),
        direct,
        14 * 96,
        &[true; 10],
        None,
    );
    let summary = c.last_round();
    assert_eq!(summary.bids, 10);
    assert_eq!(summary.over_main_capacity_m3h, 0.0);
    let h = grants[0].volumes.len();
    let mut total_inflow = 0.0;
    for t in 0..h {
        let inflow: f64 = grants.iter().map(|g| g.volumes[t]).sum::<f64>() / 0.25;
        total_inflow += inflow;
        assert!(
            direct + inflow <= main + 1e-6,
            "slot {t}: {:.1} m³/h on a {main} m³/h main",
            direct + inflow
        );
    }
    // The tanks do get their water: over 36 h at least the median demand less what they hold.
    assert!(total_inflow * 0.25 > 10.0 * 36.0 * 10.0 * 0.5);
    // Flattening: the planned peak sits well under the uncoordinated sum of peaks.
    assert!(summary.planned_peak_m3h < direct + 10.0 * 37.0);
}

#[test]
fn priority_goes_to_the_tank_with_the_least_autonomy() {
    let mut planners = vec![trained_planner(1, 0.0, 3.0), trained_planner(2, 0.0, 0.8)];
    let (_, grants, _) = round(
        &mut planners,
        constraints(500.0),
        100.0,
        14 * 96,
        &[true, true],
        None,
    );
    let low = grants.iter().find(|g| g.tank == tank_id(2)).unwrap();
    let high = grants.iter().find(|g| g.tank == tank_id(1)).unwrap();
    assert_eq!(low.priority, 0);
    assert_eq!(high.priority, 1);
}

#[test]
fn an_unreachable_tank_runs_its_last_local_rule_and_the_district_counts_it() {
    let mut planners: Vec<TankPlanner> = (0..3).map(|i| trained_planner(i, 0.5, 1.5)).collect();
    let slot0 = 14 * 96;
    let (c, _, confirmed) = round(
        &mut planners,
        constraints(400.0),
        100.0,
        slot0,
        &[true; 3],
        None,
    );
    let rule = &confirmed[0].rule;
    assert!(!rule.windows.is_empty(), "a low tank plans to fill");
    assert!(rule.fallback_level_m > spec(0.5).floor_level_m());
    let committed_rate = rule.planned_rate_m3h(slot0 + 1);

    // Tank 0's room goes offline: it does not bid; the coordinator counts its plan.
    let (c, grants, _) = round(
        &mut planners,
        constraints(400.0),
        100.0,
        slot0 + 1,
        &[false, true, true],
        Some(c),
    );
    assert_eq!(grants.len(), 2);
    assert_eq!(c.last_round().committed, 1);
    // Its planned inflow is part of the base load the others were granted around.
    assert!(c.last_round().first_slot_base_m3h >= 100.0 * 0.9 + committed_rate - 1e-6);
}

#[test]
fn the_local_rule_fills_in_its_windows_and_falls_back_to_a_float_valve() {
    // Fill 8 m³ per slot over slots 100-103 and 2 m³ at 110; nothing else.
    let mut volumes = vec![0.0; 24];
    volumes[..4].fill(8.0);
    volumes[10] = 2.0;
    let levels: Vec<f64> = (0..24).map(|t| 1.5 + 0.05 * t as f64).collect();
    let rule = LocalRule::from_schedule(100, &volumes, &levels, 1.0, 3.0);
    assert_eq!(rule.windows.len(), 2);
    assert_eq!(
        (rule.windows[0].start_slot, rule.windows[0].end_slot),
        (100, 104)
    );
    assert!((rule.windows[0].rate_m3h - 32.0).abs() < 1e-9);
    assert!((rule.planned_rate_m3h(102) - 32.0).abs() < 1e-9);
    assert_eq!(rule.planned_rate_m3h(105), 0.0);

    let mut fallback = false;
    // In a window: the planned rate, up to the window's highest planned level.
    match rule.command(101, 2.0, &mut fallback) {
        InletCommand::Rate {
            rate_m3h,
            until_level_m,
        } => {
            assert!((rate_m3h - 32.0).abs() < 1e-9);
            assert!((until_level_m - levels[3]).abs() < 1e-9);
        }
        other => panic!("expected the planned rate, got {other:?}"),
    }
    // Outside windows: shut …
    assert_eq!(rule.command(106, 2.0, &mut fallback), InletCommand::Closed);
    // … unless the level falls under the fallback level: fully open until the hysteresis is
    // climbed back, whatever the windows say.
    assert!(matches!(
        rule.command(106, 0.95, &mut fallback),
        InletCommand::Full { .. }
    ));
    assert!(matches!(
        rule.command(107, 1.1, &mut fallback),
        InletCommand::Full { .. }
    ));
    assert_eq!(rule.command(108, 1.35, &mut fallback), InletCommand::Closed);
    // An expired plan is a plain float valve.
    assert!(matches!(
        rule.command(rule.expires_slot, 2.0, &mut fallback),
        InletCommand::Full { until_level_m } if until_level_m == 3.0
    ));
}

#[test]
fn protocol_messages_out_of_turn_are_refused() {
    let mut planners = [trained_planner(1, 0.0, 2.0)];
    let mut c =
        DistrictCoordinator::new(constraints(300.0), CoordinatorConfig::default(), weekdays());
    assert_eq!(c.grant().unwrap_err(), DistrictError::NoOpenRound);
    let r1 = c.open_round(14 * 96);
    let bid = planners[0].on_round_opened(&r1).unwrap();
    let r2 = c.open_round(14 * 96 + 1);
    assert!(matches!(
        c.receive_bid(bid),
        Err(DistrictError::StaleRound { .. })
    ));
    let mut short = planners[0].on_round_opened(&r2).unwrap();
    short.must_have.pop();
    assert!(matches!(
        c.receive_bid(short),
        Err(DistrictError::HorizonMismatch { .. })
    ));
    // A grant the tank did not bid for.
    let stray = FillGranted {
        tank: tank_id(1),
        round: 99,
        slot0: 0,
        priority: 0,
        volumes: vec![],
    };
    assert!(planners[0].on_granted(&stray).is_err());
}

#[test]
fn a_cold_tank_stays_out_of_the_round_on_a_float_valve() {
    let mut p = TankPlanner::new(
        tank_id(1),
        spec(0.0),
        TankPlannerConfig::default(),
        weekdays(),
    );
    p.observe(0, Some(10.0), Some(2.0));
    assert_eq!(p.state(), TankPlannerState::Cold);
    let mut c =
        DistrictCoordinator::new(constraints(300.0), CoordinatorConfig::default(), weekdays());
    let r = c.open_round(1);
    assert!(p.on_round_opened(&r).is_none());
    assert_eq!(p.local_rule(1), LocalRule::float_valve(1, 3.3));
}
