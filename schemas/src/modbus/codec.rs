//! The codec between register words and engineering values: data types, the four word
//! orders of 32-bit values, scaling (raw × scale + offset) and each type's "not available"
//! marker. Pure functions without a socket or a profile, so both ends of the wire (the poller
//! and the simulator's server) share them and they are property-tested without a runtime.

use serde::{Deserialize, Serialize};
use std::fmt;

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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

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
}
