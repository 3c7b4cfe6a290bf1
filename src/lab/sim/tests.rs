//! Scenario tests of the whole simulator: determinism, mass balance, pressure control, and the
//! visible effect and recovery of every fault. Simulated time only; no sleeps, no runtime.

use super::*;
use cistern_schemas::ids::DeviceUnit;
use cistern_schemas::DeviceKind;

/// Monday 2024-10-07 00:00 local (UTC+8): day 20_003 of the epoch.
const MONDAY_MIDNIGHT_S: i64 = 20_003 * 86_400 - 8 * 3600;

fn at_local(hour: f64) -> Timestamp {
    Timestamp((MONDAY_MIDNIGHT_S + (hour * 3600.0) as i64) * 1000)
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn mins(m: u64) -> Duration {
    Duration::from_secs(60 * m)
}

fn value(reading: &RoomReading, unit: DeviceUnit, name: &str) -> f64 {
    let index = unit.kind().point_index(name).expect("catalog point");
    let (_, values) = reading
        .devices
        .iter()
        .find(|(u, _)| *u == unit)
        .expect("device in reading");
    values[index]
}

fn room_value(reading: &RoomReading, name: &str) -> f64 {
    value(reading, DeviceUnit::Room, name)
}

fn pump_units(reading: &RoomReading) -> Vec<DeviceUnit> {
    reading
        .devices
        .iter()
        .map(|(u, _)| *u)
        .filter(|u| matches!(u, DeviceUnit::Pump(_)))
        .collect()
}

fn running_pumps(reading: &RoomReading) -> Vec<DeviceUnit> {
    pump_units(reading)
        .into_iter()
        .filter(|&p| value(reading, p, "running") == 1.0)
        .collect()
}

/// Readings compared bit for bit (NaN included).
fn bits(readings: &[RoomReading]) -> Vec<(String, i64, Vec<u64>)> {
    readings
        .iter()
        .map(|r| {
            let values = r
                .devices
                .iter()
                .flat_map(|(_, v)| v.iter().map(|x| x.to_bits()))
                .collect();
            (r.room.to_string(), r.t.0, values)
        })
        .collect()
}

#[test]
fn same_seed_and_calls_give_identical_readings_however_time_is_batched() {
    let inv = generate_fleet(3, 5);
    let rooms: Vec<RoomId> = inv.rooms.iter().map(|r| r.id.clone()).collect();
    let start = at_local(6.0);
    let mut by_minute = Simulator::new(&inv, 9, start);
    let mut by_second = Simulator::new(&inv, 9, start);
    let mut uneven = Simulator::new(&inv, 9, start);
    let mut other_seed = Simulator::new(&inv, 10, start);
    let mut any_difference = false;
    for minute in 0..120 {
        let faults = [
            (10, 0, FaultKind::PumpTrip),
            (30, 1, FaultKind::ChatteringContact),
            (45, 2, FaultKind::TankLeak),
        ];
        for (at, room, kind) in faults {
            if minute == at {
                for sim in [&mut by_minute, &mut by_second, &mut uneven] {
                    sim.inject(&rooms[room], kind, mins(20)).unwrap();
                }
            }
        }
        by_minute.step(mins(1));
        for _ in 0..60 {
            by_second.step(secs(1));
        }
        for _ in 0..40 {
            uneven.step(Duration::from_millis(1500));
        }
        other_seed.step(mins(1));
        let expected = bits(&by_minute.readings());
        assert_eq!(expected, bits(&by_second.readings()), "minute {minute}");
        assert_eq!(expected, bits(&uneven.readings()), "minute {minute}");
        any_difference |= expected != bits(&other_seed.readings());
    }
    assert_eq!(by_minute.now(), start + Duration::from_secs(7200));
    assert_eq!(by_minute.active_faults(), by_second.active_faults());
    assert!(any_difference, "another seed gives another trajectory");
}

#[test]
fn a_room_behaves_the_same_in_a_fleet_of_any_size() {
    let start = at_local(12.0);
    let mut alone = Simulator::new(&generate_fleet(1, 3), 4, start);
    let mut among = Simulator::new(&generate_fleet(6, 3), 4, start);
    for _ in 0..30 {
        alone.step(mins(1));
        among.step(mins(1));
        assert_eq!(bits(&alone.readings()), bits(&among.readings()[..1]));
    }
}

#[test]
fn the_tank_mass_balance_closes_over_a_day() {
    let inv = generate_fleet(4, 21);
    let mut sim = Simulator::new(&inv, 21, at_local(0.0));
    // Exercise the leak and overflow terms too.
    sim.inject(
        &inv.rooms[1].id,
        FaultKind::TankLeak,
        Duration::from_secs(6 * 3600),
    )
    .unwrap();
    sim.inject(
        &inv.rooms[2].id,
        FaultKind::Overflow,
        Duration::from_secs(4 * 3600),
    )
    .unwrap();
    for _ in 0..24 {
        sim.step(Duration::from_secs(3600));
    }
    let mut leaked = 0.0;
    let mut overflowed = 0.0;
    for room in &inv.rooms {
        let d = sim.diagnostics(&room.id).unwrap();
        assert_eq!(d.tanks.len(), room.tanks.len());
        for t in &d.tanks {
            let booked = t.inflow_m3 - t.outflow_m3 - t.leak_m3 - t.overflow_m3;
            let change = t.volume_m3 - t.initial_volume_m3;
            let scale = t.inflow_m3.max(t.initial_volume_m3);
            assert!(
                (change - booked).abs() <= 1e-6 * scale,
                "{} {:?}: {change} vs {booked}",
                room.id,
                t.unit
            );
            assert!(t.inflow_m3 > 0.0 && t.outflow_m3 > 0.0);
            leaked += t.leak_m3;
            overflowed += t.overflow_m3;
        }
        // Nobody went without water on a normal day.
        assert!(
            d.served_m3 > 0.99 * d.demand_m3,
            "{}: {} of {}",
            room.id,
            d.served_m3,
            d.demand_m3
        );
    }
    assert!(
        leaked > 1.0 && overflowed > 1.0,
        "leak {leaked}, overflow {overflowed}"
    );
}

#[test]
fn pressure_follows_the_set_point_over_a_day() {
    let inv = generate_fleet(5, 8);
    let mut sim = Simulator::new(&inv, 8, at_local(0.0));
    let mut samples = 0;
    let mut within = vec![0; inv.rooms.len()];
    let mut night_hz = vec![Vec::new(); inv.rooms.len()];
    let mut morning_hz = vec![Vec::new(); inv.rooms.len()];
    for step in 1..=8640 {
        sim.step(secs(10));
        let hour = (step * 10) as f64 / 3600.0;
        samples += 1;
        for (i, (room, r)) in inv.rooms.iter().zip(sim.readings()).enumerate() {
            let p = room_value(&r, "outlet_pressure");
            if (p - room.outlet_setpoint_mpa).abs() <= 0.03 {
                within[i] += 1;
            }
            let running = running_pumps(&r);
            assert!(
                !running.is_empty(),
                "{} at {hour:.2} h: no pump running",
                room.id
            );
            let duty = pump_units(&r)
                .into_iter()
                .find(|&u| value(&r, u, "duty") == 1.0)
                .unwrap();
            let hz = value(&r, duty, "frequency");
            assert!(
                (19.9..=50.1).contains(&hz),
                "{} at {hour:.2} h: {hz} Hz",
                room.id
            );
            if (2.5..3.5).contains(&hour) {
                night_hz[i].push(hz);
            }
            if (6.5..7.5).contains(&hour) {
                morning_hz[i].push(hz);
            }
        }
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    for (i, room) in inv.rooms.iter().enumerate() {
        let share = f64::from(within[i]) / f64::from(samples);
        assert!(
            share > 0.95,
            "{}: {:.1} % within ±0.03 MPa",
            room.id,
            100.0 * share
        );
        let (night, morning) = (mean(&night_hz[i]), mean(&morning_hz[i]));
        assert!(
            morning > night + 0.5,
            "{}: {morning:.2} Hz at 07:00, {night:.2} Hz at 03:00",
            room.id
        );
    }
}

#[test]
fn unknown_rooms_and_empty_durations_are_refused() {
    let inv = generate_fleet(1, 1);
    let mut sim = Simulator::new(&inv, 1, at_local(0.0));
    let ghost = RoomId::new("XM-9999").unwrap();
    assert_eq!(
        sim.inject(&ghost, FaultKind::Smoke, mins(1)),
        Err(SimError::UnknownRoom(ghost.clone()))
    );
    assert!(matches!(
        sim.inject(&inv.rooms[0].id, FaultKind::Smoke, Duration::ZERO),
        Err(SimError::ZeroDuration { .. })
    ));
    assert!(sim.reading(&ghost).is_none() && sim.diagnostics(&ghost).is_none());
    assert!(!sim.comms_up(&ghost));
    assert!(sim.active_faults().is_empty());
}

#[test]
fn readings_follow_the_catalog() {
    let inv = generate_fleet(10, 2);
    let sim = Simulator::new(&inv, 2, at_local(9.0));
    let readings = sim.readings();
    assert_eq!(readings.len(), 10);
    for (spec, r) in inv.rooms.iter().zip(&readings) {
        assert_eq!(r.room, spec.id);
        assert_eq!(r.t, sim.now());
        let units: Vec<DeviceUnit> = r.devices.iter().map(|(u, _)| *u).collect();
        assert_eq!(units, spec.units());
        for (unit, values) in &r.devices {
            let specs = unit.kind().points();
            assert_eq!(values.len(), specs.len());
            for (p, v) in specs.iter().zip(values) {
                assert!(v.is_finite(), "{}/{unit}.{} = {v}", spec.id, p.name);
                let quality = cistern_schemas::quality::assess(p, *v).unwrap();
                assert!(
                    quality.is_good(),
                    "{}/{unit}.{} = {v}: {quality}",
                    spec.id,
                    p.name
                );
            }
        }
    }
}

/// A room with a fault and its healthy twin: same seed, same inventory, same calls.
struct Twin {
    healthy: Simulator,
    faulty: Simulator,
    room: RoomId,
    spec: cistern_schemas::inventory::RoomSpec,
}

impl Twin {
    fn new(seed: u64, hour: f64) -> Self {
        let inv = generate_fleet(1, seed);
        let start = at_local(hour);
        let mut twin = Self {
            healthy: Simulator::new(&inv, seed, start),
            faulty: Simulator::new(&inv, seed, start),
            room: inv.rooms[0].id.clone(),
            spec: inv.rooms[0].clone(),
        };
        // Let the drives settle from the initial state.
        twin.step(mins(1));
        twin
    }

    fn inject(&mut self, kind: FaultKind, duration: Duration) {
        self.faulty.inject(&self.room, kind, duration).unwrap();
        let active = self.faulty.active_faults();
        assert_eq!(active.len(), 1);
        assert_eq!(active[0].fault, kind);
        assert_eq!(active[0].ends, active[0].started + duration);
    }

    fn step(&mut self, dt: Duration) {
        self.healthy.step(dt);
        self.faulty.step(dt);
    }

    fn faulty(&self) -> RoomReading {
        self.faulty.reading(&self.room).unwrap()
    }

    fn healthy(&self) -> RoomReading {
        self.healthy.reading(&self.room).unwrap()
    }

    /// Steps to the end of the fault and `after` beyond, checking that it is gone.
    fn recover(&mut self, after: Duration) {
        if let Some(ends) = self.faulty.active_faults().iter().map(|f| f.ends).max() {
            self.step(ends.since(self.faulty.now()));
        }
        assert!(
            self.faulty.active_faults().is_empty(),
            "the fault has ended"
        );
        self.step(after);
    }

    fn assert_pressure_held(&self, what: &str) {
        let p = room_value(&self.faulty(), "outlet_pressure");
        assert!(
            (p - self.spec.outlet_setpoint_mpa).abs() < 0.03,
            "{what}: {p} MPa"
        );
    }
}

#[test]
fn pump_trip_hands_over_to_the_standby_and_recovers() {
    let mut twin = Twin::new(31, 9.0);
    let victim = running_pumps(&twin.faulty())[0];
    assert_eq!(value(&twin.faulty(), victim, "duty"), 1.0);
    twin.inject(FaultKind::PumpTrip, mins(10));
    let r = twin.faulty();
    assert_eq!(value(&r, victim, "fault"), 1.0);
    assert_eq!(value(&r, victim, "running"), 0.0);
    twin.step(secs(3));
    assert!(
        room_value(&twin.faulty(), "outlet_pressure") < twin.spec.outlet_setpoint_mpa - 0.05,
        "pressure dips"
    );
    twin.step(secs(30));
    let r = twin.faulty();
    let running = running_pumps(&r);
    assert!(
        !running.is_empty() && !running.contains(&victim),
        "{running:?}"
    );
    assert_eq!(value(&r, victim, "duty"), 0.0);
    assert_eq!(value(&r, running[0], "duty"), 1.0);
    twin.assert_pressure_held("after changeover");
    twin.recover(mins(1));
    assert_eq!(value(&twin.faulty(), victim, "fault"), 0.0);
    twin.assert_pressure_held("after recovery");
}

#[test]
fn a_worn_pump_runs_faster_and_draws_more_power() {
    let mut twin = Twin::new(32, 10.0);
    twin.inject(FaultKind::PumpDegradation, mins(30));
    twin.step(mins(5));
    let hz = |r: &RoomReading| {
        running_pumps(r)
            .iter()
            .map(|&p| value(r, p, "frequency"))
            .fold(0.0, f64::max)
    };
    let kw = |r: &RoomReading| room_value(r, "active_power");
    let (worn, healthy) = (twin.faulty(), twin.healthy());
    assert!(
        hz(&worn) > hz(&healthy) + 2.0,
        "{} vs {} Hz",
        hz(&worn),
        hz(&healthy)
    );
    assert!(
        kw(&worn) > kw(&healthy) * 1.05,
        "{} vs {} kW",
        kw(&worn),
        kw(&healthy)
    );
    twin.assert_pressure_held("worn but coping");
    twin.recover(mins(1));
    let (after, healthy) = (twin.faulty(), twin.healthy());
    assert!(
        (hz(&after) - hz(&healthy)).abs() < 0.5,
        "{} vs {} Hz",
        hz(&after),
        hz(&healthy)
    );
}

/// Water in minus water out minus what the tanks gained, from the readings alone, m³.
fn unaccounted_m3(
    spec: &cistern_schemas::inventory::RoomSpec,
    from: &RoomReading,
    to: &RoomReading,
) -> f64 {
    let delta = |name| room_value(to, name) - room_value(from, name);
    let stored: f64 = spec
        .tanks
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let unit = DeviceUnit::Tank(i as u8 + 1);
            t.area_m2 * (value(to, unit, "level") - value(from, unit, "level"))
        })
        .sum();
    delta("inlet_volume") - delta("outlet_volume") - stored
}

#[test]
fn a_leaking_tank_loses_water_the_meters_cannot_account_for() {
    let mut twin = Twin::new(33, 1.0);
    let (f0, h0) = (twin.faulty(), twin.healthy());
    twin.inject(FaultKind::TankLeak, Duration::from_secs(3 * 3600));
    twin.step(Duration::from_secs(3 * 3600));
    let lost = unaccounted_m3(&twin.spec, &f0, &twin.faulty());
    let normal = unaccounted_m3(&twin.spec, &h0, &twin.healthy());
    let leaked = twin.faulty.diagnostics(&twin.room).unwrap().tanks[0].leak_m3;
    assert!(leaked > 1.0, "{leaked}");
    assert!(
        (lost - leaked).abs() < 0.1 * leaked + 1.0,
        "readings show {lost} m3, leak {leaked}"
    );
    assert!(normal.abs() < 1.0, "{normal}");
    twin.recover(Duration::ZERO);
    let before = twin.faulty.diagnostics(&twin.room).unwrap().tanks[0].leak_m3;
    twin.step(Duration::from_secs(3600));
    let after = twin.faulty.diagnostics(&twin.room).unwrap().tanks[0].leak_m3;
    assert_eq!(before, after, "the leak is repaired");
}

#[test]
fn a_pipe_leak_adds_its_share_of_the_mean_flow_at_the_outlet_meter_day_and_night() {
    // 03:00 local: the night minimum, where a leak shows.
    let mut twin = Twin::new(34, 3.0);
    let mean = twin.faulty.mean_demand_m3h(&twin.room).unwrap();
    let (f0, h0) = (twin.faulty(), twin.healthy());
    twin.faulty
        .inject_pipe_leak(&twin.room, 0.02, Duration::from_secs(2 * 3600))
        .unwrap();
    let active = twin.faulty.active_faults();
    assert_eq!(active.len(), 1);
    assert_eq!(active[0].fault, FaultKind::PipeLeak);
    let d = twin.faulty.diagnostics(&twin.room).unwrap();
    assert!(
        (d.pipe_leak_m3h - 0.02 * mean).abs() < 1e-9,
        "{}",
        d.pipe_leak_m3h
    );
    twin.step(Duration::from_secs(3600));
    // The outlet meter counts the leak on top of the same demand.
    let delta = |a: &RoomReading, b: &RoomReading| {
        room_value(b, "outlet_volume") - room_value(a, "outlet_volume")
    };
    let extra = delta(&f0, &twin.faulty()) - delta(&h0, &twin.healthy());
    assert!(
        (extra - 0.02 * mean).abs() < 0.1 * 0.02 * mean + 0.01,
        "{extra} m3 vs {}",
        0.02 * mean
    );
    let (served, demand) = {
        let d = twin.faulty.diagnostics(&twin.room).unwrap();
        (d.served_m3, d.demand_m3)
    };
    assert!(
        served > demand,
        "served {served} includes the leak, demand {demand} does not"
    );
    twin.recover(Duration::ZERO);
    assert_eq!(
        twin.faulty.diagnostics(&twin.room).unwrap().pipe_leak_m3h,
        0.0,
        "repaired"
    );
    assert!(twin
        .faulty
        .inject_pipe_leak(&RoomId::new("XM-9999").unwrap(), 0.02, mins(1))
        .is_err());
}

#[test]
fn a_jammed_inlet_valve_overflows_then_recovers() {
    let mut twin = Twin::new(34, 2.0);
    twin.inject(FaultKind::Overflow, Duration::from_secs(3 * 3600));
    assert_eq!(
        value(&twin.faulty(), DeviceUnit::Tank(1), "inlet_valve"),
        1.0
    );
    let mut overflowed = false;
    for _ in 0..170 {
        twin.step(mins(1));
        let r = twin.faulty();
        assert_eq!(value(&r, DeviceUnit::Tank(1), "inlet_valve"), 1.0);
        overflowed |= value(&r, DeviceUnit::Tank(1), "overflow") == 1.0;
    }
    assert!(overflowed, "the level reached the overflow");
    assert_eq!(value(&twin.healthy(), DeviceUnit::Tank(1), "overflow"), 0.0);
    twin.recover(mins(10));
    let r = twin.faulty();
    assert_eq!(value(&r, DeviceUnit::Tank(1), "overflow"), 0.0);
    assert_eq!(value(&r, DeviceUnit::Tank(1), "inlet_valve"), 0.0);
}

#[test]
fn losing_inlet_pressure_stops_the_refill() {
    let mut twin = Twin::new(35, 8.0);
    twin.inject(FaultKind::InletPressureLoss, Duration::from_secs(2 * 3600));
    twin.step(mins(1));
    assert!(room_value(&twin.faulty(), "inlet_pressure") < 0.05);
    twin.step(Duration::from_secs(2 * 3600 - 120));
    let level = |r: &RoomReading| value(r, DeviceUnit::Tank(1), "level");
    assert!(
        level(&twin.faulty()) < level(&twin.healthy()) - 0.2,
        "the tank drains"
    );
    twin.recover(mins(5));
    assert!(room_value(&twin.faulty(), "inlet_pressure") > 0.1);
    assert!(room_value(&twin.faulty(), "inlet_flow") > 0.0, "refilling");
}

#[test]
fn chlorine_drops_and_turbidity_spikes_then_recover() {
    for (kind, name) in [
        (FaultKind::ChlorineDrop, "chlorine"),
        (FaultKind::TurbiditySpike, "turbidity"),
    ] {
        let mut twin = Twin::new(36, 14.0);
        twin.inject(kind, mins(30));
        twin.step(mins(20));
        let v = room_value(&twin.faulty(), name);
        match kind {
            FaultKind::ChlorineDrop => assert!(v < 0.07, "chlorine {v}"),
            _ => assert!(v > 2.5, "turbidity {v}"),
        }
        twin.recover(mins(30));
        let (after, healthy) = (
            room_value(&twin.faulty(), name),
            room_value(&twin.healthy(), name),
        );
        assert!(
            (after - healthy).abs() < 0.05,
            "{name}: {after} vs {healthy}"
        );
    }
}

#[test]
fn a_stuck_transmitter_freezes_and_a_failed_one_reads_below_4_ma() {
    let spec = &DeviceKind::Room.points()[DeviceKind::Room.point_index("outlet_pressure").unwrap()];
    let mut twin = Twin::new(37, 18.0);
    twin.inject(FaultKind::StuckSensor, mins(10));
    let frozen = room_value(&twin.faulty(), "outlet_pressure");
    let mut live = Vec::new();
    for _ in 0..20 {
        twin.step(secs(7));
        assert_eq!(
            room_value(&twin.faulty(), "outlet_pressure").to_bits(),
            frozen.to_bits()
        );
        live.push(room_value(&twin.healthy(), "outlet_pressure"));
    }
    assert!(
        live.windows(2).any(|w| w[0] != w[1]),
        "the healthy transmitter moves"
    );
    twin.recover(secs(5));
    let a = room_value(&twin.faulty(), "outlet_pressure");
    twin.step(secs(1));
    assert_ne!(a, room_value(&twin.faulty(), "outlet_pressure"));

    let mut twin = Twin::new(37, 18.0);
    twin.inject(FaultKind::FailedSensor, mins(10));
    twin.step(secs(5));
    let v = room_value(&twin.faulty(), "outlet_pressure");
    assert!(spec.milliamps(v).unwrap() < 3.6, "{v} MPa");
    twin.assert_pressure_held_in_diagnostics();
    twin.recover(secs(5));
    let v = room_value(&twin.faulty(), "outlet_pressure");
    assert!(spec.milliamps(v).unwrap() > 3.8);
    twin.assert_pressure_held("after the transmitter is replaced");
}

impl Twin {
    /// The plant itself keeps its pressure while only the SCADA transmitter misreads (the
    /// drive has its own feedback sensor).
    fn assert_pressure_held_in_diagnostics(&self) {
        let d = self.faulty.diagnostics(&self.room).unwrap();
        assert!((d.outlet_pressure_mpa - d.setpoint_mpa).abs() < 0.03);
    }
}

#[test]
fn a_chattering_door_contact_toggles_then_settles() {
    // 02:00: no inspector visits at night, so the door is closed apart from the fault.
    let mut twin = Twin::new(38, 2.0);
    twin.inject(FaultKind::ChatteringContact, mins(2));
    let mut toggles = 0;
    let mut last = room_value(&twin.faulty(), "door");
    for _ in 0..119 {
        twin.step(secs(1));
        let door = room_value(&twin.faulty(), "door");
        toggles += usize::from(door != last);
        last = door;
    }
    assert!(toggles >= 12, "{toggles} toggles in 2 min");
    twin.recover(Duration::ZERO);
    for _ in 0..300 {
        twin.step(secs(1));
        assert_eq!(room_value(&twin.faulty(), "door"), 0.0);
    }
}

#[test]
fn comms_loss_silences_the_gateway_but_not_the_plant() {
    let mut twin = Twin::new(39, 11.0);
    assert!(twin.faulty.comms_up(&twin.room));
    twin.inject(FaultKind::CommsLoss, mins(30));
    assert!(!twin.faulty.comms_up(&twin.room));
    let before = room_value(&twin.faulty(), "outlet_volume");
    twin.step(mins(10));
    assert!(!twin.faulty.comms_up(&twin.room));
    assert!(
        room_value(&twin.faulty(), "outlet_volume") > before,
        "physics continues"
    );
    assert_eq!(
        bits(&[twin.faulty()]),
        bits(&[twin.healthy()]),
        "comms loss changes no value"
    );
    twin.recover(secs(1));
    assert!(twin.faulty.comms_up(&twin.room));
}

#[test]
fn mains_loss_stops_everything_and_the_drives_restart() {
    let mut twin = Twin::new(40, 19.0);
    twin.inject(FaultKind::MainsLoss, mins(10));
    twin.step(secs(30));
    let r = twin.faulty();
    assert_eq!(room_value(&r, "mains"), 0.0);
    for phase in ["voltage_a", "voltage_b", "voltage_c"] {
        assert!(room_value(&r, phase) < 5.0);
    }
    assert_eq!(room_value(&r, "active_power"), 0.0);
    assert!(running_pumps(&r).is_empty());
    let level = value(&r, DeviceUnit::Tank(1), "level");
    let suction_mpa = level / 101.97;
    assert!(
        room_value(&r, "outlet_pressure") < suction_mpa + 0.01,
        "falls to the suction head"
    );
    assert_eq!(value(&r, DeviceUnit::Camera(1), "online"), 0.0);
    let energy = room_value(&r, "energy");
    twin.step(mins(1));
    assert_eq!(
        room_value(&twin.faulty(), "energy"),
        energy,
        "no energy without mains"
    );
    twin.recover(mins(1));
    let r = twin.faulty();
    assert_eq!(room_value(&r, "mains"), 1.0);
    assert!((room_value(&r, "voltage_a") - 380.0).abs() < 30.0);
    assert!(!running_pumps(&r).is_empty());
    assert_eq!(value(&r, DeviceUnit::Camera(1), "online"), 1.0);
    twin.assert_pressure_held("after the mains return");
}

#[test]
fn flooding_and_smoke_raise_their_detectors() {
    for (kind, name) in [
        (FaultKind::Flooding, "flooding"),
        (FaultKind::Smoke, "smoke"),
    ] {
        let mut twin = Twin::new(41, 3.0);
        twin.inject(kind, mins(5));
        twin.step(secs(2));
        assert_eq!(room_value(&twin.faulty(), name), 1.0);
        if kind == FaultKind::Smoke {
            assert_eq!(room_value(&twin.faulty(), "siren"), 1.0);
        }
        twin.recover(secs(1));
        assert_eq!(room_value(&twin.faulty(), name), 0.0);
        assert_eq!(room_value(&twin.faulty(), "siren"), 0.0);
    }
}

#[test]
fn an_intrusion_forces_the_door_while_armed() {
    let mut twin = Twin::new(42, 3.0);
    twin.inject(FaultKind::Intrusion, mins(5));
    let r = twin.faulty();
    assert_eq!(room_value(&r, "access"), 3.0);
    for (name, expected) in [
        ("armed", 1.0),
        ("door", 1.0),
        ("intrusion", 1.0),
        ("siren", 1.0),
    ] {
        assert_eq!(room_value(&r, name), expected, "{name}");
    }
    assert_eq!(value(&r, DeviceUnit::Camera(1), "motion"), 1.0);
    twin.step(secs(10));
    assert_eq!(
        room_value(&twin.faulty(), "access"),
        0.0,
        "the event is momentary"
    );
    assert_eq!(room_value(&twin.faulty(), "intrusion"), 1.0);
    twin.recover(secs(10));
    let r = twin.faulty();
    for (name, expected) in [
        ("armed", 1.0),
        ("door", 0.0),
        ("intrusion", 0.0),
        ("siren", 0.0),
    ] {
        assert_eq!(room_value(&r, name), expected, "{name}");
    }
    assert_eq!(value(&r, DeviceUnit::Camera(1), "motion"), 0.0);
}

#[test]
fn every_fault_kind_is_covered_and_injectable() {
    let inv = generate_fleet(1, 50);
    let mut sim = Simulator::new(&inv, 50, at_local(12.0));
    let room = &inv.rooms[0].id;
    for kind in FaultKind::ALL {
        sim.inject(room, kind, mins(5)).unwrap();
    }
    assert_eq!(sim.active_faults().len(), FaultKind::ALL.len());
    sim.step(mins(2));
    for r in sim.readings() {
        assert_eq!(r.devices.len(), inv.rooms[0].units().len());
    }
    sim.step(mins(4));
    assert!(sim.active_faults().is_empty());
    assert!(sim.comms_up(room));
    sim.step(mins(5));
    let r = sim.reading(room).unwrap();
    assert_eq!(room_value(&r, "mains"), 1.0);
    assert!(!running_pumps(&r).is_empty());
}

#[test]
fn unusual_rooms_from_a_loaded_inventory_work_too() {
    use cistern_schemas::inventory::PointOverride;
    let mut inv = generate_fleet(2, 60);
    // A direct-boost station: no break tank, one pump, a 0-2.5 MPa outlet transmitter.
    let station = &mut inv.rooms[0];
    station.tanks.clear();
    station.pumps.truncate(1);
    station.points.insert(
        "outlet_pressure".to_owned(),
        PointOverride {
            range: Some([0.0, 2.5]),
            period: None,
        },
    );
    inv.validate().unwrap();
    let id = inv.rooms[0].id.clone();
    let mut sim = Simulator::new(&inv, 60, at_local(18.0));
    sim.step(mins(10));
    let r = sim.reading(&id).unwrap();
    assert_eq!(r.devices.len(), 1 + 1 + inv.rooms[0].cameras.len());
    let d = sim.diagnostics(&id).unwrap();
    assert!(d.tanks.is_empty());
    assert!(
        (d.outlet_pressure_mpa - d.setpoint_mpa).abs() < 0.03,
        "{}",
        d.outlet_pressure_mpa
    );
    assert!((room_value(&r, "inlet_flow") - room_value(&r, "outlet_flow")).abs() < 0.5);
    assert!(matches!(
        sim.inject(&id, FaultKind::TankLeak, mins(5)),
        Err(SimError::NotApplicable { .. })
    ));
    sim.inject(&id, FaultKind::FailedSensor, mins(5)).unwrap();
    // The room's own range applies: 3.0 mA of 0-2.5 MPa (-0.15625), reported at 0.001 MPa.
    let failed = room_value(&sim.reading(&id).unwrap(), "outlet_pressure");
    assert_eq!(failed, -0.156, "{failed}");
    // With its only pump tripped the station has no standby: the bypass passes the mains
    // pressure until the drive is reset.
    sim.inject(&id, FaultKind::PumpTrip, mins(5)).unwrap();
    sim.step(mins(1));
    let tripped = sim.diagnostics(&id).unwrap();
    assert_eq!(tripped.pumps_running, 0);
    assert!((tripped.outlet_pressure_mpa - tripped.mains_pressure_mpa).abs() < 1e-3);
    assert!(tripped.outlet_pressure_mpa < d.setpoint_mpa - 0.05);
    sim.step(mins(5));
    let d = sim.diagnostics(&id).unwrap();
    assert!((d.outlet_pressure_mpa - d.setpoint_mpa).abs() < 0.03);
}
