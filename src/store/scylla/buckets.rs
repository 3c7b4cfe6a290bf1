//! Time buckets: how the ScyllaDB backend splits a point's (or a stream's) history into
//! partitions of bounded size. Pure arithmetic, unit-tested without a cluster.
//!
//! A bucket is named by its first millisecond (`t.div_euclid(width) * width`), so buckets are
//! fixed-width intervals aligned to the Unix epoch (not calendar months or years: no time zone,
//! no leap-year rule, the same answer on every node). The widths are part of the stored data's
//! layout: changing one needs a migration that rewrites the tables (see `schemas/cql/README.md`).
//!
//! Sizing (ARCHITECTURE.md, "The ScyllaDB backend", has the arithmetic): a raw day of one point is
//! ~50 KB before compaction and ~25 KB after; a 30-day bucket of 1-minute rollups and a 365-day
//! bucket of 1-hour rollups stay well under a megabyte. ScyllaDB is comfortable up to tens of
//! megabytes per partition.

use crate::store::Series;

const DAY_MS: i64 = 86_400_000;

/// Where a time-bucketed row family lives, and how wide its partitions are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    Chunks(Series),
    Events,
}

impl Family {
    /// The family's name in the `partition_index` table (stable: it is stored).
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Chunks(Series::Raw) => "chunks_raw",
            Family::Chunks(Series::Minute) => "chunks_1m",
            Family::Chunks(Series::Hour) => "chunks_1h",
            Family::Events => "events",
        }
    }

    /// The width of one partition, in milliseconds.
    pub fn width_ms(self) -> i64 {
        match self {
            // ≤ 720 two-minute chunks (later 24 hourly ones) per point and day.
            Family::Chunks(Series::Raw) => DAY_MS,
            // 1-minute rollups: ~720 hourly chunks per 30 days.
            Family::Chunks(Series::Minute) => 30 * DAY_MS,
            // 1-hour rollups: a year per partition.
            Family::Chunks(Series::Hour) => 365 * DAY_MS,
            // Alarm and audit events of one stream and day.
            Family::Events => DAY_MS,
        }
    }

    /// The bucket holding `t` (its first millisecond).
    pub fn bucket(self, t: i64) -> i64 {
        let w = self.width_ms();
        t.div_euclid(w).saturating_mul(w)
    }

    /// The last millisecond of the bucket starting at `bucket`.
    pub fn bucket_end(self, bucket: i64) -> i64 {
        bucket.saturating_add(self.width_ms() - 1)
    }
}

/// How a bucket is read for the inclusive range `[lo, hi]`: whole when the range covers it
/// (no clustering restriction: the cheapest read, and the one every CQL peer gets right),
/// otherwise restricted to the range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BucketRead {
    Whole(i64),
    Range { bucket: i64, lo: i64, hi: i64 },
}

/// The reads that cover `[lo, hi]` given the non-empty buckets `known` (from the partition
/// index, any order, duplicates allowed), in time order. Empty when `lo > hi`.
pub fn plan_reads(family: Family, known: &[i64], lo: i64, hi: i64) -> Vec<BucketRead> {
    if lo > hi {
        return Vec::new();
    }
    let first = family.bucket(lo);
    let last = family.bucket(hi);
    let mut buckets: Vec<i64> = known
        .iter()
        .copied()
        .filter(|b| (first..=last).contains(b))
        .collect();
    buckets.sort_unstable();
    buckets.dedup();
    buckets
        .into_iter()
        .map(|b| {
            if b >= lo && family.bucket_end(b) <= hi {
                BucketRead::Whole(b)
            } else {
                BucketRead::Range { bucket: b, lo, hi }
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const RAW: Family = Family::Chunks(Series::Raw);

    #[test]
    fn buckets_are_epoch_aligned_and_floor_negative_times() {
        assert_eq!(RAW.bucket(0), 0);
        assert_eq!(RAW.bucket(DAY_MS - 1), 0);
        assert_eq!(RAW.bucket(DAY_MS), DAY_MS);
        assert_eq!(RAW.bucket(-1), -DAY_MS);
        assert_eq!(RAW.bucket_end(0), DAY_MS - 1);
        assert_eq!(Family::Events.bucket(5 * DAY_MS + 7), 5 * DAY_MS);
        let hour = Family::Chunks(Series::Hour);
        assert_eq!(hour.bucket(400 * DAY_MS), 365 * DAY_MS);
    }

    #[test]
    fn extreme_times_do_not_overflow() {
        for family in [
            RAW,
            Family::Chunks(Series::Minute),
            Family::Chunks(Series::Hour),
            Family::Events,
        ] {
            assert_eq!(family.bucket_end(family.bucket(i64::MAX)), i64::MAX);
            assert_eq!(family.bucket(i64::MIN), i64::MIN);
        }
    }

    #[test]
    fn reads_cover_only_known_buckets_in_the_range_in_order() {
        let known = [3 * DAY_MS, 0, DAY_MS, 9 * DAY_MS, DAY_MS];
        let reads = plan_reads(RAW, &known, 0, 4 * DAY_MS - 1);
        assert_eq!(
            reads,
            vec![
                BucketRead::Whole(0),
                BucketRead::Whole(DAY_MS),
                BucketRead::Whole(3 * DAY_MS)
            ]
        );
    }

    #[test]
    fn partly_covered_buckets_are_read_by_range() {
        let known = [0, DAY_MS];
        let reads = plan_reads(RAW, &known, 10, DAY_MS + 5);
        assert_eq!(
            reads,
            vec![
                BucketRead::Range {
                    bucket: 0,
                    lo: 10,
                    hi: DAY_MS + 5
                },
                BucketRead::Range {
                    bucket: DAY_MS,
                    lo: 10,
                    hi: DAY_MS + 5
                }
            ]
        );
        assert!(plan_reads(RAW, &known, 5, 4).is_empty());
    }
}
