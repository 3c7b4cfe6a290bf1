//! The lifecycle's unit tests: defined answers on thin or degenerate data, the risk and plan
//! arithmetic, the service following archives and work orders, preventive orders raised once
//! in simulated time and across a restart, and (ignored, run explicitly) the fleet-scale
//! measurement.

use super::analysis::{self, CurveSource, MIN_CLASS_FAILURES};
use super::model::{
    Component, ComponentClass, ComponentId, Event, EventKind, EventSource, HoursSource, Life,
};
use super::service::Lifecycle;
use super::{Costs, LifecycleConfig};
use crate::business::assets::archive::model::{EquipmentKind, Nameplate, RoomArchive};
use crate::business::workorders::model::{OrderType, PartUse};
use crate::store::embedded::EmbeddedStore;
use crate::store::records::Records;
use cistern_actors::clock::ManualClock;
use cistern_schemas::inventory::Inventory;
use cistern_schemas::{Date, DeviceUnit, EquipmentTag, RoomId, Timestamp};
use std::collections::BTreeMap;
use std::sync::Arc;

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;

fn lives(failures: &[f64], censored: &[f64]) -> Vec<Life> {
    failures
        .iter()
        .map(|&hours| Life {
            hours,
            failed: true,
        })
        .chain(censored.iter().map(|&hours| Life {
            hours,
            failed: false,
        }))
        .collect()
}

#[test]
fn thin_or_degenerate_data_falls_back_to_the_literature_with_the_reason() {
    let seal = ComponentClass::MechanicalSeal;
    let cases: [(&str, Vec<Life>); 4] = [
        ("none", lives(&[], &[1000.0, 2000.0])),
        ("one", lives(&[5000.0], &[1000.0])),
        ("same age", lives(&[7000.0; 6], &[100.0])),
        ("empty", Vec::new()),
    ];
    for (name, l) in cases {
        let c = analysis::curve_of(seal, None, &l, 0, MIN_CLASS_FAILURES);
        assert_eq!(c.source, CurveSource::Literature, "{name}");
        assert!(c.reason.is_some(), "{name}: says why");
        assert_eq!((c.beta, c.eta), (1.4, 25_000.0), "{name}");
        assert!(c.beta_bounds.is_none());
    }
    let same = analysis::curve_of(seal, None, &lives(&[7000.0; 6], &[]), 0, 5);
    assert!(same.reason.unwrap().starts_with("fit_refused"));
    let thin = analysis::curve_of(seal, None, &lives(&[1.0, 2.0], &[]), 0, 5);
    assert!(thin.reason.unwrap().starts_with("thin_data"));
    // Enough failures: the fit, with its bounds around it.
    let f = analysis::curve_of(
        seal,
        None,
        &lives(
            &[1200.0, 2300.0, 3100.0, 4500.0, 5200.0, 6100.0, 7800.0],
            &[3000.0, 5000.0, 8000.0, 8000.0, 9000.0],
        ),
        0,
        5,
    );
    assert_eq!(f.source, CurveSource::Fit);
    assert!((f.beta - 1.722698).abs() < 1e-4);
    let b = f.beta_bounds.unwrap();
    assert!(b.lower < f.beta && f.beta < b.upper);
}

#[test]
fn probabilities_and_hazards_are_finite_at_every_age() {
    for w in [
        ComponentClass::Bearing.literature(),
        crate::business::assets::weibull::Weibull {
            beta: 0.5,
            eta: 1000.0,
        },
    ] {
        for age in [0.0, 1.0, 1e3, 1e6, 1e9] {
            let p = analysis::conditional_failure(&w, age, 720.0);
            assert!((0.0..=1.0).contains(&p), "{age}: {p}");
            assert!(analysis::hazard(&w, age).is_finite());
        }
    }
    // An exponential part's chance over 30 days does not depend on its age.
    let t = ComponentClass::PressureTransducer.literature();
    let a = analysis::conditional_failure(&t, 100.0, 720.0);
    let b = analysis::conditional_failure(&t, 50_000.0, 720.0);
    assert!((a - b).abs() < 1e-12);
    assert!((a - (1.0 - (-720.0f64 / 20_000.0).exp())).abs() < 1e-12);
}

fn component(room: &str, class: ComponentClass, installed_days_ago: i64, now: i64) -> Component {
    let room = RoomId::new(room).unwrap();
    let tag = EquipmentTag::from(DeviceUnit::Pump(1));
    let at = Timestamp(now - installed_days_ago * DAY);
    Component {
        id: ComponentId::new(&room, &tag, class),
        room,
        equipment: tag,
        class,
        vendor: String::new(),
        model: String::new(),
        part_number: String::new(),
        serial: String::new(),
        installed_at: at,
        events: vec![Event {
            at,
            kind: EventKind::Install,
            source: EventSource::Archive,
            serial: String::new(),
            by: "t".into(),
            order: None,
            note: String::new(),
        }],
        duty: 1.0,
        hours_source: HoursSource::Calendar,
    }
}

#[test]
fn an_old_seal_is_overdue_a_new_one_is_planned_and_random_parts_run_to_failure() {
    let now = 1_800_000_000_000;
    let costs = Costs::default();
    let parts = vec![
        component("XM-0001", ComponentClass::MechanicalSeal, 5 * 365, now),
        component("XM-0002", ComponentClass::MechanicalSeal, 10, now),
        component("XM-0003", ComponentClass::PressureTransducer, 400, now),
    ];
    let fits = analysis::fits(&parts, Timestamp(now));
    let risks = analysis::risks(&parts, &fits, &costs, Timestamp(now));
    let seal = costs.of(ComponentClass::MechanicalSeal);
    let (t_star, _) = crate::business::assets::weibull::optimal_age(
        &ComponentClass::MechanicalSeal.literature(),
        seal.planned,
        seal.failure,
    )
    .unwrap();
    assert!(risks[0].overdue, "43,800 h > T*");
    assert_eq!(risks[0].next_replacement, Some(Timestamp(now)));
    assert!(!risks[1].overdue);
    let due = risks[1].next_replacement.unwrap().0;
    let expected = now - 10 * DAY + (t_star * HOUR as f64) as i64;
    assert!((due - expected).abs() <= 1, "{due} vs {expected}");
    assert_eq!(risks[2].next_replacement, None, "β = 1: never pays");
    assert!(risks[0].p90 > risks[0].p30 && risks[0].p30 > 0.0);
    let plan = analysis::plan(&risks, &costs, Timestamp(now), 12, 480);
    assert_eq!(plan.months.len(), 12);
    assert_eq!(plan.overdue, 1);
    assert_eq!(plan.months[0].count, 1, "the overdue one is this month's");
    // Spares: one seal planned now, the other unlikely; the transducer's chance over a year.
    let mut stock = BTreeMap::new();
    stock.insert("mechanical_seal".to_owned(), 1u32);
    let spares = analysis::spares(&parts, &risks, &fits, &stock, Timestamp(now), 365);
    let seals = spares
        .iter()
        .find(|s| s.part_number == "mechanical_seal")
        .unwrap();
    assert_eq!((seals.installed, seals.planned), (2, 1));
    assert!(seals.demand >= 2 && seals.reorder, "{seals:?}");
    let tx = spares
        .iter()
        .find(|s| s.part_number == "pressure_transducer")
        .unwrap();
    assert!((tx.expected_failures - (1.0 - (-8760.0f64 / 20_000.0).exp())).abs() < 1e-9);
    assert_eq!((tx.demand, tx.stock, tx.reorder), (1, 0, true));
}

#[test]
fn supplier_mtbf_is_run_hours_over_failures() {
    let now = 1_800_000_000_000;
    let mut a = component("XM-0001", ComponentClass::Bearing, 100, now);
    a.vendor = "V".into();
    a.model = "M".into();
    a.push(Event {
        at: Timestamp(now - 50 * DAY),
        kind: EventKind::Failure,
        source: EventSource::Manual,
        serial: String::new(),
        by: "t".into(),
        order: None,
        note: String::new(),
    });
    let lines = analysis::suppliers(&[a], Timestamp(now));
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0].failures, 1);
    assert!((lines[0].run_hours - 100.0 * 24.0).abs() < 1e-6);
    assert!((lines[0].mtbf_hours.unwrap() - 2400.0).abs() < 1e-6);
}

struct Scratch(std::path::PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn records(name: &str) -> (Scratch, Arc<dyn Records>) {
    let d = std::env::temp_dir().join(format!("cistern-lifecycle-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    let s: Arc<dyn Records> = Arc::new(EmbeddedStore::open(&d).unwrap());
    (Scratch(d), s)
}

fn inventory() -> Inventory {
    toml::from_str(
        r#"
        [[zones]]
        id = "siming"
        name = "思明"
        [[rooms]]
        id = "XM-0001"
        name = "金山花园泵房"
        lat = 24.48
        lon = 118.09
        zone = "siming"
        pumps = []
        tanks = []
    "#,
    )
    .unwrap()
}

/// A room with one pump installed `years` before `now` (serial `serial`).
fn archive(now: Timestamp, years: i32, serial: &str) -> RoomArchive {
    let mut a = RoomArchive::from_spec(&inventory().rooms[0]);
    let mut pump = crate::business::assets::archive::model::Equipment::live(
        DeviceUnit::Pump(1),
        EquipmentKind::Pump,
        Nameplate::default(),
        String::new(),
    );
    pump.vendor = "Grundfos".into();
    pump.model = "CR 32-4".into();
    pump.serial = serial.into();
    pump.installed = Some(Date::of(now, 480).plus_days(-365 * years));
    a.equipment.push(pump);
    a
}

fn orders_config() -> crate::business::workorders::WorkOrdersConfig {
    use crate::business::workorders::teams::{Day, Member, Shift, Team};
    crate::business::workorders::WorkOrdersConfig {
        teams: vec![Team {
            id: "siming".into(),
            name: "思明维修班".into(),
            name_en: "Siming crew".into(),
            zones: vec![cistern_schemas::ZoneId::new("siming").unwrap()],
            lead: "lead".into(),
            manager: "boss".into(),
            members: vec![Member {
                user: "li".into(),
                skills: vec!["mechanical".into()],
            }],
            on_call: vec![Shift {
                days: Day::EVERY.to_vec(),
                from: "00:00".into(),
                to: "00:00".into(),
                users: vec!["li".into()],
            }],
        }],
        ..Default::default()
    }
}

#[tokio::test]
async fn the_service_follows_the_archive_and_completed_orders_once() {
    let (_s, rec) = records("sync");
    let now = Timestamp(1_800_000_000_000);
    let clock = Arc::new(ManualClock::new(now));
    let a = archive(now, 3, "SN-1");
    let svc = Lifecycle::start(
        LifecycleConfig::default(),
        rec.clone(),
        clock.clone(),
        480,
        false,
        std::slice::from_ref(&a),
    )
    .await
    .unwrap();
    let parts = svc.components(None, None, None);
    let classes: Vec<_> = parts.iter().map(|c| c.class).collect();
    assert_eq!(
        classes.len(),
        4,
        "pump, seal, bearing and motor: {classes:?}"
    );
    assert!(parts.iter().all(|c| c.vendor == "Grundfos"));
    svc.sync_room(&a, "alice").await.unwrap();
    let pump_id = ComponentId::new(
        &a.site.id,
        &EquipmentTag::from(DeviceUnit::Pump(1)),
        ComponentClass::Pump,
    );
    assert_eq!(
        svc.component(&pump_id).unwrap().events.len(),
        1,
        "idempotent"
    );
    // The pump replaced in the archive (a new serial on P1): a replacement, recorded once.
    clock.advance(std::time::Duration::from_secs(3600));
    let b = archive(now, 3, "SN-2");
    svc.sync_room(&b, "alice").await.unwrap();
    svc.sync_room(&b, "alice").await.unwrap();
    let pump = svc.component(&pump_id).unwrap();
    let kinds: Vec<_> = pump.events.iter().map(|e| e.kind).collect();
    assert_eq!(kinds, vec![EventKind::Install, EventKind::Replacement]);
    assert_eq!(pump.serial, "SN-2");
    assert_eq!(pump.installed_at, Timestamp(now.0 + HOUR));

    // A pump fault completed with a new seal: a failure of P1's seal, once.
    let mut order = crate::business::workorders::model::tests::order();
    order.kind = OrderType::Corrective;
    order.state = crate::business::workorders::model::OrderState::Completed;
    order.room = Some(a.site.id.clone());
    order.device = Some(cistern_schemas::DeviceId::new(
        a.site.id.clone(),
        DeviceUnit::Pump(1),
    ));
    order.parts = vec![
        PartUse {
            part: "mechanical_seal".into(),
            quantity: 1,
        },
        PartUse {
            part: "contactor".into(),
            quantity: 1,
        },
    ];
    assert_eq!(svc.from_order(&order).await.unwrap(), 1);
    assert_eq!(svc.from_order(&order).await.unwrap(), 0, "a redelivery");
    let seal_id = ComponentId::new(
        &a.site.id,
        &EquipmentTag::from(DeviceUnit::Pump(1)),
        ComponentClass::MechanicalSeal,
    );
    assert_eq!(svc.component(&seal_id).unwrap().failures(), 1);
    // An imported row, twice (a re-import): one event.
    let bearing = ComponentId::new(
        &a.site.id,
        &EquipmentTag::from(DeviceUnit::Pump(1)),
        ComponentClass::Bearing,
    );
    for _ in 0..2 {
        svc.record_imported(
            &bearing,
            EventKind::Failure,
            Timestamp(now.0 - 30 * DAY),
            String::new(),
            String::new(),
            "import",
        )
        .await
        .unwrap();
    }
    let b = svc.component(&bearing).unwrap();
    assert_eq!(b.failures(), 1);
    assert_eq!(b.events[1].source, EventSource::Import);
    // Stock, and all of it again after a restart.
    svc.set_stock("mechanical_seal", 3, "alice").await.unwrap();
    drop(svc);
    let again = Lifecycle::start(
        LifecycleConfig::default(),
        rec,
        clock.clone(),
        480,
        false,
        std::slice::from_ref(&a),
    )
    .await
    .unwrap();
    assert_eq!(again.component(&seal_id).unwrap().failures(), 1);
    assert_eq!(again.component(&pump_id).unwrap().events.len(), 2);
    assert_eq!(again.stock()[0].quantity, 3);
    let f = again.figures();
    assert!(f
        .spares
        .iter()
        .any(|s| s.part_number == "mechanical_seal" && s.stock == 3));
}

#[tokio::test]
async fn preventive_orders_are_raised_ahead_once_per_plan_in_simulated_time() {
    use crate::business::workorders::service::OrderMetrics;
    use crate::business::workorders::WorkOrders;
    let (_s, rec) = records("preventive");
    let now = Timestamp(1_800_000_000_000);
    let clock = Arc::new(ManualClock::new(now));
    let config = LifecycleConfig {
        duty: 1.0,
        lead_days: 14,
        ..LifecycleConfig::default()
    };
    // The seal's optimal age on its literature curve at these costs.
    let cost = config.costs.of(ComponentClass::MechanicalSeal);
    let (t_star, _) = crate::business::assets::weibull::optimal_age(
        &ComponentClass::MechanicalSeal.literature(),
        cost.planned,
        cost.failure,
    )
    .unwrap();
    // Installed so that the seal's planned date is 30 days away (the pump, bearing and motor
    // come later).
    let mut a = archive(now, 0, "SN-1");
    let installed = now.0 - (t_star * HOUR as f64) as i64 + 30 * DAY;
    a.equipment[0].installed = Some(Date::of(Timestamp(installed), 480));
    let orders = Arc::new(
        WorkOrders::start(
            &orders_config(),
            rec.clone(),
            &inventory(),
            clock.clone(),
            crate::auth::Security::default(),
            OrderMetrics::register(&prometheus::Registry::new()).unwrap(),
        )
        .await
        .unwrap(),
    );
    let svc = Lifecycle::start(
        config.clone(),
        rec.clone(),
        clock.clone(),
        480,
        false,
        &[a.clone()],
    )
    .await
    .unwrap();
    svc.attach_orders(orders.clone());
    assert_eq!(
        svc.raise_preventive().await.unwrap(),
        0,
        "30 days ahead: not yet"
    );
    assert!(orders.open_orders().await.unwrap().is_empty());
    // 17 days on: within the 14-day lead.
    clock.advance(std::time::Duration::from_secs(17 * 86_400));
    let off = Lifecycle::start(
        LifecycleConfig {
            preventive_orders: false,
            ..config.clone()
        },
        rec.clone(),
        clock.clone(),
        480,
        false,
        std::slice::from_ref(&a),
    )
    .await
    .unwrap();
    off.attach_orders(orders.clone());
    assert_eq!(off.raise_preventive().await.unwrap(), 0, "switched off");
    assert!(orders.open_orders().await.unwrap().is_empty());
    assert_eq!(svc.raise_preventive().await.unwrap(), 1);
    let open = orders.open_orders().await.unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].template.as_deref(), Some("preventive_replacement"));
    assert_eq!(open[0].kind, OrderType::Preventive);
    assert!(open[0].comments[0].text.contains("mechanical_seal"));
    // Not again: the next round, nor after a restart.
    clock.advance(std::time::Duration::from_secs(86_400));
    assert_eq!(svc.raise_preventive().await.unwrap(), 0);
    drop(svc);
    let again = Lifecycle::start(config, rec, clock.clone(), 480, false, &[a])
        .await
        .unwrap();
    again.attach_orders(orders.clone());
    assert_eq!(again.raise_preventive().await.unwrap(), 0);
    assert_eq!(orders.open_orders().await.unwrap().len(), 1);
}

/// The fleet-scale figures: fits, risks, the plan, spares and suppliers for a 2,100-room demo
/// fleet with its simulated history (budget < 5 s). Run explicitly:
/// `cargo test --release --lib lifecycle::tests::fleet_figures_time -- --ignored --nocapture`.
#[cfg(feature = "lab")]
#[test]
#[ignore]
fn fleet_figures_time() {
    let fleet = crate::lab::sim::fleet::generate_fleet(2_100, 1);
    let now = Timestamp(1_800_000_000_000);
    let config = LifecycleConfig::default();
    let components = super::demo::fleet(&fleet, now, 0.5);
    let lives: usize = components.iter().map(|c| c.events.len()).sum();
    let started = std::time::Instant::now();
    let f = super::service::compute(&components, &BTreeMap::new(), &config, now, 480);
    let took = started.elapsed();
    println!(
        "fleet figures: {} rooms, {} components, {} events: {:.3} s (fits {} classes + {} models, {} risks, {} spare lines, {} supplier lines)",
        fleet.rooms.len(),
        components.len(),
        lives,
        took.as_secs_f64(),
        f.fits.classes.len(),
        f.fits.models.len(),
        f.risks.len(),
        f.spares.len(),
        f.suppliers.len()
    );
    assert_eq!(f.risks.len(), components.len());
}

#[tokio::test]
async fn orders_and_their_alarms_are_counted_by_the_pumps_vendor() {
    use crate::business::workorders::service::{AlarmOrder, OrderMetrics};
    use crate::business::workorders::WorkOrders;
    let (_s, rec) = records("vendor-orders");
    let now = Timestamp(1_800_000_000_000);
    let clock = Arc::new(ManualClock::new(now));
    let a = archive(now, 3, "SN-1");
    let orders = WorkOrders::start(
        &orders_config(),
        rec.clone(),
        &inventory(),
        clock.clone(),
        crate::auth::Security::default(),
        OrderMetrics::register(&prometheus::Registry::new()).unwrap(),
    )
    .await
    .unwrap();
    let svc = Lifecycle::start(
        LifecycleConfig::default(),
        rec,
        clock,
        480,
        false,
        std::slice::from_ref(&a),
    )
    .await
    .unwrap();
    assert!(svc.order_statistics(&orders, 365).await.unwrap().is_empty());
    orders
        .from_alarm(&AlarmOrder {
            alarm: "XM-0001/pump_fault@P1".into(),
            room: a.site.id.clone(),
            device: Some(cistern_schemas::DeviceId::new(
                a.site.id.clone(),
                DeviceUnit::Pump(1),
            )),
            rule: "pump_fault".into(),
            template: "pump_fault".into(),
            severity: cistern_rules::Severity::P2,
            raised_at: now,
            message: "Pump P1 fault".into(),
            message_zh: "水泵 P1 故障".into(),
        })
        .await
        .unwrap();
    let lines = svc.order_statistics(&orders, 365).await.unwrap();
    assert_eq!(lines.len(), 1, "{lines:?}");
    let l = &lines[0];
    assert_eq!(
        (
            l.vendor.as_str(),
            l.model.as_str(),
            l.orders,
            l.corrective,
            l.alarms
        ),
        ("Grundfos", "CR 32-4", 1, 1, 1)
    );
}

#[tokio::test]
async fn a_counter_sets_the_duty_and_the_demo_history_is_drawn_again_at_it() {
    let (_s, rec) = records("counter");
    let now = Timestamp(1_800_000_000_000);
    let clock = Arc::new(ManualClock::new(now));
    let a = RoomArchive::from_spec(&inventory().rooms[0]);
    let mut a = a;
    a.equipment
        .push(crate::business::assets::archive::model::Equipment::live(
            DeviceUnit::Pump(1),
            EquipmentKind::Pump,
            Nameplate::default(),
            String::new(),
        ));
    let svc = Lifecycle::start(
        LifecycleConfig::default(),
        rec,
        clock,
        480,
        true,
        &[a.clone()],
    )
    .await
    .unwrap();
    let seal = ComponentId::new(
        &a.site.id,
        &EquipmentTag::from(DeviceUnit::Pump(1)),
        ComponentClass::MechanicalSeal,
    );
    let before = svc.component(&seal).unwrap();
    assert_eq!(before.hours_source, HoursSource::Calendar);
    assert!(before
        .events
        .iter()
        .all(|e| e.source == EventSource::Simulated));
    assert!(!before.vendor.is_empty(), "the demo names a vendor");
    let start = before.events[0].at;
    let calendar_hours = (now.0 - start.0) as f64 / HOUR as f64;
    // A counter of a fifth of the calendar: duty 0.2, the history drawn again from the same
    // start.
    svc.set_run_hours(
        &a.site.id,
        &[(
            EquipmentTag::from(DeviceUnit::Pump(1)),
            0.2 * calendar_hours,
        )],
    );
    let after = svc.component(&seal).unwrap();
    assert_eq!(after.hours_source, HoursSource::Counter);
    assert!((after.duty - 0.2).abs() < 1e-9);
    assert_eq!(after.events[0].at, start);
    let age = after.age_hours(now);
    assert!(age <= 0.2 * calendar_hours + 1e-6, "{age}");
    // Another room's counter changes nothing here; a transducer would keep its calendar.
    svc.set_run_hours(&RoomId::new("XM-0009").unwrap(), &[]);
    assert_eq!(svc.component(&seal).unwrap().duty, after.duty);
}

#[tokio::test]
async fn a_part_without_an_install_date_ages_from_when_it_was_first_seen_across_restarts() {
    let (_s, rec) = records("first-seen");
    let now = Timestamp(1_800_000_000_000);
    let clock = Arc::new(ManualClock::new(now));
    let mut a = RoomArchive::from_spec(&inventory().rooms[0]);
    a.equipment
        .push(crate::business::assets::archive::model::Equipment::live(
            DeviceUnit::Pump(1),
            EquipmentKind::Pump,
            Nameplate::default(),
            String::new(),
        ));
    let start = || {
        Lifecycle::start(
            LifecycleConfig::default(),
            rec.clone(),
            clock.clone(),
            480,
            false,
            std::slice::from_ref(&a),
        )
    };
    let seal = ComponentId::new(
        &a.site.id,
        &EquipmentTag::from(DeviceUnit::Pump(1)),
        ComponentClass::MechanicalSeal,
    );
    let svc = start().await.unwrap();
    svc.remember_first_seen().await.unwrap();
    let c = svc.component(&seal).unwrap();
    assert_eq!(c.installed_at, now);
    assert_eq!(c.events.len(), 1);
    drop(svc);
    clock.advance(std::time::Duration::from_secs(10 * 86_400));
    let svc = start().await.unwrap();
    svc.remember_first_seen().await.unwrap();
    let c = svc.component(&seal).unwrap();
    assert_eq!(c.installed_at, now, "the first sighting, not this start");
    assert_eq!(c.events.len(), 1);
    assert!((c.age_hours(Timestamp(now.0 + 10 * DAY)) - 10.0 * 24.0 * 0.5).abs() < 1e-9);
    svc.sync_room(&a, "archive").await.unwrap();
    assert_eq!(svc.component(&seal).unwrap().events.len(), 1, "idempotent");
    // The pump's counter then says how old its undated parts are.
    svc.set_run_hours(
        &a.site.id,
        &[(EquipmentTag::from(DeviceUnit::Pump(1)), 12_000.0)],
    );
    let c = svc.component(&seal).unwrap();
    assert_eq!(c.hours_source, HoursSource::Counter);
    assert!((c.age_hours(Timestamp(now.0 + 10 * DAY)) - 12_000.0).abs() < 1e-3);
}

/// A 2,100-room site's first start (every component first seen: one `component_seen` record
/// written per room) and its next (read back), on the embedded store. Run explicitly:
/// `cargo test --lib lifecycle::tests::site_start_time -- --ignored --nocapture`.
#[cfg(feature = "lab")]
#[tokio::test]
#[ignore]
async fn site_start_time() {
    let fleet = crate::lab::sim::fleet::generate_fleet(2_100, 1);
    let archives: Vec<RoomArchive> = fleet.rooms.iter().map(RoomArchive::from_spec).collect();
    let (_s, rec) = records("site-start");
    let clock = Arc::new(ManualClock::new(Timestamp(1_800_000_000_000)));
    for run in ["first", "second"] {
        let started = std::time::Instant::now();
        let svc = Lifecycle::start(
            LifecycleConfig::default(),
            rec.clone(),
            clock.clone(),
            480,
            false,
            &archives,
        )
        .await
        .unwrap();
        let ready = started.elapsed().as_secs_f64();
        svc.remember_first_seen().await.unwrap();
        println!(
            "{run} start: {} rooms, {} components: ready in {ready:.2} s, first sightings kept after {:.2} s",
            archives.len(),
            svc.components(None, None, None).len(),
            started.elapsed().as_secs_f64()
        );
    }
}
