//! Profiles: the validated register map of one controller model (read from
//! `schemas/profiles/*.toml`, format in `schemas/profiles/README.md`), the set of them a node
//! loads at start-up, and the layout of a concrete room (the profile's device templates
//! repeated per pump, tank and camera) into [`Mapping`]s and a [`ReadPlan`]. What makes a
//! file a valid profile is `validate`'s business.

use super::codec::Encoding;
use super::reads::{plan_reads, Mapping, ReadLimits, ReadPlan};
use super::validate;
use super::RegisterKind;
use crate::catalog::DeviceKind;
use crate::ids::DeviceUnit;
use crate::inventory::RoomSpec;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// One point of a profile, as declared (for a device template: at the first unit's address).
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub point: &'static str,
    /// Index in the device kind's catalog.
    pub index: u16,
    pub kind: RegisterKind,
    pub address: u16,
    pub encoding: Encoding,
    /// Set when the platform may write the point (a set-point): the accepted range, in the
    /// catalog unit. Only holding-register values can be writable.
    pub write_range: Option<(f64, f64)>,
}

/// Per-table distance between consecutive units of a device template.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stride {
    #[serde(default)]
    pub coil: u16,
    #[serde(default)]
    pub discrete: u16,
    #[serde(default)]
    pub holding: u16,
    #[serde(default)]
    pub input: u16,
}

impl Stride {
    pub fn of(&self, kind: RegisterKind) -> u16 {
        match kind {
            RegisterKind::Coil => self.coil,
            RegisterKind::Discrete => self.discrete,
            RegisterKind::Holding => self.holding,
            RegisterKind::Input => self.input,
        }
    }
}

/// The registers of one kind of equipment, repeated per unit: unit n (1-based) has each entry
/// at `address + (n - 1) × stride` of the entry's table.
#[derive(Clone, Debug, PartialEq)]
pub struct DeviceTemplate {
    /// How many units the controller supports.
    pub count: u8,
    pub stride: Stride,
    pub entries: Vec<Entry>,
    /// Tanks only: where unit n keeps its fill plan
    /// ([`crate::fill_plan`], `PLAN_WORDS` holding registers at `address + (n - 1) × stride`).
    pub plan: Option<PlanBlock>,
}

/// The holding registers of the first tank's fill plan and the distance between tanks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlanBlock {
    pub address: u16,
    pub stride: u16,
}

/// How many pumps, tanks and cameras a room has: what a profile is laid out for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct RoomShape {
    pub pumps: u8,
    pub tanks: u8,
    pub cameras: u8,
}

impl RoomShape {
    pub fn of(room: &RoomSpec) -> Self {
        let n = |len: usize| u8::try_from(len).unwrap_or(u8::MAX);
        Self {
            pumps: n(room.pumps.len()),
            tanks: n(room.tanks.len()),
            cameras: n(room.cameras.len()),
        }
    }

    /// Every device of such a room, the room itself first (the order of [`RoomSpec::units`]).
    pub fn units(&self) -> Vec<DeviceUnit> {
        let mut units = vec![DeviceUnit::Room];
        units.extend((1..=self.pumps).map(DeviceUnit::Pump));
        units.extend((1..=self.tanks).map(DeviceUnit::Tank));
        units.extend((1..=self.cameras).map(DeviceUnit::Camera));
        units
    }

    fn count(&self, kind: DeviceKind) -> u8 {
        match kind {
            DeviceKind::Room => 1,
            DeviceKind::Pump => self.pumps,
            DeviceKind::Tank => self.tanks,
            DeviceKind::Camera => self.cameras,
        }
    }
}

fn unit_of(kind: DeviceKind, n: u8) -> DeviceUnit {
    match kind {
        DeviceKind::Room => DeviceUnit::Room,
        DeviceKind::Pump => DeviceUnit::Pump(n),
        DeviceKind::Tank => DeviceUnit::Tank(n),
        DeviceKind::Camera => DeviceUnit::Camera(n),
    }
}

/// A validated register map of one controller model.
#[derive(Clone, Debug, PartialEq)]
pub struct Profile {
    pub name: String,
    pub vendor: String,
    pub model: String,
    pub description: String,
    pub limits: ReadLimits,
    /// The room's own instruments.
    pub room: Vec<Entry>,
    pub pump: Option<DeviceTemplate>,
    pub tank: Option<DeviceTemplate>,
    pub camera: Option<DeviceTemplate>,
}

/// Why a profile was refused, or does not fit a room.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("cannot read Modbus profile {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot list Modbus profiles in {path}: {source}")]
    ReadDir {
        path: String,
        source: std::io::Error,
    },
    #[error("Modbus profile {profile} is not a valid register map: {source}")]
    Parse {
        profile: String,
        source: Box<toml::de::Error>,
    },
    #[error(
        "Modbus profile file {path} is named {name:?} inside: the name must match the file name"
    )]
    NameMismatch { path: String, name: String },
    #[error("Modbus profile {profile}: {what}")]
    Invalid { profile: String, what: String },
    #[error("Modbus profile {profile}: {entry}: {what}")]
    Entry {
        profile: String,
        entry: String,
        what: String,
    },
    #[error(
        "Modbus profile {profile}: {kind} {address} is mapped twice, by {first} and by {second}"
    )]
    Overlap {
        profile: String,
        kind: RegisterKind,
        address: u32,
        first: String,
        second: String,
    },
    #[error(
        "Modbus profile {profile}: one {device} spans {span} {kind}s ({first}..={last}), more \
         than one read of {max}: a device's values of one table must come from one read"
    )]
    BlockTooLong {
        profile: String,
        device: DeviceKind,
        kind: RegisterKind,
        first: u16,
        last: u32,
        span: u32,
        max: u16,
    },
    #[error("Modbus profile {profile} maps at most {supported} {kind}(s), the room has {wanted}")]
    TooManyUnits {
        profile: String,
        kind: DeviceKind,
        wanted: u8,
        supported: u8,
    },
    #[error("no Modbus profile named {name:?} (known: {known})")]
    Unknown { name: String, known: String },
    #[error("Modbus profile {name} is defined twice")]
    Duplicate { name: String },
}

impl Profile {
    /// Reads and validates a profile file; its `name` must match the file stem.
    pub fn load(path: &Path) -> Result<Self, ProfileError> {
        let text = std::fs::read_to_string(path).map_err(|source| ProfileError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        let profile = Self::from_toml(&text, stem)?;
        if profile.name != stem {
            return Err(ProfileError::NameMismatch {
                path: path.display().to_string(),
                name: profile.name,
            });
        }
        Ok(profile)
    }

    /// Parses and validates profile TOML; `origin` names it in errors until its own name is
    /// known.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self, ProfileError> {
        validate::parse(text, origin)
    }

    /// The first holding register of tank `n`'s (1-based) fill plan, when the controller
    /// takes plans.
    pub fn plan_address(&self, n: u8) -> Option<u16> {
        let t = self.tank.as_ref()?;
        let plan = t.plan?;
        if n == 0 || n > t.count {
            return None;
        }
        let address = u32::from(plan.address) + u32::from(n - 1) * u32::from(plan.stride);
        u16::try_from(address).ok()
    }

    /// The template of a kind of equipment, if the controller has any.
    pub fn template(&self, kind: DeviceKind) -> Option<&DeviceTemplate> {
        match kind {
            DeviceKind::Room => None,
            DeviceKind::Pump => self.pump.as_ref(),
            DeviceKind::Tank => self.tank.as_ref(),
            DeviceKind::Camera => self.camera.as_ref(),
        }
    }

    /// How many units of `kind` the controller supports.
    pub fn supported(&self, kind: DeviceKind) -> u8 {
        match kind {
            DeviceKind::Room => 1,
            other => self.template(other).map_or(0, |t| t.count),
        }
    }

    /// Every point of a room of this shape at its concrete address.
    pub fn mappings(&self, shape: RoomShape) -> Result<Vec<Mapping>, ProfileError> {
        let mut out: Vec<Mapping> = self
            .room
            .iter()
            .map(|e| Mapping {
                unit: DeviceUnit::Room,
                point: e.point,
                index: e.index,
                kind: e.kind,
                address: e.address,
                encoding: e.encoding,
                write_range: e.write_range,
            })
            .collect();
        for kind in [DeviceKind::Pump, DeviceKind::Tank, DeviceKind::Camera] {
            let wanted = shape.count(kind);
            if wanted == 0 {
                continue;
            }
            let supported = self.supported(kind);
            let Some(template) = self.template(kind).filter(|_| wanted <= supported) else {
                return Err(ProfileError::TooManyUnits {
                    profile: self.name.clone(),
                    kind,
                    wanted,
                    supported,
                });
            };
            for n in 1..=wanted {
                for e in &template.entries {
                    let address = u32::from(e.address)
                        + u32::from(n - 1) * u32::from(template.stride.of(e.kind));
                    let unit = unit_of(kind, n);
                    // Validation laid out every supported unit, so this only trips on a
                    // profile built by hand around `validate`.
                    let address = u16::try_from(address)
                        .ok()
                        .filter(|a| u32::from(*a) + u32::from(e.encoding.width()) <= 0x1_0000)
                        .ok_or_else(|| ProfileError::Entry {
                            profile: self.name.clone(),
                            entry: format!("{unit}.{}", e.point),
                            what: format!("{} {address} is beyond the address space", e.kind),
                        })?;
                    out.push(Mapping {
                        unit,
                        point: e.point,
                        index: e.index,
                        kind: e.kind,
                        address,
                        encoding: e.encoding,
                        write_range: e.write_range,
                    });
                }
            }
        }
        Ok(out)
    }

    /// The reads covering a room of this shape, within this device's limits.
    pub fn plan(&self, shape: RoomShape) -> Result<ReadPlan, ProfileError> {
        Ok(plan_reads(self.mappings(shape)?, &self.limits))
    }
}

/// Every profile of a directory, by name.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProfileSet {
    profiles: BTreeMap<String, Arc<Profile>>,
}

impl ProfileSet {
    /// Loads every `*.toml` of `dir` (not recursing); one bad file refuses the whole set, so a
    /// typo stops start-up instead of silently unmapping rooms.
    pub fn load_dir(dir: &Path) -> Result<Self, ProfileError> {
        let read_dir_err = |source| ProfileError::ReadDir {
            path: dir.display().to_string(),
            source,
        };
        let mut paths = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(read_dir_err)? {
            let path = entry.map_err(read_dir_err)?.path();
            if path.extension().is_some_and(|e| e == "toml") && path.is_file() {
                paths.push(path);
            }
        }
        paths.sort();
        let mut set = Self::default();
        for path in paths {
            set.insert(Profile::load(&path)?)?;
        }
        Ok(set)
    }

    /// Adds a profile; names are unique.
    pub fn insert(&mut self, profile: Profile) -> Result<(), ProfileError> {
        if self.profiles.contains_key(&profile.name) {
            return Err(ProfileError::Duplicate { name: profile.name });
        }
        self.profiles
            .insert(profile.name.clone(), Arc::new(profile));
        Ok(())
    }

    /// The profile called `name`.
    pub fn get(&self, name: &str) -> Result<&Arc<Profile>, ProfileError> {
        self.profiles
            .get(name)
            .ok_or_else(|| ProfileError::Unknown {
                name: name.chars().take(64).collect(),
                known: if self.profiles.is_empty() {
                    "none".to_owned()
                } else {
                    self.names().collect::<Vec<_>>().join(", ")
                },
            })
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.profiles.keys().map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.profiles.len()
    }

    pub fn is_empty(&self) -> bool {
        self.profiles.is_empty()
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use std::path::PathBuf;

    fn profiles_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("profiles")
    }

    pub(crate) const MINIMAL: &str = r#"
        name = "test-ctl"
        vendor = "Test"
        model = "T1"
        room = [
          { point = "outlet_pressure", kind = "holding", address = 0, type = "f32", unit = "MPa" },
          { point = "mains", kind = "discrete", address = 0 },
        ]
        [pump]
        count = 2
        stride = { holding = 10 }
        points = [
          { point = "frequency", kind = "holding", address = 100, type = "u16", scale = 0.01 },
          { point = "running", kind = "holding", address = 101, bit = 0 },
          { point = "fault", kind = "holding", address = 101, bit = 1 },
        ]
    "#;

    pub(crate) fn with(replace: &str, by: &str) -> Result<Profile, ProfileError> {
        assert!(MINIMAL.contains(replace), "{replace}");
        Profile::from_toml(&MINIMAL.replace(replace, by), "test-ctl")
    }

    #[test]
    fn shipped_profiles_load_and_cover_their_rooms() {
        let set = ProfileSet::load_dir(&profiles_dir()).unwrap();
        assert!(set.len() >= 2, "{:?}", set.names().collect::<Vec<_>>());
        for name in set.names() {
            let p = set.get(name).unwrap();
            let shape = RoomShape {
                pumps: p.supported(DeviceKind::Pump),
                tanks: p.supported(DeviceKind::Tank),
                cameras: p.supported(DeviceKind::Camera),
            };
            let plan = p.plan(shape).unwrap();
            assert_eq!(plan.point_count(), p.mappings(shape).unwrap().len());
            for b in &plan.blocks {
                assert!(b.count <= p.limits.max_per_read(b.kind), "{name}: {b}");
            }
        }
        let hydrotek = set.get("hydrotek-hc300").unwrap();
        let aquaflow = set.get("aquaflow-ps2").unwrap();
        // Both maps cover every catalog point of every device they support.
        for p in [hydrotek, aquaflow] {
            assert_eq!(p.room.len(), DeviceKind::Room.points().len(), "{}", p.name);
            for kind in [DeviceKind::Pump, DeviceKind::Tank, DeviceKind::Camera] {
                let t = p.template(kind).unwrap();
                assert_eq!(t.entries.len(), kind.points().len(), "{} {kind}", p.name);
            }
        }
    }

    #[test]
    fn minimal_profile_lays_out_units_by_stride() {
        let p = Profile::from_toml(MINIMAL, "test-ctl").unwrap();
        let shape = RoomShape {
            pumps: 2,
            tanks: 0,
            cameras: 0,
        };
        let m = p.mappings(shape).unwrap();
        let at = |unit, point| {
            m.iter()
                .find(|x| x.unit == unit && x.point == point)
                .unwrap()
                .address
        };
        assert_eq!(at(DeviceUnit::Pump(1), "frequency"), 100);
        assert_eq!(at(DeviceUnit::Pump(2), "frequency"), 110);
        assert_eq!(at(DeviceUnit::Pump(2), "fault"), 111);
        let err = p
            .mappings(RoomShape { pumps: 3, ..shape })
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("test-ctl") && err.contains("at most 2 pump") && err.contains("has 3"),
            "{err}"
        );
        let err = p
            .mappings(RoomShape { tanks: 1, ..shape })
            .unwrap_err()
            .to_string();
        assert!(err.contains("at most 0 tank"), "{err}");
    }

    #[test]
    fn unknown_profiles_list_the_known_ones() {
        let mut set = ProfileSet::default();
        set.insert(Profile::from_toml(MINIMAL, "x").unwrap())
            .unwrap();
        let err = set.get("nope").unwrap_err().to_string();
        assert_eq!(err, "no Modbus profile named \"nope\" (known: test-ctl)");
        assert!(set
            .insert(Profile::from_toml(MINIMAL, "x").unwrap())
            .is_err());
    }

    #[test]
    fn load_checks_the_file_name_and_reports_missing_dirs() {
        let dir = std::env::temp_dir().join(format!("cistern-profiles-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("other.toml"), MINIMAL).unwrap();
        let err = ProfileSet::load_dir(&dir).unwrap_err().to_string();
        assert!(
            err.contains("other.toml") && err.contains("\"test-ctl\""),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
        let err = ProfileSet::load_dir(&dir).unwrap_err().to_string();
        assert!(err.contains("cannot list Modbus profiles"), "{err}");
    }
}
