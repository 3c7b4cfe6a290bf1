//! The write-ahead blob format: every sample of one historian flush, in arrival order.

use super::Sample;

/// A write-ahead blob: for each sample, a u16 length and the point id, then t (i64) and the
/// value (f64), little-endian.
pub fn encode(samples: &[Sample]) -> Vec<u8> {
    let mut out = Vec::with_capacity(samples.len() * 40);
    for (point, t, v) in samples {
        let bytes = point.as_bytes();
        let len = u16::try_from(bytes.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&bytes[..usize::from(len)]);
        out.extend_from_slice(&t.to_le_bytes());
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

pub fn decode(mut blob: &[u8]) -> Result<Vec<Sample>, &'static str> {
    fn take<'a>(blob: &mut &'a [u8], n: usize) -> Result<&'a [u8], &'static str> {
        if blob.len() < n {
            return Err("truncated");
        }
        let (head, rest) = blob.split_at(n);
        *blob = rest;
        Ok(head)
    }
    let mut out = Vec::new();
    while !blob.is_empty() {
        let len = u16::from_le_bytes(take(&mut blob, 2)?.try_into().map_err(|_| "length")?);
        let point =
            std::str::from_utf8(take(&mut blob, usize::from(len))?).map_err(|_| "point id")?;
        let t = i64::from_le_bytes(take(&mut blob, 8)?.try_into().map_err(|_| "time")?);
        let v = f64::from_le_bytes(take(&mut blob, 8)?.try_into().map_err(|_| "value")?);
        out.push((point.to_owned(), t, v));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_round_trip_and_refuse_truncation() {
        let samples = vec![
            ("XM-0001/T1.level".to_owned(), 5, 2.5),
            ("XM-0001.ph".to_owned(), -7, f64::NAN),
        ];
        let blob = encode(&samples);
        let back = decode(&blob).unwrap();
        assert_eq!(back[0], samples[0]);
        assert!(back[1].2.is_nan());
        for cut in 1..blob.len() {
            if let Ok(partial) = decode(&blob[..cut]) {
                assert!(partial.len() < 2);
            }
        }
        assert!(decode(&blob[..blob.len() - 1]).is_err());
    }
}
