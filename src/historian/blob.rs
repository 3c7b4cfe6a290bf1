//! The write-ahead blob format: every sample of one historian flush, in arrival order.
//!
//! Version 2 (written now): [`MAGIC`], then one block per handed-over batch: a u16 length and
//! the device id, a u32 sample count, then per sample the point's index in the device kind's
//! points (u16), t (i64) and the value (f64); little-endian. 18 bytes a sample: the device id
//! is written once per block, not the ~30-byte point id per sample.
//!
//! Version 1 (written by earlier versions; still read, so that a data directory they left
//! replays and drains): per sample a u16 length and the point id, t (i64), value (f64). Its
//! first two bytes are a point id's length, which is never `0xFFFF` (ids are short), so the
//! magic tells the versions apart.

use super::buffers::IndexedSample;
use cistern_schemas::{DeviceId, PointId};
use std::io::Write;

/// The first bytes of a version 2 blob.
pub const MAGIC: [u8; 4] = [0xFF, 0xFF, b'H', 2];

/// The samples of one device in a blob.
#[derive(Debug, PartialEq)]
pub struct DeviceBlock {
    pub device: DeviceId,
    pub samples: Vec<IndexedSample>,
}

/// Encodes batches of samples (device, samples) as one version 2 blob.
pub fn encode<'a>(
    batches: impl IntoIterator<Item = (&'a DeviceId, &'a [IndexedSample])>,
    samples_hint: usize,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(MAGIC.len() + samples_hint * 18 + 64);
    out.extend_from_slice(&MAGIC);
    for (device, samples) in batches {
        if samples.is_empty() {
            continue;
        }
        let Ok(count) = u32::try_from(samples.len()) else {
            // Four billion samples in one handover cannot happen; refuse rather than corrupt.
            tracing::error!(%device, "historian: batch too large for a write-ahead block");
            continue;
        };
        // The id is written in place (no string), then its length patched in front of it.
        let at = out.len();
        out.extend_from_slice(&[0, 0]);
        // Writing to a Vec cannot fail.
        let _ = write!(out, "{device}");
        let len = u16::try_from(out.len() - at - 2).unwrap_or(u16::MAX);
        out[at..at + 2].copy_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&count.to_le_bytes());
        for &(index, t, v) in samples {
            out.extend_from_slice(&index.to_le_bytes());
            out.extend_from_slice(&t.to_le_bytes());
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    out
}

fn take<'a>(blob: &mut &'a [u8], n: usize) -> Result<&'a [u8], &'static str> {
    if blob.len() < n {
        return Err("truncated");
    }
    let (head, rest) = blob.split_at(n);
    *blob = rest;
    Ok(head)
}

fn take_array<const N: usize>(blob: &mut &[u8]) -> Result<[u8; N], &'static str> {
    take(blob, N)?.try_into().map_err(|_| "truncated")
}

/// Decodes a blob of either version into blocks by device. Version 1 samples of points that
/// are not (or no longer) among their device kind's points are dropped with an error log.
pub fn decode(blob: &[u8]) -> Result<Vec<DeviceBlock>, &'static str> {
    match blob.strip_prefix(&MAGIC) {
        Some(rest) => decode_v2(rest),
        None => decode_v1(blob),
    }
}

fn decode_v2(mut blob: &[u8]) -> Result<Vec<DeviceBlock>, &'static str> {
    let mut out = Vec::new();
    while !blob.is_empty() {
        let len = u16::from_le_bytes(take_array(&mut blob)?);
        let id =
            std::str::from_utf8(take(&mut blob, usize::from(len))?).map_err(|_| "device id")?;
        let device: DeviceId = id.parse().map_err(|_| "device id")?;
        let count = u32::from_le_bytes(take_array(&mut blob)?) as usize;
        if blob.len() < count.saturating_mul(18) {
            return Err("truncated");
        }
        let mut samples = Vec::with_capacity(count);
        for _ in 0..count {
            let index = u16::from_le_bytes(take_array(&mut blob)?);
            let t = i64::from_le_bytes(take_array(&mut blob)?);
            let v = f64::from_le_bytes(take_array(&mut blob)?);
            samples.push((index, t, v));
        }
        out.push(DeviceBlock { device, samples });
    }
    Ok(out)
}

fn decode_v1(mut blob: &[u8]) -> Result<Vec<DeviceBlock>, &'static str> {
    let mut out: Vec<DeviceBlock> = Vec::new();
    let mut unknown = 0usize;
    while !blob.is_empty() {
        let len = u16::from_le_bytes(take_array(&mut blob)?);
        let point =
            std::str::from_utf8(take(&mut blob, usize::from(len))?).map_err(|_| "point id")?;
        let t = i64::from_le_bytes(take_array(&mut blob)?);
        let v = f64::from_le_bytes(take_array(&mut blob)?);
        let Ok(point) = point.parse::<PointId>() else {
            unknown += 1;
            continue;
        };
        let Some(index) = point
            .device
            .unit
            .kind()
            .point_index(&point.name)
            .and_then(|i| u16::try_from(i).ok())
        else {
            unknown += 1;
            continue;
        };
        match out.last_mut() {
            Some(block) if block.device == point.device => block.samples.push((index, t, v)),
            _ => out.push(DeviceBlock {
                device: point.device,
                samples: vec![(index, t, v)],
            }),
        }
    }
    if unknown > 0 {
        tracing::error!(
            samples = unknown,
            "historian: version 1 write-ahead samples of unknown points dropped"
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The version 1 encoder, as earlier versions wrote blobs.
    fn encode_v1(samples: &[(&str, i64, f64)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (point, t, v) in samples {
            let bytes = point.as_bytes();
            out.extend_from_slice(&(bytes.len() as u16).to_le_bytes());
            out.extend_from_slice(bytes);
            out.extend_from_slice(&t.to_le_bytes());
            out.extend_from_slice(&v.to_le_bytes());
        }
        out
    }

    fn device(s: &str) -> DeviceId {
        s.parse().unwrap()
    }

    #[test]
    fn version_2_blobs_round_trip_and_refuse_truncation() {
        let (t1, room) = (device("XM-0001/T1"), device("XM-0001"));
        let a = [(0u16, 5i64, 2.5f64), (3, 6, -1.0)];
        let b = [(1u16, -7i64, f64::NAN)];
        let blob = encode([(&t1, &a[..]), (&room, &[][..]), (&room, &b[..])], 3);
        assert_eq!(blob[..4], MAGIC);
        // magic, then two blocks: 2 + id + 4 + 18 per sample
        assert_eq!(blob.len(), 4 + (2 + 10 + 4 + 36) + (2 + 7 + 4 + 18));
        let back = decode(&blob).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back[0].device, t1);
        assert_eq!(back[0].samples, a);
        assert_eq!(back[1].device, room);
        assert!(back[1].samples[0].2.is_nan());
        for cut in 0..blob.len() {
            if let Ok(partial) = decode(&blob[..cut]) {
                assert!(partial.len() < 2, "cut at {cut}");
            }
        }
        assert!(decode(&blob[..blob.len() - 1]).is_err());
        assert_eq!(decode(&MAGIC).unwrap(), []);
    }

    /// A blob left in a data directory by the previous version reads back by device.
    #[test]
    fn version_1_blobs_still_decode() {
        // One sample, byte by byte: length 16, "XM-0001/T1.level", t = 5, v = 2.5.
        let mut golden = vec![16, 0];
        golden.extend_from_slice(b"XM-0001/T1.level");
        golden.extend_from_slice(&[5, 0, 0, 0, 0, 0, 0, 0]);
        golden.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0x04, 0x40]);
        assert_eq!(golden, encode_v1(&[("XM-0001/T1.level", 5, 2.5)]));
        let level = cistern_schemas::DeviceKind::Tank
            .point_index("level")
            .unwrap() as u16;
        assert_eq!(
            decode(&golden).unwrap(),
            [DeviceBlock {
                device: device("XM-0001/T1"),
                samples: vec![(level, 5, 2.5)],
            }]
        );

        let ph = cistern_schemas::DeviceKind::Room.point_index("ph").unwrap() as u16;
        let blob = encode_v1(&[
            ("XM-0001/T1.level", 5, 2.5),
            ("XM-0001/T1.level", 7, 2.6),
            ("XM-0001.ph", -7, f64::NAN),
            ("XM-0001.no_such_point", 8, 1.0),
            ("XM-0001/T1.level", 9, 2.7),
        ]);
        let back = decode(&blob).unwrap();
        assert_eq!(back.len(), 3);
        assert_eq!(back[0].samples, [(level, 5, 2.5), (level, 7, 2.6)]);
        assert_eq!(back[1].device, device("XM-0001"));
        assert_eq!(back[1].samples[0].0, ph);
        assert!(back[1].samples[0].2.is_nan());
        assert_eq!(back[2].samples, [(level, 9, 2.7)]);
        assert!(decode(&blob[..blob.len() - 1]).is_err());
    }
}
