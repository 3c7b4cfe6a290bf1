//! The site inventory parser (`ops/inventory.example.toml` documents the format), as a node
//! runs it at start-up (`Inventory::load` → `from_toml`, which validates), then what start-up
//! asks of every accepted room: its devices, their point specs, its Modbus source and the
//! layout of a Modbus room by the shipped profiles.
//!
//! Beyond "no panic" it checks that an accepted inventory round-trips: serialised back to
//! TOML it is accepted again and serialises to the same text (compared as text, so that a NaN
//! that TOML allows compares equal to itself).
#![no_main]

use cistern_schemas::inventory::Inventory;
use cistern_schemas::modbus::{ProfileSet, RoomShape};
use libfuzzer_sys::fuzz_target;
use std::path::Path;
use std::sync::OnceLock;

fn profiles() -> &'static ProfileSet {
    static SET: OnceLock<ProfileSet> = OnceLock::new();
    SET.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas/profiles");
        ProfileSet::load_dir(&dir).expect("the shipped profiles load")
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(inventory) = Inventory::from_toml(text, "fuzz.toml") else {
        return;
    };
    for room in &inventory.rooms {
        assert!(inventory.room(&room.id).is_some());
        for unit in room.units() {
            assert!(room.has_unit(unit), "a unit the room does not have");
            let _ = room.point_specs(unit);
        }
        for tank in &room.tanks {
            for level in [0.0, tank.height_m / 2.0, tank.height_m, -1.0, f64::NAN] {
                let _ = (
                    tank.volume_m3(level),
                    tank.usable_m3(level),
                    tank.percent(level),
                );
            }
        }
        if let Some(source) = room.modbus() {
            if let Ok(profile) = profiles().get(source.profile) {
                let _ = profile.plan(RoomShape::of(room));
            }
        }
    }
    let again = toml::to_string(&inventory).expect("an accepted inventory serialises");
    let back = Inventory::from_toml(&again, "round-trip.toml").unwrap_or_else(|e| {
        panic!("an accepted inventory, written back, is refused: {e}\n{again}")
    });
    let twice = toml::to_string(&back).expect("serialises");
    assert_eq!(again, twice, "the inventory changed in a round trip");
});
