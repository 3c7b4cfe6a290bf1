//! The historian's in-memory samples, shared by the writer thread (the only one that changes
//! them) and queries: durable samples not yet in the store, by device and point index.
//!
//! Devices are interned once (device id → slot, hashed with foldhash: the id is hashed once
//! per handed-over batch, never per sample), and each slot holds one `Vec<(t, v)>` per point of
//! its [`DeviceKind`](cistern_schemas::DeviceKind) — so a sample costs a push, not a point-id
//! string and a SipHash. Point ids (`{device}.{point}`) are only built when sealing (once per
//! point per seal) and by queries.
//!
//! Each slot has two sets of buffers: `open` (what flushes add to) and `sealing` (what the seal
//! round in progress is writing to the store; see `writer.rs`). Samples leave `sealing` only
//! once the store has them, so a query that reads these buffers before the store misses
//! nothing.

use cistern_schemas::{DeviceId, PointId};
use std::collections::HashMap;

/// A sample handed over with its device: the point's index in the device kind's points, t
/// (ms) and the value.
pub(super) type IndexedSample = (u16, i64, f64);

/// A fast, non-cryptographic hasher (foldhash) for keys this process makes itself (device ids
/// from its own inventory and field data that parsed into ids), where SipHash's DoS resistance
/// buys nothing.
pub(super) type FastBuildHasher = foldhash::fast::FixedState;

/// One device's samples in memory, by point index.
#[derive(Debug)]
pub(super) struct DeviceBuffers {
    pub device: DeviceId,
    /// Durable samples not yet sealed (in arrival order).
    pub open: Vec<Vec<(i64, f64)>>,
    /// Samples of the seal round in progress, until the store has them.
    pub sealing: Vec<Vec<(i64, f64)>>,
}

impl DeviceBuffers {
    fn new(device: DeviceId) -> Self {
        let points = device.unit.kind().points().len();
        Self {
            device,
            open: vec![Vec::new(); points],
            sealing: vec![Vec::new(); points],
        }
    }
}

/// Every device's samples in memory (see the module doc).
#[derive(Debug, Default)]
pub(super) struct Buffers {
    slots: HashMap<DeviceId, u32, FastBuildHasher>,
    pub devices: Vec<DeviceBuffers>,
}

impl Buffers {
    /// The slot of `device`, interned on first sight.
    pub fn slot(&mut self, device: &DeviceId) -> usize {
        if let Some(&slot) = self.slots.get(device) {
            return slot as usize;
        }
        let slot = self.devices.len();
        self.devices.push(DeviceBuffers::new(device.clone()));
        self.slots.insert(device.clone(), slot as u32);
        slot
    }

    /// Adds samples of `device` to its open buffers; returns how many it took (an index
    /// outside the device kind's points has no buffer and is dropped, as `accept` already does).
    pub fn add_open(&mut self, device: &DeviceId, samples: &[IndexedSample]) -> usize {
        if samples.is_empty() {
            return 0;
        }
        let slot = self.slot(device);
        let open = &mut self.devices[slot].open;
        let mut took = 0;
        for &(index, t, v) in samples {
            if let Some(points) = open.get_mut(usize::from(index)) {
                points.push((t, v));
                took += 1;
            }
        }
        took
    }

    /// The samples of `point` in memory (open and sealing) within `[from, to]`, unsorted.
    pub fn samples_of(&self, point: &PointId, from: i64, to: i64) -> Vec<(i64, f64)> {
        let Some(&slot) = self.slots.get(&point.device) else {
            return Vec::new();
        };
        let Some(index) = point.device.unit.kind().point_index(&point.name) else {
            return Vec::new();
        };
        let Some(d) = self.devices.get(slot as usize) else {
            return Vec::new();
        };
        let in_range = |s: &&(i64, f64)| (from..=to).contains(&s.0);
        let mut out = Vec::new();
        for set in [&d.sealing, &d.open] {
            if let Some(samples) = set.get(index) {
                out.extend(samples.iter().filter(in_range).copied());
            }
        }
        out
    }

    /// Starts a seal round: every device's open samples become its sealing ones (which must
    /// be empty: the previous round is over). O(devices): buffers are swapped, not copied.
    pub fn start_round(&mut self) {
        for d in &mut self.devices {
            debug_assert!(d.sealing.iter().all(Vec::is_empty));
            std::mem::swap(&mut d.open, &mut d.sealing);
        }
    }

    /// Drops every open sample from memory (the spill: they stay in the write-ahead). The
    /// round in progress keeps its samples.
    pub fn drop_open(&mut self) {
        for d in &mut self.devices {
            for points in &mut d.open {
                *points = Vec::new();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    #[test]
    fn the_hasher_tells_devices_apart_and_buffers_find_their_points() {
        let build = FastBuildHasher::default();
        let a: DeviceId = "XM-0001/T1".parse().unwrap();
        let b: DeviceId = "XM-0001/T2".parse().unwrap();
        let c: DeviceId = "XM-0002/T1".parse().unwrap();
        let hashes = [&a, &b, &c].map(|d| build.hash_one(d));
        assert_ne!(hashes[0], hashes[1]);
        assert_ne!(hashes[0], hashes[2]);
        let again: DeviceId = "XM-0001/T1".parse().unwrap();
        assert_eq!(build.hash_one(&a), build.hash_one(&again));

        let mut buffers = Buffers::default();
        let level = a.unit.kind().point_index("level").unwrap() as u16;
        assert_eq!(
            buffers.add_open(&a, &[(level, 5, 1.0), (level, 7, 2.0), (999, 7, 3.0)]),
            2
        );
        buffers.add_open(&b, &[(level, 6, 9.0)]);
        assert_eq!(buffers.slot(&a), 0);
        assert_eq!(buffers.slot(&b), 1);
        let point = a.point("level");
        assert_eq!(buffers.samples_of(&point, 0, 6), [(5, 1.0)]);
        buffers.start_round();
        buffers.add_open(&a, &[(level, 9, 4.0)]);
        let mut all = buffers.samples_of(&point, 0, 100);
        all.sort_by_key(|s| s.0);
        assert_eq!(all, [(5, 1.0), (7, 2.0), (9, 4.0)]);
        buffers.drop_open();
        assert_eq!(buffers.samples_of(&point, 0, 100).len(), 2);
        assert!(buffers.samples_of(&c.point("level"), 0, 100).is_empty());
    }
}
