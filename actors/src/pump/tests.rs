use super::state::*;
use crate::device::table::good_record;
use crate::device::PointTable;
use cistern_schemas::{DeviceKind, Timestamp};

fn idx(name: &str) -> usize {
    DeviceKind::Pump.point_index(name).unwrap()
}

fn table_with(values: &[(&str, f64)]) -> PointTable {
    let mut t = PointTable::new(DeviceKind::Pump.points().to_vec().into());
    let vals: Vec<_> = values.iter().map(|(n, v)| (idx(n), *v)).collect();
    t.apply(
        &[good_record(Timestamp(1_000), &vals)],
        Timestamp(1_000),
        3,
        std::time::Duration::ZERO,
    );
    t
}

#[test]
fn a_fault_outranks_the_run_feedback() {
    let d = derive_pump(&table_with(&[
        ("fault", 1.0),
        ("running", 1.0),
        ("duty", 1.0),
    ]));
    assert_eq!(d.status, PumpStatus::Tripped);
    assert_eq!(d.role, Some(PumpRole::Duty));
}

#[test]
fn running_and_stopped_follow_the_feedback() {
    let d = derive_pump(&table_with(&[
        ("fault", 0.0),
        ("running", 1.0),
        ("frequency", 40.0),
    ]));
    assert_eq!(d.status, PumpStatus::Running);
    assert_eq!(d.speed_ratio, Some(0.8));
    let d = derive_pump(&table_with(&[
        ("fault", 0.0),
        ("running", 0.0),
        ("duty", 0.0),
    ]));
    assert_eq!(
        (d.status, d.role),
        (PumpStatus::Stopped, Some(PumpRole::Standby))
    );
}

#[test]
fn missing_or_stale_feedback_is_unknown() {
    assert_eq!(
        derive_pump(&table_with(&[("running", 1.0)])).status,
        PumpStatus::Unknown
    );
    let mut t = table_with(&[("fault", 0.0), ("running", 1.0)]);
    t.sweep(Timestamp(60_000), 3);
    assert_eq!(derive_pump(&t).status, PumpStatus::Unknown);
}
