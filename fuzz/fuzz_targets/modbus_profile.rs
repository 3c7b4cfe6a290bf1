//! The Modbus profile parser (a controller model's register map, `schemas/profiles/*.toml`),
//! as a node runs it at start-up on every file of its profile directory
//! (`ProfileSet::load_dir` → `Profile::from_toml`), then the layout of rooms of several shapes
//! by an accepted profile, as the poller does for each room.
//!
//! Beyond "no panic" it checks what validation promises: a profile that passes can be laid
//! out for any room it supports, and every planned read stays within the profile's limits,
//! covers its points and asks for at least one register.
#![no_main]

use cistern_schemas::catalog::DeviceKind;
use cistern_schemas::modbus::{Profile, RoomShape};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(profile) = Profile::from_toml(text, "fuzz.toml") else {
        return;
    };
    let pumps = profile.supported(DeviceKind::Pump).min(8);
    let tanks = profile.supported(DeviceKind::Tank).min(4);
    let cameras = profile.supported(DeviceKind::Camera).min(4);
    for shape in [
        RoomShape::default(),
        RoomShape {
            pumps,
            tanks,
            cameras,
        },
        RoomShape {
            pumps: pumps.min(1),
            tanks: tanks.min(1),
            cameras: 0,
        },
    ] {
        let plan = profile.plan(shape).unwrap_or_else(|e| {
            panic!("a valid profile cannot lay out a supported {shape:?}: {e}")
        });
        for block in &plan.blocks {
            assert!(block.count >= 1, "an empty read");
            assert!(
                block.count <= profile.limits.max_per_read(block.kind),
                "a read over the profile's limit"
            );
            for m in &block.mappings {
                assert_eq!(m.kind, block.kind, "a point in another table's read");
                let end = u32::from(m.address) + u32::from(m.width());
                assert!(m.address >= block.start, "a point before its read");
                assert!(
                    end <= u32::from(block.start) + u32::from(block.count),
                    "a point past its read"
                );
            }
        }
    }
});
