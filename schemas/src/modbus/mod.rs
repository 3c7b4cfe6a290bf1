//! Modbus register maps ("profiles"): one per pump-room controller model, read from
//! `schemas/profiles/*.toml` (the format is documented in `schemas/profiles/README.md`).
//!
//! This module owns everything about Modbus that needs no socket: the profile format and its
//! validation, the layout of a concrete room (the profile's device templates repeated per pump,
//! tank and camera), the planning of block reads, and the codec between register words and
//! engineering values. The poller (`src/ingest/modbus`) and the simulator's server
//! (`src/sim/modbus_server.rs`) both build on it, so the two ends cannot disagree about where a
//! point lives or how it is scaled, and the codec is property-tested without a runtime.
//!
//! Conventions, fixed here once:
//! - Addresses are 0-based protocol (PDU) addresses, not the 1-based `4xxxx` notation of
//!   vendor manuals (holding register 40001 is address 0).
//! - 16-bit registers are big-endian as the standard says; 32-bit values span two registers
//!   whose order is the profile's `word_order` (ABCD = high word first, CDAB = low word
//!   first; BADC and DCBA additionally swap the bytes in each word).
//! - Engineering value = raw × scale + offset, in the catalog unit of the point.
//! - Every type has a "not available" raw value that vendors use for a failed measurement:
//!   0xFFFF (u16), 0x8000 (i16), 0xFFFF_FFFF (u32), 0x8000_0000 (i32), NaN (f32). It decodes
//!   to NaN, and NaN (the simulator's "unreadable") encodes to it; ingest then rejects the
//!   value as not finite, exactly as it drops a NaN arriving over MQTT.

use crate::catalog::{DeviceKind, PointKind};
use crate::fill_plan::PLAN_WORDS;
use crate::ids::DeviceUnit;
use crate::inventory::RoomSpec;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

/// Most registers one read may ask for (Modbus application protocol, function 0x03/0x04).
pub const MAX_REGISTERS_PER_READ: u16 = 125;
/// Most bits one read may ask for (function 0x01/0x02).
pub const MAX_BITS_PER_READ: u16 = 2000;

/// The four primary tables of a Modbus device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegisterKind {
    /// Read-write bits (function 0x01).
    Coil,
    /// Read-only bits (function 0x02).
    Discrete,
    /// Read-write 16-bit registers (function 0x03).
    Holding,
    /// Read-only 16-bit registers (function 0x04).
    Input,
}

impl RegisterKind {
    pub const ALL: [RegisterKind; 4] = [
        RegisterKind::Coil,
        RegisterKind::Discrete,
        RegisterKind::Holding,
        RegisterKind::Input,
    ];

    /// Whether this table holds single bits rather than 16-bit words.
    pub fn is_bit(self) -> bool {
        matches!(self, RegisterKind::Coil | RegisterKind::Discrete)
    }

    /// A bounded label (metrics, logs).
    pub fn label(self) -> &'static str {
        match self {
            RegisterKind::Coil => "coil",
            RegisterKind::Discrete => "discrete",
            RegisterKind::Holding => "holding",
            RegisterKind::Input => "input",
        }
    }
}

impl fmt::Display for RegisterKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RegisterKind::Coil => "coil",
            RegisterKind::Discrete => "discrete input",
            RegisterKind::Holding => "holding register",
            RegisterKind::Input => "input register",
        })
    }
}

/// How a value is stored in registers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataType {
    U16,
    I16,
    U32,
    I32,
    F32,
}

impl DataType {
    pub const ALL: [DataType; 5] = [
        DataType::U16,
        DataType::I16,
        DataType::U32,
        DataType::I32,
        DataType::F32,
    ];

    /// Registers the value occupies.
    pub fn words(self) -> u16 {
        match self {
            DataType::U16 | DataType::I16 => 1,
            DataType::U32 | DataType::I32 | DataType::F32 => 2,
        }
    }

    /// The raw integer range a value may take; the "not available" marker lies outside it.
    fn raw_range(self) -> Option<(f64, f64)> {
        match self {
            DataType::U16 => Some((0.0, f64::from(u16::MAX - 1))),
            DataType::I16 => Some((-f64::from(i16::MAX), f64::from(i16::MAX))),
            DataType::U32 => Some((0.0, f64::from(u32::MAX - 1))),
            DataType::I32 => Some((-f64::from(i32::MAX), f64::from(i32::MAX))),
            DataType::F32 => None,
        }
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DataType::U16 => "u16",
            DataType::I16 => "i16",
            DataType::U32 => "u32",
            DataType::I32 => "i32",
            DataType::F32 => "f32",
        })
    }
}

/// Order of the bytes of a 32-bit value over its two registers, named after the big-endian
/// value `A B C D`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum WordOrder {
    /// High word first, bytes big-endian (the "Modicon" order).
    #[default]
    #[serde(rename = "ABCD")]
    Abcd,
    /// Low word first ("word swap"), bytes big-endian; common on little-endian PLCs.
    #[serde(rename = "CDAB")]
    Cdab,
    /// High word first, bytes swapped within each word.
    #[serde(rename = "BADC")]
    Badc,
    /// Low word first, bytes swapped within each word (fully little-endian).
    #[serde(rename = "DCBA")]
    Dcba,
}

impl WordOrder {
    pub const ALL: [WordOrder; 4] = [
        WordOrder::Abcd,
        WordOrder::Cdab,
        WordOrder::Badc,
        WordOrder::Dcba,
    ];

    fn swaps_words(self) -> bool {
        matches!(self, WordOrder::Cdab | WordOrder::Dcba)
    }

    fn swaps_bytes(self) -> bool {
        matches!(self, WordOrder::Badc | WordOrder::Dcba)
    }
}

impl fmt::Display for WordOrder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WordOrder::Abcd => "ABCD",
            WordOrder::Cdab => "CDAB",
            WordOrder::Badc => "BADC",
            WordOrder::Dcba => "DCBA",
        })
    }
}

fn join32(words: [u16; 2], order: WordOrder) -> u32 {
    let [mut first, mut second] = words;
    if order.swaps_bytes() {
        first = first.swap_bytes();
        second = second.swap_bytes();
    }
    let (hi, lo) = if order.swaps_words() {
        (second, first)
    } else {
        (first, second)
    };
    (u32::from(hi) << 16) | u32::from(lo)
}

fn split32(v: u32, order: WordOrder) -> [u16; 2] {
    let hi = (v >> 16) as u16;
    let lo = (v & 0xFFFF) as u16;
    let [mut first, mut second] = if order.swaps_words() {
        [lo, hi]
    } else {
        [hi, lo]
    };
    if order.swaps_bytes() {
        first = first.swap_bytes();
        second = second.swap_bytes();
    }
    [first, second]
}

/// Decodes a value from its registers: raw × scale + offset.
///
/// Returns `None` when `words` holds fewer registers than `dtype` needs (extra words are
/// ignored), and NaN for the type's "not available" marker. `order` only matters for 32-bit
/// types.
///
/// Values come out as the decimals they are, so that the historian's chunk codec stores them
/// as small integers (its decimal mode needs `v == m / 10^k` bit for bit): an integer register
/// scaled by 0.1, 0.01, … is divided by the power of ten (`2513 × 0.001` is one ulp off
/// `2.513`, `2513 / 1000` is not), and an f32 becomes the shortest decimal that reads back as
/// the same f32 (`2.513f32` is 2.5130000114…; 2.513 is what the device meant and loses nothing
/// of the f32).
pub fn decode(
    words: &[u16],
    dtype: DataType,
    order: WordOrder,
    scale: f64,
    offset: f64,
) -> Option<f64> {
    let raw = match dtype {
        DataType::U16 => {
            let w = *words.first()?;
            if w == u16::MAX {
                return Some(f64::NAN);
            }
            f64::from(w)
        }
        DataType::I16 => {
            let w = *words.first()? as i16;
            if w == i16::MIN {
                return Some(f64::NAN);
            }
            f64::from(w)
        }
        DataType::U32 | DataType::I32 | DataType::F32 => {
            let pair = [*words.first()?, *words.get(1)?];
            let v = join32(pair, order);
            match dtype {
                DataType::U32 if v == u32::MAX => return Some(f64::NAN),
                DataType::U32 => f64::from(v),
                DataType::I32 if v as i32 == i32::MIN => return Some(f64::NAN),
                DataType::I32 => f64::from(v as i32),
                _ => {
                    let f = f32::from_bits(v);
                    if scale == 1.0 && offset == 0.0 {
                        return Some(shortest_decimal(f));
                    }
                    f64::from(f)
                }
            }
        }
    };
    if offset == 0.0 {
        if let Some(divisor) = DECIMAL_DIVISORS.iter().find(|d| scale == 1.0 / **d) {
            return Some(raw / divisor);
        }
    }
    Some(raw * scale + offset)
}

const DECIMAL_DIVISORS: [f64; 9] = [1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9];

/// The decimal `m / 10^k` with the fewest places (at most 9) that converts back to `f`; `f`
/// itself when there is none (or it is not finite).
fn shortest_decimal(f: f32) -> f64 {
    let exact = f64::from(f);
    if !f.is_finite() {
        return exact;
    }
    for divisor in std::iter::once(1.0).chain(DECIMAL_DIVISORS) {
        let m = (exact * divisor).round();
        if m.abs() > 9_007_199_254_740_992.0 {
            break;
        }
        let candidate = m / divisor;
        if candidate as f32 == f {
            return candidate;
        }
    }
    exact
}

/// Registers of one encoded value (1 or 2 words).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Words {
    words: [u16; 2],
    len: u8,
}

impl Words {
    fn one(w: u16) -> Self {
        Self {
            words: [w, 0],
            len: 1,
        }
    }

    fn two(words: [u16; 2]) -> Self {
        Self { words, len: 2 }
    }

    pub fn as_slice(&self) -> &[u16] {
        &self.words[..usize::from(self.len)]
    }
}

/// The "not available" marker of a type, as registers.
pub fn not_available(dtype: DataType, order: WordOrder) -> Words {
    match dtype {
        DataType::U16 => Words::one(u16::MAX),
        DataType::I16 => Words::one(i16::MIN as u16),
        DataType::U32 => Words::two(split32(u32::MAX, order)),
        DataType::I32 => Words::two(split32(i32::MIN as u32, order)),
        DataType::F32 => Words::two(split32(f32::NAN.to_bits(), order)),
    }
}

/// Encodes an engineering value into registers, the inverse of [`decode`]: raw =
/// (value − offset) / scale, rounded to the nearest integer for integer types. NaN encodes to
/// the type's [`not_available`] marker; `None` when the type cannot hold the value (like
/// the `checked_*` arithmetic of std, it is the caller's call what to do instead).
pub fn encode(
    value: f64,
    dtype: DataType,
    order: WordOrder,
    scale: f64,
    offset: f64,
) -> Option<Words> {
    if value.is_nan() {
        return Some(not_available(dtype, order));
    }
    let raw = (value - offset) / scale;
    if dtype == DataType::F32 {
        let f = raw as f32;
        // An infinite value is representable; a finite one that overflows f32 is not.
        if (f.is_infinite() && raw.is_finite()) || f.is_nan() {
            return None;
        }
        return Some(Words::two(split32(f.to_bits(), order)));
    }
    let raw = raw.round();
    let (lo, hi) = dtype.raw_range()?;
    if !(lo..=hi).contains(&raw) {
        return None;
    }
    Some(match dtype {
        DataType::U16 => Words::one(raw as u16),
        DataType::I16 => Words::one(raw as i16 as u16),
        DataType::U32 => Words::two(split32(raw as u32, order)),
        _ => Words::two(split32(raw as i32 as u32, order)),
    })
}

/// How a register value maps to an engineering value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ValueFormat {
    pub dtype: DataType,
    pub order: WordOrder,
    pub scale: f64,
    pub offset: f64,
}

impl ValueFormat {
    pub fn decode(&self, words: &[u16]) -> Option<f64> {
        decode(words, self.dtype, self.order, self.scale, self.offset)
    }

    pub fn encode(&self, value: f64) -> Option<Words> {
        encode(value, self.dtype, self.order, self.scale, self.offset)
    }

    /// The largest error `decode(encode(value))` may make near `value`: half a scale step for
    /// integers, the f32 rounding of the raw value for floats.
    pub fn resolution(&self, value: f64) -> f64 {
        let arithmetic = 1e-9 * (value.abs() + self.offset.abs() + self.scale.abs());
        match self.dtype {
            DataType::F32 => (value - self.offset).abs() * f64::from(f32::EPSILON) + arithmetic,
            _ => self.scale.abs() / 2.0 + arithmetic,
        }
    }
}

/// Where a point's value sits in its table.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Encoding {
    /// A coil or a discrete input: 1 = true.
    Bit,
    /// One bit (0 = least significant) of a 16-bit status register.
    RegisterBit(u8),
    /// A numeric value over one or two registers.
    Value(ValueFormat),
}

impl Encoding {
    /// Registers (or bits) the encoding occupies.
    pub fn width(&self) -> u16 {
        match self {
            Encoding::Bit | Encoding::RegisterBit(_) => 1,
            Encoding::Value(f) => f.dtype.words(),
        }
    }
}

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

/// How a device answers reads: request size limits and how many unmapped registers between
/// two mapped ones may be read (and thrown away) to save a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadLimits {
    pub max_registers_per_read: u16,
    pub max_bits_per_read: u16,
    pub max_gap_registers: u16,
    pub max_gap_bits: u16,
}

impl Default for ReadLimits {
    fn default() -> Self {
        Self {
            max_registers_per_read: MAX_REGISTERS_PER_READ,
            max_bits_per_read: MAX_BITS_PER_READ,
            max_gap_registers: 8,
            max_gap_bits: 64,
        }
    }
}

impl ReadLimits {
    pub fn max_per_read(&self, kind: RegisterKind) -> u16 {
        if kind.is_bit() {
            self.max_bits_per_read
        } else {
            self.max_registers_per_read
        }
    }

    pub fn max_gap(&self, kind: RegisterKind) -> u16 {
        if kind.is_bit() {
            self.max_gap_bits
        } else {
            self.max_gap_registers
        }
    }
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

/// A point of a concrete room at its concrete address.
#[derive(Clone, Debug, PartialEq)]
pub struct Mapping {
    pub unit: DeviceUnit,
    pub point: &'static str,
    /// Index in the unit kind's catalog.
    pub index: u16,
    pub kind: RegisterKind,
    pub address: u16,
    pub encoding: Encoding,
    /// The range the platform may write, for a set-point (see [`Entry::write_range`]).
    pub write_range: Option<(f64, f64)>,
}

impl Mapping {
    /// Registers (or bits) the point occupies.
    pub fn width(&self) -> u16 {
        self.encoding.width()
    }

    fn end(&self) -> u32 {
        u32::from(self.address) + u32::from(self.width())
    }
}

impl fmt::Display for Mapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{} ({} {})",
            self.unit, self.point, self.kind, self.address
        )
    }
}

/// One read request: `count` registers (or bits) of `kind` from `start`, and the points in it.
#[derive(Clone, Debug, PartialEq)]
pub struct ReadBlock {
    pub kind: RegisterKind,
    pub start: u16,
    pub count: u16,
    pub mappings: Vec<Mapping>,
}

/// What a read returned.
#[derive(Clone, Copy, Debug)]
pub enum BlockData<'a> {
    Words(&'a [u16]),
    Bits(&'a [bool]),
}

/// A decoded value of one point (NaN: not available, or missing from the data).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DecodedValue<'a> {
    pub mapping: &'a Mapping,
    pub value: f64,
}

impl ReadBlock {
    /// The last address the block reads.
    pub fn end_inclusive(&self) -> u16 {
        self.start.saturating_add(self.count.saturating_sub(1))
    }

    /// Decodes every point of the block. A point the data does not cover (a short response,
    /// or words for a bit table) decodes to NaN rather than failing the block.
    pub fn decode<'a>(&'a self, data: BlockData<'_>) -> Vec<DecodedValue<'a>> {
        self.mappings
            .iter()
            .map(|m| {
                let at = usize::from(m.address.saturating_sub(self.start));
                let value = match (m.encoding, data) {
                    (Encoding::Bit, BlockData::Bits(bits)) => {
                        bits.get(at).map_or(f64::NAN, |b| f64::from(u8::from(*b)))
                    }
                    (Encoding::RegisterBit(bit), BlockData::Words(words)) => words
                        .get(at)
                        .map_or(f64::NAN, |w| f64::from((w >> u32::from(bit)) & 1)),
                    (Encoding::Value(format), BlockData::Words(words)) => words
                        .get(at..)
                        .and_then(|w| format.decode(w))
                        .unwrap_or(f64::NAN),
                    _ => f64::NAN,
                };
                DecodedValue { mapping: m, value }
            })
            .collect()
    }
}

impl fmt::Display for ReadBlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}s {}..={}",
            self.kind,
            self.start,
            self.end_inclusive()
        )
    }
}

/// The reads that cover a room, in table then address order.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct ReadPlan {
    pub blocks: Vec<ReadBlock>,
}

impl ReadPlan {
    /// Number of points the plan reads.
    pub fn point_count(&self) -> usize {
        self.blocks.iter().map(|b| b.mappings.len()).sum()
    }
}

/// Groups mappings into as few reads per table as possible: sorted by address, a mapping joins
/// the current block when the hole before it is at most the table's gap limit and the block
/// stays within the per-read limit; otherwise it opens the next block. (Greedy extension is
/// optimal here: any plan must cut the sorted run somewhere, and cutting as late as possible
/// never costs a block.) A value is never split between two reads.
pub fn plan_reads(mut mappings: Vec<Mapping>, limits: &ReadLimits) -> ReadPlan {
    mappings.sort_by_key(|m| (m.kind, m.address, bit_of(m)));
    let mut blocks: Vec<ReadBlock> = Vec::new();
    for m in mappings {
        let max = u32::from(limits.max_per_read(m.kind).max(2));
        let gap = u32::from(limits.max_gap(m.kind));
        if let Some(b) = blocks.last_mut() {
            let end = u32::from(b.start) + u32::from(b.count);
            let fits = b.kind == m.kind
                && u32::from(m.address) <= end + gap
                && m.end().max(end) - u32::from(b.start) <= max;
            if fits {
                b.count = (m.end().max(end) - u32::from(b.start)) as u16;
                b.mappings.push(m);
                continue;
            }
        }
        blocks.push(ReadBlock {
            kind: m.kind,
            start: m.address,
            count: m.width(),
            mappings: vec![m],
        });
    }
    ReadPlan { blocks }
}

fn bit_of(m: &Mapping) -> u8 {
    match m.encoding {
        Encoding::RegisterBit(b) => b,
        _ => 0,
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
        let file: ProfileFile = toml::from_str(text).map_err(|source| ProfileError::Parse {
            profile: origin.to_owned(),
            source: Box::new(source),
        })?;
        Self::validate(file, origin)
    }

    fn validate(file: ProfileFile, origin: &str) -> Result<Self, ProfileError> {
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
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::path::PathBuf;

    fn profiles_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("profiles")
    }

    // ---- codec ----

    #[test]
    fn scaled_registers_and_floats_decode_to_exact_decimals() {
        let o = WordOrder::Abcd;
        // 3 × 0.1 is 0.30000000000000004; the decimal the register means is 0.3.
        assert_ne!((3.0 * 0.1f64).to_bits(), 0.3f64.to_bits());
        let v = decode(&[3], DataType::U16, o, 0.1, 0.0).unwrap();
        assert_eq!(v.to_bits(), 0.3f64.to_bits());
        let v = decode(&[2513], DataType::U16, o, 0.001, 0.0).unwrap();
        assert_eq!(v.to_bits(), 2.513f64.to_bits());
        let v = decode(&[(-352i16) as u16], DataType::I16, o, 0.01, 0.0).unwrap();
        assert_eq!(v.to_bits(), (-3.52f64).to_bits());
        let bits = 2.513f32.to_bits();
        let words = [(bits >> 16) as u16, bits as u16];
        let v = decode(&words, DataType::F32, o, 1.0, 0.0).unwrap();
        assert_eq!(v.to_bits(), 2.513f64.to_bits());
        // An f32 with no short decimal keeps its exact value.
        let odd = f32::from_bits(0x3f80_0001);
        let bits = odd.to_bits();
        let v = decode(
            &[(bits >> 16) as u16, bits as u16],
            DataType::F32,
            o,
            1.0,
            0.0,
        )
        .unwrap();
        assert_eq!(v as f32, odd);
    }

    proptest! {
        /// Whatever the f32, the decoded value converts back to exactly it.
        #[test]
        fn an_f32_decodes_to_a_value_that_reads_back_as_itself(bits in any::<u32>()) {
            let f = f32::from_bits(bits);
            let v = decode(&[(bits >> 16) as u16, bits as u16], DataType::F32, WordOrder::Abcd, 1.0, 0.0).unwrap();
            if f.is_nan() {
                prop_assert!(v.is_nan());
            } else {
                prop_assert_eq!((v as f32).to_bits(), bits);
            }
        }
    }

    #[test]
    fn known_register_images_decode() {
        // 12.5f32 = 0x4148_0000
        let f = |words: &[u16], order| decode(words, DataType::F32, order, 1.0, 0.0).unwrap();
        assert_eq!(f(&[0x4148, 0x0000], WordOrder::Abcd), 12.5);
        assert_eq!(f(&[0x0000, 0x4148], WordOrder::Cdab), 12.5);
        assert_eq!(f(&[0x4841, 0x0000], WordOrder::Badc), 12.5);
        assert_eq!(f(&[0x0000, 0x4841], WordOrder::Dcba), 12.5);
        // 100_000 = 0x0001_86A0, low word first
        let v = decode(&[0x86A0, 0x0001], DataType::U32, WordOrder::Cdab, 0.1, 0.0).unwrap();
        assert!((v - 10_000.0).abs() < 1e-9);
        assert_eq!(
            decode(&[0xFFFE], DataType::I16, WordOrder::Abcd, 0.5, 1.0),
            Some(0.0)
        );
        assert_eq!(
            decode(&[1234], DataType::U16, WordOrder::Abcd, 0.01, 0.0),
            Some(12.34)
        );
        assert_eq!(
            decode(&[0xFFFF, 0xFFFE], DataType::I32, WordOrder::Abcd, 1.0, 0.0),
            Some(-2.0)
        );
        assert_eq!(decode(&[1], DataType::U32, WordOrder::Abcd, 1.0, 0.0), None);
        assert_eq!(decode(&[], DataType::U16, WordOrder::Abcd, 1.0, 0.0), None);
    }

    #[test]
    fn not_available_markers_are_nan_both_ways() {
        for dtype in DataType::ALL {
            for order in WordOrder::ALL {
                let w = encode(f64::NAN, dtype, order, 0.1, 3.0).unwrap();
                let v = decode(w.as_slice(), dtype, order, 0.1, 3.0).unwrap();
                assert!(v.is_nan(), "{dtype} {order}");
            }
        }
        assert_eq!(
            encode(f64::NAN, DataType::U16, WordOrder::Abcd, 1.0, 0.0)
                .unwrap()
                .as_slice(),
            [0xFFFF]
        );
        assert_eq!(
            encode(f64::NAN, DataType::I16, WordOrder::Abcd, 1.0, 0.0)
                .unwrap()
                .as_slice(),
            [0x8000]
        );
    }

    #[test]
    fn values_that_do_not_fit_are_refused() {
        let e = |v, t| encode(v, t, WordOrder::Abcd, 0.1, 0.0);
        assert!(e(6553.4, DataType::U16).is_some());
        assert!(
            e(6553.5, DataType::U16).is_none(),
            "would collide with the n/a marker"
        );
        assert!(e(-0.1, DataType::U16).is_none());
        assert!(e(-3276.8, DataType::I16).is_none());
        assert!(e(f64::INFINITY, DataType::U32).is_none());
        assert!(encode(1e300, DataType::F32, WordOrder::Abcd, 1.0, 0.0).is_none());
        assert!(encode(f64::INFINITY, DataType::F32, WordOrder::Abcd, 1.0, 0.0).is_some());
    }

    fn arb_format() -> impl Strategy<Value = ValueFormat> {
        (
            prop::sample::select(DataType::ALL.to_vec()),
            prop::sample::select(WordOrder::ALL.to_vec()),
            prop::sample::select(vec![1.0, 0.1, 0.01, 0.001, 0.5, 10.0, -1.0]),
            prop::sample::select(vec![0.0, -40.0, 4.0, 1000.0]),
        )
            .prop_map(|(dtype, order, scale, offset)| ValueFormat {
                dtype,
                order,
                scale,
                offset,
            })
    }

    proptest! {
        /// Every integer register image survives decode then encode bit for bit (the
        /// "not available" markers included); an f32 image comes back as the same value (NaN
        /// payloads normalise to the one marker; with an offset, within the resolution).
        #[test]
        fn registers_round_trip(format in arb_format(), w0: u16, w1: u16) {
            let words = [w0, w1];
            let value = format.decode(&words).unwrap();
            let width = usize::from(format.dtype.words());
            let back = format.encode(value).unwrap();
            let again = format.decode(back.as_slice()).unwrap();
            if format.dtype != DataType::F32 {
                prop_assert_eq!(back.as_slice(), &words[..width]);
            } else if value.is_nan() {
                prop_assert!(again.is_nan());
            } else if format.offset == 0.0 {
                // Without an offset the f32 grid maps onto itself (only the sign of a zero
                // may change).
                prop_assert_eq!(again, value);
            } else {
                prop_assert!((again - value).abs() <= format.resolution(value));
            }
        }

        /// Every value inside a type's range survives encode then decode within the
        /// resolution of the format.
        #[test]
        fn values_round_trip_within_resolution(format in arb_format(), frac in 0.0f64..=1.0) {
            let (lo, hi) = format.dtype.raw_range().unwrap_or((-1e30, 1e30));
            let raw = lo + (hi - lo) * frac;
            let value = raw * format.scale + format.offset;
            let words = format.encode(value).unwrap();
            let back = format.decode(words.as_slice()).unwrap();
            let tol = format.resolution(value);
            prop_assert!((back - value).abs() <= tol, "{value} -> {back} (tolerance {tol})");
        }
    }

    // ---- profiles ----

    const MINIMAL: &str = r#"
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

    fn with(replace: &str, by: &str) -> Result<Profile, ProfileError> {
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

    // ---- block planning ----

    fn m(kind: RegisterKind, address: u16, dtype: Option<DataType>) -> Mapping {
        let encoding = match dtype {
            None if kind.is_bit() => Encoding::Bit,
            None => Encoding::RegisterBit(0),
            Some(dtype) => Encoding::Value(ValueFormat {
                dtype,
                order: WordOrder::Abcd,
                scale: 1.0,
                offset: 0.0,
            }),
        };
        Mapping {
            unit: DeviceUnit::Room,
            point: "x",
            index: 0,
            kind,
            address,
            encoding,
            write_range: None,
        }
    }

    fn spans(plan: &ReadPlan) -> Vec<(RegisterKind, u16, u16)> {
        plan.blocks
            .iter()
            .map(|b| (b.kind, b.start, b.count))
            .collect()
    }

    use RegisterKind::{Coil, Discrete, Holding, Input};

    #[test]
    fn small_gaps_merge_and_large_ones_split() {
        let limits = ReadLimits::default(); // gap 8 registers, 64 bits
        let ms = vec![
            m(Holding, 0, Some(DataType::F32)),
            m(Holding, 10, Some(DataType::U16)), // hole of 8 after 0..2: merges
            m(Holding, 20, Some(DataType::U16)), // hole of 9 after 10: splits
            m(Input, 0, Some(DataType::U16)),    // other table: own block
            m(Coil, 0, None),
            m(Coil, 65, None), // hole of 64 bits: merges
            m(Discrete, 3, None),
        ];
        let plan = plan_reads(ms, &limits);
        assert_eq!(
            spans(&plan),
            [
                (Coil, 0, 66),
                (Discrete, 3, 1),
                (Holding, 0, 11),
                (Holding, 20, 1),
                (Input, 0, 1)
            ]
        );
    }

    #[test]
    fn reads_never_exceed_the_limit_nor_split_a_value() {
        let limits = ReadLimits {
            max_registers_per_read: 10,
            ..ReadLimits::default()
        };
        // Five f32 back to back: 0..10 fits one read; the sixth at 10..12 opens the next.
        let ms = (0..6)
            .map(|i| m(Holding, i * 2, Some(DataType::F32)))
            .collect();
        assert_eq!(
            spans(&plan_reads(ms, &limits)),
            [(Holding, 0, 10), (Holding, 10, 2)]
        );
        // An f32 at 9..11 does not fit a block ending at 10: it moves whole to the next read.
        let ms = vec![
            m(Holding, 0, Some(DataType::U16)),
            m(Holding, 9, Some(DataType::F32)),
        ];
        assert_eq!(
            spans(&plan_reads(ms, &limits)),
            [(Holding, 0, 1), (Holding, 9, 2)]
        );
        let limits = ReadLimits {
            max_bits_per_read: 2000,
            max_gap_bits: 0,
            ..ReadLimits::default()
        };
        let ms = (0..4100).map(|i| m(Discrete, i, None)).collect();
        assert_eq!(
            spans(&plan_reads(ms, &limits)),
            [
                (Discrete, 0, 2000),
                (Discrete, 2000, 2000),
                (Discrete, 4000, 100)
            ]
        );
    }

    #[test]
    fn status_bits_share_one_register_and_unsorted_input_is_fine() {
        let mut a = m(Input, 7, None);
        a.encoding = Encoding::RegisterBit(3);
        let b = m(Input, 7, None);
        let c = m(Input, 5, Some(DataType::I16));
        let limits = ReadLimits {
            max_gap_registers: 0,
            ..ReadLimits::default()
        };
        let plan = plan_reads(vec![a, b, c], &limits);
        // 5 and 7 leave a hole of one register: no merging with a zero gap.
        assert_eq!(spans(&plan), [(Input, 5, 1), (Input, 7, 1)]);
        assert_eq!(plan.blocks[1].mappings.len(), 2);
        let words = [0b1001u16];
        let decoded = plan.blocks[1].decode(BlockData::Words(&words));
        let bits: Vec<_> = decoded.iter().map(|d| d.value).collect();
        assert_eq!(bits, [1.0, 1.0]); // bit 0 then bit 3
        assert!(plan_reads(Vec::new(), &limits).blocks.is_empty());
    }

    #[test]
    fn shipped_maps_need_few_reads() {
        let set = ProfileSet::load_dir(&profiles_dir()).unwrap();
        let shape = RoomShape {
            pumps: 3,
            tanks: 2,
            cameras: 2,
        };
        let hydrotek = set.get("hydrotek-hc300").unwrap().plan(shape).unwrap();
        let aquaflow = set.get("aquaflow-ps2").unwrap().plan(shape).unwrap();
        // Sixty-odd points in a handful of requests.
        assert!(hydrotek.blocks.len() <= 6, "{:#?}", spans(&hydrotek));
        assert!(aquaflow.blocks.len() <= 6, "{:#?}", spans(&aquaflow));
        assert_eq!(hydrotek.point_count(), 30 + 3 * 8 + 2 * 5 + 2 * 3);
    }

    #[test]
    fn short_or_mismatched_data_decodes_to_nan() {
        let block = ReadBlock {
            kind: Holding,
            start: 10,
            count: 3,
            mappings: vec![
                m(Holding, 10, Some(DataType::U16)),
                m(Holding, 11, Some(DataType::F32)),
            ],
        };
        let d = block.decode(BlockData::Words(&[7, 0x4148]));
        assert_eq!(d[0].value, 7.0);
        assert!(d[1].value.is_nan());
        assert!(block
            .decode(BlockData::Bits(&[true; 3]))
            .iter()
            .all(|d| d.value.is_nan()));
    }
}
