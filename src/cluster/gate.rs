//! May this node act for a shard right now? Asked on every acknowledgement, checkpoint write,
//! field write and notification of a shard, so it is lock-free: an epoch per shard (0: not
//! ours) and one deadline for the whole node, past which it acts for nothing.
//!
//! The deadline is self-fencing: it is moved on only by an answered keep-alive, to the time
//! that keep-alive was *sent* plus the lease's TTL minus a margin. etcd renewed the lease no
//! earlier than the send, so it cannot expire the lease (and let another node claim the
//! shards) before the deadline has passed here. Clock skew between nodes does not enter: the
//! deadline is on this node's monotonic clock, measured from its own send.

use cistern_actors::registry::SHARDS;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A shard claim's fencing token: the etcd revision that created the owner key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct Epoch(pub i64);

/// The node's permission to act, per shard.
#[derive(Debug)]
pub struct Gate {
    base: Instant,
    /// Nanoseconds after `base` until which the node may act; 0: never.
    deadline: AtomicU64,
    /// When the node last stopped acting (the deadline it reached, or the moment the gate was
    /// shut before it), in nanoseconds after `base`.
    ended: AtomicU64,
    epochs: Vec<AtomicI64>,
}

impl Default for Gate {
    fn default() -> Self {
        Self {
            base: Instant::now(),
            deadline: AtomicU64::new(0),
            ended: AtomicU64::new(0),
            epochs: (0..SHARDS).map(|_| AtomicI64::new(0)).collect(),
        }
    }
}

impl Gate {
    fn nanos(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.base).as_nanos()).unwrap_or(u64::MAX)
    }

    /// Whether the node may act for `shard` now.
    pub fn acting(&self, shard: u32) -> bool {
        self.epoch(shard).is_some() && self.live()
    }

    /// Whether the node's lease is (still certainly) alive.
    pub fn live(&self) -> bool {
        self.nanos(Instant::now()) < self.deadline.load(Ordering::Acquire)
    }

    /// The epoch of the node's claim on `shard`.
    pub fn epoch(&self, shard: u32) -> Option<Epoch> {
        let e = self.epochs.get(shard as usize)?.load(Ordering::Acquire);
        (e > 0).then_some(Epoch(e))
    }

    pub fn set_epoch(&self, shard: u32, epoch: Option<Epoch>) {
        if let Some(e) = self.epochs.get(shard as usize) {
            e.store(epoch.map_or(0, |e| e.0), Ordering::Release);
        }
    }

    /// Moves the deadline on to `until` (never back: an answer to an older keep-alive must
    /// not shorten what a newer one granted). A deadline that has passed stays passed: a late
    /// answer does not reopen the gate (the node is being fenced; a new lease starts after
    /// [`Gate::close`]).
    pub fn extend(&self, until: Instant) {
        let want = self.nanos(until);
        let _ = self
            .deadline
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |cur| {
                let passed = cur != 0 && cur <= self.nanos(Instant::now());
                (!passed && want > cur).then_some(want)
            });
    }

    /// Closes the gate at once (the lease is known to be gone). The node acted until the
    /// earlier of now and the deadline it had.
    pub fn close(&self) {
        let had = self.deadline.swap(0, Ordering::AcqRel);
        if had > 0 {
            let now = self.nanos(Instant::now());
            self.ended.store(had.min(now), Ordering::Release);
        }
    }

    /// Until when the node acted, for a fencing noted late (the member may notice it seconds
    /// after the gate shut by time): the deadline when it has passed, now when it has not, or
    /// when [`Gate::close`] shut it.
    pub fn acted_until(&self) -> Instant {
        let now = self.nanos(Instant::now());
        let n = match self.deadline.load(Ordering::Acquire) {
            0 => self.ended.load(Ordering::Acquire),
            d => d.min(now),
        };
        self.base + Duration::from_nanos(n)
    }

    /// When the node stops acting unless a keep-alive is answered first (None: not acting).
    pub fn deadline(&self) -> Option<Instant> {
        match self.deadline.load(Ordering::Acquire) {
            0 => None,
            n => Some(self.base + Duration::from_nanos(n)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gate_opens_with_a_claim_and_a_live_lease_and_closes_at_the_deadline() {
        let gate = Gate::default();
        assert!(!gate.acting(3), "no lease, no claim");
        gate.set_epoch(3, Some(Epoch(17)));
        assert!(!gate.acting(3), "a claim without a live lease");
        gate.extend(Instant::now() + Duration::from_secs(60));
        assert!(gate.acting(3));
        assert!(!gate.acting(4), "a shard it does not own");
        // An older answer never shortens the deadline.
        gate.extend(Instant::now());
        assert!(gate.acting(3));
        gate.close();
        assert!(!gate.acting(3));
        gate.extend(Instant::now() + Duration::from_secs(60));
        gate.set_epoch(3, None);
        assert!(!gate.acting(3));
        assert_eq!(gate.epoch(64), None, "out of range");
    }

    #[test]
    fn a_deadline_in_the_past_closes_the_gate_without_anyone_acting() {
        let gate = Gate::default();
        gate.set_epoch(0, Some(Epoch(1)));
        gate.extend(Instant::now() + Duration::from_millis(20));
        assert!(gate.acting(0));
        let deadline = gate.deadline().unwrap_or_else(Instant::now);
        while Instant::now() < deadline {
            std::thread::yield_now();
        }
        assert!(
            !gate.acting(0),
            "past the deadline, the gate is shut by time alone"
        );
    }
}
