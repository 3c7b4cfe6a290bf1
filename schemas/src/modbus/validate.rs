//! Profile validation: the TOML file format of a profile and every check that turns a file
//! into a [`Profile`] (names, read limits, catalog points and units, encodings, write ranges,
//! per-device read spans, strides, overlaps between points and with the fill-plan blocks).
//! A profile that passes can be laid out for any room it supports without further checks.

use super::codec::{DataType, Encoding, ValueFormat, WordOrder};
use super::profile::{DeviceTemplate, Entry, PlanBlock, Profile, ProfileError, RoomShape, Stride};
use super::reads::{Mapping, ReadLimits};
use super::{RegisterKind, MAX_BITS_PER_READ, MAX_REGISTERS_PER_READ};
use crate::catalog::{DeviceKind, PointKind};
use crate::fill_plan::PLAN_WORDS;
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileFile {
    name: String,
    vendor: String,
    model: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    word_order: WordOrder,
    #[serde(default = "default_max_registers")]
    max_registers_per_read: u16,
    #[serde(default = "default_max_bits")]
    max_bits_per_read: u16,
    #[serde(default = "default_gap_registers")]
    max_gap_registers: u16,
    #[serde(default = "default_gap_bits")]
    max_gap_bits: u16,
    #[serde(default)]
    room: Vec<EntryFile>,
    pump: Option<DeviceFile>,
    tank: Option<DeviceFile>,
    camera: Option<DeviceFile>,
}

fn default_max_registers() -> u16 {
    ReadLimits::default().max_registers_per_read
}
fn default_max_bits() -> u16 {
    ReadLimits::default().max_bits_per_read
}
fn default_gap_registers() -> u16 {
    ReadLimits::default().max_gap_registers
}
fn default_gap_bits() -> u16 {
    ReadLimits::default().max_gap_bits
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeviceFile {
    count: u8,
    #[serde(default)]
    stride: Stride,
    points: Vec<EntryFile>,
    /// Tanks only: first holding register of the fill-plan block.
    plan_address: Option<u16>,
    /// Tanks only: registers between two tanks' plan blocks (needed when count > 1).
    plan_stride: Option<u16>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryFile {
    point: String,
    kind: RegisterKind,
    address: u16,
    #[serde(rename = "type")]
    dtype: Option<DataType>,
    order: Option<WordOrder>,
    scale: Option<f64>,
    offset: Option<f64>,
    unit: Option<String>,
    bit: Option<u8>,
    /// `[min, max]`: the platform may write the point within this range (a set-point).
    write_range: Option<[f64; 2]>,
}

/// Parses and validates profile TOML; `origin` names it in errors until its own name is
/// known.
pub(super) fn parse(text: &str, origin: &str) -> Result<Profile, ProfileError> {
    let file: ProfileFile = toml::from_str(text).map_err(|source| ProfileError::Parse {
        profile: origin.to_owned(),
        source: Box::new(source),
    })?;
    validate(file, origin)
}

fn validate(file: ProfileFile, origin: &str) -> Result<Profile, ProfileError> {
    let name_ok = !file.name.is_empty()
        && file.name.len() <= 64
        && file
            .name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !name_ok {
        return Err(ProfileError::Invalid {
            profile: origin.to_owned(),
            what: format!(
                "name {:?} must be 1-64 letters, digits, '-' or '_'",
                file.name.chars().take(64).collect::<String>()
            ),
        });
    }
    let profile = file.name.clone();
    let invalid = |what: String| ProfileError::Invalid {
        profile: profile.clone(),
        what,
    };
    if !(2..=MAX_REGISTERS_PER_READ).contains(&file.max_registers_per_read) {
        return Err(invalid(format!(
            "max_registers_per_read = {}: a read covers 2..={MAX_REGISTERS_PER_READ} registers",
            file.max_registers_per_read
        )));
    }
    if !(1..=MAX_BITS_PER_READ).contains(&file.max_bits_per_read) {
        return Err(invalid(format!(
            "max_bits_per_read = {}: a read covers 1..={MAX_BITS_PER_READ} bits",
            file.max_bits_per_read
        )));
    }
    let limits = ReadLimits {
        max_registers_per_read: file.max_registers_per_read,
        max_bits_per_read: file.max_bits_per_read,
        max_gap_registers: file.max_gap_registers,
        max_gap_bits: file.max_gap_bits,
    };
    let order = file.word_order;
    let room = entries(&profile, DeviceKind::Room, &file.room, order)?;
    let mut templates = BTreeMap::new();
    for (kind, dev) in [
        (DeviceKind::Pump, file.pump),
        (DeviceKind::Tank, file.tank),
        (DeviceKind::Camera, file.camera),
    ] {
        let Some(dev) = dev else { continue };
        if dev.count == 0 || dev.count > 9 {
            return Err(invalid(format!(
                "{kind}.count = {}: must be 1..=9",
                dev.count
            )));
        }
        let entries = entries(&profile, kind, &dev.points, order)?;
        let plan = plan_block(&profile, kind, &dev)?;
        let template = DeviceTemplate {
            count: dev.count,
            stride: dev.stride,
            entries,
            plan,
        };
        check_template(&profile, kind, &template, &limits)?;
        templates.insert(kind, template);
    }
    let profile = Profile {
        name: file.name,
        vendor: file.vendor,
        model: file.model,
        description: file.description,
        limits,
        room,
        pump: templates.remove(&DeviceKind::Pump),
        tank: templates.remove(&DeviceKind::Tank),
        camera: templates.remove(&DeviceKind::Camera),
    };
    // Laying out the largest room the controller supports finds every overlap, between
    // units as well as within one.
    let full = RoomShape {
        pumps: profile.supported(DeviceKind::Pump),
        tanks: profile.supported(DeviceKind::Tank),
        cameras: profile.supported(DeviceKind::Camera),
    };
    let mappings = profile.mappings(full)?;
    check_overlaps(&profile.name, &mappings)?;
    for n in 1..=full.tanks {
        let Some(start) = profile.plan_address(n) else {
            continue;
        };
        let end = u32::from(start) + u32::from(PLAN_WORDS);
        if end > 0x1_0000 {
            return Err(invalid(format!(
                "the fill plan of T{n} at holding {start} is beyond the address space"
            )));
        }
        if let Some(m) = mappings.iter().find(|m| {
            m.kind == RegisterKind::Holding
                && u32::from(m.address) < end
                && u32::from(start) < u32::from(m.address) + u32::from(m.width())
        }) {
            return Err(invalid(format!(
                "the fill plan of T{n} (holding {start}..{end}) overlaps {}.{}",
                m.unit, m.point
            )));
        }
    }
    Ok(profile)
}

fn entries(
    profile: &str,
    kind: DeviceKind,
    files: &[EntryFile],
    default_order: WordOrder,
) -> Result<Vec<Entry>, ProfileError> {
    let mut seen = BTreeMap::new();
    let mut out = Vec::with_capacity(files.len());
    for f in files {
        let entry_err = |what: String| ProfileError::Entry {
            profile: profile.to_owned(),
            entry: format!(
                "{kind} point {:?}",
                f.point.chars().take(64).collect::<String>()
            ),
            what,
        };
        let Some(index) = kind.point_index(&f.point) else {
            let known: Vec<_> = kind.points().iter().map(|p| p.name).collect();
            return Err(entry_err(format!(
                "unknown point (a {kind} has: {})",
                known.join(", ")
            )));
        };
        let spec = &kind.points()[index];
        if seen.insert(spec.name, ()).is_some() {
            return Err(entry_err("mapped twice".into()));
        }
        if let Some(unit) = &f.unit {
            if unit != spec.unit {
                return Err(entry_err(format!(
                    "unit {unit:?} differs from the catalog's {:?}: choose scale and offset so \
                     that the value comes out in {:?}",
                    spec.unit, spec.unit
                )));
            }
        }
        let scale = f.scale.unwrap_or(1.0);
        let offset = f.offset.unwrap_or(0.0);
        if !scale.is_finite() || scale == 0.0 || !offset.is_finite() {
            return Err(entry_err(format!(
                "scale {scale} and offset {offset} must be finite, scale non-zero"
            )));
        }
        let numeric_options =
            f.dtype.is_some() || f.order.is_some() || f.scale.is_some() || f.offset.is_some();
        let encoding = if f.kind.is_bit() {
            if numeric_options || f.bit.is_some() {
                return Err(entry_err(format!(
                    "a {} is one bit: type, order, scale, offset and bit do not apply",
                    f.kind
                )));
            }
            Encoding::Bit
        } else if let Some(bit) = f.bit {
            if bit > 15 {
                return Err(entry_err(format!("bit {bit}: a register has bits 0..=15")));
            }
            if f.dtype.is_some_and(|t| t != DataType::U16)
                || f.order.is_some()
                || f.scale.is_some()
                || f.offset.is_some()
            {
                return Err(entry_err(
                    "a status bit is read from a u16 register: order, scale and offset do not apply"
                        .into(),
                ));
            }
            Encoding::RegisterBit(bit)
        } else {
            let Some(dtype) = f.dtype else {
                return Err(entry_err(format!(
                    "a {} needs a type (u16, i16, u32, i32, f32) or a bit",
                    f.kind
                )));
            };
            if f.order.is_some() && dtype.words() == 1 {
                return Err(entry_err(format!(
                    "order applies to 32-bit types, not {dtype}"
                )));
            }
            Encoding::Value(ValueFormat {
                dtype,
                order: f.order.unwrap_or(default_order),
                scale,
                offset,
            })
        };
        let is_bit = matches!(encoding, Encoding::Bit | Encoding::RegisterBit(_));
        if is_bit && spec.kind != PointKind::Digital {
            return Err(entry_err(format!(
                "the catalog's {} is {:?}, not digital: it cannot be a single bit",
                spec.name, spec.kind
            )));
        }
        if u32::from(f.address) + u32::from(encoding.width()) > 0x1_0000 {
            return Err(entry_err(format!(
                "{} {} is beyond the address space",
                f.kind, f.address
            )));
        }
        let write_range = match f.write_range {
            None => None,
            Some([lo, hi]) => {
                if f.kind != RegisterKind::Holding || !matches!(encoding, Encoding::Value(_)) {
                    return Err(entry_err(
                        "only a holding-register value can be written (write_range)".into(),
                    ));
                }
                if !(lo.is_finite() && hi.is_finite() && lo <= hi) {
                    return Err(entry_err(format!(
                        "write_range [{lo}, {hi}] must be finite with min <= max"
                    )));
                }
                Some((lo, hi))
            }
        };
        out.push(Entry {
            point: spec.name,
            index: index as u16,
            kind: f.kind,
            address: f.address,
            encoding,
            write_range,
        });
    }
    Ok(out)
}

fn plan_block(
    profile: &str,
    kind: DeviceKind,
    dev: &DeviceFile,
) -> Result<Option<PlanBlock>, ProfileError> {
    let invalid = |what: String| ProfileError::Invalid {
        profile: profile.to_owned(),
        what,
    };
    let Some(address) = dev.plan_address else {
        if dev.plan_stride.is_some() {
            return Err(invalid(format!("{kind}.plan_stride without plan_address")));
        }
        return Ok(None);
    };
    if kind != DeviceKind::Tank {
        return Err(invalid(format!(
            "{kind}.plan_address: only tanks take fill plans"
        )));
    }
    let stride = dev.plan_stride.unwrap_or(0);
    if dev.count > 1 && stride < PLAN_WORDS {
        return Err(invalid(format!(
            "tank.plan_stride = {stride}: {} tanks need plan blocks at least {PLAN_WORDS} \
             registers apart",
            dev.count
        )));
    }
    Ok(Some(PlanBlock { address, stride }))
}

fn check_template(
    profile: &str,
    kind: DeviceKind,
    t: &DeviceTemplate,
    limits: &ReadLimits,
) -> Result<(), ProfileError> {
    for table in RegisterKind::ALL {
        let mut of_table = t.entries.iter().filter(|e| e.kind == table).peekable();
        if of_table.peek().is_none() {
            continue;
        }
        let first = t
            .entries
            .iter()
            .filter(|e| e.kind == table)
            .map(|e| e.address)
            .min();
        let end = of_table
            .map(|e| u32::from(e.address) + u32::from(e.encoding.width()))
            .max();
        let (Some(first), Some(end)) = (first, end) else {
            continue;
        };
        let span = end - u32::from(first);
        let max = limits.max_per_read(table);
        if span > u32::from(max) {
            return Err(ProfileError::BlockTooLong {
                profile: profile.to_owned(),
                device: kind,
                kind: table,
                first,
                last: end - 1,
                span,
                max,
            });
        }
        if t.count > 1 && t.stride.of(table) == 0 {
            return Err(ProfileError::Invalid {
                profile: profile.to_owned(),
                what: format!(
                    "{kind}.stride.{} is needed: {} units use {table}s",
                    table.label(),
                    t.count
                ),
            });
        }
    }
    Ok(())
}

/// Who occupies a register or bit.
enum Occupant {
    Whole(String),
    /// Bits of a status register, by bit number.
    Bits(BTreeMap<u8, String>),
}

fn check_overlaps(profile: &str, mappings: &[Mapping]) -> Result<(), ProfileError> {
    let mut used: BTreeMap<(RegisterKind, u16), Occupant> = BTreeMap::new();
    for m in mappings {
        let label = format!("{}.{}", m.unit, m.point);
        for i in 0..m.width() {
            let Some(address) = m.address.checked_add(i) else {
                continue;
            };
            let overlap = |first: &str| ProfileError::Overlap {
                profile: profile.to_owned(),
                kind: m.kind,
                address: u32::from(address),
                first: first.to_owned(),
                second: label.clone(),
            };
            match (used.get_mut(&(m.kind, address)), m.encoding) {
                (None, Encoding::RegisterBit(bit)) => {
                    used.insert(
                        (m.kind, address),
                        Occupant::Bits(BTreeMap::from([(bit, label.clone())])),
                    );
                }
                (None, _) => {
                    used.insert((m.kind, address), Occupant::Whole(label.clone()));
                }
                (Some(Occupant::Bits(bits)), Encoding::RegisterBit(bit)) => {
                    if let Some(first) = bits.get(&bit) {
                        return Err(overlap(first));
                    }
                    bits.insert(bit, label.clone());
                }
                (Some(Occupant::Bits(bits)), _) => {
                    let first = bits.values().next().cloned().unwrap_or_default();
                    return Err(overlap(&first));
                }
                (Some(Occupant::Whole(first)), _) => return Err(overlap(first)),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modbus::profile::tests::with;

    #[test]
    fn profile_errors_name_the_profile_and_the_entry() {
        let cases = [
            (
                r#"point = "frequency""#,
                r#"point = "freq""#,
                "pump point \"freq\": unknown point",
            ),
            (
                "address = 101, bit = 1",
                "address = 101, bit = 0",
                "holding register 101 is mapped twice, by P1.running and by P1.fault",
            ),
            (
                "address = 101, bit = 1",
                "address = 100, bit = 1",
                "holding register 100 is mapped twice",
            ),
            (
                "stride = { holding = 10 }",
                "stride = { holding = 1 }",
                "mapped twice",
            ),
            (
                "stride = { holding = 10 }",
                "",
                "pump.stride.holding is needed",
            ),
            (
                "stride = { holding = 10 }",
                "stride = { holdings = 10 }",
                "unknown field `holdings`",
            ),
            (
                "vendor = \"Test\"",
                "vendor = \"Test\"\nadress = 3",
                "unknown field `adress`",
            ),
            (
                "unit = \"MPa\"",
                "unit = \"kPa\"",
                "unit \"kPa\" differs from the catalog's \"MPa\"",
            ),
            (
                "address = 101, bit = 1",
                "address = 101, bit = 16",
                "bit 16",
            ),
            (
                "type = \"u16\", scale = 0.01",
                "scale = 0.01",
                "needs a type",
            ),
            (
                "type = \"u16\", scale = 0.01",
                "type = \"u16\", scale = 0.0",
                "scale non-zero",
            ),
            (
                "type = \"u16\", scale = 0.01",
                "type = \"u16\", order = \"CDAB\"",
                "order applies to 32-bit",
            ),
            (
                "type = \"u16\", scale = 0.01",
                "type = \"u64\"",
                "unknown variant `u64`",
            ),
            (
                r#"kind = "discrete", address = 0 }"#,
                r#"kind = "discrete", address = 0, scale = 2.0 }"#,
                "is one bit",
            ),
            (
                r#"{ point = "frequency", kind = "holding", address = 100, type = "u16", scale = 0.01 }"#,
                r#"{ point = "frequency", kind = "coil", address = 100 }"#,
                "cannot be a single bit",
            ),
            (
                r#"address = 0, type = "f32""#,
                r#"address = 65535, type = "f32""#,
                "beyond the address space",
            ),
            (
                r#"{ point = "mains", kind = "discrete", address = 0 },"#,
                r#"{ point = "mains", kind = "discrete", address = 0 }, { point = "mains", kind = "coil", address = 0 },"#,
                "room point \"mains\": mapped twice",
            ),
            ("count = 2", "count = 0", "pump.count = 0"),
            (
                "name = \"test-ctl\"",
                "name = \"test ctl\"",
                "must be 1-64 letters",
            ),
        ];
        for (from, to, want) in cases {
            let err = with(from, to).unwrap_err().to_string();
            assert!(err.contains("test-ctl"), "{to}: {err}");
            assert!(err.contains(want), "{to}: wanted {want:?} in {err}");
        }
        let err = Profile::from_toml("not = [toml", "garbage")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("Modbus profile garbage is not a valid register map"),
            "{err}"
        );
    }

    #[test]
    fn a_device_block_longer_than_one_read_is_refused() {
        let err = with("address = 101, bit = 1", "address = 230, bit = 1").unwrap_err();
        assert!(
            matches!(
                err,
                ProfileError::BlockTooLong {
                    span: 131,
                    max: 125,
                    ..
                }
            ),
            "{err}"
        );
        assert!(
            err.to_string()
                .contains("one pump spans 131 holding registers (100..=230)"),
            "{err}"
        );
        let err = with(
            "vendor = \"Test\"",
            "vendor = \"Test\"\nmax_registers_per_read = 200",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("max_registers_per_read = 200"), "{err}");
    }
}
