//! Modbus register decoding, as the poller runs it on every block read
//! (src/ingest/modbus/poller.rs): a block of the shipped profiles' read plans decoded from
//! whatever words or bits a device answered (short, long or of the wrong table), and the codec
//! between register words and engineering values under any data type, word order and scale.
//!
//! Input: byte 0 chooses the mode, the rest is the data. Beyond "no panic" it checks that a
//! block decodes to one value per point, a bit to 0 or 1, a covered point to a value (never
//! "not in data"), and that the codec round-trips: words → value → words is the identity for
//! unscaled registers, and value → words → value is exact for the profiles' scales.
#![no_main]

use cistern_schemas::modbus::{
    decode, encode, BlockData, DataType, Encoding, PointRead, ProfileSet, ReadPlan, RoomShape,
    WordOrder,
};
use libfuzzer_sys::fuzz_target;
use std::path::Path;
use std::sync::OnceLock;

/// The read plans of every shipped profile, for rooms of a few shapes.
fn plans() -> &'static [ReadPlan] {
    static PLANS: OnceLock<Vec<ReadPlan>> = OnceLock::new();
    PLANS.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas/profiles");
        let set = ProfileSet::load_dir(&dir).expect("the shipped profiles load");
        let mut plans = Vec::new();
        for name in set.names() {
            let profile = set.get(name).expect("a listed profile");
            for (pumps, tanks, cameras) in [(1, 1, 0), (2, 2, 1), (4, 2, 2), (6, 1, 1)] {
                let shape = RoomShape {
                    pumps,
                    tanks,
                    cameras,
                };
                if let Ok(plan) = profile.plan(shape) {
                    plans.push(plan);
                }
            }
        }
        assert!(!plans.is_empty(), "no profile could be planned");
        plans
    })
}

fn words_of(data: &[u8]) -> Vec<u16> {
    data.chunks_exact(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .collect()
}

fn blocks(selector: u8, data: &[u8]) {
    let plans = plans();
    let plan = &plans[usize::from(selector) % plans.len()];
    let Some((&which, data)) = data.split_first() else {
        return;
    };
    let Some(block) = plan
        .blocks
        .get(usize::from(which) % plan.blocks.len().max(1))
    else {
        return;
    };
    let words = words_of(data);
    let bits: Vec<bool> = data.iter().map(|b| b & 1 == 1).collect();
    let as_bits = which & 0x80 != 0;
    let decoded = if as_bits {
        block.decode(BlockData::Bits(&bits))
    } else {
        block.decode(BlockData::Words(&words))
    };
    assert_eq!(decoded.len(), block.mappings.len(), "a point lost or added");
    for d in &decoded {
        let at = usize::from(d.mapping.address - block.start);
        let width = usize::from(d.mapping.width());
        let covered = if as_bits {
            matches!(d.mapping.encoding, Encoding::Bit) && at < bits.len()
        } else {
            !matches!(d.mapping.encoding, Encoding::Bit) && at + width <= words.len()
        };
        match d.read {
            PointRead::NotInData => assert!(!covered, "a covered point read as not in data"),
            PointRead::NotAvailable => assert!(covered),
            PointRead::Value(v) => {
                assert!(covered, "a value from outside the data");
                assert!(!v.is_nan(), "NaN as a value rather than not available");
                if matches!(d.mapping.encoding, Encoding::Bit | Encoding::RegisterBit(_)) {
                    assert!(v == 0.0 || v == 1.0, "a bit that is neither 0 nor 1");
                }
                if let Encoding::Value(format) = d.mapping.encoding {
                    if let Some(again) = format.encode(v) {
                        let back = format.decode(again.as_slice()).expect("two words decode");
                        assert_eq!(back, v, "value → words → value changed {format:?}");
                    }
                }
            }
        }
    }
}

fn codec(selector: u8, data: &[u8]) {
    let dtype = DataType::ALL[usize::from(selector) % DataType::ALL.len()];
    let order = WordOrder::ALL[usize::from(selector / 8) % WordOrder::ALL.len()];
    let scaled = selector & 0x40 != 0;
    let (scale, offset, data) = if scaled && data.len() >= 16 {
        let (a, rest) = data.split_at(8);
        let (b, rest) = rest.split_at(8);
        let f = |x: &[u8]| f64::from_be_bytes(x.try_into().expect("8 bytes"));
        (f(a), f(b), rest)
    } else {
        (1.0, 0.0, data)
    };
    let words = words_of(data);
    let Some(v) = decode(&words, dtype, order, scale, offset) else {
        assert!(
            words.len() < usize::from(dtype.words()),
            "enough words, no value"
        );
        return;
    };
    // Whatever the scale, encoding must not panic.
    let again = encode(v, dtype, order, scale, offset);
    if scaled || v.is_nan() {
        return;
    }
    let again = again.expect("an unscaled register value encodes");
    assert_eq!(
        again.as_slice(),
        &words[..usize::from(dtype.words())],
        "words → value → words changed ({dtype} {order})"
    );
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let Some((&selector, rest)) = rest.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        blocks(selector, rest);
    } else {
        codec(selector, rest);
    }
});
