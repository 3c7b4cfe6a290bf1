//! Faults timed around the loss, so that the failover bench has alarm transitions to lose.
//!
//! The seeded fault plan (`--faults-per-room-day`) draws faults of 5 to 90 minutes at random
//! over a day: over a run of a minute or two it injects next to nothing, and what it injects
//! raises once and clears long after the run. So a few seconds before it loses a node, the
//! bench asks the load generator (`cistern simulate --faults-stdin`) for short faults in rooms
//! of the node about to be lost, and in as many rooms elsewhere (rooms that no takeover
//! touches: a check of the reference itself). Each room gets one fault whose alarm has a 5 s
//! on-delay — a pump trip (`pump_fault` on the tripped pump) or a mains loss (`mains_loss`,
//! the pumps' own alarms and the outlet pressure's suppressed under it) — the starts spread
//! evenly over the 24 s before the loss, a pump trip lasting 20 to 28 s, a mains loss 32 to
//! 40 s: raises fall from ~19 s before the loss to the end of the takeover, clears from a few
//! seconds before it to ~40 s after — while the old owner still acts, in its last checkpoint's
//! interval, while nobody acts, while the new owner holds its restored rooms' evaluation (5 s),
//! and after.
//!
//! Why faults of 20 s and more: on-delays run on the evaluating node's clock, from the first
//! evaluation that finds the condition true. Samples published while nobody supervises a room
//! wait at the broker, and the new owner evaluates nothing for `RESTART_GRACE` after restoring
//! the room; so an episode that begins in a takeover and outlasts its on-delay by less than
//! that lateness is never raised by the new owner (the first runs, with 8 s faults: a 6 s mains
//! loss that began just after the kill, lost with its clear). Likewise a child alarm whose
//! on-delay ends late may end after its parent has cleared: it is then raised, where the
//! reference has it suppressed, then unsuppressed when the parent clears (seen at 300 rooms
//! with 20 s mains losses: `outlet_pressure_low`, 15 s on-delay from the pressure's fall).
//! Real faults last minutes; the bench's must outlast on-delay (5 s) + takeover (≤ 5 s) +
//! grace (5 s) + the fleet's 2 s sampling, a mains loss moreover its children's 15 s on-delay
//! and the pressure's fall, with a margin — so that what is measured is the failover, not that
//! limit (ARCHITECTURE.md, "The failover benchmark").

use crate::lab::sim::FaultKind;
use cistern_schemas::RoomId;
use std::time::Duration;

/// How long before the loss the bench sends the faults (the first one starts at once).
pub const LEAD: Duration = Duration::from_secs(24);

/// The kinds used, in turn, each with its shortest length (lengths spread 8 s above it, in
/// 2 s steps; see the module doc).
const KINDS: [(FaultKind, Duration); 2] = [
    (FaultKind::PumpTrip, Duration::from_secs(20)),
    (FaultKind::MainsLoss, Duration::from_secs(32)),
];

/// One fault of the burst: the generator's command line (`fault ROOM KIND SECONDS IN_SECONDS`).
#[derive(Clone, Debug, PartialEq)]
pub struct BurstFault {
    pub room: RoomId,
    pub fault: FaultKind,
    /// After the command is sent.
    pub start: Duration,
    pub length: Duration,
}

impl BurstFault {
    pub fn command(&self) -> String {
        format!(
            "fault {} {} {:.1} {:.1}",
            self.room,
            self.fault,
            self.length.as_secs_f64(),
            self.start.as_secs_f64()
        )
    }
}

/// Up to `n` rooms of `lost` (the rooms of the node to be lost) and up to `n` of `others`, each
/// given one fault: starts spread evenly over the [`LEAD`] (the loss comes at its end),
/// pump trips and mains losses in turn.
pub fn plan(lost: &[RoomId], others: &[RoomId], n: usize) -> Vec<BurstFault> {
    let pick = |rooms: &[RoomId]| -> Vec<RoomId> {
        // Evenly over the list, not its first n (rooms are numbered by district).
        let step = (rooms.len() / n.max(1)).max(1);
        rooms.iter().step_by(step).take(n).cloned().collect()
    };
    let mut out = Vec::new();
    for group in [pick(lost), pick(others)] {
        let spacing = LEAD / (group.len().max(1) as u32);
        for (k, room) in group.into_iter().enumerate() {
            let (fault, shortest) = KINDS[k % KINDS.len()];
            out.push(BurstFault {
                room,
                fault,
                start: spacing * k as u32,
                length: shortest + Duration::from_secs(2 * (k as u64 / 2 % 5)),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rooms(from: usize, n: usize) -> Vec<RoomId> {
        (from..from + n)
            .map(|i| RoomId::new(&format!("XM-{i:04}")).unwrap())
            .collect()
    }

    #[test]
    fn a_burst_spreads_faults_over_both_groups_and_the_lead() {
        let lost = rooms(1, 40);
        let others = rooms(100, 5);
        let p = plan(&lost, &others, 8);
        assert_eq!(p.len(), 8 + 5);
        // Every 5th room of the lost node's 40, all 5 others.
        assert_eq!(p[1].room.as_str(), "XM-0006");
        assert_eq!(p[8].room.as_str(), "XM-0100");
        assert!(p.iter().all(|f| f.start < LEAD));
        // Spread evenly: 8 over 24 s, 5 over 24 s.
        assert_eq!(p[1].start, Duration::from_secs(3));
        assert_eq!(p[9].start, Duration::from_millis(4_800));
        // At least on-delay (5 s) + takeover (5 s) + grace (5 s) + sampling (2 s); a mains
        // loss its children's: the pressure's fall (~5 s) + a 15 s on-delay + the same lateness
        // (see the module doc).
        for f in &p {
            let (shortest, longest) = match f.fault {
                FaultKind::MainsLoss => (5 + 15 + 5 + 5 + 2, 40),
                _ => (5 + 5 + 5 + 2, 28),
            };
            let l = f.length.as_secs();
            assert!(l >= shortest && l <= longest, "{f:?}");
        }
        assert_eq!(
            p.iter().filter(|f| f.fault == FaultKind::MainsLoss).count(),
            4 + 2
        );
        assert_eq!(p[3].command(), "fault XM-0016 mains_loss 34.0 9.0");
        // The generator reads it back as written.
        let now = cistern_schemas::Timestamp(1_000_000);
        let f = crate::lab::simulate::parse_fault_command(&p[3].command(), now).unwrap();
        assert_eq!(f.room.as_str(), "XM-0016");
        assert_eq!(f.fault, FaultKind::MainsLoss);
        assert_eq!(f.length, Duration::from_secs(34));
        assert_eq!(f.at, cistern_schemas::Timestamp(1_009_000));
        assert!(plan(&[], &others, 0).is_empty());
    }
}
