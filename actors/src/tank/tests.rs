use super::state::*;
use crate::device::table::good_record;
use crate::device::PointTable;
use cistern_schemas::inventory::TankSpec;
use cistern_schemas::{DeviceKind, Timestamp};

fn spec() -> TankSpec {
    TankSpec {
        area_m2: 20.0,
        height_m: 3.5,
        overflow_m: 3.2,
        hard_min_m: 0.4,
        fire_reserve_m: 1.0,
        refill_on_m: 2.4,
        refill_off_m: 3.0,
        inlet_capacity_m3h: 40.0,
    }
}

#[test]
fn volume_and_autonomy_exclude_the_fire_reserve() {
    let mut t = PointTable::new(DeviceKind::Tank.points().to_vec().into());
    t.apply(
        &[good_record(Timestamp(0), &[(0, 2.6), (1, 1.0)])],
        Timestamp(0),
        3,
        std::time::Duration::ZERO,
    );
    let d = derive_tank(&spec(), &t, Some(8.0));
    assert!((d.volume_m3.unwrap() - 52.0).abs() < 1e-9);
    // usable = 20 m² × (2.6 − max(0.4, 1.0)) = 32 m³; at 8 m³/h that is 4 h
    assert!((d.usable_m3.unwrap() - 32.0).abs() < 1e-9);
    assert!((d.autonomy_h.unwrap() - 4.0).abs() < 1e-9);
    assert!((d.level_pct.unwrap() - 81.25).abs() < 1e-9);
    assert_eq!(d.inlet_open, Some(true));
}

#[test]
fn no_draw_means_no_autonomy_figure() {
    let mut t = PointTable::new(DeviceKind::Tank.points().to_vec().into());
    t.apply(
        &[good_record(Timestamp(0), &[(0, 2.6)])],
        Timestamp(0),
        3,
        std::time::Duration::ZERO,
    );
    assert_eq!(derive_tank(&spec(), &t, Some(0.0)).autonomy_h, None);
    assert_eq!(derive_tank(&spec(), &t, None).autonomy_h, None);
}
