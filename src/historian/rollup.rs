//! Rollups: mergeable buckets of samples (min, max, sum, count and the last sample), their
//! compact encoding, and the step query that serves long ranges from them.
//!
//! A [`Bucket`] is a *partial aggregate*: two buckets of the same start merge exactly (min of
//! mins, sum of sums, the later last sample), so a step bucket can be assembled from stored
//! 1-minute or 1-hour rollups, from raw samples of hours not compacted yet, and from the open
//! buffers, in any combination — as long as no sample is counted twice. The step query keeps
//! the sources disjoint: an hour is served by its rollups when the compactor wrote them, and
//! from raw samples otherwise (the current hour, or rollups missing).
//!
//! # Encoding of a bucket list
//!
//! One chunk holds the buckets of one point over one period (an hour of 1-minute buckets, a UTC
//! day of 1-hour buckets), as six columns, each a Gorilla chunk of the schemas codec
//! ([`cistern_schemas::chunk`]), so each column gets its delta-of-delta timestamps and its
//! decimal or XOR value mode for free:
//!
//! | field | size | meaning |
//! |---|---|---|
//! | tag | 1 byte | `0x01` |
//! | n | LEB128 varint | number of buckets |
//! | 6 × column | varint length + chunk bytes | see below |
//!
//! | column | chunk `t` | chunk `v` |
//! |---|---|---|
//! | 1 | bucket start (ms) | count |
//! | 2 | index `0..n` | min |
//! | 3 | index | max |
//! | 4 | index | last value |
//! | 5 | index | last sample time − bucket start (ms) |
//! | 6 | index | sum |
//!
//! Starts are regular (60 s or 1 h apart), so they cost one bit per bucket; index timestamps
//! cost one bit too (and 1 header byte instead of 6 for an epoch time). Counts and last-time
//! offsets are integers (decimal mode, scale 0); min, max and last are field values and take
//! the decimal mode when the samples do.
//!
//! **The sum** of decimal values accumulates float rounding error, which would push the whole
//! column into XOR mode (~8 bytes a bucket). When min, max and last share a decimal scale `k`
//! (the samples are `k`-decimals), the exact sum is a `k`-decimal too, so the encoder rounds
//! each sum to `k` decimals — *only* if every sum moves by no more than the float summation
//! error bound (`count² · max|v| · 2⁻⁵²`); otherwise the sums are stored bit-exactly. Decoded
//! sums are therefore within that bound of the encoded ones (closer to the true decimal sum),
//! and every other field round-trips bit for bit.

use super::Historian;
use crate::store::{Series, StoreError};
use cistern_schemas::chunk;
use cistern_schemas::{PointId, Timestamp};
use std::time::Duration;

pub const MINUTE_MS: i64 = 60_000;
pub const HOUR_MS: i64 = 3_600_000;
pub const DAY_MS: i64 = 86_400_000;

const TAG: u8 = 0x01;
const COLUMNS: usize = 6;
const POW10: [f64; 10] = [1.0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9];

/// A partial aggregate of the samples of one point within `[start, start + width)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bucket {
    pub start: i64,
    pub min: f64,
    pub max: f64,
    pub sum: f64,
    pub count: u64,
    /// Time and value of the bucket's newest sample.
    pub last_t: i64,
    pub last_v: f64,
}

impl Bucket {
    /// A bucket of one sample.
    pub fn of(start: i64, t: i64, v: f64) -> Self {
        Self {
            start,
            min: v,
            max: v,
            sum: v,
            count: 1,
            last_t: t,
            last_v: v,
        }
    }

    /// Adds a sample.
    pub fn add(&mut self, t: i64, v: f64) {
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        self.sum += v;
        self.count += 1;
        if t >= self.last_t {
            self.last_t = t;
            self.last_v = v;
        }
    }

    /// Merges another partial aggregate of the same span (disjoint samples).
    pub fn merge(&mut self, other: &Bucket) {
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.sum += other.sum;
        self.count += other.count;
        if other.last_t >= self.last_t {
            self.last_t = other.last_t;
            self.last_v = other.last_v;
        }
    }

    pub fn mean(&self) -> f64 {
        self.sum / self.count.max(1) as f64
    }

    pub fn last(&self) -> f64 {
        self.last_v
    }
}

/// The start of the `width`-bucket holding `t` (buckets are aligned to the Unix epoch, UTC).
pub fn floor(t: i64, width: i64) -> i64 {
    t - t.rem_euclid(width.max(1))
}

/// The first `width`-bucket start at or after `t`.
pub fn ceil(t: i64, width: i64) -> i64 {
    let f = floor(t, width);
    if f == t {
        t
    } else {
        f.saturating_add(width)
    }
}

/// Buckets of `width` ms from time-ordered samples.
pub fn bucketize(samples: &[(i64, f64)], width: i64) -> Vec<Bucket> {
    let mut out: Vec<Bucket> = Vec::new();
    for &(t, v) in samples {
        let start = floor(t, width);
        match out.last_mut() {
            Some(b) if b.start == start => b.add(t, v),
            _ => out.push(Bucket::of(start, t, v)),
        }
    }
    out
}

/// Coarsens start-ordered buckets to `width` (a multiple of theirs).
pub fn rebucket(buckets: &[Bucket], width: i64) -> Vec<Bucket> {
    let mut out: Vec<Bucket> = Vec::new();
    for b in buckets {
        let start = floor(b.start, width);
        match out.last_mut() {
            Some(o) if o.start == start => o.merge(b),
            _ => out.push(Bucket { start, ..*b }),
        }
    }
    out
}

/// Merges two start-ordered lists of partial buckets: buckets of the same start combine.
pub fn merge(a: &[Bucket], b: &[Bucket]) -> Vec<Bucket> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        let next = match (a.get(i), b.get(j)) {
            (Some(x), Some(y)) if x.start == y.start => {
                i += 1;
                j += 1;
                let mut m = *x;
                m.merge(y);
                m
            }
            (Some(x), Some(y)) if x.start < y.start => {
                i += 1;
                *x
            }
            (Some(x), None) => {
                i += 1;
                *x
            }
            (_, Some(y)) => {
                j += 1;
                *y
            }
            (None, None) => break,
        };
        out.push(next);
    }
    out
}

/// Sorts partial buckets by start and combines those of the same start.
fn coalesce(mut parts: Vec<Bucket>) -> Vec<Bucket> {
    parts.sort_by_key(|b| b.start);
    let mut out: Vec<Bucket> = Vec::with_capacity(parts.len());
    for b in parts {
        match out.last_mut() {
            Some(o) if o.start == b.start => o.merge(&b),
            _ => out.push(b),
        }
    }
    out
}

/// Why a rollup chunk could not be built or read.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum RollupError {
    #[error("bucket starts are not strictly increasing at {0}")]
    OutOfOrder(i64),
    #[error("rollup chunk is truncated")]
    Truncated,
    #[error("rollup chunk is corrupt: {0}")]
    Corrupt(&'static str),
    #[error("rollup column: {0}")]
    Column(#[from] chunk::ChunkError),
}

/// Encodes start-ordered buckets (see the module doc).
pub fn encode(buckets: &[Bucket]) -> Result<Vec<u8>, RollupError> {
    for w in buckets.windows(2) {
        if w[1].start <= w[0].start {
            return Err(RollupError::OutOfOrder(w[1].start));
        }
    }
    let indexed = |f: &dyn Fn(&Bucket) -> f64| -> Vec<(i64, f64)> {
        buckets
            .iter()
            .enumerate()
            .map(|(i, b)| (i as i64, f(b)))
            .collect()
    };
    let sums = snapped_sums(buckets);
    let columns: [Vec<(i64, f64)>; COLUMNS] = [
        buckets.iter().map(|b| (b.start, b.count as f64)).collect(),
        indexed(&|b| b.min),
        indexed(&|b| b.max),
        indexed(&|b| b.last_v),
        indexed(&|b| (b.last_t - b.start) as f64),
        sums.into_iter()
            .enumerate()
            .map(|(i, s)| (i as i64, s))
            .collect(),
    ];
    let mut out = vec![TAG];
    write_varint(&mut out, buckets.len() as u64);
    for column in &columns {
        let bytes = chunk::encode(column)?;
        write_varint(&mut out, bytes.len() as u64);
        out.extend_from_slice(&bytes);
    }
    Ok(out)
}

/// Decodes a bucket list written by [`encode`].
pub fn decode(bytes: &[u8]) -> Result<Vec<Bucket>, RollupError> {
    let mut pos = 0;
    if bytes.first() != Some(&TAG) {
        return Err(RollupError::Corrupt("unknown format tag"));
    }
    pos += 1;
    let n = read_varint(bytes, &mut pos)?;
    if n > chunk::MAX_SAMPLES as u64 {
        return Err(RollupError::Corrupt("too many buckets"));
    }
    let n = n as usize;
    let mut columns: Vec<Vec<(i64, f64)>> = Vec::with_capacity(COLUMNS);
    for _ in 0..COLUMNS {
        let len = read_varint(bytes, &mut pos)? as usize;
        let end = pos.checked_add(len).ok_or(RollupError::Truncated)?;
        let column = chunk::decode(bytes.get(pos..end).ok_or(RollupError::Truncated)?)?;
        if column.len() != n {
            return Err(RollupError::Corrupt(
                "column length differs from the bucket count",
            ));
        }
        columns.push(column);
        pos = end;
    }
    if pos != bytes.len() {
        return Err(RollupError::Corrupt("trailing bytes"));
    }
    let integer = |v: f64, what: &'static str| -> Result<i64, RollupError> {
        if v.fract() == 0.0 && v.abs() < 9.0e15 {
            Ok(v as i64)
        } else {
            Err(RollupError::Corrupt(what))
        }
    };
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let col = |c: usize| columns.get(c).and_then(|c| c.get(i)).copied();
        let (Some((start, count)), Some((_, min)), Some((_, max)), Some((_, last_v))) =
            (col(0), col(1), col(2), col(3))
        else {
            return Err(RollupError::Truncated);
        };
        let (Some((_, offset)), Some((_, sum))) = (col(4), col(5)) else {
            return Err(RollupError::Truncated);
        };
        let count = integer(count, "count is not an integer")?;
        if count < 1 {
            return Err(RollupError::Corrupt("empty bucket"));
        }
        out.push(Bucket {
            start,
            min,
            max,
            sum,
            count: count as u64,
            last_t: start.saturating_add(integer(offset, "last time is not an integer")?),
            last_v,
        });
    }
    Ok(out)
}

/// The sums to store: rounded to the samples' decimal scale when that only removes float
/// summation error (see the module doc), as they are otherwise.
fn snapped_sums(buckets: &[Bucket]) -> Vec<f64> {
    let raw: Vec<f64> = buckets.iter().map(|b| b.sum).collect();
    let Some(k) = decimal_scale(buckets.iter().flat_map(|b| [b.min, b.max, b.last_v])) else {
        return raw;
    };
    let divisor = POW10[k];
    let mut out = Vec::with_capacity(buckets.len());
    for b in buckets {
        let snapped = (b.sum * divisor).round() / divisor;
        if !snapped.is_finite() || (snapped - b.sum).abs() > sum_tolerance(b) {
            return raw;
        }
        out.push(snapped);
    }
    out
}

/// The float summation error bound of a bucket's sum (generous: `count² · max|v| · 2⁻⁵²`).
pub fn sum_tolerance(b: &Bucket) -> f64 {
    let n = b.count as f64;
    n * n * b.min.abs().max(b.max.abs()) * f64::EPSILON
}

/// The smallest `k` for which every value is exactly `(m as f64) / 10^k` (the chunk codec's
/// test, so that the snapped sums take its decimal mode).
fn decimal_scale(values: impl Iterator<Item = f64> + Clone) -> Option<usize> {
    (0..POW10.len()).find(|&k| {
        let divisor = POW10[k];
        values.clone().all(|v| {
            let scaled = v * divisor;
            if !scaled.is_finite() || scaled.abs() > 9_007_199_254_740_992.0 {
                return false;
            }
            ((scaled.round() as i64) as f64 / divisor).to_bits() == v.to_bits()
        })
    })
}

fn write_varint(out: &mut Vec<u8>, mut x: u64) {
    while x >= 0x80 {
        out.push((x as u8) | 0x80);
        x >>= 7;
    }
    out.push(x as u8);
}

fn read_varint(bytes: &[u8], pos: &mut usize) -> Result<u64, RollupError> {
    let mut x = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *bytes.get(*pos).ok_or(RollupError::Truncated)?;
        *pos += 1;
        x |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(x);
        }
    }
    Err(RollupError::Corrupt("varint too long"))
}

/// The stored series a step is served from: the coarsest whose bucket divides the step.
pub fn series_for_step(step_ms: i64) -> Series {
    if step_ms % HOUR_MS == 0 {
        Series::Hour
    } else if step_ms % MINUTE_MS == 0 {
        Series::Minute
    } else {
        Series::Raw
    }
}

/// Removes `covered` (sorted, disjoint `[a, b)` intervals) from `[from, end)`.
fn uncovered(from: i64, end: i64, covered: &[(i64, i64)]) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    let mut at = from;
    for &(a, b) in covered {
        if a > at {
            out.push((at, a.min(end)));
        }
        at = at.max(b);
        if at >= end {
            break;
        }
    }
    if at < end {
        out.push((at, end));
    }
    out.retain(|(a, b)| a < b);
    out
}

impl Historian {
    /// Buckets of `step` (aligned to the Unix epoch, UTC) of the samples of `point` within
    /// `[from, to]`, in start order; empty buckets are left out.
    ///
    /// Hours the compactor has rolled up are read from the coarsest rollup whose width divides
    /// the step (1 h rollups for whole hours, 1 min for whole minutes); the rest of the range —
    /// its unaligned edges, the hours not compacted yet, the open buffers — is bucketed from
    /// raw samples, and partial buckets meeting at a boundary are merged.
    pub async fn history_step(
        &self,
        point: &PointId,
        from: Timestamp,
        to: Timestamp,
        step: Duration,
    ) -> Result<Vec<Bucket>, StoreError> {
        let step_ms = i64::try_from(step.as_millis()).unwrap_or(i64::MAX);
        if step_ms <= 0 {
            return Err(StoreError::Invalid("the step must be at least 1 ms".into()));
        }
        if from > to {
            return Ok(Vec::new());
        }
        let end = to.0.saturating_add(1);
        let mut parts = Vec::new();
        let mut covered = Vec::new();
        let series = series_for_step(step_ms);
        if let Some(width) = series.bucket() {
            let width = width.as_millis() as i64;
            let (a, b) = (ceil(from.0, width), floor(end, width));
            if a < b {
                let (rolled, cover) = self.rollups(point, series, a, b).await?;
                parts.extend(rebucket(&rolled, step_ms));
                covered = cover;
            }
        }
        for (a, b) in uncovered(from.0, end, &covered) {
            let samples = self.history(point, Timestamp(a), Timestamp(b - 1)).await?;
            parts.extend(bucketize(&samples, step_ms));
        }
        Ok(coalesce(parts))
    }

    /// The stored rollup buckets of `series` starting within `[a, b)` (aligned to the series'
    /// width), and the intervals they cover (sorted, merged).
    async fn rollups(
        &self,
        point: &PointId,
        series: Series,
        a: i64,
        b: i64,
    ) -> Result<(Vec<Bucket>, Vec<(i64, i64)>), StoreError> {
        // Minute chunks hold an hour and are keyed by it; hour chunks hold a UTC day.
        let period = if series == Series::Hour {
            DAY_MS
        } else {
            HOUR_MS
        };
        let chunks = self
            .store
            .chunks(point, series, Timestamp(floor(a, period)), Timestamp(b - 1))
            .await?;
        let mut buckets = Vec::new();
        let mut covered: Vec<(i64, i64)> = Vec::new();
        let mut cover = |lo: i64, hi: i64| match covered.last_mut() {
            Some(last) if last.1 >= lo => last.1 = last.1.max(hi),
            _ => covered.push((lo, hi)),
        };
        for (key, bytes) in chunks {
            if key.0 < floor(a, period) {
                continue;
            }
            let decoded = decode(&bytes).map_err(|e| {
                StoreError::Corrupt(format!(
                    "{} rollup of {point} at {}: {e}",
                    series.as_str(),
                    key.0
                ))
            })?;
            match series {
                // A minute chunk is the whole rolled-up hour, buckets or not.
                Series::Minute => {
                    let (lo, hi) = (key.0.max(a), key.0.saturating_add(HOUR_MS).min(b));
                    if lo < hi {
                        cover(lo, hi);
                    }
                }
                // A day chunk covers the hours it has buckets for.
                _ => {
                    for bucket in decoded.iter().filter(|x| (a..b).contains(&x.start)) {
                        cover(bucket.start, bucket.start + HOUR_MS);
                    }
                }
            }
            buckets.extend(decoded.into_iter().filter(|x| (a..b).contains(&x.start)));
        }
        buckets.sort_by_key(|x| x.start);
        buckets.dedup_by_key(|x| x.start);
        Ok((buckets, covered))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hour_of_level(start: i64) -> Vec<(i64, f64)> {
        // 2 s samples, 1 mm steps, a few ms of jitter
        (0..1800)
            .map(|i| {
                let jitter = [0, 3, -2, 0, 5][i % 5];
                let v = 2500 + ((i as f64 / 40.0).sin() * 30.0) as i64;
                (start + i as i64 * 2000 + jitter, v as f64 / 1000.0)
            })
            .collect()
    }

    #[test]
    fn buckets_aggregate_and_merge_like_the_samples_they_hold() {
        let samples = [(0, 1.0), (10_000, 3.0), (59_999, 2.0), (60_000, 5.0)];
        let b = bucketize(&samples, MINUTE_MS);
        assert_eq!(b.len(), 2);
        assert_eq!(
            (b[0].min, b[0].max, b[0].count, b[0].mean(), b[0].last()),
            (1.0, 3.0, 3, 2.0, 2.0)
        );
        assert_eq!((b[1].start, b[1].last_t), (60_000, 60_000));
        // halves bucketed apart and merged equal the whole
        let left = bucketize(&samples[..2], MINUTE_MS);
        let right = bucketize(&samples[2..], MINUTE_MS);
        assert_eq!(merge(&left, &right), b);
        assert_eq!(merge(&right, &left), b);
        assert_eq!(rebucket(&b, HOUR_MS)[0].count, 4);
        assert_eq!(rebucket(&b, HOUR_MS)[0].last_v, 5.0);
        // negative times bucket downwards
        assert_eq!(floor(-1, MINUTE_MS), -MINUTE_MS);
        assert_eq!(ceil(1, MINUTE_MS), MINUTE_MS);
        assert_eq!(ceil(MINUTE_MS, MINUTE_MS), MINUTE_MS);
    }

    #[test]
    fn the_encoding_is_stable() {
        let buckets = bucketize(
            &[(0, 2.5), (2_000, 2.501), (60_000, 2.502), (121_000, 2.499)],
            MINUTE_MS,
        );
        let bytes = encode(&buckets).unwrap();
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        // A changed snapshot is a reviewed change of the stored format.
        assert_eq!(hex, SNAPSHOT, "{hex}");
        let back = decode(&bytes).unwrap();
        // 2.5 + 2.501 accumulates to 5.0009999999999994: stored as the exact decimal sum
        assert_eq!(buckets[0].sum, 2.5 + 2.501);
        assert_eq!(back[0].sum, 5.001);
        assert_eq!(back[1..], buckets[1..]);
        assert_eq!(encode(&back).unwrap(), bytes);
    }

    const SNAPSHOT: &str = "01030e0303000004f000000000000ea6080903030003882780f92009030300038a2780e68009030300038a2780e6800d02030000a01f80f7c18380fa000b02030003924e80f7b1ead0";
    /// The same buckets as written before chunk format 3 (every column in format 2).
    const SNAPSHOT_FORMAT_2: &str = "01030f0203000004f000000000000ea60bc00902030003882780c4b409020300038a2780c2b409020300038a2780c2b40d02030000a01f80f7c18380fa000b02030003924e80f7b1ead0";

    #[test]
    fn rollups_written_before_chunk_format_3_still_decode() {
        let old: Vec<u8> = (0..SNAPSHOT_FORMAT_2.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&SNAPSHOT_FORMAT_2[i..i + 2], 16).unwrap())
            .collect();
        let new: Vec<u8> = (0..SNAPSHOT.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&SNAPSHOT[i..i + 2], 16).unwrap())
            .collect();
        assert_eq!(decode(&old).unwrap(), decode(&new).unwrap());
    }

    #[test]
    fn an_hour_of_minute_buckets_is_small() {
        let samples = hour_of_level(1_767_571_200_000);
        let minutes = bucketize(&samples, MINUTE_MS);
        assert_eq!(minutes.len(), 60);
        let bytes = encode(&minutes).unwrap();
        let back = decode(&bytes).unwrap();
        for (a, b) in minutes.iter().zip(&back) {
            assert_eq!(
                (a.start, a.min, a.max, a.count, a.last_t, a.last_v),
                (b.start, b.min, b.max, b.count, b.last_t, b.last_v)
            );
            assert!((a.sum - b.sum).abs() <= sum_tolerance(a), "{a:?} {b:?}");
        }
        let raw = chunk::encode(&samples).unwrap().len();
        println!(
            "60 minute buckets: {} bytes ({:.2} per bucket, {:.3} per raw sample; raw chunk {raw} bytes)",
            bytes.len(),
            bytes.len() as f64 / 60.0,
            bytes.len() as f64 / 1800.0
        );
        assert!(bytes.len() < 60 * 8, "{} bytes", bytes.len());
    }

    #[test]
    fn corrupt_rollups_are_refused() {
        let bytes = encode(&bucketize(&hour_of_level(0), MINUTE_MS)).unwrap();
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut extra = bytes.clone();
        extra.push(0);
        assert!(decode(&extra).is_err());
        assert!(encode(&[Bucket::of(5, 5, 1.0), Bucket::of(5, 6, 1.0)]).is_err());
    }

    #[test]
    fn uncovered_ranges_are_what_the_rollups_leave() {
        assert_eq!(uncovered(0, 100, &[]), vec![(0, 100)]);
        assert_eq!(uncovered(0, 100, &[(0, 100)]), vec![]);
        assert_eq!(
            uncovered(0, 100, &[(10, 20), (20, 30), (50, 60)]),
            vec![(0, 10), (30, 50), (60, 100)]
        );
        assert_eq!(uncovered(15, 55, &[(10, 20), (50, 60)]), vec![(20, 50)]);
        assert_eq!(series_for_step(HOUR_MS * 24), Series::Hour);
        assert_eq!(series_for_step(90 * MINUTE_MS), Series::Minute);
        assert_eq!(series_for_step(30_000), Series::Raw);
    }

    fn value() -> impl Strategy<Value = f64> {
        prop_oneof![
            (-100_000i64..100_000).prop_map(|m| m as f64 / 1000.0),
            (0i64..2).prop_map(|m| m as f64),
            any::<f64>().prop_filter("finite", |v| v.is_finite()),
        ]
    }

    proptest! {
        #[test]
        fn bucket_lists_round_trip(
            samples in prop::collection::vec((1i64..5_000, value()), 1..400),
            t0 in -1_000_000_000i64..2_000_000_000_000,
            width in prop_oneof![Just(MINUTE_MS), Just(HOUR_MS)],
        ) {
            let mut t = t0;
            let series: Vec<(i64, f64)> = samples.into_iter().map(|(d, v)| { t += d * 37; (t, v) }).collect();
            let buckets = bucketize(&series, width);
            let back = decode(&encode(&buckets).unwrap()).unwrap();
            prop_assert_eq!(back.len(), buckets.len());
            for (a, b) in buckets.iter().zip(&back) {
                prop_assert_eq!(a.start, b.start);
                prop_assert_eq!(a.count, b.count);
                prop_assert_eq!(a.last_t, b.last_t);
                prop_assert_eq!(a.min.to_bits(), b.min.to_bits());
                prop_assert_eq!(a.max.to_bits(), b.max.to_bits());
                prop_assert_eq!(a.last_v.to_bits(), b.last_v.to_bits());
                prop_assert!((a.sum - b.sum).abs() <= sum_tolerance(a) || a.sum.to_bits() == b.sum.to_bits());
            }
        }

        #[test]
        fn merging_partials_equals_bucketing_the_whole(
            samples in prop::collection::vec((1i64..20_000, -1000i64..1000), 1..300),
            cut in 0usize..300,
        ) {
            let mut t = 0;
            let series: Vec<(i64, f64)> = samples.into_iter().map(|(d, v)| { t += d; (t, v as f64) }).collect();
            let cut = cut.min(series.len());
            let whole = bucketize(&series, MINUTE_MS);
            let merged = merge(&bucketize(&series[..cut], MINUTE_MS), &bucketize(&series[cut..], MINUTE_MS));
            prop_assert_eq!(whole, merged);
        }

        #[test]
        fn decoding_garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode(&bytes);
        }
    }
}
