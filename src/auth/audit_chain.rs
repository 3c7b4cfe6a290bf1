//! The audit log's hash chain: what makes a removed, altered, inserted or reordered entry
//! visible (issue 24 item 5).
//!
//! Every stored entry carries `seq` (its position in this node's log: 0, 1, 2, … with no gap),
//! `prev` (the previous entry's `hash`, [`GENESIS`] for the first) and `hash` =
//! SHA-256(`prev` ‖ the entry's canonical bytes). The canonical bytes are a JSON array of the
//! entry's fields in a fixed order ([`canonical`]), so an entry hashes the same whatever
//! serde does with the stored body (field order, defaults).
//!
//! [`Verifier`] walks entries in store order and reports the first break and how many there
//! are. Pure: no I/O, no clock; the log ([`super::audit`]) and `cistern audit verify` feed it.
//!
//! Limits, on purpose written down: someone who can rewrite the whole store and recompute
//! every hash from the altered entry on is caught only by a copy kept elsewhere (forwarding,
//! exports); deleting the newest entries is caught only against the chain head the node keeps
//! beside the log (a state record an attacker could rewrite too).

use super::audit::AuditEntry;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// The `prev` of the first entry of a chain.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The action of the entry that records a retention pruning (the anchor a pruned chain starts
/// from).
pub const PRUNED_ACTION: &str = "audit_pruned";

/// The bytes that are hashed for `e` (everything but `prev` and `hash`, in a fixed order).
pub fn canonical(e: &AuditEntry) -> Vec<u8> {
    let fields = (
        e.seq.unwrap_or(0),
        e.at_ms,
        &e.source,
        &e.user,
        &e.category,
        &e.action,
        &e.target,
        &e.detail,
        &e.result,
        e.ok,
    );
    // A tuple of plain values cannot fail to encode.
    serde_json::to_vec(&fields).unwrap_or_default()
}

/// SHA-256(`prev` ‖ [`canonical`]`(e)`), lower-case hex.
pub fn hash_of(prev: &str, e: &AuditEntry) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(prev.as_bytes());
    ctx.update(&canonical(e));
    hex(ctx.finish().as_ref())
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Where a chain stands: the last entry appended (what the next one links to).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainHead {
    /// The next entry's `seq`.
    pub next_seq: u64,
    /// The last entry's `hash` ([`GENESIS`] before the first).
    pub hash: String,
    /// The store key (`t`, ms) of the last entry: the next one is stored after it.
    pub t: i64,
}

impl Default for ChainHead {
    fn default() -> Self {
        Self {
            next_seq: 0,
            hash: GENESIS.to_owned(),
            t: i64::MIN,
        }
    }
}

impl ChainHead {
    /// Puts `e` on the chain: sets its `seq`, `prev` and `hash`, and returns its store key
    /// (strictly after the previous entry's, and not before `e.at_ms`: a clock stepping back
    /// cannot reorder the store).
    pub fn link(&mut self, e: &mut AuditEntry) -> i64 {
        e.seq = Some(self.next_seq);
        e.prev = self.hash.clone();
        e.hash = hash_of(&e.prev, e);
        let t = e.at_ms.max(self.t.saturating_add(1));
        self.next_seq += 1;
        self.hash = e.hash.clone();
        self.t = t;
        t
    }
}

/// What a pruning removed: the detail of an [`PRUNED_ACTION`] entry (JSON).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PruneAnchor {
    /// Entries removed.
    pub removed: u64,
    /// They were stored before this time (ms since the Unix epoch).
    pub before_ms: i64,
    /// The first kept chained entry's `seq` and `prev` (the last removed one's hash): where
    /// the kept chain may start.
    pub first_seq: u64,
    pub first_prev: String,
}

/// How a chain is broken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakKind {
    /// An entry's content does not match its hash (edited).
    Altered,
    /// One or more positions are missing (deleted).
    Missing,
    /// The entry does not link to the one before it (replaced, or the one before was).
    Unlinked,
    /// A position seen again, or out of order (inserted or reordered).
    OutOfOrder,
    /// An entry without a chain position after the chain started (inserted).
    Unchained,
    /// A stored entry that is not an audit entry at all.
    Unreadable,
    /// The chain starts after position 0 and no pruning record says why (its start deleted).
    StartMissing,
    /// The node's recorded chain head is past the last entry (the newest entries deleted).
    TailMissing,
}

impl BreakKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BreakKind::Altered => "altered",
            BreakKind::Missing => "missing",
            BreakKind::Unlinked => "unlinked",
            BreakKind::OutOfOrder => "out_of_order",
            BreakKind::Unchained => "unchained",
            BreakKind::Unreadable => "unreadable",
            BreakKind::StartMissing => "start_missing",
            BreakKind::TailMissing => "tail_missing",
        }
    }
}

/// One break: where and what. The message names positions and times only, never an entry's
/// content.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainBreak {
    pub kind: BreakKind,
    /// The position the break was found at (the entry's own, or the one expected).
    pub seq: Option<u64>,
    /// The store time of the entry it was found at (ms).
    pub at_ms: Option<i64>,
    pub message: String,
}

/// The verdict of a walk over a chain.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyReport {
    /// Whether no break was found.
    pub intact: bool,
    /// Chained entries checked.
    pub checked: u64,
    /// Entries from before the chain existed (written by an older version), not checkable.
    pub unchained: u64,
    /// The first and last positions seen.
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
    /// Breaks found (after one, the walk links on from the entry it found).
    pub breaks: u64,
    /// The first break.
    pub first_break: Option<ChainBreak>,
}

impl std::fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let range = match (self.first_seq, self.last_seq) {
            (Some(a), Some(b)) => format!(" (positions {a}–{b})"),
            _ => String::new(),
        };
        let legacy = if self.unchained > 0 {
            format!(
                "; {} older entries from before the chain were not checked",
                self.unchained
            )
        } else {
            String::new()
        };
        match &self.first_break {
            None => write!(
                f,
                "audit chain intact: {} entries checked{range}{legacy}",
                self.checked
            ),
            Some(b) => write!(
                f,
                "audit chain BROKEN: {} break(s) in {} entries checked{range}; first: {}{legacy}",
                self.breaks, self.checked, b.message
            ),
        }
    }
}

fn when(t: i64) -> String {
    let at =
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(t).unwrap_or(0));
    humantime::format_rfc3339_millis(at).to_string()
}

/// Walks a chain entry by entry (in store order), then [`Verifier::finish`].
#[derive(Debug, Default)]
pub struct Verifier {
    report: VerifyReport,
    /// The last chained entry: (seq, hash).
    last: Option<(u64, String)>,
    /// The chain's first entry, when it is not position 0: (seq, prev, t) to find an anchor
    /// for.
    start: Option<(u64, String, i64)>,
    anchors: Vec<PruneAnchor>,
    /// The entry a recorded chain head names, expected first: (seq, hash).
    expect: Option<(u64, String)>,
}

impl Verifier {
    pub fn new() -> Self {
        Self::default()
    }

    /// A walk that starts right after the entry `seq` whose hash is `hash` (already checked).
    pub fn after(seq: u64, hash: &str) -> Self {
        Self {
            last: Some((seq, hash.to_owned())),
            ..Self::default()
        }
    }

    /// A walk from a recorded chain head: the first entry is expected to be the head's own
    /// (with the hash recorded for it), then the ones appended after it.
    pub fn resume(head: &ChainHead) -> Self {
        Self {
            expect: head
                .next_seq
                .checked_sub(1)
                .map(|seq| (seq, head.hash.clone())),
            ..Self::default()
        }
    }

    fn broken(&mut self, kind: BreakKind, seq: Option<u64>, t: Option<i64>, message: String) {
        self.report.breaks += 1;
        if self.report.first_break.is_none() {
            self.report.first_break = Some(ChainBreak {
                kind,
                seq,
                at_ms: t,
                message,
            });
        }
    }

    /// A stored body that does not decode (`t`: its store time).
    pub fn unreadable(&mut self, t: i64) {
        self.broken(
            BreakKind::Unreadable,
            None,
            Some(t),
            format!(
                "the entry stored at {} is not a readable audit entry",
                when(t)
            ),
        );
    }

    /// The next entry in store order (`t`: its store time).
    pub fn push(&mut self, t: i64, e: &AuditEntry) {
        let Some(seq) = e.seq else {
            if self.last.is_some() {
                self.broken(
                    BreakKind::Unchained,
                    None,
                    Some(t),
                    format!(
                        "an entry without a chain position was found at {}, after the chain started (inserted)",
                        when(t)
                    ),
                );
            } else {
                self.report.unchained += 1;
            }
            return;
        };
        self.report.checked += 1;
        if let Some((s, h)) = self.expect.take() {
            if seq == s {
                if e.hash != h {
                    self.broken(
                        BreakKind::Altered,
                        Some(seq),
                        Some(t),
                        format!("entry {seq} (stored at {}) does not match the hash the node recorded for it", when(t)),
                    );
                }
            } else if seq > s {
                self.broken(
                    BreakKind::Missing,
                    Some(s),
                    Some(t),
                    format!("entry {s}, the newest the node recorded, is missing: deleted"),
                );
            }
            self.last = Some((s, h));
            if seq == s {
                self.report.first_seq.get_or_insert(seq);
                self.report.last_seq = Some(seq);
                if hash_of(&e.prev, e) != e.hash {
                    self.broken(
                        BreakKind::Altered,
                        Some(seq),
                        Some(t),
                        format!("entry {seq} (stored at {}) was altered: its content does not match its hash", when(t)),
                    );
                }
                self.last = Some((seq, e.hash.clone()));
                return;
            }
        }
        self.report.first_seq.get_or_insert(seq);
        self.report.last_seq = Some(seq);
        if e.action == PRUNED_ACTION {
            if let Ok(a) = serde_json::from_str::<PruneAnchor>(&e.detail) {
                self.anchors.push(a);
            }
        }
        if hash_of(&e.prev, e) != e.hash {
            self.broken(
                BreakKind::Altered,
                Some(seq),
                Some(t),
                format!(
                    "entry {seq} (stored at {}) was altered: its content does not match its hash",
                    when(t)
                ),
            );
        }
        match self.last.clone() {
            None => {
                if seq == 0 {
                    if e.prev != GENESIS {
                        self.broken(
                            BreakKind::Unlinked,
                            Some(seq),
                            Some(t),
                            "entry 0 does not start a chain".to_owned(),
                        );
                    }
                } else {
                    self.start = Some((seq, e.prev.clone(), t));
                }
            }
            Some((last, last_hash)) => {
                if seq <= last {
                    self.broken(
                        BreakKind::OutOfOrder,
                        Some(seq),
                        Some(t),
                        format!(
                            "entry {seq} (stored at {}) comes after entry {last}: inserted or reordered",
                            when(t)
                        ),
                    );
                } else if seq > last + 1 {
                    let n = seq - last - 1;
                    self.broken(
                        BreakKind::Missing,
                        Some(last + 1),
                        Some(t),
                        format!(
                            "{n} entr{} missing between entry {last} and entry {seq} (stored at {}): deleted",
                            if n == 1 { "y is" } else { "ies are" },
                            when(t)
                        ),
                    );
                } else if e.prev != last_hash {
                    self.broken(
                        BreakKind::Unlinked,
                        Some(seq),
                        Some(t),
                        format!(
                            "entry {seq} (stored at {}) does not link to entry {last}: one of them was replaced",
                            when(t)
                        ),
                    );
                }
            }
        }
        self.last = Some((seq, e.hash.clone()));
    }

    /// The verdict. `head`: the chain head the node recorded (when known), to catch the
    /// newest entries deleted.
    pub fn finish(mut self, head: Option<&ChainHead>) -> VerifyReport {
        if let Some((s, _)) = self.expect.take() {
            self.broken(
                BreakKind::TailMissing,
                Some(s),
                None,
                format!("entry {s}, the newest the node recorded, and any after it are missing: deleted"),
            );
            self.report.intact = false;
            return self.report;
        }
        if let Some((seq, prev, t)) = self.start.take() {
            let anchored = self
                .anchors
                .iter()
                .any(|a| a.first_seq == seq && a.first_prev == prev);
            if !anchored {
                self.broken(
                    BreakKind::StartMissing,
                    Some(seq),
                    Some(t),
                    format!(
                        "the chain starts at entry {seq} and no retention pruning accounts for the entries before it: deleted"
                    ),
                );
            }
        }
        if let Some(h) = head {
            let last = self.last.as_ref().map(|(s, _)| *s);
            let expected = h.next_seq.checked_sub(1);
            if expected.is_some() && last.is_none_or(|l| Some(l) < expected) {
                let from = last.map_or(0, |l| l + 1);
                self.broken(
                    BreakKind::TailMissing,
                    Some(from),
                    None,
                    format!(
                        "the node recorded entries up to {}, the log ends at {}: the newest entries were deleted",
                        h.next_seq - 1,
                        last.map_or_else(|| "nothing".to_owned(), |l| format!("entry {l}"))
                    ),
                );
            } else if let (Some(e), Some((l, hash))) = (expected, &self.last) {
                if *l == e && *hash != h.hash {
                    self.broken(
                        BreakKind::Altered,
                        Some(e),
                        None,
                        format!("entry {e}, the newest, does not match the hash the node recorded for it"),
                    );
                }
            }
        }
        self.report.intact = self.report.breaks == 0;
        self.report
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: usize) -> Vec<(i64, AuditEntry)> {
        let mut head = ChainHead::default();
        (0..n)
            .map(|i| {
                let mut e = AuditEntry::now("op1", "alarm_ack", format!("a{i}"), "", true);
                e.at_ms = 1_000;
                let t = head.link(&mut e);
                (t, e)
            })
            .collect()
    }

    fn verify(entries: &[(i64, AuditEntry)], head: Option<&ChainHead>) -> VerifyReport {
        let mut v = Verifier::new();
        for (t, e) in entries {
            v.push(*t, e);
        }
        v.finish(head)
    }

    #[test]
    fn an_untouched_chain_is_intact_and_store_keys_strictly_increase() {
        let c = chain(5);
        assert!(c.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(c[0].1.prev, GENESIS);
        let r = verify(&c, None);
        assert!(r.intact, "{r}");
        assert_eq!((r.checked, r.first_seq, r.last_seq), (5, Some(0), Some(4)));
    }

    #[test]
    fn an_edited_entry_is_altered_and_a_rehashed_one_unlinks_the_next() {
        let mut c = chain(5);
        c[2].1.detail = "nothing happened".into();
        let r = verify(&c, None);
        assert_eq!(r.first_break.unwrap().kind, BreakKind::Altered);
        // Recomputing the edited entry's own hash moves the break to the next entry.
        c[2].1.hash = hash_of(&c[2].1.prev, &c[2].1);
        let r = verify(&c, None);
        let b = r.first_break.unwrap();
        assert_eq!((b.kind, b.seq), (BreakKind::Unlinked, Some(3)));
        assert!(
            !b.message.contains("nothing happened"),
            "no content in the message"
        );
    }

    #[test]
    fn deleted_inserted_and_reordered_entries_are_found() {
        let c = chain(6);
        let mut deleted = c.clone();
        deleted.remove(3);
        let b = verify(&deleted, None).first_break.unwrap();
        assert_eq!((b.kind, b.seq), (BreakKind::Missing, Some(3)));

        // Moved: a gap where it left, then a position seen out of order.
        let mut reordered = c.clone();
        reordered.swap(2, 3);
        let r = verify(&reordered, None);
        assert_eq!(r.first_break.clone().unwrap().kind, BreakKind::Missing);
        assert!(r.breaks >= 2, "{r}");

        let mut inserted = c.clone();
        let mut extra = AuditEntry::now("x", "login", "session", "", true);
        extra.seq = None;
        inserted.insert(4, (c[3].0, extra));
        assert_eq!(
            verify(&inserted, None).first_break.unwrap().kind,
            BreakKind::Unchained
        );

        let start_cut = &c[2..];
        assert_eq!(
            verify(start_cut, None).first_break.unwrap().kind,
            BreakKind::StartMissing
        );

        let mut head = ChainHead::default();
        for (_, e) in &c {
            head.next_seq = e.seq.unwrap() + 1;
            head.hash = e.hash.clone();
        }
        assert!(verify(&c, Some(&head)).intact);
        let b = verify(&c[..4], Some(&head)).first_break.unwrap();
        assert_eq!((b.kind, b.seq), (BreakKind::TailMissing, Some(4)));
    }

    #[test]
    fn a_pruned_start_is_accepted_with_its_anchor_and_older_unchained_entries_are_counted() {
        let mut c = chain(4);
        let mut head = ChainHead {
            next_seq: 4,
            hash: c[3].1.hash.clone(),
            t: c[3].0,
        };
        let anchor = PruneAnchor {
            removed: 2,
            before_ms: c[2].0,
            first_seq: 2,
            first_prev: c[2].1.prev.clone(),
        };
        let mut e = AuditEntry::now(
            "system",
            PRUNED_ACTION,
            "audit",
            serde_json::to_string(&anchor).unwrap(),
            true,
        );
        let t = head.link(&mut e);
        c.push((t, e));
        let r = verify(&c[2..], Some(&head));
        assert!(r.intact, "{r}");

        let mut legacy = AuditEntry::now("old", "login", "session", "", true);
        legacy.seq = None;
        let mut with_legacy = vec![(0, legacy)];
        with_legacy.extend(chain(2));
        let r = verify(&with_legacy, None);
        assert!(r.intact);
        assert_eq!((r.unchained, r.checked), (1, 2));
    }
}
