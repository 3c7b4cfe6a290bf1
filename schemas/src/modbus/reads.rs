//! Read planning: a room's mappings (each point at its concrete address) grouped into as few
//! block reads as the device's limits allow, and the decoding of what a block read returned
//! into one value per point. Kept apart from the profile format because the poller works
//! with plans only, never with profile files.

use super::codec::Encoding;
use super::{RegisterKind, MAX_BITS_PER_READ, MAX_REGISTERS_PER_READ};
use crate::ids::DeviceUnit;
use std::fmt;

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

/// What a read said of one point.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PointRead {
    /// A value (digital points: 0 or 1).
    Value(f64),
    /// The device answered its type's "not available" marker (see [`crate::modbus::decode`]):
    /// it reports the measurement failed. The point is bad now, not merely not updated.
    NotAvailable,
    /// The data did not cover the point (a short response, or words for a bit table).
    NotInData,
}

/// A decoded value of one point.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DecodedValue<'a> {
    pub mapping: &'a Mapping,
    pub read: PointRead,
}

impl DecodedValue<'_> {
    /// The value, NaN when there is none.
    pub fn value(&self) -> f64 {
        match self.read {
            PointRead::Value(v) => v,
            PointRead::NotAvailable | PointRead::NotInData => f64::NAN,
        }
    }
}

impl ReadBlock {
    /// The last address the block reads.
    pub fn end_inclusive(&self) -> u16 {
        self.start.saturating_add(self.count.saturating_sub(1))
    }

    /// Decodes every point of the block. A point the data does not cover (a short response,
    /// or words for a bit table) is [`PointRead::NotInData`] rather than failing the block;
    /// a value's "not available" marker is [`PointRead::NotAvailable`] (the codec decodes
    /// only that marker to NaN: scales and offsets are finite and non-zero).
    pub fn decode<'a>(&'a self, data: BlockData<'_>) -> Vec<DecodedValue<'a>> {
        self.mappings
            .iter()
            .map(|m| {
                let at = usize::from(m.address.saturating_sub(self.start));
                let read = match (m.encoding, data) {
                    (Encoding::Bit, BlockData::Bits(bits)) => {
                        bits.get(at).map_or(PointRead::NotInData, |b| {
                            PointRead::Value(f64::from(u8::from(*b)))
                        })
                    }
                    (Encoding::RegisterBit(bit), BlockData::Words(words)) => {
                        words.get(at).map_or(PointRead::NotInData, |w| {
                            PointRead::Value(f64::from((w >> u32::from(bit)) & 1))
                        })
                    }
                    (Encoding::Value(format), BlockData::Words(words)) => {
                        match words.get(at..).and_then(|w| format.decode(w)) {
                            None => PointRead::NotInData,
                            Some(v) if v.is_nan() => PointRead::NotAvailable,
                            Some(v) => PointRead::Value(v),
                        }
                    }
                    _ => PointRead::NotInData,
                };
                DecodedValue { mapping: m, read }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modbus::{DataType, ProfileSet, RoomShape, ValueFormat, WordOrder};
    use std::path::PathBuf;

    fn profiles_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("profiles")
    }

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
        let bits: Vec<_> = decoded.iter().map(|d| d.value()).collect();
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
    fn short_or_mismatched_data_is_not_in_data() {
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
        assert_eq!(d[0].read, PointRead::Value(7.0));
        assert_eq!(d[1].read, PointRead::NotInData);
        assert!(d[1].value().is_nan());
        assert!(block
            .decode(BlockData::Bits(&[true; 3]))
            .iter()
            .all(|d| d.read == PointRead::NotInData));
    }

    /// Issue 18: a device's "not available" answer is told apart from a value and from
    /// missing data, for every type and word order, so ingest can mark the point bad.
    #[test]
    fn not_available_markers_read_as_not_available() {
        for dtype in DataType::ALL {
            for order in WordOrder::ALL {
                let mut mapping = m(Holding, 10, Some(dtype));
                if let Encoding::Value(f) = &mut mapping.encoding {
                    f.order = order;
                    f.scale = 0.001;
                }
                let block = ReadBlock {
                    kind: Holding,
                    start: 10,
                    count: dtype.words(),
                    mappings: vec![mapping],
                };
                let marker = crate::modbus::not_available(dtype, order);
                let d = block.decode(BlockData::Words(marker.as_slice()));
                assert_eq!(d[0].read, PointRead::NotAvailable, "{dtype} {order}");
                let d = block.decode(BlockData::Words(&[1, 2]));
                assert!(
                    matches!(d[0].read, PointRead::Value(v) if v.is_finite()),
                    "{dtype} {order}: {:?}",
                    d[0].read
                );
            }
        }
        // Any NaN an f32 register holds is the device saying "no value", not just the
        // canonical one.
        let block = ReadBlock {
            kind: Holding,
            start: 0,
            count: 2,
            mappings: vec![m(Holding, 0, Some(DataType::F32))],
        };
        let d = block.decode(BlockData::Words(&[0xFFC0, 0x0001]));
        assert_eq!(d[0].read, PointRead::NotAvailable);
    }
}
